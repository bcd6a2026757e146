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
import os
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from planner.core import archs
from planner.core.errors import InputError
from planner.core.metrics import Metric
from planner.learn import baselines, intervals, model, ranking
from planner.learn.catalog import Catalog, built_on
from planner.learn.columns import Choice, Context, Measured, Runs
from planner.learn.table import Predictions

BASELINES = baselines.NAMES
#: Stored runs x held-out groups x seeds from which the groups are evaluated in parallel, one process per core:
#: each fold is independent (its fits are seeded), and merged in the groups' order, so the result is the same.
PARALLEL_FROM = 20_000


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
    seed: int = 0  # of the model's fit that picked it


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
    #: each method against the best simple rule, with intervals (None where nothing could be paired)
    comparison: Comparison | None = None
    unit: str | None = None  # the metric's, where known
    #: per held-out group and seed: what ranked and why (`fit`'s check on the training groups)
    checks: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """What `evaluate --json` prints."""
        return {"group_by": self.group_by, "metric": self.metric, "goal": self.goal, "groups": self.groups,
                **asdict(self.model), "no_pick": self.no_pick, "failures": [asdict(p) for p in self.failures],
                "baselines": {name: asdict(score) for name, score in self.baselines.items()},
                "per_group": [{"group": group, **asdict(score)} for group, score in self.per_group.items()],
                "ranked_by": self.ranked_by,
                **({"truth": {name: asdict(row) for name, row in self.truth.items()}} if self.truth else {}),
                **({"noise_floor": asdict(self.noise_floor)} if self.noise_floor else {}),
                **({"comparison": self.comparison.as_dict()} if self.comparison else {}),
                "ranking_checks": self.checks}


def group_key(context: Context, group_by: str) -> str:
    return context.cluster if group_by == "cluster" else f"{context.app}/{context.workload}"


@dataclass
class Versus:
    """One method against the best simple rule: its mean regret and the paired difference (method - rule)."""

    mean_regret: float
    difference: intervals.Difference
    verdict: str

    def as_dict(self) -> dict[str, Any]:
        return {"mean_regret": round(self.mean_regret, 4), "minus_best_rule": self.difference.as_dict(),
                "verdict": self.verdict}


@dataclass
class Comparison:
    """Each method's mean regret over the seeds with a paired bootstrap interval against the best rule (the
    baseline with the lowest mean regret): overall, whole groups resampled; per group, the seeds resampled
    (what the model's randomness alone moves there). "no better than RULE" when the interval includes 0."""

    seeds: list[int]
    best_rule: str
    overall: dict[str, Versus]  # per method: "model" and each baseline but the best rule
    per_group: dict[str, Versus]  # the model, per group
    per_seed: list[float | None]  # the model's mean regret with each seed (the rules do not depend on one)

    def as_dict(self) -> dict[str, Any]:
        return {"seeds": self.seeds, "level": intervals.LEVEL, "best_rule": self.best_rule,
                "methods": {name: row.as_dict() for name, row in self.overall.items()},
                "per_group": {group: row.as_dict() for group, row in self.per_group.items()},
                "model_per_seed": [None if value is None else round(value, 4) for value in self.per_seed]}


@dataclass
class _Scored:
    """One held-out context: its group, and the regret of each method's pick (the model's per seed)."""

    group: str
    model: list[float | None] = field(default_factory=list)
    rules: dict[str, float | None] = field(default_factory=dict)


