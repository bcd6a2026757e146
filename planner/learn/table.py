"""The prediction table: what the fitted models say about every point known at fit time. numpy only.

`fit` tabulates P(success) and the predicted log FOM (with its 80% interval) of every (context,
choice) point it knows, and `recommend` answers from this table without loading the models, so
without importing scikit-learn. `planner.edges.modelfiles` saves and loads it as plain arrays.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from planner.learn.columns import Choice, Context

#: z of the interval's quantiles under a normal law, to widen it by the level model's error
_Z = 1.2816
#: A candidate ranked below beats one above only if by this factor or more (closer ones are as good).
MARGIN = 1.05


@dataclass(frozen=True)
class Interval:
    """How far log FOM strays from a prediction: out-of-fold residual quantiles (10% and 90%), and the
    cross-validated error of the context level where it is predicted rather than measured."""

    low: float
    high: float
    level_error: float

    def around(self, mid: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The 80% interval of log FOM, wider where the context's level is predicted."""
        widen = np.where(known, 0.0, _Z * self.level_error)
        return mid + self.low - widen, mid + self.high + widen


@dataclass(frozen=True)
class RankedBy:
    """What ranks a metric's candidates (`planner.learn.regret_model.SCORERS`: the model, or the simple rule that
    ranked better on clusters held out at fit time) and how far its estimate of a candidate's share of
    its context's best strays: held-out residuals (estimate - measured, log) at 10% and 90%, and their sd."""

    by: str
    residuals: tuple[float, float, float] | None = None

    def interval(self, estimate: float) -> tuple[float, float] | None:
        """The range of the log share of the context's best a candidate estimated at `estimate` reaches: the
        held-out residuals' 10-90% range, widened by half their sd on each side (those quantiles come from
        few held-out clusters), capped at the best itself."""
        if self.residuals is None:
            return None
        low, high, sd = self.residuals
        return estimate - high - sd / 2, min(0.0, estimate - low + sd / 2)

    def p_beaten(self, estimate: float, below: np.ndarray) -> float | None:
        """The chance that a candidate ranked below one estimated at `estimate` (log share of the best) in
        fact beats it by `MARGIN` or more, the estimates' errors taken as independent normal with the
        residuals' sd: whether the ranking itself is in doubt there. None when it was not checked."""
        if self.residuals is None:
            return None
        sd = max(self.residuals[2], 1e-9) * math.sqrt(2)
        gaps = (np.asarray(below, dtype=float) - estimate - math.log(MARGIN)) / sd
        stays = np.prod([1 - 0.5 * math.erfc(-gap / math.sqrt(2)) for gap in gaps.tolist()]) if len(gaps) else 1.0
        return float(1 - stays)


@dataclass
class Predictions:
    """Predictions for some points, in the order they were asked for."""

    p_ok: np.ndarray
    #: log FOM, its interval, and whether the context's level was measured; None without a FOM model
    mid: np.ndarray | None = None
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    known: np.ndarray | None = None
    #: the ranking's key (planner.learn.regret_model), higher is better, and its estimate of the log share of the
    #: context's best; None without a ranking
    score: np.ndarray | None = None
    normalized: np.ndarray | None = None

    @staticmethod
    def join(parts: list[tuple[list[int], Predictions]]) -> Predictions:
        """Predictions of several sources put together: each part gives the positions its rows belong at."""
        order = np.argsort(np.concatenate([np.asarray(where, dtype=np.int64) for where, _ in parts]))

        def stack(name: str) -> np.ndarray | None:
            arrays = [getattr(p, name) for _, p in parts]
            return None if any(a is None for a in arrays) else np.concatenate(arrays)[order]

        p_ok = stack("p_ok")
        assert p_ok is not None
        return Predictions(p_ok, stack("mid"), stack("low"), stack("high"), stack("known"), stack("score"),
                           stack("normalized"))


