#!/usr/bin/env python3
"""Speed of the learning commands on a large store: `fit` on ~100,000 runs, `recommend` against it.

Builds the store with the synthetic benchmark's generator (imported through `python -m planner
import`, as a user would), then times, as a user runs them, each as the median of 5 whole processes
(wall and CPU), with its ratio to the target (issue 19):

- `python -m planner fit` (target: under 45 s), with the time the fit itself reports;
- `python -m planner recommend lammps reaxff --cluster C` on a cluster where reaxff was measured and on
  one where nothing was (target: under 0.25 s each), and without --cluster (every cluster at once:
  ~12,000 candidates; target: under 0.6 s). `recommend` computes from the store every time.

Prints the times and their ratios to the targets; exit 1 when a target is missed.

    python benchmarks/learn_speed.py [--clusters 64] [--variants 230] [--fits 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

import synthetic  # noqa: E402 - the generator lives beside this script

FIT_TARGET, ONE_CLUSTER_TARGET, EVERY_CLUSTER_TARGET = 45.0, 0.25, 0.6


def planner(*args: str) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall and CPU (user + system) seconds of one `python -m planner` process, and the process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "planner", *args], cwd=REPO, capture_output=True, text=True,
                          check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, done


def recommend_times(store: Path, *extra: str, times: int = 5) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of `times` whole `recommend lammps reaxff` processes; exits on a failed one."""
    walls, cpus = [], []
    for _ in range(times):
        wall, cpu, done = planner("recommend", "lammps", "reaxff", *extra, "--store", str(store))
        if done.returncode:
            raise SystemExit(done.stderr)
        walls.append(wall)
        cpus.append(cpu)
    return walls, cpus


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, default=64)
    parser.add_argument("--variants", type=int, default=230)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--fits", type=int, default=5, help="whole `fit` processes to take the median of")
    parser.add_argument("--keep", type=Path, default=None, help="keep the CSV and the store in this directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="compat-lab-speed-") as tmp:
        where = args.keep or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        csv_path, store = where / "large.csv", where / "large.sqlite"
        if not store.exists():
            runs = synthetic.write_csv(csv_path, args.clusters, args.variants, args.repeats, seed=11)
            seconds, _, done = planner("import", str(csv_path), "--store", str(store))
            if done.returncode:
                print(done.stderr)
                return 1
            print(f"store: {runs} runs ({done.stdout.strip()}); import took {seconds:.1f} s")
        print(f"load average before timing: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        fits = []
        for _ in range(args.fits):
            wall, cpu, done = planner("fit", "--store", str(store), "--json")
            if done.returncode:
                print(done.stderr)
                return 1
            fits.append((wall, cpu))
        report = json.loads(done.stdout)
        took = report["seconds"]
        fit_wall = statistics.median(wall for wall, _ in fits)
        fit_cpu = statistics.median(cpu for _, cpu in fits)
        print(f"fit: median {fit_wall:.1f} s wall of {len(fits)} (CPU median {fit_cpu:.1f} s) for {report['runs']} "
              f"runs ({report['points']} points, {report['features']} features): the last "
              f"fitted with cross-validation in {took['fit']:.1f} s, prediction table {took['table']:.1f} s; ratio "
              f"to the {FIT_TARGET:.0f} s target {fit_wall / FIT_TARGET:.2f}; load average now "
              f"{os.getloadavg()[0]:.2f}")
        rng = random.Random(0)
        clusters = sorted({line.split(",", 1)[0] for line in csv_path.read_text().splitlines()[1:]}) \
            if csv_path.exists() else []
        cluster = rng.choice(clusters) if clusters else "c00-haswell"
        missed = False
        for label, extra, target in (("one cluster, measured there", ["--cluster", cluster], ONE_CLUSTER_TARGET),
                                     ("one cluster, never measured there", ["--cluster", "eks-arm64"],
                                      ONE_CLUSTER_TARGET),
                                     ("every cluster at once", [], EVERY_CLUSTER_TARGET)):
            walls, cpus = recommend_times(store, *extra)
            median = statistics.median(walls)
            missed = missed or median > target
            print(f"recommend ({label}): median {median:.2f} s wall of 5 (min {min(walls):.2f}, max {max(walls):.2f}; "
                  f"CPU median {statistics.median(cpus):.2f} s); ratio to the {target} s target {median / target:.2f}; "
                  f"load average {os.getloadavg()[0]:.2f}")
        startup, cpu, _ = planner("--help")
        print(f"(`python -m planner --help` alone, the floor of any command: {startup:.2f} s wall, {cpu:.2f} s CPU)")
    passed = fit_wall <= FIT_TARGET and not missed
    print(f"targets (fit < {FIT_TARGET:.0f} s, recommend < {ONE_CLUSTER_TARGET} s for one cluster, "
          f"< {EVERY_CLUSTER_TARGET} s for every cluster): {'PASS' if passed else 'FAIL'}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
