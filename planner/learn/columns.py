"""Stored runs as columns for learning: parameterised SQL straight into arrays, no RunRecord per run.

A run is a *choice* (variant + launch options) made in a *context* (cluster + app + workload + the
workload's parameters, i.e. one problem on one machine). Recommendations rank choices within a
context; the model learns how a choice's attributes move a figure of merit across contexts.

The SQL that fills these types lives with the store, in `planner.edges.column_reader`.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, order=True)
class Context:
    """One problem on one machine: what a recommendation is asked for."""

    cluster: str
    app: str
    workload: str
    params: str  # canonical JSON of the workload parameters

    def parameters(self) -> dict[str, Any]:
        return json.loads(self.params)


@dataclass(frozen=True, order=True)
class Choice:
    """What a recommendation picks: a variant and how it is launched."""

    app: str
    variant: str
    launch: str  # canonical JSON of the launch options (defaults left out, as stored)

    def options(self) -> dict[str, Any]:
        return json.loads(self.launch)


def canonical(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass
class Measured:
    """What the store holds for one choice in one context."""

    runs: int = 0
    ok: int = 0
    values: list[float] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    @property
    def failed(self) -> bool:
        """Never ran successfully here: it failed or was excluded every time it was tried."""
        return self.ok == 0

    def reason(self) -> str:
        return max(self.reasons, key=lambda k: self.reasons[k]) if self.reasons else "unknown"


@dataclass
class Runs:
    """Runs as parallel arrays, with the contexts, choices and attributes they index."""

    contexts: list[Context]
    choices: list[Choice]
    ctx: np.ndarray  # per run: index into contexts
    choice: np.ndarray  # per run: index into choices
    ok: np.ndarray  # per run: status == ok
    values: dict[str, np.ndarray]  # per metric, per run: its value (NaN when missing or not ok)
    status: list[str]
    reason: list[str | None]
    cluster_attrs: dict[str, dict[str, Any]]  # latest attributes per cluster
    variant_attrs: dict[tuple[str, str], dict[str, Any]]  # latest attributes per (app, variant)
    #: per run: its wall time in seconds (NaN where not stored, e.g. imported runs)
    wall: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return len(self.ok)

    def measured(self, metric: str, mask: np.ndarray | None = None) -> dict[tuple[int, int], Measured]:
        """Per (context index, choice index): counts, ok values of the metric, failure reasons."""
        out: dict[tuple[int, int], Measured] = defaultdict(Measured)
        rows = np.flatnonzero(mask) if mask is not None else range(len(self))
        value = self.values[metric]
        for i in rows:
            item = out[(int(self.ctx[i]), int(self.choice[i]))]
            item.runs += 1
            if self.ok[i]:
                item.ok += 1
                if not np.isnan(value[i]):
                    item.values.append(float(value[i]))
            else:
                reason = self.reason[i] or ("incompatible" if self.status[i] == "incompatible" else "unknown")
                item.reasons[reason] = item.reasons.get(reason, 0) + 1
        return dict(out)