def evaluate(runs: Runs, catalog: Catalog, group_by: str, metric: Metric, *, truth: Runs | None = None,
             seeds: int = 1, only: list[str] | None = None) -> Evaluation:
    """Leave each group out in turn; `runs` are the stored runs of the apps that measured the metric. `truth`
    (a synthetic benchmark's): the same runs with the values a noise-free measurement gives; the picks are
    also scored against it (`Evaluation.truth`), free of the noise the measured medians add to every regret.
    `seeds`: the model is fitted that many times per group, with seeds 0, 1, ...; its scores are pooled over
    them and compared with the best rule's (`Evaluation.comparison`). `only`: hold out (and score) these groups
    alone, each model still trained on every other group (a check set kept apart from a design set)."""
    if seeds < 1:
        raise InputError(f"--seeds must be at least 1, got {seeds}", field="--seeds")
    catalog = catalog.with_stored(runs.cluster_attrs, runs.variant_attrs).with_built_on(built_on(runs))
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
    if only:
        unknown = sorted(set(only) - set(groups))
        if unknown:
            raise InputError(f"no {group_by} {', '.join(unknown)} with 2 or more candidates measured; known: "
                             f"{', '.join(groups)}", field="--held-out")
        groups = [group for group in groups if group in only]
    group_of_run = np.array([group_key(c, group_by) for c in runs.contexts], dtype=object)[runs.ctx]
    model_score = baselines.Score()
    baseline_scores = {name: baselines.Score() for name in BASELINES}
    per_group: dict[str, Summary] = {}
    failures: list[FailedPick] = []
    picks: list[Pick] = []
    ranked_by: dict[str, int] = defaultdict(int)
    contexts: dict[int, _Scored] = {}
    checks: list[dict[str, Any]] = []
    task = _Task(runs, catalog, group_by, metric, seeds, group_of_run, dict(by_context), scored, true_of)
    work = len(runs) * len(groups) * seeds
    jobs = min(len(os.sched_getaffinity(0)), len(groups)) if work >= PARALLEL_FROM else 1
    if jobs > 1:
        from joblib import Parallel, delayed

        done = Parallel(n_jobs=jobs)(delayed(_held_out)(task, group) for group in groups)
    else:
        done = [_held_out(task, group) for group in groups]
    for group, fold in zip(groups, done, strict=True):
        for pick in fold.model:
            model_score.add(pick)
        for name, rule_picks in fold.rules.items():
            for pick in rule_picks:
                baseline_scores[name].add(pick)
        for name, true_picks in fold.truth.items():
            for pick in true_picks:
                truth_scores[name].add(pick)
        for pick in fold.floor:
            floor.add(pick)
        failures += fold.failures
        picks += fold.picks
        for name in fold.ranked_by:
            ranked_by[name] += 1
        checks += fold.checks
        contexts.update(fold.contexts)
        group_score = baselines.Score()
        for pick in fold.model:
            group_score.add(pick)
        per_group[group] = _pooled(group_score, seeds)
    baseline_rows = {name: Summary(**score.as_dict()) for name, score in baseline_scores.items()}
    return Evaluation(group_by, metric.name, metric.goal, len(groups), _pooled(model_score, seeds),
                      sum(p.choice is None for p in picks) // seeds, failures, baseline_rows, per_group,
                      dict(sorted(ranked_by.items())), picks,
                      {name: _pooled(score, seeds) if name == "model" else Summary(**score.as_dict())
                       for name, score in truth_scores.items()} if true_of else None,
                      Summary(**floor.as_dict()) if true_of else None,
                      _compare(list(contexts.values()), baseline_rows, seeds), metric.unit, checks)


@dataclass
class _Task:
    """What every held-out group's fold reads (handed whole to a worker process)."""

    runs: Runs
    catalog: Catalog
    group_by: str
    metric: Metric
    seeds: int
    group_of_run: np.ndarray
    by_context: dict[int, list[tuple[int, Measured]]]
    scored: dict[int, list[tuple[int, Measured]]]
    true_of: dict[tuple[int, int], Measured]


@dataclass
class _Fold:
    """One held-out group's picks, scored (merged by `evaluate` in the groups' order)."""

    model: list[baselines.Pick] = field(default_factory=list)
    rules: dict[str, list[baselines.Pick]] = field(default_factory=lambda: defaultdict(list))
    truth: dict[str, list[baselines.Pick]] = field(default_factory=lambda: defaultdict(list))
    floor: list[baselines.Pick] = field(default_factory=list)
    failures: list[FailedPick] = field(default_factory=list)
    picks: list[Pick] = field(default_factory=list)
    ranked_by: list[str] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    contexts: dict[int, _Scored] = field(default_factory=dict)


