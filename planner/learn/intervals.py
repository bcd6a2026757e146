"""Whether one method ranks better than another beyond chance: paired bootstrap intervals. numpy only.

Two methods scored in the same contexts differ context by context; the mean of those differences, with a
percentile bootstrap interval that resamples whole groups (a held-out cluster's contexts move together, and
so do a context's scores over seeds), says whether the difference is more than the luck of which contexts
were drawn. `fit` uses it to choose what ranks (`planner.learn.validation.ranking`), `evaluate --seeds` to
report each method against the best simple rule.
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
    """The mean of `differences` (one per context, method minus reference) with the `level` interval of a
    bootstrap that draws whole groups (`groups`: one label per difference) with replacement."""
    differences = np.asarray(differences, dtype=float)
    labels, group = np.unique(np.asarray(groups), return_inverse=True)
    mean = float(differences.mean()) if len(differences) else math.nan
    if len(labels) < 2:
        return Difference(mean, -math.inf, math.inf, len(labels), level)
    sums = np.bincount(group, weights=differences, minlength=len(labels))
    counts = np.bincount(group, minlength=len(labels)).astype(float)
    drawn = np.random.default_rng(seed).integers(0, len(labels), size=(RESAMPLES, len(labels)))
    means = sums[drawn].sum(axis=1) / counts[drawn].sum(axis=1)
    tail = (1 - level) / 2
    return Difference(mean, float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail)), len(labels), level)
