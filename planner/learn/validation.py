"""Grouped cross-validation: how wrong the models are on points they did not see.

Folds come from scikit-learn's `GroupKFold(shuffle=True)` with a point (one choice in one context) as
the group, so a point's repeats are never on both sides. The out-of-fold residuals of log FOM give
the prediction interval (split-conformal: their 10% and 90% quantiles); the classifier is scored by
(balanced) accuracy at the `P_OK` threshold; the level model by its error on held-out contexts.
Cross-validation runs on at most `CV_SAMPLE` runs (whole points drawn at random), to keep `fit` fast.

The ranking is checked apart (`ranking`), the way `evaluate` scores it: whole clusters are held out,
and in each of their contexts the first pick of the ranking model and of each simple rule it could
fall back to is scored by its regret. `fit` ranks with the model only where it ranked better than the
best of those rules beyond chance (`planner.learn.intervals`), otherwise with that rule.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GroupKFold, KFold

from planner.learn import estimators, intervals, regret_model
from planner.learn.features import Features
from planner.learn.ranking import P_OK

CV_SAMPLE = 10_000
CV_FOLDS = 5
#: Folds of the ranking check above `CV_SAMPLE` points: each still holds out a third of the clusters (dozens
#: of contexts), and the check costs three fits of the ranking model instead of five.
LARGE_FOLDS = 3
INTERVAL = (0.1, 0.9)
#: The interval where there is too little data to cross-validate: x0.8 .. x1.25
DEFAULT_RESIDUALS = (math.log(0.8), math.log(1.25))
#: Predicted-vs-measured pairs kept for the report's figure.
SAMPLE_SHOWN = 3000


@dataclass
class FomScores:
    """Out-of-fold errors of the log FOM regressor (JSON keys as `fit --json` prints them)."""

    folds: int
    cv_runs: int
    measured: list[float]  # a sample of out-of-fold pairs, for the report's figure
    predicted: list[float]
    mae_log: float
    median_factor: float
    residuals: tuple[float, float]  # 10% and 90% quantiles of measured - predicted (log)

    def as_dict(self) -> dict[str, Any]:
        return {"folds": self.folds, "cv_runs": self.cv_runs,
                "sample": {"measured": self.measured, "predicted": self.predicted},
                "mae_log": self.mae_log, "median_factor": self.median_factor}


@dataclass
class SuccessScores:
    folds: int
    cv_runs: int
    accuracy: float
    balanced_accuracy: float
    false_ok: int
    false_fail: int


def sample_groups(groups: np.ndarray, limit: int) -> np.ndarray:
    """Indices of the rows of whole groups drawn at random until about `limit` rows (all when fewer)."""
    if len(groups) <= limit:
        return np.arange(len(groups))
    unique, inverse = np.unique(groups, return_inverse=True)
    order = np.random.default_rng(0).permutation(len(unique))
    wanted = int(np.searchsorted(np.cumsum(np.bincount(inverse)[order]), limit)) + 1
    take = np.zeros(len(unique), dtype=bool)
    take[order[:wanted]] = True
    return np.flatnonzero(take[inverse])


def _folds(point: np.ndarray) -> Iterator[np.ndarray]:
    """Training masks of up to `CV_FOLDS` folds over runs, grouped by point; none with fewer than 2 points."""
    folds = min(CV_FOLDS, len(np.unique(point)))
    if folds < 2:
        return
    splitter = GroupKFold(folds, shuffle=True, random_state=0)
    for train, _ in splitter.split(point, groups=point):
        mask = np.zeros(len(point), dtype=bool)
        mask[train] = True
        yield mask


def fom(X: np.ndarray, y: np.ndarray, ctx: np.ndarray, point: np.ndarray, size: int) -> FomScores | None:
    """Out-of-fold log FOM of every (sampled) run; X has a row per point, the others a value per run.
    A held-out context's level is its training level, or the mean of all levels where it has none."""
    picked = sample_groups(point, CV_SAMPLE)
    y, ctx, point = y[picked], ctx[picked], point[picked]
    measured, predicted = [], []
    for train in _folds(point):
        test = ~train
        model, levels = estimators.fit_relative(X, y[train], ctx[train], point[train], size)
        level = np.where(np.isnan(levels[ctx[test]]), float(np.nanmean(levels)), levels[ctx[test]])
        measured.append(y[test])
        predicted.append(model.predict(X[point[test]]) + level)
    if not measured:
        return None
    y_true, y_guess = np.concatenate(measured), np.concatenate(predicted)
    errors = y_true - y_guess
    keep = sample_groups(np.arange(len(errors)), SAMPLE_SHOWN)
    return FomScores(len(measured), len(errors), np.exp(y_true[keep]).round(6).tolist(),
                     np.exp(y_guess[keep]).round(6).tolist(), float(np.mean(np.abs(errors))),
                     float(math.exp(np.median(np.abs(errors)))),
                     (float(np.quantile(errors, INTERVAL[0])), float(np.quantile(errors, INTERVAL[1]))))


