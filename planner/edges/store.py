"""The results store: one SQLite file (WAL), schema-versioned, one transaction per finished run.

Every run is keyed by its stable id (cluster, app, workload, variant, options, input, repeat), so a
sweep that is interrupted and started again finds what it already has. Figures of merit live in their
own table, one row per (run, metric) (profiles' numbers among them); which profilers ran for a run, or
why one could not, in `profiles`. A database of a newer or unknown schema version is refused, never
changed; one of an older version this planner knows is migrated in one transaction when it is opened.

Every insert, update and delete of `runs`, `foms` and `profiles` advances the store's change counter in
`meta`, kept by SQLite triggers (`changes`): what `fit` saves for `recommend` is tagged with it, and is
used only while the store is still at that change. The counter comes with a random generation drawn
at every change, so two stores (or a store and a restored copy) that made the same number of changes
never carry the same tag.

A store has side files named after its full resolved name (`planner.sqlite` -> `planner.sqlite.runs/`,
`.lock`, `.stop`), so two stores never share them and a store reached through a symlink shares them
with itself; a store path that would be another store's side file is refused.
"""

from __future__ import annotations

import errno
import json
import operator
import os
import shutil
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from planner.core.errors import InputError, StoreError
from planner.core.types import RunRecord

SCHEMA_VERSION = 5
#: Seconds SQLite waits for another writer's lock before the planner says the store is busy (and waits on).
BUSY_SECONDS = 30.0
#: Bytes written into the runs directory before a sweep: room for a few run logs.
WRITE_PROBE_BYTES = 1 << 20
#: SQLite's page cache while an import loads runs (KiB; its default is 2,000).
BULK_CACHE_KIB = 65_536

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
    queue_wait REAL,                -- seconds in the cluster's queue before the run ran (not in wall)
    rusage_of TEXT,                 -- whose user_time/sys_time/maxrss_kb: command | flux-client
    beside TEXT,                    -- JSON: ids of the runs that ran at the same time on the cluster (a sweep's)
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
CREATE TABLE IF NOT EXISTS profiles (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    profiler TEXT NOT NULL,
    status TEXT NOT NULL,           -- ok | unavailable: why
    PRIMARY KEY (run_id, profiler)
) WITHOUT ROWID;
"""

#: The tables whose rows are the store's data: a change to any of them is a change of the store.
_CHANGING = ("runs", "foms", "profiles")
#: Every row change of those advances `changes` and draws a new `generation` (one statement, two meta rows).
_TRIGGERS = [f"""CREATE TRIGGER IF NOT EXISTS {table}_{event.lower()}_counted AFTER {event} ON {table} BEGIN
    UPDATE meta SET value = CASE key WHEN 'changes' THEN CAST(value AS INTEGER) + 1
                                     ELSE lower(hex(randomblob(8))) END
    WHERE key IN ('changes', 'generation');
END""" for table in _CHANGING for event in ("INSERT", "UPDATE", "DELETE")]
_COUNTER = ["INSERT OR IGNORE INTO meta VALUES ('changes', '0')",
            "INSERT OR IGNORE INTO meta VALUES ('generation', lower(hex(randomblob(8))))"]

#: From each older schema version to the next, what it lacks, added in place when such a store is opened
#: (all steps in one transaction)
_UPGRADES = {
    # 1 -> 2: Flux's queue wait apart from the run time, and whose resource use user/sys/RSS are
    "1": ["ALTER TABLE runs ADD COLUMN queue_wait REAL", "ALTER TABLE runs ADD COLUMN rusage_of TEXT"],
    # 2 -> 3: which profilers ran for each run (none for the runs stored before)
    "2": [statement for statement in _SCHEMA[_SCHEMA.index("CREATE TABLE IF NOT EXISTS profiles"):].split(";")
          if statement.strip()],
    # 3 -> 4: the change counter (`changes`), kept by triggers
    "3": [*_TRIGGERS, *_COUNTER],
    # 4 -> 5: which runs ran side by side with each run
    "4": ["ALTER TABLE runs ADD COLUMN beside TEXT"],
}


_JSON_COLUMNS = ("options", "variant_attrs", "cluster_attrs", "beside")
_COLUMNS = [name for name in RunRecord.__dataclass_fields__ if name not in {"foms", "profiles"}]
_TABLES = {"meta", "runs", "foms", "profiles"}
_EXPECTED_COLUMNS = {"meta": ["key", "value"], "runs": _COLUMNS, "foms": ["run_id", "name", "value"],
                     "profiles": ["run_id", "profiler", "status"]}
_TRIGGER_NAMES = {statement.split()[5] for statement in _TRIGGERS}
#: What only a run that ran has (an imported one has none of them).
_MEASURED = ("exit_code", "started", "finished", "wall", "user_time", "sys_time", "maxrss_kb", "queue_wait",
             "rusage_of", "host", "command", "log_path")

#: Files the planner keeps beside a store (its runs, the sweep lock, the stop file, the compspec artifacts
#: `variants fetch` pulled, the decisions of adaptive sweeps) and SQLite's own.
SIDE_SUFFIXES = (".runs", ".lock", ".stop", ".compspec", ".adaptive", "-wal", "-shm", "-journal")
#: Filters `forget` accepts, each a column of `runs`.
FILTERS = ("id", "cluster", "app", "workload", "variant", "source", "status")


def default_path() -> Path:
    """$PLANNER_STORE, else results/planner.sqlite."""
    return Path(os.environ.get("PLANNER_STORE") or "results/planner.sqlite")


def side_file(path: str | Path, suffix: str) -> Path:
    """A file kept beside the store, named after the store's full resolved name."""
    return Path(str(Path(path).resolve()) + suffix)


def check_path(path: str | Path) -> Path:
    """The store path as a Path, or InputError naming what is wrong with it (before anything is created)."""
    text = str(path)
    if not text.strip():
        raise InputError("the store path is empty; name a file such as results/planner.sqlite", field="--store")
    path = Path(text)
    try:
        name = path.resolve().name
    except (RuntimeError, OSError) as err:  # RuntimeError: a symlink loop (Python < 3.13)
        raise InputError(f"cannot resolve the store path ({err}); a symlink points back to itself?",
                         file=text) from None
    for suffix in SIDE_SUFFIXES:
        if name.endswith(suffix):
            raise InputError(f"a store may not end in {suffix!r}: that name is a side file of the store "
                             f"{name.removesuffix(suffix)!r}; choose a name such as planner.sqlite", file=text)
    if path.is_dir():
        raise InputError("is a directory; --store names the results file, e.g. DIR/planner.sqlite", file=text)
    for parent in path.resolve().parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"{parent} is not a directory", file=text)
            break
    return path


