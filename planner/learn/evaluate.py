"""Leave-one-group-out evaluation of the recommendations, against rules-aware baselines.

For each group (a cluster, or a workload) the models are fitted on every run *outside* it, so none
of its measurements reach them. In each of its contexts (cluster + workload + parameters) the
candidates are the choices measured there (ok, failed or incompatible); they are ranked by
`planner.learn.ranking.rank` with the context's measurements hidden, exactly as `recommend` ranks an
unmeasured context (no pick when the hard rules or the classifier leave nothing, or there is no FOM
model), and the ranking is scored against the measurements (`planner.learn.baselines.score`):

- regret = best measured median / median of what the user ends up running (the inverse for `min`
  goals); 1.0 is perfect. A first pick that failed or was incompatible there (or succeeded in fewer
  than half of its runs) scores as the next pick down the ranking that succeeded, and counts in
  `failed_picks` or `incompatible_picks` (each listed in `failures` with its reason).

The models are fitted as `fit` fits them: where a simple rule ranked better than the ranking model on
clusters held out of the training data, the rule ranks (`ranked_by` counts the groups where each did).
The baselines (`baselines.NAMES`) rank the same candidates with the same hard rules and training
data; random ones are scored by expectation, so no seed makes them lucky.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from planner.core import archs
from planner.core.errors import InputError
from planner.core.metrics import Metric
from planner.learn import baselines, model, ranking
from planner.learn.catalog import Catalog
from planner.learn.dataset import Choice, Context, Measured, Runs
from planner.learn.table import Predictions

BASELINES = baselines.NAMES


@dataclass
class Summary:
    """One row of the evaluation (JSON keys as `evaluate --json` prints them)."""

    picks: int
    top1: float | None
    mean_regret: float | None
    max_regret: float | None
    incompatible_picks: float
    failed_picks: float


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
    failures: list[FailedPick]
    baselines: dict[str, Summary]
    per_group: dict[str, Summary]
    #: per scorer (the model, or a simple rule it fell back to), in how many held-out groups it ranked
    ranked_by: dict[str, int]
    picks: list[Pick]  # not printed: what each held-out context got
    #: the same picks scored against a ground truth (`evaluate(truth=...)`): "model" and each baseline
    truth: dict[str, Summary] | None = None
    #: with a ground truth: the truly best point of each context scored against the measured medians, the
    #: regret no ranking can beat there (what the noise of the measurements adds)
    noise_floor: Summary | None = None

    def as_dict(self) -> dict[str, Any]:
        """What `evaluate --json` prints."""
        return {"group_by": self.group_by, "metric": self.metric, "goal": self.goal, "groups": self.groups,
                **asdict(self.model), "no_pick": self.no_pick, "failures": [asdict(p) for p in self.failures],
                "baselines": {name: asdict(score) for name, score in self.baselines.items()},
                "per_group": [{"group": group, **asdict(score)} for group, score in self.per_group.items()],
                "ranked_by": self.ranked_by,
                **({"truth": {name: asdict(row) for name, row in self.truth.items()}} if self.truth else {}),
                **({"noise_floor": asdict(self.noise_floor)} if self.noise_floor else {})}


def group_key(context: Context, group_by: str) -> str:
    return context.cluster if group_by == "cluster" else f"{context.app}/{context.workload}"


def evaluate(runs: Runs, catalog: Catalog, group_by: str, metric: Metric, *, truth: Runs | None = None) -> Evaluation:
    """Leave each group out in turn; `runs` are the stored runs of the apps that measured the metric. `truth`
    (a synthetic benchmark's): the same runs with the values a noise-free measurement gives; the picks are
    also scored against it (`Evaluation.truth`), free of the noise the measured medians add to every regret."""
    catalog = catalog.with_stored(runs.cluster_attrs, runs.variant_attrs)
    measured = runs.measured(metric.name)
    true_of: dict[tuple[int, int], Measured] = {}
    if truth is not None:
        true = {(truth.contexts[c], truth.choices[k]): item for (c, k), item in truth.measured(metric.name).items()}
        true_of = {key: true[runs.contexts[key[0]], runs.choices[key[1]]] for key in measured}
    truth_scores = {name: baselines.Score() for name in ("model", *BASELINES)}
    floor = baselines.Score()
    by_context: dict[int, list[tuple[int, Measured]]] = defaultdict(list)
    for (c, k), item in measured.items():
        by_context[c].append((k, item))
    scored = {c: items for c, items in by_context.items() if len(items) >= 2 and any(m.values for _, m in items)}
    groups = sorted({group_key(runs.contexts[c], group_by) for c in scored})
    if len(groups) < 2:
        raise InputError(f"leave-one-{group_by}-out needs measurements in at least 2 {group_by}s with 2 or more "
                         f"candidates each; the store has {len(groups)}: sweep or import more", field="--group-by")
    group_of_run = np.array([group_key(c, group_by) for c in runs.contexts], dtype=object)[runs.ctx]
    model_score = baselines.Score()
    baseline_scores = {name: baselines.Score() for name in BASELINES}
    per_group: dict[str, Summary] = {}
    failures: list[FailedPick] = []
    picks: list[Pick] = []
    ranked_by: dict[str, int] = defaultdict(int)
    for group in groups:
        train = group_of_run != group
        # fitted as `fit` does (the ranking checked against the simple rules, and one of them used where it
        # ranked better), so the picks are the ones `recommend` would show
        models, _ = model.fit(runs, catalog, [metric.name], mask=train, cv=False, check_ranking=True)
        fom = models.foms.get(metric.name)
        ranked_by[fom.ranking.by if fom is not None and fom.ranking is not None else "model"] += 1
        seen = baselines.history([(runs.contexts[c], catalog.cluster_attrs(runs.contexts[c].cluster),
                                   [(runs.choices[k], m) for k, m in items])
                                  for c, items in by_context.items() if group_key(runs.contexts[c], group_by) != group],
                                 metric.sign)
        group_score = baselines.Score()
        for c in sorted(c for c in scored if group_key(runs.contexts[c], group_by) == group):
            items = sorted(scored[c], key=lambda item: runs.choices[item[0]])
            context = runs.contexts[c]
            choices = [runs.choices[k] for k, _ in items]
            values = [baselines.outcome(m) for _, m in items]
            kinds = [baselines.failure_kind(m) for _, m in items]
            order = _model_ranking(models, catalog, context, choices, metric)
            picks.append(Pick(group, context, choices[order[0]] if order else None))
            if not order:
                continue
            true_values = [baselines.outcome(true_of[c, k]) for k, _ in items] if true_of else []
            pick = baselines.score([[i] for i in order], values, kinds, metric.sign)
            if true_of:
                truth_scores["model"].add(baselines.score([[i] for i in order], true_values, kinds, metric.sign))
                oracle = sorted(range(len(items)), key=lambda i: -metric.sign * math.log(true_values[i])
                                if true_values[i] is not None else math.inf)
                floor.add(baselines.score([[i] for i in oracle], values, kinds, metric.sign))
            model_score.add(pick)
            group_score.add(pick)
            if values[order[0]] is None:
                failures.append(FailedPick(context.cluster, context.workload, choices[order[0]].variant,
                                           choices[order[0]].options(), items[order[0]][1].reason()))
            allowed = [i for i, choice in enumerate(choices) if catalog.rule(context, choice) is None]
            cluster = catalog.cluster_attrs(context.cluster)
            rows = _heuristic_rows(catalog, context, choices)
            for name in BASELINES:
                tiers = baselines.rank(name, seen, context, cluster, choices, allowed, rows.__getitem__)
                baseline_scores[name].add(baselines.score(tiers, values, kinds, metric.sign))
                if true_of:
                    truth_scores[name].add(baselines.score(tiers, true_values, kinds, metric.sign))
        per_group[group] = Summary(**group_score.as_dict())
    return Evaluation(group_by, metric.name, metric.goal, len(groups), Summary(**model_score.as_dict()),
                      sum(p.choice is None for p in picks), failures,
                      {name: Summary(**score.as_dict()) for name, score in baseline_scores.items()}, per_group,
                      dict(sorted(ranked_by.items())), picks,
                      {name: Summary(**score.as_dict()) for name, score in truth_scores.items()} if true_of else None,
                      Summary(**floor.as_dict()) if true_of else None)


def _model_ranking(models: model.Models, catalog: Catalog, context: Context, choices: list[Choice],
                   metric: Metric) -> list[int]:
    """Indices of the choices in the order recommend ranks them with no measurement of this context."""
    candidates = [ranking.Candidate(context, choice) for choice in choices]

    def predict(open_points: list[ranking.Candidate]) -> Predictions:
        table = models.tabulate(catalog, [(c.context, c.choice) for c in open_points])
        return table.predictions(list(range(len(open_points))), metric.name)

    position = {id(c): i for i, c in enumerate(candidates)}
    return [position[id(c)] for c in ranking.rank(candidates, catalog, metric, predict)]


def _heuristic_rows(catalog: Catalog, context: Context, choices: list[Choice]) -> list[dict[str, Any]]:
    """Feature rows with the widest vector extension each build uses on this host (for `heuristic`)."""
    host = catalog.cluster_attrs(context.cluster).get("microarchitecture")
    rows = []
    for choice in choices:
        row: dict[str, Any] = dict(catalog.features(context, choice))
        width = archs.vector_width(catalog.variant_attrs(choice.app, choice.variant).get("io.archspec.cpu.target"),
                                   host)
        row["vector_width"] = -1 if width is None else width
        rows.append(row)
    return rows
