"""Recommend: which variant, launched how, for one app and workload on a cluster; measured first, then predicted.

Every choice known for the app (measured in the asked context, declared by the experiment's sweeps
for its cluster, or tabulated for it at fit time) is a candidate in the asked context (cluster,
workload and its parameters); on a cluster with none of those, every stored choice is. The candidates
are ranked by `planner.learn.ranking.rank`: the hard rules, measured failures and the classifier
leave some out; measured medians rank first, then predictions. Each row carries the exact launch
command (`Catalog.command`), when the experiment's sweeps declare the point (options only imported are
"imported, not validated"), and a one-line why: the
attributes whose candidates do best here, as a factor over the average candidate.

Pure: the store's measurements, the prediction table and, for points the table lacks, a way to
predict them come from the caller (`planner.cli.learn`); the result is a typed `Recommendation`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from planner.core.errors import InputError
from planner.core.metrics import Metric
from planner.learn import explain, ranking
from planner.learn.catalog import Catalog, built_on
from planner.learn.columns import Choice, Context, Runs
from planner.learn.features import CHOICE_GROUPS
from planner.learn.ranking import Candidate
from planner.learn.table import Predictions, RankedBy, Table

#: A predicted candidate that one ranked below it beats by 5% or more with this chance is low confidence.
IN_DOUBT = 0.5
#: Below this probability of success a prediction is flagged as low confidence.
SURE_OK = 0.8
#: Measured runs whose range exceeds this fraction of their median are flagged as low confidence.
NOISY = 0.5

#: Predictions by the saved models for points the table lacks (the caller loads them, and scikit-learn,
#: only when this is called).
PredictMissing = Callable[[Catalog, list[tuple[Context, Choice]]], Table]


@dataclass
class Request:
    app: str
    workload: str
    cluster: str | None = None
    top: int = 5
    params: dict[str, str] = field(default_factory=dict)
    #: rank (cluster, variant, options) by work per dollar: per instance type, USD per hour and where from
    per_dollar: dict[str, tuple[float, str]] | None = None


@dataclass
class ModelInfo:
    directory: str
    fitted_on_runs: int | None
    stale: bool  # the store changed since the fit
    #: per metric, the fit's check of its ranking on held-out clusters (`fit --json`'s foms.METRIC.ranking)
    report: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"directory": self.directory, "fitted_on_runs": self.fitted_on_runs, "stale": self.stale}


@dataclass
class MeasuredValue:
    median: float
    min: float
    max: float
    runs: int
    ok: int


@dataclass
class PredictedValue:
    value: float
    low: float
    high: float


@dataclass
class Share:
    """What a predicted candidate reaches of the best in its context, and the range of that (0..1]."""

    value: float
    low: float
    high: float


@dataclass
class PerDollar:
    """What one dollar buys of a candidate: the work of its FOM (a rate: value x 3600 s; a time per unit of
    work: 3600 s / value) per hour over the cluster's hourly price, and one run's time and cost where the
    store knows how long runs of this workload take."""

    work_per_dollar: float
    unit: str
    price_per_hour: float
    price_source: str
    run_seconds: float | None
    run_cost: float | None


@dataclass
class Row:
    rank: int
    cluster: str
    variant: str
    options: dict[str, Any]
    source: str  # measured | predicted
    measured: MeasuredValue | None
    predicted: PredictedValue | None
    share_of_best: Share | None  # predicted candidates: the ranking's estimate, from held-out clusters
    p_success: float | None
    command: str | None
    command_note: str | None  # why there is no command (left out of the JSON when there is one)
    confidence: str  # high | low
    low_confidence_because: list[str]
    why: str
    per_dollar: PerDollar | None = None  # with --per-dollar (left out of the JSON otherwise)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.command_note is None:
            del out["command_note"]
        if self.per_dollar is None:
            del out["per_dollar"]
        return out


@dataclass
class LeftOut:
    cluster: str
    variant: str
    options: dict[str, Any]
    by: str  # rules | measured | classifier
    reason: str | None


@dataclass
class Recommendation:
    app: str
    workload: str
    cluster: str | None
    params: dict[str, dict[str, Any]]  # per cluster: the workload parameters recommended for
    metric: str
    goal: str
    model: ModelInfo
    candidates: int
    ranked: int
    recommendations: list[Row]
    excluded: list[LeftOut]
    notes: list[str]

    def as_dict(self) -> dict[str, Any]:
        """What `recommend --json` prints."""
        out = asdict(self)
        out["model"] = self.model.as_dict()
        out["recommendations"] = [row.as_dict() for row in self.recommendations]
        return out


def recommend(request: Request, metric: Metric, catalog: Catalog, runs: Runs, table: Table | None,
              model: ModelInfo, every_choice: Callable[[], list[Choice]],
              predict_missing: PredictMissing | None = None,
              notes: list[str] | None = None) -> Recommendation:
    """Rank the candidates of the asked contexts. `runs`: the stored runs of this workload (on this cluster);
    `table`: the fitted predictions (None without a FOM model for the metric); `every_choice`: every choice
    stored for the app (read from the store only for a cluster with no candidates of its own)."""
    notes = list(notes or [])
    if table is not None:
        catalog = catalog.with_stored(table.cluster_attrs, table.variant_attrs).with_built_on(table.built_on)
    fitted_with = catalog
    catalog = catalog.with_stored(runs.cluster_attrs, runs.variant_attrs).with_built_on(built_on(runs))
    # the runs read now add no attribute the table lacks: the rules judge the table's points as at fit time
    # (the caller gives a table only when made with this catalog: `planner.edges.modelfiles.saved`)
    rules_hold = table is not None and catalog is fitted_with
    declared_contexts, declared = catalog.experiment_points(request.app)
    contexts, params_note = _contexts(runs, catalog, request, declared_contexts)
    if params_note:
        notes.append(params_note)
    candidates = _candidates(runs, metric.name, contexts, declared, table, every_choice, rules_hold)
    if table is None:
        notes.append(f"too few successful runs measured {metric.name} to fit a model: measured results only")
        predict = None
    else:
        predict = _predictor(table, catalog, metric.name, predict_missing, notes)
    ranked_by = table.ranked_by.get(metric.name) if table is not None else None
    ranked = ranking.rank(candidates, catalog, metric, predict)
    if ranked_by is not None and any(c.tier == 1 for c in ranked):
        notes.append(_ranking_note(ranked_by, model.report.get(metric.name)))
    measured_variants = (table.measured if table is not None else set()) | {(k.app, k.variant) for k in runs.choices}
    profiled = explain.medians(runs, explain.names(list(runs.values)))
    costs: dict[int, PerDollar] = {}
    if request.per_dollar is not None:
        ranked, costs = _by_work_per_dollar(ranked, runs, metric, catalog, request.per_dollar, notes)
    rows = [_row(i + 1, c, ranked, catalog, metric.sign, model, measured_variants, ranked_by, profiled)
            for i, c in enumerate(ranked[:request.top])]
    for row, candidate in zip(rows, ranked, strict=False):
        row.per_dollar = costs.get(id(candidate))
    if ranked and ranked[0].tier == 1 and request.per_dollar is None:
        notes.append("nothing was measured for this workload on this cluster: the ranking is the model's")
    return Recommendation(request.app, request.workload, request.cluster, {c.cluster: c.parameters() for c in contexts},
                          metric.name, metric.goal, model, len(candidates), len(ranked), rows,
                          [LeftOut(c.context.cluster, c.choice.variant, c.choice.options(), c.excluded, c.reason)
                           for c in candidates if c.excluded], notes)


def price_of(cluster: str, attrs: dict[str, Any], listed: dict[str, tuple[float, str]]) -> tuple[float, str] | None:
    """A cluster's USD per hour and where it comes from: its own `price_per_hour`, else the list price of its
    instance type, else of its name when that is an instance type; None when none is known."""
    if attrs.get("price_per_hour"):
        return float(attrs["price_per_hour"]), "cluster.price_per_hour"
    for name in (attrs.get("instance_type"), cluster):
        if name in listed:
            return listed[name]
    return None


def _by_work_per_dollar(ranked: list[Candidate], runs: Runs, metric: Metric, catalog: Catalog,
                        listed: dict[str, tuple[float, str]],
                        notes: list[str]) -> tuple[list[Candidate], dict[int, PerDollar]]:
    """The candidates of clusters with a price, most work per dollar first (measured medians and predictions
    alike), and what a dollar buys of each (keyed by id)."""
    rate = metric.goal == "max"  # a rate (work per second), else a time per unit of work
    if metric.unit and metric.unit.endswith("/s"):
        unit = f"{metric.unit[:-2]} per $"
    else:
        unit = f"{metric.name} x 3600 s per $" if rate else f"3600 s / {metric.name} per $"
    work_per_run = _work_per_run(runs, metric)
    walls = _walls(runs)
    out: list[tuple[float, Candidate]] = []
    costs: dict[int, PerDollar] = {}
    unpriced = set()
    for candidate in ranked:
        price = price_of(candidate.context.cluster, catalog.cluster_attrs(candidate.context.cluster), listed)
        if price is None:
            unpriced.add(candidate.context.cluster)
            continue
        value = math.exp(candidate.log_value)
        per_hour = value * 3600 if rate else 3600 / value
        seconds = walls.get((candidate.context, candidate.choice)) if candidate.tier == 0 else None
        if seconds is None and work_per_run is not None:
            seconds = work_per_run / value if rate else work_per_run * value
        costs[id(candidate)] = PerDollar(round(per_hour / price[0], 6), unit, price[0], price[1],
                                         None if seconds is None else round(seconds, 3),
                                         None if seconds is None else round(seconds / 3600 * price[0], 6))
        out.append((per_hour / price[0], candidate))
    if unpriced:
        notes.append(f"left out, no price per hour known: {', '.join(sorted(unpriced))} (set cluster.price_per_hour "
                     "or the experiment's price_per_hour)")
    how = "value x 3600 s" if rate else "3600 s / value"
    notes.append(f"ranked by work per dollar ({how} over the cluster's price per hour), measured and predicted "
                 "rows alike" + ("" if work_per_run is not None else
                                 "; no stored run time for this workload, so no time or cost of one run"))
    out.sort(key=lambda item: (-item[0], item[1].tier))
    return [candidate for _, candidate in out], costs


def _work_per_run(runs: Runs, metric: Metric) -> float | None:
    """The work one run of this workload does, in the metric's terms (value x wall for a rate, wall / value
    for a time per unit of work): the median over stored runs with both; None without any."""
    if not len(runs.wall):
        return None
    value, wall = runs.values[metric.name], runs.wall
    with np.errstate(invalid="ignore"):
        usable = runs.ok & np.isfinite(value) & (value > 0) & np.isfinite(wall) & (wall > 0)
    if not usable.any():
        return None
    work = value[usable] * wall[usable] if metric.goal == "max" else wall[usable] / value[usable]
    return float(np.median(work))


def _walls(runs: Runs) -> dict[tuple[Context, Choice], float]:
    """The median wall time of each measured point's successful runs."""
    found: dict[tuple[Context, Choice], list[float]] = {}
    if len(runs.wall):
        for i in np.flatnonzero(runs.ok & np.isfinite(runs.wall)):
            key = (runs.contexts[int(runs.ctx[i])], runs.choices[int(runs.choice[i])])
            found.setdefault(key, []).append(float(runs.wall[i]))
    return {key: float(np.median(values)) for key, values in found.items()}


