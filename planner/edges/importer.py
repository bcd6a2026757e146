"""Import long-form results (CSV) into the store: validated, all or nothing, idempotent.

One row per measurement: `cluster, app, workload, variant, status, metric, value`, optional
`repeat` and `reason` (a failure reason code), and attribute columns `variant.<attribute>`,
`cluster.<attribute>` and `option.<name>` (launch options such as `option.tasks`, or workload
parameters such as `option.x`). Rows of the same run (same cluster, app, workload, variant, options
and repeat) are one run with several figures of merit. A blank `repeat` is numbered in file order
within its point: a row starts the next repeat when the current one already has its metric. Runs
get the ids a sweep would give them, so importing a file twice adds nothing the second time.

CPU targets may be any name archspec or GCC knows (`planner.core.archs`); `generic` is stored as the
baseline of the row's architecture, `native` as it is (built on the machine it ran on).
`cluster.io.archspec.cpu.target` is compspec's name for `cluster.microarchitecture`.

Every bad row is reported with its line number; if there is any, nothing is imported.
"""

from __future__ import annotations

import csv
import json
import math
import operator
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from planner.core import archs, types
from planner.core.apps import REASONS
from planner.core.errors import InputError
from planner.core.experiment import OPTION_NAMES, Options
from planner.core.types import RunRecord, canonical_options, key_ids, run_key

REQUIRED = ("cluster", "app", "workload", "variant", "status", "metric", "value")
OPTIONAL = ("repeat", "reason")
PREFIXES = ("variant.", "cluster.", "option.")
STATUSES = ("ok", "failed", "incompatible")
#: Each status as one string object, so a run keeps a shared one and rows of a run compare them by identity.
_STATUSES = {status: status for status in STATUSES}
_NAMES = ("cluster", "app", "workload", "variant")
#: Cluster attributes that are numbers (as the planner's own ClusterInfo stores them).
_CLUSTER_INTS = {"nodes", "cores_per_node", "gpus_per_node"}
_CLUSTER_FLOATS = {"price_per_hour", "memory_gb"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/@+-]*$")
_METRIC = re.compile(r"^[A-Za-z_][A-Za-z0-9_.%/-]*$")
#: How many bad rows are listed before "... and N more".
SHOWN = 20
#: Repeats are counted from 0; a larger number is a typo or a unit mix-up, not a repeat.
MAX_REPEAT = 999_999
#: Spellings Python reads as a non-finite number; no attribute or option may be one.
_NON_FINITE = re.compile(r"^[+-]?(nan|inf|infinity)$", re.IGNORECASE)
_TARGET = "variant.io.archspec.cpu.target"
_HOST_ALIAS = "cluster.io.archspec.cpu.target"


