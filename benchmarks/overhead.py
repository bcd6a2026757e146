#!/usr/bin/env python3
"""Orchestration overhead of a local sweep: (sweep wall time) / (sum of LAMMPS process wall times).

Runs the default local sweep (or -e FILE) into a fresh store, with the native variants installed
beforehand so installation is reported separately, and prints the figures and the ratio (target <= 1.10).

    python benchmarks/overhead.py [-e experiments/lammps.yaml] [--repeats N]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-e", "--experiment", default=str(REPO / "experiments" / "lammps.yaml"))
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    extra = ["--repeats", str(args.repeats)] if args.repeats else []
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


if __name__ == "__main__":
    sys.exit(main())
