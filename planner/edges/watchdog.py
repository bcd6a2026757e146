"""Stops what a planner started when the planner dies without cleaning up (kill -9, a lost session).

`python -m planner.edges.watchdog PID [COMMAND...]` polls PID; when it is gone, it terminates every
process whose environment carries COMPAT_LAB_OWNER_PID=PID (ansible-playbook, its workers, the runs they
execute), then runs COMMAND (what stops the work elsewhere, such as a sweep's jobs on a cluster, which no
local process table shows: planner.edges.runner passes its own request runner), then exits. An orphaned
ansible-playbook otherwise waits forever on the events nobody reads.
The runner adapter starts one per playbook and stops it when the playbook ends normally.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ENV = "COMPAT_LAB_OWNER_PID"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owned_by(owner: int) -> list[int]:
    marker = f"{ENV}={owner}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def reap(owner: int, grace: float = 3.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = owned_by(owner)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            pids = [pid for pid in pids if alive(pid)]
            time.sleep(0.1)


def main(argv: list[str]) -> int:
    owner = int(argv[1])
    while alive(owner):
        time.sleep(0.5)
    reap(owner)
    if len(argv) > 2:
        subprocess.run(argv[2:], stdin=subprocess.DEVNULL, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
