"""Bad input around built images: one line naming the file, the line and the field, exit 2, nothing built."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import planner
from tests.images.conftest import LAMMPS

GOOD = LAMMPS.read_text()
IMAGE = "    image: docker://localhost:5000/compat-lab/lammps:lammps-debian12-mpich\n"
MPICH = IMAGE + "    build: {debian: bookworm, mpi: mpich}"


def line_of(text: str, needle: str) -> int:
    return text[:text.index(needle)].count("\n") + 1


@pytest.mark.parametrize(("new", "field", "message"), [
    (IMAGE + "    build: {debian: buster, mpi: mpich}",
     "variants.lammps-debian12-mpich.build.debian", "Input should be 'bullseye', 'bookworm' or 'trixie'"),
    (IMAGE + "    build: {debian: bookworm, mpi: intel}",
     "variants.lammps-debian12-mpich.build.mpi", "Input should be 'openmpi' or 'mpich'"),
    ("    image: docker://localhost:5000/compat-lab/lammps:other\n    build: {debian: bookworm, mpi: mpich}",
     "variants.lammps-debian12-mpich.image", "the image must end in :lammps-debian12-mpich"),
])
def test_a_bad_build_recipe_is_one_line_naming_the_field(tmp_path: Path, new: str, field: str, message: str) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(GOOD.replace(MPICH, new))
    done = planner("variants", "build", "-e", str(path))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"{path}:{line_of(GOOD, MPICH)}" in done.stderr or f"{path}:{line_of(GOOD, MPICH) + 1}" in done.stderr
    assert field in done.stderr and message in done.stderr, done.stderr


@pytest.mark.parametrize(("name", "message"), [
    ("lammps-debian14-openmpi", "unknown variant 'lammps-debian14-openmpi'"),
    ("lammps-2025-mpich", "variant 'lammps-2025-mpich' has no `build:` recipe; buildable: lammps-debian11-openmpi"),
])
def test_building_what_cannot_be_built_is_refused_before_anything_runs(name: str, message: str) -> None:
    done = planner("variants", "build", name)
    assert done.returncode == 2 and message in done.stderr and done.stderr.count("\n") == 1, done.stderr
