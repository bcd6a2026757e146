"""Runs on a MiniCluster that stop and never run twice: Flux's own time limit, Ctrl-C and kill -9 of the
planner, a job or an executor of the same run left by an earlier sweep.

Flux cannot run here: tests/cloud/fake_flux.py stands in for `flux` (and `singularity`, `lmp`) on the lead
broker. Like the real one it keeps its jobs apart from the `flux run` client that submitted them (a client
killed leaves its job running), enforces `-t` time limits with a `timeout` exception, cancels jobs by id,
and lists them by name with their run times; the lead broker is reached with the local connection, and
nothing started there carries the controller's process mark, as in a pod. The executors, the run_matrix
role run through ansible-runner, and the planner (`python -m planner sweep`, through
tests/cloud/flux_planner.py, which only swaps the playbook request for the stand-in's) are the real ones.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from planner.edges.store import Store
from planner.edges.watchdog import owned_by, reap
from tests.cloud.fake_flux import install
from tests.conftest import REPO
from tests.test_executors import processes_with, wait_for

FILES = REPO / "roles" / "run_matrix" / "files"
EXECUTORS = {"python": [sys.executable, str(FILES / "execute_run.py")]}
REPORTED, STOPPED = 0, 3
VARIANT = "mpich-ubuntu-22.04-arm64"


@dataclass
class Broker:
    """A stand-in lead broker: the fakes on PATH through the operator's environment script, an inventory."""

    root: Path
    env: dict[str, str]  # what a shell on the lead broker has once the environment script is sourced
    env_script: Path
    inventory: Path
    token: str  # the seconds every stand-in `lmp` sleeps first: names the runs' processes

    def flux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["flux", *args], env=self.env, capture_output=True, text=True, timeout=60, check=False)

    def jobs(self) -> list[dict]:
        """Every job Flux knows, as `flux jobs -a` lists them (newest first)."""
        fields = ("id", "name", "state", "result", "t_submit", "t_run", "t_cleanup", "runtime")
        done = self.flux("jobs", "-a", "-no", "|".join(f"{{{field}}}" for field in fields))
        assert done.returncode == 0, done.stderr
        return [dict(zip(fields, line.split("|"), strict=True)) for line in done.stdout.splitlines()]

    def active(self) -> list[dict]:
        return [job for job in self.jobs() if job["state"] != "INACTIVE"]

    def lmp_sleeps(self, seconds: float) -> None:
        (self.root / "lmp-seconds").write_text(f"{int(seconds)}.00{self.token}\n")

    def processes(self) -> list[int]:
        return processes_with(f"sleep\0{self.lmp_seconds()}")

    def lmp_seconds(self) -> str:
        return (self.root / "lmp-seconds").read_text().strip()


