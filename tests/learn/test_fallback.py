"""A model that ranks worse than a simple rule on held-out clusters is not used: `fit` checks it against
family_mean, nearest_cluster and most_often_best and saves the rule to rank with, and `recommend` (in
another process, from the saved table) ranks by that rule and says so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from planner.cli import main
from planner.edges import datasets
from planner.edges.store import Store
from planner.learn import baselines, ranker, validation
from planner.learn.catalog import Catalog
from planner.learn.dataset import Choice, Context, canonical
from tests.conftest import planner

HELD = "c00-haswell"


class Blind:
    """A ranking model that learnt nothing: the same score for every point (a model that cannot rank)."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> Blind:
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.zeros(len(X))


@pytest.fixture
def partial_store(tmp_path: Path, synthetic: Any) -> Path:
    """The synthetic study without reaxff on one cluster: a context nothing was measured in."""
    csv_path = tmp_path / "all.csv"
    synthetic.write_csv(csv_path, clusters=8, variants=24, repeats=1, seed=3)
    lines = csv_path.read_text().splitlines(keepends=True)
    (tmp_path / "partial.csv").write_text("".join([lines[0], *(line for line in lines[1:]
                                                                  if not line.startswith(f"{HELD},lammps,reaxff,"))]))
    store = tmp_path / "planner.sqlite"
    assert planner("import", str(tmp_path / "partial.csv"), "--store", str(store)).returncode == 0
    return store


def test_a_model_that_cannot_rank_falls_back_to_the_best_rule(partial_store: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(ranker, "estimator", lambda n: Blind())
    assert main(["fit", "--store", str(partial_store), "--json"]) == 0
    check = json.loads(capsys.readouterr().out)["foms"]["timesteps_per_s"]["ranking"]
    assert check["held_out"] == "cluster" and check["contexts"] >= 8
    rule = check["ranked_by"]
    assert rule in ranker.RULES
    assert check["mean_regret"][rule] == min(check["mean_regret"].values()) < check["mean_regret"]["model"]

    # recommend runs in its own process, from the saved table, without the blind model
    done = planner("recommend", "lammps", "reaxff", "--cluster", HELD, "--top", "100", "--json",
                   "--store", str(partial_store))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert any(note.startswith(f"predicted candidates are ranked by the simple rule {rule}, not the model")
               for note in result["notes"])
    rows = result["recommendations"]
    assert rows and all(row["source"] == "predicted" for row in rows)

    # the first row is in the rule's first tier among what was ranked, as planner.learn.baselines ranks
    with Store(partial_store) as store:
        runs = datasets.read(store.db, ["timesteps_per_s"])
    catalog = Catalog().with_stored(runs.cluster_attrs, runs.variant_attrs)
    by_context: dict[int, list[Any]] = {}
    for (c, k), measured in runs.measured("timesteps_per_s").items():
        by_context.setdefault(c, []).append((runs.choices[k], measured))
    seen = baselines.history([(runs.contexts[c], catalog.cluster_attrs(runs.contexts[c].cluster), items)
                              for c, items in by_context.items()], 1.0)
    context = Context(HELD, "lammps", "reaxff", canonical(result["params"][HELD]))
    choices = [Choice("lammps", row["variant"], canonical(row["options"])) for row in rows]
    tiers = baselines.rank(rule, seen, context, catalog.cluster_attrs(HELD), choices, list(range(len(choices))),
                           lambda i: {})
    assert 0 in tiers[0], (rows[0]["variant"], [choices[i].variant for i in tiers[0]])


def test_a_rule_replaces_the_model_only_when_better_beyond_chance() -> None:
    """Picking the best of several scorers on a dozen contexts favours luck: a rule that wins by a hair, or
    big in one context and loses in others, does not replace the model; one better nearly everywhere does."""
    target = np.array([0.0, -0.2, -0.4] * 12)  # 12 contexts of 3 points, the first the best
    point_ctx = np.repeat(np.arange(12), 3)

    def scorers(model: np.ndarray, rule: np.ndarray) -> validation.ScoreFold:
        return lambda train: {"model": (model, model), "family_mean": (rule, rule),
                              "nearest_cluster": (-target, -target), "most_often_best": (-target, -target)}

    good = target.copy()
    worst_first = -target
    # the model picks the best in 11 contexts of 12, the worst in one; the rule always the best
    model = np.where(point_ctx == 0, worst_first, good)
    lucky = validation.ranking(target, point_ctx, point_ctx, "context", scorers(model, good))
    assert lucky is not None and lucky.mean_regret["family_mean"] < lucky.mean_regret["model"]
    assert lucky.ranked_by == "model"
    # the model picks the worst everywhere but in one context: the rule is better beyond chance
    model = np.where(point_ctx == 0, good, worst_first)
    clear = validation.ranking(target, point_ctx, point_ctx, "context", scorers(model, good))
    assert clear is not None and clear.ranked_by == "family_mean"
