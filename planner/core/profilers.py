"""Profiles beside the figures of merit: which profilers a cluster can run, how a launch is wrapped for
them, and how their raw output becomes per-run numbers. Pure.

- `rusage`: each rank is started under GNU time (`/usr/bin/time -q -a -o /dev/stderr -f ...`, its line on
  the rank's stderr, so in the run's log), where the launcher starts the ranks itself (mpiexec on the local
  cluster). `-o /dev/stderr` makes GNU time write the line through a buffered stream, in one write: on
  stderr itself it writes field by field, and the ranks' lines, ending together, interleave mid-line.
- `perf`: `perf stat` software events (task-clock, context switches, CPU migrations, page faults) of the
  launch's process tree, by the executors' profiling step (roles/run_matrix/files/profile_run.sh).
- `ebpf`: bpftrace on scheduler and syscall tracepoints, for the tasks of the launch's process tree (on a
  MiniCluster, of the job's flux-shell): run-queue wait, on-CPU time, futex waits, poll/select/epoll
  waits, sched_yield calls; per command name, so the launcher's processes are told apart from the app's.

Every number is a metric named `<profiler>.<what>` (`ebpf.runq_wait_p99_us`), stored beside the figures
of merit; less is better for all of them. A profiler that could not run says why (`unavailable: ...`)
and the run is kept: profiles are observations, never a reason for a run to fail.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, get_args

from planner.core.errors import InputError
from planner.core.experiment import Profiler
from planner.core.launch import Launch

PROFILERS: tuple[str, ...] = get_args(Profiler)
#: Metric names of profiles start with one of these.
PREFIXES = tuple(f"{name}." for name in PROFILERS)
#: Profilers the executors' profiling step runs (rusage is a per-rank wrapper in the launch itself).
STEP_PROFILERS = ("perf", "ebpf")
#: the profiling step's files (in RUN_DIR/profile): its status lines and each profiler's raw output
STEP_FILES = ("status", "perf.csv", "ebpf.json")
_RAW_FILE = {"perf": "perf.csv", "ebpf": "ebpf.json"}
#: what a raw profile may not be: malformed output is reported as such, never a crash of the sweep
_MALFORMED = (ValueError, TypeError, AttributeError, KeyError, IndexError, OverflowError, RecursionError,
              ZeroDivisionError)

#: GNU time, started by the launcher for each rank; `-q`: no word of its own on a rank a signal ended.
RUSAGE_TIME = "/usr/bin/time"
RUSAGE_MARK = "compat-lab-rusage"
_RUSAGE_FIELDS = ("wall", "user", "sys", "maxrss_kb", "major_faults", "minor_faults", "vol_switches",
                  "invol_switches")
RUSAGE_FORMAT = RUSAGE_MARK + " " + " ".join(f"{name}=%{code}" for name, code in
                                              zip(_RUSAGE_FIELDS, "eUSMFRwc", strict=True))
#: GNU time before a rank's command: its line appended to the rank's stderr in one write (see above)
RUSAGE_ARGV = (RUSAGE_TIME, "-q", "-a", "-o", "/dev/stderr", "-f", RUSAGE_FORMAT, "--")
_RUSAGE_LINE = re.compile(rf"^{RUSAGE_MARK} ((?:\w+=[-\d.?]+ ?)+)$", re.M)

#: Processes of the launch's tree that are the launcher's, not the app's (command names as the kernel
#: keeps them, 15 characters at most): their scheduling is reported apart.
LAUNCHER_COMMANDS = frozenset({
    "sh", "bash", "dash", "time", "perf", "perf-exec", "env", "mpiexec", "mpiexec.hydra", "mpirun",
    "hydra_pmi_proxy", "hydra_bstrap_pr", "orterun", "prterun", "prted", "flux",
    "flux-shell", "flux-imp", "flux-broker", "singularity", "apptainer", "starter", "starter-suid",
})


def is_profile_metric(name: str) -> bool:
    return name.startswith(PREFIXES)


def parse_names(text: str, field_name: str = "--profile") -> tuple[str, ...]:
    """`rusage,perf,ebpf` (any of them, in any order) as a tuple in the canonical order; bad input refused."""
    names = [name.strip() for name in text.split(",")]
    unknown = [name for name in names if name not in PROFILERS]
    if unknown or not names:
        raise InputError(f"{', '.join(repr(n) for n in unknown) or repr(text)} is not a profiler; "
                         f"accepted: {', '.join(PROFILERS)} (comma-separated)", field=field_name)
    return tuple(name for name in PROFILERS if name in names)


def unsupported(profilers: Iterable[str], cluster_kind: str) -> dict[str, str]:
    """The profilers this kind of cluster cannot provide, each with why (empty: all can be tried; whether
    the kernel then allows them is found when the run starts)."""
    if cluster_kind == "local":
        return {}
    why = {
        "rusage": "Flux starts each rank from its broker, and the images carry no GNU time to wrap them with; "
                  "the launcher's own rusage (user, sys, max RSS of `flux run`) is stored with every run",
        "perf": "perf stat counts a process tree, and Flux starts a job's tasks outside `flux run`'s tree; "
                "use ebpf, which follows the job's flux-shell",
    }
    return {name: why[name] for name in profilers if name in why}


def wrap(launch: Launch, profilers: Iterable[str], cluster_kind: str) -> Launch:
    """The launch with its profiling: GNU time around each rank (rusage), and the profilers the executors'
    profiling step runs around the whole launch."""
    wanted = tuple(name for name in PROFILERS if name in set(profilers))
    if not wanted:
        return launch
    argv = launch.argv
    if "rusage" in wanted:
        if launch.rank_start is None:
            raise ValueError(f"no rank command to wrap in {argv}")
        start = launch.rank_start
        argv = [*argv[:start], *RUSAGE_ARGV, *argv[start:]]
    return dataclasses.replace(launch, argv=argv, profile=wanted,
                               profile_root="tree" if cluster_kind == "local" else "flux-shell")


# ------------------------------------------------------------------------------------------ parsing


@dataclass
class Profile:
    metrics: dict[str, float] = field(default_factory=dict)
    #: per profiler asked for: "ok", or "unavailable: why"
    status: dict[str, str] = field(default_factory=dict)


def parse(profilers: Iterable[str], raw: dict[str, Any] | None, output: str) -> Profile:
    """Numbers from one run's profiles: `raw` is the executor's "profile" (the profiling step's files, and
    in "left_out" those too large to be read, with their sizes), `output` the run's log (the ranks' rusage
    lines). Whatever the files hold, the answer is numbers or `unavailable: why`, never an exception."""
    profile = Profile()
    raw = raw if isinstance(raw, dict) else {}
    left_out = raw.get("left_out") if isinstance(raw.get("left_out"), dict) else {}
    status = raw.get("status")
    said = _status_lines(status if isinstance(status, str) else "")
    for name in PROFILERS:
        if name not in set(profilers):
            continue
        if name == "rusage":
            metrics = _rusage(output)
            why = "no rank reported its rusage (no rank ended?)"
        else:
            if name in said and said[name] != "ok":
                profile.status[name] = said[name]
                continue
            if name not in said:
                profile.status[name] = ("unavailable: the profiling step was ended before it reported (a timeout "
                                        "or a kill)" if "status" in raw else
                                        "unavailable: the executor ran no profiling step")
                continue
            file = _RAW_FILE[name]
            if file in left_out:
                profile.status[name] = (f"unavailable: {file} is {left_out[file]} bytes, more than is read "
                                        "(it stays in the run's profile directory)")
                continue
            text = raw.get(file)
            try:
                metrics = (_perf if name == "perf" else _ebpf)(text if isinstance(text, str) else "")
            except _MALFORMED as err:
                profile.status[name] = f"unavailable: {file} is malformed ({type(err).__name__})"
                continue
            why = f"{name} wrote nothing that reads as a profile"
        bad = sorted(key for key, value in metrics.items() if not math.isfinite(value))
        if bad:
            profile.status[name] = f"unavailable: {name} gave values that are not finite numbers ({bad[0]})"
            continue
        profile.metrics.update(metrics)
        profile.status[name] = "ok" if metrics else f"unavailable: {why}"
    return profile


def _status_lines(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        name, _, rest = line.strip().partition(" ")
        if name in STEP_PROFILERS:
            out[name] = "ok" if rest == "ok" else "unavailable: " + rest.removeprefix("unavailable").strip()
    return out


def _rusage(output: str) -> dict[str, float]:
    ranks = []
    for match in _RUSAGE_LINE.finditer(output):
        values = dict(pair.split("=", 1) for pair in match.group(1).split())
        try:
            ranks.append({name: float(values[name]) for name in _RUSAGE_FIELDS})
        except (KeyError, ValueError):
            continue
    if not ranks:
        return {}
    column = {name: [rank[name] for rank in ranks] for name in _RUSAGE_FIELDS}
    return {
        "rusage.ranks": float(len(ranks)),
        "rusage.rank_wall_max_seconds": max(column["wall"]),
        "rusage.rank_user_median_seconds": statistics.median(column["user"]),
        "rusage.rank_user_max_seconds": max(column["user"]),
        "rusage.rank_sys_max_seconds": max(column["sys"]),
        "rusage.rank_maxrss_max_kb": max(column["maxrss_kb"]),
        "rusage.major_faults": sum(column["major_faults"]),
        "rusage.minor_faults": sum(column["minor_faults"]),
        "rusage.voluntary_switches": sum(column["vol_switches"]),
        "rusage.involuntary_switches": sum(column["invol_switches"]),
    }


_PERF_EVENTS = {"task-clock": "perf.task_clock_seconds", "context-switches": "perf.context_switches",
                "cpu-migrations": "perf.cpu_migrations", "page-faults": "perf.page_faults"}


def _perf(text: str) -> dict[str, float]:
    """`perf stat -x,` lines: value, unit, event (`:u` where only user space could be counted), ..."""
    out = {}
    for line in text.splitlines():
        parts = line.split(",")
        if len(parts) < 3 or line.startswith("#"):
            continue
        value, unit, event = parts[0], parts[1], parts[2].split(":")[0]
        if event not in _PERF_EVENTS:
            continue
        try:
            number = float(value)
        except ValueError:  # <not counted>, <not supported>
            continue
        out[_PERF_EVENTS[event]] = number / 1000.0 if unit == "msec" else number
    return out


def _ebpf(text: str) -> dict[str, float]:
    """bpftrace's JSON lines (`-f json`): per-command-name maps and histograms (nanoseconds)."""
    maps: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(item, dict) and item.get("type") in {"map", "hist"} and isinstance(item.get("data"), dict):
            maps.update(item["data"])
    if not maps:
        return {}
    app = _app_part
    out: dict[str, float] = {}
    for name in ("runq_wait", "futex_wait", "poll_wait"):
        key = name.split("_")[0]
        buckets = _merged(app(maps.get(f"@{key}_us", {})))
        count = sum(b[2] for b in buckets)
        out[f"ebpf.{name}s"] = float(count)
        out[f"ebpf.{name}_seconds"] = sum(app(maps.get(f"@{key}_ns", {})).values()) / 1e9
        if count:
            out[f"ebpf.{name}_median_us"] = _quantile(buckets, 0.5)
            out[f"ebpf.{name}_p99_us"] = _quantile(buckets, 0.99)
    oncpu = maps.get("@oncpu_ns", {})
    out["ebpf.oncpu_seconds"] = sum(app(oncpu).values()) / 1e9
    out["ebpf.launcher_oncpu_seconds"] = sum(v for k, v in oncpu.items() if k in LAUNCHER_COMMANDS) / 1e9
    out["ebpf.sched_yields"] = float(sum(app(maps.get("@yields", {})).values()))
    return out


