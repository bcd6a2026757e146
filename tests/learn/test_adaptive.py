"""`sweep --adaptive`: bad input, the dry run's first batch with and without a prior, the loop's choices and
stopping rule, and the replay benchmark on a small synthetic store and on the real HPCG study.

The sweeps that run LAMMPS (resumed after Ctrl-C) are in tests/test_adaptive_sweep.py.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from planner.cli import main
from planner.edges.store import Store
from planner.learn import acquisition
from planner.learn.columns import Choice, Context
from tests.conftest import REPO, planner
from tests.learn.conftest import EXPERIMENT, best_local, records_from_plan

HPCG = REPO / ".." / "shared" / "data" / "hpcg-dev.csv"


@pytest.fixture
def without_lj(tmp_path: Path) -> Path:
    """The default experiment's local runs (ground truth FOMs) of every workload but lj."""
    path = tmp_path / "planner.sqlite"
    with Store(path) as store:
        store.add_many(r for r in records_from_plan("local") if r.workload != "lj")
    return path


def _exit_code(argv: list[str]) -> int:
    """main()'s exit code, argparse's refusals (SystemExit) included."""
    try:
        return main(argv)
    except SystemExit as stop:
        return int(stop.code or 0)


@pytest.mark.parametrize(("budget", "says"), [
    ("0", "'0' is neither a number of runs (at least 1) nor a share such as 25%"),
    ("150%", "'150%' is not a share of the plan's runs above 0% and at most 100%"),
    ("abc", "'abc' is neither a number of runs (at least 1) nor a share such as 25%"),
    ("0%", "'0%' is not a share of the plan's runs above 0% and at most 100%"),
    ("61", "--budget: 61 runs is more than the 60 runs of the plan"),
])
def test_a_bad_budget_is_one_line_and_exit_2(budget: str, says: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "planner.sqlite"
    assert _exit_code(["sweep", "-e", str(EXPERIMENT), "--adaptive", f"--budget={budget}", "--dry-run",
                       "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and says in err and err.count("\n") == 1, err
    assert not store.exists()


def test_budget_without_adaptive_and_adaptive_with_retry_are_refused(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "planner.sqlite"
    assert main(["sweep", "-e", str(EXPERIMENT), "--budget", "5", "--store", str(store)]) == 2
    assert capsys.readouterr().err == "error: --budget: sets how many runs an adaptive sweep may do: add --adaptive\n"
    assert main(["sweep", "-e", str(EXPERIMENT), "--adaptive", "--retry-failed", "--store", str(store)]) == 2
    assert "use one or the other" in capsys.readouterr().err
    assert not store.exists()


def test_an_unknown_cluster_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "-e", str(EXPERIMENT), "--adaptive", "--cluster", "nowhere", "--dry-run",
                 "--store", str(tmp_path / "s.sqlite")]) == 2
    assert capsys.readouterr().err == \
        "error: --cluster: unknown cluster 'nowhere'; known: local, local-slurm, eks-arm64, eks-amd64\n"


def test_without_a_prior_the_first_batch_is_one_point_per_variant(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "planner.sqlite"  # nothing stored: no model can be fitted
    assert main(["sweep", "-e", str(EXPERIMENT), "--adaptive", "--dry-run", "--json", "--store", str(store)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["prior"].startswith("no prior") and "one point per variant" in out["prior"]
    assert out["budget"] == 15 and out["plan_runs"] == 60  # 25% by default
    picked = [(row["workload"], row["variant"]) for row in out["first_batch"]]
    workloads = ("lj", "eam", "chain", "rhodo", "reaxff")
    variants = ("lammps-2025-mpich", "lammps-2025-impi", "lammps-2023-mpich")
    assert sorted(picked) == sorted((w, v) for w in workloads for v in variants)
    assert all("mpiexec" in row["command"] for row in out["first_batch"])
    assert not store.exists()


def test_with_other_workloads_stored_it_starts_where_the_model_points(without_lj: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "-e", str(EXPERIMENT), "--adaptive", "--workload", "lj", "--budget", "50%", "--dry-run",
                 "--json", "--store", str(without_lj)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["budget"] == 6 and out["plan_runs"] == 12 and out["spent"] == 0
    assert out["prior"].startswith("prior: the model fitted on 48 stored runs outside this selection")
    variant, suffix = best_local("lj")
    assert [(row["variant"], row["options"].get("suffix", "none"), row["repeat"]) for row in out["first_batch"]] == \
        [(variant, suffix, 0)]
    assert out["first_batch"][0]["why"].startswith("expected gain +")
    # a dry run writes nothing: no run, no decision
    with Store(without_lj) as store:
        assert store.count() == 48
    assert not Path(str(without_lj.resolve()) + ".adaptive").exists()


# ------------------------------------------------------------------------------------------- the loop


def _points(truth: list[float], prior: list[float], labels: list[tuple[str, ...]], repeats: int = 2) -> list[
        acquisition.Point]:
    context = Context("c", "app", "w", "{}")
    return [acquisition.Point(context, Choice("app", f"v{i}", "{}"), labels[i], prior[i], runs_left=repeats)
            for i in range(len(truth))]


def _run(loop: acquisition.Adaptive, truth: list[float], noise: float, seed: int = 0) -> list[int]:
    rng = np.random.default_rng(seed)
    order = []
    while decisions := loop.next_batch():
        for decision in decisions:
            order.append(decision.point)
            loop.observe(decision.point, truth[decision.point] + rng.normal(0, noise))
    return order


def test_a_good_prior_finds_the_best_first_and_stops_before_the_budget() -> None:
    truth = [0.0, -0.3, -0.35, -0.5, -0.6, -0.7, -0.8, -0.9]
    labels = [(f"t{i // 2}", f"o{i % 2}") for i in range(len(truth))]
    loop = acquisition.Adaptive(_points(truth, truth, labels), budget=12, batch=1, noise=0.02, spread=0.05,
                             informed=True)
    order = _run(loop, truth, 0.02)
    assert order[0] == 0
    assert loop.stopped == "confident" and len(order) < 12
    outcome = loop.outcomes()[0]
    assert outcome.best is loop.points[0] and outcome.chance < acquisition.CHANCE


def test_a_wrong_prior_is_overcome_by_what_the_runs_show() -> None:
    # the prior puts v0 first; it is in fact 30% slower than v1, which the prior puts second
    prior = [0.0, -0.02, -0.04, -0.06, -0.08, -0.1, -0.12, -0.14]
    truth = [-0.3, *prior[1:]]
    labels = [("a", "x"), ("a", "y"), ("b", "x"), ("b", "y"), ("c", "x"), ("c", "y"), ("d", "x"), ("d", "y")]
    loop = acquisition.Adaptive(_points(truth, prior, labels, repeats=1), budget=8, batch=1, noise=0.02, spread=0.05,
                             informed=True)
    order = _run(loop, truth, 0.02)
    best = loop.outcomes()[0].best
    assert best is not None and best.choice.variant == "v1"
    assert len(order) > 2  # the surprise widened what the loop believes: it went on looking


def test_a_point_is_what_the_median_of_its_runs_says_not_a_slow_first_run() -> None:
    # v0's first run was 35% slow (a warm-up, a burst of load), its other two the fastest of all; v1 ran
    # steadily 5% slower. The median of each point's runs (what `summary` and `recommend` report) says v0.
    context = Context("c", "app", "w", "{}")
    points = [acquisition.Point(context, Choice("app", f"v{i}", "{}"), (f"v{i}",), 0.0, runs_left=0, values=values)
              for i, values in enumerate([[-0.3, 0.0, 0.0], [-0.05, -0.05, -0.05], [-0.2, -0.2, -0.2]])]
    loop = acquisition.Adaptive(points, budget=9, batch=1, noise=0.05, spread=0.1, informed=True, spent=9)
    best = loop.outcomes()[0].best
    assert best is not None and best.choice.variant == "v0"


def test_a_noisy_context_runs_a_near_tied_contender_again_instead_of_stopping() -> None:
    # nothing is left unmeasured; v0 looks best after three runs, v1 ran once, 2% behind it, and runs
    # here are noisy (15%): one run cannot say whether v1 is in fact 5% better. The loop runs it again.
    context = Context("c", "app", "w", "{}")

    def loop(noise: float) -> acquisition.Adaptive:
        points = [acquisition.Point(context, Choice("app", "v0", "{}"), ("v0",), 0.0, runs_left=1, values=[0.0] * 3),
                  acquisition.Point(context, Choice("app", "v1", "{}"), ("v1",), 0.0, runs_left=2, values=[-0.02])]
        return acquisition.Adaptive(points, budget=10, batch=1, noise=noise, spread=0.1, informed=True, spent=4)

    noisy = loop(0.15)
    belief = noisy.belief(context)
    assert belief.best == 0 and not belief.chance  # no unmeasured point could beat it
    assert belief.contest[1] > acquisition.CHANCE and not belief.confident
    assert [d.point for d in noisy.next_batch()] == [1] and noisy.stopped is None
    # where runs repeat within 1%, the same single run settles it: the loop stops
    quiet = loop(0.01)
    assert not quiet.next_batch() and quiet.stopped == "confident"


def test_the_budget_counts_every_run_repeats_included() -> None:
    # 3 variants x 3 launch options, noisy runs, no prior
    truth = [0.0, -0.01, -0.02, -0.03, -0.04, -0.05, -0.06, -0.07, -0.08]
    context = Context("c", "app", "w", "{}")
    points = [acquisition.Point(context, Choice("app", f"v{i % 3}", f'{{"o": {i // 3}}}'), (f"v{i % 3}", f"o{i // 3}"),
                             0.0, runs_left=5) for i in range(9)]
    loop = acquisition.Adaptive(points, budget=7, batch=3, noise=0.3, spread=0.3, informed=False)
    order = _run(loop, truth, 0.3)
    assert len(order) == 7 and loop.stopped == "budget" and loop.spent == 7
    assert order[:3] == [0, 1, 2]  # no prior: one point per variant first
    assert sum(p.runs_left for p in loop.points) == 45 - 7


def test_the_kernel_is_a_correlation() -> None:
    labels = [("a", "x", "same"), ("a", "y", "same"), ("b", "x", "same"), ("b", "y", "same")]
    k = acquisition.kernel(labels)
    assert np.allclose(np.diag(k), 1.0) and np.allclose(k, k.T)
    assert np.linalg.eigvalsh(k).min() > 0
    # half its own, half shared by the two groups that vary (the constant one counts for nothing)
    assert math.isclose(k[0, 1], 0.25) and math.isclose(k[0, 3], 0.0)


@pytest.mark.parametrize(("text", "runs"), [("25%", 3), ("100%", 12), ("1", 1), ("12", 12), ("10%", 2)])
def test_a_budget_is_runs_or_a_share_of_the_plan(text: str, runs: int) -> None:
    assert acquisition.Budget.parse(text).of(12) == runs


# ------------------------------------------------------------------------------------------- replay


def _benchmark(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "benchmarks" / "adaptive.py"), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL, check=False)


def _replay(store: Path, *args: str) -> dict:
    done = _benchmark("--store", str(store), *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_replay_prints_the_issue_s_keys_per_group_and_for_the_baselines(synthetic_store: Path) -> None:
    out = _replay(synthetic_store, "--group-by", "cluster", "--budget", "0.25")
    keys = {"groups", "budget", "within_5pct_at_budget", "median_fraction_to_5pct", "per_group", "baselines"}
    assert keys <= set(out) and out["budget"] == 0.25 and out["groups"] == len(out["per_group"]) == 8
    for row in out["per_group"]:
        assert {"group", "candidates", "runs_to_5pct", "regret_at_budget"} <= set(row)
        assert row["runs_used"] <= math.ceil(0.25 * row["runs"])
        assert row["runs_to_5pct"] is None or 1 <= row["runs_to_5pct"] <= row["runs_used"]
        assert row["regret_at_budget"] is None or row["regret_at_budget"] >= 1.0
    assert set(out["baselines"]) == {"random", "nearest_cluster", "family_mean"}
    for baseline in out["baselines"].values():
        assert {"within_5pct_at_budget", "median_fraction_to_5pct", "per_group"} <= set(baseline)


def test_replay_of_a_store_with_nothing_to_rank_says_so(tmp_path: Path) -> None:
    done = _benchmark("--store", str(tmp_path / "none.sqlite"))
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "Traceback" not in done.stderr


@pytest.mark.skipif(not HPCG.is_file(), reason="the shared real data (../shared/data/hpcg-dev.csv) is not here")
def test_on_the_hpcg_study_a_quarter_of_the_runs_beats_every_baseline_order(tmp_path: Path) -> None:
    store = tmp_path / "hpcg.sqlite"
    assert planner("import", str(HPCG), "--store", str(store)).returncode == 0
    out = _replay(store, "--group-by", "cluster", "--budget", "0.25")
    assert out["groups"] == 14
    # the issue's target: 90%; measured 93% (13 of 14): docs/learning.md
    assert out["within_5pct_at_budget"] >= 0.9
    for name, baseline in out["baselines"].items():
        assert out["within_5pct_at_budget"] > baseline["within_5pct_at_budget"], name
        assert out["mean_regret_at_budget"] < baseline["mean_regret_at_budget"], name


