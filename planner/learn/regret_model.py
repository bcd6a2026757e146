"""The ranking model: how close a choice comes to the best of its context, learnt robustly.

Recommendations are judged by regret (best FOM / FOM of the pick). The ranking model learns the
*normalized* log FOM of each point (the log of its median FOM, so a repeat 3x slower moves it
little, minus the log of the best median in its context, sign-adjusted for minimized metrics), from
two kinds of features:

- the attributes of the point (`planner.learn.features`), which carry over to choices and clusters
  never measured;
- **priors**: how the same choice did elsewhere, as the rules-aware baselines see it
  (`planner.learn.baselines`): its mean, lower quartile and minimum normalized FOM over the other
  contexts of the same workload on clusters of the same architecture family, and its mean over the
  most similar clusters. A training row's priors never include its own context, as a new cluster's
  cannot.

On hpcg-dev's 14 clusters the model and the best of these rules are within each other's noise
(docs/learning.md: figures per metric and seed, with intervals). `fit` therefore checks this model
against the simple rules it is built from (`RULES`, `Priors.rule`) on held-out clusters, and ranks with
it only where it beat the best of them beyond chance; otherwise that rule ranks
(`planner.learn.validation.ranking`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from planner.learn import baselines
from planner.learn.columns import Choice, Context

#: A cluster's attributes by name (`Catalog.cluster_attrs`).
ClusterAttrs = Callable[[str], dict[str, Any]]

PRIORS = ("prior.family_mean", "prior.family_q25", "prior.family_min", "prior.nearest_mean")
#: Stands for "never measured in such a context" (normalized FOMs are in [0, 1]).
UNKNOWN = -1.0
#: The simple rules `fit` checks the model against, and falls back to when one ranks better
#: (`planner.learn.baselines`; the others need what a prediction table does not keep).
RULES = ("family_mean", "nearest_cluster", "most_often_best")
#: The rule that ranks unless another rule, or the model, ranked better than it beyond chance at fit time: the
#: strongest rule on real data (hpcg-dev: the builds' order carries over from cluster to cluster), and the
#: simplest to state ("the build best on the most other clusters").
DEFAULT_RULE = "most_often_best"
#: What ranks, in order of preference: the model, or one of the rules.
SCORERS = ("model", *RULES)
#: The key a rule ranks a choice by when it failed wherever it ran (0) or never ran in such a context
#: (UNKNOWN): below anything that ran.
_FAILED, _NEVER = -7.0, -9.0


def estimator(n: int, seed: int = 0) -> Any:
    """The same learner at every data size: histogram trees of fixed depth and number, no early stopping (its
    random validation split made the fit hang on a seed, and made large stores fit another learner than
    the one every small-store figure was measured with). Single-threaded, 100 such trees fit ~5x faster
    than exact `GradientBoostingRegressor` ones on hpcg-dev's ~1,300 points (docs/learning.md)."""
    from sklearn import ensemble

    return ensemble.HistGradientBoostingRegressor(max_iter=100, learning_rate=0.1, max_depth=3,
                                                  min_samples_leaf=min(5, max(1, n // 4)), max_bins=64,
                                                  early_stopping=False, random_state=seed)


def medians(group: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The median of the values of each group, in the order of np.unique(group)."""
    order = np.lexsort((values, group))
    sorted_groups, sorted_values = group[order], values[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    ends = np.r_[starts[1:], len(sorted_groups)]
    return (sorted_values[(starts + ends - 1) // 2] + sorted_values[(starts + ends) // 2]) / 2


def normalized(ctx: np.ndarray, value: np.ndarray, sign: float) -> np.ndarray:
    """Per point: sign x (log FOM - log of the best FOM among the points of its context), <= 0."""
    score = sign * value
    best = np.full(int(ctx.max()) + 1 if len(ctx) else 0, -np.inf)
    np.maximum.at(best, ctx, score)
    return score - best[ctx]


@dataclass
class Priors:
    """The training contexts the prior features are computed from (saved with the model)."""

    seen: list[baselines.Seen]
    clusters: dict[str, dict[str, Any]]

    def matrix(self, points: list[tuple[Context, Choice]], attrs: ClusterAttrs) -> np.ndarray:
        """One row of `PRIORS` per point; `UNKNOWN` where the choice was measured in no such context. `attrs`:
        the attributes of the points' clusters, which the training contexts may not include."""
        out = np.full((len(points), len(PRIORS)), UNKNOWN)
        by_context: dict[Context, list[int]] = defaultdict(list)
        for i, (context, _) in enumerate(points):
            by_context[context].append(i)
        # the training contexts' normalized FOMs of the points' choices as one matrix (NaN: not measured there),
        # so that each context's statistics are column reductions over the rows of its family / nearest clusters
        column = {choice: j for j, choice in enumerate(dict.fromkeys(choice for _, choice in points))}
        values = np.full((len(self.seen), len(column)), np.nan)
        for i, item in enumerate(self.seen):
            for choice, value in item.normalized.items():
                if choice in column:
                    values[i, column[choice]] = value
        row_of = {id(item): i for i, item in enumerate(self.seen)}
        columns = np.array([column[choice] for _, choice in points], dtype=np.int64)
        for context, rows in by_context.items():
            others = [item for item in self.seen if item.context != context]
            cluster = self.clusters.get(context.cluster) or attrs(context.cluster)
            at = np.array(rows, dtype=np.int64)
            for family, found in ((True, baselines.family_contexts(others, context, cluster)),
                                  (False, baselines.nearest_contexts(others, context, cluster))):
                sub = values[np.array([row_of[id(item)] for item in found], dtype=np.int64)][:, columns[at]]
                measured = ~np.isnan(sub).all(axis=0)
                sub, where = sub[:, measured], at[measured]
                if not len(where):
                    continue
                if family:
                    out[where, 0] = np.nanmean(sub, axis=0)
                    out[where, 1] = _lower_quartile(sub)
                    out[where, 2] = np.nanmin(sub, axis=0)
                else:
                    out[where, 3] = np.nanmean(sub, axis=0)
        return out

    def rule(self, name: str, points: list[tuple[Context, Choice]], attrs: ClusterAttrs,
             matrix: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """One simple rule's ranking of these points: the key it orders by (higher first) and its estimate
        of each point's log normalized FOM (what it expects the point to reach of its context's best; NaN
        where it has none). `matrix`: `self.matrix(points, attrs)` where the caller has it already."""
        if name in ("family_mean", "nearest_cluster"):
            column = (self.matrix(points, attrs) if matrix is None else matrix)[:, 0 if name == "family_mean" else 3]
            return as_key(column), as_log(column)
        if name != "most_often_best":
            raise ValueError(name)
        wins: dict[Choice, int] = defaultdict(int)
        for item in self.seen:
            wins[item.best] += 1
        means = {choice: float(np.mean(values)) for choice, values in baselines.normalized_by_choice(self.seen).items()}
        column = np.array([means.get(choice, UNKNOWN) for _, choice in points])
        # wins first, the mean normalized FOM (in [0, 1]) breaking ties, as baselines.rank does
        key = np.array([wins.get(choice, 0) for _, choice in points], dtype=float) + 0.5 * np.maximum(column, 0)
        return np.where(column == UNKNOWN, _NEVER, key), as_log(column)


def as_log(normalized: np.ndarray) -> np.ndarray:
    """Mean normalized FOMs as log normalized FOMs (<= 0); NaN where there is no estimate: the choice failed
    wherever it ran (0) or never ran in such a context (UNKNOWN)."""
    with np.errstate(divide="ignore"):
        return np.where(normalized > 0, np.log(np.maximum(normalized, 1e-300)), np.nan)


def as_key(normalized: np.ndarray) -> np.ndarray:
    """What a rule ranks by: the log normalized FOM, below which what failed, then what never ran."""
    return np.where(normalized > 0, as_log(normalized), np.where(normalized == 0, _FAILED, _NEVER))


def _lower_quartile(values: np.ndarray) -> np.ndarray:
    """np.nanpercentile(values, 25, axis=0) (linear interpolation) for columns with a value each, without its
    slow column-by-column loop."""
    ordered = np.sort(values, axis=0)  # NaN last
    count = (~np.isnan(values)).sum(axis=0)
    position = (count - 1) * 0.25
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, count - 1)
    columns = np.arange(values.shape[1])
    return ordered[low, columns] + (ordered[high, columns] - ordered[low, columns]) * (position - low)
