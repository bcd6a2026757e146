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
