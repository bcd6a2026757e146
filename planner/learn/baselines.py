"""What a person would pick without a model, and the regret of any ranking as a user lives it. Pure.

Every baseline obeys the hard rules (it ranks only the candidates `compat` allows) and learns only
from training contexts, as the model does:

- `rules_random`: a random allowed pick (scored by expectation, so it is neither lucky nor unlucky);
- `most_often_best`: the variant (with its launch options) measured best in the most training
  contexts, ties broken by its mean normalized FOM;
- `family_mean`: the best mean normalized FOM (FOM / best FOM of its context, 0 where it failed) over
  training contexts of the same workload on clusters of the same architecture family;
- `nearest_cluster`: the same over the most similar training clusters: the same microarchitecture,
  else the nearest in archspec's tree (`archs.separation`), else the family;
- `heuristic`: a GPU build where the cluster has GPUs, all nodes and cores, ranks over threads, the
  widest vector extension the host runs, the newest release.

A ranking is a list of tiers (the first pick is uniform within its tier). A pick that failed or was
incompatible in the held-out context is scored as what the user gets next: the first candidate down
the ranking that succeeded there; it is counted in `failed_picks` or `incompatible_picks`.
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from planner.core import archs
from planner.learn.columns import Choice, Context, Measured

NAMES = ("rules_random", "most_often_best", "family_mean", "nearest_cluster", "heuristic")
#: A point that succeeded in fewer of its runs than this share is a failure there.
SUCCESS_SHARE = 0.5


def outcome(measured: Measured) -> float | None:
    """The median FOM a user gets from this point, or None where it failed in most of its runs."""
    if not measured.values or measured.ok < SUCCESS_SHARE * measured.runs:
        return None
    return measured.median


def failure_kind(measured: Measured) -> str:
    return "incompatible" if measured.reason() == "incompatible" else "failed"


# ---------------------------------------------------------------------------------------------- scoring


@dataclass
class Pick:
    regret: float | None  #: expected regret of what the user ends up running (None: nothing ran)
    top1: float  #: probability the first pick is the measured best
    incompatible: float  #: probability the first pick was incompatible there
    failed: float  #: probability the first pick failed there


#: log of the largest float: a regret beyond it is that float.
_LOG_MAX = math.log(sys.float_info.max)

def score(tiers: list[list[int]], values: list[float | None], kinds: list[str], sign: float) -> Pick:
    """Score a ranking of candidates against their measurements (values None where they did not succeed)."""
    tiers = [tier for tier in tiers if tier]
    ok = [math.log(v) for v in values if v is not None]
    if not tiers or not ok:
        return Pick(None, 0.0, 0.0, 0.0)
    best = max(ok, key=lambda value: sign * value)
    first = tiers[0]
    incompatible = sum(values[i] is None and kinds[i] == "incompatible" for i in first) / len(first)
    failed = sum(values[i] is None and kinds[i] != "incompatible" for i in first) / len(first)
    for tier in tiers:
        good = [values[i] for i in tier if values[i] is not None]
        if good:
            # capped at the largest float: figures of merit may span more than e^709 (1e-300 next to 1e300)
            regrets = [math.exp(min(sign * (best - math.log(value)), _LOG_MAX)) for value in good]
            top1 = sum(math.isclose(regret, 1.0) for regret in regrets) / len(first)
            return Pick(sum(regrets) / len(regrets), top1, incompatible, failed)
    return Pick(None, 0.0, incompatible, failed)


@dataclass
class Score:
    """Picks in many contexts, summed up as `evaluate --json` prints them."""

    picks: list[Pick] = field(default_factory=list)

    def add(self, pick: Pick) -> None:
        self.picks.append(pick)

    def as_dict(self) -> dict[str, Any]:
        regrets = [pick.regret for pick in self.picks if pick.regret is not None]
        count = len(self.picks)
        return {"picks": count,
                "top1": round(sum(pick.top1 for pick in self.picks) / count, 4) if count else None,
                "mean_regret": round(sum(regrets) / len(regrets), 4) if regrets else None,
                "max_regret": round(max(regrets), 4) if regrets else None,
                "incompatible_picks": round(sum(pick.incompatible for pick in self.picks), 2),
                "failed_picks": round(sum(pick.failed for pick in self.picks), 2)}


def tiers_by(key: Callable[[int], Any], candidates: list[int]) -> list[list[int]]:
    """Candidates grouped by equal key, highest key first."""
    groups: dict[Any, list[int]] = defaultdict(list)
    for i in candidates:
        groups[key(i)].append(i)
    return [groups[k] for k in sorted(groups, reverse=True)]


# ---------------------------------------------------------------------------------------------- history


@dataclass
class Seen:
    """One training context: where it was and how each choice measured there did, normalized."""

    context: Context
    host: str | None
    family: str | None
    normalized: dict[Choice, float]  # FOM / best FOM of the context (the inverse for min goals); 0: failed
    best: Choice


def history(contexts: list[tuple[Context, dict[str, Any], list[tuple[Choice, Measured]]]], sign: float) -> list[Seen]:
    """Training contexts (context, cluster attributes, choices measured there) as normalized FOMs."""
    out = []
    for context, cluster, items in contexts:
        values = {choice: outcome(measured) for choice, measured in items}
        ok = {choice: value for choice, value in values.items() if value is not None}
        if not ok:
            continue
        best_choice = max(ok, key=lambda choice: sign * math.log(ok[choice]))
        best = ok[best_choice]
        # the ratio <= 1 itself, never its inverse: that one can overflow
        normalized = {choice: (value / best if sign > 0 else best / value) if value is not None else 0.0
                      for choice, value in values.items()}
        host = archs.normalize(cluster.get("microarchitecture")) or cluster.get("microarchitecture")
        family = archs.family(cluster.get("microarchitecture")) or archs.family(cluster.get("arch"))
        out.append(Seen(context, host, family, normalized, best_choice))
    return out


def normalized_by_choice(seen: list[Seen]) -> dict[Choice, list[float]]:
    """Each choice's normalized FOMs over these training contexts."""
    values: dict[Choice, list[float]] = defaultdict(list)
    for item in seen:
        for choice, value in item.normalized.items():
            values[choice].append(value)
    return values


