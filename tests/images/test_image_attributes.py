"""Reading an image's attributes from what it printed (no root, no image needed): the data files are the real
`lmp -h` and `ldd /usr/bin/lmp` of the Debian 12 Open MPI image; the rest are the lines such tools print."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.core import apps, compspec, image_attributes

DATA = Path(__file__).parent / "data"
OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'
STATUS = ("Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u10\n\n"
          "Package: libc6-dev\nStatus: deinstall ok config-files\nVersion: 2.31-13\n")


def debian12(**overrides: object) -> dict:
    given = {"os_release_text": OS_RELEASE, "debian_version": "12.10\n",
             "libc_version": image_attributes.dpkg_version(STATUS, "libc6"),
             "help_text": (DATA / "lmp-h-debian12-openmpi.txt").read_text(), "app": apps.definition("lammps"),
             "ldd_text": (DATA / "ldd-debian12-openmpi.txt").read_text(), "machine": "x86_64",
             "notes": ["Properties: x86 ISA needed: x86-64-baseline"], **overrides}
    return image_attributes.attributes(**given)  # type: ignore[arg-type]


def test_a_debian_12_open_mpi_image_reads_as_lammps_matrix_names_it() -> None:
    attrs = debian12()
    assert {k: v for k, v in attrs.items() if k != "lammps.packages"} == {
        "hardware.gpu.available": "no", "io.archspec.cpu.target": "x86_64",
        "lammps.release": "29 Sep 2021 - Update 2", "lammps.version": "20210929",
        "mpi.implementation": "openmpi", "mpi.version": "4.1.4",
        "os.glibc": "2.36", "os.name": "Debian GNU/Linux 12 (bookworm)", "os.release": "12.10",
        "os.vendor": "debian", "os.version": "12"}
    assert "KSPACE" in attrs["lammps.packages"].split() and "REAXFF" not in attrs["lammps.packages"].split()
    # and it makes an artifact in the existing format, which parses back to the same attributes
    assert compspec.attributes(compspec.parse(compspec.generate("lammps-debian12-openmpi", attrs))) == attrs


@pytest.mark.parametrize(("notes", "target"), [
    ([], "x86_64"),  # no note: the toolchain's default, the x86-64 baseline Debian and manylinux build for
    (["x86 ISA needed: x86-64-baseline", "x86 ISA needed: x86-64-baseline, x86-64-v3"], "x86_64_v3"),
    (["x86 ISA needed: x86-64-v2"], "x86_64_v2"),
])
def test_the_cpu_target_is_the_highest_isa_level_lammps_code_needs(notes: list[str], target: str) -> None:
    assert debian12(notes=notes)["io.archspec.cpu.target"] == target


def test_an_arm_binary_is_aarch64_from_its_elf_header() -> None:
    header = b"\x7fELF\x02\x01\x01" + bytes(11) + (183).to_bytes(2, "little")
    assert image_attributes.elf_machine(header) == "aarch64"
    assert debian12(machine="aarch64")["io.archspec.cpu.target"] == "aarch64"


def test_the_mpi_family_comes_from_the_library_lmp_links() -> None:
    mpich = "\tlibmpi.so.12 => /opt/lammps/lib/libmpi.so.12 (0x00007f)\n"
    assert image_attributes.mpi_attributes(mpich, "MPICH Version:      5.0.2") == \
        {"mpi.implementation": "mpich", "mpi.version": "5.0.2"}
    intel = "\tlibmpi.so.12 => /opt/intel/lib/libmpi.so.12 (0x00007f)\n"
    assert image_attributes.mpi_attributes(intel, "Intel(R) MPI Library 2021.17 for Linux* OS")["mpi.implementation"] \
        == "intel-mpi"
    with pytest.raises(image_attributes.ImageFactsError, match=r"links libmpi\.so\.12"):
        image_attributes.mpi_attributes(mpich, "Open MPI v4.1.4, package: Debian OpenMPI")
    with pytest.raises(image_attributes.ImageFactsError, match="links no MPI library"):
        image_attributes.mpi_attributes("\tlibmpi.so.40 => not found\n", None)


def test_package_names_are_todays_and_an_opencl_gpu_build_needs_no_gpu() -> None:
    """Debian 11's LAMMPS (24 Dec 2020) lists USER-OMP and a GPU package built over OpenCL."""
    listed = (DATA / "lmp-h-debian12-openmpi.txt").read_text()
    old = listed.replace("ASPHERE BODY", "ASPHERE USER-OMP USER-REAXC GPU BODY")
    attrs = debian12(help_text=old, ldd_text=(DATA / "ldd-debian12-openmpi.txt").read_text()
                     + "\tlibOpenCL.so.1 => /lib/x86_64-linux-gnu/libOpenCL.so.1 (0x00007f)\n")
    assert {"OPENMP", "REAXFF", "GPU"} <= set(attrs["lammps.packages"].split())
    assert not any(name.startswith("USER-") for name in attrs["lammps.packages"].split())
    assert attrs["hardware.gpu.available"] == "no"
    cuda = debian12(ldd_text=(DATA / "ldd-debian12-openmpi.txt").read_text()
                    + "\tlibcuda.so.1 => /usr/lib/x86_64-linux-gnu/libcuda.so.1 (0x00007f)\n")
    assert cuda["hardware.gpu.available"] == "yes"
