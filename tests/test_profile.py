"""Profiles of real runs (issue 13): a local sweep with `--profile` records per-rank rusage, perf stat and
bpftrace numbers beside the figures of merit, keeps the raw histograms in the run's directory, and leaves
no profiler running; where the machine denies a profiler the runs go on and the store says why. The
parsing of the profilers' own output is checked on their real formats."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from planner.core import profilers
from planner.core.launch import Launch
from planner.core.metrics import goal_of
from tests.conftest import TINY, planner
from tests.test_executors import processes_with

ONE_VARIANT = ["--workload", "lj", "--variant", "lammps-2025-mpich"]


def _stored(store: Path) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, str]]]:
    with sqlite3.connect(store) as db:
        foms: dict[str, dict[str, float]] = {}
        for run_id, name, value in db.execute("SELECT run_id, name, value FROM foms"):
            foms.setdefault(run_id, {})[name] = value
        statuses: dict[str, dict[str, str]] = {}
        for run_id, name, status in db.execute("SELECT run_id, profiler, status FROM profiles"):
            statuses.setdefault(run_id, {})[name] = status
    return foms, statuses


@pytest.mark.lammps
@pytest.mark.bpf
def test_a_profiled_local_sweep_stores_profiles_beside_the_foms(native_variants: Path, tmp_path: Path,
                                                                bpf: None) -> None:
    store = tmp_path / "planner.sqlite"
    done = planner("sweep", "-e", str(TINY), *ONE_VARIANT, "--profile", "rusage,perf,ebpf", store=store)
    assert done.returncode == 0, done.stdout + done.stderr
    foms, statuses = _stored(store)
    assert len(foms) == 2 and all(s == {"rusage": "ok", "perf": "ok", "ebpf": "ok"} for s in statuses.values()), \
        statuses
    for run_id, values in foms.items():
        tasks = values["mpi_tasks"]
        assert values["rusage.ranks"] == tasks  # one GNU time line per rank, from the log
        assert values["timesteps_per_s"] > 0 and values["rusage.rank_maxrss_max_kb"] > 10_000
        # the app's own CPU time, seen three ways: LAMMPS ranks' rusage, perf's task clock, bpftrace's on-CPU
        cpu = values["rusage.rank_user_max_seconds"] * tasks
        assert 0.5 * cpu < values["perf.task_clock_seconds"] < 3 * cpu + 1
        assert 0.5 * cpu < values["ebpf.oncpu_seconds"] < 3 * cpu + 1
        assert values["ebpf.runq_waits"] > 0 and values["ebpf.runq_wait_p99_us"] >= values["ebpf.runq_wait_median_us"]
        assert values["ebpf.launcher_oncpu_seconds"] < values["ebpf.oncpu_seconds"]
        raw = store.parent / "planner.sqlite.runs" / run_id / "profile"
        assert '"@runq_us"' in (raw / "ebpf.json").read_text() and "task-clock" in (raw / "perf.csv").read_text()
        log = (store.parent / "planner.sqlite.runs" / run_id / "output.log").read_text()
        assert log.count("compat-lab-rusage ") == tasks and "Total wall time" in log
    assert not processes_with("bpftrace") and not processes_with("perf\0stat")
    shown = planner("results", "--metric", "ebpf.runq_wait_p99_us", "--json", store=store)
    assert shown.returncode == 0
    assert all(set(s["median"]) == {"ebpf.runq_wait_p99_us"} for s in json.loads(shown.stdout))


@pytest.mark.lammps
def test_profilers_the_machine_lacks_leave_the_runs_whole_and_say_why(native_variants: Path,
                                                                      tmp_path: Path) -> None:
    """The denial path of a whole sweep, for real: the machine's tools without perf and bpftrace on PATH."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        for tool in Path(directory).iterdir() if Path(directory).is_dir() else ():
            if tool.name not in {"perf", "bpftrace"} and not (tools / tool.name).exists():
                (tools / tool.name).symlink_to(tool)
    store = tmp_path / "planner.sqlite"
    done = planner("sweep", "-e", str(TINY), *ONE_VARIANT, "--profile", "perf,ebpf", store=store,
                   env={"PATH": str(tools)})
    assert done.returncode == 0, done.stdout + done.stderr
    foms, statuses = _stored(store)
    assert len(foms) == 2 and all(values["timesteps_per_s"] > 0 for values in foms.values())
    assert all(not any(name.startswith(("perf.", "ebpf.")) for name in values) for values in foms.values())
    assert all(s == {"perf": "unavailable: perf is not installed (Debian package linux-perf)",
                     "ebpf": "unavailable: bpftrace is not installed (Debian package bpftrace)"}
               for s in statuses.values())
    table = planner("results", store=store).stdout
    assert "no perf x1: perf is not installed" in table


# ------------------------------------------------------------------------------- rendering, parsing


def test_ranks_ending_together_each_leave_a_whole_rusage_line() -> None:
    # ranks share the launcher's stderr pipe and end at the same moment; GNU time writing field by field
    # interleaved their lines mid-line (seen in a 2-rank sweep), and the run lost its rusage
    for _ in range(20):
        read, write = os.pipe()
        ranks = [subprocess.Popen([*profilers.RUSAGE_ARGV, "true"], stderr=write) for _ in range(16)]
        os.close(write)
        for rank in ranks:
            rank.wait()
        with os.fdopen(read) as pipe:
            log = pipe.read()
        assert profilers.parse(["rusage"], None, log).metrics["rusage.ranks"] == 16, log


