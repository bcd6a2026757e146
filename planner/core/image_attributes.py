"""compspec attributes of a container image, read from what the image holds. Pure: text in, attributes out.

The edges (planner.edges.images) read the files and run the commands; this module only parses them:
- `os.*` from /etc/os-release, with `os.release` the point release (/etc/debian_version on Debian) and
  `os.glibc` the C library's version (the dpkg status of libc6): what decides whether a host library
  bound into the image can load there;
- `mpi.implementation` from the MPI library the app's executable links (its soname in `ldd`: libmpi.so.40 is
  Open MPI, libmpi.so.12 / libmpich.so.12 the MPICH ABI), named and versioned by that library's own
  MPI_Get_library_version line where the app prints it (`MPI v3.1: Open MPI v4.1.4, ...`);
- the app's own attributes (its version, release and packages) from what its definition runs in the image
  (apps.Definition.help_args), read by the definition (`help_attributes`);
- `hardware.gpu.available` "yes" only when the executable links the CUDA driver's library (libcuda), which only a
  machine with the NVIDIA driver has: such a binary does not start elsewhere. Debian 11 builds the GPU
  package over OpenCL, whose loader runs anywhere and leaves the GPU unused;
- `io.archspec.cpu.target` from the ELF files that hold the app's code: their machine (x86-64, AArch64)
  and, on x86-64, the highest `x86 ISA needed` level in their GNU property notes (`readelf -n`; Debian's
  toolchain writes `x86-64-baseline`). No note means the toolchain's default, the baseline of the
  architecture (Debian amd64 and manylinux x86_64 build for plain x86-64). The names are archspec's:
  `x86_64`, `x86_64_v2`..`x86_64_v4`, `aarch64`.
"""

from __future__ import annotations

import re
from typing import Any

from planner.core.apps import Definition

#: ELF e_machine values and the archspec name of their baseline
ELF_MACHINES = {62: "x86_64", 183: "aarch64"}
#: readelf's x86 ISA levels as archspec names
X86_LEVELS = {"x86-64-baseline": "x86_64", "x86-64-v2": "x86_64_v2", "x86-64-v3": "x86_64_v3",
              "x86-64-v4": "x86_64_v4"}
#: libraries only a machine with a GPU driver has: a binary linking one does not start elsewhere
GPU_RUNTIMES = ("libcuda.so",)
#: MPI sonames and the family whose ABI they are
MPI_SONAMES = {"libmpi.so.40": "openmpi", "libmpi.so.12": "mpich", "libmpich.so.12": "mpich"}


class ImageFactsError(ValueError):
    """The image does not say what is needed (no os-release, no MPI library, no version of the app)."""


def os_release(text: str) -> dict[str, str]:
    """The fields of an os-release file (`KEY=value`, values quoted or not)."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            fields[key] = value.strip().strip("\"'")
    return fields


def dpkg_version(status: str, package: str) -> str | None:
    """The installed version of a package in a dpkg status file, or None."""
    for stanza in status.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.MULTILINE))
        if fields.get("Package") == package and fields.get("Status", "").endswith(" installed"):
            return fields.get("Version")
    return None


def os_attributes(os_release_text: str, debian_version: str | None, libc_version: str | None) -> dict[str, str]:
    fields = os_release(os_release_text)
    if not fields.get("ID"):
        raise ImageFactsError("the image's /etc/os-release has no ID")
    out = {"os.name": fields.get("PRETTY_NAME") or fields.get("NAME", ""), "os.vendor": fields["ID"],
           "os.version": fields.get("VERSION_ID", ""),
           "os.release": (debian_version or "").strip() or fields.get("VERSION_ID", "")}
    if libc_version:
        out["os.glibc"] = re.sub(r"^\d+:", "", libc_version).split("-")[0]  # 2.36-9+deb12u10 -> 2.36
    return {key: value for key, value in out.items() if value}


def linked_mpi(ldd_text: str) -> tuple[str, str]:
    """(the MPI ABI family, the soname) of the MPI library in `ldd` output."""
    for line in ldd_text.splitlines():
        soname = line.strip().split(" ", 1)[0]
        if soname in MPI_SONAMES and "not found" not in line:
            return MPI_SONAMES[soname], soname
    raise ImageFactsError("the app links no MPI library this planner knows "
                          "(libmpi.so.40, libmpi.so.12, libmpich.so.12)")


def mpi_attributes(ldd_text: str, library_line: str | None) -> dict[str, str]:
    """Implementation and version of the MPI the app links: the soname decides the family, the library's own
    version line names it (Intel MPI is MPICH-ABI) and gives the version."""
    family, soname = linked_mpi(ldd_text)
    implementation, version = family, None
    line = library_line or ""
    if "Intel" in line:
        implementation, found = "intel-mpi", re.search(r"Library ([\d.]+)", line)
    elif "Open MPI" in line:
        found = re.search(r"v(\d+(?:\.\d+)+)", line)
    elif "MPICH" in line:
        found = re.search(r"Version:\s*(\d+(?:\.\d+)*\w*)", line)
    else:
        found = None
    if line and (family == "openmpi") != ("Open MPI" in line):
        raise ImageFactsError(f"the app links {soname} ({family}) but reports the MPI library {line!r}")
    version = found.group(1) if found else None
    return {"mpi.implementation": implementation, **({"mpi.version": version} if version else {})}


def elf_machine(header: bytes) -> str | None:
    """The archspec baseline name of an ELF file's machine, from its first 20 bytes; None when unknown."""
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    order = "little" if header[5] == 1 else "big"
    return ELF_MACHINES.get(int.from_bytes(header[18:20], order))


def cpu_target(machine: str | None, notes: list[str]) -> str | None:
    """The CPU target the app was built for: the machine's baseline raised by the highest x86 ISA needed."""
    if machine != "x86_64":
        return machine
    levels = [X86_LEVELS[level] for text in notes
              for line in re.findall(r"x86 ISA needed:\s*(.+)", text)
              for level in re.split(r",\s*", line.strip()) if level in X86_LEVELS]
    return max(levels, key=list(X86_LEVELS.values()).index) if levels else "x86_64"


def attributes(*, os_release_text: str, debian_version: str | None, libc_version: str | None, help_text: str,
               app: Definition, ldd_text: str, machine: str | None, notes: list[str]) -> dict[str, Any]:
    """All the image's attributes, flat and namespaced as compspec artifacts carry them; `help_text` is what
    the app's `help_args` printed."""
    try:
        own = app.help_attributes(help_text)
    except ValueError as err:
        raise ImageFactsError(str(err)) from None
    library = own.pop("mpi_library", None)
    out: dict[str, Any] = {**os_attributes(os_release_text, debian_version, libc_version), **own,
                           **mpi_attributes(ldd_text, library),
                           "hardware.gpu.available": "yes" if any(lib in ldd_text for lib in GPU_RUNTIMES) else "no"}
    target = cpu_target(machine, notes)
    if target:
        out["io.archspec.cpu.target"] = target
    return dict(sorted(out.items()))
