"""The container variants built here (roles/container_images), once per cache: the first session builds
them into the tests' cache (minutes, root, Debian's mirror), later sessions find them complete."""

from __future__ import annotations

from tests.conftest import REPO, needs_image_tools

__all__ = ["EXPECTED", "LAMMPS", "needs_image_tools"]

LAMMPS = REPO / "experiments" / "lammps.yaml"
#: what each built variant must be, as the issue asks: OS base x MPI, with the C library each Debian has
EXPECTED = {
    "lammps-debian11-openmpi": {"os.version": "11", "os.glibc": "2.31", "mpi.implementation": "openmpi"},
    "lammps-debian12-openmpi": {"os.version": "12", "os.glibc": "2.36", "mpi.implementation": "openmpi"},
    "lammps-debian13-openmpi": {"os.version": "13", "os.glibc": "2.41", "mpi.implementation": "openmpi"},
    "lammps-debian12-mpich": {"os.version": "12", "os.glibc": "2.36", "mpi.implementation": "mpich"},
}
