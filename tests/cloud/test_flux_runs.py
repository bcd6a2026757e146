"""Runs on a MiniCluster, as roles/run_matrix executes them, with the planner's own rendered runs.

Flux, Singularity and LAMMPS cannot run here: tests/cloud/fake_flux.py stands in for `flux`, `singularity`
and `lmp` on the lead broker, which Ansible reaches with the local connection instead of
kubernetes.core.kubectl. Everything else is real: the planner renders the runs (planner.edges.sweep), the role
sources the operator's environment script, pulls each image once on every node, runs each run through
the executor (execute_run.py under `flux python`) and keeps its log on the controller; the fakes log the exact
argument lists they receive.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
from pathlib import Path

import pytest
from rich.console import Console

from planner.core.experiment import load_experiment
from planner.edges.runner import PlaybookRequest, run_playbook
from planner.edges.store import Store
from planner.edges.sweep import FLUX_BACKSTOP, Workspace, lanes, prepare, record_for, run_items
from tests.cloud.fake_flux import install
from tests.conftest import REPO

VARIANT = "mpich-ubuntu-22.04-arm64"
IMAGE = "docker://ghcr.io/rse-ops/lammps-matrix:mpich-ubuntu-22.04-arm64"
# The original experiment's command (DESIGN.md), with the image pulled to <sif_dir>/<image name>.sif, the
# job named after the run and Flux's own time limit (the sweep's timeout, 3600 s).
ORIGINAL = ("flux run --job-name={id} -t 3600s -N {nodes} -n {tasks} -o cpu-affinity=per-task singularity exec "
            "--pwd /opt/lammps/examples/reaxff/HNS {sif} lmp -v x 1 -v y 1 -v z 1 -in in.reaxc.hns -nocite")


@pytest.fixture
def broker(tmp_path: Path):
    """A stand-in lead broker: fake commands, the operator's environment script, an inventory."""
    install(tmp_path / "fakes")
    env_script = tmp_path / "flux-view.sh"
    env_script.write_text(f'export PATH="{tmp_path / "fakes"}:$PATH"\nfluxsocket=local://{tmp_path}/run/flux/local\n')
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(json.dumps({"flux_lead_broker": {"hosts": {"eks-arm64-lead-broker": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    return tmp_path, env_script, inventory


def planned_items(tmp_path: Path) -> list[dict]:
    """The runs `python -m planner sweep --cluster eks-arm64` would hand over, for one variant at x=1."""
    ws = Workspace.load(load_experiment(REPO / "experiments" / "lammps.yaml"))
    ws.clusters["eks-arm64"] = dataclasses.replace(ws.clusters["eks-arm64"], sif_dir=str(tmp_path / "sif"))
    plan, _ = prepare(ws, "eks-arm64", ["reaxff"], [VARIANT], 1, Console(quiet=True), install=False)
    runs = [run for run in plan.runs if run.parameters.get("x") == 1]
    return run_items(Store(tmp_path / "results" / "planner.sqlite"), runs, {run.id: ws.launch(run) for run in runs},
                     tmp_path / "stop")


@dataclasses.dataclass
class Swept:
    ok: bool
    failures: list[str]
    events: dict[str, dict]  # run id -> the item result the planner's event handler receives
    calls: list[list[str]]  # what the fakes were called with


def sweep(broker, items: list[dict], executor: str, lanes: int = 1) -> Swept:
    """Run the role through the planner's ansible-runner adapter, collecting the run events as it does."""
    tmp_path, env_script, inventory = broker
    log = tmp_path / "calls.jsonl"
    log.unlink(missing_ok=True)
    os.environ.update({"FAKE_FLUX_LOG": str(log), "FAKE_ROOT": str(tmp_path / "container")})
    events: dict[str, dict] = {}

    def on_item(task: str, res: dict) -> None:
        if task == "flux | Execute run":
            events[res["item"]["id"]] = res

    extravars = {"run_matrix_runs": items, "run_matrix_launcher": "flux",
                 "run_matrix_flux_env_script": str(env_script), "run_matrix_flux_work_dir": str(tmp_path / "pod"),
                 # the executor runs under `flux python` (the stand-in's: this session's Python)
                 "run_matrix_lanes": lanes}
    try:
        result = run_playbook(PlaybookRequest("tests/cloud/flux_sweep.yml", str(inventory), extravars, forks=lanes + 1),
                              on_item=on_item)
    finally:
        for key in ("FAKE_FLUX_LOG", "FAKE_ROOT"):
            os.environ.pop(key, None)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return Swept(result.ok, result.failures, events, calls)


def reported(swept: Swept) -> dict[str, dict]:
    """Each run's JSON line, as the planner parses it from the event's stdout."""
    return {run_id: json.loads(res["stdout"].splitlines()[0]) for run_id, res in swept.events.items()}


def test_planner_renders_the_original_experiment_for_1_and_2_nodes(tmp_path: Path) -> None:
    items = planned_items(tmp_path)
    sif = f"{tmp_path}/sif/ghcr.io_rse-ops_lammps-matrix_{VARIANT}-8757ad29be8e0efcc19c.sif"
    assert [item["argv"] for item in items] == [
        shlex.split(ORIGINAL.format(id=items[0]["id"], nodes=1, tasks=64, sif=sif)),
        shlex.split(ORIGINAL.format(id=items[1]["id"], nodes=2, tasks=128, sif=sif)),
    ]
    # the executor cancels that job on a stop and waits a little longer than Flux's limit before it does
    assert [(item["job"], item["timeout"]) for item in items] == [(item["id"], 3600 + FLUX_BACKSTOP) for item in items]
    assert {item["image"] for item in items} == {IMAGE}
    assert {item["sif"] for item in items} == {sif}


def odd_runs(tmp_path: Path) -> list[dict]:
    """A run that outlives Flux's time limit and one that asks Flux for more nodes than there are."""
    return [
        {"id": "slow", "argv": ["flux", "run", "--job-name=slow", "-t", "1s", "-N", "1", "-n", "1", "sleep", "30"],
         "env": {}, "cwd": None, "stage": None, "timeout": 60, "run_dir": str(tmp_path / "runs" / "slow"),
         "image": None, "sif": None, "job": "slow"},
        {"id": "too-big", "argv": ["flux", "run", "-N", "4", "-n", "256", "lmp"], "env": {"OMP_NUM_THREADS": "2"},
         "cwd": None, "stage": None, "timeout": 60, "run_dir": str(tmp_path / "runs" / "big"), "image": None,
         "sif": None},
    ]


def assert_odd_runs_reported(results: dict[str, dict]) -> None:
    assert results["slow"]["timed_out"] is True and results["slow"]["wall"] < 10
    assert results["too-big"]["rc"] == 1 and results["too-big"]["timed_out"] is False
    assert "unsatisfiable request: 4 nodes, 2 up" in results["too-big"]["output"]


def test_a_sweep_pulls_once_per_node_runs_as_rendered_and_reports_every_run(broker) -> None:
    """The executor runs under `flux python`, the Python Flux runs its own commands with."""
    tmp_path = broker[0]
    items = planned_items(tmp_path)
    swept = sweep(broker, items + odd_runs(tmp_path), "python")
    assert swept.ok, swept.failures
    sif = items[0]["sif"]
    flux_calls = [call[1:] for call in swept.calls if call[0] == "flux"]
    assert flux_calls[0] == ["exec", "-r", "all", "test", "-s", sif]
    assert flux_calls[1][:4] == ["exec", "-r", "all", "sh"] and flux_calls[1][-2:] == [sif, IMAGE]
    assert [call[:4] for call in flux_calls if call[0] == "python"] == [
        ["python", "-I", "-S", str(tmp_path / "pod" / "execute_run.py")]] * len(swept.events)
    assert [call for call in flux_calls if call[0] == "run"][:2] == [item["argv"][1:] for item in items]
    pulls = [call for call in swept.calls if call[:2] == ["singularity", "pull"]]
    assert pulls == [["singularity", "pull", "--force", f"{sif}.part", IMAGE]], "one pull: the second node finds it"
    results = reported(swept)
    assert sorted(results) == sorted([*(item["id"] for item in items), "slow", "too-big"])
    for item in items:
        assert swept.events[item["id"]]["changed"] is True
        result = results[item["id"]]
        assert result["rc"] == 0 and result["timed_out"] is False
        assert "Total wall time: 0:00:01" in result["output"]
        assert f"on {item['argv'][item['argv'].index('-n') + 1]} procs" in result["output"]
        assert set(result) >= {"id", "rc", "timed_out", "wall", "user", "sys", "maxrss_kb", "started", "finished",
                               "host", "log_path", "output"}
    assert_odd_runs_reported(results)

    again = sweep(broker, items, "python")
    assert again.ok, again.failures
    # the executors started (under `flux python`) and found their results: nothing else ran in Flux
    assert [call[1:4] for call in again.calls if call[1] != "python"] == [["exec", "-r", "all"]], \
        "cached image, finished runs not run again"
    assert all(res["changed"] is False for res in again.events.values())
    assert all(result.get("cached") for result in reported(again).values())


def test_a_sweep_side_by_side_starts_one_node_runs_together_and_queues_a_two_node_run(broker) -> None:
    """The eks-arm64 sweep's four runs (1 and 2 nodes of 64 cores, x 1 and 8) in as many lanes as the planner
    chooses (two: 128 cores, 64-rank runs), each lane a host of its own on the stand-in lead broker, whose
    Flux starts a job once its cores are free, in submission order."""
    tmp_path = broker[0]
    ws = Workspace.load(load_experiment(REPO / "experiments" / "lammps.yaml"))
    ws.clusters["eks-arm64"] = dataclasses.replace(ws.clusters["eks-arm64"], sif_dir=str(tmp_path / "sif"))
    plan, _ = prepare(ws, "eks-arm64", ["reaxff"], [VARIANT], 1, Console(quiet=True), install=False)
    launches = {run.id: ws.launch(run) for run in plan.runs}
    width = lanes(ws.clusters["eks-arm64"], plan.runs, launches, side_by_side=True)
    assert width == 2 and lanes(ws.clusters["eks-arm64"], plan.runs, launches, side_by_side=False) == 1
    items = run_items(Store(tmp_path / "results" / "planner.sqlite"), plan.runs, launches, tmp_path / "stop", width)
    (tmp_path / "slow").mkdir()
    (tmp_path / "slow" / "lmp").write_text(f'#!/bin/sh\nsleep 3\nexec {tmp_path}/fakes/lmp "$@"\n')
    (tmp_path / "slow" / "lmp").chmod(0o755)
    broker[1].write_text(broker[1].read_text().replace('export PATH="', f'export PATH="{tmp_path}/slow:'))
    swept = sweep(broker, items, "python", width)
    assert swept.ok, swept.failures
    results = reported(swept)
    assert sorted(results) == sorted(item["id"] for item in items)
    nodes = {run.id: run.options.nodes for run in plan.runs}
    spans = {run_id: (result["finished"] - result["wall"], result["finished"]) for run_id, result in results.items()}

    def beside(run_id: str) -> list[str]:
        start, end = spans[run_id]
        return [other for other, (s, e) in spans.items() if other != run_id and s < end and e > start]

    one_node = [run_id for run_id in results if nodes[run_id] == 1]
    assert any(beside(run_id) for run_id in one_node), ("the one-node runs ran together", spans)
    for run_id in (run_id for run_id in results if nodes[run_id] == 2):
        assert beside(run_id) == [], ("a two-node run needs every core: it ran alone", spans)
    assert any(results[run_id]["queue"] > 0.5 for run_id in results), "a run waited in Flux's queue for its cores"


def test_execute_run_py_reports_alike_where_the_pod_has_python(broker) -> None:
    swept = sweep(broker, odd_runs(broker[0]), "python")
    assert swept.ok, swept.failures
    assert_odd_runs_reported(reported(swept))


@pytest.mark.bpf
def test_an_ebpf_profile_runs_in_the_pod_around_flux_run_following_the_jobs_flux_shell(broker, bpf: None) -> None:
    """`sweep --profile ebpf` on a MiniCluster: the profiling step is installed beside the executor and
    runs around `flux run` with real bpftrace (this machine stands in for the privileged pod), following the
    tasks of the flux-shell (`-t flux-shell`); the raw profile comes back to the controller's run directory."""
    tmp_path = broker[0]
    ws = Workspace.load(load_experiment(REPO / "experiments" / "lammps.yaml"))
    ws.clusters["eks-arm64"] = dataclasses.replace(ws.clusters["eks-arm64"], sif_dir=str(tmp_path / "sif"))
    ws.profile_override = ("ebpf",)
    plan, _ = prepare(ws, "eks-arm64", ["reaxff"], [VARIANT], 1, Console(quiet=True), install=False)
    run = next(run for run in plan.runs if run.parameters.get("x") == 1 and run.options.nodes == 1)
    [item] = run_items(Store(tmp_path / "results" / "planner.sqlite"), [run], {run.id: ws.launch(run)},
                       tmp_path / "stop")
    assert (item["profile"], item["profile_root"]) == ("ebpf", "flux-shell")
    os.environ["FAKE_LMP_SECONDS"] = "0.4"
    try:
        swept = sweep(broker, [item], "python")
    finally:
        os.environ.pop("FAKE_LMP_SECONDS")
    assert swept.ok, swept.failures
    installed = (tmp_path / "pod" / "profile_run.sh").read_text()  # (Ansible's file lookup drops the last newline)
    assert installed == (REPO / "roles/run_matrix/files/profile_run.sh").read_text().rstrip("\n")
    result = reported(swept)[run.id]
    assert result["rc"] == 0 and "Total wall time" in result["output"]
    assert result["profile"]["status"] == "ebpf ok\n"
    record = record_for(ws, run, ws.launch(run), result, Path(item["run_dir"]))
    assert record.profiles == {"ebpf": "ok"}
    # the fake lmp's 0.4 s of CPU, under the job's flux-shell; the tasks start as bpftrace follows the shell's
    # forks, and on a busy machine part of the first burst can pass before a new task is followed
    assert 0.05 < record.foms["ebpf.oncpu_seconds"] < 5
    assert (Path(item["run_dir"]) / "profile" / "ebpf.json").read_text() == result["profile"]["ebpf.json"]
