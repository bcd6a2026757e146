#!/usr/bin/env python3
"""Replay adaptive sweeps on a store that holds a complete matrix: how many runs find the best?

For each group (a cluster, or a workload) in turn, the group's runs are hidden and everything else
in the store is the prior: the model is fitted on it (`planner.learn.model.fit`, as `evaluate` does)
and the adaptive loop of `sweep --adaptive` (`planner.learn.acquisition`) runs on the group's
candidates (the points measured there that the hard rules allow); "running" a point reveals its
stored repeats in order. After each run the loop's pick (the measured point it believes best) is
scored against the whole matrix: regret = best median / median of the pick (the inverse for `min`
goals), averaged over the group's contexts.

Printed per group and overall: the runs needed until the pick is within 5% of the best
(`runs_to_5pct`), the regret at 10% of the runs and at the budget, and the same for two orders a
person could follow without the loop: `random` (the mean over 20 shuffles) and the order of the
best simple rules of the learning work (`nearest_cluster`, `family_mean`: best mean normalized FOM
on the most similar clusters / the same architecture family); they pick the best measured median.

    python benchmarks/adaptive.py --store STORE --group-by cluster --budget 0.25 [--metric M] [--json]

`--json` prints {"groups", "budget", "within_5pct_at_budget" (share of groups), "median_fraction_to_5pct",
"mean_regret_at_10pct", "mean_regret_at_budget", "per_group": [{"group", "candidates", "runs",
"runs_to_5pct", "regret_at_10pct", "regret_at_budget", "runs_used", "stopped"}], "baselines": {name: the
same summary keys and "per_group"}, "seconds": {"fit", "refit_mean", "refits"}}.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from planner.core.errors import InputError  # noqa: E402 - the benchmark runs from a checkout
from planner.core.metrics import Metric, resolve_metric  # noqa: E402
from planner.edges import column_reader  # noqa: E402
from planner.edges.store import Store  # noqa: E402
from planner.learn import acquisition, baselines, model  # noqa: E402
from planner.learn.catalog import Catalog  # noqa: E402
from planner.learn.columns import Choice, Context, Runs  # noqa: E402
from planner.learn.evaluate import group_key  # noqa: E402

WITHIN = 1.05
RULES = ("nearest_cluster", "family_mean")
SHUFFLES = 20


class Truth:
    """One context of a group: its candidates, their hidden runs in stored order, their full-matrix medians."""

    def __init__(self, context: Context, choices: list[Choice], hidden: list[list[float | None]]) -> None:
        self.context, self.choices, self.hidden = context, choices, hidden
        self.value = [_median(runs) for runs in hidden]
        self.best = max(v for v in self.value if v is not None)

    def regret(self, pick: int | None) -> float:
        if pick is None:
            return math.inf
        value = self.value[pick]
        if value is None:  # failed in most of its runs over the whole matrix
            ok = [v for v in self.hidden[pick] if v is not None]
            value = statistics.median(ok) if ok else None
        return math.inf if value is None else math.exp(self.best - value)


def _median(values: list[float | None]) -> float | None:
    """The median of a point's successful runs (sign x log FOM), None where it failed in most of them."""
    ok = [v for v in values if v is not None]
    return statistics.median(ok) if ok and len(ok) >= baselines.SUCCESS_SHARE * len(values) else None


def load(store: Path, metric_name: str | None) -> tuple[Runs, Metric, Catalog]:
    with Store(store, create=False) as handle:
        column_reader.require_runs(handle.db, store)
        measured = column_reader.metrics(handle.db)
        # a store of one figure of merit (imported data) needs no --metric
        metric = resolve_metric(metric_name or (measured[0] if len(measured) == 1 else None), None, measured)
        runs = column_reader.read(handle.db, [metric.name])
    return runs, metric, Catalog().with_stored(runs.cluster_attrs, runs.variant_attrs)


