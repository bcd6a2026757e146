"""Recommend: which variant, launched how, for one app and workload on a cluster; measured first, then predicted.

Every choice known for the app (stored, or declared by the experiment's sweeps) is a candidate in the
asked context (cluster, workload and its parameters). A candidate is left out when the hard rules
(`planner.core.compat.check`) exclude it, when it failed every time it was measured here, or when the
classifier gives it less than `model.P_OK` of succeeding. What remains is ranked: choices measured
in this context by their measured median (first-hand), then the others by the model's prediction.
Each row carries the exact launch command (`planner.core.launch.render`), when the experiment declares
the point, and a one-line why: the attributes whose candidates do best here, as a factor over the
average candidate.
"""

from __future__ import annotations

import functools
import json
import math
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from planner.core.errors import InputError
from planner.edges import datasets
from planner.edges.store import Store
from planner.learn import dataset, model
from planner.learn.catalog import Catalog, every_choice
from planner.learn.dataset import Choice, Context, Measured
from planner.learn.features import CHOICE_GROUPS

#: A prediction whose 80% interval spans more than this factor is flagged as low confidence.
WIDE_INTERVAL = 2.0
#: Below this probability of success a prediction is flagged as low confidence.
SURE_OK = 0.8
#: Measured runs whose range exceeds this fraction of their median are flagged as low confidence.
NOISY = 0.5


@dataclass
class Request:
    app: str
    workload: str
    cluster: str | None = None
    top: int = 5
    metric: str | None = None
    goal: str | None = None
    params: dict[str, str] = field(default_factory=dict)


@dataclass
class Candidate:
    context: Context
    choice: Choice
    measured: Measured | None = None
    p_ok: float | None = None
    mid: float | None = None  # predicted log FOM
    low: float | None = None
    high: float | None = None
    known_level: bool = True
    excluded: str | None = None  # rules | measured | classifier
    reason: str | None = None
    table_index: int | None = None  # row of the prediction table fitted for this point

    @property
    def tier(self) -> int:
        return 0 if self.measured is not None and self.measured.values else 1

    @functools.cached_property
    def log_value(self) -> float:
        """log of the measured median, else of the prediction: what ranks it (known once judged)."""
        if self.tier == 0:
            assert self.measured is not None and self.measured.median is not None
            return math.log(self.measured.median)
        return self.mid if self.mid is not None else -math.inf


def validate(db: sqlite3.Connection, path: Path, catalog: Catalog, request: Request) -> None:
    """Unknown names and an empty store are bad input: exit 2 listing what is known."""
    datasets.require_runs(db, path)
    apps = sorted(set(datasets.distinct(db, "app")) | (set(catalog.exp.apps) if catalog.exp else set()))
    if request.app not in apps:
        raise InputError(f"unknown app {request.app!r}; known: {', '.join(apps)}", field="APP")
    workloads = sorted(set(datasets.distinct(db, "workload", app=request.app)) | set(catalog.workloads(request.app)))
    if request.workload not in workloads:
        raise InputError(f"unknown workload {request.workload!r} of {request.app}; known: {', '.join(workloads)}",
                         field="WORKLOAD")
    clusters = sorted(set(datasets.distinct(db, "cluster")) | set(catalog.cluster_infos))
    if request.cluster is not None and request.cluster not in clusters:
        raise InputError(f"unknown cluster {request.cluster!r}; known: {', '.join(clusters)}", field="--cluster")
    datasets.require_runs(db, path, request.app)


def metric_of(db: sqlite3.Connection, app: str, metric: str | None) -> str:
    from planner.core.summary import DEFAULT_METRIC

    wanted = metric or DEFAULT_METRIC
    if not datasets.has_metric(db, wanted, app):
        known = datasets.metrics(db, app)
        raise InputError(f"no stored run of {app} measured {wanted!r}; measured: {', '.join(known) or 'none'}",
                         field="--metric")
    return wanted


