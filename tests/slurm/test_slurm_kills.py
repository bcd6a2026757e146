"""Killing things mid-sweep on local-slurm, for real (Slurm, Charliecloud, Open MPI, LAMMPS): Ctrl-C of the
planner, slurmctld, one rank. (kill -9 of the planner: test_local_slurm.py.) Each loses no finished run, the
next sweep resumes, and no run's job is in Slurm twice. The runs are 1-rank runs side by side (two at a time
on this 2-core node) of a tiny LJ melt, so a few seconds each; root is needed (see conftest)."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from tests.conftest import REPO, planner
from tests.slurm.conftest import bring, write_artifacts
from tests.slurm.test_local_slurm import experiment

VARIANT = "lammps-debian12-openmpi"


def _jobs(env: dict[str, str]) -> list[str]:
    """The names of Slurm's active jobs (run ids)."""
    done = subprocess.run(["squeue", "-h", "-o", "%j"], env={**os.environ, **env}, capture_output=True, text=True,
                          check=False)
    return done.stdout.split()


def _runs(store: Path) -> dict[str, tuple[str, float, str]]:
    """run id -> (status, started, beside) as stored (nothing while the store has no runs table yet)."""
    if not store.exists():
        return {}
    with closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as db:
        try:
            return {row[0]: row[1:] for row in db.execute("SELECT id, status, started, beside FROM runs")}
        except sqlite3.OperationalError:
            return {}


def _setup(tmp_path: Path, built_images: dict[str, Path], runs: int, tasks: int, steps: int) -> tuple[Path, Path]:
    assert VARIANT in built_images, f"the images role builds {VARIANT}"
    store = tmp_path / "planner.sqlite"
    write_artifacts(store, [VARIANT])
    exp = experiment(tmp_path, [VARIANT], [{"name": "kills", "repeats": runs,
                                            "set": {"steps": steps, "tasks": tasks}}])
    return exp, store


