"""Issue 19: a big import says how far it is and stores every run as a sweep would, the store's change counter
advanced exactly as its triggers would have (an import sets them aside for the load; see `Store.merge_many`).
60,000 rows (30,000 runs of two metrics each) through the real CSV reader and the real SQLite store; the 1,000,000-row
figures are benchmarks/import_speed.py's."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from planner.core.types import key_ids, run_ids, run_key
from planner.edges.importer import read_csv
from planner.edges.store import Store
from tests.learn.conftest import record


def _csv(path: Path, runs: int) -> Path:
    with open(path, "w") as out:
        out.write("cluster,app,workload,variant,repeat,status,metric,value,cluster.arch,option.tasks,option.x\n")
        for n in range(runs):
            common = f"c{n % 7},lammps,lj,v{n // 50 % 40},{n % 5},ok"
            attrs = f"amd64,{1 + n // 5 % 4},{1 + n // 2000}"
            out.write(f"{common},timesteps_per_s,{1 + n % 97},{attrs}\n{common},wall,{2 + n % 13},{attrs}\n")
    return path


def test_a_big_import_says_how_far_it_is_and_stores_every_run_as_a_sweep_would(tmp_path: Path) -> None:
    read: list[tuple[int, float]] = []
    parsed = read_csv(_csv(tmp_path / "big.csv", 30_000), lambda rows, share: read.append((rows, share)))
    assert [rows for rows, _ in read] == [50_000] and 0.7 < read[0][1] < 0.9
    stored: list[int] = []
    with Store(tmp_path / "s.sqlite") as store:
        before = int(store.changes().split("-")[0])
        assert store.merge_many(parsed.records, progress=stored.append) == (30_000, 0)
        assert stored == [10_000, 20_000, 30_000]
        assert int(store.changes().split("-")[0]) == before + 30_000 + 60_000  # what the triggers count
        tag = store.changes()
        store.add(record(cluster="c9", workload="lj", variant="v", options={}, value=1.0))
        assert int(store.changes().split("-")[0]) == int(tag.split("-")[0]) + 2  # the triggers are back
        [first] = [r for r in store.records(cluster="c0") if r.detail == "imported from big.csv, line 2"]
    assert (first.id, first.config_id) == key_ids(run_key("c0", "lammps", "lj", "v0", first.options), 0)
    assert (first.variant, first.repeat, first.options) == ("v0", 0, {"param.x": 1})
    assert first.foms == {"timesteps_per_s": 1.0, "wall": 2.0} and first.cluster_attrs == {"arch": "amd64"}
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM foms").fetchone() == (60_001,)
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []


def test_run_ids_of_one_key_are_the_sweeps_ids() -> None:
    for key in (run_key("c", "a", "w", "v", {}), {"only": 1}, {"zz": 1}, {},
                run_key("c", "a", "w", "v", {"env": {"repeat": "1", "X": 'a"b'}, "param.x": 1.5}, "sha256:0f")):
        ids = run_ids(key)
        assert [ids(repeat) for repeat in (0, 7, 999_999)] == [key_ids(key, r)[0] for r in (0, 7, 999_999)]
