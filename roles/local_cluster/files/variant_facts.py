#!/usr/bin/env python3
"""Write <prefix>/facts.json: what a native variant is, as its own `lmp -h` and the host report it.

Prints `changed` when facts.json was (re)written and `unchanged` otherwise, for Ansible's changed_when.
"""

import argparse
import glob
import json
import os
import platform
import re
import subprocess
import sys

MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}


def lammps_facts(text):
    facts = {}
    head = re.search(r"Large-scale Atomic/Molecular Massively Parallel Simulator - (\d+) (\w{3})\w* (\d{4})(.*)", text)
    if head:
        day, month, year, rest = head.groups()
        facts["lammps_version"] = f"{year}{MONTHS.get(month, 0):02d}{int(day):02d}"
        facts["lammps_release"] = f"{day} {month} {year}{rest.rstrip()}"
    mpi = re.search(r"^MPI v([\d.]+):\s*(.+)$", text, re.MULTILINE)
    if mpi:
        standard, library = mpi.group(1), mpi.group(2).strip()
        facts["mpi_standard"] = standard
        facts["mpi_library"] = library
        if "Intel" in library:
            facts["mpi_implementation"] = "intel-mpi"
            version = re.search(r"Library ([\d.]+)", library)
        elif "Open MPI" in library or "OpenMPI" in library:
            facts["mpi_implementation"] = "openmpi"
            version = re.search(r"v?([\d.]+)", library)
        elif "MPICH" in library:
            facts["mpi_implementation"] = "mpich"
            version = re.search(r"Version:\s*([\d.]+\w*)", library)
        else:
            facts["mpi_implementation"] = library.split()[0].lower()
            version = re.search(r"([\d.]+)", library)
        if version:
            facts["mpi_version"] = version.group(1)
    packages = re.search(r"Installed packages:\s*\n(.*?)\n\s*\n", text, re.DOTALL)
    if packages:
        facts["lammps_packages"] = sorted(packages.group(1).split())
    return facts


def os_facts():
    info = {}
    try:
        with open("/etc/os-release") as handle:
            for line in handle:
                key, _, value = line.strip().partition("=")
                info[key] = value.strip('"')
    except OSError:
        pass
    return {"os_vendor": info.get("ID"), "os_version": info.get("VERSION_ID"), "os_name": info.get("PRETTY_NAME")}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prefix", required=True, help="the variant's prefix (where MPI and facts.json live)")
    parser.add_argument("--lammps-prefix", required=True, help="the prefix whose LAMMPS binary the variant runs")
    parser.add_argument("--recipe", required=True, help="digest of the recipe")
    args = parser.parse_args()
    found = sorted(glob.glob(os.path.join(args.lammps_prefix, "lib", "python*", "site-packages", "lammps", "lmp")))
    if not found:
        sys.exit(f"no LAMMPS binary under {args.lammps_prefix}")
    lmp, libdir = found[-1], os.path.join(args.prefix, "lib")
    env = dict(os.environ, LD_LIBRARY_PATH=libdir)
    proc = subprocess.run([lmp, "-h"], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120, check=False)
    if proc.returncode != 0:
        sys.exit(f"{lmp} -h failed ({proc.returncode}): {proc.stderr.strip()[:500]}")
    facts = {"recipe": args.recipe, "prefix": args.prefix, "lmp": lmp, "libdir": libdir,
             "mpiexec": os.path.join(args.prefix, "bin", "mpiexec"),
             "share": os.path.join(os.path.dirname(lmp), "share", "lammps"), "arch": platform.machine(),
             **lammps_facts(proc.stdout), **os_facts()}
    path = os.path.join(args.prefix, "facts.json")
    text = json.dumps(facts, indent=2, sort_keys=True) + "\n"
    try:
        with open(path) as handle:
            if handle.read() == text:
                print("unchanged")
                return
    except OSError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
    print("changed")


if __name__ == "__main__":
    main()