def sqlite_problem(err: sqlite3.Error, path: Path) -> str:
    """What a person can do about an SQLite error, by its code (a full disk is not a corrupt store)."""
    code = getattr(err, "sqlite_errorname", "")
    if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return ("the store is busy: another process holds its write lock (a sweep, an import or a forget); "
                "run again when it is done")
    if code == "SQLITE_FULL" or (code.startswith("SQLITE_IOERR") and _disk_full(path)):
        return f"the disk is full ({_free(path)} free); free some space and run again"
    if code.startswith("SQLITE_READONLY") or (code.startswith(("SQLITE_CANTOPEN", "SQLITE_IOERR"))
                                              and _read_only(path.resolve().parent)):
        return "the store (or its directory) is read-only; make it writable or point --store elsewhere"
    if code.startswith("SQLITE_CONSTRAINT"):  # the file is fine: one statement broke a rule of its schema
        return f"the store refused it ({err}); the store itself is intact"
    if code.startswith("SQLITE_CANTOPEN") or code.startswith("SQLITE_IOERR"):
        return f"cannot open or write the store here ({err}); check the directory exists and is writable"
    return f"not a readable results store ({err}); move it aside or point --store elsewhere"


def _read_only(directory: Path) -> bool:
    """A directory on a read-only file system, or one this user may not write (SQLite needs to, for WAL)."""
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY) or not os.access(directory, os.W_OK)
    except OSError:
        return False