@pytest.fixture
def broker(tmp_path: Path):
    fakes, slow = tmp_path / "fakes", tmp_path / "slow"
    install(fakes)
    slow.mkdir()
    # `lmp` as the planner renders it, slowed down so that a sweep can be stopped mid-run
    (slow / "lmp").write_text(f'#!/bin/sh\nsleep "$(cat {tmp_path}/lmp-seconds)"\nexec {fakes}/lmp "$@"\n')
    (slow / "lmp").chmod(0o755)
    env_script = tmp_path / "flux-view.sh"
    env_script.write_text(
        f'export PATH="{slow}:{fakes}:$PATH"\nfluxsocket=local://{tmp_path}/run/flux/local\n'
        f'export FAKE_ROOT="{tmp_path}/container" FAKE_FLUX_LOG="{tmp_path}/calls.jsonl"\n'
        "# the lead broker is a pod: nothing running there carries the controller's process mark\n"
        "unset COMPAT_LAB_OWNER_PID\n")
    # A pod's processes are not in the controller's terminal session: when Ansible's terminal goes (the
    # planner killed), no hangup reaches them. execute_run.py is started in a session of its own to match.
    (tmp_path / "pod-python").write_text(f'#!/bin/sh\nexec setsid -w {sys.executable} "$@"\n')
    (tmp_path / "pod-python").chmod(0o755)
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(json.dumps({"flux_lead_broker": {"hosts": {"eks-arm64-lead-broker": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    env = {**os.environ, "PATH": f"{slow}:{fakes}:{os.environ['PATH']}", "FLUX_URI": f"local://{tmp_path}/run",
           "FAKE_ROOT": str(tmp_path / "container"), "FAKE_FLUX_LOG": str(tmp_path / "calls.jsonl")}
    env.pop("COMPAT_LAB_OWNER_PID", None)
    token = f"{uuid.uuid4().int % 10**6:06d}"
    found = Broker(tmp_path, env, env_script, inventory, token)
    found.lmp_sleeps(0)
    yield found
    # whatever a failed test left: the stand-in's jobs, then their processes
    for job in found.active():
        found.flux("cancel", job["id"])
    wait_for(lambda: not found.processes(), timeout=30)


# ---------------------------------------------------------------------------------------- the executors


def execute(broker: Broker, executor: str, *args: str, wait: bool = True):
    command = [*EXECUTORS[executor], *args]
    if not wait:
        return subprocess.Popen(command, env=broker.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, env=broker.env, capture_output=True, text=True, timeout=120, check=False)


def reported(done: subprocess.CompletedProcess[str]) -> dict:
    assert done.returncode == REPORTED, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("executor", sorted(EXECUTORS))
def test_flux_ends_a_job_at_its_time_limit_and_the_run_reports_a_timeout_with_flux_times(broker: Broker,
                                                                                         executor: str) -> None:
    broker.lmp_sleeps(30)
    started = time.monotonic()
    result = reported(execute(broker, executor, "-j", "run-1", "60", str(broker.root / "run"), "0",
                              "flux", "run", "--job-name=run-1", "-t", "1.5s", "-N", "1", "-n", "2", "lmp"))
    assert time.monotonic() - started < 30, "Flux ended the job, not the executor's own timeout"
    assert result["timed_out"] is True and result["rc"] == 128 + signal.SIGALRM
    assert "job.exception type=timeout severity=0 resource allocation expired" in result["output"]
    job = broker.jobs()[0]
    assert (job["name"], job["result"]) == ("run-1", "TIMEOUT")
    assert result["wall"] == pytest.approx(float(job["runtime"]), abs=1e-3) and 1.5 <= result["wall"] < 10
    assert result["queue"] == pytest.approx(float(job["t_run"]) - float(job["t_submit"]), abs=1e-3)
    assert result["rusage_of"] == "flux-client"
    assert not broker.active() and not broker.processes()


@pytest.mark.parametrize("executor", sorted(EXECUTORS))
@pytest.mark.parametrize("how", ["stop-file", "SIGTERM", "timeout"])
def test_a_run_stopped_or_timed_out_by_the_executor_cancels_its_job_in_flux(broker: Broker, executor: str,
                                                                            how: str) -> None:
    broker.lmp_sleeps(60)
    stop = broker.root / "stop"
    timeout = "2" if how == "timeout" else "120"
    running = execute(broker, executor, "-j", "-s", str(stop), "run-1", timeout, str(broker.root / "run"), "0",
                      "flux", "run", "--job-name=run-1", "-N", "1", "-n", "2", "lmp", wait=False)
    wait_for(lambda: broker.processes())
    if how == "stop-file":
        stop.touch()
    elif how == "SIGTERM":  # Ansible's cancellation
        running.send_signal(signal.SIGTERM)
    out, _ = running.communicate(timeout=60)
    job = broker.jobs()[0]
    assert (job["name"], job["result"]) == ("run-1", "CANCELED"), "ending the client alone would leave the job"
    assert not broker.active() and not broker.processes()
    if how == "timeout":
        result = json.loads(out)
        assert running.returncode == REPORTED and result["timed_out"] is True
    else:
        assert (running.returncode, out) == (STOPPED, "")
        assert not (broker.root / "run" / "result.json").exists()


def test_the_stand_in_leaves_a_job_running_when_its_client_is_killed(broker: Broker) -> None:
    """What makes the cancellations above necessary, as Flux does it: the job is the instance's."""
    broker.lmp_sleeps(60)
    client = subprocess.Popen(["flux", "run", "--job-name=left", "lmp"], env=broker.env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: broker.processes())
    client.kill()
    client.wait()
    time.sleep(0.5)
    assert [(job["name"], job["state"]) for job in broker.active()] == [("left", "RUN")] and broker.processes()


@pytest.mark.parametrize("executor", sorted(EXECUTORS))
def test_a_job_of_the_run_left_by_an_earlier_attempt_is_cancelled_before_the_run_starts(broker: Broker,
                                                                                        executor: str) -> None:
    broker.lmp_sleeps(60)
    client = subprocess.Popen(["flux", "run", "--job-name=run-1", "lmp"], env=broker.env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: broker.processes())
    client.kill()  # its executor is gone: nobody waits for this job
    client.wait()
    broker.lmp_sleeps(0)
    result = reported(execute(broker, executor, "-j", "run-1", "60", str(broker.root / "run"), "0",
                              "flux", "run", "--job-name=run-1", "-N", "1", "-n", "2", "lmp"))
    assert result["rc"] == 0 and "Total wall time" in result["output"]
    new, old = broker.jobs()
    assert (old["result"], new["result"]) == ("CANCELED", "COMPLETED")
    assert float(old["t_cleanup"]) <= float(new["t_run"]), "never two jobs of one run at a time"
    assert not broker.active()


@pytest.mark.parametrize("executor", sorted(EXECUTORS))
def test_a_second_executor_in_a_run_directory_waits_for_the_first_and_reports_its_result(broker: Broker,
                                                                                         executor: str) -> None:
    broker.lmp_sleeps(3)
    args = ["-j", "run-1", "60", str(broker.root / "run"), "0", "flux", "run", "--job-name=run-1", "lmp"]
    first = execute(broker, "python", *args, wait=False)
    wait_for(lambda: broker.processes())
    second = reported(execute(broker, executor, *args))
    out, _ = first.communicate(timeout=60)
    assert second == {**json.loads(out), "cached": True}
    assert [job["result"] for job in broker.jobs()] == ["COMPLETED"], "one job: the second executor ran nothing"


def test_the_stand_in_refuses_what_flux_refuses(broker: Broker) -> None:
    for args, message in ((["run", "-t", "5x", "true"], "invalid Flux standard duration '5x'"),
                          (["run", "--time-limt=5s", "true"], "unrecognized arguments"),
                          (["run", "--job-name=", "true"], "a job name may not be empty"),
                          (["jobs", "--name"], "expected one argument"),
                          (["jobs", "-o", "{nope}"], "Unknown format field: nope"),
                          (["jobs", "-f", "sleeping"], "Invalid filter specified: sleeping"),
                          (["cancel", "42"], "42: unknown job id")):
        done = broker.flux(*args)
        assert done.returncode != 0 and message in done.stderr, (args, done.stderr)
    assert broker.jobs() == []


# ------------------------------------------------------------------------------------------ the planner


def experiment(broker: Broker, timeout: float) -> Path:
    """experiments/lammps.yaml with the images cached under this test's directory, and the run timeout."""
    text = (REPO / "experiments" / "lammps.yaml").read_text()
    text = text.replace("    price_per_hour: 1.6832\n", f"    price_per_hour: 1.6832\n    sif_dir: {broker.root}/sif\n",
                        1)
    assert "    repeats: 3\n    timeout: 3600\n" in text
    text = text.replace("    repeats: 3\n    timeout: 3600\n", f"    repeats: 1\n    timeout: {timeout}\n")
    # its compspec artifact cannot be fetched here: its attributes are typed, as the experiment allows
    text = text.replace(f"    image: docker://ghcr.io/rse-ops/lammps-matrix:{VARIANT}\n",
                        f"    image: docker://ghcr.io/rse-ops/lammps-matrix:{VARIANT}\n    attributes: "
                        "{io.archspec.cpu.target: aarch64, mpi.implementation: mpich, lammps.packages: REAXFF}\n", 1)
    path = broker.root / "lammps.yaml"
    path.write_text(text)
    state = broker.root / "state" / "clusters" / "eks-arm64.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"lead_broker": {"pod": "compat-lab-0-abcde", "namespace": "compat-lab",
                                                 "container": "compat-lab", "kubeconfig": "", "context": ""},
                                 "sif_dir": f"{broker.root}/sif"}))
    return path


def planner(broker: Broker, executor: str, *extra: str) -> subprocess.Popen[str]:
    """`python -m planner sweep --cluster eks-arm64 EXTRA...` (4 runs: 1 and 2 nodes, x 1 and 2) on the stand-in,
    with the experiment `experiment` wrote (a run timeout of 60 s unless it was written before)."""
    path = broker.root / "lammps.yaml"
    if not path.exists():
        experiment(broker, 60)
    stand_in = {"run_matrix_flux_env_script": str(broker.env_script),
                "run_matrix_flux_work_dir": str(broker.root / "pod"),
                "run_matrix_flux_python_command": [str(broker.root / "pod-python")]}
    env = {**os.environ, "COMPAT_LAB_STATE_DIR": str(broker.root / "state")}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.cloud.flux_planner", str(broker.inventory), json.dumps(stand_in), "--",
         "sweep", "-e", str(path),
         "--cluster", "eks-arm64", "--workload", "reaxff", "--variant", VARIANT, "--store", str(store(broker)), *extra],
        cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def store(broker: Broker) -> Path:
    return broker.root / "results" / "planner.sqlite"


