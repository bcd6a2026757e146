"""`planner import` of real data (the HPCG study's own CSV) and of what real data gets wrong.

The real file lives outside the repository (`../shared/data/hpcg-dev.csv`, never copied in); its test
is skipped, and says so, where that folder is absent.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import REPO, planner

HPCG = REPO / ".." / "shared" / "data" / "hpcg-dev.csv"
HEADER = ("cluster,app,workload,variant,repeat,status,metric,value,variant.io.archspec.cpu.target,"
          "cluster.io.archspec.cpu.target,cluster.arch,option.threads\n")


def write(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text(header + "".join(rows))
    return path


def stored(store: Path, what: str) -> list[tuple]:
    with sqlite3.connect(store) as db:
        return db.execute(f"SELECT {what} FROM runs ORDER BY cluster, variant, options, repeat").fetchall()


@pytest.mark.skipif(not HPCG.is_file(), reason="the shared real data (../shared/data/hpcg-dev.csv) is not here")
def test_the_hpcg_study_imports_as_recorded(tmp_path: Path) -> None:
    store = tmp_path / "hpcg.sqlite"
    done = planner("import", str(HPCG), "--store", str(store), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    # its repeats are blank: three measurements of a point are three runs, none merged, none lost
    assert result["rows"] == result["runs"] == result["new"] == 4622
    rows = stored(store, "cluster, variant, repeat, status, variant_attrs, cluster_attrs")
    repeats = Counter((cluster, variant) for cluster, variant, _, status, _, _ in rows if status == "ok")
    assert set(repeats.values()) == {3}
    assert {r for c, v, r, s, _, _ in rows if s == "ok"} == {0, 1, 2}
    targets = {(json.loads(cattrs)["arch"], json.loads(vattrs)["io.archspec.cpu.target"])
               for _, _, _, _, vattrs, cattrs in rows}
    # GCC names archspec lacks are kept; generic is the row's architecture; native stays native
    assert {("arm64", "cortex-a53"), ("arm64", "cortex-x1"), ("amd64", "btver2"), ("amd64", "icelake-server"),
            ("arm64", "aarch64"), ("arm64", "native"), ("amd64", "native")} <= targets
    assert not any(target == "generic" for _, target in targets)
    # compspec's cluster.io.archspec.cpu.target is the planner's microarchitecture
    hosts = {cluster: json.loads(cattrs)["microarchitecture"] for cluster, _, _, _, _, cattrs in rows}
    assert hosts["c7g.16xlarge"] == "neoverse_v1" and hosts["t3a.2xlarge"] == "zen"
    again = planner("import", str(HPCG), "--store", str(store), "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["new"] == 0  # blank repeats numbered the same


def test_blank_repeats_are_numbered_in_file_order_within_their_point(tmp_path: Path) -> None:
    rows = ["a,hpcg,default,v1,,ok,fom,2.0,znver3,zen3,x86_64,1\n",
            "a,hpcg,default,v1,,ok,gflops,20,znver3,zen3,x86_64,1\n",  # the same run's second metric
            "a,hpcg,default,v2,,ok,fom,5.0,znver3,zen3,x86_64,1\n",  # another point: its own numbering
            "a,hpcg,default,v1,,ok,fom,3.0,znver3,zen3,x86_64,1\n",  # v1 has fom: the next repeat
            "a,hpcg,default,v1,,failed,fom,,znver3,zen3,x86_64,1\n",
            "a,hpcg,default,v1,,ok,fom,4.0,znver3,zen3,x86_64,2\n"]  # other options: another point
    store = tmp_path / "s.sqlite"
    done = planner("import", str(write(tmp_path / "r.csv", rows)), "--store", str(store))
    assert done.returncode == 0, done.stderr
    assert "6 rows -> 5 runs" in done.stdout
    foms = "(SELECT group_concat(name || '=' || value, ' ') FROM (SELECT * FROM foms WHERE run_id = id " \
           "ORDER BY name))"
    assert stored(store, f"variant, repeat, status, {foms}, options") == [
        ("v1", 0, "ok", "fom=4.0", '{"threads": 2}'),
        ("v1", 0, "ok", "fom=2.0 gflops=20.0", "{}"),
        ("v1", 1, "ok", "fom=3.0", "{}"),
        ("v1", 2, "failed", None, "{}"),
        ("v2", 0, "ok", "fom=5.0", "{}")]


def test_a_point_numbers_its_repeats_all_or_none(tmp_path: Path) -> None:
    rows = ["a,hpcg,default,v1,,ok,fom,2.0,znver3,zen3,x86_64,1\n",
            "a,hpcg,default,v1,0,ok,fom,3.0,znver3,zen3,x86_64,1\n"]
    path = write(tmp_path / "r.csv", rows)
    done = planner("import", str(path), "--store", str(tmp_path / "s.sqlite"))
    assert done.returncode == 2
    assert f"{path}:3: repeat: 0 given, but line 2 of the same point leaves it blank" in done.stderr


@pytest.mark.parametrize(("cell", "field", "message"), [
    ("a,hpcg,default,v,,ok,fom,0,znver3,zen3,x86_64,1", "value", "0 is not positive"),
    ("a,hpcg,default,v,,ok,fom,-2.5,znver3,zen3,x86_64,1", "value", "-2.5 is not positive"),
    ("a,hpcg,default,v,,ok,fom,nan,znver3,zen3,x86_64,1", "value", "'nan' is not a finite number"),
    ("a,hpcg,default,v,,ok,fom,1,znver3,zen3,x86_64,inf", "option.threads", "'inf' is not a finite value"),
    ("a,hpcg,default,v,,ok,fom,1,NaN,zen3,x86_64,1", "variant.io.archspec.cpu.target", "'NaN' is not a finite"),
    ("a,hpcg,default,v,100000000000000000000000000,ok,fom,1,znver3,zen3,x86_64,1", "repeat",
     "not a repeat number from 0 to 999999"),
    ("a,hpcg,default,v,-1,ok,fom,1,znver3,zen3,x86_64,1", "repeat", "not a repeat number"),
    ("a,hpcg,default,v,,ok,fom,1,pentium-9000,zen3,x86_64,1", "variant.io.archspec.cpu.target",
     "'pentium-9000' is not a CPU target archspec or GCC knows"),
    ("a,hpcg,default,v,,ok,fom,1,generic,,,1", "variant.io.archspec.cpu.target",
     "'generic' needs the row's architecture"),
    ("a,hpcg,default,v,,ok,fom,1,znver3,native,x86_64,1", "cluster.io.archspec.cpu.target",
     "'native' is not a microarchitecture"),
    ("a,hpcg,default,v,,ok,fom,1,znver3,zen3,sparc9,1", "cluster.arch", "'sparc9' is not an architecture"),
])
def test_bad_values_are_refused_at_import_with_file_and_line(tmp_path: Path, cell: str, field: str,
                                                             message: str) -> None:
    store = tmp_path / "s.sqlite"
    good = "a,hpcg,default,ok1,,ok,fom,1.5,znver3,zen3,x86_64,1\n"
    assert planner("import", str(write(tmp_path / "first.csv", [good])), "--store", str(store)).returncode == 0
    path = write(tmp_path / "bad.csv", [good, cell + "\n"])
    done = planner("import", str(path), "--store", str(store))
    assert done.returncode == 2, done.stdout
    assert f"{path}:3: {field}: " in done.stderr and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert len(stored(store, "id")) == 1  # nothing of the bad file, nothing lost


def test_every_gcc_target_spelling_of_the_study_imports(tmp_path: Path) -> None:
    names = ["cortex-a53", "cortex-a57", "cortex-a72", "cortex-a76", "cortex-x1", "neoverse-v2", "a64fx", "ampere1",
             "generic", "native"]
    x86 = ["icelake-server", "btver2", "bdver4", "x86-64-v4", "skylake-avx512", "znver4", "sapphirerapids", "native"]
    rows = [f"arm,hpcg,default,{name}-O2,,ok,fom,1.5,{name},neoverse_n1,aarch64,1\n" for name in names]
    rows += [f"x,hpcg,default,{name}-O2,,ok,fom,1.5,{name},zen4,x86_64,1\n" for name in x86]
    done = planner("import", str(write(tmp_path / "r.csv", rows)), "--store", str(tmp_path / "s.sqlite"))
    assert done.returncode == 0, done.stderr