def _app_part(by_command: Any) -> dict[str, Any]:
    return {k: v for k, v in by_command.items() if k not in LAUNCHER_COMMANDS} if isinstance(by_command, dict) else {}


def _merged(histograms: dict[str, Any]) -> list[tuple[float, float, int]]:
    """Log2 buckets of several histograms added up: (low, high, count), by low. (bpftrace 0.17 writes the
    bounds of a bucket past 2^31 as 32-bit numbers: such a bucket is the one after its predecessor.)"""
    counts: dict[tuple[float, float], int] = {}
    for buckets in histograms.values():
        previous = None
        for bucket in buckets if isinstance(buckets, list) else ():
            low = float(bucket.get("min", 0))
            high = float(bucket.get("max", low))
            if previous is not None and low < previous:
                low, high = previous + 1, 2 * previous + 1
            previous = high
            counts[(low, high)] = counts.get((low, high), 0) + int(bucket.get("count", 0))
    return sorted((low, high, n) for (low, high), n in counts.items() if n)


def _quantile(buckets: list[tuple[float, float, int]], q: float) -> float:
    """The q-quantile, interpolated within its bucket."""
    total = sum(n for _, _, n in buckets)
    rank = q * total
    seen = 0
    for low, high, n in buckets:
        if seen + n >= rank:
            return low + (high - low) * max(rank - seen, 0.0) / n
        seen += n
    return buckets[-1][1] if buckets else math.nan
