"""Sweeps on the local cluster with real LAMMPS and real MPI through ansible-runner: results stored,
resumed after kill -9 and Ctrl-C, failures stored with their reason without stopping the sweep."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from planner.cli import main
from planner.edges.store import Store
from planner.edges.watchdog import owned_by
from tests.conftest import REPO, TINY, planner

pytestmark = pytest.mark.lammps


def _count(store: Path) -> int:
    if not store.exists():
        return 0
    with sqlite3.connect(store) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def _start(store: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "planner", "sweep", "--store", str(store), *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)


def _wait_for(predicate, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


def _processes_in(directory: Path) -> list[int]:
    """PIDs whose working directory is inside `directory` (the runs of a store)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(Path(os.readlink(entry / "cwd"))).startswith(str(directory)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _long_experiment(tmp_path: Path, steps: int, timeout: int = 120) -> Path:
    """lj with many steps, 2 MPI ranks only, 2 repeats: two long runs in a row."""
    text = TINY.read_text().replace("parameters: {x: 1, y: 1, z: 1, steps: 20}",
                                    f"parameters: {{x: 1, y: 1, z: 1, steps: {steps}}}", 1)
    text = text.replace("timeout: 120", f"timeout: {timeout}").replace("repeats: 1", "repeats: 2")
    text = text.replace("- {tasks: [2, 1], threads: [1, 2], suffix: [none, omp]}", "- {tasks: [2]}")
    path = tmp_path / "long.yaml"
    path.write_text(text)
    return path


def test_tiny_sweep_stores_every_run_with_provenance(tiny_sweep: Path) -> None:
    with Store(tiny_sweep) as store:
        records = store.records()
    assert len(records) == 18  # 3 variants x 3 workloads x 2 launch options
    assert {r.status for r in records} == {"ok"}
    assert {r.variant for r in records} == {"lammps-2025-mpich", "lammps-2025-impi", "lammps-2023-mpich"}
    impi = next(r for r in records if r.variant == "lammps-2025-impi")
    assert impi.variant_attrs["mpi.implementation"] == "intel-mpi"
    assert impi.variant_attrs["lammps.version"] == "20250722"
    old = next(r for r in records if r.variant == "lammps-2023-mpich")
    assert old.variant_attrs["lammps.version"] == "20230802"
    for record in records:
        assert record.wall and record.wall > 0 and record.user_time is not None and record.maxrss_kb
        assert record.command and "mpiexec -n" in record.command and Path(record.log_path).is_file()
        assert record.cluster_attrs["cores_per_node"] >= 2 and record.host
        assert record.foms["mpi_tasks"] * record.foms["omp_threads"] == 2


def test_second_sweep_does_nothing_and_says_so(tiny_sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "-e", str(TINY), "--store", str(tiny_sweep)]) == 0
    assert "0 runs to do: all 18 runs of this plan are stored" in capsys.readouterr().out
    assert _count(tiny_sweep) == 18


def test_results_summarize_per_configuration(tiny_sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["results", "--json", "--store", str(tiny_sweep)]) == 0
    summaries = json.loads(capsys.readouterr().out)
    assert len(summaries) == 18
    assert all(s["runs"] == 1 and s["ok"] == 1 and s["median"]["timesteps_per_s"] > 0 for s in summaries)
    assert main(["results", "--csv", "--store", str(tiny_sweep)]) == 0
    csv_out = capsys.readouterr().out.splitlines()
    assert csv_out[0] == "cluster,app,workload,variant,options,runs,ok,metric,median,spread"
    assert any(",timesteps_per_s," in line for line in csv_out[1:])


