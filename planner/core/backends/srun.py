"""Slurm's `srun`: `srun --mpi=P -n T [-N n] [-c t] [--cpu-bind=...] [-J ID -t LIMIT]`.

The PMI flavours are Slurm's MPI plugins (`srun --mpi=list`; Debian's Slurm 22.05 offers none, pmi2,
cray_shasta, pmix and pmix_v4, the pmix ones once libpmix is installed, since the plugin dlopens it).
Which of them a cluster really offers is the cluster's attribute (`pmi`), read from `srun --mpi=list` at
bring-up. A run is a Slurm job step named after its run id (`-J`) with Slurm's own limit (`-t`, minutes
or [[days-]hours:]minutes:seconds, srun(1)), so `scancel --name` finds and ends it.
"""

from __future__ import annotations

import math

from planner.core.backends.contract import Launcher, Ranks, Words, register_launcher

#: Slurm 22.05's MPI plugin names (src/plugins/mpi: none, pmi2, pmix, cray_shasta; pmix_vN per PMIx major)
PLUGINS = ("none", "pmi2", "pmix", "pmix_v3", "pmix_v4", "pmix_v5", "cray_shasta")
#: affinity option -> srun --cpu-bind value (srun(1): none, cores, threads, ...)
_CPU_BIND = {"off": "none", "on": "cores", "per-task": "cores"}


@register_launcher("srun")
class Srun(Launcher):
    pmi = PLUGINS
    jobs = True

    def command(self, ranks: Ranks) -> Words:
        argv = [ranks.program or "srun"]
        if ranks.pmi is not None:
            argv.append(f"--mpi={ranks.pmi}")
        argv += ["-n", str(ranks.tasks)]
        if ranks.nodes > 1:
            argv += ["-N", str(ranks.nodes)]
        if ranks.threads > 1:
            argv += ["-c", str(ranks.threads)]
        if ranks.affinity != "default":
            argv.append(f"--cpu-bind={_CPU_BIND[ranks.affinity]}")
        if ranks.job is not None:
            argv += ["-J", ranks.job, "-t", limit(ranks.limit or 0)]
        return Words(tuple(argv))

    def refuses(self, ranks: Ranks) -> str | None:
        if ranks.pmi is not None and ranks.pmi not in self.pmi:
            return f"srun --mpi takes one of {', '.join(self.pmi)}, not {ranks.pmi}"
        return super().refuses(ranks)

    def cancel(self, job: str) -> tuple[str, ...]:
        return ("scancel", "--name", job)


def limit(seconds: float) -> str:
    """Seconds as srun's -t (`minutes:seconds`), rounded up: Slurm's limit has a granularity of a minute
    anyway (slurm.conf OverTimeLimit, the controller's timer), the executor's own timeout is exact."""
    whole = max(1, math.ceil(seconds))
    return f"{whole // 60}:{whole % 60:02d}"
