"""`planner import`: long-form CSV in, validated row by row, all or nothing, idempotent."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from planner.core.types import stable_id
from planner.edges.store import Store
from tests.conftest import planner

HEADER = ("cluster,app,workload,variant,status,metric,value,repeat,variant.io.archspec.cpu.target,"
          "variant.mpi.implementation,cluster.microarchitecture,cluster.cores_per_node,option.tasks,option.threads,"
          "option.x\n")
GOOD = [
    "aws-a,lammps,reaxff,ompi-v3,ok,timesteps_per_s,12.5,0,x86-64-v3,OpenMPI,znver3,96,96,1,2\n",
    "aws-a,lammps,reaxff,ompi-v3,ok,loop_time,8.0,0,x86-64-v3,OpenMPI,znver3,96,96,1,2\n",
    "aws-a,lammps,reaxff,ompi-v3,ok,timesteps_per_s,12.9,1,x86-64-v3,OpenMPI,znver3,96,96,1,2\n",
    "aws-a,lammps,reaxff,arm-v1,incompatible,,,0,neoverse-v1,mpich,znver3,96,96,1,2\n",
]


def write(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text(header + "".join(rows))
    return path


def runs(store: Path) -> list[tuple]:
    with sqlite3.connect(store) as db:
        return db.execute("SELECT id, variant, status, reason, options FROM runs ORDER BY variant, repeat").fetchall()


def test_import_stores_runs_with_sweep_ids_and_a_second_import_adds_nothing(tmp_path: Path) -> None:
    csv_path, store = write(tmp_path / "results.csv", GOOD), tmp_path / "planner.sqlite"
    done = planner("import", str(csv_path), "--store", str(store))
    assert done.returncode == 0, done.stderr
    assert "4 rows -> 3 runs (3 new, 0 already stored)" in done.stdout
    stored = runs(store)
    assert [(v, s, r) for _, v, s, r, _ in stored] == [("arm-v1", "incompatible", "incompatible"),
                                                       ("ompi-v3", "ok", None), ("ompi-v3", "ok", None)]
    # defaults (threads=1) left out, workload parameters as param.*: the id a sweep of this point gets
    key = {"cluster": "aws-a", "app": "lammps", "workload": "reaxff", "variant": "ompi-v3",
           "options": {"tasks": 96, "param.x": 2}}
    assert stored[1][0] == stable_id({**key, "repeat": 0})
    again = planner("import", str(csv_path), "--store", str(store), "--json")
    assert again.returncode == 0, again.stderr
    assert '"new": 0' in again.stdout and '"already_stored": 3' in again.stdout
    assert len(runs(store)) == 3


def test_bad_rows_are_all_reported_with_their_line_and_nothing_is_imported(tmp_path: Path) -> None:
    store = tmp_path / "planner.sqlite"
    assert planner("import", str(write(tmp_path / "first.csv", GOOD[:1])), "--store", str(store)).returncode == 0
    bad = [
        GOOD[0],
        "aws-a,lammps,reaxff,x,okay,timesteps_per_s,1,0,x86_64,mpich,znver3,96,96,1,2\n",        # line 3
        GOOD[1],
        "aws-a,lammps,reaxff,x,ok,timesteps_per_s,fast,0,x86_64,mpich,znver3,96,96,1,2\n",       # line 5
        "aws-a,lammps,reaxff,x,failed,timesteps_per_s,3,1,x86_64,mpich,znver3,96,96,1,2\n",      # line 6
        "aws-a,lammps,reaxff,x,ok,timesteps_per_s,1,2,x86_64,mpich,pentium9,96,96,1,2\n",        # line 7
        "aws-a,lammps,reaxff,x,ok,timesteps_per_s,1,3,x86_64,mpich,znver3,96,0,1,2\n",           # line 8
        "aws-a,lammps,reaxff,x,ok,timesteps_per_s,1,4,pentium-9000,mpich,znver3,96,96,1,2\n",    # line 9
        "aws-a,lammps,reaxff,x,ok,timesteps_per_s,1\n",                                          # line 10
    ]
    csv_path = write(tmp_path / "bad.csv", bad)
    done = planner("import", str(csv_path), "--store", str(store))
    assert done.returncode == 2
    for line, field in ((3, "status"), (5, "value"), (6, "value"), (7, "cluster.microarchitecture"),
                        (8, "option.tasks"), (9, "variant.io.archspec.cpu.target"), (10, "row")):
        assert f"{csv_path}:{line}: {field}:" in done.stderr, (line, done.stderr)
    assert "7 bad row(s); nothing was imported" in done.stderr
    assert "GCC -march name" in done.stderr  # says what would be accepted
    assert len(runs(store)) == 1  # the run imported before is there, none of this file's


def test_rows_of_one_run_that_disagree_name_both_lines(tmp_path: Path) -> None:
    rows = [GOOD[0], GOOD[1].replace(",ok,", ",failed,").replace("loop_time,8.0", ",")]
    done = planner("import", str(write(tmp_path / "r.csv", rows)), "--store", str(tmp_path / "s.sqlite"))
    assert done.returncode == 2
    assert "r.csv:3: status: differ from line 2" in done.stderr


def test_header_problems_are_reported_on_line_1(tmp_path: Path) -> None:
    store = str(tmp_path / "s.sqlite")
    missing = write(tmp_path / "m.csv", ["a,lammps,lj,v,ok,x,1\n"], "cluster,app,workload,variant,status,metric,val\n")
    done = planner("import", str(missing), "--store", store)
    assert done.returncode == 2 and "m.csv:1: unknown column 'val'" in done.stderr
    missing = write(tmp_path / "n.csv", ["a,lammps,lj,v,ok,x\n"], "cluster,app,workload,variant,status,metric\n")
    done = planner("import", str(missing), "--store", store)
    assert done.returncode == 2 and "missing required column(s) value" in done.stderr
    done = planner("import", str(tmp_path / "nowhere.csv"), "--store", store)
    assert done.returncode == 2 and "nowhere.csv: CSV file not found" in done.stderr


def test_a_second_csv_adds_its_metric_to_the_same_runs_and_replace_keeps_the_first(tmp_path: Path) -> None:
    """Issue 19: a file of another metric of the same runs was dropped ("0 new, 2 already stored"), and with
    --replace the first metric was lost."""
    header = "cluster,app,workload,variant,repeat,status,metric,value\n"
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text(header + "c1,toy,w,vA,0,ok,fom,5\nc1,toy,w,vB,0,ok,fom,3\n")
    second.write_text(header + "c1,toy,w,vA,0,ok,wall,50\nc1,toy,w,vB,0,ok,wall,30\n")
    store = tmp_path / "s.sqlite"
    assert planner("import", str(first), "--store", str(store)).returncode == 0
    done = planner("import", str(second), "--store", str(store))
    assert done.returncode == 0, done.stderr
    assert "0 new, 2 already stored" in done.stdout and "2 figure(s) of merit added" in done.stdout
    with Store(store) as db:
        assert {r.variant: r.foms for r in db.records()} == {"vA": {"fom": 5.0, "wall": 50.0},
                                                              "vB": {"fom": 3.0, "wall": 30.0}}
    second.write_text(header + "c1,toy,w,vA,0,ok,wall,55\n")
    done = planner("import", "--replace", str(second), "--store", str(store))
    assert done.returncode == 0, done.stderr
    with Store(store) as db:
        assert {r.variant: r.foms for r in db.records()}["vA"] == {"fom": 5.0, "wall": 55.0}
    # the same file again adds nothing
    again = planner("import", str(first), "--store", str(store))
    assert "0 new, 2 already stored" in again.stdout and "added" not in again.stdout
