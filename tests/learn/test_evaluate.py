"""`planner evaluate`: leave-one-group-out against baselines, honest (held-out data never reaches the model)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from planner.core.metrics import resolve_metric
from planner.edges import datasets
from planner.edges.store import Store
from planner.learn import dataset, evaluate, model
from planner.learn.catalog import Catalog
from tests.conftest import planner

KEYS = {"groups", "top1", "mean_regret", "max_regret", "incompatible_picks"}


def test_leave_one_cluster_out_prints_one_json_object_and_beats_the_baselines(synthetic_store: Path) -> None:
    done = planner("evaluate", "--group-by", "cluster", "--json", "--store", str(synthetic_store))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) >= KEYS
    assert set(result["baselines"]) == {"random", "arch_match", "most_often_best"}
    for baseline in result["baselines"].values():
        assert KEYS - {"groups"} <= set(baseline)
    assert result["groups"] == 8 and result["metric"] == "timesteps_per_s" and result["goal"] == "max"
    for baseline in result["baselines"].values():
        assert result["mean_regret"] < baseline["mean_regret"]
        assert result["incompatible_picks"] < baseline["incompatible_picks"]
    # the hard rules hold on clusters never seen: a failed pick (if any) is one only data could teach
    assert len(result["failed_picks"]) == result["incompatible_picks"]
    assert {pick["reason"] for pick in result["failed_picks"]} <= {"mpi"}
    assert 1.0 <= result["mean_regret"] <= result["max_regret"]


def test_the_held_out_group_never_reaches_the_model(synthetic_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[set[str]] = []
    real_fit = model.fit

    def spy(runs: dataset.Runs, catalog: Catalog, metrics: list[str], *, mask: np.ndarray | None = None,
            cv: bool = True) -> tuple[model.Models, model.FitReport]:
        assert mask is not None
        seen.append({runs.contexts[c].cluster for c in np.unique(runs.ctx[mask])})
        return real_fit(runs, catalog, metrics, mask=mask, cv=cv)

    monkeypatch.setattr(model, "fit", spy)
    with Store(synthetic_store) as store:
        runs = datasets.read(store.db, ["timesteps_per_s"])
        everything = set(datasets.distinct(store.db, "cluster"))
    result = evaluate.evaluate(runs, Catalog(), "cluster", resolve_metric(None, None, ["timesteps_per_s"]))
    held_out = [everything - trained for trained in seen]
    assert all(len(missing) == 1 for missing in held_out)
    assert sorted(m.pop() for m in held_out) == sorted(everything)
    assert list(result.per_group) == sorted(everything)


def test_leave_one_workload_out_on_a_local_store(local_store: Path) -> None:
    done = planner("evaluate", "--group-by", "workload", "--store", str(local_store))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("leave-one-workload-out over 5 workloads, 5 picks, timesteps_per_s (max):")
    model_row = next(line for line in done.stdout.splitlines() if line.startswith("model"))
    random_row = next(line for line in done.stdout.splitlines() if line.startswith("random"))
    assert float(model_row.split()[2]) < float(random_row.split()[2])  # mean regret


def test_one_group_is_not_enough(local_store: Path) -> None:
    done = planner("evaluate", "--group-by", "cluster", "--store", str(local_store))
    assert done.returncode == 2
    assert "needs measurements in at least 2 clusters" in done.stderr and "the store has 1" in done.stderr
