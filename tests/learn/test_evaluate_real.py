"""`evaluate` on real data, asserting only what holds beyond chance: HPCG on 14 real clusters.

The file lives outside the repository (`../shared/data/hpcg-dev.csv`, read here, never copied in); the
tests are skipped, and say so, where that folder is absent.

Differences of 0.01 in mean regret between methods are within the noise of this data (run-to-run noise
~9%, one context per cluster), so no test asserts a margin: each asserts a paired bootstrap interval over
seeds and clusters. The ranking's design choices (the default rule, the level `fit` decides at, the one
learner) were made looking at the other 10 clusters; `CHECK` are the 4 kept apart to check them (each
still trained on the 13 others, as leave-one-cluster-out does). The same study is also scored as a time
per unit of work (`seconds_per_gflop`, the inverse of GFLOP/s, lower is better): it must rank the same.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from planner.learn import baselines
from tests.conftest import REPO, planner

HPCG = REPO / ".." / "shared" / "data" / "hpcg-dev.csv"
CHECK = ("c7a.12xlarge", "m6g.12xlarge", "t3a.2xlarge", "tioga25")
KEYS = {"picks", "top1", "mean_regret", "max_regret", "incompatible_picks", "failed_picks"}
INVERSE = "seconds_per_gflop"

pytestmark = [pytest.mark.skipif(not HPCG.is_file(),
                                 reason="the shared real data (../shared/data/hpcg-dev.csv) is not here"),
              # two evaluations of 4 held-out clusters x 3 seeds: ~1.5 min of CPU, much longer on a busy machine
              pytest.mark.timeout(3600)]


@pytest.fixture(scope="module")
def hpcg_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """hpcg-dev imported, with each GFLOP/s also stored as seconds per GFLOP."""
    where = tmp_path_factory.mktemp("hpcg")
    with open(HPCG, newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    metric, value, status = header.index("metric"), header.index("value"), header.index("status")
    both = [header]
    for row in rows[1:]:
        both.append(row)
        if row[status] == "ok":
            inverse = list(row)
            inverse[metric], inverse[value] = INVERSE, repr(1.0 / float(row[value]))
            both.append(inverse)
    path = where / "hpcg.csv"
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(both)
    store = where / "hpcg.sqlite"
    done = planner("import", str(path), "--store", str(store))
    assert done.returncode == 0, done.stderr
    return store


def _evaluate(store: Path, metric: str, goal: str) -> dict[str, Any]:
    held_out = [arg for cluster in CHECK for arg in ("--held-out", cluster)]
    done = planner("evaluate", "--group-by", "cluster", "--metric", metric, "--goal", goal, "--seeds", "3",
                   *held_out, "--json", "--store", str(store))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def both_goals(hpcg_store: Path) -> dict[str, dict[str, Any]]:
    return {"max": _evaluate(hpcg_store, "fom", "max"), "min": _evaluate(hpcg_store, INVERSE, "min")}


@pytest.mark.parametrize("goal", ["max", "min"])
def test_on_clusters_kept_apart_the_chosen_ranker_is_never_worse_than_the_best_rule_beyond_chance(
        both_goals: dict[str, dict[str, Any]], goal: str) -> None:
    model = both_goals[goal]["comparison"]["methods"]["model"]
    assert model["minus_best_rule"]["low"] <= 0, model


@pytest.mark.parametrize("goal", ["max", "min"])
def test_on_clusters_kept_apart_evaluate_reports_seeds_and_intervals_against_the_best_rule(
        both_goals: dict[str, dict[str, Any]], goal: str) -> None:
    result = both_goals[goal]
    assert result["goal"] == goal and result["groups"] == len(CHECK) and result["picks"] == len(CHECK)
    assert set(result["baselines"]) == set(baselines.NAMES)
    for row in [result, *result["baselines"].values(), *result["per_group"]]:
        assert set(row) >= KEYS
    comparison = result["comparison"]
    assert comparison["seeds"] == [0, 1, 2] and comparison["level"] == 0.9
    best = comparison["best_rule"]
    assert result["baselines"][best]["mean_regret"] == min(row["mean_regret"] for row in result["baselines"].values())
    model = comparison["methods"]["model"]
    difference = model["minus_best_rule"]
    assert difference["groups"] == len(CHECK) and difference["low"] <= difference["mean"] <= difference["high"]
    verdict = "better than" if difference["high"] < 0 else "worse than" if difference["low"] > 0 else "no better than"
    assert model["verdict"] == f"{verdict} {best}"
    assert set(comparison["per_group"]) == set(CHECK) and len(comparison["model_per_seed"]) == 3
    assert all(check["why"] for check in result["ranking_checks"]) and len(result["ranking_checks"]) == 3 * len(CHECK)
    # an imported native build measured incompatible there is left out by the rules, never picked
    assert not [pick for pick in result["failures"] if pick["variant"].startswith("native")]


def test_a_time_per_unit_of_work_ranks_as_its_rate(both_goals: dict[str, dict[str, Any]]) -> None:
    by_rate, by_time = both_goals["max"], both_goals["min"]
    assert by_time["mean_regret"] == pytest.approx(by_rate["mean_regret"], abs=1e-3)
    assert by_time["comparison"]["best_rule"] == by_rate["comparison"]["best_rule"]
    for name, row in by_rate["baselines"].items():
        assert by_time["baselines"][name]["mean_regret"] == pytest.approx(row["mean_regret"], abs=1e-3)
