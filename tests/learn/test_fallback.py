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
from planner.edges import column_reader
from planner.edges.store import Store
from planner.learn import baselines, regret_model, validation
from planner.learn.catalog import Catalog
from planner.learn.columns import Choice, Context, canonical
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
    monkeypatch.setattr(regret_model, "estimator", lambda n, seed=0: Blind())
    assert main(["fit", "--store", str(partial_store), "--json"]) == 0
    check = json.loads(capsys.readouterr().out)["foms"]["timesteps_per_s"]["ranking"]
    assert check["held_out"] == "cluster" and check["contexts"] >= 8
    rule = check["ranked_by"]
    assert rule in regret_model.RULES and rule == check["best_rule"]
    assert check["mean_regret"][rule] < check["mean_regret"]["model"]
    assert check["why"].startswith("the model was ") and rule in check["why"]

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
        runs = column_reader.read(store.db, ["timesteps_per_s"])
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


def test_the_model_ranks_only_where_it_beats_the_best_rule_beyond_chance() -> None:
    """The choice is symmetric: choosing the lower of two mean regrets on a dozen contexts favours luck
    whichever side it falls on. A model that wins by a hair, or big in one context and not elsewhere, does not
    replace the rule; one better nearly everywhere does. Likewise a rule replaces the default rule
    (`ranker.DEFAULT_RULE`) only when better than it beyond chance."""
    target = np.array([0.0, -0.2, -0.4] * 12)  # 12 contexts of 3 points, the first the best
    point_ctx = np.repeat(np.arange(12), 3)
    good, worst_first = target.copy(), -target
    middle = np.where(target == -0.2, 1.0, 0.0)  # always picks the second best (regret e^0.2)

    def scorers(model: np.ndarray, rules: dict[str, np.ndarray]) -> validation.ScoreFold:
        every = {"most_often_best": middle, "family_mean": middle, "nearest_cluster": middle, **rules}
        return lambda train: {"model": (model, model), **{name: (key, key) for name, key in every.items()}}

    # the model picks the best in one context of 12, the second best elsewhere, as the rules do: no better
    model = np.where(point_ctx == 0, good, middle)
    lucky = validation.ranking(target, point_ctx, point_ctx, "context", scorers(model, {}))
    assert lucky is not None and lucky.mean_regret["model"] < lucky.mean_regret[regret_model.DEFAULT_RULE]
    assert lucky.ranked_by == regret_model.DEFAULT_RULE == lucky.best_rule
    assert lucky.why.startswith(f"the model was no better than {regret_model.DEFAULT_RULE} beyond chance")
    # the model picks the best everywhere but in one context: better beyond chance, it ranks
    model = np.where(point_ctx == 0, worst_first, good)
    clear = validation.ranking(target, point_ctx, point_ctx, "context", scorers(model, {}))
    assert clear is not None and clear.ranked_by == "model" and clear.difference.better
    assert clear.why.startswith(f"the model beat the best simple rule, {regret_model.DEFAULT_RULE}, beyond chance")
    # a rule better than the default beyond chance is the best rule; the model, no better than it, does not rank
    rule_wins = validation.ranking(target, point_ctx, point_ctx, "context", scorers(model, {"family_mean": good}))
    assert rule_wins is not None and rule_wins.best_rule == "family_mean" == rule_wins.ranked_by