def stored(broker: Broker) -> list[tuple[str, str | None]]:
    """(run id, log path) of the stored runs, read while a sweep may be writing."""
    if not store(broker).exists():
        return []
    with sqlite3.connect(store(broker)) as db:
        try:
            return db.execute("SELECT id, log_path FROM runs").fetchall()
        except sqlite3.OperationalError:
            return []


def finish(broker: Broker, executor: str) -> str:
    broker.lmp_sleeps(0)
    again = planner(broker, executor)
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out
    return out


def assert_every_run_ran_once(broker: Broker) -> None:
    with Store(store(broker)) as kept:
        records = kept.records()
    assert len(records) == 4 and {r.status for r in records} == {"ok"}, [(r.status, r.detail) for r in records]
    completed = collections.Counter(job["name"] for job in broker.jobs() if job["result"] == "COMPLETED")
    assert completed == {record.id: 1 for record in records}
    for record in records:
        assert "Total wall time" in Path(record.log_path).read_text()
        assert record.rusage_of == "flux-client" and record.queue_wait is not None and record.queue_wait >= 0
    assert not broker.active() and not broker.processes()


def interrupt_mid_run(broker: Broker) -> None:
    """Wait until a run is stored and a later one is running, one that would last a minute."""
    wait_for(lambda: len(stored(broker)) >= 1, timeout=180)
    broker.lmp_sleeps(60)
    wait_for(lambda: broker.processes(), timeout=60)


