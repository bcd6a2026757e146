"""Stored runs read as columns for learning: parameterised SQL straight into `learn.columns.Runs`.

The readers take the connection of the command's one `Store` (`Store.db`, opened after the Store
has vouched for the file: it exists, its schema version is known). Columns are read straight into
arrays, with no record object per run (benchmarks/learn_speed.py times it), and the JSON columns are
parsed once per distinct text.
"""

from __future__ import annotations

import json
import math
import sqlite3
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from planner.core.errors import InputError
from planner.learn.columns import Choice, Context, Runs, canonical
from planner.learn.features import split_options


def read(db: sqlite3.Connection, metrics: Iterable[str] = (), *, app: str | None = None,
         workload: str | None = None, cluster: str | None = None, explain: Iterable[str] = ()) -> Runs:
    """Every run matching the filters, with each metric's value where it was measured (NaN elsewhere);
    `explain` metrics (profiles) are read beside them as they are: a zero count is no reason to leave a run out."""
    learned = list(metrics)
    metrics = learned + [name for name in explain if name not in learned]
    where, args = _filters(app=app, workload=workload, cluster=cluster, prefix="r.")
    return _runs(db.execute(_select(len(metrics), where), [*metrics, *args]), metrics, len(learned))


def _select(n_metrics: int, where: str = "") -> str:
    """The runs (as `_runs` reads them, oldest first) with the value of each of `n_metrics` metrics."""
    joins = "".join(f" LEFT JOIN foms f{i} ON f{i}.run_id = r.id AND f{i}.name = ?" for i in range(n_metrics))
    values = "".join(f", f{i}.value" for i in range(n_metrics))
    return (f"SELECT r.cluster, r.app, r.workload, r.variant, r.options, r.status, r.reason, r.variant_attrs, "
            f"r.cluster_attrs{values}, r.wall, r.id FROM runs r{joins}{where} ORDER BY r.rowid")


def _runs(rows: Iterable[tuple[Any, ...]], metrics: list[str], learned: int) -> Runs:
    """`Runs` of rows laid out as `_select` gives them; the first `learned` metrics are learned from."""
    # keyed by plain tuples while reading: hashing a tuple is much cheaper than a frozen dataclass
    contexts: dict[tuple[str, str, str, str], int] = {}
    choices: dict[tuple[str, str, str], int] = {}
    split: dict[str, tuple[str, str]] = {}
    parsed: dict[str, dict[str, Any]] = {}
    cluster_attrs: dict[str, dict[str, Any]] = {}
    variant_attrs: dict[tuple[str, str], dict[str, Any]] = {}
    ctx, choice, ok, status, reason, foms, wall = [], [], [], [], [], [], []
    unusable = _Unusable()
    for row in rows:
        c_name, a_name, w_name, v_name, options, st, why, v_attrs, c_attrs = row[:9]
        if not unusable.check(row, parsed, st == "ok", learned):
            continue
        if options not in split:
            launch, params = split_options(parsed[options])
            split[options] = (canonical(launch), canonical(params))
        launch_text, params_text = split[options]
        ctx.append(contexts.setdefault((c_name, a_name, w_name, params_text), len(contexts)))
        choice.append(choices.setdefault((a_name, v_name, launch_text), len(choices)))
        ok.append(st == "ok")
        status.append(st)
        reason.append(why)
        foms.append(row[9:-2] if st == "ok" else (None,) * len(metrics))
        wall.append(row[-2])
        cluster_attrs[c_name] = parsed[c_attrs]
        variant_attrs[(a_name, v_name)] = parsed[v_attrs]
    unusable.warn()
    table = np.array(foms, dtype=float).reshape(len(ok), len(metrics))  # None -> NaN
    return Runs(contexts=[Context(*key) for key in contexts], choices=[Choice(*key) for key in choices],
                ctx=np.asarray(ctx, dtype=np.int32),
                choice=np.asarray(choice, dtype=np.int32), ok=np.asarray(ok, dtype=bool),
                values={name: table[:, i] for i, name in enumerate(metrics)}, status=status, reason=reason,
                cluster_attrs=cluster_attrs, variant_attrs=variant_attrs,
                wall=np.array(wall, dtype=float))