def _contexts(runs: Runs, catalog: Catalog, request: Request,
              declared_contexts: list[Context]) -> tuple[list[Context], str | None]:
    """One context per asked cluster: the workload at the parameters known there (measured or declared) that
    match --param, preferring the experiment's defaults, then the most measured."""
    counts: dict[tuple[str, str], int] = {}
    for c in runs.ctx.tolist():
        key = (runs.contexts[c].cluster, runs.contexts[c].params)
        counts[key] = counts.get(key, 0) + 1
    for context in declared_contexts:
        if context.workload == request.workload:
            counts.setdefault((context.cluster, context.params), 0)
    known = list(dict.fromkeys(params for _, params in counts))
    wanted = [p for p in known if _matches(p, request.params)]
    if request.params and not wanted:
        raise InputError(f"no {request.workload} run or sweep has parameters "
                         f"{' '.join(f'{k}={v}' for k, v in request.params.items())}; known: "
                         f"{'; '.join(_params_label(p) for p in known)}", field="--param")
    default = json.loads(catalog.default_params(request.app, request.workload) or "{}")

    def preference(params: str) -> tuple[bool, int]:
        values = json.loads(params)
        return all(default.get(k, v) == v for k, v in values.items()), sum(n for (_, p), n in counts.items()
                                                                           if p == params)

    overall = max(wanted, key=preference) if wanted else catalog.default_params(request.app, request.workload) or "{}"
    contexts = []
    for cluster in [request.cluster] if request.cluster else catalog.clusters():
        here = [p for (c, p) in counts if c == cluster and p in wanted]
        contexts.append(Context(cluster, request.app, request.workload, max(here, key=preference) if here else overall))
    chosen = {c.params for c in contexts}
    others = [p for p in known if p not in chosen]
    note = ("other parameters known: " + "; ".join(_params_label(p) for p in others) +
            " (choose with --param NAME=VALUE)") if others else None
    return contexts, note