def recommend(db: sqlite3.Connection, path: Path, catalog: Catalog, request: Request) -> dict[str, Any]:
    validate(db, path, catalog, request)
    metric = metric_of(db, request.app, request.metric)
    goal = request.goal or model.goal_of(metric)
    sign = 1.0 if goal == "max" else -1.0
    notes: list[str] = []
    bundle = model.ensure(db, path, catalog, metric, notes)
    table = bundle.table if metric in bundle.meta.get("metrics", {}) else None
    if table is not None:
        catalog.stored_clusters.update(table.cluster_attrs)
        catalog.stored_variants.update(table.variant_attrs)
    # measurements of this workload (on this cluster): the only scan of the store a recommendation needs
    runs = datasets.read(db, [metric], app=request.app, workload=request.workload, cluster=request.cluster)
    catalog.stored_clusters.update(runs.cluster_attrs)
    catalog.stored_variants.update(runs.variant_attrs)
    declared_contexts, declared = catalog.experiment_points(request.app)
    contexts, params_note = _contexts(runs, catalog, request, declared_contexts)
    if params_note:
        notes.append(params_note)
    candidates = _candidates(db, runs, metric, contexts, declared, table)
    if table is None:
        notes.append(f"too few successful runs measured {metric} to fit a model: measured results only")
    _judge(bundle, table, catalog, metric, candidates, notes)
    with Store(path, create=False) as store:
        bundle.meta["stale"] = bundle.meta.get("fingerprint") != store.fingerprint()
    ranked = sorted((c for c in candidates if c.excluded is None and (c.tier == 0 or c.mid is not None)),
                    key=lambda c: (c.tier, -sign * c.log_value, c.choice.variant, c.choice.launch))
    measured_variants = (table.measured if table is not None else set()) | {(k.app, k.variant) for k in runs.choices}
    rows = [_row(i + 1, c, ranked, catalog, sign, bundle, measured_variants)
            for i, c in enumerate(ranked[:request.top])]
    if ranked and ranked[0].tier == 1:
        notes.append("nothing was measured for this workload on this cluster: the ranking is the model's")
    return {"app": request.app, "workload": request.workload, "cluster": request.cluster,
            "params": {c.cluster: c.parameters() for c in contexts}, "metric": metric, "goal": goal,
            "model": {"directory": str(bundle.directory), "fitted_on_runs": bundle.meta.get("runs"),
                      "stale": bundle.meta["stale"]},
            "candidates": len(candidates), "ranked": len(ranked), "recommendations": rows,
            "excluded": [{"cluster": c.context.cluster, "variant": c.choice.variant, "options": c.choice.options(),
                          "by": c.excluded, "reason": c.reason} for c in candidates if c.excluded],
            "notes": notes}