class _Unusable:
    """Stored runs learning cannot use, read around with one warning: a figure of merit that is not a
    positive finite number (the models work on its logarithm), or options and attributes that are not
    JSON or hold NaN/inf. `python -m planner forget` removes them."""

    def __init__(self) -> None:
        self.ids: dict[str, list[str]] = defaultdict(list)
        #: per JSON text seen: what makes it unusable (None: usable); a store repeats the same few texts
        self.verdicts: dict[str, str | None] = {}

    def check(self, row: tuple[Any, ...], parsed: dict[str, Any], ok: bool, n_metrics: int) -> bool:
        for text in (row[4], row[7], row[8]):  # options, variant_attrs, cluster_attrs
            if text not in self.verdicts:
                self.verdicts[text] = self._verdict(text, parsed)
            if self.verdicts[text] is not None:
                self.ids[self.verdicts[text]].append(row[-1])
                return False
        values = row[9:9 + n_metrics] if ok else ()
        if any(v is not None and not (isinstance(v, int | float) and math.isfinite(v) and v > 0) for v in values):
            self.ids["figures of merit <= 0 or not finite"].append(row[-1])
            return False
        return True

    @staticmethod
    def _verdict(text: str, parsed: dict[str, Any]) -> str | None:
        try:
            parsed[text] = json.loads(text)
        except (TypeError, json.JSONDecodeError):
            parsed[text] = None
        value = parsed[text]
        if not isinstance(value, dict):
            return "options or attributes not JSON objects"
        if any(isinstance(v, float) and not math.isfinite(v) for v in value.values()):
            return "NaN/inf attributes"
        return None

    def warn(self) -> None:
        if not self.ids:
            return
        what = "; ".join(f"{len(ids)} with {why} (e.g. {ids[0]})" for why, ids in self.ids.items())
        print(f"warning: read around stored runs learning cannot use: {what}; list or remove them with "
              "`python -m planner forget --id ID`", file=sys.stderr)


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
    names = [row[0] for row in db.execute("SELECT DISTINCT name FROM foms ORDER BY 1")]
    # a few names, each looked up until one run of the app has it (a join of every FOM with its run is slow)
    return names if app is None else [name for name in names if has_metric(db, name, app)]


def has_metric(db: sqlite3.Connection, metric: str, app: str) -> bool:
    row = db.execute("SELECT 1 FROM foms f JOIN runs r ON r.id = f.run_id WHERE f.name = ? AND r.app = ? LIMIT 1",
                     [metric, app]).fetchone()
    return row is not None


def choices_by_cluster(db: sqlite3.Connection, app: str) -> dict[str, list[Choice]]:
    """Every choice stored for an app, per cluster it was made on."""
    found: dict[str, dict[Choice, None]] = defaultdict(dict)
    launches: dict[str, str | None] = {}
    for cluster, variant, options in db.execute("SELECT DISTINCT cluster, variant, options FROM runs WHERE app = ?",
                                                [app]):
        if options not in launches:
            try:
                launches[options] = canonical(split_options(json.loads(options))[0])
            except (TypeError, AttributeError, json.JSONDecodeError):  # read around, as `read` says
                launches[options] = None
        if launches[options] is not None:
            found[cluster][Choice(app, variant, launches[options])] = None
    return {cluster: list(choices) for cluster, choices in found.items()}


def require_runs(db: sqlite3.Connection, path: str | Path, app: str | None = None) -> None:
    """Exit 2 with what to do when there is nothing to learn from."""
    if count(db, app=app) == 0:
        what = f"no runs of {app}" if app and count(db) else "no runs"
        raise InputError(f"{what} stored yet: run `python -m planner sweep` or `python -m planner import FILE.csv` "
                         "first", file=str(path))


def snapshot(db: sqlite3.Connection, metrics: list[str]) -> dict[str, np.ndarray] | None:
    """Every stored run as `read` reads it, with these metrics, as plain arrays that `from_snapshot` reads back
    (what `fit` saves for `recommend`, `planner.edges.modelfiles`): the distinct texts once, each run as their
    indices. None when some run would be read around (then `recommend` reads the store)."""
    texts: dict[str | None, int] = {}
    codes, values, walls = [], [], []
    unusable = _Unusable()
    parsed: dict[str, Any] = {}
    for row in db.execute(_select(len(metrics)), metrics):
        if not unusable.check(row, parsed, row[5] == "ok", len(metrics)) or \
                not all(v is None or isinstance(v, int | float) for v in row[9:-1]):
            return None
        codes.append([texts.setdefault(text, len(texts)) for text in row[:9]])
        values.append(row[9:-2])
        walls.append(row[-2])
    return {"texts": np.array([json.dumps(text) for text in texts], dtype=str),
            "runs": np.array(codes, dtype=np.int32).reshape(-1, 9),
            "values": np.array(values, dtype=float).reshape(-1, len(metrics)),
            "wall": np.array(walls, dtype=float), "metrics": np.array(metrics, dtype=str)}


