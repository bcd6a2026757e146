"""The results store: one SQLite file (WAL), schema-versioned, one transaction per finished run.

Every run is keyed by its stable id (cluster, app, workload, variant, options, repeat), so a sweep
that is interrupted and started again finds what it already has. Figures of merit live in their own
table, one row per (run, metric). A database of another schema version is refused, never changed.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from planner.core.errors import StoreError
from planner.core.types import RunRecord

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    config_id TEXT NOT NULL,
    cluster TEXT NOT NULL,
    app TEXT NOT NULL,
    workload TEXT NOT NULL,
    variant TEXT NOT NULL,
    options TEXT NOT NULL,          -- JSON: canonical options and workload parameters
    repeat INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'incompatible')),
    reason TEXT,
    detail TEXT,
    exit_code INTEGER,
    started REAL,
    finished REAL,
    wall REAL,
    user_time REAL,
    sys_time REAL,
    maxrss_kb INTEGER,
    host TEXT,
    command TEXT,                   -- the launch command as a person would type it
    log_path TEXT,
    variant_attrs TEXT NOT NULL,    -- JSON: compspec attributes of the variant (facts included)
    cluster_attrs TEXT NOT NULL,    -- JSON: attributes of the cluster
    source TEXT NOT NULL            -- sweep | import
);
CREATE INDEX IF NOT EXISTS runs_by_point ON runs (app, workload, cluster);
CREATE TABLE IF NOT EXISTS foms (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
"""


_JSON_COLUMNS = ("options", "variant_attrs", "cluster_attrs")
_COLUMNS = [name for name in RunRecord.__dataclass_fields__ if name != "foms"]


def default_path() -> Path:
    return Path(os.environ.get("PLANNER_STORE") or "results/planner.sqlite")


class Store:
    """All reads and writes of results go through here."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not self.path.exists() and not create:
            raise StoreError("no store here yet: run `python -m planner sweep` or `import` first",
                             file=str(self.path))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            self._check_schema()
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as err:
            self._db.close()
            raise StoreError(f"not a readable results store ({err}); move it aside or point --store elsewhere",
                             file=str(self.path)) from None
        except StoreError:
            self._db.close()
            raise

    def _check_schema(self) -> None:
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" in tables:
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else None
            if version != SCHEMA_VERSION:
                raise StoreError(f"store schema version {version} is not {SCHEMA_VERSION}, the version this planner "
                                 "reads; use the planner that wrote it or another --store", file=str(self.path))
            return
        if tables:
            raise StoreError(f"not a compat-lab store (tables {sorted(tables)})", file=str(self.path))
        with self.transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @property
    def db(self) -> sqlite3.Connection:
        """The open connection, for the readers of `planner.edges.datasets`."""
        return self._db

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ writes

    def _insert(self, db: sqlite3.Connection, record: RunRecord, replace: bool) -> None:
        row = asdict(record)
        values = [json.dumps(row[c], sort_keys=True) if c in _JSON_COLUMNS else row[c] for c in _COLUMNS]
        if replace:
            db.execute("DELETE FROM runs WHERE id = ?", (record.id,))  # its foms go with it (cascade)
        # ON CONFLICT, not OR IGNORE: a duplicate id is skipped, a CHECK violation still raises
        cursor = db.execute(f"INSERT INTO runs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
                            "ON CONFLICT(id) DO NOTHING", values)
        if cursor.rowcount:
            db.executemany("INSERT INTO foms VALUES (?, ?, ?)",
                           [(record.id, name, float(value)) for name, value in record.foms.items()])

    def add(self, record: RunRecord, *, replace: bool = True) -> None:
        """Store one finished run in its own transaction."""
        with self.transaction() as db:
            self._insert(db, record, replace)

    def add_many(self, records: Iterable[RunRecord], *, replace: bool = False) -> int:
        """Store many runs atomically (all or nothing); returns how many were new."""
        with self.transaction() as db:
            before = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
            for record in records:
                self._insert(db, record, replace)
            return db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] - before

    # ------------------------------------------------------------------------------------------- reads

    def ids(self, ids: Iterable[str] | None = None) -> set[str]:
        if ids is None:
            return {row[0] for row in self._db.execute("SELECT id FROM runs")}
        wanted = list(ids)
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            found.update(row[0] for row in self._db.execute(
                f"SELECT id FROM runs WHERE id IN ({', '.join('?' * len(chunk))})", chunk))
        return found

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    def records(self, *, app: str | None = None, workload: str | None = None,
                cluster: str | None = None, with_foms: bool = True) -> list[RunRecord]:
        """Stored runs matching the filters (all by default), with their figures of merit."""
        clauses, args = [], []
        for column, value in (("app", app), ("workload", workload), ("cluster", cluster)):
            if value is not None:
                clauses.append(f"r.{column} = ?")
                args.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {', '.join(f'r.{c}' for c in _COLUMNS)} FROM runs r{where}"
        sql += " ORDER BY r.cluster, r.app, r.workload, r.variant, r.config_id, r.repeat"
        records = []
        for row in self._db.execute(sql, args):
            data = dict(zip(_COLUMNS, row, strict=True))
            for column in _JSON_COLUMNS:
                data[column] = json.loads(data[column])
            records.append(RunRecord(**data))
        if with_foms and records:
            by_id = {record.id: record for record in records}
            for run_id, name, value in self._db.execute(
                    f"SELECT f.run_id, f.name, f.value FROM foms f JOIN runs r ON r.id = f.run_id{where}", args):
                by_id[run_id].foms[name] = value
        return records

    def distinct(self, column: str) -> list[str]:
        if column not in {"app", "workload", "cluster", "variant"}:
            raise ValueError(column)
        return [row[0] for row in self._db.execute(f"SELECT DISTINCT {column} FROM runs ORDER BY 1")]

    def fingerprint(self) -> str:
        """Changes whenever the stored data changes: count plus the latest row ids."""
        row = self._db.execute("SELECT COUNT(*), MAX(rowid) FROM runs").fetchone()
        foms = self._db.execute("SELECT COUNT(*) FROM foms").fetchone()[0]
        return f"{row[0]}-{row[1]}-{foms}"