def test_rusage_wraps_each_rank_and_the_other_profilers_the_whole_launch() -> None:
    launch = Launch(["/v/bin/mpiexec", "-n", "2", "-bind-to", "core", "/v/lmp", "-in", "in.lj"], {"A": "1"},
                    rank_start=5)
    local = profilers.wrap(launch, ["ebpf", "rusage"], "local")
    assert local.argv == ["/v/bin/mpiexec", "-n", "2", "-bind-to", "core", "/usr/bin/time", "-q", "-a", "-o",
                          "/dev/stderr", "-f", profilers.RUSAGE_FORMAT, "--", "/v/lmp", "-in", "in.lj"]
    assert (local.profile, local.profile_root, local.env) == (("rusage", "ebpf"), "tree", {"A": "1"})
    flux = profilers.wrap(Launch(["flux", "run", "-n", "2", "singularity", "exec", "x.sif", "lmp"], rank_start=4),
                        ["ebpf"], "eks")
    assert flux.argv[:4] == ["flux", "run", "-n", "2"] and flux.profile_root == "flux-shell"
    assert profilers.wrap(launch, [], "local") is launch
    assert profilers.unsupported(["rusage", "perf", "ebpf"], "eks").keys() == {"rusage", "perf"}
    assert profilers.unsupported(["rusage", "perf", "ebpf"], "local") == {}
    assert goal_of("ebpf.runq_wait_p99_us") == goal_of("perf.context_switches") == "min"


def test_the_profilers_own_formats_become_numbers() -> None:
    perf = ("# started on Mon Nov 30 13:35:56 2026\n\n1592.57,msec,task-clock:u,1592571,100.00,0.002,CPUs utilized\n"
            "7,,context-switches:u,1592571,100.00,0.000,/sec\n<not counted>,,cpu-migrations:u,0,100.00,,\n"
            "133,,page-faults:u,1592571,100.00,83.513,K/sec\n")
    # bpftrace 0.17 writes the bucket past 2^31 us with 32-bit bounds; the launcher's processes are apart
    ebpf = "\n".join(json.dumps(item) for item in [
        {"type": "attached_probes", "data": {"probes": 25}}, {"type": "printf", "data": "ready\n"},
        {"type": "hist", "data": {"@runq_us": {
            "lmp": [{"min": 4, "max": 7, "count": 50}, {"min": 8, "max": 15, "count": 49}],
            "mpiexec": [{"min": 1024, "max": 2047, "count": 1000}],
            "async": [{"min": 1073741824, "max": 2147483647, "count": 0},
                      {"min": -2147483648, "max": 0, "count": 10}]}}},
        {"type": "map", "data": {"@runq_ns": {"lmp": 800000, "async": 3_000_000_000_000, "mpiexec": 10**9}}},
        {"type": "map", "data": {"@oncpu_ns": {"lmp": 2_000_000_000, "hydra_pmi_proxy": 1_000_000}}},
        {"type": "map", "data": {"@yields": {"lmp": 12}}}])
    output = ("LAMMPS (22 Jul 2025)\ncompat-lab-rusage wall=2.00 user=1.50 sys=0.10 maxrss_kb=40000 major_faults=0 "
              "minor_faults=900 vol_switches=10 invol_switches=5\ncompat-lab-rusage wall=2.10 user=1.70 sys=0.20 "
              "maxrss_kb=42000 major_faults=1 minor_faults=950 vol_switches=12 invol_switches=7\n"
              "Total wall time: 0:00:02\n")
    parsed = profilers.parse(["rusage", "perf", "ebpf"], {"status": "perf ok\nebpf ok\n", "perf.csv": perf,
                                                        "ebpf.json": ebpf}, output)
    m = parsed.metrics
    assert parsed.status == {"rusage": "ok", "perf": "ok", "ebpf": "ok"}
    assert (m["perf.task_clock_seconds"], m["perf.context_switches"], m["perf.page_faults"]) == (1.59257, 7, 133)
    assert "perf.cpu_migrations" not in m
    assert (m["rusage.ranks"], m["rusage.rank_user_max_seconds"], m["rusage.rank_maxrss_max_kb"]) == (2, 1.7, 42000)
    assert m["rusage.involuntary_switches"] == 12
    assert m["ebpf.runq_waits"] == 109 and m["ebpf.runq_wait_seconds"] == 3000.0008  # lmp + async, not mpiexec
    assert 8 <= m["ebpf.runq_wait_median_us"] <= 15 and 2**31 <= m["ebpf.runq_wait_p99_us"] < 2**32
    assert (m["ebpf.oncpu_seconds"], m["ebpf.launcher_oncpu_seconds"], m["ebpf.sched_yields"]) == (2.0, 0.001, 12)
    denied = profilers.parse(["rusage", "perf", "ebpf"], {"status": "ebpf unavailable bpftrace cannot trace here: "
                                                                  "unshare failed\n"}, "no rank line\n")
    assert denied.metrics == {}
    assert denied.status == {"rusage": "unavailable: no rank reported its rusage (no rank ended?)",
                             "perf": "unavailable: the profiling step was ended before it reported (a timeout or "
                                     "a kill)",
                             "ebpf": "unavailable: bpftrace cannot trace here: unshare failed"}
    assert profilers.parse(["perf"], None, "").status == {"perf": "unavailable: the executor ran no profiling step"}