def _contexts(runs: dataset.Runs, catalog: Catalog, request: Request,
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


def _candidates(db: sqlite3.Connection, runs: dataset.Runs, metric: str, contexts: list[Context],
                declared: dict[str, list[Choice]], table: model.Table | None) -> list[Candidate]:
    """Per context: the choices measured there, declared for its cluster, or tabulated for it at fit time
    (the choices stored on its cluster, see `candidates.choice_sets`); every stored choice on a cluster
    that has none of those."""
    measured = {(runs.contexts[c], runs.choices[k]): m for (c, k), m in runs.measured(metric).items()}
    here: dict[Context, dict[Choice, None]] = {context: {} for context in contexts}
    for context, choice in measured:
        if context in here:
            here[context][choice] = None
    tabulated = table.lookup(set(contexts)) if table is not None else {}
    for context, choice in [*tabulated, *(table.excluded_in(set(contexts)) if table is not None else [])]:
        here[context][choice] = None
    everything: list[Choice] | None = None
    out = []
    for context in contexts:
        choices = list(here[context]) + [k for k in declared.get(context.cluster, []) if k not in here[context]]
        if not choices:
            if everything is None:
                everything = every_choice(datasets.choices_by_cluster(db, context.app))
            choices = everything
        out += [Candidate(context, choice, measured.get((context, choice)),
                          table_index=tabulated.get((context, choice))) for choice in choices]
    return out


def _judge(bundle: model.Bundle, table: model.Table | None, catalog: Catalog, metric: str,
           candidates: list[Candidate], notes: list[str]) -> None:
    """Hard rules (points tabulated at fit time passed them then), measured failures, the model's predictions."""
    for candidate in candidates:
        reason = None if candidate.table_index is not None else catalog.rule(candidate.context, candidate.choice)
        if reason is not None:
            candidate.excluded, candidate.reason = "rules", reason
        elif candidate.measured is not None and candidate.measured.failed:
            candidate.excluded, candidate.reason = "measured", \
                f"failed every time it ran here ({candidate.measured.reason()})"
    if table is None:
        return
    open_points = [c for c in candidates if c.excluded is None]
    missing = [c for c in open_points if c.table_index is None]
    extra = _predict_with_models(bundle, catalog, metric, missing) if missing else {}
    if missing:
        notes.append(f"{len(missing)} candidate(s) were not known when the model was fitted: predicted now "
                     "(`python -m planner fit` tabulates them)")
    residuals = tuple(bundle.meta["metrics"][metric]["residuals"])
    level_error = bundle.meta["metrics"][metric]["level_error"]
    for candidate in open_points:
        if candidate.table_index is not None:
            i = candidate.table_index
            p_ok, mid = float(table.p_ok[i]), float(table.mid[metric][i])
            known = bool(table.known[metric][table.ctx[i]])
        else:
            p_ok, mid, known = extra[(candidate.context, candidate.choice)]
        candidate.p_ok, candidate.mid, candidate.known_level = p_ok, mid, known
        low, high = model.interval(residuals, level_error, mid, known)  # type: ignore[arg-type]
        candidate.low, candidate.high = float(low), float(high)
        if candidate.tier == 1 and p_ok < model.P_OK:
            candidate.excluded, candidate.reason = "classifier", f"predicted to fail (P(success) = {p_ok:.2f})"


def _predict_with_models(bundle: model.Bundle, catalog: Catalog, metric: str, missing: list[Candidate]) -> dict[
        tuple[Context, Choice], tuple[float, float, bool]]:
    points = [(c.context, c.choice) for c in missing]
    table = model.predict_points(model.load_models(bundle.directory, bundle.meta), catalog, points)
    return {key: (float(table.p_ok[i]), float(table.mid[metric][i]), bool(table.known[metric][table.ctx[i]]))
            for i, key in enumerate(points)}


def _row(rank: int, candidate: Candidate, ranked: list[Candidate], catalog: Catalog, sign: float,
         bundle: model.Bundle, measured_variants: set[tuple[str, str]]) -> dict[str, Any]:
    measured = candidate.measured
    row: dict[str, Any] = {
        "rank": rank, "cluster": candidate.context.cluster, "variant": candidate.choice.variant,
        "options": candidate.choice.options(), "source": "measured" if candidate.tier == 0 else "predicted",
        "measured": None, "predicted": None,
        "p_success": None if candidate.p_ok is None else round(candidate.p_ok, 3)}
    if measured is not None and measured.values:
        row["measured"] = {"median": measured.median, "min": min(measured.values), "max": max(measured.values),
                           "runs": measured.runs, "ok": measured.ok}
    if candidate.mid is not None:
        row["predicted"] = {"value": math.exp(candidate.mid), "low": math.exp(candidate.low or candidate.mid),
                            "high": math.exp(candidate.high or candidate.mid)}
    command = catalog.command(candidate.context, candidate.choice)
    row["command"] = command
    if command is None:
        row["command_note"] = "unavailable: the experiment does not declare this cluster, variant and workload"
    doubts = _doubts(candidate, bundle, measured_variants)
    row["confidence"] = "low" if doubts else "high"
    row["low_confidence_because"] = doubts
    row["why"] = _why(candidate, ranked, catalog, sign)
    return row


def _doubts(candidate: Candidate, bundle: model.Bundle, measured_variants: set[tuple[str, str]]) -> list[str]:
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
    if not candidate.known_level:
        doubts.append("nothing measured for this workload on this cluster")
    if (candidate.choice.app, candidate.choice.variant) not in measured_variants:
        doubts.append("variant never measured anywhere")
    if candidate.low is not None and candidate.high is not None and \
            math.exp(candidate.high - candidate.low) > WIDE_INTERVAL:
        doubts.append(f"wide interval (x{math.exp(candidate.high - candidate.low):.1f})")
    if candidate.p_ok is not None and candidate.p_ok < SURE_OK:
        doubts.append(f"success uncertain (P = {candidate.p_ok:.2f})")
    if bundle.meta.get("stale"):
        doubts.append("model older than the store")
    return doubts


def _why(candidate: Candidate, ranked: list[Candidate], catalog: Catalog, sign: float) -> str:
    """The attributes whose candidates do best: mean of those sharing it over the mean of all, among the
    candidates on the same cluster (and the cluster itself when several are ranked)."""
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


# ----------------------------------------------------------------------------------------------- text


def render_text(result: dict[str, Any]) -> str:
    goal = "higher" if result["goal"] == "max" else "lower"
    where = f"on {result['cluster']}" if result["cluster"] else "on every known cluster"
    sizes = sorted({_params(p) for p in result["params"].values()})
    lines = [f"{result['app']} {result['workload']} {where} ({'; '.join(sizes)}): {result['metric']}, {goal} is better"]
    if result["model"] and result["model"]["stale"]:
        lines.append(f"note: the model was fitted on {result['model']['fitted_on_runs']} runs and the store has "
                     "changed since; measured values are current (`python -m planner fit` refreshes predictions)")
    for note in result["notes"]:
        lines.append(f"note: {note}")
    if not result["recommendations"]:
        lines.append("no candidate can run here (see the left-out points below)")
    for row in result["recommendations"]:
        options = " ".join(f"{k}={v}" for k, v in sorted(row["options"].items())) or "(default options)"
        cluster = f"[{row['cluster']}] " if not result["cluster"] else ""
        if row["measured"]:
            m = row["measured"]
            value = f"measured {m['median']:.4g} (n={m['ok']}, {m['min']:.4g}..{m['max']:.4g})"
        else:
            p = row["predicted"]
            value = f"predicted {p['value']:.4g} ({p['low']:.4g}..{p['high']:.4g})"
        lines.append(f"{row['rank']:>2}. {cluster}{row['variant']}  {options}")
        lines.append(f"    {value}" + ("" if row["confidence"] == "high" else
                                        f"  LOW CONFIDENCE: {', '.join(row['low_confidence_because'])}"))
        lines.append(f"    $ {row['command']}" if row["command"] else f"    command {row['command_note']}")
        lines.append(f"    why: {row['why']}")
    if result["excluded"]:
        by: dict[str, list[dict[str, Any]]] = {}
        for item in result["excluded"]:
            by.setdefault(item["by"], []).append(item)
        parts = [f"{len(items)} by {name} (e.g. {items[0]['variant']}: {items[0]['reason']})"
                 for name, items in by.items()]
        lines.append(f"left out: {'; '.join(parts)}")
    return "\n".join(lines)


def _params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(params.items())) or "no parameters"