def _matches(params: str, wanted: dict[str, str]) -> bool:
    values = json.loads(params)
    return all(str(values.get(k)) == v for k, v in wanted.items())


def _params_label(params: str) -> str:
    values = json.loads(params)
    return " ".join(f"{k}={v}" for k, v in sorted(values.items())) or "(none)"


def _candidates(runs: Runs, metric: str, contexts: list[Context], declared: dict[str, list[Choice]],
                table: Table | None, every_choice: Callable[[], list[Choice]], rules_hold: bool) -> list[Candidate]:
    """Per context: the choices measured there, declared for its cluster, or tabulated for it at fit time
    (the choices stored on its cluster, see `catalog.choice_sets`); every stored choice on a cluster
    that has none of those. `rules_hold`: the catalog judges as the fit's did, so what the hard rules excluded
    then is excluded for the reason they gave (unless it ran here since)."""
    measured = {(runs.contexts[c], runs.choices[k]): m for (c, k), m in runs.measured(metric).items()}
    here: dict[Context, dict[Choice, None]] = {context: {} for context in contexts}
    for context, choice in measured:
        if context in here:
            here[context][choice] = None
    tabulated = table.lookup(set(contexts)) if table is not None else {}
    ruled_out = {(context, choice): reason for context, choice, reason in table.excluded_in(set(contexts))} \
        if table is not None else {}
    for context, choice in [*tabulated, *ruled_out]:
        here[context][choice] = None
    if not rules_hold:
        ruled_out = {}
    out = []
    for context in contexts:
        choices = list(here[context]) + [k for k in declared.get(context.cluster, []) if k not in here[context]]
        out += [Candidate(context, choice, measured.get((context, choice)), tabulated=(context, choice) in tabulated,
                          ruled_out=ruled_out.get((context, choice))) for choice in choices or every_choice()]
    return out