def _start(exp: Path, store: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "planner", "sweep", "-e", str(exp), "--cluster", "local-slurm"],
                            cwd=REPO, env={**os.environ, "PLANNER_STORE": str(store)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting: {what}"
        time.sleep(0.2)


@contextmanager
def _watch_jobs(env: dict[str, str]) -> Iterator[Counter[str]]:
    """The most jobs of one name seen active at once in Slurm while the block runs (sampled every 0.2 s)."""
    most: Counter[str] = Counter()
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for name, count in Counter(_jobs(env)).items():
                most[name] = max(most[name], count)
            time.sleep(0.2)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    try:
        yield most
    finally:
        done.set()
        watcher.join()


def _resume(exp: Path, store: Path, env: dict[str, str], kept: dict[str, tuple[str, float, str]],
            total: int) -> dict[str, tuple[str, float, str]]:
    """The next sweep: it runs only what was not stored, each run's job once."""
    with _watch_jobs(env) as most:
        done = planner("sweep", "-e", str(exp), "--cluster", "local-slurm", store=store)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{total - len(kept)} of {total} runs to do" in " ".join(done.stdout.split())
    assert not [name for name, count in most.items() if count > 1], most
    runs = _runs(store)
    assert len(runs) == total and {status for status, _, _ in runs.values()} == {"ok"}, runs
    assert all(runs[run_id][1] == kept[run_id][1] for run_id in kept), "a run stored before was not run again"
    assert not _jobs(env)
    return runs


def test_ctrl_c_of_the_planner_cancels_its_jobs_and_the_next_sweep_resumes(local_slurm: dict[str, str],
                                                                         built_images: dict[str, Path],
                                                                         tmp_path: Path) -> None:
    exp, store = _setup(tmp_path, built_images, runs=4, tasks=1, steps=1500)
    proc = _start(exp, store)
    try:
        _wait(lambda: len(_runs(store)) >= 2 and _jobs(local_slurm), 300, "two runs stored, more running")
        running = _jobs(local_slurm)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, out
    assert "run the same command again to resume" in " ".join(out.split())
    assert not set(running) & set(_jobs(local_slurm)), "the executors cancelled their jobs (scancel)"
    kept = _runs(store)
    assert 2 <= len(kept) < 4
    runs = _resume(exp, store, local_slurm, kept, 4)
    # side by side: the runs went two at a time, and each says which one ran beside it
    assert sum(beside not in (None, "[]") for _, _, beside in runs.values()) >= 2


def _ports() -> tuple[int, int]:
    from planner.edges import slurm

    conf = (slurm.slurm_dir() / "slurm.conf").read_text()
    return (int(re.search(r"^SlurmctldPort=(\d+)", conf, re.M).group(1)),  # type: ignore[union-attr]
            int(re.search(r"^SlurmdPort=(\d+)", conf, re.M).group(1)))  # type: ignore[union-attr]


def test_slurmctld_killed_mid_sweep_loses_no_finished_run_and_the_next_sweep_resumes(local_slurm: dict[str, str],
                                                                                     built_images: dict[str, Path],
                                                                                     tmp_path: Path) -> None:
    from planner.edges import slurm

    exp, store = _setup(tmp_path, built_images, runs=4, tasks=1, steps=1500)
    proc = _start(exp, store)
    try:
        _wait(lambda: len(_runs(store)) >= 1 and _jobs(local_slurm), 300, "a run stored, more running")
        pid = int((slurm.slurm_dir() / "run" / "slurmctld.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        bring("present", _ports())  # slurmctld started again (the role leaves slurmd and munge as they are)
    # the steps running went on under slurmd and were stored; what srun could not start stays pending
    assert proc.returncode == 1, out
    assert "scheduler could not be reached (srun: error: Unable to allocate resources: Unable to contact slurm " \
           "controller" in " ".join(out.split()), out
    kept = _runs(store)
    assert 1 <= len(kept) < 4 and {status for status, _, _ in kept.values()} == {"ok"}, kept
    _resume(exp, store, local_slurm, kept, 4)


def _lmp_ranks(env: dict[str, str]) -> list[int]:
    """The pids of the LAMMPS ranks of this cluster's jobs: processes named lmp (ch-run execs it) whose
    SLURM_JOB_NAME (srun sets it for each task) is one of this cluster's active jobs, a run id. (Other
    processes named lmp on the machine are not this test's.)"""
    names = {f"SLURM_JOB_NAME={name}".encode() for name in _jobs(env)}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            environ = set((entry / "environ").read_bytes().split(b"\0"))
        except OSError:
            continue
        if argv and argv[0].endswith(b"lmp") and names & environ:
            found.append(int(entry.name))
    return found


def test_a_rank_killed_mid_sweep_fails_its_run_with_the_reason_and_the_sweep_goes_on(local_slurm: dict[str, str],
                                                                                     built_images: dict[str, Path],
                                                                                     tmp_path: Path) -> None:
    exp, store = _setup(tmp_path, built_images, runs=2, tasks=2, steps=800)
    proc = _start(exp, store)
    try:
        _wait(lambda: len(_lmp_ranks(local_slurm)) == 2, 300, "the first run's two ranks")
        os.kill(_lmp_ranks(local_slurm)[0], signal.SIGKILL)
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out  # a run failed in the app is a result
    runs = _runs(store)
    assert sorted(status for status, _, _ in runs.values()) == ["failed", "ok"], runs
    with closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as db:
        reason, exit_code = db.execute("SELECT reason, exit_code FROM runs WHERE status = 'failed'").fetchone()
    assert reason in ("killed", "mpi") and exit_code != 0, (reason, exit_code)
    assert not _jobs(local_slurm)
    again = planner("sweep", "-e", str(exp), "--cluster", "local-slurm", store=store)
    assert again.returncode == 0 and "0 runs to do" in again.stdout, again.stdout
