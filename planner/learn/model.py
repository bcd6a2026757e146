"""What the store teaches: `fit` the estimators on some runs, cross-validate them, say how good they are.

`planner.learn.estimators` holds what is fitted, `planner.learn.validation` how it is scored, and
`Models.tabulate` the predictions `recommend` reads (`planner.learn.table`). `fit` returns the fitted
`Models` with a typed `FitReport` whose `as_dict()` is what `python -m planner fit --json` prints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.feature_extraction import DictVectorizer
from threadpoolctl import threadpool_limits

from planner.core.metrics import Metric
from planner.learn import baselines, estimators, regret_model, validation
from planner.learn.catalog import Catalog
from planner.learn.columns import Choice, Runs
from planner.learn.estimators import FomModel, Models
from planner.learn.features import CONTEXT_GROUPS, Features, group_of
from planner.learn.table import Interval

#: Fewer measured contexts than this get no level model: an unmeasured context gets their mean level.
LEVEL_MODEL_FROM = 4


@dataclass
class FomReport:
    runs: int
    points: int
    level_error_log: float
    scores: validation.FomScores | None = None  # None: too few points to cross-validate
    ranking: validation.RankingCheck | None = None  # None: too few clusters or contexts to check the ranking
    goal: str = "max"  # the metric's, as fitted

    def as_dict(self) -> dict[str, Any]:
        out = {"goal": self.goal, "runs": self.runs, "points": self.points,
               **(self.scores.as_dict() if self.scores else {}),
               "level_error_log": self.level_error_log}
        if self.ranking is not None:
            out["ranking"] = self.ranking.as_dict()
        return out


@dataclass
class SuccessReport:
    runs: int
    failed: int
    note: str | None = None  # why there is no classifier
    scores: validation.SuccessScores | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"runs": self.runs, "failed": self.failed}
        if self.note is not None:
            out["note"] = self.note
        if self.scores is not None:
            out.update(vars(self.scores))
        return out


@dataclass
class FitReport:
    runs: int
    points: int
    features: int
    success: SuccessReport
    foms: dict[str, FomReport]
    #: per model (metric, or "success"), per attribute group: how far predictions move when it is shuffled
    importances: dict[str, dict[str, float]] | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # set by whoever times the fit
    #: per metric: the profiles that move most with it (measured explanations, never features)
    profiles: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"runs": self.runs, "points": self.points, "features": self.features,
                               "success": self.success.as_dict(),
                               "foms": {m: f.as_dict() for m, f in self.foms.items()}}
        if self.importances is not None:
            out["importances"] = self.importances
        if self.seconds:
            out["seconds"] = self.seconds
        if self.profiles:
            out["profiles"] = self.profiles
        return out


def fit(runs: Runs, catalog: Catalog, metrics: list[Metric], *, mask: np.ndarray | None = None,
        cv: bool = True, check_ranking: bool | None = None, seed: int = 0) -> tuple[Models, FitReport]:
    """Fit the classifier and a FOM regressor per metric on the selected runs (all by default), each metric
    ranked towards its own goal; with `cv`, cross-validate them and measure importances; with `check_ranking`
    (`cv` unless said), check the ranking model against the simple rules on held-out clusters and rank with
    the model only where it beat the best of them beyond chance. `seed`: of everything random in the fit
    (the trees, the folds of the ranking check)."""
    check_ranking = cv if check_ranking is None else check_ranking
    # one OpenMP thread: on a busy machine the trees' threads wait for each other at every split (101k runs at
    # load 15-18 on 2 cores: with two threads, 2.0 CPU-minutes and 15 wall-minutes were not enough to finish the
    # classifier's cross-validation, the first step; with one, the whole `fit` took 1.5 CPU-minutes)
    with threadpool_limits(limits=1, user_api="openmp"):
        d = estimators.design(runs, catalog, mask)
        vectorizer = DictVectorizer(sparse=False).fit(d.rows)
        X = vectorizer.transform(d.rows)
        success, success_report = _fit_success(runs, d, X, cv=cv, seed=seed)
        foms: dict[str, FomModel] = {}
        reports: dict[str, FomReport] = {}
        for metric in metrics:
            fitted = _fit_fom(runs, catalog, metric, d, X, cv=cv, check_ranking=check_ranking, seed=seed)
            if fitted is not None:
                foms[metric.name], reports[metric.name] = fitted
        models = Models(vectorizer, success, foms)
        report = FitReport(len(d.runs), len(d.points), len(vectorizer.feature_names_), success_report, reports)
        if cv:
            report.importances = importances(models, d.rows)
    return models, report


def _fit_fom(runs: Runs, catalog: Catalog, metric: Metric, d: estimators.Design, X: np.ndarray, *,
             cv: bool, check_ranking: bool, seed: int) -> tuple[FomModel, FomReport] | None:
    value = runs.values[metric.name][d.runs]
    with np.errstate(invalid="ignore"):
        usable = np.flatnonzero(runs.ok[d.runs] & np.isfinite(value) & (value > 0))
    if len(usable) < 2:
        return None
    y = np.log(value[usable])
    ctx = runs.ctx[d.runs[usable]]
    point = d.point[usable]
    relative, levels = estimators.fit_relative(X, y, ctx, point, len(runs.contexts), seed=seed)
    scores = validation.fom(X, y, ctx, point, len(runs.contexts)) if cv else None
    residuals = scores.residuals if scores is not None else validation.DEFAULT_RESIDUALS
    measured = {runs.contexts[c]: float(levels[c]) for c in np.unique(ctx)}
    level, level_mean, level_error = _fit_level(catalog, measured, cv=cv)
    ranking, check = _fit_ranking(runs, catalog, metric, d, X, y, ctx, point, check=check_ranking, seed=seed)
    model = FomModel(metric.name, relative, level, measured, level_mean, Interval(*residuals, level_error), ranking,
                     metric.goal)
    return model, FomReport(len(usable), len(np.unique(point)), level_error, scores, check, metric.goal)


def _fit_ranking(runs: Runs, catalog: Catalog, metric: Metric, d: estimators.Design, X: np.ndarray,
                 y: np.ndarray, ctx: np.ndarray, point: np.ndarray, *, check: bool,
                 seed: int) -> tuple[estimators.Ranking, validation.RankingCheck | None]:
    """The ranking model (planner.learn.regret_model) on each point's normalized median log FOM, towards the metric's
    goal; with `check`, scored against the simple rules on held-out clusters: it ranks only where it beat the
    best of them beyond chance, that rule ranks otherwise."""
    sign = metric.sign
    points = np.unique(point)
    point_ctx = np.array([d.points[p][0] for p in points], dtype=np.int64)
    target = regret_model.normalized(point_ctx, regret_model.medians(point, y), sign)
    mask = np.zeros(len(runs), dtype=bool)
    mask[d.runs] = True
    items: dict[int, list[tuple[Choice, Any]]] = {}
    for (c, k), found in runs.measured(metric.name, mask).items():
        items.setdefault(c, []).append((runs.choices[k], found))
    clusters = {runs.contexts[c].cluster: catalog.cluster_attrs(runs.contexts[c].cluster) for c in items}
    pairs = [(runs.contexts[d.points[p][0]], runs.choices[d.points[p][1]]) for p in points]

    def priors_of(contexts: set[int] | None) -> regret_model.Priors:
        return regret_model.Priors(baselines.history([(runs.contexts[c], clusters[runs.contexts[c].cluster], found)
                                                for c, found in items.items() if contexts is None or c in contexts],
                                               sign), clusters)

    def fit_on(train: np.ndarray, priors: regret_model.Priors) -> tuple[Any, np.ndarray]:
        P = priors.matrix(pairs, catalog.cluster_attrs)
        estimator = regret_model.estimator(int(train.sum()), seed)
        return estimator.fit(np.hstack([X[points][train], P[train]]), target[train]), P

    def score_fold(train: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        priors = priors_of(set(point_ctx[train].tolist()))
        fitted, P = fit_on(train, priors)
        estimate = fitted.predict(np.hstack([X[points], P]))
        rules = {name: priors.rule(name, pairs, catalog.cluster_attrs, P) for name in regret_model.RULES}
        return {"model": (estimate, estimate), **rules}

    checked = None
    if check:
        cluster_of = np.array([runs.contexts[c].cluster for c in point_ctx], dtype=object)
        several = len(set(cluster_of.tolist())) > 1
        checked = validation.ranking(target, point_ctx, cluster_of if several else point_ctx,
                                     "cluster" if several else "context", score_fold, seed=seed)
    priors = priors_of(None)
    fitted, _ = fit_on(np.ones(len(points), dtype=bool), priors)
    if checked is None:
        return estimators.Ranking(fitted, priors), None
    return estimators.Ranking(fitted, priors, checked.ranked_by, checked.residuals), checked


def _fit_level(catalog: Catalog, measured: dict[Any, float], *, cv: bool) -> tuple[Any, float, float]:
    """The level model (None with few contexts), the mean level, and the error of a predicted level
    (cross-validated with `cv`; else the spread of the levels, as with few contexts: it only widens intervals,
    which `evaluate` and `sweep --adaptive`, fitting without `cv`, do not show)."""
    values = np.array(list(measured.values()))
    mean = float(values.mean())
    spread = float(max(values.std(), math.log(2)))
    if len(values) < LEVEL_MODEL_FROM:
        return None, mean, spread
    rows = [catalog.context_features(c) for c in measured]
    return estimators.fit_level(rows, values), mean, validation.level_error(rows, values) if cv else spread


def _fit_success(runs: Runs, d: estimators.Design, X: np.ndarray, *, cv: bool,
                 seed: int = 0) -> tuple[Any, SuccessReport]:
    ok = runs.ok[d.runs]
    report = SuccessReport(len(ok), int((~ok).sum()))
    if ok.all() or not ok.any():
        report.note = "every stored run " + ("succeeded" if ok.all() else "failed") + \
            ": no classifier; the hard rules alone decide what can run"
        return None, report
    if cv:
        report.scores = validation.success(X, ok, d.point)
    return estimators.fit_classifier(X, ok, d.point, seed=seed), report


def importances(models: Models, rows: list[Features], limit: int = 600) -> dict[str, dict[str, float]]:
    """How far predictions move when one group of features is shuffled across points (model sensitivity).

    Per FOM model: mean |change| in log FOM; for the classifier: mean |change| in P(success).
    """
    rng = np.random.default_rng(0)
    sample = [rows[i] for i in rng.choice(len(rows), size=min(limit, len(rows)), replace=False)]
    base = models.matrix(sample)
    groups = sorted({group_of(name) for row in sample for name in row} - set(CONTEXT_GROUPS))
    out: dict[str, dict[str, float]] = {m: {} for m in models.foms}
    if models.success is not None:
        out["success"] = {}
    reference = {m: f.relative.predict(base) for m, f in models.foms.items()}
    reference_ok = models.p_ok(base)
    for group in groups:
        donors = rng.permutation(len(sample))
        shuffled = [{**{k: v for k, v in row.items() if group_of(k) != group},
                     **{k: v for k, v in sample[j].items() if group_of(k) == group}}
                    for row, j in zip(sample, donors, strict=True)]
        X = models.matrix(shuffled)
        for metric, model in models.foms.items():
            out[metric][group] = float(np.mean(np.abs(model.relative.predict(X) - reference[metric])))
        if models.success is not None:
            out["success"][group] = float(np.mean(np.abs(models.p_ok(X) - reference_ok)))
    return out
