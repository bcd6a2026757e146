"""What the store teaches: a FOM regressor with prediction intervals and a success classifier.

Both are scikit-learn Pipelines of stock parts, `DictVectorizer` (one-hot for categories, numbers as
they are) then gradient-boosted trees (`GradientBoosting*` below 2,000 points, `HistGradientBoosting*`
above), over the features of `planner.learn.features`; they share one fitted vectorizer. They train on one
row per distinct point, weighted by its runs.

**FOM.** A recommendation ranks choices within one context (cluster + workload), so the regressor
learns log(FOM) *relative to its context's level* (the mean log FOM measured there): what a choice's
attributes add or take away, which carries over to contexts it never saw. The level of a context
comes from its measurements, or, for a context nothing was measured in, from a second small
regressor on context features alone. Intervals are split-conformal: the 10% and 90% quantiles of
out-of-fold residuals (grouped cross-validation, a point's repeats never on both sides), widened by
the level model's own cross-validated error where the level is predicted.

**Success.** A classifier of "ok" against "failed or incompatible" over every stored run; a point
it gives less than `P_OK` never gets recommended (nor does one the hard rules exclude).

**Persistence.** `results/models/<store name>/` beside the store: `meta.json` (library versions,
model format, the store's fingerprint, cross-validated errors, importances), `models.joblib` (the
pipelines) and `table.npz` (predictions for every point known at fit time, so `recommend` answers
without importing scikit-learn). A model from another scikit-learn or format version is refused:
run `python -m planner fit` again.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
import uuid
import warnings
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from planner.core.errors import InputError
from planner.learn.catalog import Catalog
from planner.learn.dataset import Choice, Context, Runs
from planner.learn.features import CONTEXT_GROUPS, Features, group_of

if TYPE_CHECKING:
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.pipeline import Pipeline

MODEL_FORMAT = 1
#: Below this probability of success a point is never recommended.
P_OK = 0.5
#: Cross-validation runs on at most this many runs (whole points drawn at random), to keep `fit` fast.
CV_SAMPLE = 10_000
CV_FOLDS = 5
#: Fits on fewer runs than this use one thread.
SMALL = 20_000
#: Below this many rows the trees are grown exactly, above on histograms.
EXACT_BELOW = 2_000
INTERVAL = (0.1, 0.9)
#: z of the interval's quantiles under a normal law, to widen it by the level model's error
_Z = 1.2816
#: Figures of merit where less is better; any other is maximized.
MINIMIZED = {"loop_time", "wall_time", "wall", "hours_per_ns", "process_wall", "price", "cost"}


def goal_of(metric: str) -> str:
    return "min" if metric in MINIMIZED or metric.endswith(("_time", "_seconds")) else "max"


def library_versions() -> dict[str, Any]:
    """What a model file depends on; read without importing scikit-learn."""
    return {"format": MODEL_FORMAT, "scikit-learn": version("scikit-learn"), "numpy": version("numpy"),
            "python": platform.python_version()}


def model_dir(store_path: str | Path) -> Path:
    path = Path(store_path)
    return path.parent / "models" / path.stem


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
    codes = runs.ctx[selected].astype(np.int64) * max(len(runs.choices), 1) + runs.choice[selected]
    unique, inverse = np.unique(codes, return_inverse=True)
    n = max(len(runs.choices), 1)
    points = [(int(code // n), int(code % n)) for code in unique]
    rows = [catalog.features(runs.contexts[c], runs.choices[k]) for c, k in points]
    return Design(points, rows, inverse.astype(np.int64), selected)


def _booster(kind: str, n: int, **extra: Any) -> Any:
    """Gradient-boosted trees: exact ones on small data (the histogram kind costs ~10 ms per tree there,
    whatever the size), histogram-based ones from `EXACT_BELOW` rows on."""
    from sklearn import ensemble

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


def _pipeline(vectorizer: DictVectorizer, estimator: Any) -> Pipeline:
    from sklearn.pipeline import Pipeline

    return Pipeline([("features", vectorizer), ("model", estimator)])


# ------------------------------------------------------------------------------------------------- FOM


@dataclass
class FomModel:
    """log(FOM) = level of the context + what the choice adds there."""

    metric: str
    goal: str
    relative: Pipeline
    level: Pipeline | None
    offsets: dict[Context, float]
    level_mean: float
    level_error: float
    residuals: tuple[float, float]
    cv: dict[str, Any] = field(default_factory=dict)

    def levels(self, contexts: list[Context], context_rows: list[Features]) -> tuple[np.ndarray, np.ndarray]:
        known = np.array([c in self.offsets for c in contexts], dtype=bool)
        levels = np.array([self.offsets.get(c, np.nan) for c in contexts], dtype=float)
        if (~known).any():
            missing = np.flatnonzero(~known)
            if self.level is not None:
                levels[missing] = self.level.predict([context_rows[i] for i in missing])
            else:
                levels[missing] = self.level_mean
        return levels, known


def interval(residuals: tuple[float, float], level_error: float, mid: Any, known: Any) -> tuple[Any, Any]:
    """The 80% interval of log FOM: out-of-fold residual quantiles, wider where the level is predicted."""
    widen = np.where(known, 0.0, _Z * level_error)
    return mid + residuals[0] - widen, mid + residuals[1] + widen


def _levels(ctx: np.ndarray, y: np.ndarray, size: int) -> np.ndarray:
    """Mean log FOM per context index (NaN where the context has no run here)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.bincount(ctx, weights=y, minlength=size) / np.bincount(ctx, minlength=size)


