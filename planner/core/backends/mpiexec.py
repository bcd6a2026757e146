"""MPICH's hydra `mpiexec` (and Intel MPI's, which is hydra too): `mpiexec -n T [-bind-to ...]`.

Hydra is its own PMI server (PMI-1/PMI-2 wire protocol to every rank), so a run takes no PMI choice.
Intel MPI's hydra ignores `-bind-to`; it pins through I_MPI_PIN / I_MPI_PIN_DOMAIN (Intel MPI Developer
Reference, "Process Pinning").
"""

from __future__ import annotations

from planner.core.backends.contract import Launcher, Ranks, Words, register_launcher


@register_launcher("mpiexec")
class Mpiexec(Launcher):
    def command(self, ranks: Ranks) -> Words:
        argv = [ranks.program or "mpiexec", "-n", str(ranks.tasks)]
        if ranks.affinity == "default":
            return Words(tuple(argv))
        if "intel" in str(ranks.mpi or "").lower():
            if ranks.affinity == "off":
                return Words(tuple(argv), {"I_MPI_PIN": "off"})
            return Words(tuple(argv), {"I_MPI_PIN": "on", "I_MPI_PIN_DOMAIN": "omp" if ranks.threads > 1 else "core"})
        if ranks.affinity == "off":
            return Words((*argv, "-bind-to", "none"))
        return Words((*argv, "-bind-to", f"core:{ranks.threads}" if ranks.threads > 1 else "core"))
