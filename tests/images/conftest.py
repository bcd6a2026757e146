"""The container variants built here (roles/container_images), once per cache: the first session builds
them into the tests' cache (minutes, root, Debian's mirror), later sessions find them complete."""

from __future__ import annotations

from tests.conftest import REPO
from tests.system import needs, needs_root

LAMMPS = REPO / "experiments" / "lammps.yaml"
#: what each built variant must be, as the issue asks: OS base x MPI, with the C library each Debian has
EXPECTED = {
    "lammps-debian11-openmpi": {"os.version": "11", "os.glibc": "2.31", "mpi.implementation": "openmpi"},
    "lammps-debian12-openmpi": {"os.version": "12", "os.glibc": "2.36", "mpi.implementation": "openmpi"},
    "lammps-debian13-openmpi": {"os.version": "13", "os.glibc": "2.41", "mpi.implementation": "openmpi"},
    "lammps-debian12-mpich": {"os.version": "12", "os.glibc": "2.36", "mpi.implementation": "mpich"},
}


def needs_image_tools() -> None:
    """Skip, naming the packages, where images cannot be built: they need root, mmdebstrap and ch-run (CI has
    all, and fails instead of skipping)."""
    needs("mmdebstrap", "ch-run", "readelf")
    needs_root("building images (mmdebstrap --mode=root)")
