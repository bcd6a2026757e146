#!/usr/bin/env python3
"""Orchestration cost per run of handing runs to Ansible: N trivial runs (`true`) through
playbooks/sweep.yml and roles/run_matrix, the planner's runner adapter collecting one event per run.

Prints the playbook's wall time and the wall and CPU time per run in milliseconds (CPU time, summed over
ansible-playbook, its workers and the executors, is the steadier figure on a busy machine). Run it in two
checkouts (PYTHONPATH) to compare how runs reach Ansible; --baseline-ms prints the ratio to a figure.

    python benchmarks/handover.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from planner.edges.runner import PlaybookRequest, run_playbook


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--baseline-ms", type=float, default=None, help="CPU ms per run to compare with")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="compat-lab-handover-") as tmp:
        # what a native run looks like to Ansible: a long argv and a few environment variables
        items = [{"id": f"{i:016x}", "argv": ["true", "-n", "2", "-bind-to", "core", f"{tmp}/lmp", "-v", "x", "1",
                                              "-v", "steps", "200", "-in", "in.lj", "-nocite"],
                  "env": {"LD_LIBRARY_PATH": f"{tmp}/lib", "OMP_NUM_THREADS": "1"}, "cwd": None, "stage": None,
                  "timeout": 60, "run_dir": str(Path(tmp) / "runs" / f"{i:016x}"), "image": None, "sif": None,
                  "owner_pid": os.getpid(), "stop_file": str(Path(tmp) / "stop")} for i in range(args.runs)]
        seen = []
        started = time.monotonic()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = run_playbook(PlaybookRequest("playbooks/sweep.yml", "inventories/local",
                                              {"run_matrix_runs": items, "run_matrix_launcher": "local"}),
                              on_item=lambda task, res: seen.append(res.get("rc")) if task == "local | Execute run"
                              else None)
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if not result.ok or len(seen) != args.runs:
        print(f"failed: {result} ({len(seen)} of {args.runs} events)", file=sys.stderr)
        return 1
    print(f"runs                      {args.runs}")
    print(f"playbook wall time        {wall:8.2f} s")
    print(f"wall per run              {wall / args.runs * 1000:8.1f} ms   (Ansible + executor, for `true`)")
    print(f"CPU per run               {cpu / args.runs * 1000:8.1f} ms")
    if args.baseline_ms:
        print(f"ratio CPU / baseline      {cpu / args.runs * 1000 / args.baseline_ms:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