def _disk_full(path: Path) -> bool:
    # SQLite reports a write that found no space as SQLITE_FULL or, writing its WAL, as an I/O error
    try:
        return shutil.disk_usage(path.resolve().parent).free < WRITE_PROBE_BYTES // 16
    except OSError:
        return False


def _free(path: Path) -> str:
    try:
        return f"{shutil.disk_usage(path.resolve().parent).free / 2**20:.1f} MiB"
    except OSError:
        return "unknown"


class _RowValues:
    """Records as rows of `runs` with these columns; the JSON of options and attributes made once for the records in a
    row that share the same object (an import's runs of one point do)."""

    def __init__(self, columns: list[str]) -> None:
        self.insert = f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        self._columns = operator.attrgetter(*columns)
        self._json_at = [columns.index(column) for column in _JSON_COLUMNS]
        self._last: dict[int, tuple[Any, str]] = {}

    def values(self, record: RunRecord) -> list[Any]:
        values = list(self._columns(record))
        for at in self._json_at:
            value = values[at]
            last = self._last.get(at)
            if last is None or last[0] is not value:
                last = self._last[at] = (value, json.dumps(value, sort_keys=True))
            values[at] = last[1]
        return values


def _batches(records: Iterable[RunRecord], size: int) -> Iterator[list[RunRecord]]:
    batch: list[RunRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class Store:
    """All reads and writes of results go through here."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = check_path(path)
        if not self.path.exists() and not create:
            raise StoreError("no store here yet: run `python -m planner sweep` or `import` first",
                             file=str(self.path))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"cannot create the store's directory ({err.strerror})", file=str(self.path)) from None
        try:
            self._db = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None)
        except sqlite3.Error as err:
            raise StoreError(sqlite_problem(err, self.path), file=str(self.path)) from None
        try:
            self._check_schema()
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as err:
            self._db.close()
            raise StoreError(sqlite_problem(err, self.path), file=str(self.path)) from None
        except StoreError:
            self._db.close()
            raise

    def side(self, suffix: str) -> Path:
        """This store's side file (`.runs`, `.lock`, `.stop`): see `side_file`."""
        return side_file(self.path, suffix)

    def legacy_runs_dir(self) -> Path | None:
        """Where stores made before side files carried the full name kept their runs (`a.runs/` for
        `a.sqlite`, shared with `a.db`): still read for logs and recovery, never written or deleted."""
        old = self.path.resolve().with_suffix(".runs")
        return old if old != self.side(".runs") and old.is_dir() else None

    def check_writable(self) -> None:
        """Fail now, before any run is spent, when results could not be stored: a read-only store or
        directory, or a full disk (a real write of the store and of a file in its runs directory)."""
        try:
            with self.transaction() as db:
                db.execute("UPDATE meta SET value = value WHERE key = 'schema_version'")
        except sqlite3.Error as err:
            raise StoreError(sqlite_problem(err, self.path), file=str(self.path)) from None
        runs = self.side(".runs")
        probe = runs / f".write-probe-{os.getpid()}"
        try:
            runs.mkdir(exist_ok=True)
            with open(probe, "wb") as handle:
                handle.write(b"\0" * WRITE_PROBE_BYTES)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as err:
            probe.unlink(missing_ok=True)
            problem = (f"the disk is full ({_free(self.path)} free); free some space and run again"
                       if err.errno == errno.ENOSPC else f"cannot write run logs in {runs} ({err.strerror})")
            raise StoreError(problem, file=str(self.path)) from None
        probe.unlink()

    def _check_schema(self) -> None:
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" in tables:
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = row[0] if row else None
            if str(version) in _UPGRADES and _TABLES - tables <= {"profiles"}:
                self._upgrade(str(version))
                return
            if str(version) != str(SCHEMA_VERSION):
                raise StoreError(f"store schema version {version} is not {SCHEMA_VERSION}, the version this "
                                 "planner reads; use the planner that wrote it or another --store", file=str(self.path))
            if _TABLES - tables:
                raise StoreError(f"store schema version {SCHEMA_VERSION} but table(s) {sorted(_TABLES - tables)} "
                                 "missing: not a store this planner wrote whole; move it aside or use another --store",
                                 file=str(self.path))
            self._check_columns()
            self._check_counter()
            return
        if tables:
            raise StoreError(f"not a compat-lab store (tables {sorted(tables)})", file=str(self.path))
        with self.transaction():
            for statement in [*_SCHEMA.split(";"), *_TRIGGERS, *_COUNTER]:
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def _check_columns(self) -> None:
        """Every column this planner reads and writes is there (a store of the right version with tables of
        another shape is refused, not read until a query fails)."""
        for table, wanted in _EXPECTED_COLUMNS.items():
            found = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if missing := [column for column in wanted if column not in found]:
                raise StoreError(f"table {table} lacks column(s) {', '.join(missing)}: not a store this planner "
                                 "wrote; move it aside or use another --store", file=str(self.path))

    def _check_counter(self) -> None:
        """The change counter's rows and triggers are there; when one was removed, changes made meanwhile are
        unknown: the triggers are put back and a new generation drawn, so nothing saved before is trusted."""
        triggers = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        counter = {row[0] for row in self._db.execute(
            "SELECT key FROM meta WHERE key IN ('changes', 'generation')")}
        if len(triggers & _TRIGGER_NAMES) == len(_TRIGGER_NAMES) and len(counter) == 2:
            return
        with self.transaction():
            for statement in [*_TRIGGERS, *_COUNTER]:
                self._db.execute(statement)
            self._db.execute("UPDATE meta SET value = lower(hex(randomblob(8))) WHERE key = 'generation'")

    def _upgrade(self, version: str) -> None:
        """An older store brought to this version, its runs untouched, all steps in one transaction (a crash
        leaves it as it was)."""
        with self.transaction():
            while version in _UPGRADES:
                for statement in _UPGRADES[version]:
                    self._db.execute(statement)
                version = str(int(version) + 1)
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction. While another process holds the store's write lock this waits, saying so on
        stderr every BUSY_SECONDS (SQLite's own wait): a busy store is not a broken one."""
        waited = 0.0
        while True:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as err:
                if not getattr(err, "sqlite_errorname", "").startswith("SQLITE_BUSY"):
                    raise
                waited += BUSY_SECONDS
                print(f"the store {self.path} is busy: another process holds its write lock (waited {waited:.0f} s); "
                      "waiting for it (Ctrl-C to stop)", file=sys.stderr, flush=True)
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @property
    def db(self) -> sqlite3.Connection:
        """The open connection, for the readers of `planner.edges.column_reader`."""
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
            db.executemany("INSERT INTO profiles VALUES (?, ?, ?)",
                           [(record.id, name, status) for name, status in record.profiles.items()])

    def add(self, record: RunRecord, *, replace: bool = True, beside: bool = False) -> None:
        """Store one finished run in its own transaction. With `beside` (a run a sweep executed), the runs of its
        cluster whose time overlapped its own (each run's time: its wall, ending when it finished) are its
        `beside`, and it joins theirs."""
        with self.transaction() as db:
            if beside and record.finished is not None and record.wall is not None:
                start, end = record.finished - record.wall, record.finished
                others = db.execute("SELECT id, beside FROM runs WHERE cluster = ? AND id != ? AND source = 'sweep' "
                                    "AND finished - wall < ? AND finished > ?",
                                    (record.cluster, record.id, end, start)).fetchall()
                record.beside = sorted(other for other, _ in others)
                for other, theirs in others:
                    joined = sorted({*(json.loads(theirs) or [] if theirs else []), record.id})
                    db.execute("UPDATE runs SET beside = ? WHERE id = ?", (json.dumps(joined), other))
            self._insert(db, record, replace)

    def add_many(self, records: Iterable[RunRecord], *, replace: bool = False) -> int:
        """Store many runs atomically (all or nothing); returns how many were new."""
        with self.transaction() as db:
            before = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
            for record in records:
                self._insert(db, record, replace)
            return db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] - before

    def merge_many(self, records: Iterable[RunRecord], *, replace: bool = False,
                   progress: Callable[[int], None] | None = None) -> tuple[int, int]:
        """Store imported runs atomically (all or nothing), merging into runs already stored: one stored with the
        same status gets the figures of merit it lacks; with `replace` a stored run takes the record's columns
        and figures, keeping the figures the record does not give (none when it is no longer ok). Returns
        (new runs, figures of merit added to or replaced in stored runs); `progress(n)` after every 10,000.

        Runs not stored yet go in by batches of 10,000 (`executemany`), with the change counter's triggers set
        aside for the load and the counter advanced by the rows it changed before they are put back, all in the
        one transaction; it commits with a full sync (durable once this returns)."""
        columns = [c for c in _COLUMNS if c != "id"]
        update = (f"UPDATE runs SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?")
        # an imported run has none of the columns of a run that ran: leaving them out of the insert (SQLite stores
        # NULL) halves what each row costs
        rows, unmeasured = _RowValues(_COLUMNS), _RowValues([c for c in _COLUMNS if c not in _MEASURED])
        measured, nothing = operator.attrgetter(*_MEASURED), (None,) * len(_MEASURED)
        merge_fom = "INSERT INTO foms VALUES (?, ?, ?) ON CONFLICT(run_id, name) DO " + \
                    ("UPDATE SET value = excluded.value" if replace else "NOTHING")
        new = merged = done = 0
        with self._bulk_load(), self.transaction() as db, self._uncounted(db):
            empty = db.execute("SELECT NOT EXISTS (SELECT 1 FROM runs)").fetchone()[0]
            for batch in _batches(records, 10_000):
                stored = set() if empty else self.ids(record.id for record in batch)
                fresh: list[RunRecord] = []
                again: list[RunRecord] = []  # stored already, or twice in the records: merged one by one
                for record in batch:
                    (again if record.id in stored else fresh).append(record)
                    stored.add(record.id)
                bare = [record for record in fresh if measured(record) == nothing]
                db.executemany(unmeasured.insert, map(unmeasured.values, bare))
                if len(bare) < len(fresh):
                    db.executemany(rows.insert, [rows.values(r) for r in fresh if measured(r) != nothing])
                db.executemany("INSERT INTO foms VALUES (?, ?, ?)", [
                    (record.id, name, float(value)) for record in fresh for name, value in record.foms.items()])
                db.executemany("INSERT INTO profiles VALUES (?, ?, ?)", [
                    (record.id, name, status) for record in fresh for name, status in record.profiles.items()])
                new += len(fresh)
                for record in again:
                    values = rows.values(record)
                    foms = [(record.id, name, float(value)) for name, value in record.foms.items()]
                    if replace:
                        db.execute(update, [*values[1:], record.id])
                        if record.status != "ok":
                            db.execute("DELETE FROM foms WHERE run_id = ?", (record.id,))
                        for fom in foms:
                            merged += db.execute(merge_fom, fom).rowcount
                    elif foms and db.execute("SELECT status FROM runs WHERE id = ?", (record.id,)).fetchone()[0] == \
                            record.status:
                        for fom in foms:
                            merged += db.execute(merge_fom, fom).rowcount
                done += len(batch)
                if progress is not None:
                    progress(done)
        return new, merged

    @contextmanager
    def _bulk_load(self) -> Iterator[None]:
        """A larger page cache while many runs go in (fewer B-tree pages written twice before the commit), a full sync
        at the commit, and no foreign key look-up per figure of merit (each refers to a run the same batch has just
        inserted, or found stored); the store's own settings after."""
        self._db.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.execute("PRAGMA foreign_keys = OFF")
        try:
            yield
        finally:
            self._db.execute("PRAGMA cache_size = -2000")  # SQLite's default
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA foreign_keys = ON")

    @contextmanager
    def _uncounted(self, db: sqlite3.Connection) -> Iterator[None]:
        """Inside a transaction: the change counter's triggers dropped (each costs more than the row it counts), and
        before the commit the counter advanced by the number of rows changed meanwhile, a new generation drawn and
        the triggers put back. On an error the caller's rollback restores them as they were."""
        before = db.total_changes
        for name in _TRIGGER_NAMES:
            db.execute(f"DROP TRIGGER IF EXISTS {name}")
        yield
        changed = db.total_changes - before
        for statement in _TRIGGERS:
            db.execute(statement)
        if changed:
            db.execute("UPDATE meta SET value = CASE key WHEN 'changes' THEN CAST(value AS INTEGER) + ? "
                       "ELSE lower(hex(randomblob(8))) END WHERE key IN ('changes', 'generation')", (changed,))

    # ------------------------------------------------------------------------------------------- reads

    def ids(self, ids: Iterable[str] | None = None, *, status: str | None = None) -> set[str]:
        """Stored run ids (of these, when given; with this status, when given)."""
        only = " AND status = ?" if status else ""
        extra = [status] if status else []
        if ids is None:
            return {row[0] for row in self._db.execute(f"SELECT id FROM runs WHERE 1{only}", extra)}
        wanted = list(ids)
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            found.update(row[0] for row in self._db.execute(
                f"SELECT id FROM runs WHERE id IN ({', '.join('?' * len(chunk))}){only}", [*chunk, *extra]))
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
                if data[column] is None and column == "beside":  # a run stored before schema 5
                    continue
                try:
                    data[column] = json.loads(data[column])
                except (TypeError, json.JSONDecodeError):
                    raise StoreError(f"run {data['id']}: its stored {column} is not JSON; remove the run with "
                                     f"`python -m planner forget --id {data['id']} --yes`",
                                     file=str(self.path)) from None
            records.append(RunRecord(**data))
        if with_foms and records:
            by_id = {record.id: record for record in records}
            for run_id, name, value in self._db.execute(
                    f"SELECT f.run_id, f.name, f.value FROM foms f JOIN runs r ON r.id = f.run_id{where}", args):
                by_id[run_id].foms[name] = value
            for run_id, name, status in self._db.execute(
                    f"SELECT p.run_id, p.profiler, p.status FROM profiles p JOIN runs r ON r.id = p.run_id{where}",
                    args):
                by_id[run_id].profiles[name] = status
        return records

    def matching(self, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        """Runs whose columns take one of the given values (every filter must match), in a stable order."""
        where, args = [], []
        for column, values in filters.items():
            if column not in FILTERS:
                raise ValueError(column)
            if values:
                where.append(f"{column} IN ({', '.join('?' * len(values))})")
                args.extend(values)
        columns = (*FILTERS, "log_path")
        sql = f"SELECT {', '.join(columns)} FROM runs" + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += " ORDER BY cluster, app, workload, variant, source, status, id"
        return [dict(zip(columns, row, strict=True)) for row in self._db.execute(sql, args)]

    def delete(self, ids: Iterable[str]) -> int:
        """Remove runs (and their figures of merit) in one transaction; returns how many went."""
        wanted = list(ids)
        removed = 0
        with self.transaction() as db:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                removed += db.execute(f"DELETE FROM runs WHERE id IN ({', '.join('?' * len(chunk))})", chunk).rowcount
        return removed

    def distinct(self, column: str) -> list[str]:
        if column not in {"app", "workload", "cluster", "variant"}:
            raise ValueError(column)
        return [row[0] for row in self._db.execute(f"SELECT DISTINCT {column} FROM runs ORDER BY 1")]

    def changes(self) -> str:
        """The store's change tag, `COUNT-GENERATION`: different after any change of its runs, figures of merit
        or profiles (SQLite triggers keep it; see the module's description), never the same in two stores
        that changed apart."""
        rows = dict(self._db.execute("SELECT key, value FROM meta WHERE key IN ('changes', 'generation')"))
        return f"{rows['changes']}-{rows['generation']}"