def test_ctrl_c_cancels_the_running_job_in_flux_and_the_next_sweep_runs_each_run_once(broker: Broker) -> None:
    first = planner(broker, "python")
    try:
        interrupt_mid_run(broker)
        # the stored run's log is on the controller while the sweep goes on, not after its loop
        assert all(Path(log).is_file() for _, log in stored(broker))
        assert first.poll() is None
        first.send_signal(signal.SIGINT)
        out, _ = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130, out
    assert "run the same command again to resume" in " ".join(out.split())
    assert "CANCELED" in [job["result"] for job in broker.jobs()]
    assert not broker.active() and not broker.processes()
    assert not processes_with(str(broker.root / "pod"))  # no executor left on the lead broker
    kept = len(stored(broker))
    assert 1 <= kept < 4
    assert f"{4 - kept} of 4 runs to do" in " ".join(finish(broker, "python").split())
    assert_every_run_ran_once(broker)


def test_kill_9_of_the_planner_cancels_its_jobs_through_the_watchdog_and_the_next_sweep_resumes(broker: Broker) -> None:
    first = planner(broker, "python")
    try:
        interrupt_mid_run(broker)
    finally:
        first.kill()
        first.communicate()
    # the watchdog ends what the planner started here, then the sweep's executors and jobs on the cluster
    wait_for(lambda: not broker.active() and not owned_by(first.pid), timeout=120)
    assert "CANCELED" in [job["result"] for job in broker.jobs()]
    wait_for(lambda: not broker.processes() and not processes_with(str(broker.root / "pod")), timeout=30)
    finish(broker, "python")
    assert_every_run_ran_once(broker)


