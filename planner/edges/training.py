"""Fit on a store and save the model files; load the fitted models back. Imports scikit-learn.

`train` reads every stored run, fits (`planner.learn.model.fit`), tabulates predictions for every
point known then (stored, or declared by the experiment) and saves them with `planner.edges.modelfiles`.
`ensure` is "the saved model, or fit one now": what `recommend` and `report` do when `fit` was not run.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from sklearn.exceptions import InconsistentVersionWarning

from planner.core.metrics import Metric, metric_of
from planner.edges import column_reader, modelfiles
from planner.edges.modelfiles import ModelMeta
from planner.edges.store import Store
from planner.learn import explain, model
from planner.learn.catalog import Catalog, built_on, choice_sets
from planner.learn.columns import Choice, Context, Runs
from planner.learn.estimators import Models
from planner.learn.table import Table


@dataclass
class Fitted:
    directory: Path
    meta: ModelMeta
    table: Table
    report: model.FitReport


def train(store: Store, catalog: Catalog, metrics: list[Metric], *, cv: bool = True) -> Fitted:
    """Fit on every stored run, tabulate predictions for every known point, save beside the store."""
    started = time.perf_counter()
    digest = modelfiles.catalog_digest(catalog)  # the catalog as the CLI built it, before the store's attributes
    measured_profiles = explain.names(column_reader.metrics(store.db))
    # the profiles are read to explain (report.profiles), never handed to the model as features
    runs = column_reader.read(store.db, [m.name for m in metrics], explain=measured_profiles)
    catalog = catalog.with_stored(runs.cluster_attrs, runs.variant_attrs).with_built_on(built_on(runs))
    models, report = model.fit(runs, catalog, metrics, cv=cv)
    report.profiles = {m.name: [link.as_dict() for link in explain.links(runs, m.name, measured_profiles)]
                       for m in metrics if not explain.names([m.name])}
    report.profiles = {metric: found for metric, found in report.profiles.items() if found}
    fitted = time.perf_counter()
    points, excluded = known_points(runs, catalog)
    table = models.tabulate(catalog, points).with_excluded(list(excluded), list(excluded.values()))
    # the attributes of every cluster and variant in it (excluded points' too: recommend judges them again)
    table.cluster_attrs = {name: catalog.cluster_attrs(name) for name in sorted({c.cluster for c in table.contexts})}
    table.variant_attrs = {(k.app, k.variant): catalog.variant_attrs(k.app, k.variant) for k in table.choices}
    table.measured = {(choice.app, choice.variant) for choice in runs.choices}
    table.built_on = {key: sorted(clusters) for key, clusters in catalog.built_on.items()}
    report.seconds = {"fit": round(fitted - started, 2), "table": round(time.perf_counter() - fitted, 2)}
    directory = modelfiles.model_dir(store.path)
    # what recommend reads instead of the store while it is unchanged: the runs of the metrics it can rank by,
    # tagged with the change counter they were read at (none if another process wrote meanwhile)
    changes = store.changes()
    snapshot = column_reader.snapshot(store.db, [m.name for m in metrics] + [p for p in measured_profiles
                                                                         if p not in {m.name for m in metrics}])
    if store.changes() != changes:
        snapshot = None
    meta = modelfiles.save(directory, models, table, changes=changes, runs=len(runs),
                           experiment=catalog.exp.source if catalog.exp else None, report=report.as_dict(),
                           goals={m.name: m.goal for m in metrics}, catalog=digest, snapshot=snapshot)
    return Fitted(directory, meta, table, report)


def known_points(runs: Runs, catalog: Catalog) -> tuple[list[tuple[Context, Choice]],
                                                       dict[tuple[Context, Choice], str]]:
    """Every point to tabulate: each app's choices (stored or declared, per cluster) in each of its contexts;
    and those the hard rules exclude, apart, with why."""
    points: list[tuple[Context, Choice]] = []
    excluded: dict[tuple[Context, Choice], str] = {}
    # what ran in a context can run there, whatever a rule says (a rule is a guess made before running); only
    # there: a choice that ran lj says nothing of a workload needing a package it lacks (ranking.rank alike)
    ran = {(runs.contexts[c], runs.choices[k]) for c, k in
           zip(runs.ctx[runs.ok].tolist(), runs.choice[runs.ok].tolist(), strict=True)}
    for app in sorted({c.app for c in runs.contexts}):
        declared_contexts, declared = catalog.experiment_points(app)
        contexts = [c for c in runs.contexts if c.app == app] + declared_contexts
        stored: dict[str, dict[Choice, None]] = {}
        for c, k in zip(runs.ctx.tolist(), runs.choice.tolist(), strict=True):
            if runs.contexts[c].app == app:
                stored.setdefault(runs.contexts[c].cluster, {})[runs.choices[k]] = None
        problems = sorted({(c.workload, c.params) for c in contexts})
        sets = choice_sets({c.cluster for c in contexts}, {k: list(v) for k, v in stored.items()}, declared)
        for cluster, choices in sorted(sets.items()):
            for workload, params in problems:
                context = Context(cluster, app, workload, params)
                for choice in choices:
                    ruled_out = None if (context, choice) in ran else catalog.rule(context, choice)
                    if ruled_out:
                        excluded[(context, choice)] = ruled_out
                    else:
                        points.append((context, choice))
    return points, excluded


def ensure(store: Store, catalog: Catalog, metric: Metric, notes: list[str]) -> tuple[ModelMeta, Table | None]:
    """The saved model and its table for this metric towards its goal, fitting one now (and saying so) when
    there is none; the table is None when the store has too few successful runs of the metric to model it."""
    directory = modelfiles.model_dir(store.path)
    previous = modelfiles.load_meta(directory)
    found = modelfiles.saved(directory, metric, previous, modelfiles.catalog_digest(catalog))
    if found is not None:
        return found
    if previous is not None and previous.goals.get(metric.name) == metric.goal:
        notes.append("the experiment, its clusters or variants as detected now (cores, microarchitecture, "
                     "artifacts, installed variants) or the planner changed since the model was fitted: fitted "
                     "again now (`python -m planner fit` does this ahead)")
    elif previous is not None and metric.name in previous.goals:
        notes.append(f"the model ranked {metric.name} towards {previous.goals[metric.name]}, asked {metric.goal}: "
                     f"fitted again towards {metric.goal} now (`python -m planner fit --metric {metric.name} "
                     f"--goal {metric.goal}` does this ahead)")
    else:
        notes.append(f"no model for {metric.name} yet: fitted one now (`python -m planner fit` does this ahead)")
    kept = [metric_of(name, previous.goals.get(name)) for name in (previous.metrics if previous else [])
            if name != metric.name]
    fitted = train(store, catalog, sorted([metric, *kept], key=lambda m: m.name))
    return fitted.meta, fitted.table if metric.name in fitted.table.mid else None


def load_models(directory: Path, meta: ModelMeta) -> Models:
    import joblib

    path = directory / modelfiles.MODELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", InconsistentVersionWarning)
            payload = joblib.load(path)
    except InconsistentVersionWarning as warning:
        raise modelfiles.refit(path, f"written by scikit-learn {warning.original_sklearn_version}") from None
    except FileNotFoundError:
        raise modelfiles.refit(path, "model file missing") from None
    except Exception as err:  # a pickle from elsewhere can fail in many ways; all mean the same to a user
        raise modelfiles.refit(path, f"not a model file this planner can read ({err.__class__.__name__})") from None
    if not isinstance(payload, dict) or payload.get("stamp") != meta.stamp:
        raise modelfiles.refit(path, "model files do not belong together (a fit was interrupted or is running)")
    return payload["models"]


def predict_missing(directory: Path, meta: ModelMeta, catalog: Catalog,
                    points: list[tuple[Context, Choice]]) -> Table:
    """Predictions of the saved models for points their table lacks (the store or experiment changed)."""
    return load_models(directory, meta).tabulate(catalog, points)
