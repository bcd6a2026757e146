"""Parse LAMMPS output into status, failure reason and figures of merit. Pure.

Handles the screen output and log files of LAMMPS 2021 to 2025, interleaved with Flux broker lines
and operator banners (every pattern is searched within a line, never anchored to its start), and the
failures seen when containers meet clusters. A run is `ok` only when LAMMPS printed its own success
line (`Total wall time`), the launcher did not report a failure, and it ran as asked: one LAMMPS (one
banner) on as many procs as tasks were asked for. Ranks that never joined one MPI job each run the
whole input alone (a banner and "on 1 procs" apiece): stored as `ok`, they would teach the model a
128-rank figure that is a 1-rank one.

A failure's reason is looked for in the application's own lines first: a MiniCluster's log interleaves
the Flux broker, Flux's shell and job tools, and the operator's wrapper scripts and helper binaries,
whose failures (an amd64 helper on an arm64 node: "Exec format error") are not the app's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

REASONS = ("os-abi", "exec-format", "missing-gpu", "mpi", "missing-package", "missing-input", "timeout",
           "killed", "incompatible", "unknown")

_NUM = r"([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
_LOOP = re.compile(rf"Loop time of {_NUM} on (\d+) procs for (\d+) steps with (\d+) atoms")
_PERF = re.compile(r"Performance:\s*(.*)")
_PERF_ITEM = re.compile(rf"{_NUM}\s+(ns/day|hours/ns|tau/day|timesteps/s|[kMG]?atom-step/s)")
_CPU = re.compile(rf"{_NUM}% CPU use with (\d+) MPI tasks x (\d+) OpenMP threads")
_SECTION = re.compile(r"(Pair|Bond|Kspace|Neigh|Comm|Output|Modify|Other)\s*\|" + r"([^|\n]*)\|" * 4
                      + rf"\s*{_NUM}\s*$", re.MULTILINE)
_WALL = re.compile(r"Total wall time:\s*(\d+):(\d{2}):(\d{2})")
#: the first line every LAMMPS process that is (or thinks it is) rank 0 prints: `LAMMPS (29 Sep 2021 - Update 2)`
_BANNER = re.compile(r"LAMMPS \((\d{1,2} [A-Z][a-z]+ \d{4})")
#: lines spoken by Flux itself (broker, job shell, job tools) or by the Flux Operator's wrapper scripts and
#: helper binaries (`/flux_operator/wait-0.sh: line 9: /usr/bin/goshare-wait-fs: ...`), not by the app
_FLUX_LINE = re.compile(r"^\s*(?:broker\.\w+\[\d+\]:|flux-(?:shell|job|run|submit|broker|exec)\b|"
                        r"Flux Operator\b)")
_OPERATOR_SPEAKER = re.compile(r"/flux_operator/|goshare|wait-fs|flux-view\.sh|flux-connect\.sh|^/mnt/flux/")
#: a shared library the dynamic loader cannot find; MPI's own libraries make it an `mpi` failure
_MISSING_MPI_LIBRARY = re.compile(r"error while loading shared libraries: (?:libmpi|libpmi|libmpich|"
                                  r"libopen-(?:rte|pal)|libfabric|libucp|libucs|libpmix|libhwloc)\S*: cannot open",
                                  re.IGNORECASE)
_PERF_KEYS = {"ns/day": "ns_per_day", "hours/ns": "hours_per_ns", "tau/day": "tau_per_day",
              "timesteps/s": "timesteps_per_s"}
_ATOM_STEP_SCALE = {"": 1e-6, "k": 1e-3, "M": 1.0, "G": 1e3}

#: (reason, pattern) in priority order: the first that matches names the failure.
_FAILURE_PATTERNS = (
    # the loader's words for a binary or library built against a newer C/C++ runtime than the image has:
    # `version 'GLIBC_2.34' not found`, a versioned symbol it lacks (`symbol lookup error: ... undefined
    # symbol: X, version GLIBC_2.34`), glibc-internal symbols of another release (`relocation error: ...
    # version GLIBC_PRIVATE not defined`); Open MPI repeats them when it cannot dlopen a component
    # (`mca_base_component_repository_open: unable to open mca_pmix_flux: ...`, opal/mca/base)
    ("os-abi", r"`?(GLIBC|GLIBCXX|CXXABI)_[\d.]+'? not found|version `GLIBC|"
               r"undefined symbol: \S+, version (GLIBC|GLIBCXX|CXXABI)_|version GLIBC_PRIVATE not defined"),
    ("exec-format", r"exec format error|cannot execute binary file|wrong ELF class"),
    ("missing-gpu", r"libcuda\.so[.\d]*: cannot open shared object|no CUDA-capable device|"
                    r"CUDA driver version is insufficient|could not find/initialize a specified accelerator|"
                    r"GPU package.*(no|not).*device|cudaErrorNoDevice|found no NVIDIA driver"),
    ("missing-package", r"ERROR: Unrecognized (pair|fix|compute|bond|angle|dihedral|improper|kspace|atom|"
                        r"command|dump|region|integrate|minimize|min) style|ERROR: Unknown command|"
                        r"ERROR: Package \w+ command without \w+ package installed|"
                        r"is part of the \S+ package,? which is not enabled|"
                        r"ERROR: .*(accelerator|suffix).*not (installed|available)|ERROR: Unknown (pair|fix) style"),
    ("missing-input", r"ERROR: Cannot open (input script|file|data file|restart file|\S+ potential file)|"
                      r"ERROR on proc \d+: Cannot open|Cannot open input script|"
                      r"ERROR: .*(No such file or directory)|FATAL:.*(image|file).*(not found|does not exist)|"
                      r"could not open image|Failed to open input|mount source \S+ doesn't exist"),
    ("killed", r"KILLED BY SIGNAL|Killed$|oom[-_ ]kill|Out of memory|signal 9\b|SIGKILL|"
               r"Segmentation fault|BAD TERMINATION .*(EXIT CODE: 13[79]|signal)"),
    ("mpi", _MISSING_MPI_LIBRARY.pattern + r"|Fatal error in (P?MPI|internal)|MPI_Init|PMI[x2]?_?\w*.*(fail|error)|"
            r"PMI server|"
            r"HYDU_|HYD_pmcd|ORTE|mpirun noticed|MPIDI_|An error occurred in MPI_|"
            r"unable to (launch|connect)|ucx.*error|libfabric|OFI.*fail|UCX ERROR|"
            r"MPI_ABORT was invoked|mpiexec.*(error|failed)|flux-job: .*(failed|exception)"),
)
_FAILURES = tuple((reason, re.compile(pattern, re.IGNORECASE)) for reason, pattern in _FAILURE_PATTERNS)
_LAMMPS_ERROR = re.compile(r"ERROR(?: on proc \d+)?: (.*)")


@dataclass
class Parsed:
    status: str  # ok | failed
    reason: str | None
    detail: str | None
    foms: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "detail": self.detail, "foms": self.foms}


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


def is_app_line(line: str) -> bool:
    """Whether a line comes from the application (or its MPI, loader or container runtime), not from Flux
    or the operator's wrappers. A wrapper names itself before its first `: ` message separators."""
    if _FLUX_LINE.search(line):
        return False
    speakers = line.split(": ")[:-1]
    return not any(_OPERATOR_SPEAKER.search(speaker) for speaker in speakers)


