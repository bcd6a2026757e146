"""What is fitted: gradient-boosted trees over one-hot features, for log FOM and for success.

Every model reads the same feature rows (`planner.learn.features`, built per point by the `Catalog`),
one-hot encoded once by one fitted `DictVectorizer` (categories as `name=value` columns, numbers as
they are); the trees are `GradientBoosting*` below `EXACT_BELOW` rows and `HistGradientBoosting*`
above. The point rows are vectorized once and the matrix is shared by the classifier, every FOM
regressor and their cross-validation folds, which is why those estimators are not each wrapped in a
Pipeline with a vectorizer of its own (the small level model, which reads context rows alone, is).
They train on one row per distinct (context, choice) point, weighted by its runs.

**FOM.** A recommendation ranks choices within one context (cluster + workload), so the regressor
learns log(FOM) *relative to its context's level* (the mean log FOM measured there): what a choice's
attributes add or take away, which carries over to contexts it never saw. The level of a context
comes from its measurements, or, for a context nothing was measured in, from a second small
regressor on context features alone.

**Success.** A classifier of "ok" against "failed or incompatible"; `planner.learn.ranking` never
recommends a point it gives less than `P_OK`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn import ensemble
from sklearn.feature_extraction import DictVectorizer
from sklearn.pipeline import Pipeline

from planner.learn import regret_model
from planner.learn.catalog import Catalog
from planner.learn.columns import Choice, Context, Runs
from planner.learn.features import Features
from planner.learn.table import Interval, RankedBy, Table

#: Below this many rows the trees are grown exactly, above on histograms.
EXACT_BELOW = 2_000


def booster(kind: str, n: int, **extra: Any) -> Any:
    """Gradient-boosted trees: exact ones on small data (the histogram kind costs ~10 ms per tree there,
    whatever the size), histogram-based ones from `EXACT_BELOW` rows on."""
    if n < EXACT_BELOW:
        if kind == "regressor":
            # few points, often noisy: shallow trees, shrinkage and subsampling keep to effects seen repeatedly
            return ensemble.GradientBoostingRegressor(**{
                "n_estimators": 100, "learning_rate": 0.05, "max_depth": 2, "subsample": 0.8 if n >= 20 else 1.0,
                "min_samples_leaf": max(3, n // 20), "random_state": 0, **extra})
        # failures are near-deterministic and may need three attributes together (MPI version x nodes x network)
        return ensemble.GradientBoostingClassifier(**{
            "n_estimators": 100, "learning_rate": 0.1, "max_depth": 3, "min_samples_leaf": 2, "random_state": 0,
            **extra})
    # small leaves: an effect only a few points show (a GPU build on the one GPU cluster of an
    # architecture) must still be learnable; early stopping (10% held out) keeps the rest in check
    # and a fit on 100,000 runs within a minute
    params = {"max_iter": 150, "learning_rate": 0.1, "min_samples_leaf": 5, "max_bins": 64,
              "l2_regularization": 1e-3, "early_stopping": True, "random_state": 0, **extra}
    return ensemble.HistGradientBoostingRegressor(**params) if kind == "regressor" else \
        ensemble.HistGradientBoostingClassifier(**params)


# ---------------------------------------------------------------------------------------------- design


@dataclass
class Design:
    """Feature rows of the distinct (context, choice) points of some runs, and which point each run is."""

    points: list[tuple[int, int]]  # (context index, choice index) into the Runs
    rows: list[Features]
    point: np.ndarray  # per selected run: index into points
    runs: np.ndarray  # indices of the selected runs


def design(runs: Runs, catalog: Catalog, mask: np.ndarray | None = None) -> Design:
    selected = np.flatnonzero(mask) if mask is not None else np.arange(len(runs))
    n = max(len(runs.choices), 1)
    codes = runs.ctx[selected].astype(np.int64) * n + runs.choice[selected]
    unique, inverse = np.unique(codes, return_inverse=True)
    points = [(int(code // n), int(code % n)) for code in unique]
    rows = [catalog.features(runs.contexts[c], runs.choices[k]) for c, k in points]
    return Design(points, rows, inverse.astype(np.int64), selected)


# ------------------------------------------------------------------------------------------------- FOM


def context_levels(ctx: np.ndarray, y: np.ndarray, size: int) -> np.ndarray:
    """Mean log FOM per context index (NaN where the context has no run here)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.bincount(ctx, weights=y, minlength=size) / np.bincount(ctx, minlength=size)


