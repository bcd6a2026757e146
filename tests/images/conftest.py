"""The container variants built here (roles/container_images), once per cache: the first session builds
them into the tests' cache (minutes, root, Debian's mirror), later sessions find them complete."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, planner

LAMMPS = REPO / "experiments" / "lammps.yaml"
#: what each built variant must be, as the issue asks: OS base x MPI, with the C library each Debian has
EXPECTED = {
    "lammps-debian11-openmpi": {"os.version": "11", "os.glibc": "2.31", "mpi.implementation": "openmpi"},
    "lammps-debian12-openmpi": {"os.version": "12", "os.glibc": "2.36", "mpi.implementation": "openmpi"},
    "lammps-debian13-openmpi": {"os.version": "13", "os.glibc": "2.41", "mpi.implementation": "openmpi"},
    "lammps-debian12-mpich": {"os.version": "12", "os.glibc": "2.36", "mpi.implementation": "mpich"},
}


def needs_image_tools() -> None:
    """Skip, saying why, where images cannot be built: they need root, mmdebstrap and ch-run (CI has all)."""
    missing = [tool for tool in ("mmdebstrap", "ch-run") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {' and '.join(missing)} (Debian packages mmdebstrap, charliecloud-runtime)")
    if os.geteuid() != 0:
        pytest.skip("needs root to build images (mmdebstrap --mode=root)")


def ensure_images() -> dict:
    """Build (or find built) every variant the default experiment declares with `build:`; the build's JSON."""
    done = planner("variants", "build", "--json", "-e", str(LAMMPS), timeout=3600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="session")
def built_images() -> dict[str, Path]:
    """Variant name -> image directory, every image complete (its .done marker written)."""
    needs_image_tools()
    report = ensure_images()
    return {item["name"]: Path(item["image"]) for item in report["images"]}
