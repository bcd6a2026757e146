"""Whether one method ranks better than another beyond chance: paired bootstrap intervals. numpy only.

Two methods scored in the same contexts differ context by context; the mean of those differences, with a
bootstrap interval that resamples whole groups (a held-out cluster's contexts move together, and so do a
context's scores over seeds), says whether the difference is more than the luck of which contexts were drawn.
`fit` uses it to choose what ranks (`planner.learn.validation.ranking`), `evaluate --seeds` to report each
method against the best simple rule.

The interval is the studentized (bootstrap-t) one, not the percentile one: with a handful of groups the
percentile interval cannot reach below the smallest group's difference, so four held-out clusters that all
lean one way are "beyond chance" whatever their spread. On differences with no true effect (Student t with 3
degrees of freedom, 300 draws) the percentile interval at 90% excluded 0 in 27% of the draws with 4 groups,
16% with 6 and 15% with 13; the studentized one in 10%, 11% and 12% (`tests/learn/test_intervals.py`;
Efron & Tibshirani, *An Introduction to the Bootstrap*, ch. 12; docs/learning.md).
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
            return f"{self.mean:+.3f} (no interval: one group)"
        return f"{self.mean:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"


def _rounded(value: float) -> float | None:
    return round(value, 4) if math.isfinite(value) else None


def paired(differences: np.ndarray, groups: np.ndarray, *, seed: int = 0, level: float = LEVEL) -> Difference:
    """The mean of `differences` (one per context, method minus reference) with the `level` studentized
    bootstrap interval: whole groups (`groups`: one label per difference) drawn with replacement, each draw's
    mean standardized by its own cluster-robust standard error, and the interval read from the quantiles of
    those t values around the observed mean and standard error."""
    differences = np.asarray(differences, dtype=float)
    labels, group = np.unique(np.asarray(groups), return_inverse=True)
    mean = float(differences.mean()) if len(differences) else math.nan
    if len(labels) < 2:
        return Difference(mean, -math.inf, math.inf, len(labels), level)
    sums = np.bincount(group, weights=differences, minlength=len(labels))
    counts = np.bincount(group, minlength=len(labels)).astype(float)
    observed, error = _mean_and_error(sums[None, :], counts[None, :])
    drawn = np.random.default_rng(seed).integers(0, len(labels), size=(RESAMPLES, len(labels)))
    means, errors = _mean_and_error(sums[drawn], counts[drawn])
    shift = means - observed[0]
    # a draw of one group repeated has no spread: its t is infinite unless its mean is the observed one
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(errors > 0, shift / errors, np.where(np.isclose(shift, 0.0), 0.0, np.sign(shift) * np.inf))
    tail = (1 - level) / 2
    low_t, high_t = np.quantile(t, tail), np.quantile(t, 1 - tail)
    with np.errstate(invalid="ignore"):  # 0 x inf: no spread observed, the interval is the mean
        low = mean - high_t * error[0] if error[0] > 0 else mean
        high = mean - low_t * error[0] if error[0] > 0 else mean
    return Difference(mean, float(low), float(high), len(labels), level)


def _mean_and_error(sums: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of groups (their sums and counts of differences): the mean difference and its cluster-robust
    standard error (the groups' residual sums, with the small-sample factor G / (G - 1))."""
    total = counts.sum(axis=1)
    mean = sums.sum(axis=1) / total
    groups = sums.shape[1]
    residuals = sums - counts * mean[:, None]
    return mean, np.sqrt((residuals ** 2).sum(axis=1) * groups / (groups - 1)) / total