def group_truths(runs: Runs, catalog: Catalog, metric: Metric, group: str, group_by: str) -> list[Truth]:
    """The group's contexts with at least two candidates the hard rules allow and one success."""
    hidden: dict[int, dict[int, list[float | None]]] = defaultdict(lambda: defaultdict(list))
    value = runs.values[metric.name]
    for r in range(len(runs)):
        c = int(runs.ctx[r])
        if group_key(runs.contexts[c], group_by) == group:
            ok = runs.ok[r] and np.isfinite(value[r]) and value[r] > 0
            hidden[c][int(runs.choice[r])].append(metric.sign * math.log(value[r]) if ok else None)
    out = []
    for c, points in sorted(hidden.items(), key=lambda item: runs.contexts[item[0]]):
        context = runs.contexts[c]
        allowed = sorted((runs.choices[k], found) for k, found in points.items()
                         if catalog.rule(context, runs.choices[k]) is None)
        if len(allowed) >= 2 and any(_median(found) is not None for _, found in allowed):
            out.append(Truth(context, [k for k, _ in allowed], [found for _, found in allowed]))
    return out


class Trace:
    """The group's regret after each run."""

    def __init__(self, truths: list[Truth]) -> None:
        self.truths = truths
        self.total = sum(len(runs) for truth in truths for runs in truth.hidden)
        self.regrets: list[float] = []

    def add(self, picks: list[int | None]) -> None:
        self.regrets.append(float(np.mean([t.regret(p) for t, p in zip(self.truths, picks, strict=True)])))

    def at(self, fraction: float) -> float:
        runs = max(1, math.ceil(fraction * self.total))
        return self.regrets[min(runs, len(self.regrets)) - 1] if self.regrets else math.inf

    def runs_to(self, within: float = WITHIN) -> int | None:
        return next((i + 1 for i, r in enumerate(self.regrets) if r <= within + 1e-9), None)


def replay_adaptive(runs: Runs, catalog: Catalog, metric: Metric, truths: list[Truth], train: np.ndarray,
                    models: Any, budget: int) -> tuple[Trace, str | None, list[float]]:
    items = [acquisition.Item(t.context, choice, len(hidden)) for t in truths
             for choice, hidden in zip(t.choices, t.hidden, strict=True)]
    predictions = None
    if metric.name in models.foms:
        predictions = models.tabulate(catalog, [(i.context, i.choice) for i in items]).predictions(
            list(range(len(items))), metric.name)
    loop = acquisition.start(items, catalog, runs, train, metric, predictions, budget=budget,
                          batch=acquisition.batch_size(budget))
    where = [(t, j) for t in truths for j in range(len(t.choices))]
    first = {id(t): sum(len(u.choices) for u in truths[:n]) for n, t in enumerate(truths)}
    revealed = [0] * len(items)
    trace = Trace(truths)
    refits = []
    while True:
        started = time.perf_counter()
        decisions = loop.next_batch()
        refits.append(time.perf_counter() - started)
        if not decisions:
            break
        for decision in decisions:
            truth, j = where[decision.point]
            loop.observe(decision.point, truth.hidden[j][revealed[decision.point]])
            revealed[decision.point] += 1
            picks = []
            for t in truths:
                best = loop.belief(t.context).best
                picks.append(None if best is None else best - first[id(t)])
            trace.add(picks)
    return trace, loop.stopped, refits


def replay_order(truths: list[Truth], order: list[tuple[int, int]], budget: int) -> Trace:
    """Run points in this order (context, candidate), one run each, then their second runs, and so on; the
    pick is the best measured median."""
    trace = Trace(truths)
    seen: list[dict[int, list[float | None]]] = [defaultdict(list) for _ in truths]
    rounds = max(len(runs) for t in truths for runs in t.hidden)
    for repeat in range(rounds):
        for c, j in order:
            if repeat >= len(truths[c].hidden[j]) or len(trace.regrets) >= budget:
                continue
            seen[c][j].append(truths[c].hidden[j][repeat])
            picks = []
            for n in range(len(truths)):
                medians = {k: _median(values) for k, values in seen[n].items()}
                ok = [k for k, v in medians.items() if v is not None]
                picks.append(max(ok, key=lambda k: medians[k]) if ok else None)
            trace.add(picks)
    return trace