def _predictor(table: Table, catalog: Catalog, metric: str, predict_missing: PredictMissing | None,
               notes: list[str]) -> ranking.Predict:
    """Predictions from the table; for points not known when the model was fitted, from the saved models."""
    def predict(candidates: list[Candidate]) -> Predictions:
        rows = table.lookup({c.context for c in candidates})
        where = [i for i, c in enumerate(candidates) if (c.context, c.choice) in rows]
        missing = [i for i, c in enumerate(candidates) if (c.context, c.choice) not in rows]
        parts = [(where, table.predictions([rows[(candidates[i].context, candidates[i].choice)] for i in where],
                                           metric))]
        if missing and predict_missing is not None:
            notes.append(f"{len(missing)} candidate(s) were not known when the model was fitted: predicted now "
                         "(`python -m planner fit` tabulates them)")
            points = [(candidates[i].context, candidates[i].choice) for i in missing]
            parts.append((missing, predict_missing(catalog, points).predictions(list(range(len(points))), metric)))
        elif missing:
            raise ValueError("points missing from the prediction table and no models to predict them")
        return Predictions.join(parts)

    return predict


def _ranking_note(ranked_by: RankedBy, check: dict[str, Any] | None) -> str:
    """Which ranking orders the predicted candidates, and why: how each did on clusters held out at fit time."""
    if check is None:
        return "predicted candidates are ranked by the model (too few clusters or contexts to check it against " \
               "simple rules at fit time)"
    if ranked_by.by == "model":
        return f"predicted candidates are ranked by the model: at fit time {check['why']}"
    return f"predicted candidates are ranked by the simple rule {ranked_by.by}, not the model: at fit time " \
           f"{check['why']}"


