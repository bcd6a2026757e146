"""The goal reaches the model: a lower-is-better metric whose name says nothing of it (no `_time`, no
`_seconds` suffix) is ranked towards its minimum by `fit --goal min`, the ranking model and its priors,
`recommend` and `evaluate`. The same study given as a time per unit of work (min) and as its rate (max)
holds the same information, so every command must rank it the same way.

Before the Metric carried its goal everywhere, `fit` had no `--goal` and the ranking model took the
direction from the name: it learnt to *maximize* this time (the issue's `seconds_per_cg_iteration`)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import planner

HELD = "c00-haswell"
TIME = "seconds_per_cg_iteration"  # lower is better; `goal_of` reads it as a rate
RATE = "timesteps_per_s"


@pytest.fixture(scope="module")
def both_store(tmp_path_factory: pytest.TempPathFactory, synthetic: Any) -> Path:
    """The synthetic study (reaxff on one cluster left out: a context nothing was measured in) with each
    rate also stored as its inverse, a time per unit of work under a name that says nothing of its goal."""
    where = tmp_path_factory.mktemp("goal")
    source = where / "all.csv"
    synthetic.write_csv(source, clusters=8, variants=24, repeats=1, seed=3)
    with open(source, newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    metric, value = header.index("metric"), header.index("value")
    kept = []
    for row in body:
        if row[0] == HELD and row[2] == "reaxff":
            continue
        if row[metric] in ("", RATE):
            kept.append(row)
        if row[metric] == RATE:
            inverse = list(row)
            inverse[metric], inverse[value] = TIME, repr(1.0 / float(row[value]))
            kept.append(inverse)
    target = where / "both.csv"
    with open(target, "w", newline="") as handle:
        csv.writer(handle).writerows([header, *kept])
    store = where / "planner.sqlite"
    done = planner("import", str(target), "--store", str(store))
    assert done.returncode == 0, done.stderr
    return store


def _json(*args: str) -> dict[str, Any]:
    done = planner(*args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_fit_goal_min_ranks_a_time_per_unit_of_work_as_its_rate(both_store: Path) -> None:
    store = ["--store", str(both_store)]
    fitted = _json("fit", "--metric", TIME, "--goal", "min", "--json", *store)
    assert fitted["foms"][TIME]["goal"] == "min"
    # without --goal, recommend ranks towards the goal the model was fitted with
    by_time = _json("recommend", "lammps", "reaxff", "--cluster", HELD, "--metric", TIME, "--top", "12", "--json",
                    *store)
    assert by_time["goal"] == "min"
    assert not any(note.startswith("no model") or "fitted again" in note for note in by_time["notes"])
    by_rate = _json("recommend", "lammps", "reaxff", "--cluster", HELD, "--metric", RATE, "--top", "12", "--json",
                    *store)
    assert by_rate["goal"] == "max"
    rows = by_time["recommendations"]
    assert rows and all(row["source"] == "predicted" for row in rows)
    assert [(r["variant"], r["options"]) for r in rows] == \
        [(r["variant"], r["options"]) for r in by_rate["recommendations"]]
    # a predicted time is the inverse of the predicted rate, up to the models' own errors
    assert rows[0]["predicted"]["value"] < 1.0 < by_rate["recommendations"][0]["predicted"]["value"]


def test_recommend_goal_min_refits_a_model_fitted_towards_max(both_store: Path, tmp_path: Path) -> None:
    store = tmp_path / "copy.sqlite"
    store.write_bytes(both_store.read_bytes())
    _json("fit", "--metric", TIME, "--goal", "max", "--json", "--store", str(store))
    asked = _json("recommend", "lammps", "reaxff", "--cluster", HELD, "--metric", TIME, "--goal", "min",
                  "--json", "--store", str(store))
    assert asked["goal"] == "min"
    assert any(f"the model ranked {TIME} towards max, asked min: fitted again towards min" in note
               for note in asked["notes"])


def test_evaluate_goal_min_scores_the_time_as_the_rate(both_store: Path) -> None:
    store = ["--store", str(both_store)]
    by_time = _json("evaluate", "--group-by", "cluster", "--metric", TIME, "--goal", "min", "--seeds", "1", "--json",
                    *store)
    by_rate = _json("evaluate", "--group-by", "cluster", "--metric", RATE, "--seeds", "1", "--json", *store)
    assert by_time["goal"] == "min" and by_rate["goal"] == "max"
    assert by_time["mean_regret"] == pytest.approx(by_rate["mean_regret"], abs=1e-3)
    for name, row in by_rate["baselines"].items():
        assert by_time["baselines"][name]["mean_regret"] == pytest.approx(row["mean_regret"], abs=1e-3)
    # the model ranks towards the goal: no worse than a random allowed pick, unlike a model maximizing a time
    assert by_time["mean_regret"] < by_time["baselines"]["rules_random"]["mean_regret"]