def test_a_sweep_finding_an_earlier_executor_of_a_run_still_at_work_waits_for_its_result(broker: Broker) -> None:
    """The planner and its watchdog both killed: nothing cancelled the run on the cluster."""
    first = planner(broker, "python")
    try:
        wait_for(lambda: len(stored(broker)) >= 1, timeout=180)
        broker.lmp_sleeps(10)
        wait_for(lambda: broker.processes(), timeout=60)
        watchdogs = [pid for pid in processes_with("planner.edges.watchdog") if str(first.pid).encode()
                     in Path(f"/proc/{pid}/cmdline").read_bytes()]
        for pid in watchdogs:
            os.kill(pid, signal.SIGKILL)
    finally:
        first.kill()
        first.communicate()
    reap(first.pid)  # Ansible's own processes on the controller; the lead broker's go on
    running = broker.active()
    # two lanes side by side: the running one-node run's job, and one queued behind it or beside it
    assert 1 <= len(running) <= 2, broker.jobs()
    assert processes_with(str(broker.root / "pod")), "the executor on the lead broker goes on"
    finish(broker, "python")
    assert_every_run_ran_once(broker)  # the run of the job left running was stored from its own executor
    assert not [job for job in broker.jobs() if job["result"] != "COMPLETED"]


def test_flux_time_limit_ends_planned_runs_stored_as_timeout_with_flux_run_time(broker: Broker) -> None:
    broker.lmp_sleeps(60)
    experiment(broker, timeout=2)
    sweep = planner(broker, "python")
    out, _ = sweep.communicate(timeout=300)
    assert sweep.returncode == 0, out
    with Store(store(broker)) as kept:
        records = kept.records()
    assert [(r.status, r.reason) for r in records] == [("failed", "timeout")] * 4
    runtimes = {job["name"]: float(job["runtime"]) for job in broker.jobs()}
    assert {job["result"] for job in broker.jobs()} == {"TIMEOUT"}
    for record in records:
        assert record.wall == pytest.approx(runtimes[record.id], abs=1e-3) and 2 <= record.wall < 10
        assert record.rusage_of == "flux-client" and record.queue_wait is not None
        assert "job.exception type=timeout" in Path(record.log_path).read_text()
        assert f"--job-name={record.id} -t 2s " in record.command
    assert not broker.active() and not broker.processes()


@pytest.mark.parametrize("executor", ["python"])
def test_retry_failed_runs_the_failed_runs_again_on_the_lead_broker(broker: Broker, executor: str) -> None:
    """Each run's directory on the lead broker keeps its result.json: a retry must not report it again."""
    fails = broker.root / "lmp-fails"
    slow = broker.root / "slow" / "lmp"
    slow.write_text(f'#!/bin/sh\nif [ -e {fails} ]; then echo "ERROR: Cannot open file in.reaxc.hns: No such file '
                    f'or directory (src/input.cpp:330)"; exit 1; fi\n' + slow.read_text().split("\n", 1)[1])
    fails.touch()
    first = planner(broker, executor)
    out, _ = first.communicate(timeout=300)
    assert first.returncode == 0, out
    with Store(store(broker)) as kept:
        assert {(r.status, r.reason) for r in kept.records()} == {("failed", "missing-input")}
    fails.unlink()
    again = planner(broker, executor, "--retry-failed")
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out
    assert "4 failed run(s) to run again" in " ".join(out.split())
    with Store(store(broker)) as kept:
        records = kept.records()
    assert [(r.status, r.reason) for r in records] == [("ok", None)] * 4, [(r.status, r.detail) for r in records]
    results = collections.Counter((job["name"], job["result"]) for job in broker.jobs())
    assert results == {**{(r.id, "FAILED"): 1 for r in records}, **{(r.id, "COMPLETED"): 1 for r in records}}
    for record in records:
        assert "Total wall time" in Path(record.log_path).read_text()
        kept_there = broker.root / "pod" / "runs" / record.id / "result.json"
        assert json.loads(kept_there.read_text())["rc"] == 0, "the pod keeps the retry's result, not the first"
