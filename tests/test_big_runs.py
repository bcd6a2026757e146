"""Issue 19: a run is stored whatever its output size, and whatever its profiler wrote. Real sweeps of real
LAMMPS through Ansible: what travels back as the run's event is bounded, the whole log and the raw
profiles stay in the run's directory, and the planner reads them there."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

import pytest

from planner.edges.runner import PlaybookRequest, run_playbook
from planner.edges.store import Store
from tests.conftest import planner
from tests.one_run import lj_experiment, stand_in_bpftrace
from tests.test_executors import processes_with

#: 52,000 lines of about 100 bytes printed by LAMMPS itself before the run: 5 MB of output
FIVE_MB = "variable i loop 52000\nlabel again\nprint " + '"' + "y" * 93 + ' ${i}"' + "\nnext i\njump SELF again\n"


@pytest.mark.lammps
def test_a_run_with_5_mb_of_output_is_stored(native_variants: Path, tmp_path: Path) -> None:
    store = tmp_path / "planner.sqlite"
    done = planner("sweep", "-e", str(lj_experiment(tmp_path / "big.yaml", before_run=FIVE_MB)), store=store)
    assert done.returncode == 0, done.stdout + done.stderr
    with Store(store) as opened:
        [record] = opened.records()
    assert record.status == "ok", record.detail
    assert record.foms["timesteps_per_s"] > 0  # the figures of merit from the log's tail
    log = Path(record.log_path)
    assert log.stat().st_size > 5_000_000 and "y" * 93 + " 52000" in log.read_text()


#: on SIGINT, a map whose buckets are not numbers, then 3 MB of noise: malformed and huge
MALFORMED = ('json.dumps({"type": "hist", "data": {"@runq_us": {"lmp": [{"min": "x", "max": 1, "count": "many"}]}}})'
             ' + "\\n" + "z" * 3_000_000 + "\\n"')


@pytest.mark.lammps
@pytest.mark.skipif(os.geteuid() != 0, reason="the profiling step mounts tracefs privately, which needs root")
def test_a_run_whose_profiler_wrote_malformed_megabytes_is_stored_with_the_profile_unavailable(
        native_variants: Path, tmp_path: Path) -> None:
    tools = stand_in_bpftrace(tmp_path / "bin", MALFORMED).parent
    store = tmp_path / "planner.sqlite"
    experiment = lj_experiment(tmp_path / "one.yaml")
    env = {"PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}
    for _ in range(2):  # and a later sweep with the same profile is no different
        done = planner("sweep", "-e", str(experiment), "--profile", "ebpf", store=store, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT status FROM runs").fetchall() == [("ok",)]
        assert db.execute("SELECT profiler, status FROM profiles").fetchall() == [
            ("ebpf", "unavailable: ebpf.json is malformed (ValueError)")]
    [raw] = (store.parent / "planner.sqlite.runs").glob("*/profile/ebpf.json")
    assert raw.stat().st_size > 3_000_000
    assert not processes_with(str(tools / "bpftrace"))


#: the worst a run can write for its event: every byte escaped by JSON (control characters, quotes,
#: backslashes, text beyond ASCII), and raw profiles as large as travel back
WORST = """import sys
sys.stdout.write(('\\x01"\\\\é\\u2603' * 8 + '\\n') * 100000)
"""
#: on SIGINT, JSON-escaped text just under what travels back
WORST_PROFILE = '("\\x02\\"é" * 30 + "\\n") * 1000'


@pytest.mark.skipif(os.geteuid() != 0, reason="the profiling step mounts tracefs privately, which needs root")
def test_the_largest_result_an_executor_sends_arrives_through_ansible(tmp_path: Path) -> None:
    """Real Ansible (playbooks/sweep.yml, roles/run_matrix) and ansible-runner: the event of a run that
    wrote megabytes of text JSON escapes most, with a raw profile just under what travels, carries the
    run's result (ansible-runner empties a result past its MAX_EVENT_RES; the planner sets it)."""
    tools = stand_in_bpftrace(tmp_path / "bin", WORST_PROFILE).parent
    item = {"id": "worst-1", "argv": [sys.executable, "-c", WORST], "env": {"PATH": f"{tools}:{os.environ['PATH']}"},
            "cwd": None, "stage": None, "timeout": 120, "run_dir": str(tmp_path / "run"), "image": None, "sif": None,
            "job": None, "owner_pid": os.getpid(), "stop_file": str(tmp_path / "stop"), "profile": "ebpf",
            "profile_root": "tree"}
    results = []
    done = run_playbook(PlaybookRequest("playbooks/sweep.yml", "inventories/local",
                                        {"run_matrix_runs": [item], "run_matrix_launcher": "local"}),
                        on_item=lambda task, res: results.append(res) if task == "local | Execute run" else None)
    assert done.ok, done.failures
    [res] = results
    result = json.loads(res["stdout"].splitlines()[0])
    assert result["id"] == "worst-1" and result["rc"] == 0
    assert "bytes of output left out here" in result["output"]
    raw = tmp_path / "run" / "profile" / "ebpf.json"
    assert 100_000 < raw.stat().st_size <= 128 * 1024 and result["profile"]["ebpf.json"] == raw.read_text()