def test_dry_run_lists_commands_and_runs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "planner.sqlite"
    assert main(["sweep", "-e", str(TINY), "--dry-run", "--json", "--store", str(store)]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert len(plan["runs"]) == 18 and not any(r["stored"] for r in plan["runs"])
    assert all("mpiexec -n" in r["command"] for r in plan["runs"])
    assert not store.exists()


def test_kill_9_mid_sweep_then_resume_keeps_everything_without_duplicates(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "planner.sqlite"
    first = _start(store, "-e", str(TINY))
    _wait_for(lambda: _count(store) >= 4)
    first.kill()
    first.wait()
    kept = _count(store)
    assert 4 <= kept < 18
    # the runs the dead planner owned stop by themselves: no LAMMPS left burning cores, and no
    # ansible-playbook left waiting for a reader of its events
    _wait_for(lambda: not _processes_in(tmp_path / "planner.sqlite.runs"), timeout=15)
    _wait_for(lambda: not owned_by(first.pid), timeout=20)
    assert main(["sweep", "-e", str(TINY), "--store", str(store)]) == 0
    assert f"of 18 runs to do on local ({kept}" in capsys.readouterr().out.replace("\n", " ")
    with Store(store) as s:
        ids = [r.id for r in s.records()]
    assert len(ids) == 18 == len(set(ids))
    assert len(list((tmp_path / "planner.sqlite.runs").iterdir())) == 18


def test_ctrl_c_stops_cleanly_and_the_next_sweep_resumes(tmp_path: Path) -> None:
    store = tmp_path / "planner.sqlite"
    first = _start(store, "-e", str(TINY))
    _wait_for(lambda: _count(store) >= 2)
    first.send_signal(signal.SIGINT)
    out, _ = first.communicate(timeout=60)
    assert first.returncode == 130, out
    assert "interrupted" in out and "run the same command again to resume" in out.replace("\n", " ")
    assert not _processes_in(tmp_path / "planner.sqlite.runs")
    kept = _count(store)
    assert 2 <= kept < 18
    assert main(["sweep", "-e", str(TINY), "--store", str(store)]) == 0
    assert _count(store) == 18


def test_a_killed_lammps_process_is_stored_as_killed_and_the_sweep_goes_on(tmp_path: Path) -> None:
    experiment = _long_experiment(tmp_path, steps=1500)
    store = tmp_path / "planner.sqlite"
    sweep = _start(store, "-e", str(experiment), "--workload", "lj", "--variant", "lammps-2025-mpich")
    runs = tmp_path / "planner.sqlite.runs"
    # killed while it runs its steps: killed during MPI_Init, a rank takes the process manager down with it,
    # and the log shows a PMI failure (hydra exits 255 and never names the signal)
    _wait_for(lambda: any("Setting up Verlet run" in log.read_text(errors="replace")
                          for log in runs.glob("*/output.log")))
    victim = next(pid for pid in _processes_in(runs) if _lmp(pid))
    os.kill(victim, signal.SIGKILL)
    out, _ = sweep.communicate(timeout=300)
    assert sweep.returncode == 0, out
    with Store(store) as s:
        records = s.records()
    # the killed repeat is stored as killed, and the sweep ran the other repeat to the end
    assert sorted((r.repeat, r.status, r.reason) for r in records) in (
        [(0, "failed", "killed"), (1, "ok", None)], [(0, "ok", None), (1, "failed", "killed")])
    ok = next(r for r in records if r.status == "ok")
    assert ok.foms["loop_time"] > 0 and ok.foms["mpi_tasks"] == 2


def test_a_run_over_its_timeout_is_stopped_and_stored_as_timeout(tmp_path: Path) -> None:
    experiment = _long_experiment(tmp_path, steps=200000, timeout=2)
    store = tmp_path / "planner.sqlite"
    # a real process: should the timeout not stop the run, `planner` gives up on it (and the test fails)
    done = planner("sweep", "-e", str(experiment), "--workload", "lj", "--variant", "lammps-2023-mpich",
                   store=store, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    with Store(store) as s:
        records = s.records()
    assert [(r.status, r.reason) for r in records] == [("failed", "timeout")] * 2
    for record in records:  # stopped mid-run: LAMMPS had started its steps and never reached its end
        log = Path(record.log_path).read_text()
        assert "Setting up Verlet run" in log and "Total wall time" not in log
    assert not _processes_in(tmp_path / "planner.sqlite.runs")


def test_another_sweep_on_the_same_store_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "planner.sqlite"
    first = _start(store, "-e", str(TINY))
    try:
        _wait_for(lambda: _count(store) >= 1)
        kept = _count(store)
        assert main(["sweep", "-e", str(TINY), "--store", str(store)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {store}: another sweep (pid {first.pid}) is running on this store"), err
        assert _count(store) >= kept  # the running sweep's results are untouched
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)


def _lmp(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/exe").resolve().name == "lmp"
    except OSError:
        return False