def _per_point(point: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct points, the mean of values over each point's runs, and how many runs each has.

    Training on point means weighted by run counts gives the same squared-error fit as training on
    every run, in a fraction of the time when points are repeated.
    """
    points, inverse = np.unique(point, return_inverse=True)
    count = np.bincount(inverse)
    return points, np.bincount(inverse, weights=values) / count, count


def fit_fom(runs: Runs, catalog: Catalog, metric: str, d: Design, X: np.ndarray, vectorizer: DictVectorizer, *,
            cv: bool) -> FomModel | None:
    value = runs.values[metric][d.runs]
    with np.errstate(invalid="ignore"):
        usable = np.flatnonzero(runs.ok[d.runs] & np.isfinite(value) & (value > 0))
    if len(usable) < 2:
        return None
    y = np.log(value[usable])
    ctx = runs.ctx[d.runs[usable]]
    point = d.point[usable]
    levels = _levels(ctx, y, len(runs.contexts))
    points, relative, count = _per_point(point, y - levels[ctx])
    estimator = _booster("regressor", len(points)).fit(X[points], relative, sample_weight=count)
    report: dict[str, Any] = {"runs": len(usable), "points": len(points)}
    residuals = (math.log(0.8), math.log(1.25))  # stands when there is too little data to cross-validate
    if cv:
        oof = _cv_fom(X, y, ctx, point, len(runs.contexts))
        if oof is not None:
            errors = oof.pop("residual")
            residuals = (float(np.quantile(errors, INTERVAL[0])), float(np.quantile(errors, INTERVAL[1])))
            report.update(oof, mae_log=float(np.mean(np.abs(errors))),
                          median_factor=float(math.exp(np.median(np.abs(errors)))))
    offsets = {int(c): float(levels[c]) for c in np.unique(ctx)}
    level, level_mean, level_error = _fit_level(runs, catalog, offsets)
    report["level_error_log"] = level_error
    return FomModel(metric, goal_of(metric), _pipeline(vectorizer, estimator), level,
                    {runs.contexts[c]: v for c, v in offsets.items()}, level_mean, level_error, residuals, report)


def _cv_fom(X: np.ndarray, y: np.ndarray, ctx: np.ndarray, point: np.ndarray, size: int) -> dict[str, Any] | None:
    """K-fold over points: out-of-fold residuals of every run, a point's repeats never on both sides."""
    from sklearn.model_selection import KFold

    picked = _sample_groups(point, CV_SAMPLE)
    y, ctx, point = y[picked], ctx[picked], point[picked]
    points = np.unique(point)
    folds = min(CV_FOLDS, len(points))
    if folds < 2:
        return None
    residual, measured, predicted = [], [], []
    for train_points, _test_points in KFold(folds, shuffle=True, random_state=0).split(points):
        train = np.isin(point, points[train_points])
        test = ~train
        levels = _levels(ctx[train], y[train], size)
        fallback = float(np.nanmean(levels))
        train_points_, relative, count = _per_point(point[train], y[train] - levels[ctx[train]])
        model = _booster("regressor", len(train_points_)).fit(X[train_points_], relative, sample_weight=count)
        level = np.where(np.isnan(levels[ctx[test]]), fallback, levels[ctx[test]])
        guess = model.predict(X[point[test]]) + level
        residual.append(y[test] - guess)
        measured.append(y[test])
        predicted.append(guess)
    errors = np.concatenate(residual)
    keep = _sample_groups(np.arange(len(errors)), 3000)
    return {"residual": errors, "folds": folds, "cv_runs": len(errors),
            "sample": {"measured": np.exp(np.concatenate(measured)[keep]).round(6).tolist(),
                       "predicted": np.exp(np.concatenate(predicted)[keep]).round(6).tolist()}}


def _sample_groups(groups: np.ndarray, limit: int) -> np.ndarray:
    """Indices of the rows of whole groups drawn at random until about `limit` rows (all when fewer)."""
    if len(groups) <= limit:
        return np.arange(len(groups))
    unique, inverse = np.unique(groups, return_inverse=True)
    order = np.random.default_rng(0).permutation(len(unique))
    wanted = int(np.searchsorted(np.cumsum(np.bincount(inverse)[order]), limit)) + 1
    take = np.zeros(len(unique), dtype=bool)
    take[order[:wanted]] = True
    return np.flatnonzero(take[inverse])


def _fit_level(runs: Runs, catalog: Catalog, offsets: dict[int, float]) -> tuple[Pipeline | None, float, float]:
    """Context features -> level, for contexts nothing was measured in; and its cross-validated error."""
    from sklearn.feature_extraction import DictVectorizer

    values = np.array(list(offsets.values()))
    mean = float(values.mean())
    if len(values) < 4:
        return None, mean, float(max(values.std(), math.log(2)))
    rows = [catalog.context_features(runs.contexts[c]) for c in offsets]
    vectorizer = DictVectorizer(sparse=False)
    X = vectorizer.fit_transform(rows)
    errors = []
    for test in np.array_split(np.random.default_rng(0).permutation(len(values)), min(5, len(values))):
        train = np.setdiff1d(np.arange(len(values)), test)
        model = _booster("regressor", len(train), min_samples_leaf=1).fit(X[train], values[train])
        errors.append(np.abs(model.predict(X[test]) - values[test]))
    estimator = _booster("regressor", len(values), min_samples_leaf=1).fit(X, values)
    return _pipeline(vectorizer, estimator), mean, float(np.mean(np.concatenate(errors)))


# --------------------------------------------------------------------------------------------- success


def _outcomes(point: np.ndarray, ok: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows for the classifier: each point once per outcome it had, weighted by how often it had it."""
    n_ok = np.bincount(point, weights=ok, minlength=points)
    n_fail = np.bincount(point, minlength=points) - n_ok
    with_ok, with_fail = np.flatnonzero(n_ok > 0), np.flatnonzero(n_fail > 0)
    return (np.concatenate([with_ok, with_fail]),
            np.concatenate([np.ones(len(with_ok), dtype=bool), np.zeros(len(with_fail), dtype=bool)]),
            np.concatenate([n_ok[with_ok], n_fail[with_fail]]))


def fit_success(runs: Runs, d: Design, X: np.ndarray, vectorizer: DictVectorizer, *, cv: bool) -> tuple[
        Pipeline | None, dict[str, Any]]:
    ok = runs.ok[d.runs]
    report: dict[str, Any] = {"runs": len(ok), "failed": int((~ok).sum())}
    if ok.all() or not ok.any():
        report["note"] = "every stored run " + ("succeeded" if ok.all() else "failed") + \
            ": no classifier; the hard rules alone decide what can run"
        return None, report
    if cv:
        report.update(_cv_success(X, ok, d.point))
    rows, y, weight = _outcomes(d.point, ok, len(d.points))
    estimator = _booster("classifier", len(rows)).fit(X[rows], y, sample_weight=weight)
    return _pipeline(vectorizer, estimator), report


def _cv_success(X: np.ndarray, ok: np.ndarray, point: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import KFold

    picked = _sample_groups(point, CV_SAMPLE)
    ok, point = ok[picked], point[picked]
    points = np.unique(point)
    folds = min(CV_FOLDS, len(points))
    if folds < 2:
        return {}
    guess = np.zeros(len(ok), dtype=bool)
    for train_points, _test_points in KFold(folds, shuffle=True, random_state=0).split(points):
        train = np.isin(point, points[train_points])
        rows, y, weight = _outcomes(point[train], ok[train], int(point.max()) + 1)
        if y.all() or not y.any():
            guess[~train] = y[0]
            continue
        model = _booster("classifier", len(rows)).fit(X[rows], y, sample_weight=weight)
        guess[~train] = model.predict_proba(X[point[~train]])[:, 1] >= P_OK
    return {"folds": folds, "cv_runs": len(ok), "accuracy": float((guess == ok).mean()),
            "balanced_accuracy": float(balanced_accuracy_score(ok, guess)),
            "false_ok": int((guess & ~ok).sum()), "false_fail": int((~guess & ok).sum())}


# ----------------------------------------------------------------------------------------------- both


@dataclass
class Models:
    vectorizer: DictVectorizer
    success: Pipeline | None
    foms: dict[str, FomModel]
    report: dict[str, Any]

    def matrix(self, rows: list[Features]) -> np.ndarray:
        return self.vectorizer.transform(rows) if rows else np.zeros((0, len(self.vectorizer.feature_names_)))

    def p_ok(self, X: np.ndarray) -> np.ndarray:
        if self.success is None or not len(X):
            return np.ones(len(X))
        classes = list(self.success[-1].classes_)
        return self.success[-1].predict_proba(X)[:, classes.index(True)]


def fit(runs: Runs, catalog: Catalog, metrics: list[str], *, mask: np.ndarray | None = None,
        cv: bool = True) -> Models:
    """Fit the classifier and a FOM regressor per metric on the selected runs."""
    from threadpoolctl import threadpool_limits

    selected = len(runs) if mask is None else int(mask.sum())
    # OpenMP threads cost more than they give on small data (much more on a busy machine)
    with threadpool_limits(limits=None if selected >= SMALL else 1, user_api="openmp"):
        return _fit(runs, catalog, metrics, mask, cv)


def _fit(runs: Runs, catalog: Catalog, metrics: list[str], mask: np.ndarray | None, cv: bool) -> Models:
    from sklearn.feature_extraction import DictVectorizer

    d = design(runs, catalog, mask)
    vectorizer = DictVectorizer(sparse=False).fit(d.rows)
    X = vectorizer.transform(d.rows)
    success, success_report = fit_success(runs, d, X, vectorizer, cv=cv)
    foms = {}
    for metric in metrics:
        model = fit_fom(runs, catalog, metric, d, X, vectorizer, cv=cv)
        if model is not None:
            foms[metric] = model
    report = {"runs": len(d.runs), "points": len(d.points), "features": len(vectorizer.feature_names_),
              "success": success_report, "foms": {m: f.cv for m, f in foms.items()}}
    models = Models(vectorizer, success, foms, report)
    if cv:
        report["importances"] = importances(models, d.rows)
    return models


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
    reference = {m: f.relative[-1].predict(base) for m, f in models.foms.items()}
    reference_ok = models.p_ok(base)
    for group in groups:
        donors = rng.permutation(len(sample))
        shuffled = [{**{k: v for k, v in row.items() if group_of(k) != group},
                     **{k: v for k, v in sample[j].items() if group_of(k) == group}} for row, j in zip(sample, donors,
                                                                                                   strict=True)]
        X = models.matrix(shuffled)
        for metric, model in models.foms.items():
            out[metric][group] = float(np.mean(np.abs(model.relative[-1].predict(X) - reference[metric])))
        if models.success is not None:
            out["success"][group] = float(np.mean(np.abs(models.p_ok(X) - reference_ok)))
    return out


# -------------------------------------------------------------------------------------- precomputed table


@dataclass
class Table:
    """Predictions for every point known at fit time: what `recommend` reads instead of the models."""

    contexts: list[Context]
    choices: list[Choice]
    ctx: np.ndarray
    choice: np.ndarray
    p_ok: np.ndarray
    mid: dict[str, np.ndarray]  # per metric: predicted log FOM
    known: dict[str, np.ndarray]  # per metric, per context: level measured (True) or predicted
    #: attributes the predictions were made with, so recommend need not look them up in the store
    cluster_attrs: dict[str, dict[str, Any]] = field(default_factory=dict)
    variant_attrs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    #: points the hard rules excluded at fit time, (context index, choice index) rows
    excluded: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int32))
    #: (app, variant) of every variant with stored runs at fit time
    measured: set[tuple[str, str]] = field(default_factory=set)

    def lookup(self, wanted: set[Context]) -> dict[tuple[Context, Choice], int]:
        index = [i for i, c in enumerate(self.contexts) if c in wanted]
        rows = np.flatnonzero(np.isin(self.ctx, index))
        return {(self.contexts[self.ctx[i]], self.choices[self.choice[i]]): int(i) for i in rows}

    def excluded_in(self, wanted: set[Context]) -> list[tuple[Context, Choice]]:
        index = [i for i, c in enumerate(self.contexts) if c in wanted]
        rows = self.excluded[np.isin(self.excluded[:, 0], index)]
        return [(self.contexts[c], self.choices[k]) for c, k in rows.tolist()]

    def exclude(self, points: list[tuple[Context, Choice]]) -> None:
        """Remember points the hard rules excluded, so recommend can say so without finding them again."""
        contexts = {c: i for i, c in enumerate(self.contexts)}
        choices = {k: i for i, k in enumerate(self.choices)}
        rows = []
        for context, choice in points:
            if context not in contexts:
                contexts[context] = len(self.contexts)
                self.contexts.append(context)
                for metric in self.known:
                    self.known[metric] = np.append(self.known[metric], False)
            if choice not in choices:
                choices[choice] = len(self.choices)
                self.choices.append(choice)
            rows.append((contexts[context], choices[choice]))
        self.excluded = np.array(rows, dtype=np.int32).reshape(-1, 2)


def predict_points(models: Models, catalog: Catalog, points: list[tuple[Context, Choice]]) -> Table:
    contexts = sorted({c for c, _ in points})
    choices = sorted({k for _, k in points})
    c_index = {c: i for i, c in enumerate(contexts)}
    k_index = {k: i for i, k in enumerate(choices)}
    X = models.matrix([catalog.features(c, k) for c, k in points])
    context_rows = [catalog.context_features(c) for c in contexts]
    mid, known = {}, {}
    ctx = np.array([c_index[c] for c, _ in points], dtype=np.int32)
    for metric, model in models.foms.items():
        levels, measured = model.levels(contexts, context_rows)
        relative = model.relative[-1].predict(X) if len(X) else np.zeros(0)
        mid[metric] = relative + levels[ctx]
        known[metric] = measured
    return Table(contexts, choices, ctx, np.array([k_index[k] for _, k in points], dtype=np.int32),
                 models.p_ok(X), mid, known, {c.cluster: catalog.cluster_attrs(c.cluster) for c in contexts},
                 {(k.app, k.variant): catalog.variant_attrs(k.app, k.variant) for k in choices})


# ---------------------------------------------------------------------------------------- persistence


@dataclass
class Bundle:
    meta: dict[str, Any]
    directory: Path
    models: Models | None = None
    table: Table | None = None


def save(directory: Path, models: Models, table: Table, meta: dict[str, Any]) -> None:
    """Write the model files; meta.json last, so a reader never sees a half-written model as complete."""
    import joblib

    directory.mkdir(parents=True, exist_ok=True)
    stamp = uuid.uuid4().hex
    meta = {**meta, "stamp": stamp, "versions": library_versions(), "created": time.time(),
            "metrics": {m: {"goal": f.goal, "residuals": list(f.residuals), "level_error": f.level_error}
                        for m, f in models.foms.items()},
            "report": models.report}
    joblib.dump({"stamp": stamp, "models": models}, directory / "models.joblib.tmp", compress=3)
    arrays: dict[str, np.ndarray] = {
        "stamp": np.array(stamp),
        "contexts": np.array([[c.cluster, c.app, c.workload, c.params] for c in table.contexts], dtype=str).reshape(
            -1, 4),
        "choices": np.array([[k.app, k.variant, k.launch] for k in table.choices], dtype=str).reshape(-1, 3),
        "ctx": table.ctx, "choice": table.choice, "p_ok": table.p_ok, "excluded": table.excluded,
        "measured": np.array(sorted(table.measured), dtype=str).reshape(-1, 2),
        "cluster_attrs": np.array([[name, json.dumps(attrs)] for name, attrs in table.cluster_attrs.items()],
                                  dtype=str).reshape(-1, 2),
        "variant_attrs": np.array([[app, name, json.dumps(attrs)] for (app, name), attrs in
                                   table.variant_attrs.items()], dtype=str).reshape(-1, 3)}
    for metric in table.mid:
        arrays[f"mid:{metric}"] = table.mid[metric]
        arrays[f"known:{metric}"] = table.known[metric]
    with open(directory / "table.npz.tmp", "wb") as handle:
        np.savez(handle, **arrays)
    os.replace(directory / "models.joblib.tmp", directory / "models.joblib")
    os.replace(directory / "table.npz.tmp", directory / "table.npz")
    tmp = directory / "meta.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1, default=_jsonable))
    os.replace(tmp, directory / "meta.json")


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(type(value))


def _refit(path: Path, why: str) -> InputError:
    return InputError(f"{why}: run `python -m planner fit` again", file=str(path))


def load_meta(directory: Path) -> dict[str, Any] | None:
    """The model's description, or None when no model was fitted; refuses a model of another version."""
    path = directory / "meta.json"
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        raise _refit(path, "not a readable model description") from None
    theirs, ours = meta.get("versions") or {}, library_versions()
    if theirs.get("format") != ours["format"] or theirs.get("scikit-learn") != ours["scikit-learn"]:
        raise _refit(path, f"this model was fitted with scikit-learn {theirs.get('scikit-learn', '?')} (model "
                           f"format {theirs.get('format', '?')}); this planner has scikit-learn {ours['scikit-learn']} "
                           f"(format {ours['format']})")
    return meta


def load_models(directory: Path, meta: dict[str, Any]) -> Models:
    import joblib
    from sklearn.exceptions import InconsistentVersionWarning

    path = directory / "models.joblib"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", InconsistentVersionWarning)
            payload = joblib.load(path)
    except InconsistentVersionWarning as warning:
        raise _refit(path, f"written by scikit-learn {warning.original_sklearn_version}") from None
    except FileNotFoundError:
        raise _refit(path, "model file missing") from None
    except Exception as err:  # a pickle from elsewhere can fail in many ways; all mean the same to a user
        raise _refit(path, f"not a model file this planner can read ({err.__class__.__name__})") from None
    if not isinstance(payload, dict) or payload.get("stamp") != meta.get("stamp"):
        raise _refit(path, "model files do not belong together (a fit was interrupted or is running)")
    return payload["models"]


def load_table(directory: Path, meta: dict[str, Any]) -> Table:
    path = directory / "table.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError) as err:
        raise _refit(path, f"not a readable prediction table ({err.__class__.__name__})") from None
    if str(arrays.get("stamp")) != meta.get("stamp"):
        raise _refit(path, "model files do not belong together (a fit was interrupted or is running)")
    try:
        return _table(arrays)
    except (KeyError, TypeError, ValueError) as err:
        raise _refit(path, f"a prediction table of another layout ({err.__class__.__name__}: {err})") from None


def _table(arrays: dict[str, np.ndarray]) -> Table:
    contexts = [Context(*row) for row in arrays["contexts"].tolist()]
    choices = [Choice(*row) for row in arrays["choices"].tolist()]
    mid = {name.split(":", 1)[1]: arrays[name] for name in arrays if name.startswith("mid:")}
    known = {name.split(":", 1)[1]: arrays[name] for name in arrays if name.startswith("known:")}
    return Table(contexts, choices, arrays["ctx"], arrays["choice"], arrays["p_ok"], mid, known,
                 {name: json.loads(text) for name, text in arrays["cluster_attrs"].tolist()},
                 {(app, name): json.loads(text) for app, name, text in arrays["variant_attrs"].tolist()},
                 arrays["excluded"], {(app, name) for app, name in arrays["measured"].tolist()})


def summary(report: dict[str, Any], directory: Path) -> str:
    """What `fit` prints: sizes, times, cross-validated errors, where the model went."""
    lines = [f"fitted on {report['runs']} runs ({report['points']} points, {report['features']} features) in "
             f"{report['seconds']['fit']:.1f} s; predictions tabulated in {report['seconds']['table']:.1f} s"]
    success = report["success"]
    if "note" in success:
        lines.append(f"success classifier: {success['note']}")
    elif "balanced_accuracy" in success:
        lines.append(f"success classifier: {success['failed']} of {success['runs']} runs failed or were "
                     f"incompatible; {success['folds']}-fold grouped CV on {success['cv_runs']} runs: accuracy "
                     f"{success['accuracy']:.3f}, balanced accuracy {success['balanced_accuracy']:.3f} "
                     f"({success['false_ok']} failures predicted ok)")
    for metric, cv in report["foms"].items():
        if "mae_log" not in cv:
            lines.append(f"{metric}: fitted on {cv['runs']} runs; too few points to cross-validate")
            continue
        lines.append(f"{metric} (log scale): {cv['folds']}-fold grouped CV on {cv['cv_runs']} runs: median error "
                     f"x{cv['median_factor']:.3f}, mean |log error| {cv['mae_log']:.3f}; where nothing was measured "
                     f"in a context its level is predicted with mean |log error| {cv['level_error_log']:.3f} "
                     f"(x{math.exp(cv['level_error_log']):.2f})")
    lines.append(f"saved to {directory}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------- fit on a store


def default_metrics(db: Any, apps: list[str]) -> list[str]:
    from planner.core.summary import DEFAULT_METRIC
    from planner.edges.datasets import has_metric

    return [DEFAULT_METRIC] if any(has_metric(db, DEFAULT_METRIC, app) for app in apps) else []


def train(db: Any, store_path: Path, catalog: Catalog, metrics: list[str], *, cv: bool = True) -> Bundle:
    """Fit on every stored run, tabulate predictions for every known point, save beside the store."""
    from planner.edges import datasets
    from planner.edges.store import Store
    from planner.learn.catalog import choice_sets

    with Store(store_path, create=False) as store:
        fingerprint = store.fingerprint()
    started = time.perf_counter()
    runs = datasets.read(db, metrics)
    catalog.stored_clusters.update(runs.cluster_attrs)
    catalog.stored_variants.update(runs.variant_attrs)
    models = fit(runs, catalog, metrics, cv=cv)
    fitted = time.perf_counter()
    points: list[tuple[Context, Choice]] = []
    excluded: list[tuple[Context, Choice]] = []
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
                    (excluded if catalog.rule(context, choice) else points).append((context, choice))
    table = predict_points(models, catalog, points)
    table.exclude(excluded)
    table.measured = {(choice.app, choice.variant) for choice in runs.choices}
    models.report["seconds"] = {"fit": round(fitted - started, 2), "table": round(time.perf_counter() - fitted, 2)}
    directory = model_dir(store_path)
    meta = {"fingerprint": fingerprint, "runs": len(runs), "experiment": catalog.exp.source if catalog.exp else None}
    save(directory, models, table, meta)
    saved = load_meta(directory)
    assert saved is not None
    return Bundle(saved, directory, models, table)


def ensure(db: Any, store_path: Path, catalog: Catalog, metric: str, notes: list[str]) -> Bundle:
    """The saved model with the metric, fitting one now (and saying so) when there is none yet."""
    directory = model_dir(store_path)
    meta = load_meta(directory)
    if meta is not None and metric in meta.get("metrics", {}):
        return Bundle(meta, directory, table=load_table(directory, meta))
    wanted = sorted({metric, *(meta or {}).get("metrics", {})})
    notes.append(f"no model for {metric} yet: fitted one now (`python -m planner fit` does this ahead)")
    return train(db, store_path, catalog, wanted)
