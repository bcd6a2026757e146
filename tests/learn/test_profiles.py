"""Profiles are metrics like any other for `results` and `report`, and explanations for `fit` and
`recommend`, but never features: a profile is known only after a run, so it must not move a prediction."""

from __future__ import annotations

import json
import math
from pathlib import Path

from planner.edges.store import Store
from tests.conftest import planner
from tests.learn.conftest import METRIC, records_from_plan

HELD_OUT = ("lj", "lammps-2023-mpich", "omp")  # a point left unmeasured, so that it is predicted


def _store(path: Path, profiled: bool) -> Path:
    records = [r for r in records_from_plan("local")
               if (r.workload, r.variant, r.options.get("suffix", "none")) != HELD_OUT]
    for record in records:
        if profiled:  # profiles that follow the FOM exactly: a model fed them would predict with them
            value = record.foms[METRIC]
            record.foms.update({"ebpf.runq_wait_p99_us": 5000.0 / value, "perf.context_switches": 30.0 * value,
                                "ebpf.futex_waits": 0.0})
            record.profiles = {"ebpf": "ok", "perf": "ok"}
    with Store(path) as store:
        store.add_many(records)
    return path


def _recommend(store: Path) -> dict:
    done = planner("recommend", "lammps", "lj", "--cluster", "local", "--top", "6", "--json", "--store", str(store))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_profiles_explain_measured_points_and_never_move_a_prediction(tmp_path: Path) -> None:
    plain = _store(tmp_path / "plain" / "planner.sqlite", profiled=False)
    profiled = _store(tmp_path / "profiled" / "planner.sqlite", profiled=True)
    fits = {}
    for name, store in (("plain", plain), ("profiled", profiled)):
        done = planner("fit", "--json", "--store", str(store))
        assert done.returncode == 0, done.stderr
        fits[name] = json.loads(done.stdout)
    # the same cross-validated error and the same predictions with or without the profiles
    assert fits["plain"]["foms"][METRIC]["mae_log"] == fits["profiled"]["foms"][METRIC]["mae_log"]
    assert fits["plain"]["features"] == fits["profiled"]["features"]
    answers = {name: _recommend(store) for name, store in (("plain", plain), ("profiled", profiled))}
    predicted = {name: [row for row in answer["recommendations"] if row["predicted"] is not None
                        and row["variant"] == HELD_OUT[1] and row["options"].get("suffix") == HELD_OUT[2]]
                 for name, answer in answers.items()}
    assert len(predicted["plain"]) == 1 and predicted["plain"][0]["measured"] is None
    assert predicted["plain"][0]["predicted"] == predicted["profiled"][0]["predicted"]
    # ... while the fit names the profiles that move with the FOM, and a measured row says where it stands
    links = {link["profile"]: link["rho"] for link in fits["profiled"]["profiles"][METRIC]}
    assert math.isclose(links["ebpf.runq_wait_p99_us"], -1.0) and math.isclose(links["perf.context_switches"], 1.0)
    assert "profiles" not in fits["plain"]
    text = planner("fit", "--store", str(profiled)).stdout
    assert f"why (profiles, measured only, never features): {METRIC} is lower where ebpf.runq_wait_p99_us" in text
    measured = [row for row in answers["profiled"]["recommendations"] if row["measured"]]
    assert measured and all("; profile: " in row["why"] for row in measured[-1:])
    assert not any("profile:" in row["why"] for row in answers["plain"]["recommendations"])


def test_results_and_report_show_profiles_beside_the_fom(tmp_path: Path) -> None:
    store = _store(tmp_path / "planner.sqlite", profiled=True)
    done = planner("results", "--metric", "ebpf.runq_wait_p99_us", "--csv", "--store", str(store))
    assert done.returncode == 0, done.stderr
    rows = done.stdout.splitlines()
    assert rows[0].startswith("cluster,app,workload,variant,options,runs,ok,metric,median,spread")
    assert len(rows) > 10 and all(",ebpf.runq_wait_p99_us," in row for row in rows[1:])
    as_json = json.loads(planner("results", "--json", "--store", str(store)).stdout)
    assert as_json[0]["profiles"] == {"ebpf": {"ok": 2, "unavailable": {}}, "perf": {"ok": 2, "unavailable": {}}}
    table = planner("results", "--metric", "perf.context_switches", "--store", str(store)).stdout
    assert "median perf.context_switches" in table
    done = planner("report", "--json", "--out", str(tmp_path / "report"), "--store", str(store))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert "profiles.png" in report["figures"] and (tmp_path / "report" / "profiles.png").stat().st_size > 10_000
    assert "against the profiles measured beside it" in (tmp_path / "report" / "index.html").read_text()