def success(X: np.ndarray, ok: np.ndarray, point: np.ndarray) -> SuccessScores | None:
    """Out-of-fold "will it run" guesses at the `P_OK` threshold, scored against what happened."""
    picked = sample_groups(point, CV_SAMPLE)
    ok, point = ok[picked], point[picked]
    guess = np.zeros(len(ok), dtype=bool)
    folds = 0
    for train in _folds(point):
        folds += 1
        if ok[train].all() or not ok[train].any():
            guess[~train] = ok[train][0]
            continue
        classifier = estimators.fit_classifier(X, ok[train], point[train])
        guess[~train] = estimators.p_ok(classifier, X[point[~train]]) >= P_OK
    if not folds:
        return None
    return SuccessScores(folds, len(ok), float((guess == ok).mean()), float(balanced_accuracy_score(ok, guess)),
                         int((guess & ~ok).sum()), int((~guess & ok).sum()))


def level_error(rows: list[Features], levels: np.ndarray) -> float:
    """Mean |log error| of the level model on contexts held out of its fit (one row per context)."""
    errors = []
    for train, test in KFold(min(CV_FOLDS, len(levels)), shuffle=True, random_state=0).split(levels):
        model = estimators.fit_level([rows[i] for i in train], levels[train])
        errors.append(np.abs(model.predict([rows[i] for i in test]) - levels[test]))
    return float(np.mean(np.concatenate(errors)))


@dataclass
class RankingCheck:
    """How each scorer's first pick did in contexts held out of its fit (JSON keys as `fit --json` prints)."""

    folds: int
    held_out: str  # cluster, or context where the store has one cluster
    contexts: int
    mean_regret: dict[str, float]  # per scorer (regret_model.SCORERS)
    #: the best simple rule there: `regret_model.DEFAULT_RULE` unless another rule beat it beyond chance
    best_rule: str
    #: the model's regret minus that rule's, context by context, with its interval (clusters resampled)
    difference: intervals.Difference
    #: the model where it beat the best rule beyond chance (`difference.better`), else that rule
    ranked_by: str
    #: the chosen scorer's held-out errors of log normalized FOM (estimate - measured): 10%, 90% quantiles, sd
    residuals: tuple[float, float, float]

    @property
    def why(self) -> str:
        """Why the scorer that ranks does, in one line (fit, recommend and evaluate say it)."""
        versus = (f"mean regret {self.mean_regret['model']:.3f} against {self.mean_regret[self.best_rule]:.3f} on "
                  f"{self.contexts} contexts of held-out {self.held_out}s, difference {self.difference.text()} at "
                  f"{self.difference.level:.0%}")
        if self.ranked_by == "model":
            return f"the model beat the best simple rule, {self.best_rule}, beyond chance ({versus})"
        return f"the model was {self.difference.verdict(self.best_rule)} beyond chance ({versus})" \
            if self.difference.worse else f"the model was no better than {self.best_rule} beyond chance ({versus})"

    def as_dict(self) -> dict[str, Any]:
        low, high, sd = self.residuals
        return {"folds": self.folds, "held_out": self.held_out, "contexts": self.contexts,
                "mean_regret": self.mean_regret, "best_rule": self.best_rule,
                "model_minus_rule": self.difference.as_dict(), "ranked_by": self.ranked_by, "why": self.why,
                "residuals": {"q10": low, "q90": high, "sd": sd}}


