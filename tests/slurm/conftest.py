"""local-slurm for real: Debian's slurmctld, slurmd and munge brought up once per session by roles/local_slurm
(through the planner's own ansible-runner adapter, on free loopback ports), and down at the end; the
Charliecloud images the images role built into the shared cache.

Root is needed (slurmd starts job steps as their owner): as another user these tests skip saying so.

Until `variants push`/`variants fetch` of the built images are on this branch (branch i21images), the
artifacts beside a test's store are written here with compspec's own generator: the MPI each image was
built with (its build recipe, in its variant name) and the LAMMPS packages its `lmp -h` lists, read from
the image with ch-run. Once fetched artifacts exist, `variants fetch` replaces this.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CACHE

IMAGES = CACHE / "compat-lab" / "images"
#: the variants of experiments/lammps.yaml's local-slurm sweep, with the MPI their recipe builds them with
VARIANTS = {"lammps-debian11-openmpi": "openmpi", "lammps-debian12-openmpi": "openmpi",
            "lammps-debian13-openmpi": "openmpi", "lammps-debian12-mpich": "mpich"}
#: Debian packages of the programs these tests run
PROGRAMS = {"slurmctld": "slurmctld", "slurmd": "slurmd", "munged": "munge", "srun": "slurm-client",
            "ch-run": "charliecloud-runtime"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_slurm() -> None:
    if os.getuid() != 0:
        pytest.skip("needs root: slurmd starts job steps as their owner (CI runs these as root)")
    missing = sorted({package for program, package in PROGRAMS.items() if shutil.which(program) is None})
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (apt-get install {' '.join(missing)})")


def built_images() -> list[str]:
    built = [name for name in VARIANTS if (IMAGES / f"{name}.done").is_file()]
    if not built:
        pytest.skip(f"needs the local-slurm images in {IMAGES} (python -m planner variants build)")
    return built


def bring(state: str, ports: tuple[int, int] | None = None) -> None:
    from planner.edges.runner import PlaybookRequest, run_playbook

    extravars: dict[str, object] = {"cluster": "local-slurm", "state": state}
    if ports:
        extravars.update(local_slurm_ctld_port=ports[0], local_slurm_d_port=ports[1])
    done = run_playbook(PlaybookRequest("playbooks/cluster.yml", "inventories/local", extravars, tags="local_slurm"))
    assert done.ok, done.failures


@pytest.fixture(scope="session")
def local_slurm() -> Iterator[dict[str, str]]:
    """local-slurm up for the session (on free ports); the environment srun and ch-run need."""
    require_slurm()
    bring("present", (_free_port(), _free_port()))
    from planner.edges import slurm

    try:
        yield slurm.environment()
    finally:
        bring("absent")


def _packages(image: Path) -> str:
    """The LAMMPS packages `lmp -h` lists inside the image."""
    done = subprocess.run(["ch-run", str(image), "--", "lmp", "-h"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "USER": os.environ.get("USER") or "root"}, check=True)
    block = re.search(r"Installed packages:\s*\n(.*?)\n\s*\n", done.stdout, re.S)
    return " ".join(sorted(block.group(1).split())) if block else ""


def write_artifacts(store: Path, variants: list[str]) -> None:
    """Artifacts beside `store` for the built images (see the module's docstring)."""
    from planner.core import compspec
    from planner.core.experiment import load_experiment
    from planner.edges.compspec_cache import ArtifactCache, Entry, cache_path
    from tests.conftest import REPO

    exp = load_experiment(REPO / "experiments" / "lammps.yaml")
    cache = ArtifactCache(cache_path(store))
    entries = []
    for name in variants:
        attributes = {"mpi.implementation": VARIANTS[name], "hardware.gpu.available": "no",
                      "io.archspec.cpu.target": "x86_64", "lammps.packages": _packages(IMAGES / name)}
        data = compspec.generate("lammps-prototype", attributes)
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        cache.put(digest, data)
        entries.append(Entry(str(exp.variants[name].image), digest, "localhost:5000", f"tag {name}-compspec",
                             "2026-12-07 00:00:00 UTC"))
    cache.record(entries)