def classify(text: str) -> tuple[str, str | None]:
    """The failure reason code of an output that did not succeed, and the line that shows it: the app's own
    lines are searched first (every reason in priority order), the launcher's and wrappers' after."""
    lines = text.splitlines()
    app = [line for line in lines if is_app_line(line)]
    others = [line for line in lines if not is_app_line(line)]
    for group in (app, others):
        for reason, pattern in _FAILURES:
            for line in group:
                if pattern.search(line):
                    return reason, line.strip()[:300]
    error = _LAMMPS_ERROR.search(text)
    return "unknown", (error.group(0).strip()[:300] if error else None)


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


def parse(text: str, *, exit_code: int | None = None, timed_out: bool = False,
          success: str = "Total wall time", tasks: int | None = None) -> Parsed:
    """Status, reason and FOMs of one run's output; `exit_code` and `timed_out` come from the launcher,
    `tasks` is how many ranks the launch asked for (checked against LAMMPS's own count where given)."""
    found = foms(text)
    if timed_out:
        return Parsed("failed", "timeout", "the run exceeded its timeout and was stopped", found)
    if success in text and exit_code in (None, 0):
        wrong = ran_as_asked(text, tasks)
        if wrong:
            return Parsed("failed", "mpi", wrong, found)
        return Parsed("ok", None, None, found)
    reason, detail = classify(text)
    if reason == "unknown" and exit_code is not None and (exit_code < 0 or exit_code in (137, 143)):
        reason, detail = "killed", f"the process was killed (exit code {exit_code})"
    elif reason == "mpi" and exit_code in (-9, 9, 137) and not _MISSING_MPI_LIBRARY.search(detail or ""):
        # a rank killed from outside (OOM killer, a person, the scheduler): its peers' MPI errors follow from
        # it, and the launcher may end before it says which rank was killed (hydra exits 9, the rank's signal
        # as its exit code; a launcher killed itself is 137 / -9)
        reason, detail = "killed", f"the process was killed (exit code {exit_code}); then: {detail}"
    if detail is None:
        detail = f"no success line ({success!r}); exit code {exit_code}" if exit_code is not None \
            else f"no success line ({success!r})"
    return Parsed("failed", reason, detail, found)