#: What a fold's scorers say of every point, learnt from the training points only: per scorer, the key it
#: ranks by (higher first) and its estimate of the log normalized FOM.
ScoreFold = Callable[[np.ndarray], dict[str, tuple[np.ndarray, np.ndarray]]]


def ranking(target: np.ndarray, point_ctx: np.ndarray, groups: np.ndarray, held_out: str,
            score_fold: ScoreFold, *, seed: int = 0) -> RankingCheck | None:
    """Hold out whole groups (clusters) in up to `CV_FOLDS` folds (`LARGE_FOLDS` on many points); in each
    held-out context with two or more points, score every scorer's first pick (ties: their mean) by its regret
    exp(-normalized log FOM). The model ranks only if its regrets are lower than the best rule's beyond chance
    (`intervals.paired` over whole groups); otherwise that rule does: choosing the lower of two means on a
    dozen contexts rewards luck, whichever side it falls. `target`, `point_ctx` and `groups` have a value per
    point. None with fewer than two groups."""
    if len(np.unique(groups)) < 2:
        return None
    folds = min(CV_FOLDS if len(target) <= CV_SAMPLE else LARGE_FOLDS, len(np.unique(groups)))
    regrets: dict[str, list[float]] = defaultdict(list)
    context_group: list[Any] = []
    errors: dict[str, list[np.ndarray]] = defaultdict(list)
    for train_rows, test in GroupKFold(folds, shuffle=True, random_state=seed).split(target, groups=groups):
        train = np.zeros(len(target), dtype=bool)
        train[train_rows] = True
        scored = score_fold(train)
        for context in np.unique(point_ctx[test]):
            rows = test[point_ctx[test] == context]
            if len(rows) >= 2:
                context_group.append(groups[rows[0]])
        for name, (key, estimate) in scored.items():
            known = test[np.isfinite(estimate[test])]  # a rule has no estimate where the choice never ran
            errors[name].append(estimate[known] - target[known])
            for context in np.unique(point_ctx[test]):
                rows = test[point_ctx[test] == context]
                if len(rows) >= 2:
                    top = rows[key[rows] == key[rows].max()]
                    regrets[name].append(float(np.mean(np.exp(-target[top]))))
    if not regrets:
        return None
    means = {name: float(np.mean(values)) for name, values in regrets.items()}
    units = np.array(context_group, dtype=object).astype(str)

    def versus(name: str, reference: str) -> intervals.Difference:
        return intervals.paired(np.array(regrets[name]) - np.array(regrets[reference]), units, seed=seed,
                                level=intervals.DECIDE)

    # the best rule: the default one unless another beat it beyond chance (the rules' order on a dozen contexts
    # is mostly luck too, and a choice that flips from fold to fold ranks worse than any one of them)
    best_rule = regret_model.DEFAULT_RULE
    for name in sorted(regret_model.RULES, key=lambda name: means[name]):
        if name != regret_model.DEFAULT_RULE and versus(name, regret_model.DEFAULT_RULE).better:
            best_rule = name
            break
    difference = versus("model", best_rule)
    chosen = "model" if difference.better else best_rule
    residuals = np.concatenate(errors[chosen])
    if not len(residuals):
        return None
    return RankingCheck(folds, held_out, len(regrets[chosen]), {k: round(v, 4) for k, v in means.items()},
                        best_rule, difference, chosen,
                        (float(np.quantile(residuals, INTERVAL[0])), float(np.quantile(residuals, INTERVAL[1])),
                         float(np.std(residuals))))