def from_snapshot(saved: dict[str, np.ndarray], metrics: Iterable[str] = (), *, app: str | None = None,
                  workload: str | None = None, cluster: str | None = None, explain: Iterable[str] = ()) -> Runs | None:
    """What `read` gives with these arguments, from a `snapshot` of the store as it is now (no run of it is read
    around: `snapshot` saves none otherwise), column by column; None when the snapshot lacks one of the metrics."""
    learned = list(metrics)
    names = learned + [name for name in explain if name not in learned]
    saved_names = saved["metrics"].tolist()
    if any(name not in saved_names for name in names):
        return None
    texts = [json.loads(text) for text in saved["texts"].tolist()]
    index = {text: i for i, text in enumerate(texts) if isinstance(text, str)}
    runs = saved["runs"]
    keep = np.ones(len(runs), dtype=bool)
    for column, wanted in ((0, cluster), (1, app), (2, workload)):
        if wanted is not None:
            keep &= runs[:, column] == index.get(wanted, -1)
    rows = np.flatnonzero(keep)
    codes = runs[rows].astype(np.int64)
    # each distinct options text split once into launch options and workload parameters, as `_runs` does
    split: dict[int, tuple[str, str]] = {}
    for code in np.unique(codes[:, 4]).tolist():
        launch, params = split_options(json.loads(texts[code]))
        split[code] = (canonical(launch), canonical(params))
    parts = {text: i for i, text in enumerate(dict.fromkeys(t for pair in split.values() for t in pair))}
    launch_of = np.zeros(len(texts), dtype=np.int64)
    params_of = np.zeros(len(texts), dtype=np.int64)
    for code, (launch, params) in split.items():
        launch_of[code], params_of[code] = parts[launch], parts[params]
    part_text = list(parts)
    ctx, contexts = _first_seen(np.column_stack([codes[:, 0], codes[:, 1], codes[:, 2], params_of[codes[:, 4]]]))
    choice, choices = _first_seen(np.column_stack([codes[:, 1], codes[:, 3], launch_of[codes[:, 4]]]))
    status = [texts[c] for c in codes[:, 5].tolist()]
    ok = codes[:, 5] == index.get("ok", -1)
    values = saved["values"][np.ix_(rows, [saved_names.index(name) for name in names])]
    values[~ok] = np.nan
    # latest attributes: those of the last run of each cluster and of each (app, variant), in order of the first
    last_cluster = _last_seen(codes[:, [0]])
    last_variant = _last_seen(codes[:, [1, 3]])
    attrs = {code: json.loads(texts[code]) for code in np.unique(codes[:, 7:9]).tolist()}
    return Runs(contexts=[Context(texts[c], texts[a], texts[w], part_text[p]) for c, a, w, p in contexts],
                choices=[Choice(texts[a], texts[v], part_text[k]) for a, v, k in choices],
                ctx=ctx.astype(np.int32), choice=choice.astype(np.int32), ok=ok,
                values={name: values[:, i] for i, name in enumerate(names)}, status=status,
                reason=[texts[c] for c in codes[:, 6].tolist()],
                cluster_attrs={texts[codes[i, 0]]: attrs[codes[i, 8]] for i in last_cluster},
                variant_attrs={(texts[codes[i, 1]], texts[codes[i, 3]]): attrs[codes[i, 7]] for i in last_variant},
                wall=saved["wall"][rows].astype(float))


def _packed(keys: np.ndarray) -> np.ndarray:
    """Rows of small non-negative integers as one integer each, ordered as the rows (a 1-D sort is ~10x faster)."""
    packed = np.zeros(len(keys), dtype=np.int64)
    for column in keys.T:
        packed = packed * (int(column.max(initial=0)) + 1) + column
    return packed


def _last_seen(keys: np.ndarray) -> list[int]:
    """The row of the last appearance of each distinct key, in order of their first appearance."""
    if not len(keys):
        return []
    packed = _packed(keys)
    _, first = np.unique(packed, return_index=True)
    _, last = np.unique(packed[::-1], return_index=True)  # the same sorted keys, from the end
    return (len(keys) - 1 - last[np.argsort(first, kind="stable")]).tolist()


def _first_seen(keys: np.ndarray) -> tuple[np.ndarray, list[list[int]]]:
    """Per row, the index of its key among the distinct keys numbered in order of first appearance; those keys."""
    if not len(keys):
        return np.zeros(0, dtype=np.int64), []
    _, first, inverse = np.unique(_packed(keys), return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[inverse.reshape(-1)], keys[first[order]].tolist()


def snapshot_distinct(saved: dict[str, np.ndarray], column: str, **filters: str | None) -> list[str]:
    """`distinct` from a `snapshot`."""
    position = {"cluster": 0, "app": 1, "workload": 2, "variant": 3}
    texts = saved["texts"].tolist()
    index = {json.loads(text): i for i, text in enumerate(texts)}
    runs = saved["runs"]
    keep = np.ones(len(runs), dtype=bool)
    for name, wanted in filters.items():
        if wanted is not None:
            keep &= runs[:, position[name]] == index.get(wanted, -1)
    return sorted(json.loads(texts[i]) for i in np.unique(runs[keep, position[column]]).tolist())
