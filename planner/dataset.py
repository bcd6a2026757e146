"""Stored runs as columns for learning: parameterised SQL straight into arrays, no RunRecord per run.

A run is a *choice* (variant + launch options) made in a *context* (cluster + app + workload + the
workload's parameters, i.e. one problem on one machine). Recommendations rank choices within a
context; the model learns how a choice's attributes move a figure of merit across contexts.

`read` opens the store through `planner.store.Store` (which refuses unknown schema versions and
missing files), then reads with a connection of its own: with 100,000 runs this is ~10x faster than
building records, and the JSON columns are parsed once per distinct text.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from planner.errors import InputError
from planner.features import split_options
from planner.store import Store


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


def open_store(path: str | Path) -> sqlite3.Connection:
    """A connection for reading, after the Store has vouched for the file (exists, schema version)."""
    Store(path, create=False).close()
    return sqlite3.connect(str(path), timeout=30)


def read(db: sqlite3.Connection, metrics: Iterable[str] = (), *, app: str | None = None,
         workload: str | None = None, cluster: str | None = None) -> Runs:
    """Every run matching the filters, with each metric's value where it was measured (NaN elsewhere)."""
    metrics = list(metrics)
    where, args = _filters(app=app, workload=workload, cluster=cluster, prefix="r.")
    joins = "".join(f" LEFT JOIN foms f{i} ON f{i}.run_id = r.id AND f{i}.name = ?" for i in range(len(metrics)))
    values = "".join(f", f{i}.value" for i in range(len(metrics)))
    sql = (f"SELECT r.cluster, r.app, r.workload, r.variant, r.options, r.status, r.reason, r.variant_attrs, "
           f"r.cluster_attrs{values} FROM runs r{joins}{where} ORDER BY r.rowid")
    # keyed by plain tuples while reading: hashing a tuple is much cheaper than a frozen dataclass
    contexts: dict[tuple[str, str, str, str], int] = {}
    choices: dict[tuple[str, str, str], int] = {}
    split: dict[str, tuple[str, str]] = {}
    parsed: dict[str, dict[str, Any]] = {}
    cluster_attrs: dict[str, dict[str, Any]] = {}
    variant_attrs: dict[tuple[str, str], dict[str, Any]] = {}
    ctx, choice, ok, status, reason, foms = [], [], [], [], [], []
    for row in db.execute(sql, [*metrics, *args]):
        c_name, a_name, w_name, v_name, options, st, why, v_attrs, c_attrs = row[:9]
        if options not in split:
            launch, params = split_options(json.loads(options))
            split[options] = (canonical(launch), canonical(params))
        launch_text, params_text = split[options]
        ctx.append(contexts.setdefault((c_name, a_name, w_name, params_text), len(contexts)))
        choice.append(choices.setdefault((a_name, v_name, launch_text), len(choices)))
        ok.append(st == "ok")
        status.append(st)
        reason.append(why)
        foms.append(row[9:] if st == "ok" else (None,) * len(metrics))
        for text in (c_attrs, v_attrs):
            if text not in parsed:
                parsed[text] = json.loads(text)
        cluster_attrs[c_name] = parsed[c_attrs]
        variant_attrs[(a_name, v_name)] = parsed[v_attrs]
    table = np.array(foms, dtype=float).reshape(len(ok), len(metrics))  # None -> NaN
    return Runs(contexts=[Context(*key) for key in contexts], choices=[Choice(*key) for key in choices],
                ctx=np.asarray(ctx, dtype=np.int32),
                choice=np.asarray(choice, dtype=np.int32), ok=np.asarray(ok, dtype=bool),
                values={name: table[:, i] for i, name in enumerate(metrics)}, status=status, reason=reason,
                cluster_attrs=cluster_attrs, variant_attrs=variant_attrs)


def _filters(prefix: str = "", **filters: str | None) -> tuple[str, list[str]]:
    clauses, args = [], []
    for column, wanted in filters.items():
        if wanted is not None:
            clauses.append(f"{prefix}{column} = ?")
            args.append(wanted)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def count(db: sqlite3.Connection, **filters: str | None) -> int:
    where, args = _filters(**filters)
    return db.execute(f"SELECT COUNT(*) FROM runs{where}", args).fetchone()[0]


def distinct(db: sqlite3.Connection, column: str, **filters: str | None) -> list[str]:
    if column not in {"app", "workload", "cluster", "variant"}:
        raise ValueError(column)
    where, args = _filters(**filters)
    return [row[0] for row in db.execute(f"SELECT DISTINCT {column} FROM runs{where} ORDER BY 1", args)]




def metrics(db: sqlite3.Connection, app: str | None = None) -> list[str]:
    """Figures of merit stored for an app's runs (or all runs)."""
    if app is None:
        return [row[0] for row in db.execute("SELECT DISTINCT name FROM foms ORDER BY 1")]
    return [row[0] for row in db.execute(
        "SELECT DISTINCT f.name FROM foms f JOIN runs r ON r.id = f.run_id WHERE r.app = ? ORDER BY 1", [app])]


def has_metric(db: sqlite3.Connection, metric: str, app: str) -> bool:
    row = db.execute("SELECT 1 FROM foms f JOIN runs r ON r.id = f.run_id WHERE f.name = ? AND r.app = ? LIMIT 1",
                     [metric, app]).fetchone()
    return row is not None


def choices_by_cluster(db: sqlite3.Connection, app: str) -> dict[str, list[Choice]]:
    """Every choice stored for an app, per cluster it was made on."""
    found: dict[str, dict[Choice, None]] = defaultdict(dict)
    launches: dict[str, str] = {}
    for cluster, variant, options in db.execute("SELECT DISTINCT cluster, variant, options FROM runs WHERE app = ?",
                                                [app]):
        if options not in launches:
            launches[options] = canonical(split_options(json.loads(options))[0])
        found[cluster][Choice(app, variant, launches[options])] = None
    return {cluster: list(choices) for cluster, choices in found.items()}








def require_runs(db: sqlite3.Connection, path: str | Path, app: str | None = None) -> None:
    """Exit 2 with what to do when there is nothing to learn from."""
    if count(db, app=app) == 0:
        what = f"no runs of {app}" if app and count(db) else "no runs"
        raise InputError(f"{what} stored yet: run `python -m planner sweep` or `python -m planner import FILE.csv` "
                         "first", file=str(path))
