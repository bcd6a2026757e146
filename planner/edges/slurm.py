"""The local-slurm cluster as roles/local_slurm left it: its state file, read; nothing is started here.

`roles/local_slurm` (`ansible-playbook playbooks/cluster.yml -e cluster=local-slurm`) writes
`<cache>/slurm/state.json` once the daemons are up: the slurm.conf to point `srun` at (SLURM_CONF), the
node's cores (`slurmd -C`), the PMI flavours `srun --mpi=list` reports, the host's own MPI. It removes the
file when it stops them. Container images are Charliecloud directories under `<cache>/images/<variant>`,
complete once `<cache>/images/<variant>.done` exists (the images role writes them).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from planner.core.errors import WorkError
from planner.edges.variant_info import cache_dir


def slurm_dir() -> Path:
    return cache_dir() / "slurm"


def images_dir() -> Path:
    return cache_dir() / "images"


def image_ready(variant: str) -> bool:
    return (images_dir() / f"{variant}.done").is_file()


def state() -> dict[str, Any] | None:
    """What the role recorded, when the cluster is up (its slurmctld alive), else None."""
    path = slurm_dir() / "state.json"
    try:
        recorded = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return recorded if isinstance(recorded, dict) and _alive(slurm_dir() / "run" / "slurmctld.pid", "slurmctld") \
        else None


def _alive(pid_file: Path, program: str) -> bool:
    try:
        pid = int(pid_file.read_text().strip())
        return Path(f"/proc/{pid}/comm").read_text().strip() == program
    except (OSError, ValueError):
        return False


def environment() -> dict[str, str]:
    """What `srun`, `squeue` and `scancel` need to find the cluster, and `ch-run` to start ($USER)."""
    return {"SLURM_CONF": str(slurm_dir() / "slurm.conf"), "USER": os.environ.get("USER") or "root"}


def require_up(cluster: str, variants: list[str]) -> None:
    """WorkError naming the command that helps, unless the cluster is up and the runs' images are built."""
    if state() is None:
        raise WorkError(f"cluster {cluster} is not up: bring it up with `ansible-playbook playbooks/cluster.yml "
                        f"-e cluster={cluster}` (as root)")
    missing = [name for name in variants if not image_ready(name)]
    if missing:
        raise WorkError(f"images not built in {images_dir()}: {', '.join(missing)} (`python -m planner variants "
                        "build`)")


def cancel_leftovers(stored: Iterable[str]) -> list[str]:
    """Cancel the cluster's active jobs named after runs that are stored already, and return their names.

    A job runs under its run's id (`srun -J`). One still active for a stored run is a leftover of a killed
    sweep: a step that ended while slurmctld was down stays RUNNING in the restarted controller (srun could
    not report its end), holding its cores until its time limit. The run is stored, so the job is cancelled,
    never waited on or run again. (A job of a run not stored yet is the executor's to cancel before it starts
    that run again.)"""
    env = {**os.environ, **environment()}
    try:
        listed = subprocess.run(["squeue", "-h", "-o", "%i %j"], env=env, stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=60, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    wanted = set(stored)
    found = [line.split(maxsplit=1) for line in listed.splitlines() if len(line.split(maxsplit=1)) == 2]
    leftovers = [(job, name) for job, name in found if name in wanted]
    if leftovers:
        subprocess.run(["scancel", *(job for job, _ in leftovers)], env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=60, check=False)
    return sorted(name for _, name in leftovers)
