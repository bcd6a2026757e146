"""Which figure of merit a command ranks by, and whether more or less of it is better. Pure.

`resolve_metric` is the one owner of the default metric and of its goal: `results`, `fit`,
`recommend`, `evaluate` and `report` all ask it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from planner.core.errors import InputError

#: The figure of merit ranked by default: comparable across variants and options within a workload.
DEFAULT_METRIC = "timesteps_per_s"
#: Figures of merit where less is better (also any `*_time` or `*_seconds`, and every profile: waits,
#: switches, faults); any other is maximized.
MINIMIZED = frozenset({"loop_time", "wall_time", "wall", "hours_per_ns", "process_wall", "price", "cost"})
GOALS = ("max", "min")
#: Units of the figures of merit the planner parses itself (an imported metric's unit is not known).
UNITS = {"timesteps_per_s": "timesteps/s", "matom_steps_per_s": "Matom-step/s", "ns_per_day": "ns/day",
         "hours_per_ns": "hours/ns", "tau_per_day": "tau/day", "loop_time": "s", "wall_time": "s", "wall": "s"}


@dataclass(frozen=True)
class Metric:
    """A figure of merit as every learning command ranks by it: its name, whether more or less is better, and
    its unit where known. The goal travels with the name (fit, the model and its priors, the baselines,
    recommend, evaluate, sweep --adaptive), never re-derived from the name downstream."""

    name: str
    goal: str  # max | min
    unit: str | None = None

    @property
    def sign(self) -> float:
        """+1 where more is better, -1 where less is: multiply a log value by it to rank highest first."""
        return 1.0 if self.goal == "max" else -1.0


def default_metric(app: str | None) -> str:
    """The figure of merit an app's definition ranks by default (DEFAULT_METRIC for an app without one)."""
    from planner.core import apps

    return apps.default_metric(app) or DEFAULT_METRIC


def goal_of(name: str) -> str:
    """The goal an app definition declares for the figure of merit, else the one its name tells."""
    from planner.core import apps
    from planner.core.profilers import is_profile_metric  # profile names (it loads the experiment's schema)

    declared = apps.goal(name)
    if declared:
        return declared
    return "min" if name in MINIMIZED or name.endswith(("_time", "_seconds")) or is_profile_metric(name) else "max"


def metric_of(name: str, goal: str | None = None) -> Metric:
    """The metric of this name, towards `goal` (by its name when None), with its unit where known."""
    return Metric(name, goal or goal_of(name), UNITS.get(name))


def resolve_metric(metric: str | None, goal: str | None, measured: Collection[str], *,
                   of: str | None = None) -> Metric:
    """The metric asked for (or the default) with its goal (as asked, or by its name), refused with exit 2
    when no stored run measured it; `of` names the app whose runs `measured` lists."""
    name = metric or default_metric(of)
    if name not in measured:
        runs = f"no stored run of {of}" if of else "no stored run"
        choose = "" if metric else " (the default; choose another with --metric)"
        raise InputError(f"{runs} measured {name!r}{choose}; measured: {', '.join(sorted(measured)) or 'none'}",
                         field="--metric")
    if goal is not None and goal not in GOALS:
        raise InputError(f"goal {goal!r} is not one of {', '.join(GOALS)}", field="--goal")
    return metric_of(name, goal)