@dataclass
class Table:
    """Predictions for every point known at fit time: what `recommend` reads instead of the models."""

    contexts: list[Context]
    choices: list[Choice]
    ctx: np.ndarray  # per row: index into contexts
    choice: np.ndarray  # per row: index into choices
    p_ok: np.ndarray
    mid: dict[str, np.ndarray]  # per metric, per row: predicted log FOM
    known: dict[str, np.ndarray]  # per metric, per context: level measured (True) or predicted
    intervals: dict[str, Interval] = field(default_factory=dict)
    #: attributes the predictions were made with, so recommend need not look them up in the store
    cluster_attrs: dict[str, dict[str, Any]] = field(default_factory=dict)
    variant_attrs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    #: points the hard rules excluded at fit time, (context index, choice index) rows (why: `excluded_reasons`)
    excluded: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int32))
    #: (app, variant) of every variant with stored runs at fit time
    measured: set[tuple[str, str]] = field(default_factory=set)
    #: per metric, per row: the ranking's key and its estimate of the log share of the context's best
    rank: dict[str, np.ndarray] = field(default_factory=dict)
    normalized: dict[str, np.ndarray] = field(default_factory=dict)
    #: per metric: what ranks (the model or a rule) and its held-out error
    ranked_by: dict[str, RankedBy] = field(default_factory=dict)
    #: (app, variant) of imported builds for one machine (`native`/`host` targets): the clusters they ran on
    built_on: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    #: per excluded row, why the hard rules excluded it at fit time (empty for tables written without them)
    excluded_reasons: list[str] = field(default_factory=list)

    def lookup(self, wanted: set[Context]) -> dict[tuple[Context, Choice], int]:
        """Row of every tabulated point in these contexts."""
        index = [i for i, c in enumerate(self.contexts) if c in wanted]
        rows = np.flatnonzero(np.isin(self.ctx, index))
        return {(self.contexts[self.ctx[i]], self.choices[self.choice[i]]): int(i) for i in rows}

    def excluded_in(self, wanted: set[Context]) -> list[tuple[Context, Choice, str | None]]:
        """The points of these contexts the hard rules excluded at fit time, with why (None: not kept)."""
        index = [i for i, c in enumerate(self.contexts) if c in wanted]
        at = np.flatnonzero(np.isin(self.excluded[:, 0], index)).tolist()
        kept = len(self.excluded_reasons) == len(self.excluded)
        return [(self.contexts[int(self.excluded[i, 0])], self.choices[int(self.excluded[i, 1])],
                 self.excluded_reasons[i] if kept else None) for i in at]

    def predictions(self, rows: list[int], metric: str) -> Predictions:
        """The predictions of these rows for one metric (no FOM part when there is no model for it)."""
        index = np.asarray(rows, dtype=np.int64)
        p_ok = self.p_ok[index].astype(float)
        if metric not in self.mid:
            return Predictions(p_ok)
        mid = self.mid[metric][index].astype(float)
        known = self.known[metric][self.ctx[index]].astype(bool)
        low, high = self.intervals[metric].around(mid, known)
        if metric not in self.rank:
            return Predictions(p_ok, mid, low, high, known)
        return Predictions(p_ok, mid, low, high, known, self.rank[metric][index].astype(float),
                           self.normalized[metric][index].astype(float))

    def with_excluded(self, points: list[tuple[Context, Choice]], reasons: list[str]) -> Table:
        """This table remembering points the hard rules excluded and why, so recommend can say so without finding
        them again (contexts and choices only excluded points have are added, with no prediction)."""
        contexts, choices = list(self.contexts), list(self.choices)
        c_index = {c: i for i, c in enumerate(contexts)}
        k_index = {k: i for i, k in enumerate(choices)}
        for context, choice in points:
            if context not in c_index:
                c_index[context] = len(contexts)
                contexts.append(context)
            if choice not in k_index:
                k_index[choice] = len(choices)
                choices.append(choice)
        added = len(contexts) - len(self.contexts)
        known = {metric: np.append(flags, np.zeros(added, dtype=bool)) for metric, flags in self.known.items()}
        rows = np.array([(c_index[c], k_index[k]) for c, k in points], dtype=np.int32).reshape(-1, 2)
        return replace(self, contexts=contexts, choices=choices, known=known, excluded=rows,
                       excluded_reasons=list(reasons))

    # ------------------------------------------------------------------------------------------ arrays

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays (strings, numbers, JSON text), to be saved without pickling."""
        reasons: dict[str, int] = {}
        arrays = {
            "contexts": np.array([[c.cluster, c.app, c.workload, c.params] for c in self.contexts],
                                 dtype=str).reshape(-1, 4),
            "choices": np.array([[k.app, k.variant, k.launch] for k in self.choices], dtype=str).reshape(-1, 3),
            "ctx": self.ctx, "choice": self.choice, "p_ok": self.p_ok, "excluded": self.excluded,
            # a few distinct reasons, each once, and per excluded row the index of its own
            "excluded_reason_texts": np.array(list(dict.fromkeys(self.excluded_reasons)), dtype=str),
            "excluded_reason": np.array([reasons.setdefault(text, len(reasons)) for text in self.excluded_reasons],
                                        dtype=np.int32),
            "measured": np.array(sorted(self.measured), dtype=str).reshape(-1, 2),
            "cluster_attrs": np.array([[name, json.dumps(attrs)] for name, attrs in self.cluster_attrs.items()],
                                      dtype=str).reshape(-1, 2),
            "variant_attrs": np.array([[app, name, json.dumps(attrs)] for (app, name), attrs in
                                       self.variant_attrs.items()], dtype=str).reshape(-1, 3),
            "built_on": np.array([[app, name, json.dumps(sorted(clusters))] for (app, name), clusters in
                                  self.built_on.items()], dtype=str).reshape(-1, 3)}
        for metric in self.mid:
            interval = self.intervals[metric]
            arrays[f"mid:{metric}"] = self.mid[metric]
            arrays[f"known:{metric}"] = self.known[metric]
            arrays[f"interval:{metric}"] = np.array([interval.low, interval.high, interval.level_error])
        for metric, score in self.rank.items():
            arrays[f"rank:{metric}"] = score
            arrays[f"normalized:{metric}"] = self.normalized[metric]
            ranked_by = self.ranked_by[metric]
            arrays[f"ranked_by:{metric}"] = np.array(json.dumps({"by": ranked_by.by,
                                                                 "residuals": ranked_by.residuals}))
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Table:
        """The table `to_arrays` gave; KeyError, TypeError or ValueError for arrays of another layout."""
        def per_metric(prefix: str) -> dict[str, np.ndarray]:
            return {name.split(":", 1)[1]: arrays[name] for name in arrays if name.startswith(prefix)}

        return cls([Context(*row) for row in arrays["contexts"].tolist()],
                   [Choice(*row) for row in arrays["choices"].tolist()],
                   arrays["ctx"], arrays["choice"], arrays["p_ok"], per_metric("mid:"), per_metric("known:"),
                   {metric: Interval(*values.tolist()) for metric, values in per_metric("interval:").items()},
                   {name: json.loads(text) for name, text in arrays["cluster_attrs"].tolist()},
                   {(app, name): json.loads(text) for app, name, text in arrays["variant_attrs"].tolist()},
                   arrays["excluded"], {(app, name) for app, name in arrays["measured"].tolist()},
                   per_metric("rank:"), per_metric("normalized:"),
                   {metric: _ranked_by(json.loads(str(text))) for metric, text in per_metric("ranked_by:").items()},
                   {(app, name): json.loads(text) for app, name, text in arrays["built_on"].tolist()},
                   [texts[i] for i in arrays["excluded_reason"].tolist()]
                   if (texts := arrays.get("excluded_reason_texts", np.zeros(0, dtype=str)).tolist()) else [])


def _ranked_by(data: dict[str, Any]) -> RankedBy:
    residuals = data["residuals"]
    return RankedBy(str(data["by"]), None if residuals is None else (float(residuals[0]), float(residuals[1]),
                                                                     float(residuals[2])))
