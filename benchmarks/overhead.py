#!/usr/bin/env python3
"""Orchestration overhead of a local sweep: (sweep wall time) / (sum of LAMMPS process wall times).

Runs the default local sweep (or -e FILE) into a fresh store, with the native variants installed
beforehand so installation is reported separately, and prints the figures and the ratio (target <= 1.10).

With `--profile perf|ebpf|rusage`: the cost of profiling instead. The same sweep runs unprofiled and
profiled (workload by workload, alternating, so that a machine that gets busier meanwhile weighs on both
alike) and the ratio of profiled to unprofiled LAMMPS time (its own loop time, to the microsecond: its
`Total wall time` is in whole seconds; summed over the runs, which have the same ids in both stores) is
printed, with the median of the per-run ratios and what
the profiler costs outside the app (its start, bpftrace's compilation). Targets: perf <= 1.03, ebpf <= 1.05.

    python benchmarks/overhead.py [-e experiments/lammps.yaml] [--repeats N] [--profile P] [--workload W]...
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: Most profiled / unprofiled LAMMPS time accepted, per profiler.
PROFILE_TARGETS = {"perf": 1.03, "ebpf": 1.05, "rusage": 1.03}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-e", "--experiment", default=str(REPO / "experiments" / "lammps.yaml"))
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--profile", choices=sorted(PROFILE_TARGETS), default=None,
                        help="measure what this profiler costs LAMMPS instead of the orchestration")
    parser.add_argument("--workload", action="append", default=[], help="with --profile: only these workloads")
    args = parser.parse_args()
    extra = ["--repeats", str(args.repeats)] if args.repeats else []
    if args.profile:
        return profile_overhead(args.experiment, args.profile, args.workload, extra)
    with tempfile.TemporaryDirectory(prefix="compat-lab-overhead-") as tmp:
        warm = Path(tmp) / "warm.sqlite"
        started = time.monotonic()
        # installs missing variants and runs one lj point per variant, so caches are warm for the measure
        subprocess.run([sys.executable, "-m", "planner", "sweep", "-e", args.experiment, "--store", str(warm),
                        "--workload", "lj", "--repeats", "1"], cwd=REPO, check=True, capture_output=True)
        prepare = time.monotonic() - started
        store = Path(tmp) / "planner.sqlite"
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "planner", "sweep", "-e", args.experiment, "--store",
                               str(store), *extra], cwd=REPO, capture_output=True, text=True)
        sweep = time.monotonic() - started
        if done.returncode != 0:
            print(done.stdout[-3000:], done.stderr[-3000:])
            return 1
        with sqlite3.connect(store) as db:
            runs, app, ok = db.execute("SELECT COUNT(*), SUM(wall), SUM(status = 'ok') FROM runs").fetchone()
            loops = db.execute("SELECT SUM(value) FROM foms WHERE name = 'loop_time'").fetchone()[0]
    print(f"runs                        {runs} ({ok} ok)")
    print(f"install + warm-up           {prepare:8.1f} s   (not part of the sweep)")
    print(f"sweep wall time             {sweep:8.1f} s   (python -m planner sweep, start to exit)")
    print(f"LAMMPS process wall, summed {app:8.1f} s   (mpiexec ... lmp, as the executor timed it)")
    print(f"LAMMPS loop time, summed    {loops:8.1f} s")
    print(f"orchestration overhead      {sweep - app:8.1f} s   ({(sweep - app) / runs * 1000:.0f} ms per run)")
    print(f"ratio sweep / app processes {sweep / app:8.3f}   (target <= 1.10)")
    return 0 if sweep / app <= 1.10 else 1


def _sweep(experiment: str, store: Path, *extra: str) -> None:
    done = subprocess.run([sys.executable, "-m", "planner", "sweep", "-e", experiment, "--store", str(store), *extra],
                          cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"sweep failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def _times(store: Path) -> dict[str, tuple[float, float]]:
    """Per ok run: (LAMMPS's own loop time, the executor's process wall time)."""
    with sqlite3.connect(store) as db:
        return {run_id: (lammps, wall) for run_id, lammps, wall in db.execute(
            "SELECT r.id, f.value, r.wall FROM runs r JOIN foms f ON f.run_id = r.id AND f.name = 'loop_time' "
            "WHERE r.status = 'ok'")}


def profile_overhead(experiment: str, profiler: str, workloads: list[str], extra: list[str]) -> int:
    import statistics

    import yaml

    if not workloads:
        spec = yaml.safe_load(Path(experiment).read_text())
        workloads = next(s for s in spec["sweeps"] if "local" in s["clusters"])["workloads"]
    with tempfile.TemporaryDirectory(prefix="compat-lab-profile-overhead-") as tmp:
        plain, profiled = Path(tmp) / "plain.sqlite", Path(tmp) / "profiled.sqlite"
        _sweep(experiment, Path(tmp) / "warm.sqlite", "--workload", "lj", "--repeats", "1")  # installs, warms caches
        for workload in workloads:
            _sweep(experiment, plain, "--workload", workload, *extra)
            _sweep(experiment, profiled, "--workload", workload, "--profile", profiler, *extra)
        before, after = _times(plain), _times(profiled)
        with sqlite3.connect(profiled) as db:
            statuses = db.execute("SELECT status, COUNT(*) FROM profiles GROUP BY status").fetchall()
    both = sorted(set(before) & set(after))
    if not both:
        print("no run succeeded both unprofiled and profiled")
        return 1
    lammps = sum(after[r][0] for r in both) / sum(before[r][0] for r in both)
    wall = sum(after[r][1] for r in both) / sum(before[r][1] for r in both)
    per_run = statistics.median(after[r][0] / before[r][0] for r in both)
    target = PROFILE_TARGETS[profiler]
    print(f"runs (ok both ways)               {len(both)} over {', '.join(workloads)}")
    print(f"profiles recorded                 {', '.join(f'{n} {s}' for s, n in statuses) or 'none'}")
    print(f"LAMMPS loop time, summed          {sum(before[r][0] for r in both):8.1f} s unprofiled, "
          f"{sum(after[r][0] for r in both):8.1f} s with {profiler}")
    print(f"median per-run ratio              {per_run:8.3f}")
    print(f"process wall ratio                {wall:8.3f}   (the profiler's start and stop included)")
    print(f"ratio profiled / unprofiled       {lammps:8.3f}   (LAMMPS time; target <= {target})")
    return 0 if lammps <= target else 1


if __name__ == "__main__":
    sys.exit(main())
