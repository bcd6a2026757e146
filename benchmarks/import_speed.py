#!/usr/bin/env python3
"""Speed and memory of `python -m planner import` on a 1,000,000-row CSV (issue 19: <= 60 s, <= 500 MB).

Writes a long-form CSV of ROWS rows (clusters x variants x launch options x repeats, two metrics per run,
with the variant and cluster attribute columns a real export carries), then imports it into an empty store
as a user would, in its own process, and prints the wall and CPU seconds, rows per second and the peak
resident memory of that process, with their ratios to the targets; exit 1 when one is missed.

    python benchmarks/import_speed.py [--rows 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SECONDS_TARGET, MEGABYTES_TARGET = 60.0, 500.0
HEADER = ("cluster,app,workload,variant,repeat,status,metric,value,variant.io.archspec.cpu.target,"
          "variant.mpi.implementation,variant.os.version,cluster.arch,cluster.microarchitecture,cluster.nodes,"
          "cluster.cores_per_node,option.tasks,option.threads,option.x\n")
HOSTS = [("haswell", "amd64"), ("zen3", "amd64"), ("icelake", "amd64"), ("neoverse_v1", "arm64")]


def write_csv(path: Path, rows: int) -> int:
    """ROWS rows, two per run (fom and wall); returns the rows written."""
    written = 0
    with open(path, "w") as out:
        out.write(HEADER)
        points = itertools.product(range(400), range(250), (1, 2, 4, 8), (1, 2), range(5))
        for cluster, variant, tasks, x, repeat in points:
            micro, arch = HOSTS[cluster % len(HOSTS)]
            target = "x86_64_v3" if arch == "amd64" else "aarch64"
            mpi = ("mpich", "openmpi", "intel-mpi")[variant % 3]
            common = (f"c{cluster:03d},lammps,lj,v{variant:03d},{repeat},ok")
            attrs = f"{target},{mpi},{20 + variant % 5}.04,{arch},{micro},1,{64 + cluster % 3 * 32},{tasks},1,{x}"
            value = 1.0 + (cluster * 7 + variant * 13 + tasks + repeat) % 97
            out.write(f"{common},timesteps_per_s,{value},{attrs}\n{common},wall,{100 / value:.4f},{attrs}\n")
            written += 2
            if written >= rows:
                break
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, default=None, help="keep the CSV and the store in this directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="compat-lab-import-") as tmp:
        where = args.keep or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        csv_path, store = where / "million.csv", where / "million.sqlite"
        rows = write_csv(csv_path, args.rows)
        for stale in where.glob("million.sqlite*"):
            stale.unlink()
        print(f"{rows:,} rows, {csv_path.stat().st_size / 2**20:.0f} MiB; load average {os.getloadavg()[0]:.2f} on "
              f"{os.cpu_count()} cores", flush=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "planner", "import", str(csv_path), "--store", str(store)],
                              cwd=REPO, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode:
            print(done.stderr)
            return 1
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        peak = after.ru_maxrss / 1024  # KiB on Linux
        progress = [line for line in done.stderr.splitlines() if line.startswith("import:")]
        print(done.stdout.strip())
        print(f"import: {wall:.1f} s wall ({cpu:.1f} s CPU), {rows / wall:,.0f} rows/s; peak RSS {peak:.0f} MiB; "
              f"{len(progress)} progress lines on stderr (last: {progress[-1] if progress else '-'})")
        print(f"ratios to the targets: time {wall / SECONDS_TARGET:.2f} (CPU {cpu / SECONDS_TARGET:.2f}), "
              f"memory {peak / MEGABYTES_TARGET:.2f}")
    return 0 if wall <= SECONDS_TARGET and peak <= MEGABYTES_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
