"""`recommend` after `fit`, in another process: it reads the saved table, and the hard rules still hold there."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import planner

HEADER = ("cluster,app,workload,variant,repeat,status,metric,value,variant.io.archspec.cpu.target,"
          "cluster.microarchitecture,cluster.arch\n")


def test_builds_the_rules_excluded_everywhere_stay_excluded_after_a_restart(tmp_path: Path) -> None:
    rows = []
    for cluster, workloads in (("h1", ("lj", "reaxff")), ("h2", ("lj",))):
        for workload in workloads:
            for repeat in range(2):
                rows.append(f"{cluster},lammps,{workload},v3,{repeat},ok,timesteps_per_s,{10 + repeat},x86-64-v3,"
                            "haswell,amd64\n")
                rows.append(f"{cluster},lammps,{workload},hsw,{repeat},ok,timesteps_per_s,{12 + repeat},haswell,"
                            "haswell,amd64\n")
            # builds for other CPUs, measured only where they could not run
            for variant, target in (("arm", "aarch64"), ("n1", "neoverse-n1"), ("z4", "zen4")):
                rows.append(f"{cluster},lammps,{workload},{variant},0,incompatible,,,{target},haswell,amd64\n")
    csv_path, store = tmp_path / "r.csv", tmp_path / "planner.sqlite"
    csv_path.write_text(HEADER + "".join(rows))
    assert planner("import", str(csv_path), "--store", str(store)).returncode == 0
    fitted = planner("fit", "--store", str(store))
    assert fitted.returncode == 0, fitted.stderr
    # a new process: only the saved model and table, and reaxff was never measured on h2
    done = planner("recommend", "lammps", "reaxff", "--cluster", "h2", "--json", "--top", "10", "--store", str(store))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert "fitted one now" not in " ".join(result["notes"])  # the saved model answered
    assert {row["variant"] for row in result["recommendations"]} == {"v3", "hsw"}
    excluded = {item["variant"]: item for item in result["excluded"]}
    assert set(excluded) == {"arm", "n1", "z4"}
    assert all(item["by"] == "rules" for item in excluded.values())
    assert "amd64" in excluded["arm"]["reason"] and "zen4" in excluded["z4"]["reason"]


def test_what_ran_is_never_ruled_out_and_what_mostly_failed_is_not_ranked(tmp_path: Path) -> None:
    rows = []
    for repeat in range(3):
        rows.append(f"zen1,lammps,lj,v3,{repeat},ok,timesteps_per_s,{10 + repeat},x86-64-v3,zen,amd64\n")
        # an AVX-512 build the rules call impossible on Zen 1 ran here at -O0 (no AVX-512 code emitted)
        rows.append(f"zen1,lammps,lj,spr-O0,{repeat},ok,timesteps_per_s,{5 + repeat},sapphirerapids,zen,amd64\n")
        # the fastest when it runs, but it failed in two of its three runs
        status, value = ("ok", "30") if repeat == 0 else ("failed", "")
        rows.append(f"zen1,lammps,lj,flaky,{repeat},{status},timesteps_per_s,{value},x86-64-v2,zen,amd64\n")
    csv_path, store = tmp_path / "r.csv", tmp_path / "planner.sqlite"
    csv_path.write_text(HEADER + "".join(rows))
    assert planner("import", str(csv_path), "--store", str(store)).returncode == 0
    assert planner("fit", "--store", str(store)).returncode == 0
    done = planner("recommend", "lammps", "lj", "--cluster", "zen1", "--json", "--store", str(store))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [row["variant"] for row in result["recommendations"]] == ["v3", "spr-O0"]
    excluded = {item["variant"]: item for item in result["excluded"]}
    assert set(excluded) == {"flaky"} and excluded["flaky"]["by"] == "measured"
    assert "failed in 2 of its 3 runs here" in excluded["flaky"]["reason"]
