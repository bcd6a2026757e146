"""App definitions (issue 20): hpcc's definition on its real result files, its input written from the
workload's parameters and checked like LAMMPS's, an app declared as data alone, and every definition's
figures of merit with a unit and a goal the learner honours. (LAMMPS's definition keeps its guarantees in
tests/test_parse_log.py, on the same fixtures as before.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from planner.cli import main
from planner.core import apps
from planner.core.apps import hpcc
from planner.core.experiment import Options, parse_experiment
from planner.core.metrics import goal_of
from tests.conftest import REPO

LOGS = REPO / "tests" / "data" / "logs"
HPCC = (REPO / "experiments" / "hpcc.yaml").read_text()


def _parse_log(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    assert main(["parse-log", *args, "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return json.loads(out)


def test_hpcc_figures_of_a_real_two_rank_run(capsys: pytest.CaptureFixture[str]) -> None:
    [item] = _parse_log(capsys, "--app", "hpcc", "--tasks", "2", str(LOGS / "hpcc-2ranks-hpccoutf.txt"))
    assert (item["status"], item["reason"]) == ("ok", None)
    foms = item["foms"]
    # the summary's own values: HPL_Tflops=0.000539013, StarSTREAM_Triad=22.2152, MPIRandomAccess_GUPs=...
    assert foms["hpl_gflops"] == pytest.approx(0.539013)
    assert foms["hpl_time"] == 1.23961
    assert foms["stream_triad_gbs"] == 22.2152
    assert foms["randomaccess_gups"] == 0.000684688
    assert foms["ptrans_gbs"] == 0.0514746
    assert foms["fft_gflops"] == 0.0644566
    assert foms["ring_latency_us"] == 0.163229
    assert foms["procs"] == 2


def test_hpcc_ranks_that_never_joined_are_a_failed_mpi_run(capsys: pytest.CaptureFixture[str]) -> None:
    """Debian's hpcc (Open MPI) started by MPICH's hydra: each rank ran the suite alone and appended its
    results to the same hpccoutf.txt, each ending with hpcc's success line and Success=1."""
    log = str(LOGS / "hpcc-singletons-hpccoutf.txt")
    [item] = _parse_log(capsys, "--app", "hpcc", "--tasks", "2", log)
    assert (item["status"], item["reason"]) == ("failed", "mpi")
    assert item["detail"] == "2 singleton runs, not one 2-rank run (the ranks never joined one MPI job)"
    [unasked] = _parse_log(capsys, "--app", "hpcc", log)
    assert unasked["detail"] == "2 hpcc runs in one output, not one run"
    text = (LOGS / "hpcc-2ranks-hpccoutf.txt").read_text()
    short = hpcc.DEFINITION.parse(text, tasks=4)
    assert (short.status, short.reason, short.detail) == ("failed", "mpi",
                                                          "hpcc ran on 2 procs, not the 4 tasks asked for")


def test_hpcc_succeeds_only_with_its_own_end_line_and_verdict() -> None:
    text = (LOGS / "hpcc-2ranks-hpccoutf.txt").read_text()
    cut = text[:text.index("End of HPC Challenge tests.")]
    assert hpcc.DEFINITION.parse(cut, exit_code=0).status == "failed"
    wrong = hpcc.DEFINITION.parse(text.replace("Success=1", "Success=0"), exit_code=0)
    assert (wrong.status, wrong.reason) == ("failed", "unknown")
    assert wrong.detail.startswith("hpcc's summary says Success=0")
    assert hpcc.DEFINITION.parse(text, exit_code=1).status == "failed"  # the launcher's word counts too


def test_hpcc_without_its_input_is_missing_input() -> None:
    # hpcc's own lines when hpccinf.txt is missing (seen here: it then hangs, and the executor's timeout ends it)
    log = "HPL WARNING from process # 0, on line 313 of function HPL_pdinfo:\n>>> cannot open file hpccinf.txt <<<\n"
    parsed = hpcc.DEFINITION.parse(log, exit_code=1)
    assert (parsed.reason, parsed.detail) == ("missing-input", ">>> cannot open file hpccinf.txt <<<")


def test_every_figure_of_merit_has_a_unit_and_a_goal_the_learner_uses() -> None:
    for name in apps.BUILTIN:
        definition = apps.definition(name)
        assert definition is not None and definition.default_metric in {f.name for f in definition.foms_declared}
        for fom in definition.foms_declared:
            assert fom.unit and fom.goal in ("max", "min"), (name, fom)
            assert goal_of(fom.name) == fom.goal
    assert goal_of("ring_latency_us") == "min"  # its name alone would say max


