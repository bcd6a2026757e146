"""`planner fit`: models fitted on the store, cross-validated error reported, saved with versions and hash."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

from planner.edges.store import Store
from tests.conftest import planner


def test_fit_reports_cross_validated_error_and_saves_versioned_models(local_store: Path) -> None:
    done = planner("fit", "--store", str(local_store))
    assert done.returncode == 0, done.stderr
    assert "fitted on 60 runs (30 points" in done.stdout
    assert "timesteps_per_s (log scale): 5-fold grouped CV on 60 runs: median error x" in done.stdout
    assert "every stored run succeeded: no classifier" in done.stdout
    directory = local_store.parent / "models" / local_store.name
    meta = json.loads((directory / "meta.json").read_text())
    assert meta["versions"]["scikit-learn"] == version("scikit-learn")
    with Store(local_store) as store:
        assert meta["changes"] == store.changes()
    assert (directory / "models.joblib").stat().st_size > 1000
    as_json = json.loads(planner("fit", "--store", str(local_store), "--json").stdout)
    cv = as_json["foms"]["timesteps_per_s"]
    assert as_json["runs"] == 60 and cv["cv_runs"] == 60
    # the ground truth is a variant factor (x0.6 .. x1) times a suffix factor: learnt from the other points
    # to within ~8% (the reaxff-only OpenMP gain is what a held-out point cannot show), where a model
    # blind to the attributes is off by ~25%; repeats differ by 1%, so the error is never 0
    assert 0.01 < cv["mae_log"] < 0.15 and cv["median_factor"] < 1.12


def test_fit_learns_failures_when_there_are_some(synthetic_store: Path) -> None:
    done = planner("fit", "--store", str(synthetic_store), "--json")
    assert done.returncode == 0, done.stderr
    success = json.loads(done.stdout)["success"]
    assert success["failed"] > 0 and success["balanced_accuracy"] > 0.9


def test_fit_on_an_empty_or_missing_store_says_to_sweep_or_import(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite"
    Store(empty).close()
    for store in (empty, tmp_path / "missing.sqlite"):
        done = planner("fit", "--store", str(store))
        assert done.returncode == 2
        assert "sweep" in done.stderr and "import" in done.stderr and "first" in done.stderr


def test_fit_refuses_a_metric_nothing_measured(local_store: Path) -> None:
    done = planner("fit", "--store", str(local_store), "--metric", "flops")
    assert done.returncode == 2
    assert "no stored run measured 'flops'; measured: timesteps_per_s" in done.stderr
