"""Profiles as explanations, never as features: a profile (run-queue wait, futex waits, ...) is known only
after a run, so it says why a measured point did well or badly and never helps predict an unmeasured one.
`estimators.design` builds features from attributes and options alone; these functions only read
measured values. Pure.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass

import numpy as np

from planner.core.profilers import is_profile_metric
from planner.learn.columns import Choice, Context, Runs

#: Least configurations of one context for a correlation within it to count.
MIN_CONFIGS = 3
#: A candidate's profile stands out when it is this far (as a factor) from its peers' median.
STANDOUT = 1.25


@dataclass(frozen=True)
class Link:
    """How a profile moves with the figure of merit across the configurations of each context."""

    profile: str
    rho: float  # Spearman's rank correlation, pooled over contexts (ranks centred within each)
    configurations: int
    contexts: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def names(measured: list[str]) -> list[str]:
    return [name for name in measured if is_profile_metric(name)]


def medians(runs: Runs, metrics: list[str]) -> dict[tuple[Context, Choice], dict[str, float]]:
    """Per measured point: the median of each metric over its successful runs that have it."""
    values: dict[tuple[int, int], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for name in metrics:
        column = runs.values[name]
        for i in np.flatnonzero(runs.ok & ~np.isnan(column)):
            values[(int(runs.ctx[i]), int(runs.choice[i]))][name].append(float(column[i]))
    return {(runs.contexts[c], runs.choices[k]): {name: statistics.median(v) for name, v in by.items()}
            for (c, k), by in values.items()}


def links(runs: Runs, metric: str, profiles: list[str], top: int = 3) -> list[Link]:
    """The profiles that move most with `metric` within contexts, strongest first."""
    points = medians(runs, [metric, *profiles])
    by_context: dict[Context, list[dict[str, float]]] = defaultdict(list)
    for (context, _), values in points.items():
        if metric in values:
            by_context[context].append(values)
    found = []
    for name in profiles:
        xs: list[float] = []
        ys: list[float] = []
        configurations = contexts = 0
        for rows in by_context.values():
            rows = [row for row in rows if name in row]
            if len(rows) < MIN_CONFIGS:
                continue
            xs += _centred_ranks([row[name] for row in rows])
            ys += _centred_ranks([row[metric] for row in rows])
            configurations += len(rows)
            contexts += 1
        if contexts and np.std(xs) > 0 and np.std(ys) > 0:
            found.append(Link(name, round(float(np.corrcoef(xs, ys)[0, 1]), 3), configurations, contexts))
    found.sort(key=lambda link: -abs(link.rho))
    return found[:top]


def _centred_ranks(values: list[float]) -> list[float]:
    order = np.argsort(np.argsort(values, kind="stable"), kind="stable").astype(float)
    return list(order - order.mean())


def standout(point: dict[str, float], peers: list[dict[str, float]]) -> str | None:
    """The profile where this point differs most from the median of the points it is ranked with, if any
    differs by `STANDOUT` or more."""
    best: tuple[float, str] | None = None
    for name, value in point.items():
        if not is_profile_metric(name):
            continue
        others = [peer[name] for peer in peers if name in peer]
        middle = statistics.median(others) if len(others) > 1 else None
        if not middle or value <= 0 or middle <= 0:
            continue
        distance = abs(math.log(value / middle))
        if distance >= math.log(STANDOUT) and (best is None or distance > best[0]):
            best = (distance, f"{name} {value:.4g} (x{value / middle:.2g} the median of {len(others)} measured here)")
    return best[1] if best else None