def _row(rank: int, candidate: Candidate, ranked: list[Candidate], catalog: Catalog, sign: float,
         model: ModelInfo, measured_variants: set[tuple[str, str]], ranked_by: RankedBy | None,
         profiled: dict[tuple[Context, Choice], dict[str, float]]) -> Row:
    measured = candidate.measured
    value = None
    if measured is not None and measured.values:
        assert measured.median is not None
        value = MeasuredValue(measured.median, min(measured.values), max(measured.values), measured.runs, measured.ok)
    predicted = None
    if candidate.mid is not None:
        predicted = PredictedValue(math.exp(candidate.mid), math.exp(candidate.low or candidate.mid),
                                   math.exp(candidate.high or candidate.mid))
    share = None
    interval = ranked_by.interval(candidate.normalized) if ranked_by is not None and candidate.tier == 1 and \
        candidate.normalized is not None else None
    if interval is not None:
        assert candidate.normalized is not None
        share = Share(round(math.exp(min(candidate.normalized, 0.0)), 4), round(math.exp(interval[0]), 4),
                      round(math.exp(interval[1]), 4))
    command = catalog.command(candidate.context, candidate.choice)
    doubts = _doubts(candidate, model, measured_variants, catalog)
    p_beaten = _p_beaten(candidate, ranked, ranked_by)
    if p_beaten is not None and p_beaten > IN_DOUBT:
        doubts.append(f"ranking in doubt (P = {p_beaten:.2f} that a candidate ranked below beats it by 5% or more)")
    return Row(rank, candidate.context.cluster, candidate.choice.variant, candidate.choice.options(),
               "measured" if candidate.tier == 0 else "predicted", value, predicted, share,
               None if candidate.p_ok is None else round(candidate.p_ok, 3), command,
               catalog.no_command(candidate.context, candidate.choice) if command is None else None,
               "low" if doubts else "high", doubts, _why(candidate, ranked, catalog, sign, profiled))