class BadRows(InputError):
    """The file has rows the planner cannot accept; `problems` lists each as `FILE:LINE: field: why`."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} bad row(s); nothing was imported (first: {problems[0]})", file=path)


@dataclass(slots=True)
class _Run:
    line: int
    part: _Point
    repeat: int
    status: str
    reason: str | None
    #: (metric, value or None where not ok, line - `line`) of each of the run's rows, flat: a million rows are in
    #: memory at once (two dicts per run would double that, and small line offsets are Python's shared ints)
    rows: tuple[Any, ...]

    def line_of(self, metric: str) -> int | None:
        rows = self.rows
        for at in range(0, len(rows), 3):
            if rows[at] == metric:
                return self.line + rows[at + 2]
        return None


@dataclass
class _Blank:
    """The repeats numbered so far in one point whose rows give no repeat."""

    line: int  # first row of the point without a repeat
    next: int = 0
    open: str | None = None  # run id of the repeat rows are being added to


@dataclass
class Parsed:
    runs: dict[str, _Run]
    rows: int
    name: str

    @property
    def records(self) -> Iterator[RunRecord]:
        """The runs as records, made one at a time (a million of them at once would not fit in memory)."""
        detail = f"imported from {Path(self.name).name}, line "
        return (_record(run_id, run, detail) for run_id, run in self.runs.items())


def read_csv(path: str | Path, progress: Callable[[int, float], None] | None = None) -> Parsed:
    """Parse and validate the file; raises BadRows (or InputError for an unreadable file or header).
    `progress(rows, share of the file read)` every 50,000 rows."""
    name = str(path)
    try:
        handle = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 - closed below, errors need the path
    except FileNotFoundError:
        raise InputError("CSV file not found", file=name) from None
    except (IsADirectoryError, PermissionError) as err:
        raise InputError(f"cannot read CSV file ({err.__class__.__name__})", file=name) from None
    size = max(os.fstat(handle.fileno()).st_size, 1)
    with handle:
        try:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise InputError(f"empty file; expected a header with {', '.join(REQUIRED)}", file=name, line=1)
            rows = _Rows(_check_header([column.strip() for column in header], name))
            problems: list[str] = []
            count = 0
            for fields in reader:
                if not "".join(fields).strip():
                    continue
                count += 1
                try:
                    rows.add(fields, reader.line_num)
                except _RowError as err:
                    problems.append(f"{name}:{reader.line_num}: {err}")
                if progress is not None and count % 50_000 == 0:
                    progress(count, handle.buffer.tell() / size)
        except UnicodeDecodeError:
            raise InputError("not a UTF-8 text file", file=name) from None
        except csv.Error as err:
            raise InputError(f"not valid CSV ({err})", file=name, line=reader.line_num) from None
    if problems:
        raise BadRows(name, problems)
    if not rows.runs:
        raise InputError("no data rows under the header", file=name, line=2)
    return Parsed(rows.runs, count, name)


def _check_header(columns: list[str], name: str) -> list[str]:
    seen: set[str] = set()
    for column in columns:
        if column in seen:
            raise InputError(f"column {column!r} appears twice", file=name, line=1)
        seen.add(column)
        if column not in REQUIRED and column not in OPTIONAL and not column.startswith(PREFIXES):
            raise InputError(f"unknown column {column!r}; accepted: {', '.join(REQUIRED + OPTIONAL)} and "
                             "variant.<attribute>, cluster.<attribute>, option.<name>", file=name, line=1)
        if column in PREFIXES or (column.startswith(PREFIXES) and not column.split(".", 1)[1]):
            raise InputError(f"column {column!r} names no attribute", file=name, line=1)
    missing = [column for column in REQUIRED if column not in seen]
    if missing:
        raise InputError(f"missing required column(s) {', '.join(missing)}; the header needs "
                         f"{', '.join(REQUIRED)}", file=name, line=1)
    return columns


class _RowError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True, slots=True)
class _Point:
    """What a row's names and attribute columns make of it: the same for every row that repeats them."""

    cluster_attrs: dict[str, Any]
    variant_attrs: dict[str, Any]
    key: dict[str, Any]
    point: str


