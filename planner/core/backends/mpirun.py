"""Open MPI's `mpirun`: `mpirun -n T [--map-by slot:PE=t] [--bind-to core|none]`.

Open MPI's runtime (ORTE in 4.x, PRRTE in 5.x) is the PMIx server of its ranks, so a run takes no PMI
choice. Binding and mapping follow mpirun(1) of Open MPI 4.1: `--bind-to core|none`, and `--map-by
slot:PE=N` to give each rank N cores for its threads. As root it refuses to start unless
`--allow-run-as-root` (or OMPI_ALLOW_RUN_AS_ROOT=1 with OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1) is given: that
is a launch rule's business, matched on the cluster, not the launcher's.
"""

from __future__ import annotations

from planner.core.backends.contract import Launcher, Ranks, Words, register_launcher


@register_launcher("mpirun")
class Mpirun(Launcher):
    def command(self, ranks: Ranks) -> Words:
        argv = [ranks.program or "mpirun", "-n", str(ranks.tasks)]
        mapping = f"ppr:{-(-ranks.tasks // ranks.nodes)}:node" if ranks.nodes > 1 else "slot"
        if ranks.affinity not in ("default", "off") and ranks.threads > 1:
            mapping += f":PE={ranks.threads}"
        if mapping != "slot":
            argv += ["--map-by", mapping]
        if ranks.affinity == "off":
            argv += ["--bind-to", "none"]
        elif ranks.affinity != "default":
            argv += ["--bind-to", "core"]
        return Words(tuple(argv))
