#!/usr/bin/env python3
"""The orchestration ratio of a local-slurm sweep: its wall time over the sum of its runs' `srun` walls.

Runs `python -m planner sweep --cluster local-slurm` (the experiment's default local-slurm sweep, or the
selection given) on STORE as a user would, timing the whole command, then sums the wall time of each run it
stored (the executor's own clock around `srun ... ch-run ... lmp`). 1.0 would be no cost beyond the runs;
the target is <= 1.05. Needs local-slurm up and the variants' artifacts fetched beside STORE
(`python -m planner variants fetch --store STORE`).

    python benchmarks/slurm_sweep.py --store STORE [--workload W]... [--variant V]... [--repeats N] [--json]

Prints the sweep's wall, the runs' summed wall, the ratio, the runs stored (ok / failed) and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, type=Path)
    parser.add_argument("--workload", action="append", default=[])
    parser.add_argument("--variant", action="append", default=[])
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    argv = [sys.executable, "-m", "planner", "sweep", "--cluster", "local-slurm", "--store", str(args.store)]
    argv += [word for name in args.workload for word in ("--workload", name)]
    argv += [word for name in args.variant for word in ("--variant", name)]
    argv += ["--repeats", str(args.repeats)] if args.repeats else []
    started = time.time()
    t0 = time.monotonic()
    done = subprocess.run(argv, cwd=REPO, stdin=subprocess.DEVNULL, check=False)
    sweep_wall = time.monotonic() - t0
    with sqlite3.connect(f"file:{args.store}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT status, wall FROM runs WHERE cluster = 'local-slurm' AND started >= ?",
                          (started,)).fetchall()
    runs_wall = sum(wall or 0.0 for _, wall in rows)
    out = {"sweep_wall": round(sweep_wall, 2), "runs_wall": round(runs_wall, 2),
           "ratio": round(sweep_wall / runs_wall, 3) if runs_wall else None, "runs": len(rows),
           "ok": sum(status == "ok" for status, _ in rows), "failed": sum(status != "ok" for status, _ in rows),
           "load_average": list(os.getloadavg()), "exit_code": done.returncode}
    print(json.dumps(out) if args.json else "\n".join(f"{key}: {value}" for key, value in out.items()))
    return 0 if done.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