def _cached(parts: dict[tuple[Any, ...], Any], key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
    """A part of a row validated once per distinct value: a valid one is kept (shared by every run that has
    it), an invalid one raises again on each row that repeats it."""
    if key not in parts:
        parts[key] = compute()
    return parts[key]


def _point(cells: dict[str, str], parts: dict[tuple[Any, ...], Any]) -> _Point:
    names = tuple(cells[column] for column in ("cluster", "app", "workload", "variant"))
    _cached(parts, ("names", names), lambda: _check_names(cells))
    by_prefix: dict[str, dict[str, str]] = {prefix: {} for prefix in PREFIXES}
    for column, cell in cells.items():
        if column.startswith(PREFIXES):
            if cell and _NON_FINITE.match(cell):
                raise _RowError(column, f"{cell!r} is not a finite value")
            by_prefix[column[:column.index(".") + 1]][column] = cell
    cluster_attrs = _cached(parts, ("cluster", *by_prefix["cluster."].values()),
                            lambda: _cluster_attrs(by_prefix["cluster."]))
    variant_attrs = _cached(parts, ("variant", cluster_attrs.get("arch"), cluster_attrs.get("microarchitecture"),
                                    *by_prefix["variant."].values()),
                            lambda: {key.removeprefix("variant."): _variant_attr(key, cell, cluster_attrs)
                                     for key, cell in by_prefix["variant."].items() if cell})
    option_cells = tuple(by_prefix["option."].values())

    def point() -> tuple[dict[str, Any], str]:
        options = _cached(parts, ("options", *option_cells), lambda: _options(
            {key.removeprefix("option."): cell for key, cell in by_prefix["option."].items() if cell}))
        key = run_key(**dict(zip(("cluster", "app", "workload", "variant"), names, strict=True)), options=options)
        return key, types.config_id(key)

    key, point_id = _cached(parts, ("point", names, option_cells), point)
    return _Point(cluster_attrs, variant_attrs, key, point_id)


def _check_names(cells: dict[str, str]) -> None:
    for column in ("cluster", "app", "workload", "variant"):
        if not _NAME.match(cells[column]):
            raise _RowError(column, f"{cells[column]!r} is not a name (letters, digits, _ . : / @ + -; no spaces)")


class _Rows:
    """The file's rows made into runs. A row's point (its names and attribute columns) is validated once per distinct
    value and shared by every row that repeats it; the strings kept are interned, so a million rows of a few
    thousand points keep a few thousand copies of their names."""

    def __init__(self, columns: list[str]) -> None:
        at = {column: index for index, column in enumerate(columns)}
        self.columns = columns
        self.status, self.metric, self.value = at["status"], at["metric"], at["value"]
        self.repeat, self.reason = at.get("repeat"), at.get("reason")
        point = [at[column] for column in (*_NAMES, *columns) if column in _NAMES or column.startswith(PREFIXES)]
        self.point_cells = operator.itemgetter(*dict.fromkeys(point))
        self.runs: dict[str, _Run] = {}
        self.numbering: dict[str, _Blank | int] = {}  # point id -> its blank repeats, or the line of a numbered one
        self.parts: dict[tuple[Any, ...], Any] = {}
        self.points: dict[tuple[str, ...], _Point] = {}
        self.last: tuple[_Point | None, int, str] = (None, -1, "")  # the point, repeat and id of the last row's run
        self.ids: tuple[_Point | None, Callable[[int], str]] = (None, types.run_ids({}))

    def add(self, fields: list[str], line: int) -> None:
        if len(fields) != len(self.columns):
            raise _RowError("row", f"{len(fields)} fields, the header has {len(self.columns)}")
        cells = list(map(str.strip, fields))
        point = self.point_cells(cells)
        part = self.points.get(point)
        if part is None:
            part = _point(dict(zip(self.columns, cells, strict=True)), self.parts)
            self.points[tuple(map(sys.intern, point))] = part
        status = _STATUSES.get(cells[self.status])
        if status is None:
            raise _RowError("status", f"{cells[self.status]!r} is not one of {', '.join(STATUSES)}")
        given = _repeat(cells[self.repeat]) if self.repeat is not None else None
        reason = _reason(cells[self.reason] if self.reason is not None else "", status)
        metric = sys.intern(cells[self.metric])
        number = _value(metric, cells[self.value], status)
        repeat = self._number_repeat(part, given, metric, status, line)
        run_id = self._run_id(part, repeat)
        run = self.runs.get(run_id)
        if run is None:
            self.runs[run_id] = _Run(line, part, repeat, status, reason, (metric, number, 0))
            return
        if run.part is not part or run.status is not status or run.reason != reason:
            for what, mine, theirs in (("status", status, run.status), ("reason", reason, run.reason),
                                       ("variant attributes", part.variant_attrs, run.part.variant_attrs),
                                       ("cluster attributes", part.cluster_attrs, run.part.cluster_attrs)):
                if mine != theirs:
                    raise _RowError(what, f"differ from line {run.line}, another row of the same run "
                                          f"({json.dumps(mine)} here, {json.dumps(theirs)} there)")
        given_on = run.line_of(metric)
        if given_on is None:
            run.rows += (metric, number, line - run.line)
        elif number is not None:
            raise _RowError("metric", f"{metric!r} of this run was already given on line {given_on}")

    def _run_id(self, part: _Point, repeat: int) -> str:
        """`types.run_id`, made from the point's key made JSON once (rows of a point mostly follow each other), and
        the same again for the next row of the same run."""
        last_part, last_repeat, found = self.last
        if last_part is part and last_repeat == repeat:
            return found
        if self.ids[0] is not part:
            self.ids = (part, types.run_ids(part.key))
        found = self.ids[1](repeat)
        self.last = (part, repeat, found)
        return found

    def _number_repeat(self, part: _Point, given: int | None, metric: str, status: str, line: int) -> int:
        """The row's repeat: as given, or for a blank one the open repeat of its point unless that already
        has this metric (or another status), then the next one. A point numbers its repeats all or none."""
        seen = self.numbering.get(part.point)
        if given is not None:
            if isinstance(seen, _Blank):
                raise _RowError("repeat", f"{given} given, but line {seen.line} of the same point leaves it blank; "
                                          "number all rows of a point or none")
            if seen is None:
                self.numbering[part.point] = line
            return given
        if isinstance(seen, int):
            raise _RowError("repeat", f"blank, but line {seen} of the same point numbers it; "
                                      "number all rows of a point or none")
        blank = seen or self.numbering.setdefault(part.point, _Blank(line))
        assert isinstance(blank, _Blank)
        current = self.runs.get(blank.open) if blank.open else None
        if current is None or current.line_of(metric) is not None or status != current.status:
            blank.open = self._run_id(part, blank.next)
            blank.next += 1
        return blank.next - 1


def _repeat(text: str) -> int | None:
    if not text:
        return None
    try:
        repeat = int(text)
    except ValueError:
        raise _RowError("repeat", f"{text!r} is not a whole number") from None
    if not 0 <= repeat <= MAX_REPEAT:
        raise _RowError("repeat", f"{text} is not a repeat number from 0 to {MAX_REPEAT}")
    return repeat


def _number_repeat(runs: dict[str, _Run], numbering: dict[str, _Blank | int], point: str, key: dict[str, Any],
                   given: int | None, metric: str, status: str, line: int) -> int:
    """The row's repeat: as given, or for a blank one the open repeat of its point unless that already
    has this metric (or another status), then the next one. A point numbers its repeats all or none."""
    seen = numbering.get(point)
    if given is not None:
        if isinstance(seen, _Blank):
            raise _RowError("repeat", f"{given} given, but line {seen.line} of the same point leaves it blank; "
                                      "number all rows of a point or none")
        numbering.setdefault(point, line)
        return given
    if isinstance(seen, int):
        raise _RowError("repeat", f"blank, but line {seen} of the same point numbers it; "
                                  "number all rows of a point or none")
    blank = numbering.setdefault(point, _Blank(line))
    assert isinstance(blank, _Blank)
    current = runs.get(blank.open) if blank.open else None
    if current is None or metric in current.lines or status != current.status:
        blank.open, _ = key_ids(key, blank.next)
        blank.next += 1
    return blank.next - 1


def _reason(text: str, status: str) -> str | None:
    if status == "ok":
        if text:
            raise _RowError("reason", f"{text!r} given for an ok run; leave it empty")
        return None
    if not text:
        return "incompatible" if status == "incompatible" else "unknown"
    if text not in REASONS:
        raise _RowError("reason", f"{text!r} is not a failure reason code ({', '.join(REASONS)})")
    return sys.intern(text)


def _value(metric: str, value: str, status: str) -> float | None:
    if status != "ok":
        if value:
            raise _RowError("value", f"{value!r} given for a {status} run; leave it empty")
        return None
    if not _METRIC.match(metric):
        raise _RowError("metric", f"{metric!r} is not a metric name such as timesteps_per_s")
    try:
        number = float(value)
    except ValueError:
        raise _RowError("value", f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise _RowError("value", f"{value!r} is not a finite number")
    if number <= 0:
        # rankings, regret and the model compare figures of merit as ratios
        raise _RowError("value", f"{value} is not positive; a figure of merit (a rate, a time) is > 0")
    return number


def _variant_attr(column: str, cell: str, cluster_attrs: dict[str, Any]) -> str:
    if column != _TARGET:
        return cell
    if not archs.known(cell):
        raise _RowError(column, f"{cell!r} is not a CPU target archspec or GCC knows; use an archspec name "
                                "(neoverse_v1, skylake_avx512, zen3, x86_64_v3, aarch64), a GCC -march/-mcpu name "
                                "(neoverse-v1, icelake-server, cortex-a72, znver3), generic or native")
    if cell.strip().lower() == archs.GENERIC:
        host = cluster_attrs.get("arch") or cluster_attrs.get("microarchitecture")
        resolved = archs.normalize(cell, host)
        if resolved is None:
            raise _RowError(column, "'generic' needs the row's architecture: add cluster.arch (amd64, arm64) or "
                                    "cluster.microarchitecture")
        return resolved
    return cell


def _cluster_attrs(cells: dict[str, str]) -> dict[str, Any]:
    """Cluster attribute columns, with compspec's name for the microarchitecture read as the planner's."""
    cells = dict(cells)
    alias = cells.pop(_HOST_ALIAS, "")
    if alias:
        mine = cells.get("cluster.microarchitecture", "")
        if mine and archs.target(mine) != archs.target(alias):
            raise _RowError(_HOST_ALIAS, f"{alias!r} disagrees with cluster.microarchitecture {mine!r}")
        try:
            cells["cluster.microarchitecture"] = _cluster_attr("cluster.microarchitecture", alias)
        except _RowError:
            raise _RowError(_HOST_ALIAS, f"{alias!r} is not a microarchitecture archspec or GCC knows (e.g. zen3, "
                                         "icelake, neoverse_v1, znver3)") from None
    return {key.removeprefix("cluster."): _cluster_attr(key, cell) for key, cell in cells.items()
            if key.startswith("cluster.") and cell}


def _cluster_attr(column: str, cell: str) -> Any:
    name = column.removeprefix("cluster.")
    if name == "microarchitecture":
        found = archs.target(cell)
        if found is None or found.name == archs.NATIVE:
            raise _RowError(column, f"{cell!r} is not a microarchitecture archspec or GCC knows (e.g. zen3, "
                                    "icelake, neoverse_v1, or a GCC -march name such as znver3)")
        return found.name
    if name == "arch":
        platform = archs.platform_name(cell)
        if platform is None:
            raise _RowError(column, f"{cell!r} is not an architecture (amd64, arm64, x86_64, aarch64)")
        return platform
    if name in _CLUSTER_INTS:
        try:
            number = int(cell)
        except ValueError:
            raise _RowError(column, f"{cell!r} is not a whole number") from None
        if number < 0:
            raise _RowError(column, f"{number} is negative")
        return number
    if name in _CLUSTER_FLOATS:
        try:
            return float(cell)
        except ValueError:
            raise _RowError(column, f"{cell!r} is not a number") from None
    return cell


def _scalar(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _options(cells: dict[str, str]) -> dict[str, Any]:
    """Launch options and workload parameters, canonical as a sweep stores them (defaults left out)."""
    launch: dict[str, Any] = {}
    params: dict[str, Any] = {}
    for name, cell in cells.items():
        if name == "bind":
            launch[name] = [part.strip() for part in cell.split(";") if part.strip()]
        elif name == "env":
            pairs = [part.partition("=") for part in cell.split(";") if part.strip()]
            if any(not sep or not key.strip() for key, sep, _ in pairs):
                raise _RowError("option.env", f"{cell!r} is not NAME=VALUE;NAME=VALUE")
            launch[name] = {key.strip(): value for key, _, value in pairs}
        elif name in OPTION_NAMES:
            launch[name] = _scalar(cell)
        else:
            params[name] = _scalar(cell)
    try:
        options = Options.model_validate({**launch, **params})
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "options"
        raise _RowError(f"option.{where}" if first["loc"] else "options",
                        first["msg"].removeprefix("Value error, ")) from None
    return canonical_options(options, params)


def _record(run_id: str, run: _Run, detail: str) -> RunRecord:
    part, rows = run.part, run.rows
    key = part.key
    foms = {rows[at]: rows[at + 1] for at in range(0, len(rows), 3) if rows[at + 1] is not None}
    return RunRecord(id=run_id, config_id=part.point, cluster=key["cluster"], app=key["app"],
                     workload=key["workload"], variant=key["variant"], options=key["options"], repeat=run.repeat,
                     status=run.status, reason=run.reason, detail=f"{detail}{run.line}",
                     variant_attrs=part.variant_attrs, cluster_attrs=part.cluster_attrs, source="import", foms=foms)
