"""`recommend` answers from the store as it is now, every time (issue 19): whatever happened to the store since
`fit` (replaced, re-imported, forgotten, swapped for another of the same shape), it prints what the store holds.
The store's change tag (`Store.changes`, kept by SQLite triggers) says exactly when the model is older than it."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from planner.edges.modelfiles import model_dir
from planner.edges.store import Store
from tests.conftest import REPO, planner
from tests.learn.conftest import record

#: The D1 script of issue 19: two clusters, two variants, one measurement each.
A_CSV = ("cluster,app,workload,variant,repeat,status,metric,value\n"
         "c1,toy,w,vA,0,ok,fom,5\nc1,toy,w,vB,0,ok,fom,3\nc2,toy,w,vA,0,ok,fom,4\nc2,toy,w,vB,0,ok,fom,2\n")
#: The same runs, each value x1000 (`sed 's/fom,\([0-9]\)$/fom,\1000/'`).
FIXED_CSV = A_CSV.replace(",5\n", ",5000\n").replace(",3\n", ",3000\n").replace(",4\n", ",4000\n") \
    .replace(",2\n", ",2000\n")


def run(*args: str, cwd: Path) -> str:
    done = planner(*args, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout


def measured(store: Path, cwd: Path, cluster: str = "c1") -> dict[str, float]:
    out = json.loads(run("recommend", "toy", "w", "--cluster", cluster, "--metric", "fom", "--store", str(store),
                         "--json", cwd=cwd))
    return {row["variant"]: row["measured"]["median"] for row in out["recommendations"] if row["measured"]}


@pytest.fixture
def d1(tmp_path: Path) -> tuple[Path, Path]:
    """The D1 script's first half: a.csv imported and fitted (in an empty directory: no experiment file)."""
    (tmp_path / "a.csv").write_text(A_CSV)
    (tmp_path / "fixed.csv").write_text(FIXED_CSV)
    store = tmp_path / "s.sqlite"
    run("import", "--store", str(store), "a.csv", cwd=tmp_path)
    run("fit", "--metric", "fom", "--store", str(store), cwd=tmp_path)
    return tmp_path, store


def test_the_d1_script_prints_5000(d1: tuple[Path, Path]) -> None:
    where, store = d1
    store.unlink()
    run("import", "--store", str(store), "fixed.csv", cwd=where)
    text = run("recommend", "toy", "w", "--cluster", "c1", "--metric", "fom", "--store", str(store), cwd=where)
    assert "5000" in text and "measured 5 " not in text, text
    assert measured(store, where) == {"vA": 5000.0, "vB": 3000.0}


def test_import_replace_of_the_newest_run_is_what_recommend_shows(d1: tuple[Path, Path]) -> None:
    where, store = d1
    newest = where / "newest.csv"
    newest.write_text(A_CSV.splitlines()[0] + "\nc2,toy,w,vB,0,ok,fom,9\n")
    run("import", "--replace", "--store", str(store), str(newest), cwd=where)
    assert measured(store, where, "c2") == {"vA": 4.0, "vB": 9.0}


def test_forget_then_reimport_is_what_recommend_shows(d1: tuple[Path, Path]) -> None:
    """The newest run forgotten and imported again with another value: SQLite gives it its old rowid back and
    every count is as before; only the value differs."""
    where, store = d1
    run("forget", "--cluster", "c2", "--variant", "vB", "--yes", "--store", str(store), cwd=where)
    again = where / "again.csv"
    again.write_text(A_CSV.splitlines()[0] + "\nc2,toy,w,vB,0,ok,fom,2000\n")
    run("import", "--store", str(store), str(again), cwd=where)
    assert measured(store, where, "c2") == {"vA": 4.0, "vB": 2000.0}


def test_a_store_swapped_for_one_of_the_same_shape_is_what_recommend_shows(d1: tuple[Path, Path]) -> None:
    where, store = d1
    other = where / "other" / "s.sqlite"
    other.parent.mkdir()
    run("import", "--store", str(other), "fixed.csv", cwd=where)
    store.unlink()
    shutil.move(other, store)
    assert measured(store, where) == {"vA": 5000.0, "vB": 3000.0}


def test_the_change_tag_moves_with_every_change_and_never_repeats_across_copies(tmp_path: Path) -> None:
    """A retried last run is deleted and inserted again (same counts, same rowid): the tag still moves; two copies
    of one store that each made one change carry different tags; a tag survives reopening."""
    failed = record(cluster="local", workload="lj", variant="v", options={"tasks": 1}, status="failed",
                    reason="mpi")
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.add(failed)
        before = store.changes()
        store.add(failed, replace=True)
        assert store.count() == 1 and store.changes() != before
        tag = store.changes()
    with Store(path) as store:
        assert store.changes() == tag
    copy = tmp_path / "copy.sqlite"
    shutil.copy(path, copy)
    tags = []
    for one in (path, copy):
        with Store(one) as store:
            store.add(record(cluster="local", workload="lj", variant="w", options={"tasks": 1}, value=3.0))
            tags.append(store.changes())
    assert tags[0] != tags[1] and tags[0].split("-")[0] == tags[1].split("-")[0]
    # a figure of merit edited in place by hand is a change too
    with Store(path) as store:
        before = store.changes()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE foms SET value = value * 2")
    with Store(path) as store:
        assert store.changes() != before


