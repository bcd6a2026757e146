"""References and regressions: figures of merit compared with declared values or an earlier sweep. Pure.

A reference is a YAML file of declared values (`parse_reference`) or the configurations of another store
(`from_summaries`). `compare` matches each reference point with the current configurations, and flags a
figure that moved beyond its tolerance the wrong way for its goal (less of a `max` figure, more of a `min`
one) as a regression; `junit` writes the checks as a JUnit report a CI can gate on (ReFrame's
`--performance-compare` and its `reference` tuples, with the tolerance as one relative bound).

    # reference.yaml
    tolerance: 5%                      # default for every figure (the command line's --tolerance wins)
    references:
      - app: hpcc
        workload: hpl
        cluster: local                 # optional, like variant and options: a point matches what it names
        variant: hpcc-debian-openmpi
        options: {tasks: 2, NB: 100}   # launch options and workload parameters the configuration has
        foms:
          hpl_gflops: 1.5
          stream_triad_gbs: {value: 9.0, tolerance: 20%}
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any
from xml.etree import ElementTree

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from planner.core import yamlfile
from planner.core.errors import InputError
from planner.core.experiment import Options
from planner.core.summary import ConfigSummary, options_label

#: Bytes of a reference file.
MAX_REFERENCE_BYTES = 4 << 20
DEFAULT_TOLERANCE = 0.05
_PERCENT = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*%\s*")


def tolerance(value: Any) -> float:
    """`5%` or `0.05` as a fraction in [0, 10]; ValueError saying what is accepted."""
    text = str(value)
    found = _PERCENT.fullmatch(text)
    try:
        fraction = float(found.group(1)) / 100 if found else float(text)
    except ValueError:
        fraction = math.nan
    if isinstance(value, bool) or not 0 <= fraction <= 10:
        raise ValueError(f"tolerance {value!r} is not a percentage such as 5% or a fraction such as 0.05")
    return fraction


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Declared(_Strict):
    value: float
    tolerance: float | None = None

    _tolerance = field_validator("tolerance", mode="before")(lambda v: None if v is None else tolerance(v))

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value) or value == 0:
            raise ValueError(f"a reference value is a finite non-zero number, got {value!r}")
        return value


class Point(_Strict):
    app: str
    workload: str
    cluster: str | None = None
    variant: str | None = None
    options: dict[str, Any] = {}
    #: an earlier sweep's configuration: the same point (options, parameters and input) whatever else matches
    config_id: str | None = None
    foms: dict[str, Declared] = Field(min_length=1)

    @field_validator("foms", mode="before")
    @classmethod
    def _bare_values(cls, value: Any) -> Any:
        # `hpl_gflops: 1.5` is `{value: 1.5}`
        if isinstance(value, dict):
            return {k: v if isinstance(v, dict | Declared) else {"value": v} for k, v in value.items()}
        return value


class Reference(_Strict):
    tolerance: float | None = None
    references: tuple[Point, ...] = Field(min_length=1)
    source: str = ""

    _tolerance = field_validator("tolerance", mode="before")(lambda v: None if v is None else tolerance(v))


def parse_reference(text: str, source: str) -> Reference:
    """A reference file's declared values, or InputError naming the file, line and field at fault."""
    document = yamlfile.load(text, source)
    data = document.data
    if not isinstance(data, dict):
        raise InputError("a reference file is a mapping with `references:` (and an optional `tolerance:`)",
                         file=source, line=1)
    try:
        return Reference.model_validate({**data, "source": source})
    except ValidationError as err:
        first = err.errors()[0]
        loc = tuple(first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown field; a point takes app, workload, cluster, variant, options, config_id, foms"
        raise InputError(message, file=source, line=document.line_of(loc),
                         field=yamlfile.dotted(loc) or None) from None


def from_summaries(summaries: Sequence[ConfigSummary], metrics: Callable[[str], Sequence[str]],
                   source: str) -> Reference:
    """An earlier sweep as a reference: each configuration's medians of the figures `metrics(app)` names."""
    points = []
    for item in summaries:
        foms = {name: Declared(value=item.median[name]) for name in metrics(item.app)
                if item.median.get(name)}
        if foms:
            points.append(Point(app=item.app, workload=item.workload, cluster=item.cluster, variant=item.variant,
                                options={k.removeprefix("param."): v for k, v in item.options.items()},
                                config_id=item.config_id, foms=foms))
    if not points:
        raise InputError("the reference store has no ok run with the figures compared", file=source)
    return Reference(references=tuple(points), source=source)


@dataclass(frozen=True)
class Check:
    """One figure of one configuration against its reference."""

    cluster: str | None
    app: str
    workload: str
    variant: str | None
    options: str
    metric: str
    goal: str
    reference: float
    current: float | None
    change: float | None  # (current - reference) / reference
    tolerance: float
    status: str  # ok | regression | improved | missing
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _matches(point: Point, item: ConfigSummary) -> bool:
    if point.config_id is not None:
        return point.config_id == item.config_id
    if (point.app, point.workload) != (item.app, item.workload):
        return False
    if point.cluster not in (None, item.cluster) or point.variant not in (None, item.variant):
        return False
    options = {key.removeprefix("param."): value for key, value in item.options.items()}
    # a stored configuration leaves out the options it left at their defaults (canonical_options)
    return all(options.get(key, _default(key)) == value for key, value in point.options.items())


def _default(option: str) -> Any:
    field = Options.model_fields.get(option)
    return field.default if field is not None else None


def compare(reference: Reference, current: Sequence[ConfigSummary], goal_of: Callable[[str], str],
            default_tolerance: float | None = None) -> list[Check]:
    """Every reference figure against each current configuration it matches; a point that matches none,
    or whose runs all failed, is `missing`. `default_tolerance` (the command line's) wins over the file's."""
    checks = []
    for point in reference.references:
        matched = [item for item in current if _matches(point, item)]
        for name, declared in point.foms.items():
            limit = declared.tolerance if declared.tolerance is not None else \
                default_tolerance if default_tolerance is not None else \
                reference.tolerance if reference.tolerance is not None else DEFAULT_TOLERANCE
            goal = goal_of(name)
            label = options_label(point.options)
            if not matched:
                checks.append(Check(point.cluster, point.app, point.workload, point.variant, label, name, goal,
                                    declared.value, None, None, limit, "missing",
                                    "no stored configuration matches this reference point"))
            for item in matched:
                checks.append(_check(item, name, goal, declared.value, limit))
    return checks


def _check(item: ConfigSummary, name: str, goal: str, reference: float, limit: float) -> Check:
    where = (item.cluster, item.app, item.workload, item.variant, options_label(item.options), name, goal, reference)
    current = item.median.get(name)
    if current is None:
        return Check(*where, None, None, limit, "missing", f"no ok run measured {name} ({item.ok}/{item.runs} ok)")
    change = (current - reference) / abs(reference)
    worse = -change if goal == "max" else change
    status = "regression" if worse > limit else "improved" if -worse > limit else "ok"
    direction = "below" if change < 0 else "above"
    message = (f"{name} {current:.6g} is {abs(change) * 100:.1f}% {direction} the reference {reference:.6g} "
               f"(tolerance {limit * 100:g}%, goal {goal})")
    return Check(*where, current, change, limit, status, message)


def junit(checks: Sequence[Check], name: str) -> str:
    """The checks as a JUnit XML report: one test case per figure and configuration; a regression is a
    failure, a figure not measured is skipped."""
    suite = ElementTree.Element("testsuite", name=name, tests=str(len(checks)),
                                failures=str(sum(c.status == "regression" for c in checks)),
                                skipped=str(sum(c.status == "missing" for c in checks)), errors="0")
    for check in checks:
        classname = ".".join(str(part) for part in (check.app, check.workload, check.cluster, check.variant) if part)
        case = ElementTree.SubElement(suite, "testcase", classname=classname,
                                      name=f"{check.metric} [{check.options}]")
        if check.status == "regression":
            ElementTree.SubElement(case, "failure", message=check.message, type="regression").text = check.message
        elif check.status == "missing":
            ElementTree.SubElement(case, "skipped", message=check.message)
        else:
            ElementTree.SubElement(case, "system-out").text = check.message
    ElementTree.indent(suite)
    return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
