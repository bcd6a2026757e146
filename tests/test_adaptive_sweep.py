"""`sweep --adaptive` with real LAMMPS and MPI on the local cluster: the tiny experiment's lj chosen run by
run with the other workloads already stored, interrupted with Ctrl-C and resumed from its stored decisions;
and the replay benchmark on the store of a real sweep."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from planner.cli import main
from planner.edges.store import Store
from tests.conftest import REPO, TINY
from tests.learn.conftest import copy_store
from tests.test_sweep_local import _processes_in, _wait_for

pytestmark = pytest.mark.lammps

ADAPTIVE = ("sweep", "-e", str(TINY), "--workload", "lj", "--repeats", "2", "--adaptive", "--budget", "4")


def _runs(store: Path, **only: str) -> list:
    with Store(store) as handle:
        return handle.records(**only)


def _decided(store: Path) -> list[str]:
    path = Path(str(store.resolve()) + ".adaptive")
    return [entry["run"] for entry in map(json.loads, path.read_text().splitlines()) if "run" in entry]


def test_an_adaptive_sweep_runs_its_budget_and_resumes_its_decisions_after_ctrl_c(
        tiny_sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = copy_store(tiny_sweep, tmp_path)
    assert main(["forget", "--workload", "lj", "--yes", "--store", str(store)]) == 0
    others = len(_runs(store))
    capsys.readouterr()
    first = subprocess.Popen([sys.executable, "-m", "planner", *ADAPTIVE, "--store", str(store)], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    decisions = Path(str(store.resolve()) + ".adaptive")
    _wait_for(lambda: decisions.exists() and '"run"' in decisions.read_text())
    first.send_signal(signal.SIGINT)
    out, _ = first.communicate(timeout=120)
    assert first.returncode == 130, out
    assert "prior: the model fitted on" in out and "batch 1 lj" in out
    assert not _processes_in(tmp_path / "planner.sqlite.runs")
    kept = len(_runs(store, workload="lj"))
    decided_before = _decided(store)
    assert kept < 4 and decided_before

    assert main([*ADAPTIVE, "--store", str(store)]) == 0
    out = capsys.readouterr().out
    # the budget counts what the interrupted sweep spent; its decided runs are done, none twice
    assert f"{kept} spent before" in out
    runs = _runs(store, workload="lj")
    assert 1 <= len(runs) <= 4 and len({r.id for r in runs}) == len(runs)
    assert set(decided_before) <= {r.id for r in runs}
    assert {r.id for r in runs} == set(_decided(store))
    assert all(r.status == "ok" and r.foms["timesteps_per_s"] > 0 for r in runs)
    assert "lj: best lammps-" in out and "chance an unmeasured point beats it by 5% or more" in out
    assert "an exhaustive sweep would still run" in out and "refit(s)" in out
    assert len(_runs(store)) == others + len(runs)

    # asked again, it has nothing left to do and says why
    assert main([*ADAPTIVE, "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "stopped: " in out and len(_runs(store, workload="lj")) == len(runs)


def test_replay_on_the_store_of_a_real_sweep(tiny_sweep: Path) -> None:
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "adaptive.py"), "--store", str(tiny_sweep),
                           "--group-by", "workload", "--budget", "0.5", "--json"], cwd=REPO, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["groups"] == 3 and out["metric"] == "timesteps_per_s"
    for row in out["per_group"]:
        assert row["candidates"] == 6 and row["runs"] == 6 and row["runs_used"] <= 3
