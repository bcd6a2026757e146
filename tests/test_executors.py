"""The executor contract (roles/run_matrix/README.md): execute_run.py, run as a real process, answers a run that
ends, fails, times out or is stopped; a result kept from an earlier attempt (of this run or of another); a bad
request. It is the one executor, on a MiniCluster too (under `flux python`), so it keeps to Python 3.6."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import REPO

FILES = REPO / "roles" / "run_matrix" / "files"
EXECUTORS = {"python": [sys.executable, str(FILES / "execute_run.py")]}
KEYS = {"id", "rc", "timed_out", "wall", "queue", "user", "sys", "maxrss_kb", "rusage_of", "started", "finished",
        "host", "log_path", "output"}
REPORTED, BAD_REQUEST, STOPPED = 0, 2, 3

pytestmark = pytest.mark.parametrize("executor", sorted(EXECUTORS))


def _default_signals() -> None:
    """The executor starts with the default dispositions Ansible's worker gives it: a POSIX shell cannot trap a
    signal ignored when it started, and the test run itself may ignore one (under `nohup`, SIGHUP)."""
    for number in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_DFL)


def execute(executor: str, *args: str, wait: bool = True) -> subprocess.CompletedProcess[str] | subprocess.Popen[str]:
    command = [*EXECUTORS[executor], *args]
    if not wait:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=_default_signals)
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False,
                          preexec_fn=_default_signals)


def reported(done: subprocess.CompletedProcess[str], profiled: bool = False) -> dict:
    assert done.returncode == REPORTED, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout
    result = json.loads(lines[0])
    assert set(result) - {"cached"} == KEYS | ({"profile"} if profiled else set())
    return result


def processes_with(token: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if token.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_a_run_that_ends_is_reported_with_its_output_environment_and_resources(executor: str, tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    stage.mkdir()
    (stage / "in.txt").write_text("staged input\n")
    run_dir = tmp_path / "run"
    script = 'cat in.txt; echo "A=$A B=$B"; echo "to stderr" >&2; printf "tab\\there \\"quoted\\" \\\\ done\\n"'
    done = execute(executor, "-g", str(stage), "run-1", "30", str(run_dir), "2", "A=x=y", "B=two words",
                   "sh", "-c", script)
    result = reported(done)
    expected = 'staged input\nA=x=y B=two words\nto stderr\ntab\there "quoted" \\ done\n'
    assert result["id"] == "run-1" and result["rc"] == 0 and result["timed_out"] is False
    assert result["output"] == expected
    assert (run_dir / "output.log").read_text() == expected
    assert json.loads((run_dir / "result.json").read_text()) == result
    assert result["log_path"] == str(run_dir / "output.log")
    assert 0 <= result["wall"] < 30 and result["finished"] >= result["started"]
    assert result["maxrss_kb"] is None or result["maxrss_kb"] > 0
    # no Flux job (-j): the time is the command's, and so are the resources
    assert (result["queue"], result["rusage_of"]) == (None, "command")


def test_a_failing_command_is_reported_not_an_executor_failure(executor: str, tmp_path: Path) -> None:
    result = reported(execute(executor, "run-1", "30", str(tmp_path / "run"), "0", "sh", "-c", "echo no; exit 3"))
    assert (result["rc"], result["timed_out"], result["output"]) == (3, False, "no\n")


def test_a_missing_command_is_reported_with_exit_code_127(executor: str, tmp_path: Path) -> None:
    result = reported(execute(executor, "run-1", "30", str(tmp_path / "run"), "0", "/nonexistent/lmp", "-h"))
    assert result["rc"] == 127 and "/nonexistent/lmp" in result["output"]


def test_a_command_killed_by_a_signal_reports_128_plus_the_signal(executor: str, tmp_path: Path) -> None:
    result = reported(execute(executor, "run-1", "30", str(tmp_path / "run"), "0", "sh", "-c", "kill -9 $$"))
    assert result["rc"] == 128 + 9


def test_a_run_over_its_timeout_is_ended_with_its_whole_process_group(executor: str, tmp_path: Path) -> None:
    token = f"{uuid.uuid4().int % 10**6}.5"  # a unique sleep length names the run's processes
    started = time.monotonic()
    result = reported(execute(executor, "run-1", "1.5", str(tmp_path / "run"), "0", "sh", "-c",
                              f"sleep {token} & sleep {token}; wait"))
    assert result["timed_out"] is True and result["rc"] == 128 + 15
    assert 1.5 <= result["wall"] < 10 and time.monotonic() - started < 10
    assert not processes_with(f"sleep\0{token}")


@pytest.mark.parametrize("timeout", ["", "0", "-1", "abc", "nan", "inf"])
def test_a_run_without_a_valid_timeout_is_refused_unrun(executor: str, timeout: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    done = execute(executor, "run-1", timeout, str(tmp_path / "run"), "0", "touch", str(marker))
    assert done.returncode == BAD_REQUEST and done.stdout == ""
    assert "timeout" in done.stderr and "usage:" in done.stderr
    assert not marker.exists()


@pytest.mark.parametrize("args", [
    ["run-1", "30", "RUN", "1", "=x", "true"],  # no name
    ["run-1", "30", "RUN", "1", "A B=1", "true"],
    ["run-1", "30", "RUN", "1", "$(touch RAN)=1", "true"],
    ["run-1", "30", "RUN", "1", "NOEQUALS", "true"],
    ["run-1", "30", "RUN", "2", "A=1", "B=2"],  # no command left
    ["run-1", "30", "RUN", "x", "true"],
    ["../up", "30", "RUN", "0", "true"],
    ["run-1", "30", "RUN"],
    ["-o", "me", "run-1", "30", "RUN", "0", "true"],
    ["-p", "perf,bogus", "run-1", "30", "RUN", "0", "true"],
    ["-p", "", "run-1", "30", "RUN", "0", "true"],
    ["-p", "perf", "-t", "everything", "run-1", "30", "RUN", "0", "true"],
])
def test_a_malformed_request_is_refused_unrun(executor: str, args: list[str], tmp_path: Path) -> None:
    args = [arg.replace("RUN", str(tmp_path / "run")) for arg in args]
    done = subprocess.run([*EXECUTORS[executor], *args], capture_output=True, text=True, timeout=60, check=False,
                          cwd=tmp_path)
    assert done.returncode == BAD_REQUEST and done.stdout == ""
    assert done.stderr.startswith(f"execute_run.{'py' if executor == 'python' else 'sh'}: ")
    assert not (tmp_path / "RAN").exists() and not (tmp_path / "run" / "result.json").exists()


def test_a_kept_result_of_this_run_is_reported_again_not_rerun(executor: str, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    args = ["run-1", "30", str(tmp_path / "run"), "0", "sh", "-c", f"echo ran >> {counter}; echo hello"]
    first = reported(execute(executor, *args))
    second = reported(execute(executor, *args))
    assert "cached" not in first and second == {**first, "cached": True}
    assert counter.read_text() == "ran\n"


@pytest.mark.parametrize("kept", ["other", "torn", "garbage"])
def test_a_kept_result_that_is_not_this_runs_is_replaced_by_running(executor: str, kept: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    other = json.dumps({"id": "run-2", "rc": 0, "timed_out": False, "output": "from run-2"})
    text = {"other": other, "torn": json.dumps({"id": "run-1", "rc": 0, "output": "half"})[:20],
            "garbage": "not json"}[kept]
    (run_dir / "result.json").write_text(text)
    result = reported(execute(executor, "run-1", "30", str(run_dir), "0", "echo", "fresh"))
    assert "cached" not in result and result["id"] == "run-1" and result["output"] == "fresh\n"
    assert json.loads((run_dir / "result.json").read_text())["id"] == "run-1"


def test_a_stop_asked_before_the_start_runs_nothing(executor: str, tmp_path: Path) -> None:
    stop, marker = tmp_path / "stop", tmp_path / "ran"
    stop.touch()
    done = execute(executor, "-s", str(stop), "run-1", "30", str(tmp_path / "run"), "0", "touch", str(marker))
    assert (done.returncode, done.stdout) == (STOPPED, "")
    assert not marker.exists() and not (tmp_path / "run" / "result.json").exists()


def test_a_gone_owner_before_the_start_runs_nothing(executor: str, tmp_path: Path) -> None:
    owner = subprocess.Popen(["true"])
    owner.wait()
    marker = tmp_path / "ran"
    done = execute(executor, "-o", str(owner.pid), "run-1", "30", str(tmp_path / "run"), "0", "touch", str(marker))
    assert (done.returncode, done.stdout) == (STOPPED, "")
    assert not marker.exists()


@pytest.mark.parametrize("how", ["stop-file", "owner-gone", "SIGTERM", "SIGHUP", "SIGINT"])
def test_a_run_stops_with_its_process_group_when_asked_orphaned_or_ended(executor: str, how: str,
                                                                         tmp_path: Path) -> None:
    token = f"{uuid.uuid4().int % 10**6}.25"
    stop = tmp_path / "stop"
    owner = subprocess.Popen(["sleep", "60"])
    try:
        running = execute(executor, "-s", str(stop), "-o", str(owner.pid), "run-1", "60", str(tmp_path / "run"), "0",
                          "sh", "-c", f"sleep {token} & sleep {token}; wait", wait=False)
        wait_for(lambda: len(processes_with(f"sleep\0{token}")) == 2)
        started = time.monotonic()
        if how == "stop-file":
            stop.touch()
        elif how == "owner-gone":
            owner.kill()
            owner.wait()
        else:  # the executor itself is told to end, as Ansible's cancellation does
            running.send_signal(getattr(signal, how))
        out, _ = running.communicate(timeout=30)
    finally:
        owner.kill()
        owner.wait()
    assert (running.returncode, out) == (STOPPED, "")
    assert time.monotonic() - started < 10
    assert not processes_with(f"sleep\0{token}")
    assert not (tmp_path / "run" / "result.json").exists()


# ------------------------------------------------------------------------------------- profiling step


@pytest.mark.bpf
def test_a_profiled_run_is_the_commands_own_run_with_its_profiles_beside(executor: str, tmp_path: Path,
                                                                        bpf: None) -> None:
    """Real perf and bpftrace (marked bpf): the result is the command's (its exit status, its output and
    nothing else), and the profiles count the command's process tree only, not a process of the same
    name outside it."""
    insider = tmp_path / "cl-insider"  # the command name the kernel keeps for both processes below
    insider.symlink_to(Path(sys.executable).resolve())
    busy = "import time\nend = time.process_time() + {}\nwhile time.process_time() < end: pass\n"
    outside = subprocess.Popen([str(insider), "-c", busy.format(60)])
    try:
        run_dir = tmp_path / "run"
        script = f"{insider} -c '{busy.format(0.3)}' & {insider} -c '{busy.format(0.3)}'; wait; echo done; kill -9 $$"
        result = reported(execute(executor, "-p", "perf,ebpf", "run-1", "60", str(run_dir), "0", "sh", "-c", script),
                          profiled=True)
        outside_cpu = sum(int(x) for x in Path(f"/proc/{outside.pid}/stat").read_text().split()[13:15]) / 100
    finally:
        outside.kill()
        outside.wait()
    assert result["rc"] == 128 + 9 and result["output"] == "done\n"
    assert set(result["profile"]) == {"status", "perf.csv", "ebpf.json"}
    assert sorted(result["profile"]["status"].splitlines()) == ["ebpf ok", "perf ok"]
    assert result["profile"]["ebpf.json"] == (run_dir / "profile" / "ebpf.json").read_text()
    from planner.core import profilers

    numbers = profilers.parse(["perf", "ebpf"], result["profile"], result["output"]).metrics
    # two 0.3 s CPU loops in the tree, while the outsider of the same name burned more than that outside it
    assert outside_cpu > 1.0
    assert 0.5 < numbers["perf.task_clock_seconds"] < min(outside_cpu, 5.0)
    assert 0.5 < numbers["ebpf.oncpu_seconds"] < min(outside_cpu, 5.0)
    assert numbers["ebpf.runq_waits"] > 0 and numbers["ebpf.runq_wait_p99_us"] >= numbers["ebpf.runq_wait_median_us"]
    assert numbers["ebpf.launcher_oncpu_seconds"] < numbers["ebpf.oncpu_seconds"]
    assert not processes_with("bpftrace") and not processes_with("perf\0stat\0-x")


def test_a_profile_the_machine_denies_is_recorded_unavailable_and_the_run_goes_on(executor: str,
                                                                                 tmp_path: Path) -> None:
    """The denial path, for real: without privilege (root drops to nobody) bpftrace cannot trace, and with
    no perf nor bpftrace on PATH each profiler says it is not installed; the run happens either way."""
    tools = tmp_path / "bin"  # this machine's tools, less the profilers
    tools.mkdir()
    for directory in ("/usr/local/bin", "/usr/bin", "/bin"):
        for tool in Path(directory).iterdir():
            if tool.name not in {"perf", "bpftrace"} and not (tools / tool.name).exists():
                (tools / tool.name).symlink_to(tool)
    drop = []
    nobodys = Path(tempfile.mkdtemp(prefix="compat-lab-test-"))  # pytest's tmp_path is closed to others
    try:
        if os.geteuid() == 0:
            drop = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
            nobodys.chmod(0o755)
            os.chown(nobodys, 65534, 65534)
        unprivileged = subprocess.run([*drop, *EXECUTORS[executor], "-p", "ebpf", "run-1", "60", str(nobodys / "a"),
                                       "0", "sh", "-c", "echo ran"], capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(nobodys)
    missing = subprocess.run([*EXECUTORS[executor], "-p", "perf,ebpf", "run-2", "60", str(tmp_path / "b"), "0",
                              "sh", "-c", "echo ran; exit 3"], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PATH": str(tools)})
    first, second = reported(unprivileged, profiled=True), reported(missing, profiled=True)
    assert (first["rc"], first["output"]) == (0, "ran\n") and (second["rc"], second["output"]) == (3, "ran\n")
    assert first["profile"]["status"].startswith("ebpf unavailable ")
    assert second["profile"]["status"].splitlines() == [
        "perf unavailable perf is not installed (Debian package linux-perf)",
        "ebpf unavailable bpftrace is not installed (Debian package bpftrace)"]
    from planner.core import profilers

    assert profilers.parse(["ebpf"], first["profile"], first["output"]).status["ebpf"].startswith("unavailable: ")
def test_a_second_executor_in_a_run_directory_waits_for_the_first_and_runs_nothing(executor: str,
                                                                                 tmp_path: Path) -> None:
    """One executor per run directory (a sweep resumed while an earlier one's executor still works there)."""
    counter = tmp_path / "count"
    args = ["run-1", "30", str(tmp_path / "run"), "0", "sh", "-c", f"echo ran >> {counter}; sleep 2; echo done"]
    first = execute("python", *args, wait=False)
    wait_for(counter.exists)
    second = reported(execute(executor, *args))
    out, _ = first.communicate(timeout=60)
    assert second == {**json.loads(out), "cached": True}
    assert counter.read_text() == "ran\n"


def test_a_stop_while_waiting_for_another_executor_runs_nothing(executor: str, tmp_path: Path) -> None:
    stop, marker = tmp_path / "stop", tmp_path / "ran"
    first = execute("python", "run-1", "30", str(tmp_path / "run"), "0", "sleep", "3", wait=False)
    wait_for(lambda: (tmp_path / "run" / "output.log").exists())
    waiting = execute(executor, "-s", str(stop), "run-1", "30", str(tmp_path / "run"), "0", "touch", str(marker),
                      wait=False)
    time.sleep(0.5)
    stop.touch()
    out, _ = waiting.communicate(timeout=30)
    assert (waiting.returncode, out) == (STOPPED, "") and not marker.exists()
    first.communicate(timeout=30)


# ------------------------------------------------------------------------------- what travels back (issue 19)


def test_a_huge_output_travels_as_its_head_and_tail_and_stays_whole_in_the_log(executor: str, tmp_path: Path) -> None:
    """5 MB of output: the result line (what travels back through Ansible as one event) stays small, with
    the log's head and tail and a line saying how much was left out between them; the log stays whole."""
    body = "import sys\nsys.stdout.write('first line\\n' + ('y' * 99 + '\\n') * 52000 + 'last line\\n')\n"
    run_dir = tmp_path / "run"
    done = execute(executor, "run-1", "60", str(run_dir), "0", sys.executable, "-c", body)
    result = reported(done)
    assert len(done.stdout) < 300 * 1024
    assert result["rc"] == 0
    assert result["output"].startswith("first line\n") and result["output"].endswith("last line\n")
    left_out = (run_dir / "output.log").stat().st_size - 256 * 1024
    assert f"[compat-lab: {left_out} bytes of output left out here; the whole log is {run_dir / 'output.log'}]" \
        in result["output"]
    assert (run_dir / "output.log").stat().st_size > 5_000_000


def _tools_with(tmp_path: Path, **scripts: str) -> Path:
    """This machine's tools, with stand-ins of the given names (executable scripts) in their place."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for name, text in scripts.items():
        (tools / name).write_text(text)
        (tools / name).chmod(0o755)
    for directory in ("/usr/local/bin", "/usr/bin", "/bin"):
        for tool in Path(directory).iterdir():
            if not (tools / tool.name).exists():
                (tools / tool.name).symlink_to(tool)
    return tools


#: A stand-in for bpftrace that ignores SIGINT (a profiler that does not stop): the real one cannot be made
#: to, and the profiling step's part under test is what it does with such a profiler. It says it is ready
#: as bpftrace does (a "ready" line in its -o file, from the program's BEGIN probe), then never ends.
HUNG_BPFTRACE = """#!/bin/sh
trap '' INT
out=/dev/null
while [ "$#" -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done
printf '{"type": "printf", "data": "ready\\\\n"}\\n' >"$out"
while :; do sleep 1; done
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="the profiling step mounts tracefs privately, which needs root")
def test_a_profiler_that_ignores_sigint_is_killed_after_a_short_grace(executor: str, tmp_path: Path) -> None:
    tools = _tools_with(tmp_path, bpftrace=HUNG_BPFTRACE)
    started = time.monotonic()
    done = subprocess.run([*EXECUTORS[executor], "-p", "ebpf", "run-1", "120", str(tmp_path / "run"), "0",
                           "sh", "-c", "echo ran"], capture_output=True, text=True, timeout=100,
                          env={**os.environ, "PATH": str(tools)}, preexec_fn=_default_signals)
    seconds = time.monotonic() - started
    result = reported(done, profiled=True)
    assert (result["rc"], result["output"], result["timed_out"]) == (0, "ran\n", False)
    assert seconds < 30  # the command took no time; the profiler got its grace (5 s), then SIGKILL
    assert result["profile"]["status"] == "ebpf unavailable bpftrace did not end within 5 s of SIGINT and was killed\n"
    wait_for(lambda: not processes_with(str(tools / "bpftrace")), 5)


def test_raw_profiles_too_large_to_travel_are_named_not_sent(executor: str, tmp_path: Path) -> None:
    """A profiler that writes megabytes: its file stays in the run's directory and the result names it with
    its size; the planner reads it there (a local run) or says it is unavailable (a cluster's)."""
    huge = f"""#!{sys.executable}
import signal, sys, time
out = sys.argv[sys.argv.index("-o") + 1]
with open(out, "w") as handle:
    handle.write('{{"type": "printf", "data": "ready\\\\n"}}\\n')
def end(*_):
    with open(out, "a") as handle:
        handle.write("x" * 3_000_000)
    sys.exit(0)
signal.signal(signal.SIGINT, end)
while True:
    time.sleep(0.1)
"""
    tools = _tools_with(tmp_path, bpftrace=huge)
    run_dir = tmp_path / "run"
    done = subprocess.run([*EXECUTORS[executor], "-p", "ebpf", "run-1", "120", str(run_dir), "0", "sh", "-c",
                           "echo ran"], capture_output=True, text=True, timeout=100,
                          env={**os.environ, "PATH": str(tools)}, preexec_fn=_default_signals)
    result = reported(done, profiled=True)
    size = (run_dir / "profile" / "ebpf.json").stat().st_size
    assert size > 3_000_000 and len(done.stdout) < 300 * 1024
    assert result["profile"]["left_out"] == {"ebpf.json": size} and "ebpf.json" not in result["profile"]
    from planner.core import profilers

    parsed = profilers.parse(["ebpf"], result["profile"], result["output"])
    assert parsed.status["ebpf"] == (f"unavailable: ebpf.json is {size} bytes, more than is read (it stays in the "
                                     "run's profile directory)")


def test_the_executor_needs_no_newer_python_than_flux_runs_its_own_commands_with(executor: str) -> None:
    """On a MiniCluster the executor runs under `flux python` (flux-core src/cmd/builtin/python.c), whose
    interpreter may be as old as Python 3.6, the oldest flux-core's configure.ac accepts: vermin reads the
    executor's minimum version from its syntax and the library calls it makes."""
    done = subprocess.run([str(Path(sys.executable).parent / "vermin"), "--no-tips", "--violations", "-t=3.6-",
                           str(FILES / "execute_run.py")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Minimum required versions: 3.6" in done.stdout, done.stdout + done.stderr