def rule_order(name: str, seen: list[baselines.Seen], catalog: Catalog, truths: list[Truth]) -> list[tuple[int, int]]:
    """The rule's ranking in each context, interleaved (first of each context, then second, ...)."""
    ranked = []
    for truth in truths:
        tiers = baselines.rank(name, seen, truth.context, catalog.cluster_attrs(truth.context.cluster),
                               truth.choices, list(range(len(truth.choices))), lambda i: {})
        ranked.append([j for tier in tiers for j in tier])
    return [(c, ranked[c][position]) for position in range(max(map(len, ranked)))
            for c in range(len(truths)) if position < len(ranked[c])]


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    fractions = sorted(r["runs_to_5pct"] / r["runs"] if r["runs_to_5pct"] is not None else math.inf for r in rows)
    median = statistics.median(fractions) if fractions else None
    return {"groups": len(rows),
            "within_5pct_at_budget": round(sum(_inf(r["regret_at_budget"]) <= WITHIN + 1e-9 for r in rows) / len(rows),
                                           4),
            "median_fraction_to_5pct": None if median is None or math.isinf(median) else round(median, 4),
            "mean_regret_at_10pct": _round(np.mean([_inf(r["regret_at_10pct"]) for r in rows])),
            "mean_regret_at_budget": _round(np.mean([_inf(r["regret_at_budget"]) for r in rows]))}


def _inf(regret: float | None) -> float:
    """A regret printed as null (no pick: nothing succeeded yet) counts as infinitely bad."""
    return math.inf if regret is None else regret


def _round(value: float) -> float | None:
    return None if not math.isfinite(value) else round(float(value), 4)


def _row(group: str, truths: list[Truth], trace: Trace, budget: float) -> dict[str, Any]:
    return {"group": group, "candidates": sum(len(t.choices) for t in truths), "runs": trace.total,
            "runs_to_5pct": trace.runs_to(), "regret_at_10pct": _round(trace.at(0.10)),
            "regret_at_budget": _round(trace.at(budget)), "runs_used": len(trace.regrets)}


def replay(store: Path, group_by: str, budget: float, metric_name: str | None = None,
           progress: bool = False) -> dict[str, Any]:
    runs, metric, catalog = load(store, metric_name)
    group_of_run = np.array([group_key(c, group_by) for c in runs.contexts], dtype=object)[runs.ctx]
    measured = runs.measured(metric.name)
    per_group, orders = [], {name: [] for name in ("random", *RULES)}
    fits, refits = [], []
    for group in sorted(set(group_of_run.tolist())):
        truths = group_truths(runs, catalog, metric, group, group_by)
        if not truths:
            continue
        train = group_of_run != group
        started = time.perf_counter()
        models, _ = model.fit(runs, catalog, [metric], mask=train, cv=False)
        fits.append(time.perf_counter() - started)
        total = sum(len(r) for t in truths for r in t.hidden)
        allowed = max(1, math.ceil(budget * total))
        trace, stopped, times = replay_adaptive(runs, catalog, metric, truths, train, models, allowed)
        refits += times
        per_group.append({**_row(group, truths, trace, budget), "stopped": stopped})
        seen = baselines.history(
            [(runs.contexts[c], catalog.cluster_attrs(runs.contexts[c].cluster),
              [(runs.choices[k], m) for (cc, k), m in measured.items() if cc == c])
             for c in {int(c) for c in runs.ctx[train]}], metric.sign)
        for name in RULES:
            orders[name].append(_row(group, truths, replay_order(truths, rule_order(name, seen, catalog, truths),
                                                                 allowed), budget))
        shuffled = []
        for seed in range(SHUFFLES):
            order = [(c, j) for c, t in enumerate(truths) for j in range(len(t.choices))]
            random.Random(seed).shuffle(order)
            shuffled.append(_row(group, truths, replay_order(truths, order, allowed), budget))
        orders["random"].append(_mean_row(shuffled))
        if progress:
            row = per_group[-1]
            print(f"{group}: {row['runs_used']} of {row['runs']} runs, within 5% after {row['runs_to_5pct']}, "
                  f"regret at the budget {row['regret_at_budget']} (fit {fits[-1]:.1f} s)", file=sys.stderr, flush=True)
    return {**summary(per_group), "budget": budget, "group_by": group_by, "metric": metric.name,
            "per_group": per_group,
            "baselines": {name: {**summary(rows), "per_group": rows} for name, rows in orders.items()},
            "seconds": {"fit": round(float(np.mean(fits)), 3) if fits else None,
                        "refit_mean": round(float(np.mean(refits)), 5) if refits else None,
                        "refits": len(refits)}}


