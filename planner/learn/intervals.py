"""Whether one method ranks better than another beyond chance: paired bootstrap intervals. numpy only.

Two methods scored in the same contexts differ context by context; the mean of those differences, with a
bootstrap interval that resamples whole groups (a held-out cluster's contexts move together, and so do a
context's scores over seeds), says whether the difference is more than the luck of which contexts were drawn.
`fit` uses it to choose what ranks (`planner.learn.validation.ranking`), `evaluate --seeds` to report each
method against the best simple rule.

The interval is a wild cluster bootstrap-t (Cameron, Gelbach & Miller, "Bootstrap-based improvements for
inference with clustered errors", Review of Economics and Statistics 90(3), 2008), not the percentile
bootstrap it replaced: with a handful of groups the percentile interval cannot reach below the smallest
group's difference, so four held-out clusters that all lean one way were "beyond chance" whatever their
spread. On differences with no true effect (Student t with 3 degrees of freedom, 300 draws, +-2%) the
percentile interval at 90% excluded 0 in 27% of the draws with 4 groups, 16% with 6 and 15% with 13; this one
in 5%, 7% and 13% (`tests/learn/test_intervals.py`, docs/learning.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Two-sided coverage of the intervals `evaluate` reports.
LEVEL = 0.9
#: Two-sided coverage of the intervals `fit` decides by: it compares the model with the best of three rules,
#: each of them with the default rule, on a dozen held-out contexts with heavy tails (one burstable instance),
#: so each comparison must be much stricter than one reported alone. On hpcg-dev's 14 clusters x 5 seeds, at
#: 0.95 the choice left the default rule in 23 of 70 folds and the chosen ranker ended worse than it beyond
#: chance (+0.025 [+0.004, +0.048]; docs/learning.md).
DECIDE = 0.99
RESAMPLES = 2000


@dataclass(frozen=True)
class Difference:
    """Mean of a method's regrets minus a reference's, context by context (below 0: the method did better),
    and its bootstrap interval at `LEVEL`; the interval is unbounded with fewer than two groups."""

    mean: float
    low: float
    high: float
    groups: int
    level: float = LEVEL

    @property
    def better(self) -> bool:
        return self.high < 0

    @property
    def worse(self) -> bool:
        return self.low > 0

    def verdict(self, reference: str) -> str:
        if self.better:
            return f"better than {reference}"
        return f"worse than {reference}" if self.worse else f"no better than {reference}"

    def as_dict(self) -> dict[str, float | int | None]:
        return {"mean": round(self.mean, 4), "low": _rounded(self.low), "high": _rounded(self.high),
                "groups": self.groups, "level": self.level}

    def text(self) -> str:
        if not math.isfinite(self.low):
            return f"{self.mean:+.3f} (no interval: {'one group' if self.groups < 2 else 'too few groups'})"
        return f"{self.mean:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"


def _rounded(value: float) -> float | None:
    return round(value, 4) if math.isfinite(value) else None


def paired(differences: np.ndarray, groups: np.ndarray, *, seed: int = 0, level: float = LEVEL) -> Difference:
    """The mean of `differences` (one per context, method minus reference) with its `level` interval from a
    wild cluster bootstrap-t: each group's (`groups`: one label per difference) total deviation from the mean
    has its sign flipped at random (Rademacher weights), each draw's shift of the mean is divided by that draw's
    cluster-robust standard error, and the quantiles of those t values scale the observed standard error."""
    differences = np.asarray(differences, dtype=float)
    labels, group = np.unique(np.asarray(groups), return_inverse=True)
    mean = float(differences.mean()) if len(differences) else math.nan
    if len(labels) < 2:
        return Difference(mean, -math.inf, math.inf, len(labels), level)
    sums = np.bincount(group, weights=differences, minlength=len(labels))
    counts = np.bincount(group, minlength=len(labels)).astype(float)
    residuals = sums - counts * (sums.sum() / counts.sum())
    error = _error(residuals[None, :], counts.sum())[0]
    if error == 0:  # every group differs by the same amount: no spread to resample
        return Difference(mean, mean, mean, len(labels), level)
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(RESAMPLES, len(labels)))
    shift = (signs * residuals).sum(axis=1) / counts.sum()
    errors = _error(signs * residuals - counts * shift[:, None], counts.sum())
    # a draw whose groups all collapse onto its mean has no spread: its t is infinite unless it did not move (with
    # two groups half the draws do, and no interval can be had)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(errors > 0, shift / errors, np.where(np.isclose(shift, 0.0), 0.0, np.sign(shift) * np.inf))
    tail = (1 - level) / 2
    # quantiles without interpolation: between an infinite t and a finite one it is undefined
    return Difference(mean, float(mean - np.quantile(t, 1 - tail, method="inverted_cdf") * error),
                      float(mean - np.quantile(t, tail, method="inverted_cdf") * error), len(labels), level)


def _error(residuals: np.ndarray, total: float) -> np.ndarray:
    """Per row of group residual totals: the cluster-robust standard error of the mean (with the small-sample
    factor G / (G - 1))."""
    groups = residuals.shape[1]
    return np.sqrt((residuals ** 2).sum(axis=1) * groups / (groups - 1)) / total
