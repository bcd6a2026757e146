"""parse-log on logs from real runs of this test session, on MiniCluster output, on LAMMPS 2020-2025 logs,
and on a hand-written failure log for every reason code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from planner.cli import main
from planner.core import apps
from planner.core.apps import lammps
from planner.edges.store import Store
from tests.conftest import REPO

LOGS = REPO / "tests" / "data" / "logs"

FAILURES = {
    "glibc.log": "os-abi",
    "exec-format.log": "exec-format",
    "cuda.log": "missing-gpu",
    "mpi.log": "mpi",
    "missing-package.log": "missing-package",
    "missing-input.log": "missing-input",
    "killed.log": "killed",
    "unknown.log": "unknown",
}


def _parse_log(capsys: pytest.CaptureFixture[str], *files: str) -> list[dict[str, Any]]:
    """`parse-log FILES --json` in this process: exit 0 (the files parsed, whatever runs they show)."""
    assert main(["parse-log", *files, "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return json.loads(out)


def test_every_reason_code_has_a_failure_case() -> None:
    launcher_only = {"timeout", "incompatible"}  # set by the executor and the planner, not read from logs
    assert set(FAILURES.values()) | launcher_only == set(apps.REASONS)


@pytest.mark.parametrize(("name", "reason"), sorted(FAILURES.items()))
def test_failure_logs_are_classified(name: str, reason: str, capsys: pytest.CaptureFixture[str]) -> None:
    [item] = _parse_log(capsys, str(LOGS / name))
    assert item["file"] == str(LOGS / name)
    assert (item["status"], item["reason"]) == ("failed", reason)
    assert item["foms"] == {}


def test_timeout_and_killed_come_from_the_launcher() -> None:
    assert lammps.DEFINITION.parse("Setting up Verlet run ...", timed_out=True).reason == "timeout"
    assert lammps.DEFINITION.parse("Setting up Verlet run ...", exit_code=-9).reason == "killed"
    assert lammps.DEFINITION.parse("Total wall time: 0:00:01", exit_code=1).status == "failed"


def test_a_rank_killed_from_outside_is_killed_though_its_peers_report_mpi_errors() -> None:
    """A rank SIGKILLed (OOM killer, a person): the peer's MPI error follows from it; a launcher ending with
    exit 137 may not say which rank died. An MPI error without such an exit stays an MPI failure."""
    log = "Setting up Verlet run ...\nFatal error in internal_Allreduce: Unknown error class, error stack:\n"
    killed = lammps.DEFINITION.parse(log, exit_code=137)
    assert (killed.status, killed.reason) == ("failed", "killed")
    assert killed.detail.startswith("the process was killed (exit code 137); then: Fatal error in internal_Allreduce")
    assert lammps.DEFINITION.parse(log, exit_code=9).reason == "killed"  # hydra: the killed rank's signal as exit code
    assert lammps.DEFINITION.parse(log, exit_code=1).reason == "mpi"
    missing = "lmp: error while loading shared libraries: libmpi.so.40: cannot open shared object file\n"
    assert lammps.DEFINITION.parse(missing, exit_code=137).reason == "mpi"


def test_flux_minicluster_log_with_broker_lines_interleaved(capsys: pytest.CaptureFixture[str]) -> None:
    [item] = _parse_log(capsys, str(LOGS / "flux-minicluster-reaxff.log"))
    foms = item["foms"]
    assert item["status"] == "ok"
    assert foms["loop_time"] == 22.0117 and foms["procs"] == 128 and foms["atoms"] == 77824
    assert foms["ns_per_day"] == 0.039 and foms["hours_per_ns"] == 611.436 and foms["timesteps_per_s"] == 4.543
    assert foms["comm_pct"] == 9.81 and foms["other_time"] == 0.01361  # parsed across the broker line
    assert foms["mpi_tasks"] == 128 and foms["omp_threads"] == 1
    assert foms["wall_time"] == 23


def test_old_lammps_log_without_atom_steps_derives_them() -> None:
    item = lammps.DEFINITION.parse((LOGS / "lammps-2021-lj.log").read_text())
    assert item.status == "ok"
    assert item.foms["tau_per_day"] == 22508.165
    assert item.foms["matom_steps_per_s"] == pytest.approx(32000 * 100 / 1.91926 / 1e6)
    assert item.foms["pair_pct"] == 81.40 and item.foms["wall_time"] == 2


@pytest.mark.lammps
def test_logs_of_real_runs_parse_like_the_store_says(tiny_sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Store(tiny_sweep) as store:
        records = store.records()
    assert records
    # the launcher's output as stored, and the LAMMPS log file written in the run directory (no launcher lines)
    files = {path: record for record in records
             for path in (record.log_path, str(Path(record.log_path).with_name("log.lammps")))}
    items = _parse_log(capsys, *files)
    assert sorted(item["file"] for item in items) == sorted(files)
    for item in items:
        record = files[item["file"]]
        assert (item["status"], item["reason"]) == ("ok", None), item["file"]
        assert item["foms"]["loop_time"] == record.foms["loop_time"]
        assert item["foms"]["atoms"] == record.foms["atoms"]
        assert item["foms"]["timesteps_per_s"] > 0
        assert item["foms"]["mpi_tasks"] * item["foms"]["omp_threads"] == 2


# ------------------------------------------------------------------------------- runs that are what they claim


def test_singleton_ranks_are_a_failed_mpi_run_not_an_ok_one(capsys: pytest.CaptureFixture[str]) -> None:
    """8 ranks that never joined one MPI job: each printed its banner and "on 1 procs", and each succeeded."""
    log = str(LOGS / "flux-minicluster-singletons.log")
    assert main(["parse-log", log, "--json", "--tasks", "8"]) == 0
    [item] = json.loads(capsys.readouterr().out)
    assert (item["status"], item["reason"]) == ("failed", "mpi")
    assert item["detail"] == "8 singleton runs, not one 8-rank run (the ranks never joined one MPI job)"
    assert item["foms"]["procs"] == 1.0  # the figures are kept, and say what ran
    [unasked] = _parse_log(capsys, log)  # the banners alone tell, without the tasks asked for
    assert (unasked["status"], unasked["reason"]) == ("failed", "mpi")
    assert unasked["detail"] == "8 LAMMPS banners in one log: 8 separate runs on 1 procs each, not one run"


def test_fewer_procs_than_tasks_fails_and_the_right_count_passes() -> None:
    text = (LOGS / "flux-minicluster-reaxff.log").read_text()  # one LAMMPS on 128 procs
    assert lammps.DEFINITION.parse(text, tasks=128).status == "ok"
    short = lammps.DEFINITION.parse(text, tasks=256)
    assert (short.status, short.reason, short.detail) == ("failed", "mpi",
                                                          "LAMMPS ran on 128 procs, not the 256 tasks asked for")


def test_a_wrapper_helper_failing_is_not_the_apps_failure(capsys: pytest.CaptureFixture[str]) -> None:
    """The operator's wait helper is an amd64 binary on an arm64 node (Exec format error) while LAMMPS
    itself could not find its MPI library: the run failed on the latter."""
    [item] = _parse_log(capsys, str(LOGS / "flux-minicluster-wrapper-noise.log"))
    assert (item["status"], item["reason"]) == ("failed", "mpi")
    assert item["detail"].startswith("lmp: error while loading shared libraries: libmpi.so.40")


@pytest.mark.parametrize(("line", "app"), [
    ("/flux_operator/wait-0.sh: line 23: /usr/bin/goshare-wait-fs: cannot execute binary file: Exec format error",
     False),
    ("broker.err[0]: sched-fluxion-resource: status_request_cb: resource not ready", False),
    ("flux-shell[0]: FATAL: doom: rank 1 exited and exit-timeout=30s has expired", False),
    ("/mnt/flux/view/bin/flux: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.34' not found", False),
    ("lmp: /lib/aarch64-linux-gnu/libc.so.6: version `GLIBC_2.34' not found (required by "
     "/mnt/flux/view/lib/flux/libpmi.so)", True),
    ("FATAL:   While performing image check: exec /usr/bin/lmp: exec format error", True),
    ("ERROR: Unrecognized pair style 'reaxff' (src/force.cpp:279)", True),
])
def test_which_lines_are_the_apps(line: str, app: bool) -> None:
    assert apps.is_app_line(line) is app


def test_the_wrappers_failure_is_reported_when_the_app_said_nothing() -> None:
    log = "/flux_operator/wait-0.sh: line 23: /usr/bin/goshare-wait-fs: cannot execute binary file: Exec format error\n"
    assert lammps.DEFINITION.parse(log, exit_code=126).reason == "exec-format"


@pytest.mark.parametrize("line", [
    # a flux view built on Ubuntu 22.04 (glibc 2.35) run in an Ubuntu 20.04 image (glibc 2.31)
    "flux: /lib/aarch64-linux-gnu/libc.so.6: version `GLIBC_2.34' not found (required by "
    "/mnt/flux/view/lib/libflux-core.so.2)",
    "lmp: symbol lookup error: /opt/software/linux-ubuntu22.04-aarch64/gcc-11.4.0/flux-core-0.61.2/lib/flux/"
    "libpmi.so: undefined symbol: __libc_single_threaded, version GLIBC_2.32",
    "lmp: relocation error: /mnt/flux/view/lib/libc.so.6: symbol __libc_enable_secure_decided, version "
    "GLIBC_PRIVATE not defined in file ld-linux-aarch64.so.1 with link time reference",
    "[compat-lab-0:00042] mca_base_component_repository_open: unable to open mca_pmix_flux: /lib/x86_64-linux-gnu/"
    "libc.so.6: version `GLIBC_2.34' not found (required by /opt/software/lib/libpmi.so.0) (ignored)",
])
def test_the_loaders_and_open_mpis_words_for_a_newer_glibc_are_os_abi(line: str) -> None:
    """What the dynamic loader (glibc's elf/dl-lookup.c, dl-version.c) and Open MPI's component loader
    (opal/mca/base/mca_base_component_repository.c) print for a library built against a newer glibc."""
    parsed = lammps.DEFINITION.parse(f"LAMMPS (2 Aug 2023)\n{line}\n", exit_code=127)
    assert (parsed.status, parsed.reason) == ("failed", "os-abi")


def test_a_flux_view_newer_than_the_image_is_os_abi_from_the_loaders_words_on_the_launchers_side(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Open MPI 4's flux PMI component says only "PMI_Init [...pmix_flux.c:...:flux_init]: Operation failed" when it
    cannot dlopen() the view's libpmi.so (opal/mca/pmix/flux/pmix_flux.c prints no dlerror()): alone, an `mpi`
    failure (a library not bound in looks the same). The loader's words, from the launcher's side (the executor's
    `ldd` in the image, the view's own `flux` refused in an older pods' image), name the cause over the app's MPI
    lines: os-abi. Fixtures: tests/data/README.md says which upstream code prints each line."""
    found = {Path(row["file"]).name: row for row in _parse_log(capsys, *(
        str(LOGS / name) for name in ("flux-view-openmpi-pmi.log", "flux-view-openmpi-glibc.log",
                                      "flux-view-flux-glibc.log")))}
    alone = found["flux-view-openmpi-pmi.log"]
    assert (alone["status"], alone["reason"]) == ("failed", "mpi")
    assert alone["detail"] == "PMI_Init [../../../../../opal/mca/pmix/flux/pmix_flux.c:291:flux_init]: Operation failed"
    explained = found["flux-view-openmpi-glibc.log"]
    assert (explained["reason"], explained["detail"]) == ("os-abi", (
        "compat-lab: ldd in the image: /mnt/flux/view/lib/flux/libpmi.so: /lib/x86_64-linux-gnu/libc.so.6: version "
        "`GLIBC_2.34' not found (required by /mnt/flux/view/lib/flux/libpmi.so)"))
    flux = found["flux-view-flux-glibc.log"]
    assert (flux["reason"], flux["detail"]) == ("os-abi", "/mnt/flux/view/bin/flux: /lib/x86_64-linux-gnu/libc.so.6: "
                                                "version `GLIBC_2.34' not found (required by /mnt/flux/view/bin/flux)")
    assert not apps.is_app_line(explained["detail"]) and not apps.is_app_line(flux["detail"])
