"""The one ranking of candidates in a context, for `recommend` and `evaluate` alike. numpy only.

1. the hard rules (`Catalog.rule`, i.e. `planner.core.compat.check`) leave out what cannot run,
   except what ran in its context (a rule is a guess made before running);
2. a choice that failed in most of its runs in its context is left out, with how often;
3. the rest are predicted; the classifier leaves out an unmeasured one it gives less than `P_OK`;
4. choices measured in their context rank first, by their measured median (first-hand), then the
   others by the ranking's key: the ranking model's (`planner.learn.regret_model`), or the simple rule's
   that ranked better on held-out clusters when `fit` checked them (`validation.ranking`); by
   predicted FOM where there is no ranking; an unmeasured choice without a FOM prediction is not ranked.

`evaluate` ranks a held-out context exactly like this with its measurements hidden, and scores the
first row: the pick `recommend` would show first for a context nothing was measured in.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

from planner.core.metrics import Metric
from planner.learn import baselines
from planner.learn.catalog import Catalog
from planner.learn.columns import Choice, Context, Measured
from planner.learn.table import Predictions

#: Below this probability of success an unmeasured point is never recommended.
P_OK = 0.5
#: A point that succeeded in fewer of its runs than this share is left out.
SUCCESS_SHARE = baselines.SUCCESS_SHARE


@dataclass
class Candidate:
    context: Context
    choice: Choice
    measured: Measured | None = None
    #: the hard rules passed it when the model was fitted (a row of the prediction table): not asked again
    tabulated: bool = False
    #: why the hard rules excluded it when the model was fitted, with the catalog they would judge it with now
    ruled_out: str | None = None
    p_ok: float | None = None
    mid: float | None = None  # predicted log FOM
    low: float | None = None
    high: float | None = None
    known_level: bool = True
    excluded: str | None = None  # rules | measured | classifier
    reason: str | None = None
    score: float | None = None  # the ranking's key, higher is better
    normalized: float | None = None  # the ranking's estimate of its log share of the context's best

    def rank_key(self, sign: float) -> float:
        """What orders it within its tier, higher first: the measured median, else the ranking score."""
        if self.tier == 1 and self.score is not None:
            return self.score
        return sign * self.log_value

    @property
    def tier(self) -> int:
        return 0 if self.measured is not None and self.measured.values else 1

    @functools.cached_property
    def log_value(self) -> float:
        """log of the measured median, else of the prediction: what ranks it (read once ranked)."""
        if self.tier == 0:
            assert self.measured is not None and self.measured.median is not None
            return math.log(self.measured.median)
        return self.mid if self.mid is not None else -math.inf


#: Predictions for the candidates that passed the rules and their measurements, in their order.
Predict = Callable[[list[Candidate]], Predictions]


def rank(candidates: list[Candidate], catalog: Catalog, metric: Metric, predict: Predict | None) -> list[Candidate]:
    """The candidates that can run, best first; the others get `excluded` and `reason` set."""
    for candidate in candidates:
        measured = candidate.measured
        ran = measured is not None and measured.ok > 0
        reason = None if candidate.tabulated or ran else \
            candidate.ruled_out or catalog.rule(candidate.context, candidate.choice)
        if reason is not None:
            candidate.excluded, candidate.reason = "rules", reason
        elif measured is not None and measured.failed:
            candidate.excluded, candidate.reason = "measured", f"failed every time it ran here ({measured.reason()})"
        elif measured is not None and measured.ok < SUCCESS_SHARE * measured.runs:
            candidate.excluded, candidate.reason = "measured", \
                f"failed in {measured.runs - measured.ok} of its {measured.runs} runs here ({measured.reason()})"
    open_points = [c for c in candidates if c.excluded is None]
    if predict is not None and open_points:
        _apply(open_points, predict(open_points))
    ranked = [c for c in candidates if c.excluded is None and (c.tier == 0 or c.mid is not None)]
    return sorted(ranked, key=lambda c: (c.tier, -c.rank_key(metric.sign), c.choice.variant, c.choice.launch))


def _apply(candidates: list[Candidate], predictions: Predictions) -> None:
    for i, candidate in enumerate(candidates):
        candidate.p_ok = float(predictions.p_ok[i])
        if predictions.mid is not None:
            assert predictions.low is not None and predictions.high is not None and predictions.known is not None
            candidate.mid, candidate.low, candidate.high = (float(predictions.mid[i]), float(predictions.low[i]),
                                                            float(predictions.high[i]))
            candidate.known_level = bool(predictions.known[i])
        if predictions.score is not None:
            assert predictions.normalized is not None
            candidate.score = float(predictions.score[i])
            normalized = float(predictions.normalized[i])
            candidate.normalized = normalized if math.isfinite(normalized) else None
        if candidate.tier == 1 and candidate.p_ok < P_OK:
            candidate.excluded, candidate.reason = "classifier", \
                f"predicted to fail (P(success) = {candidate.p_ok:.2f})"

