"""The store: schema version refused when unknown, a corrupt file is bad input (exit 2) and is left intact."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from planner.cli import main
from planner.core.errors import StoreError
from planner.edges.store import RunRecord, Store


def _record(run_id: str = "r1", **extra: object) -> RunRecord:
    return RunRecord(id=run_id, config_id="c1", cluster="local", app="lammps", workload="lj", variant="v",
                     options={"tasks": 2}, repeat=0, status="ok", foms={"timesteps_per_s": 10.0}, **extra)


def test_round_trip_and_wal(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        store.add(_record(variant_attrs={"mpi.implementation": "mpich"}))
        [back] = store.records()
    assert back.foms == {"timesteps_per_s": 10.0} and back.variant_attrs == {"mpi.implementation": "mpich"}
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_add_many_is_all_or_nothing(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        bad = _record("r2")
        bad.status = "maybe"  # violates the CHECK constraint
        with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
            store.add_many([_record("r1"), bad])
        assert store.count() == 0
        assert store.add_many([_record("r1"), _record("r2")]) == 2
        assert store.add_many([_record("r1")]) == 0  # idempotent


def test_unknown_schema_version_is_refused_and_untouched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.add(_record())
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="schema version 99 is not 5"):
        Store(path)
    assert main(["results", "--store", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: ") and "schema version 99 is not 5" in err
    assert len(err.strip().splitlines()) == 1
    assert path.read_bytes() == before


def test_a_schema_2_store_is_migrated_keeping_its_runs_and_takes_profiles(tmp_path: Path) -> None:
    """A store written before profiles (schema 2: no `profiles` table) is brought to the current schema when opened,
    in one transaction: its runs stay, and new runs keep which profilers ran."""
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.add(_record())
    db = sqlite3.connect(path)
    with db:
        db.execute("DROP TABLE profiles")
        db.execute("ALTER TABLE runs DROP COLUMN beside")
        db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    db.close()
    with Store(path) as store:
        [old] = store.records()
        new = _record("r2", profiles={"ebpf": "ok", "perf": "unavailable: perf is not installed"})
        new.foms["ebpf.runq_wait_p99_us"] = 40.0
        store.add(new)
        [_, new] = store.records()
    assert old.foms == {"timesteps_per_s": 10.0} and old.profiles == {}
    assert new.foms["ebpf.runq_wait_p99_us"] == 40.0
    assert new.profiles == {"ebpf": "ok", "perf": "unavailable: perf is not installed"}
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("5",)


def test_corrupt_store_is_bad_input_and_left_as_it_was(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    assert main(["results", "--store", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: not a readable results store")
    assert len(err.strip().splitlines()) == 1
    assert path.read_bytes() == b"this is not a database" * 100


def test_results_on_a_missing_store_says_to_sweep_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["results", "--store", str(tmp_path / "none.sqlite")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'none.sqlite'}") and "run `python -m planner sweep`" in err
    assert not (tmp_path / "none.sqlite").exists()


def test_a_store_of_schema_version_1_is_upgraded_in_place_keeping_its_runs(tmp_path: Path) -> None:
    """Version 2 added where a run's time went (queue wait) and whose resource use is recorded, version 3
    which profilers ran: a version-1 store gets both."""
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.add(_record("old"))
    db = sqlite3.connect(path)  # what a version-1 planner wrote
    for column in ("queue_wait", "rusage_of", "beside"):
        db.execute(f"ALTER TABLE runs DROP COLUMN {column}")
    db.execute("DROP TABLE profiles")
    db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with Store(path) as store:
        assert [record.id for record in store.records()] == ["old"]
        new = _record("new")
        new.queue_wait, new.rusage_of = 2.5, "flux-client"
        store.add(new)
    with Store(path) as store:
        kept = {record.id: record for record in store.records()}
    assert (kept["new"].queue_wait, kept["new"].rusage_of) == (2.5, "flux-client")
    assert (kept["old"].queue_wait, kept["old"].rusage_of) == (None, None) and kept["old"].profiles == {}
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("5",)
    db.close()


def test_a_store_held_by_another_writer_is_busy_not_unreadable_and_is_waited_for(tmp_path: Path) -> None:
    """Another process holds the write lock for longer than SQLite's wait (BUSY_SECONDS): the planner says the
    store is busy and waits, with progress, then does its work (it called a healthy store "not a readable
    results store ... move it aside"). `import` and a sweep write through the same `Store.transaction`."""
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    busy_seconds = 30  # SQLite's wait for a lock, as the planner sets it (`store.BUSY_SECONDS`)

    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.add(_record("r1"))
    # the holder keeps the lock until the test tells it (a line on its stdin): no fixed sleep to outlast
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys\n"
        f"db = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
        "db.execute('BEGIN IMMEDIATE'); print('held', flush=True)\n"
        "sys.stdin.readline()\n"
        "db.execute('COMMIT')\n")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    importer = None
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        csv = tmp_path / "r.csv"
        csv.write_text("cluster,app,workload,variant,repeat,status,metric,value\nc1,toy,w,vA,0,ok,fom,5\n")
        started = time.monotonic()
        importer = subprocess.Popen([sys.executable, "-m", "planner", "import", str(csv), "--store", str(path)],
                                    cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert importer.stderr is not None
        said = ""
        while line := importer.stderr.readline():  # what the importer says while the lock is held
            said += line
            if "is busy" in line:
                break
        assert "is busy: another process holds its write lock (waited 30 s); waiting" in said, said
        assert time.monotonic() - started > busy_seconds
        holder.communicate("release\n", timeout=30)  # the other writer commits: the import goes on
        _, err = importer.communicate(timeout=busy_seconds * 4)
        assert importer.returncode == 0, said + err
        assert "not a readable" not in said + err
    finally:
        for proc in (holder, importer):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    with Store(path) as store:
        assert store.count() == 2
