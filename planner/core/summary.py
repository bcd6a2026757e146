"""Stored runs summarized per configuration: median, spread and counts. Pure."""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from planner.core.metrics import DEFAULT_METRIC
from planner.core.types import RunRecord


@dataclass
class ConfigSummary:
    config_id: str
    cluster: str
    app: str
    workload: str
    variant: str
    options: dict[str, Any]
    runs: int = 0
    ok: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    median: dict[str, float] = field(default_factory=dict)
    spread: dict[str, float] = field(default_factory=dict)  # (max - min) / median, over ok runs
    #: per profiler: how many runs it profiled ("ok") and why it could not profile the others
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"config_id": self.config_id, "cluster": self.cluster, "app": self.app, "workload": self.workload,
                "variant": self.variant, "options": self.options, "runs": self.runs, "ok": self.ok,
                "failures": self.reasons, "median": self.median, "spread": self.spread, "profiles": self.profiles}

    def only(self, metric: str) -> ConfigSummary:
        """This summary with one metric's figures alone."""
        return dataclasses.replace(self, median={k: v for k, v in self.median.items() if k == metric},
                                   spread={k: v for k, v in self.spread.items() if k == metric})


def options_label(options: dict[str, Any]) -> str:
    parts = []
    for key, value in sorted(options.items()):
        if isinstance(value, dict | list | tuple):
            value = json.dumps(value, separators=(",", ":"))
        parts.append(f"{key.removeprefix('param.')}={value}")
    return " ".join(parts) or "(defaults)"


def summarize(records: list[RunRecord]) -> list[ConfigSummary]:
    groups: dict[str, list[RunRecord]] = defaultdict(list)
    for record in records:
        groups[record.config_id].append(record)
    out = []
    for config_id, runs in groups.items():
        first = runs[0]
        item = ConfigSummary(config_id, first.cluster, first.app, first.workload, first.variant, first.options,
                             runs=len(runs), ok=sum(r.status == "ok" for r in runs))
        for run in runs:
            if run.status != "ok":
                item.reasons[run.reason or "unknown"] = item.reasons.get(run.reason or "unknown", 0) + 1
            for profiler, status in run.profiles.items():
                counts = item.profiles.setdefault(profiler, {"ok": 0, "unavailable": {}})
                if status == "ok":
                    counts["ok"] += 1
                else:
                    why = status.removeprefix("unavailable: ")
                    counts["unavailable"][why] = counts["unavailable"].get(why, 0) + 1
        values: dict[str, list[float]] = defaultdict(list)
        for run in runs:
            if run.status == "ok":
                for name, value in run.foms.items():
                    values[name].append(value)
                if run.wall is not None:
                    values["process_wall"].append(run.wall)
        for name, series in sorted(values.items()):
            median = statistics.median(series)
            item.median[name] = median
            item.spread[name] = (max(series) - min(series)) / median if median else 0.0
        out.append(item)
    out.sort(key=lambda s: (s.cluster, s.app, s.workload, -s.median.get(DEFAULT_METRIC, -1.0), s.variant))
    return out
