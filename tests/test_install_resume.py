"""Issue 19: installs resume. A first sweep on a cold cache is killed (kill -9 of its process group) once
lammps-2025-mpich is installed and before lammps-2025-impi, which borrows its LAMMPS; the next sweep
installs only what is missing (the borrowed variant counted as installed), redoes the half-installed
prefix (no facts.json) rather than trusting it, and runs. Real Ansible, pip, LAMMPS and MPI, in a cache
of the test's own (COMPAT_LAB_CACHE), never the shared one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from planner.edges.store import Store
from tests.conftest import REPO, TINY, planner

pytestmark = pytest.mark.lammps

SWEEP = ["sweep", "-e", str(TINY), "--workload", "lj", "--variant", "lammps-2025-mpich",
         "--variant", "lammps-2025-impi"]


def _using(path: Path) -> list[int]:
    """Processes whose command line names `path` (pip installing into a prefix, Ansible, the planner)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if str(path).encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_sweep_killed_between_two_installs_resumes(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {**os.environ, "COMPAT_LAB_CACHE": str(cache)}
    store = tmp_path / "planner.sqlite"
    variants = cache / "variants"
    first = subprocess.Popen([sys.executable, "-m", "planner", *SWEEP, "--store", str(store)], cwd=REPO, env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        _wait_for(lambda: (variants / "lammps-2025-mpich" / "facts.json").exists() or first.poll() is not None,
                  900, "lammps-2025-mpich to be installed")
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert not (variants / "lammps-2025-impi" / "facts.json").exists(), "killed too late: both were installed"
    # the planner's watchdog ends what it started (Ansible, pip) once it is gone
    _wait_for(lambda: not _using(cache), 120, "the killed sweep's processes to end")

    done = planner(*SWEEP, store=store, env={"COMPAT_LAB_CACHE": str(cache)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Installing 1 native variant(s)" in done.stdout and "lammps-2025-impi" in done.stdout
    with Store(store) as opened:
        records = opened.records()
    assert {(r.variant, r.status) for r in records} == {("lammps-2025-mpich", "ok"), ("lammps-2025-impi", "ok")}
    assert len(records) == 4