def per_point(point: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct points, the mean of values over each point's runs, and how many runs each has.

    Training on point means weighted by run counts gives the same squared-error fit as training on
    every run, in a fraction of the time when points are repeated.
    """
    points, inverse = np.unique(point, return_inverse=True)
    count = np.bincount(inverse)
    return points, np.bincount(inverse, weights=values) / count, count


def fit_relative(X: np.ndarray, y: np.ndarray, ctx: np.ndarray, point: np.ndarray, size: int, *,
                 seed: int = 0) -> tuple[Any, np.ndarray]:
    """The regressor of log FOM relative to the context level, and the levels (per context index) it used;
    X has a row per point, y, ctx and point a value per run."""
    levels = context_levels(ctx, y, size)
    points, relative, count = per_point(point, y - levels[ctx])
    return booster("regressor", len(points), random_state=seed).fit(X[points], relative, sample_weight=count), levels


def fit_level(rows: list[Features], levels: np.ndarray) -> Pipeline:
    """Context features (a row per context) -> level, for contexts nothing was measured in. Few rows, read
    on their own: a Pipeline of its own vectorizer and trees."""
    return Pipeline([("features", DictVectorizer(sparse=False)),
                     ("model", booster("regressor", len(levels), min_samples_leaf=1))]).fit(rows, levels)


@dataclass
class Ranking:
    """What orders the candidates of a context: the ranking model (planner.learn.regret_model) on the shared
    columns + priors, or the simple rule that ranked better than it on held-out clusters at fit time."""

    model: Any
    priors: regret_model.Priors
    by: str = "model"  # one of regret_model.SCORERS
    #: held-out errors of the estimate of log normalized FOM: 10%, 90% quantiles and sd (None: not checked)
    residuals: tuple[float, float, float] | None = None

    def score(self, X: np.ndarray, points: list[tuple[Context, Choice]], attrs: regret_model.ClusterAttrs) -> tuple[
            np.ndarray, np.ndarray]:
        """Per point: the key it is ranked by (higher first) and the estimate of its log normalized FOM."""
        if not len(points):
            return np.zeros(0), np.zeros(0)
        if self.by != "model":
            return self.priors.rule(self.by, points, attrs)
        estimate = self.model.predict(np.hstack([X, self.priors.matrix(points, attrs)]))
        return estimate, estimate


@dataclass
class FomModel:
    """log(FOM) = level of the context + what the choice adds there."""

    metric: str
    relative: Any  # regressor on the shared vectorizer's columns
    level: Pipeline | None  # context features -> level; None with too few contexts
    offsets: dict[Context, float]  # measured levels
    level_mean: float
    interval: Interval
    ranking: Ranking | None = None
    goal: str = "max"  # what its ranking was fitted towards (planner.core.metrics.Metric.goal)

    def levels(self, contexts: list[Context], context_rows: list[Features]) -> tuple[np.ndarray, np.ndarray]:
        """Level of each context (measured, else predicted) and whether it was measured."""
        known = np.array([c in self.offsets for c in contexts], dtype=bool)
        levels = np.array([self.offsets.get(c, np.nan) for c in contexts], dtype=float)
        missing = np.flatnonzero(~known)
        if len(missing):
            if self.level is not None:
                levels[missing] = self.level.predict([context_rows[i] for i in missing])
            else:
                levels[missing] = self.level_mean
        return levels, known


# --------------------------------------------------------------------------------------------- success


def outcomes(point: np.ndarray, ok: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows for the classifier: each point once per outcome it had, weighted by how often it had it."""
    n_ok = np.bincount(point, weights=ok, minlength=points)
    n_fail = np.bincount(point, minlength=points) - n_ok
    with_ok, with_fail = np.flatnonzero(n_ok > 0), np.flatnonzero(n_fail > 0)
    return (np.concatenate([with_ok, with_fail]),
            np.concatenate([np.ones(len(with_ok), dtype=bool), np.zeros(len(with_fail), dtype=bool)]),
            np.concatenate([n_ok[with_ok], n_fail[with_fail]]))


def fit_classifier(X: np.ndarray, ok: np.ndarray, point: np.ndarray, *, seed: int = 0) -> Any:
    """P(ok) per point; X has a row per point, ok and point a value per run."""
    rows, y, weight = outcomes(point, ok, len(X))
    return booster("classifier", len(rows), random_state=seed).fit(X[rows], y, sample_weight=weight)


def p_ok(classifier: Any, X: np.ndarray) -> np.ndarray:
    if classifier is None or not len(X):
        return np.ones(len(X))
    return classifier.predict_proba(X)[:, list(classifier.classes_).index(True)]


# ----------------------------------------------------------------------------------------------- both


@dataclass
class Models:
    """The fitted classifier (None when every run had the same outcome) and a FOM model per metric."""

    vectorizer: DictVectorizer
    success: Any
    foms: dict[str, FomModel]

    def matrix(self, rows: list[Features]) -> np.ndarray:
        return self.vectorizer.transform(rows) if rows else np.zeros((0, len(self.vectorizer.feature_names_)))

    def p_ok(self, X: np.ndarray) -> np.ndarray:
        return p_ok(self.success, X)

    def tabulate(self, catalog: Catalog, points: list[tuple[Context, Choice]]) -> Table:
        """Predictions for these points, in this order (row i is points[i])."""
        contexts = sorted({c for c, _ in points})
        choices = sorted({k for _, k in points})
        c_index = {c: i for i, c in enumerate(contexts)}
        k_index = {k: i for i, k in enumerate(choices)}
        X = self.matrix([catalog.features(c, k) for c, k in points])
        context_rows = [catalog.context_features(c) for c in contexts]
        ctx = np.array([c_index[c] for c, _ in points], dtype=np.int32)
        mid, known, rank, normalized, ranked_by = {}, {}, {}, {}, {}
        for metric, model in self.foms.items():
            levels, measured = model.levels(contexts, context_rows)
            relative = model.relative.predict(X) if len(X) else np.zeros(0)
            mid[metric] = relative + levels[ctx]
            known[metric] = measured
            if model.ranking is not None:
                rank[metric], normalized[metric] = model.ranking.score(X, points, catalog.cluster_attrs)
                ranked_by[metric] = RankedBy(model.ranking.by, model.ranking.residuals)
        return Table(contexts, choices, ctx, np.array([k_index[k] for _, k in points], dtype=np.int32),
                     self.p_ok(X), mid, known, {m: f.interval for m, f in self.foms.items()}, rank=rank,
                     normalized=normalized, ranked_by=ranked_by)
