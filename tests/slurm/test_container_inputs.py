"""Container inputs adapted by the planner (`substitute`), run for real on local-slurm, and `recommend` leaving
out what the plan excludes: one small sweep proves both."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import yaml

from tests.conftest import planner
from tests.slurm.conftest import write_artifacts
from tests.slurm.test_local_slurm import LAMMPS, RULES, experiment

VARIANTS = ["lammps-debian12-openmpi", "lammps-debian12-mpich"]


def test_reaxff_runs_adapted_on_the_mpich_image_and_recommend_leaves_out_what_the_plan_excludes(
        local_slurm: dict[str, str], built_images: dict[str, Path], tmp_path: Path) -> None:
    """The MPICH image's LAMMPS (22 Jul 2025) has no `reax/c` any more, which the image's own HNS example uses:
    the experiment's container source renames it, the planner stages the adapted copy and binds it in. The Open
    MPI images lack REAXFF, so the plan excludes them for reaxff; they ran the small input, which must not make
    `recommend lammps reaxff` rank them (it did: a choice that ran one workload skipped the rules for all)."""
    assert set(VARIANTS) <= set(built_images)
    store = tmp_path / "planner.sqlite"
    write_artifacts(store, VARIANTS)
    path = experiment(tmp_path, VARIANTS, [{"name": "small-and-reaxff"}])
    exp = yaml.safe_load(path.read_text())
    exp["apps"]["lammps"]["workloads"]["reaxff"] = LAMMPS["apps"]["lammps"]["workloads"]["reaxff"]
    exp["sweeps"][0]["workloads"] = ["small", "reaxff"]
    assert {rule["name"] for rule in exp["launch_rules"]} == set(RULES)
    path.write_text(yaml.safe_dump(exp, sort_keys=False))

    plan = planner("plan", "-e", str(path), "--cluster", "local-slurm", "--json", store=store)
    assert plan.returncode == 0, plan.stderr
    excluded = {(x["variant"], x["workload"]): x["detail"] for x in json.loads(plan.stdout)["excluded"]}
    assert excluded == {("lammps-debian12-openmpi", "reaxff"):
                        "variant lammps-debian12-openmpi lacks lammps package REAXFF for workload reaxff"}

    done = planner("sweep", "-e", str(path), "--cluster", "local-slurm", store=store)
    assert done.returncode == 0, done.stdout + done.stderr
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT variant, workload, status, command, reason, detail FROM runs").fetchall()
    runs = {(variant, workload): (status, command) for variant, workload, status, command, _, _ in rows}
    assert {key: status for key, (status, _) in runs.items()} == {
        ("lammps-debian12-openmpi", "small"): "ok", ("lammps-debian12-mpich", "small"): "ok",
        ("lammps-debian12-mpich", "reaxff"): "ok"}, rows
    command = runs[("lammps-debian12-mpich", "reaxff")][1]
    assert "-in /srv/in.reaxc.hns" in command and ":/srv -c /opt/lammps/examples/reaxff/HNS " in command

    done = planner("recommend", "lammps", "reaxff", "--cluster", "local-slurm", "-e", str(path), "--json",
                   store=store)
    assert done.returncode == 0, done.stdout + done.stderr
    answer = json.loads(done.stdout)
    assert [row["variant"] for row in answer["recommendations"]] == ["lammps-debian12-mpich"]
    assert answer["recommendations"][0]["source"] == "measured"
    left_out = [row for row in answer["excluded"] if row["variant"] == "lammps-debian12-openmpi"]
    assert left_out and all(row["by"] == "rules" and "lacks lammps package REAXFF" in row["reason"]
                            for row in left_out), left_out