def _mean_normalized(seen: list[Seen]) -> Callable[[Choice], float]:
    means = {choice: sum(values) / len(values) for choice, values in normalized_by_choice(seen).items()}
    return lambda choice: means.get(choice, -1.0)


def family_contexts(seen: list[Seen], context: Context, cluster: dict[str, Any]) -> list[Seen]:
    """Training contexts of the same workload (else app) on clusters of the held-out one's family."""
    family = archs.family(cluster.get("microarchitecture")) or archs.family(cluster.get("arch"))
    same = [item for item in seen if item.family == family and item.context.app == context.app]
    workload = [item for item in same if item.context.workload == context.workload]
    return workload or same


def nearest_contexts(seen: list[Seen], context: Context, cluster: dict[str, Any]) -> list[Seen]:
    """The family's training contexts on the most similar clusters (same microarchitecture, else nearest)."""
    family = family_contexts(seen, context, cluster)
    host = cluster.get("microarchitecture")
    steps: dict[int, int] = {}
    for i, item in enumerate(family):
        step = 0 if item.host is not None and item.host == (archs.normalize(host) or host) else \
            archs.separation(host, item.host)
        if step is not None:
            steps[i] = step
    if not steps:
        return family
    nearest = min(steps.values())
    return [family[i] for i, step in steps.items() if step == nearest]


def rank(name: str, seen: list[Seen], context: Context, cluster: dict[str, Any], choices: list[Choice],
         allowed: list[int], features: Callable[[int], dict[str, Any]]) -> list[list[int]]:
    """One baseline's ranking of the allowed candidates (indices into `choices`), best tier first."""
    if name == "rules_random":
        return [allowed]
    if name == "most_often_best":
        wins: dict[Hashable, int] = defaultdict(int)
        for item in seen:
            wins[item.best] += 1
        mean = _mean_normalized(seen)
        return tiers_by(lambda i: (wins.get(choices[i], 0), mean(choices[i])), allowed)
    if name == "family_mean":
        mean = _mean_normalized(family_contexts(seen, context, cluster))
        return tiers_by(lambda i: mean(choices[i]), allowed)
    if name == "nearest_cluster":
        mean = _mean_normalized(nearest_contexts(seen, context, cluster))
        return tiers_by(lambda i: mean(choices[i]), allowed)
    if name == "heuristic":
        return tiers_by(lambda i: _heuristic(features(i), cluster), allowed)
    raise ValueError(name)


def _heuristic(row: dict[str, Any], cluster: dict[str, Any]) -> tuple[float, ...]:
    has_gpu = float(cluster.get("gpus_per_node") or 0) > 0
    fill = row.get("ranks.fill")
    return (float(bool(row.get("gpu.needed")) == has_gpu),
            -abs(1.0 - float(fill)) if fill is not None else 0.0,
            -float(row.get("ranks.threads", 1.0)),
            float(row.get("vector_width", -1)),
            float(row.get("version.release", 0.0)))
