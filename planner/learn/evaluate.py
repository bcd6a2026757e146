"""Leave-one-group-out evaluation of the recommendations, against three baselines.

For each group (a cluster, or a workload) the models are fitted on every run *outside* it, so none
of its measurements reach them. In each of its contexts (cluster + workload + parameters) the
candidates are the choices measured there (ok, failed or incompatible); the model picks one exactly
as `recommend` would for an unmeasured context (hard rules, then the classifier, then the highest
predicted FOM), and the pick is scored against the measurements:

- regret = best measured median / median of the pick (the inverse for `min` goals); 1.0 is perfect;
- a pick that failed or was incompatible there counts in `incompatible_picks` (each listed in
  `failed_picks` with its reason) and not in the regret.

Baselines pick uniformly among a set, and are scored by expectation (so they are not lucky or
unlucky by a seed): `random` among all candidates, `arch_match` among the candidates whose CPU
family is the cluster's, `most_often_best` the choice that was measured best in the most training
contexts (ties broken by how close to the best it came on average, remaining ties uniform).
"""

from __future__ import annotations

import math
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from planner.core import archs
from planner.core.errors import InputError
from planner.edges import datasets
from planner.learn import model
from planner.learn.catalog import Catalog
from planner.learn.dataset import Choice, Context, Measured, Runs

BASELINES = ("random", "arch_match", "most_often_best")


@dataclass
class Score:
    """Picks in many contexts; a pick is a set of candidates chosen uniformly (one for the model)."""

    picks: float = 0.0
    top1: float = 0.0
    incompatible: float = 0.0
    regrets: list[tuple[float, float]] = field(default_factory=list)  # (regret, probability it was the pick)
    context_regrets: list[float] = field(default_factory=list)

    def add(self, chosen: list[int], values: list[float | None], sign: float) -> None:
        """Score a uniform pick among `chosen`; values are measured medians (None: failed/incompatible)."""
        ok = [(i, v) for i, v in enumerate(values) if v is not None]
        best_index, best = max(ok, key=lambda item: sign * math.log(item[1]))
        weight = 1.0 / len(chosen)
        self.picks += 1
        expected, mass = 0.0, 0.0
        for i in chosen:
            value = values[i]
            if value is None:
                self.incompatible += weight
                continue
            regret = math.exp(sign * (math.log(best) - math.log(value)))
            self.regrets.append((regret, weight))
            expected += regret * weight
            mass += weight
            if i == best_index:
                self.top1 += weight
        if mass:
            self.context_regrets.append(expected / mass)

    def as_dict(self) -> dict[str, Any]:
        mass = sum(w for _, w in self.regrets)
        return {"picks": int(self.picks),
                "top1": round(self.top1 / self.picks, 4) if self.picks else None,
                "mean_regret": round(sum(r * w for r, w in self.regrets) / mass, 4) if mass else None,
                "max_regret": round(max(self.context_regrets), 4) if self.context_regrets else None,
                "incompatible_picks": round(self.incompatible, 2)}


def group_key(context: Context, group_by: str) -> str:
    return context.cluster if group_by == "cluster" else f"{context.app}/{context.workload}"


def evaluate(db: sqlite3.Connection, path: Path, catalog: Catalog, group_by: str, metric: str | None,
             goal: str | None) -> dict[str, Any]:
    from planner.core.summary import DEFAULT_METRIC

    datasets.require_runs(db, path)
    metric = metric or DEFAULT_METRIC
    apps = [app for app in datasets.distinct(db, "app") if datasets.has_metric(db, metric, app)]
    if not apps:
        raise InputError(f"no stored run measured {metric!r}; measured: {', '.join(datasets.metrics(db)) or 'none'}",
                         field="--metric")
    goal = goal or model.goal_of(metric)
    sign = 1.0 if goal == "max" else -1.0
    runs = datasets.read(db, [metric])
    catalog.stored_clusters.update(runs.cluster_attrs)
    catalog.stored_variants.update(runs.variant_attrs)
    measured = runs.measured(metric)
    by_context: dict[int, list[tuple[int, Measured]]] = defaultdict(list)
    for (c, k), item in measured.items():
        by_context[c].append((k, item))
    scored = {c: items for c, items in by_context.items()
              if len(items) >= 2 and any(m.values for _, m in items) and runs.contexts[c].app in apps}
    groups = sorted({group_key(runs.contexts[c], group_by) for c in scored})
    if len(groups) < 2:
        raise InputError(f"leave-one-{group_by}-out needs measurements in at least 2 {group_by}s with 2 or more "
                         f"candidates each; the store has {len(groups)}: sweep or import more", field="--group-by")
    group_of_run = np.array([group_key(c, group_by) for c in runs.contexts], dtype=object)[runs.ctx]
    model_score, baseline_scores = Score(), {name: Score() for name in BASELINES}
    per_group, failed_picks, no_pick = [], [], 0
    for group in groups:
        train = group_of_run != group
        models = model.fit(runs, catalog, [metric], mask=train, cv=False)
        best_counts = _best_counts(runs, measured, train, sign)
        group_score = Score()
        for c in sorted(c for c in scored if group_key(runs.contexts[c], group_by) == group):
            items = sorted(scored[c], key=lambda item: runs.choices[item[0]])
            context = runs.contexts[c]
            choices = [runs.choices[k] for k, _ in items]
            values = [m.median if m.values else None for _, m in items]
            pick = _model_pick(models, catalog, context, choices, metric, sign)
            if pick is None:
                no_pick += 1
                continue
            for score in (model_score, group_score):
                score.add([pick], values, sign)
            if values[pick] is None:
                failed_picks.append({"cluster": context.cluster, "workload": context.workload,
                                     "variant": choices[pick].variant, "options": choices[pick].options(),
                                     "reason": items[pick][1].reason()})
            baseline_scores["random"].add(list(range(len(choices))), values, sign)
            baseline_scores["arch_match"].add(_arch_match(catalog, context, choices), values, sign)
            baseline_scores["most_often_best"].add(_most_often_best(choices, best_counts), values, sign)
        per_group.append({"group": group, **group_score.as_dict()})
    summary = model_score.as_dict()
    return {"group_by": group_by, "metric": metric, "goal": goal, "groups": len(groups), **summary,
            "no_pick": no_pick, "failed_picks": failed_picks,
            "baselines": {name: score.as_dict() for name, score in baseline_scores.items()},
            "per_group": per_group}