def test_hpccinf_is_written_from_the_workloads_parameters() -> None:
    exp = parse_experiment(HPCC)
    files = hpcc.DEFINITION.generated_inputs({"n": 1200, "nb": 64, "p": 0, "q": 0}, Options(tasks=6))
    lines = files["hpccinf.txt"].splitlines()
    assert [lines[i].split()[0] for i in (5, 7, 10, 11)] == ["1200", "64", "2", "3"]  # N, NB, P, Q: 2 x 3 grid
    assert lines[-3].split()[0] == "1200" and lines[-1].split()[0] == "64"  # PTRANS's N and NB
    assert [hpcc.grid(t) for t in (1, 2, 4, 7)] == [(1, 1), (1, 2), (2, 2), (1, 7)]
    assert exp.apps["hpcc"].workloads["hpl"].parameters == {"n": 1000, "nb": 80, "p": 0, "q": 0}


@pytest.mark.parametrize(("old", "new", "message"), [
    ("        nb: [40, 100]", "        nb: [40, 100.5]",
     r"hpcc\.yaml:\d+: sweeps\[0\]\.options\.vary\.nb\[1\]: nb is a whole number of at least 1 \(hpccinf\.txt\); "
     r"got 100\.5"),
    ("parameters: {n: 1000,", "parameters: {n: 0,",
     r"apps\.hpcc\.workloads\.hpl\.parameters\.n: n is a whole number of at least 1"),
    ("parameters: {n: 1000,", "parameters: {n: yes,", r"parameters\.n: n is a whole number of at least 1 "
                                                       r"\(hpccinf\.txt\); got True"),
])
def test_hpcc_parameters_are_checked_on_load(tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str,
                                             new: str, message: str) -> None:
    path = tmp_path / "hpcc.yaml"
    assert old in HPCC
    path.write_text(HPCC.replace(old, new))
    assert main(["plan", "-e", str(path), "--store", str(tmp_path / "s.sqlite")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert re.search(message, err), err


def test_a_grid_that_is_not_the_tasks_is_excluded_with_its_reason(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "hpcc.yaml"
    path.write_text(HPCC.replace("        nb: [40, 100]", "        nb: [40]\n        p: [2]\n        q: [1]"))
    assert main(["plan", "-e", str(path), "--json", "--store", str(tmp_path / "s.sqlite")]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [run["options"]["tasks"] for run in plan["runs"]] == [2, 2]  # 2 repeats of the one 2-rank point
    [excluded] = plan["excluded"]
    assert (excluded["reason"], excluded["detail"]) == (
        "incompatible", "HPL's grid p x q = 2 x 1 is not the 1 tasks (p = q = 0 chooses it)")


DATA_APP = """
name: data-app
apps:
  toy:
    executable: toy-bench
    success: "toy: done"
    foms:
      rate: {pattern: 'rate = (\\S+) items/s', unit: items/s, goal: max}
      latency: {pattern: 'latency (\\S+) ms', unit: ms, goal: min, scale: 0.001}
    failures:
      missing-input: ['toy: no such deck']
    workloads:
      small: {parameters: {size: 10}, native: {workdir: "", input: deck.txt}}
variants:
  toy-host: {native: {host: [coreutils]}}
clusters:
  local: {kind: local}
sweeps:
  - {name: s, clusters: [local], workloads: [small]}
"""


def test_an_app_declared_as_data_alone_is_parsed_by_its_declarations() -> None:
    exp = parse_experiment(DATA_APP)
    definition = apps.resolve("toy", exp.apps["toy"])
    assert (definition.executable, definition.default_metric) == ("toy-bench", "rate")
    ok = definition.parse("rate = 12.5 items/s\nlatency 40 ms\nrate = 13 items/s\ntoy: done\n", exit_code=0)
    assert (ok.status, ok.foms) == ("ok", {"rate": 13.0, "latency": 0.04})
    failed = definition.parse("mpirun noticed that process rank 0 exited\ntoy: no such deck\n", exit_code=1)
    assert (failed.reason, failed.detail) == ("missing-input", "toy: no such deck")  # its own line first


def test_an_app_definition_that_is_not_registered_is_refused(capsys: pytest.CaptureFixture[str],
                                                              tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(DATA_APP.replace("    executable: toy-bench", "    definition: planner.edges.sweep"))
    assert main(["plan", "-e", str(path), "--store", str(tmp_path / "s.sqlite")]) == 2
    err = capsys.readouterr().err
    assert err == ("error: <path>:5: apps.toy.definition: no app definition 'planner.edges.sweep'; "
                   "registered: lammps, hpcc\n").replace("<path>", str(path)), err


def test_a_host_variant_whose_packages_are_missing_is_refused_naming_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "hpcc.yaml"
    path.write_text(HPCC.replace("host: [hpcc, openmpi-bin]", "host: [hpcc, no-such-package-here]"))
    store = tmp_path / "s.sqlite"
    assert main(["sweep", "-e", str(path), "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {path}: variant hpcc-debian-openmpi runs this host's Debian packages, which are not all "
                   "installed: apt-get install hpcc no-such-package-here\n")
    assert not any(Path(f"{store}.runs").glob("*"))  # nothing ran


@pytest.mark.parametrize(("recipe", "message"), [
    ("{packages: [x==1], launcher: mpirun}", "a pip variant's ranks are started by its wheel's MPICH `mpiexec`"),
    ("{packages: [x==1], host: [hpcc]}", "either `packages` (pip requirements installed into its prefix) or `host`"),
    ("{host: [Hpcc]}", "'Hpcc' is not a Debian package name"),
])
def test_a_native_recipe_is_one_kind_of_source(tmp_path: Path, capsys: pytest.CaptureFixture[str], recipe: str,
                                               message: str) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(DATA_APP.replace("toy-host: {native: {host: [coreutils]}}", f"toy-host: {{native: {recipe}}}"))
    assert main(["plan", "-e", str(path), "--store", str(tmp_path / "s.sqlite")]) == 2
    err = capsys.readouterr().err
    assert f"{path}:15: variants.toy-host.native" in err and message in err, err


def test_no_module_outside_the_lammps_definition_names_it() -> None:
    """`grep -ril lammps planner/` finds only LAMMPS's definition: the rest reaches it through the registry."""
    naming = sorted(str(path.relative_to(REPO)) for path in (REPO / "planner").rglob("*")
                    if path.is_file() and "__pycache__" not in path.parts
                    and "lammps" in path.read_text(errors="replace").lower())
    assert naming == ["planner/core/apps/lammps.py"]


@pytest.mark.parametrize(("args", "message"), [
    ("[-nocite]", r"hpcc\.yaml:\d+: sweeps\[0\]\.options\.set\.args: '-nocite' is not a hpcc flag an experiment "
                  r"may add; accepted: none"),
    ("[-v, x, '1']", r"'-v' is not a hpcc flag"),
])
def test_the_flags_an_option_may_add_are_its_apps_own(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      args: str, message: str) -> None:
    path = tmp_path / "hpcc.yaml"
    flags = f"    options:\n      set: {{args: {args}}}\n      vary:"
    path.write_text(HPCC.replace("    options:\n      vary:", flags))
    assert main(["plan", "-e", str(path), "--store", str(tmp_path / "s.sqlite")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(message, err), err


LAMMPS = (REPO / "experiments" / "lammps.yaml").read_text()
#: the recipe digests of experiments/lammps.yaml's borrowing variant and its base before `lammps_from` was
#: renamed `binary_from`: variants installed then are not reinstalled
DIGESTS = {"lammps-2025-impi": "71ccda0fe88a", "lammps-2025-mpich": "873b5ab24d88"}


@pytest.mark.parametrize("key", ["binary_from", "lammps_from"])
def test_a_borrowed_binary_keeps_its_recipe_digest_under_either_name(key: str) -> None:
    from planner.edges.variant_info import recipe_digest

    assert "binary_from: lammps-2025-mpich" in LAMMPS
    exp = parse_experiment(LAMMPS.replace("binary_from: lammps-2025-mpich", f"{key}: lammps-2025-mpich"))
    assert exp.variants["lammps-2025-impi"].native.binary_from == "lammps-2025-mpich"  # type: ignore[union-attr]
    assert {name: recipe_digest(exp, name) for name in DIGESTS} == DIGESTS


def test_the_old_and_new_name_of_a_borrowed_binary_together_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "lammps.yaml"
    path.write_text(LAMMPS.replace("binary_from: lammps-2025-mpich",
                                   "binary_from: lammps-2025-mpich\n      lammps_from: lammps-2025-mpich"))
    assert main(["plan", "-e", str(path), "--store", str(tmp_path / "s.sqlite")]) == 2
    err = capsys.readouterr().err
    assert "variants.lammps-2025-impi.native: `lammps_from` is the deprecated name of `binary_from`" in err, err