def _mean_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The expected row of a random order: mean regrets, mean runs to 5% (None if a shuffle never got there)."""
    reached = [r["runs_to_5pct"] for r in rows]
    return {**rows[0], "runs_to_5pct": None if None in reached else round(statistics.mean(reached), 1),
            "regret_at_10pct": _round(np.mean([_inf(r["regret_at_10pct"]) for r in rows])),
            "regret_at_budget": _round(np.mean([_inf(r["regret_at_budget"]) for r in rows]))}


def text(result: dict[str, Any]) -> str:
    names = ["adaptive", *result["baselines"]]
    rows = {"adaptive": result["per_group"], **{n: b["per_group"] for n, b in result["baselines"].items()}}
    lines = [f"replay by {result['group_by']}, budget {result['budget']:.0%} of each group's runs, "
             f"{result['metric']}: runs to within 5% of the best (regret at 10% / at the budget)"]
    lines.append(f"{'group':24}{'points':>7}{'runs':>6}" + "".join(f"{n:>26}" for n in names))
    for i, row in enumerate(result["per_group"]):
        cells = []
        for name in names:
            r = rows[name][i]
            cells.append(f"{_fmt(r['runs_to_5pct'])} ({_fmt(r['regret_at_10pct'])}/{_fmt(r['regret_at_budget'])})")
        lines.append(f"{row['group'][:23]:24}{row['candidates']:>7}{row['runs']:>6}" + "".join(f"{c:>26}"
                                                                                              for c in cells))
    lines.append("")
    lines.append(f"{'':24}{'within 5% at budget':>22}{'median fraction to 5%':>24}{'regret at 10%':>15}"
                 f"{'regret at budget':>18}")
    for name in names:
        s = result if name == "adaptive" else result["baselines"][name]
        lines.append(f"{name:24}{s['within_5pct_at_budget']:>22.2%}{_fmt(s['median_fraction_to_5pct']):>24}"
                     f"{_fmt(s['mean_regret_at_10pct']):>15}{_fmt(s['mean_regret_at_budget']):>18}")
    seconds = result["seconds"]
    lines.append(f"model fit {seconds['fit']} s per group; {seconds['refits']} refits, "
                 f"{(seconds['refit_mean'] or 0) * 1000:.1f} ms each on average")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, required=True, help="a store holding a complete matrix")
    parser.add_argument("--group-by", choices=("cluster", "workload"), default="cluster")
    parser.add_argument("--budget", type=float, default=0.25, help="share of each group's runs (default 0.25)")
    parser.add_argument("--metric", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not 0 < args.budget <= 1:
        parser.error(f"--budget {args.budget} is not a share of the runs in (0, 1]")
    try:
        result = replay(args.store, args.group_by, args.budget, args.metric, progress=True)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else text(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