def _doubts(candidate: Candidate, model: ModelInfo, measured_variants: set[tuple[str, str]],
            catalog: Catalog) -> list[str]:
    doubts = []
    measured = candidate.measured
    if candidate.tier == 0:
        assert measured is not None
        if measured.ok == 1:
            doubts.append("a single run")
        if measured.ok < measured.runs:
            doubts.append(f"{measured.runs - measured.ok} of {measured.runs} runs failed")
        spread = (max(measured.values) - min(measured.values)) / (measured.median or 1.0)
        if spread > NOISY:
            doubts.append(f"runs disagree ({min(measured.values):.4g}..{max(measured.values):.4g})")
        return doubts
    # what every candidate of the context shares (its level unmeasured, the interval that brings) does not
    # put their order in doubt, and is said once in the notes
    if (candidate.choice.app, candidate.choice.variant) not in measured_variants:
        doubts.append("variant never measured anywhere")
    if not catalog.variant_attrs(candidate.choice.app, candidate.choice.variant).get("io.archspec.cpu.target"):
        doubts.append("no build target known for this variant, so no rule could check it here (container "
                      "variants: `python -m planner variants fetch`)")
    if candidate.p_ok is not None and candidate.p_ok < SURE_OK:
        doubts.append(f"success uncertain (P = {candidate.p_ok:.2f})")
    if model.stale:
        doubts.append("model older than the store")
    return doubts


def _p_beaten(candidate: Candidate, ranked: list[Candidate], ranked_by: RankedBy | None) -> float | None:
    """The chance a predicted candidate ranked below this one in its context beats it by 5% or more."""
    if ranked_by is None or candidate.tier != 1 or candidate.normalized is None:
        return None
    position = next(i for i, c in enumerate(ranked) if c is candidate)
    below = [c.normalized for c in ranked[position + 1:]
             if c.context == candidate.context and c.tier == 1 and c.normalized is not None]
    return ranked_by.p_beaten(candidate.normalized, np.array(below))


def _why(candidate: Candidate, ranked: list[Candidate], catalog: Catalog, sign: float,
         profiled: dict[tuple[Context, Choice], dict[str, float]]) -> str:
    """The attributes whose candidates do best: mean of those sharing it over the mean of all, among the
    candidates on the same cluster (and the cluster itself when several are ranked); for a measured one,
    the profile where it differs most from the others measured here (measured only: never predicted)."""
    text = _attribute_why(candidate, ranked, catalog, sign)
    point = profiled.get((candidate.context, candidate.choice))
    if candidate.tier != 0 or not point:
        return text
    peers = [profiled[(c.context, c.choice)] for c in ranked
             if c.context == candidate.context and (c.context, c.choice) in profiled]
    stands = explain.standout(point, peers)
    return f"{text}; profile: {stands}" if stands else text


def _attribute_why(candidate: Candidate, ranked: list[Candidate], catalog: Catalog, sign: float) -> str:
    peers = [c for c in ranked if c.context.cluster == candidate.context.cluster]
    values = np.array([c.log_value for c in peers])
    effects = []
    if len(peers) < len(ranked):
        everyone = np.array([c.log_value for c in ranked])
        effects.append((sign * (float(values.mean()) - float(everyone.mean())), f"cluster {candidate.context.cluster}"))
    for group in CHOICE_GROUPS:
        label = catalog.describe(group, candidate.context, candidate.choice)
        same = np.array([catalog.describe(group, other.context, other.choice) == label for other in peers])
        if not same.all():
            effects.append((sign * (float(values[same].mean()) - float(values.mean())), label))
    effects = sorted((e for e in effects if e[0] > math.log(1.02)), reverse=True)
    if candidate.tier == 0:
        assert candidate.measured is not None
        head = f"measured median of {len(candidate.measured.values)} run(s)"
    else:
        head = "predicted from attributes"
    if not effects:
        return f"{head}; no attribute stands out among the {len(peers)} candidates here"
    parts = ", ".join(f"{label} {_percent(effect)}" for effect, label in effects[:3])
    return f"{head}; {parts} (candidates with it vs all {len(peers)} here)"


def _percent(effect: float) -> str:
    return f"+{(math.exp(effect) - 1) * 100:.0f}%"

