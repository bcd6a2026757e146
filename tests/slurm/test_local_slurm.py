"""local-slurm for real: the cluster as `clusters` shows it, sweeps whose runs are Slurm job steps launched
the way the metadata says, each shipped rule's failure without it, and a killed planner (see conftest)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.conftest import REPO, planner
from tests.slurm.conftest import write_artifacts

LAMMPS = yaml.safe_load((REPO / "experiments" / "lammps.yaml").read_text())
#: a 4000-atom LJ melt, 50 steps: seconds on 2 ranks (the bench inputs take tens under load)
SMALL_INPUT = "\n".join(["units lj", "atom_style atomic", "lattice fcc 0.8442", "region b block 0 10 0 10 0 10",
                         "create_box 1 b", "create_atoms 1 box", "mass 1 1.0", "velocity all create 3.0 87287",
                         "pair_style lj/cut 2.5", "pair_coeff 1 1 1.0 1.0 2.5", "fix 1 all nve", "run ${steps}",
                         ""])
RULES = ("openmpi-slurm-pmix", "mpich-slurm-pmi2", "mpich-charliecloud-join")


def experiment(tmp: Path, variants: list[str], sweeps: list[dict]) -> Path:
    """experiments/lammps.yaml's local-slurm cluster, variants and launch rules, with a small input bound in
    from the host (ch-run -b DIR:/mnt) instead of the bench inputs."""
    inputs = tmp / "inputs"
    inputs.mkdir(exist_ok=True)
    (inputs / "in.small").write_text(SMALL_INPUT)
    exp = {"name": "slurm-test", "apps": {"lammps": {"workloads": {"small": {
        "parameters": {"steps": 50}, "container": {"workdir": "/mnt", "input": "in.small", "uses": ["steps"]}}}}},
        "variants": {name: LAMMPS["variants"][name] for name in variants},
        "clusters": {"local-slurm": LAMMPS["clusters"]["local-slurm"]},
        "launch_rules": [rule for rule in LAMMPS["launch_rules"] if rule["name"] in RULES],
        "sweeps": [{"name": sweep["name"], "clusters": ["local-slurm"], "app": "lammps", "workloads": ["small"],
                    "variants": variants, "repeats": sweep.get("repeats", 1), "timeout": 120,
                    "options": {"set": {"tasks": 2, "bind": [f"{inputs}:/mnt"], **sweep.get("set", {})},
                                "vary": sweep.get("vary", {})}}
                   for sweep in sweeps]}
    path = tmp / "slurm.yaml"
    path.write_text(yaml.safe_dump(exp, sort_keys=False))
    return path


def stored(store: Path) -> list[dict]:
    """The stored runs (none while the sweep has not created the store: read-only, never creating it)."""
    if not store.exists():
        return []
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in db.execute("SELECT id, variant, status, reason, detail, command, options "
                                                    "FROM runs ORDER BY variant")]
        except sqlite3.OperationalError:  # created, its schema not yet
            return []


def test_clusters_shows_local_slurm_with_what_it_offers(local_slurm: dict[str, str]) -> None:
    done = planner("clusters", "--json")
    assert done.returncode == 0, done.stderr
    row = next(row for row in json.loads(done.stdout) if row["name"] == "local-slurm")
    assert row["up"] and (row["launcher"], row["runtime"]) == ("srun", "charliecloud")
    assert row["cores_per_node"] == len(os.sched_getaffinity(0))
    assert {"pmix", "pmi2", "none"} <= set(row["pmi"])  # pmix: Slurm's plugin found the host's libpmix
    if Path("/usr/bin/mpirun").exists():
        assert row["host_mpi"]["implementation"] == "openmpi"


def test_runs_are_slurm_jobs_launched_as_the_metadata_says(local_slurm: dict[str, str], built_images: dict[str, Path],
                                                           tmp_path: Path) -> None:
    variants = [name for name in ("lammps-debian12-openmpi", "lammps-debian12-mpich") if name in built_images]
    store = tmp_path / "planner.sqlite"
    write_artifacts(store, variants)
    # two launch modes: one namespace per rank, or joined
    exp = experiment(tmp_path, variants, [{"name": "modes", "vary": {"runtime_args": [[], ["--join"]]}}])
    done = planner("sweep", "-e", str(exp), "--cluster", "local-slurm", store=store)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = stored(store)
    assert runs and all(run["status"] == "ok" for run in runs), runs
    for run in runs:
        command = run["command"]
        assert f"-J {run['id']} -t 2:00 ch-run" in command  # the run id names the job, with its limit
        flavour = "pmix" if "openmpi" in run["variant"] else "pmi2"
        assert command.startswith(f"srun --mpi={flavour} -n 2 ")
    # Open MPI in both modes; MPICH's rule joins its ranks in either, so it is one run
    assert sorted((run["variant"], "--join" in run["command"]) for run in runs) == sorted(
        [(name, True) for name in variants] + [(name, False) for name in variants if "openmpi" in name])
    squeue = subprocess.run(["squeue", "-h"], env={**os.environ, **local_slurm}, capture_output=True, text=True,
                            check=True)
    assert squeue.stdout == ""


def test_each_shipped_rule_is_needed(local_slurm: dict[str, str], built_images: dict[str, Path],
                                     tmp_path: Path) -> None:
    """Each rule left out (skip_rules), the real run fails, stored with the real reason."""
    variants = [name for name in ("lammps-debian12-openmpi", "lammps-debian12-mpich") if name in built_images]
    store = tmp_path / "planner.sqlite"
    write_artifacts(store, variants)
    exp = experiment(tmp_path, variants, [{"name": f"without-{rule}", "set": {"skip_rules": [rule]}}
                                          for rule in RULES])
    done = planner("sweep", "-e", str(exp), "--cluster", "local-slurm", store=store)
    assert done.returncode == 0, done.stdout + done.stderr
    by_rule: dict[str, list[dict]] = {}
    for run in stored(store):
        skipped = json.loads(run["options"]).get("skip_rules", [])
        by_rule.setdefault(skipped[0], []).append(run)
    for rule in RULES:
        mpi = "openmpi" if rule.startswith("openmpi") else "mpich"
        affected = [run for run in by_rule.get(rule, []) if mpi in run["variant"]]
        if not any(mpi in name for name in variants):
            continue
        assert affected and all(run["status"] == "failed" and run["reason"] == "mpi" for run in affected), \
            (rule, affected)


def _jobs(env: dict[str, str]) -> list[str]:
    done = subprocess.run(["squeue", "-h", "-o", "%j"], env={**os.environ, **env}, capture_output=True, text=True,
                          check=True)
    return done.stdout.split()


def test_a_killed_planner_loses_no_finished_run_and_no_job_runs_twice(local_slurm: dict[str, str],
                                                                     built_images: dict[str, Path],
                                                                     tmp_path: Path) -> None:
    variants = [name for name in ("lammps-debian12-openmpi",) if name in built_images] or list(built_images)[:1]
    store = tmp_path / "planner.sqlite"
    write_artifacts(store, variants)
    exp = experiment(tmp_path, variants, [{"name": "kill", "repeats": 3, "set": {"steps": 600}}])
    env = {**os.environ, "PLANNER_STORE": str(store)}
    proc = subprocess.Popen([sys.executable, "-m", "planner", "sweep", "-e", str(exp), "--cluster", "local-slurm"],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not (len(stored(store)) >= 1 and _jobs(local_slurm)):
            time.sleep(0.5)
        first = {run["id"] for run in stored(store)}
        running = _jobs(local_slurm)
        assert first and running, "no run finished with another one running in Slurm"
        os.killpg(proc.pid, signal.SIGKILL)  # the planner and Ansible, not the executor's run (its own session)
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # the executor sees its owner gone and cancels the job in Slurm
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and set(running) & set(_jobs(local_slurm)):
        time.sleep(0.5)
    assert not set(running) & set(_jobs(local_slurm))
    done = planner("sweep", "-e", str(exp), "--cluster", "local-slurm", store=store)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = stored(store)
    assert len(runs) == 3 and all(run["status"] == "ok" for run in runs)
    assert first <= {run["id"] for run in runs}  # what had finished was kept, not run again
    assert "(1 already stored)" in done.stdout or f"({len(first)} already stored)" in done.stdout
