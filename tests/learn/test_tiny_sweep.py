"""`fit` and `recommend` on the store of a real sweep: the tiny experiment run with LAMMPS and MPI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.edges.store import Store
from tests.conftest import TINY, planner
from tests.learn.conftest import METRIC, copy_store

pytestmark = pytest.mark.lammps


def test_fit_and_recommend_on_a_real_tiny_sweep(tiny_sweep: Path, tmp_path: Path) -> None:
    store = copy_store(tiny_sweep, tmp_path)
    with Store(store) as handle:
        records = handle.records()
    fitted = planner("fit", "--store", str(store), "--json")
    assert fitted.returncode == 0, fitted.stderr
    report = json.loads(fitted.stdout)
    assert report["runs"] == len(records) == 18  # 3 workloads x 3 variants x 2 launches
    assert report["foms"][METRIC]["runs"] == sum(r.status == "ok" and METRIC in r.foms for r in records)
    for workload in ("lj", "chain", "reaxff"):
        done = planner("recommend", "lammps", workload, "--cluster", "local", "--top", "10", "--json",
                       "-e", str(TINY), "--store", str(store))
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert not any("fitted one now" in note for note in result["notes"])
        # what the store measured, computed here from its records: one run per point in this sweep
        measured = {(r.variant, json.dumps({k: v for k, v in r.options.items() if not k.startswith("param.")},
                                           sort_keys=True)): r for r in records if r.workload == workload}
        ran = {key: r.foms[METRIC] for key, r in measured.items() if r.status == "ok"}
        rows = result["recommendations"]
        assert [(row["variant"], json.dumps(row["options"], sort_keys=True)) for row in rows] == \
            sorted(ran, key=lambda key: -ran[key]), workload
        assert [row["measured"]["median"] for row in rows] == sorted(ran.values(), reverse=True)
        assert all(row["source"] == "measured" and "mpiexec" in row["command"] for row in rows)
        failed = {(item["variant"], json.dumps(item["options"], sort_keys=True)) for item in result["excluded"]
                  if item["by"] == "measured"}
        assert failed == set(measured) - set(ran)