def test_a_store_whose_counter_triggers_were_dropped_gets_them_back_with_a_new_tag(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        before = store.changes()
    with sqlite3.connect(path) as db:
        db.execute("DROP TRIGGER runs_insert_counted")
    with Store(path) as store:
        assert store.changes() != before
        after = store.changes()
        store.add(record(cluster="local", workload="lj", variant="w", options={"tasks": 1}, value=3.0))
        assert store.changes() != after


def test_the_model_is_older_than_the_store_after_any_change(d1: tuple[Path, Path]) -> None:
    where, store = d1
    out = json.loads(run("recommend", "toy", "w", "--metric", "fom", "--store", str(store), "--json", cwd=where))
    assert out["model"]["stale"] is False
    run("forget", "--cluster", "c2", "--variant", "vB", "--yes", "--store", str(store), cwd=where)
    out = json.loads(run("recommend", "toy", "w", "--metric", "fom", "--store", str(store), "--json", cwd=where))
    assert out["model"]["stale"] is True


def test_stores_of_the_same_stem_never_share_a_model(d1: tuple[Path, Path]) -> None:
    where, store = d1
    other = where / "s.db"
    run("import", "--store", str(other), "fixed.csv", cwd=where)
    assert model_dir(other) != model_dir(store)
    out = json.loads(run("recommend", "toy", "w", "--metric", "fom", "--store", str(other), "--json", cwd=where))
    assert any("fitted one now" in note for note in out["notes"])  # not s.sqlite's model
    assert out["model"]["directory"] == str(model_dir(other)) and out["model"]["stale"] is False
    # a store reached through a symlink is the store itself
    link = where / "link.sqlite"
    link.symlink_to(store)
    assert model_dir(link) == model_dir(store)


def test_imported_preload_and_env_are_never_the_exact_launch_command(local_store: Path) -> None:
    """An imported run on a cluster, variant and workload the experiment declares, with options it does not
    (an LD_PRELOAD and a BASH_ENV of the CSV's choosing), ranks first by its measurement: it is shown as
    imported, not validated, and no printed command carries its values."""
    from tests.learn.conftest import records_from_plan

    sibling = next(r for r in records_from_plan("local") if r.workload == "lj")
    options = {**sibling.options, "preload": "/tmp/evil.so", "env": {"BASH_ENV": "/tmp/evil.sh"}}
    evil = record(cluster="local", workload="lj", variant=sibling.variant, options=options, value=1e6,
                  variant_attrs=sibling.variant_attrs, cluster_attrs=sibling.cluster_attrs)
    with Store(local_store) as store:
        store.add_many([evil])
    done = planner("recommend", "lammps", "lj", "--cluster", "local", "--json", "--store", str(local_store))
    assert done.returncode == 0, done.stderr
    top, *others = json.loads(done.stdout)["recommendations"]
    assert top["options"]["preload"] == "/tmp/evil.so" and top["command"] is None
    assert top["command_note"].startswith("imported, not validated")
    assert others and all(row["command"] for row in others)  # the experiment's own options keep theirs
    assert all("evil" not in row["command"] for row in others)
    text = planner("recommend", "lammps", "lj", "--cluster", "local", "--store", str(local_store)).stdout
    assert "imported, not validated" in text
    assert not [line for line in text.splitlines() if line.strip().startswith("$") and "evil" in line]


# ------------------------------------------------------- the runs `fit` saves for `recommend` (table.npz)

def _scale_saved_runs(store: Path, factor: float) -> None:
    """Multiply the values of the runs `fit` saved for recommend (its tags kept): what recommend then shows tells
    whether it read them or the store."""
    path = model_dir(store) / "table.npz"
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    arrays["store:values"] = arrays["store:values"] * factor
    np.savez(path, **arrays)


def test_recommend_reads_the_runs_fit_saved_only_while_the_store_is_exactly_as_then(d1: tuple[Path, Path]) -> None:
    """While the store's change counter is the one the file was tagged with, recommend reads the runs from it (the
    values scaled in the file show); a run forgotten and the same run imported again (the same counts, the same
    rowid, the same values: a key made of counts would still match) and any new fit make it read the store."""
    where, store = d1
    _scale_saved_runs(store, 7)
    assert measured(store, where) == {"vA": 35.0, "vB": 21.0}  # the file is read while nothing changed
    run("forget", "--cluster", "c1", "--variant", "vB", "--yes", "--store", str(store), cwd=where)
    again = where / "again.csv"
    again.write_text(A_CSV.splitlines()[0] + "\nc1,toy,w,vB,0,ok,fom,3\n")
    run("import", "--store", str(store), str(again), cwd=where)
    assert measured(store, where) == {"vA": 5.0, "vB": 3.0}
    run("fit", "--metric", "fom", "--store", str(store), cwd=where)
    _scale_saved_runs(store, 7)
    assert measured(store, where) == {"vA": 35.0, "vB": 21.0}
    run("fit", "--metric", "fom", "--store", str(store), cwd=where)  # another model: another stamp
    assert measured(store, where) == {"vA": 5.0, "vB": 3.0}


def test_a_changed_experiment_makes_recommend_fit_again_and_read_the_store(local_store: Path, tmp_path: Path) -> None:
    experiment = tmp_path / "lammps.yaml"
    experiment.write_text((REPO / "experiments" / "lammps.yaml").read_text())
    args = ("recommend", "lammps", "lj", "--cluster", "local", "--json", "-e", str(experiment),
            "--store", str(local_store))
    run("fit", "-e", str(experiment), "--store", str(local_store), cwd=REPO)
    first = json.loads(run(*args, cwd=REPO))
    _scale_saved_runs(local_store, 1000)
    scaled = json.loads(run(*args, cwd=REPO))
    assert [r["measured"]["median"] for r in scaled["recommendations"]] == \
        pytest.approx([r["measured"]["median"] * 1000 for r in first["recommendations"]])
    text = experiment.read_text()
    changed = text.replace("kind: local", "kind: local\n    price_per_hour: 0.5", 1)
    assert changed != text
    experiment.write_text(changed)
    after = json.loads(run(*args, cwd=REPO))
    assert any("fitted again now" in note for note in after["notes"])
    assert [r["measured"]["median"] for r in after["recommendations"]] == \
        [r["measured"]["median"] for r in first["recommendations"]]


def _answer(*args: str, store: Path, prefix: tuple[str, ...] = (), env: dict[str, str] | None = None) -> Any:
    done = subprocess.run([*prefix, sys.executable, "-m", "planner", *args, "--json", "--store", str(store)],
                          cwd=REPO, env={**os.environ, "PLANNER_STORE": "", **(env or {})}, capture_output=True,
                          text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _same(fast: dict[str, Any], full: dict[str, Any]) -> None:
    """Two answers rank the same rows and leave out the same points for the same reasons (notes aside)."""
    def rows(answer: dict[str, Any]) -> list[Any]:
        return [(r["cluster"], r["variant"], r["options"], r["source"], r["measured"], r["command"])
                for r in answer["recommendations"]]

    def left_out(answer: dict[str, Any]) -> set[Any]:
        return {(e["cluster"], e["variant"], json.dumps(e["options"], sort_keys=True), e["by"], e["reason"])
                for e in answer["excluded"]}

    assert rows(fast) == rows(full)
    assert left_out(fast) == left_out(full)


def _full(args: tuple[str, ...], store: Path, **how: Any) -> Any:
    """The full computation: no model nor saved runs, everything computed now in the same conditions."""
    shutil.rmtree(model_dir(store))
    return _answer(*args, store=store, **how)


@pytest.mark.skipif(not shutil.which("taskset") or len(os.sched_getaffinity(0)) < 2, reason="needs taskset, 2 cores")
def test_fewer_usable_cores_than_at_fit_time_answer_what_the_full_computation_answers(tmp_path: Path) -> None:
    """`taskset -c 0`: lj was never measured on local, so its candidates are predicted, each with 2 ranks or 2
    threads; with one usable core none can run, which recommend must say as a full computation does (it printed
    the candidates the table judged at fit time, with two cores)."""
    from tests.learn.conftest import records_from_plan

    store = tmp_path / "planner.sqlite"
    with Store(store) as opened:
        opened.add_many([r for r in records_from_plan("local") if r.workload != "lj"])
    assert planner("fit", "--store", str(store), env={"PLANNER_STORE": ""}).returncode == 0
    args = ("recommend", "lammps", "lj", "--cluster", "local")
    two = _answer(*args, store=store)
    assert two["recommendations"]  # with both cores they can run
    one = _answer(*args, store=store, prefix=("taskset", "-c", "0"))
    assert not one["recommendations"], one["recommendations"]
    assert any("fitted again now" in note for note in one["notes"])
    _same(one, _full(args, store, prefix=("taskset", "-c", "0")))


def test_a_changed_archspec_database_answers_what_the_full_computation_answers(tmp_path: Path) -> None:
    """ARCHSPEC_CPU_DIR names another microarchitecture database (the host's microarchitecture with one feature
    fewer: the rules judge builds by it): the table judged with the other one is not used, the answer is what a
    computation from scratch with this database gives."""
    import archspec.cpu.schema

    from tests.learn.conftest import records_from_plan

    store = tmp_path / "planner.sqlite"
    with Store(store) as opened:
        opened.add_many([r for r in records_from_plan("local") if r.workload != "lj"])
    assert planner("fit", "--store", str(store), env={"PLANNER_STORE": ""}).returncode == 0
    database = json.loads(json.dumps(archspec.cpu.schema.TARGETS_JSON.data))
    host = database["microarchitectures"][archspec.cpu.host().name]
    host["features"] = sorted(host["features"])[1:]
    other = tmp_path / "archspec"
    other.mkdir()
    (other / "microarchitectures.json").write_text(json.dumps(database))
    env = {"ARCHSPEC_CPU_DIR": str(other)}
    args = ("recommend", "lammps", "lj", "--cluster", "local")
    changed = _answer(*args, store=store, env=env)
    assert any("fitted again now" in note for note in changed["notes"])
    _same(changed, _full(args, store, env=env))


def test_damaged_artifact_blobs_answer_what_the_full_computation_answers(local_store: Path) -> None:
    """The container variants' artifacts fetched, fitted, then every cached blob damaged: recommend refuses as a
    computation from scratch does (exit 2, naming the blob), never an answer made with the artifacts' attributes
    (the saved answers of c0c228f printed one)."""
    from planner.edges.compspec_cache import cache_path
    from tests.registry.matrix import warm_cache

    warm_cache(cache_path(local_store))
    assert planner("fit", "--store", str(local_store), env={"PLANNER_STORE": ""}).returncode == 0
    args = ("recommend", "lammps", "reaxff", "--cluster", "eks-arm64", "--top", "40")
    # intact: what the fit's table says (the amd64 images it excluded, excluded for the reasons it kept) is what a
    # computation from scratch says (a copy of the store and its artifacts, with no model yet)
    copy = local_store.parent / "copy" / local_store.name
    copy.parent.mkdir()
    shutil.copy(local_store, copy)
    shutil.copytree(cache_path(local_store), cache_path(copy))
    intact = _answer(*args, store=local_store)
    assert any(e["by"] == "rules" for e in intact["excluded"])
    _same(intact, _answer(*args, store=copy))
    args = (*args, "--json", "--store", str(local_store))
    for blob in (cache_path(local_store) / "blobs").iterdir():
        blob.write_text('{"damaged": ')
    damaged = planner(*args, env={"PLANNER_STORE": ""})
    shutil.rmtree(model_dir(local_store))
    full = planner(*args, env={"PLANNER_STORE": ""})
    assert (damaged.returncode, damaged.stdout, damaged.stderr) == (full.returncode, full.stdout, full.stderr)
    assert damaged.returncode == 2 and "does not match its digest" in damaged.stderr
    assert len(damaged.stderr.strip().splitlines()) == 1


def test_the_saved_runs_read_back_as_the_store_reads_them(local_store: Path) -> None:
    """`column_reader.from_snapshot` gives, for each filter recommend uses, the very `Runs` `column_reader.read`
    gives: the same contexts and choices in the same order, values, statuses, reasons, wall times and latest
    attributes."""
    from planner.edges import column_reader

    with Store(local_store) as store:
        store.add_many([record(cluster="other", workload="lj", variant="v", options={"tasks": 1}, status="failed",
                               reason="mpi", cluster_attrs={"arch": "arm64"}),
                        record(cluster="local", workload="lj", variant="v", options={"tasks": 1}, value=2.0,
                               cluster_attrs={"arch": "amd64", "cores_per_node": 64})])
        saved = column_reader.snapshot(store.db, ["timesteps_per_s"])
        assert saved is not None
        lj = {"app": "lammps", "workload": "lj"}
        for filters in ({}, lj, {**lj, "cluster": "local"}, {**lj, "cluster": "nowhere"}):
            fast = column_reader.from_snapshot(saved, ["timesteps_per_s"], **filters)
            full = column_reader.read(store.db, ["timesteps_per_s"], **filters)
            assert fast is not None
            assert (fast.contexts, fast.choices, fast.status, fast.reason) == \
                (full.contexts, full.choices, full.status, full.reason)
            assert fast.ctx.tolist() == full.ctx.tolist() and fast.choice.tolist() == full.choice.tolist()
            assert fast.ok.tolist() == full.ok.tolist()
            assert np.array_equal(fast.values["timesteps_per_s"], full.values["timesteps_per_s"], equal_nan=True)
            assert np.array_equal(fast.wall, full.wall, equal_nan=True)
            assert list(fast.cluster_attrs.items()) == list(full.cluster_attrs.items())
            assert list(fast.variant_attrs.items()) == list(full.variant_attrs.items())
