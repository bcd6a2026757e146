"""Regret as a user lives it, and the rules-aware baselines. Pure."""

from __future__ import annotations

import math

import pytest

from planner.learn import baselines
from planner.learn.columns import Choice, Context, Measured


def measured(*values: float | None) -> Measured:
    """One point: a value per run, None for a failed run."""
    m = Measured(runs=len(values))
    for value in values:
        if value is None:
            m.reasons["mpi"] = m.reasons.get("mpi", 0) + 1
        else:
            m.ok += 1
            m.values.append(value)
    return m


def test_a_failed_pick_scores_as_the_next_success_down_the_ranking() -> None:
    values = [None, 5.0, 10.0, 8.0]  # candidate 0 failed there
    kinds = ["failed", "failed", "failed", "failed"]
    pick = baselines.score([[0], [3], [2], [1]], values, kinds, 1.0)
    assert pick.failed == 1.0 and pick.incompatible == 0.0
    assert pick.regret == pytest.approx(10.0 / 8.0)  # what the user runs after the failure
    best_first = baselines.score([[2], [0]], values, kinds, 1.0)
    assert best_first.regret == 1.0 and best_first.top1 == 1.0 and best_first.failed == 0.0
    # a minimized metric: regret = pick / best
    assert baselines.score([[1]], [None, 5.0, 10.0, 8.0], kinds, -1.0).regret == 1.0
    assert baselines.score([[2]], [None, 5.0, 10.0, 8.0], kinds, -1.0).regret == pytest.approx(2.0)
    # a tier is a uniform pick: the expectation over its successes
    assert baselines.score([[1, 2]], values, kinds, 1.0).regret == pytest.approx((2.0 + 1.0) / 2)
    incompatible = baselines.score([[0], [2]], values, ["incompatible"] * 4, 1.0)
    assert incompatible.incompatible == 1.0 and incompatible.failed == 0.0 and incompatible.regret == 1.0


def test_a_point_that_failed_in_most_of_its_runs_is_a_failure() -> None:
    assert baselines.outcome(measured(9.0, None, None)) is None
    assert baselines.outcome(measured(9.0, 7.0, None)) == 8.0
    assert baselines.outcome(measured(None)) is None


def test_family_and_nearest_cluster_learn_from_the_right_clusters() -> None:
    fast, slow = Choice("hpcg", "fast", "{}"), Choice("hpcg", "slow", "{}")
    clusters = {"zen3-a": "zen3", "zen2-b": "zen2", "icelake-c": "icelake", "arm-d": "neoverse_n1"}
    # on the zen2 cluster (nearest to zen4) `slow` won; elsewhere `fast` did
    wins = {"zen3-a": fast, "zen2-b": slow, "icelake-c": fast, "arm-d": fast}
    training = []
    for name, micro in clusters.items():
        winner = wins[name]
        items = [(winner, measured(10.0)), (slow if winner is fast else fast, measured(5.0))]
        training.append((Context(name, "hpcg", "default", "{}"), {"microarchitecture": micro}, items))
    training[0] = (training[0][0], training[0][1], [(fast, measured(10.0)), (slow, measured(9.0))])
    seen = baselines.history(training, 1.0)
    held_out, host = Context("new", "hpcg", "default", "{}"), {"microarchitecture": "zen4"}
    choices = [fast, slow]
    assert [item.context.cluster for item in baselines.nearest_contexts(seen, held_out, host)] == ["zen3-a"]
    assert {item.family for item in baselines.family_contexts(seen, held_out, host)} == {"x86_64"}

    def first(name: str) -> Choice:
        return choices[baselines.rank(name, seen, held_out, host, choices, [0, 1], lambda i: {})[0][0]]

    assert first("nearest_cluster") == fast and first("family_mean") == fast
    assert math.isclose(baselines.score(baselines.rank("rules_random", seen, held_out, host, choices, [0, 1],
                                                       lambda i: {}), [10.0, 5.0], ["failed"] * 2, 1.0).regret, 1.5)
