"""Leave-one-group-out evaluation of the recommendations, against three baselines.

For each group (a cluster, or a workload) the models are fitted on every run *outside* it, so none
of its measurements reach them. In each of its contexts (cluster + workload + parameters) the
candidates are the choices measured there (ok, failed or incompatible); the pick is the first row of
`planner.learn.ranking.rank` with the context's measurements hidden, exactly what `recommend` shows
first for an unmeasured context (no pick when the hard rules or the classifier leave nothing, or
there is no FOM model), and it is scored against the measurements:

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
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from planner.core import archs
from planner.core.errors import InputError
from planner.core.metrics import Metric
from planner.learn import model, ranking
from planner.learn.catalog import Catalog
from planner.learn.dataset import Choice, Context, Measured, Runs
from planner.learn.table import Predictions

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

    def summary(self) -> Summary:
        mass = sum(w for _, w in self.regrets)
        return Summary(int(self.picks), round(self.top1 / self.picks, 4) if self.picks else None,
                       round(sum(r * w for r, w in self.regrets) / mass, 4) if mass else None,
                       round(max(self.context_regrets), 4) if self.context_regrets else None,
                       round(self.incompatible, 2))


@dataclass
class Summary:
    """One row of the evaluation (JSON keys as `evaluate --json` prints them)."""

    picks: int
    top1: float | None
    mean_regret: float | None
    max_regret: float | None
    incompatible_picks: float


@dataclass
class FailedPick:
    cluster: str
    workload: str
    variant: str
    options: dict[str, Any]
    reason: str


@dataclass
class Pick:
    """What the model picked in one held-out context (None: nothing it could recommend)."""

    group: str
    context: Context
    choice: Choice | None


@dataclass
class Evaluation:
    group_by: str
    metric: str
    goal: str
    groups: int
    model: Summary
    no_pick: int
    failed_picks: list[FailedPick]
    baselines: dict[str, Summary]
    per_group: dict[str, Summary]
    picks: list[Pick]  # not printed: what each held-out context got

    def as_dict(self) -> dict[str, Any]:
        """What `evaluate --json` prints."""
        return {"group_by": self.group_by, "metric": self.metric, "goal": self.goal, "groups": self.groups,
                **asdict(self.model), "no_pick": self.no_pick, "failed_picks": [asdict(p) for p in self.failed_picks],
                "baselines": {name: asdict(score) for name, score in self.baselines.items()},
                "per_group": [{"group": group, **asdict(score)} for group, score in self.per_group.items()]}


def group_key(context: Context, group_by: str) -> str:
    return context.cluster if group_by == "cluster" else f"{context.app}/{context.workload}"


def evaluate(runs: Runs, catalog: Catalog, group_by: str, metric: Metric) -> Evaluation:
    """Leave each group out in turn; `runs` are the stored runs of the apps that measured the metric."""
    catalog = catalog.with_stored(runs.cluster_attrs, runs.variant_attrs)
    measured = runs.measured(metric.name)
    by_context: dict[int, list[tuple[int, Measured]]] = defaultdict(list)
    for (c, k), item in measured.items():
        by_context[c].append((k, item))
    scored = {c: items for c, items in by_context.items() if len(items) >= 2 and any(m.values for _, m in items)}
    groups = sorted({group_key(runs.contexts[c], group_by) for c in scored})
    if len(groups) < 2:
        raise InputError(f"leave-one-{group_by}-out needs measurements in at least 2 {group_by}s with 2 or more "
                         f"candidates each; the store has {len(groups)}: sweep or import more", field="--group-by")
    group_of_run = np.array([group_key(c, group_by) for c in runs.contexts], dtype=object)[runs.ctx]
    model_score, baseline_scores = Score(), {name: Score() for name in BASELINES}
    per_group: dict[str, Summary] = {}
    failed_picks: list[FailedPick] = []
    picks: list[Pick] = []
    for group in groups:
        train = group_of_run != group
        models, _ = model.fit(runs, catalog, [metric.name], mask=train, cv=False)
        best_counts = _best_counts(runs, measured, train, metric.sign)
        group_score = Score()
        for c in sorted(c for c in scored if group_key(runs.contexts[c], group_by) == group):
            items = sorted(scored[c], key=lambda item: runs.choices[item[0]])
            context = runs.contexts[c]
            choices = [runs.choices[k] for k, _ in items]
            values = [m.median if m.values else None for _, m in items]
            pick = _model_pick(models, catalog, context, choices, metric)
            picks.append(Pick(group, context, None if pick is None else choices[pick]))
            if pick is None:
                continue
            for score in (model_score, group_score):
                score.add([pick], values, metric.sign)
            if values[pick] is None:
                failed_picks.append(FailedPick(context.cluster, context.workload, choices[pick].variant,
                                               choices[pick].options(), items[pick][1].reason()))
            baseline_scores["random"].add(list(range(len(choices))), values, metric.sign)
            baseline_scores["arch_match"].add(_arch_match(catalog, context, choices), values, metric.sign)
            baseline_scores["most_often_best"].add(_most_often_best(choices, best_counts), values, metric.sign)
        per_group[group] = group_score.summary()
    return Evaluation(group_by, metric.name, metric.goal, len(groups), model_score.summary(),
                      sum(p.choice is None for p in picks), failed_picks,
                      {name: score.summary() for name, score in baseline_scores.items()}, per_group, picks)


def _model_pick(models: model.Models, catalog: Catalog, context: Context, choices: list[Choice],
                metric: Metric) -> int | None:
    """What recommend shows first among these choices with no measurement of this context."""
    candidates = [ranking.Candidate(context, choice) for choice in choices]

    def predict(open_points: list[ranking.Candidate]) -> Predictions:
        table = models.tabulate(catalog, [(c.context, c.choice) for c in open_points])
        return table.predictions(list(range(len(open_points))), metric.name)

    ranked = ranking.rank(candidates, catalog, metric, predict)
    return next(i for i, c in enumerate(candidates) if c is ranked[0]) if ranked else None


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
