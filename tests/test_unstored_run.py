"""Issue 19: a run that cannot be stored makes the sweep exit 1 and names it; every run stored before it stays, and
the next sweep stores it from what its executor left in its directory, without running it again.

The store's refusal is SQLite's own: a trigger the test adds to the real store aborts the insert of repeat 1 (what
a full disk or a broken file does to one run's transaction, made to happen at one chosen run). Real LAMMPS runs,
real Ansible, as a user sweeps."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from planner.edges.store import Store
from tests.conftest import planner
from tests.one_run import lj_experiment

pytestmark = pytest.mark.lammps


def test_a_run_the_store_refuses_fails_the_sweep_by_name_and_the_next_sweep_stores_it(native_variants: Path,
                                                                                      tmp_path: Path) -> None:
    store = tmp_path / "planner.sqlite"
    Store(store).close()
    with sqlite3.connect(store) as db:
        db.execute("CREATE TRIGGER refuse_repeat_1 BEFORE INSERT ON runs WHEN NEW.repeat = 1 "
                   "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
    sweep = ("sweep", "-e", str(lj_experiment(tmp_path / "e.yaml", timeout=120)), "--repeats", "3")
    first = planner(*sweep, store=store)
    assert first.returncode == 1, first.stdout + first.stderr
    with sqlite3.connect(store) as db:
        kept = dict(db.execute("SELECT repeat, finished FROM runs"))
        db.execute("DROP TRIGGER refuse_repeat_1")
    assert 0 in kept and 1 not in kept  # the run before it stays stored
    between = time.time()
    second = planner(*sweep, store=store)
    assert second.returncode == 0, second.stdout + second.stderr
    with Store(store) as opened:
        records = {record.repeat: record for record in opened.records()}
    assert sorted(records) == [0, 1, 2] and all(r.status == "ok" for r in records.values())
    refused = records[1]
    [line] = [line for line in first.stderr.splitlines() if "could not be stored" in line]
    assert f"run {refused.id} finished but could not be stored" in line, line
    assert "the store refused it (refused by the test); the store itself is intact" in line, line
    assert refused.finished is not None and refused.finished < between  # its result kept from the first sweep
    assert records[0].finished == kept[0]