def _model_pick(models: model.Models, catalog: Catalog, context: Context, choices: list[Choice], metric: str,
                sign: float) -> int | None:
    """What recommend would pick among these choices with no measurement of this context."""
    allowed = [i for i, choice in enumerate(choices) if catalog.rule(context, choice) is None]
    if not allowed:
        return None
    table = model.predict_points(models, catalog, [(context, choices[i]) for i in allowed])
    p_ok = table.p_ok
    if metric not in table.mid:  # too little training data for a FOM model: the likeliest to run
        return allowed[int(np.argmax(p_ok))]
    feasible = np.flatnonzero(p_ok >= model.P_OK)
    if not len(feasible):
        return allowed[int(np.argmax(p_ok))]
    scores = sign * table.mid[metric][feasible]
    return allowed[int(feasible[int(np.argmax(scores))])]


def _arch_match(catalog: Catalog, context: Context, choices: list[Choice]) -> list[int]:
    attrs = catalog.cluster_attrs(context.cluster)
    host = archs.family(attrs.get("microarchitecture")) or archs.family(attrs.get("arch"))
    matching = [i for i, choice in enumerate(choices)
                if host is not None and archs.family(
                    catalog.variant_attrs(choice.app, choice.variant).get("io.archspec.cpu.target")) == host]
    return matching or list(range(len(choices)))


def _best_counts(runs: Runs, measured: dict[tuple[int, int], Measured], train: np.ndarray,
                 sign: float) -> dict[Choice, tuple[int, float]]:
    """Per choice, in training contexts: how often it was the best, and its mean closeness to the best."""
    trained = set(np.unique(runs.ctx[train]).tolist())
    by_context: dict[int, list[tuple[int, Measured]]] = defaultdict(list)
    for (c, k), item in measured.items():
        if c in trained:
            by_context[c].append((k, item))
    wins: dict[Choice, int] = defaultdict(int)
    closeness: dict[Choice, list[float]] = defaultdict(list)
    for items in by_context.values():
        ok = [(k, math.log(m.median)) for k, m in items if m.median is not None]
        if not ok:
            continue
        best_k, best = max(ok, key=lambda item: sign * item[1])
        wins[runs.choices[best_k]] += 1
        values = dict(ok)
        for k, _ in items:
            value = values.get(k)
            closeness[runs.choices[k]].append(0.0 if value is None else math.exp(sign * (value - best)))
    return {choice: (wins.get(choice, 0), float(np.mean(close))) for choice, close in closeness.items()}


def _most_often_best(choices: list[Choice], counts: dict[Choice, tuple[int, float]]) -> list[int]:
    keys = [counts.get(choice, (0, 0.0)) for choice in choices]
    top = max(keys)
    return [i for i, key in enumerate(keys) if key == top]


def render_text(result: dict[str, Any]) -> str:
    lines = [f"leave-one-{result['group_by']}-out over {result['groups']} {result['group_by']}s, "
             f"{result['picks']} picks, {result['metric']} ({result['goal']}):",
             f"{'':18}{'top1':>8}{'mean regret':>14}{'max regret':>12}{'incompatible':>14}"]
    rows = [("model", result)] + [(name, result["baselines"][name]) for name in BASELINES]
    for name, row in rows:
        lines.append(f"{name:18}{_fmt(row['top1']):>8}{_fmt(row['mean_regret']):>14}{_fmt(row['max_regret']):>12}"
                     f"{row['incompatible_picks']:>14}")
    if result["no_pick"]:
        lines.append(f"{result['no_pick']} context(s) had no candidate the hard rules allow: no pick")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