def _held_out(task: _Task, group: str) -> _Fold:
    """Fit on every run outside `group`, once per seed, and score the picks in its contexts."""
    runs, catalog, group_by, metric, scored, true_of = (task.runs, task.catalog, task.group_by, task.metric,
                                                        task.scored, task.true_of)
    out = _Fold()
    train = task.group_of_run != group
    seen = baselines.history([(runs.contexts[c], catalog.cluster_attrs(runs.contexts[c].cluster),
                               [(runs.choices[k], m) for k, m in items])
                              for c, items in task.by_context.items()
                              if group_key(runs.contexts[c], group_by) != group], metric.sign)
    held = sorted(c for c in scored if group_key(runs.contexts[c], group_by) == group)
    for seed in range(task.seeds):
        # fitted as `fit` does (the ranking checked against the simple rules, and the best of them used unless
        # the model beat it), so the picks are the ones `recommend` would show
        models, report = model.fit(runs, catalog, [metric], mask=train, cv=False, check_ranking=True, seed=seed)
        fom = models.foms.get(metric.name)
        out.ranked_by.append(fom.ranking.by if fom is not None and fom.ranking is not None else "model")
        check = report.foms[metric.name].ranking if metric.name in report.foms else None
        out.checks.append({"group": group, "seed": seed, "ranked_by": check.ranked_by if check else "model",
                           "why": check.why if check else "too few clusters or contexts to check the model"})
        for c in held:
            items = sorted(scored[c], key=lambda item: runs.choices[item[0]])
            context = runs.contexts[c]
            choices = [runs.choices[k] for k, _ in items]
            values = [baselines.outcome(m) for _, m in items]
            kinds = [baselines.failure_kind(m) for _, m in items]
            order = _model_ranking(models, catalog, context, choices, metric)
            out.picks.append(Pick(group, context, choices[order[0]] if order else None))
            if not order:
                continue
            record = out.contexts.setdefault(c, _Scored(group))
            true_values = [baselines.outcome(true_of[c, k]) for k, _ in items] if true_of else []
            pick = baselines.score([[i] for i in order], values, kinds, metric.sign)
            record.model.append(pick.regret)
            if true_of:
                out.truth["model"].append(baselines.score([[i] for i in order], true_values, kinds, metric.sign))
            out.model.append(pick)
            if values[order[0]] is None:
                out.failures.append(FailedPick(context.cluster, context.workload, choices[order[0]].variant,
                                               choices[order[0]].options(), items[order[0]][1].reason(), seed))
            if seed:
                continue  # the rules do not depend on the seed
            if true_of:
                oracle = sorted(range(len(items)), key=lambda i: -metric.sign * math.log(true_values[i])
                                if true_values[i] is not None else math.inf)
                out.floor.append(baselines.score([[i] for i in oracle], values, kinds, metric.sign))
            allowed = [i for i, choice in enumerate(choices) if catalog.rule(context, choice) is None]
            cluster = catalog.cluster_attrs(context.cluster)
            rows = _heuristic_rows(catalog, context, choices)
            for name in BASELINES:
                tiers = baselines.rank(name, seen, context, cluster, choices, allowed, rows.__getitem__)
                rule_pick = baselines.score(tiers, values, kinds, metric.sign)
                out.rules[name].append(rule_pick)
                record.rules[name] = rule_pick.regret
                if true_of:
                    out.truth[name].append(baselines.score(tiers, true_values, kinds, metric.sign))
    return out


def _pooled(score: baselines.Score, seeds: int) -> Summary:
    """A method's summary over every seed's picks: rates and regrets pooled, counts per seed."""
    row = score.as_dict()
    for key in ("picks", "incompatible_picks", "failed_picks"):
        row[key] = row[key] // seeds if key == "picks" else round(row[key] / seeds, 2)
    return Summary(**row)


def _compare(contexts: list[_Scored], rows: dict[str, Summary], seeds: int) -> Comparison | None:
    """Each method against the best rule, paired context by context (`Comparison`)."""
    ranked = [name for name in BASELINES if rows[name].mean_regret is not None]
    if not ranked:
        return None
    best = min(ranked, key=lambda name: (rows[name].mean_regret, BASELINES.index(name)))
    usable = [c for c in contexts if c.rules.get(best) is not None and c.model and None not in c.model]
    if not usable:
        return None
    groups = np.array([c.group for c in usable])
    model = np.array([float(np.mean(c.model)) for c in usable])  # per context, over the seeds
    reference = np.array([c.rules[best] for c in usable], dtype=float)

    def versus(values: np.ndarray, where: np.ndarray, units: np.ndarray) -> Versus:
        difference = intervals.paired(values - reference[where], units)
        return Versus(float(values.mean()), difference, difference.verdict(best))

    everywhere = np.ones(len(usable), dtype=bool)
    overall = {"model": versus(model, everywhere, groups)}
    for name in ranked:
        if name != best and all(c.rules.get(name) is not None for c in usable):
            overall[name] = versus(np.array([c.rules[name] for c in usable], dtype=float), everywhere, groups)
    per_group = {}
    for group in dict.fromkeys(groups.tolist()):
        where = groups == group
        # each seed's picks in the group against the rule's: the seeds are the units resampled
        diffs = np.array([[c.model[s] - c.rules[best] for c in usable if c.group == group] for s in range(seeds)])
        difference = intervals.paired(diffs.ravel(), np.repeat(np.arange(seeds), diffs.shape[1]))
        per_group[group] = Versus(float(model[where].mean()), difference, difference.verdict(best))
    per_seed = [float(np.mean([c.model[s] for c in usable])) for s in range(seeds)]
    return Comparison(list(range(seeds)), best, overall, per_group, per_seed)


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
