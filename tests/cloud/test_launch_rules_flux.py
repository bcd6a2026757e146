"""Launch rules on a MiniCluster: the Open MPI images' ranks join one job only with Flux's PMI library bound in.

Flux, Singularity and LAMMPS cannot run here: tests/cloud/fake_flux.py stands in for them (see its docstring:
its `lmp` prints one banner per rank, each "on 1 procs", unless the image's MPI can reach a PMI, as real
LAMMPS does when its ranks never join one MPI job). The operator's Flux install is laid out under a stand-in
host root as the Flux Operator lays it out in the application container: the view at /mnt/flux/view, whose
lib/flux/libpmi.so links into the install tree copied to /opt/software. Everything else is real: the
experiment file and its launch rules, the plan, the rendered commands, roles/run_matrix through
ansible-runner, and the planner's parsing of what came back (planner.edges.sweep.record_for).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from rich.console import Console

from planner.core.experiment import parse_experiment
from planner.core.types import Run
from planner.edges.store import Store
from planner.edges.sweep import Workspace, prepare, record_for, run_items
from tests.cloud.fake_flux import FLUX_PMI_LIBRARY
from tests.cloud.test_flux_runs import broker, reported, sweep  # noqa: F401  (broker is a fixture)
from tests.conftest import REPO
from tests.registry.matrix import warm_cache

OPENMPI = "openmpi-ubuntu-22.04-arm64"
MPICH = "mpich-ubuntu-22.04-arm64"
RULE = "openmpi-flux-pmi-library"


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The pod's file system as the operator leaves it: Flux's install tree and the view linking into it."""
    root = tmp_path / "host"
    library = root / FLUX_PMI_LIBRARY.lstrip("/")
    library.parent.mkdir(parents=True)
    library.write_text("Flux's PMI-1 client library\n")
    view = root / "mnt/flux/view/lib/flux"
    view.mkdir(parents=True)
    (view / "libpmi.so").symlink_to(FLUX_PMI_LIBRARY)
    monkeypatch.setenv("FAKE_HOST_ROOT", str(root))
    return root


def workspace(tmp_path: Path) -> Workspace:
    """The default experiment, its eks sweep varying whether the Open MPI rule applies (a sweepable choice)."""
    text = (REPO / "experiments" / "lammps.yaml").read_text()
    sizes = "z: [1, 6, 1, 12]}\n"
    assert sizes in text
    text = text.replace(sizes, f"{sizes}      vary: {{skip_rules: [[], [{RULE}]]}}\n", 1)
    ws = Workspace.load(parse_experiment(text, "lammps.yaml"), artifacts=warm_cache(tmp_path / "compspec"))
    ws.clusters["eks-arm64"] = dataclasses.replace(ws.clusters["eks-arm64"], sif_dir=str(tmp_path / "sif"))
    return ws


def one_node_runs(ws: Workspace, variant: str) -> list[Run]:
    plan, _ = prepare(ws, "eks-arm64", ["reaxff"], [variant], 1, Console(quiet=True), install=False)
    return [run for run in plan.runs if run.options.nodes == 1 and run.parameters.get("x") == 1]


def stored(ws: Workspace, broker_: tuple, runs: list[Run], tmp_path: Path, argv: dict[str, list[str]] | None = None,
           executor: str = "python"):
    """Run the planned runs through the role and parse each as the planner stores it: id -> record."""
    store = Store(tmp_path / "results" / "planner.sqlite")
    launches = {run.id: ws.launch(run) for run in runs}
    items = run_items(store, runs, launches, tmp_path / "stop")
    for item in items:
        item["argv"] = (argv or {}).get(item["id"], item["argv"])
    swept = sweep(broker_, items, executor)
    assert swept.ok, swept.failures
    results = reported(swept)
    return {run.id: record_for(ws, run, launches[run.id], results[run.id], Path(items[0]["run_dir"]))
            for run in runs}


def test_open_mpi_ranks_join_one_job_only_with_the_rule(broker, host: Path, tmp_path: Path) -> None:  # noqa: F811
    ws = workspace(tmp_path)
    runs = one_node_runs(ws, OPENMPI)
    with_rule = next(run for run in runs if not run.options.skip_rules)
    without = next(run for run in runs if run.options.skip_rules)
    assert [rule.name for rule in with_rule.rules] == [RULE] and without.rules == ()
    assert with_rule.id != without.id
    assert without.key()["options"]["skip_rules"] == (RULE,)  # the choice is part of the run's key
    assert "--bind" not in ws.launch(without).argv and "singleton" in without.warnings[0]

    records = stored(ws, broker, [with_rule, without], tmp_path)
    good, bad = records[with_rule.id], records[without.id]
    assert (good.status, good.reason, good.foms["procs"]) == ("ok", None, 64.0)
    assert (bad.status, bad.reason) == ("failed", "mpi")
    assert bad.detail.startswith("64 singleton runs, not one 64-rank run")


def test_the_view_alone_is_not_enough_its_links_point_into_opt_software(broker, host: Path,  # noqa: F811
                                                                         tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    run = next(run for run in one_node_runs(ws, OPENMPI) if not run.options.skip_rules)
    argv = ws.launch(run).argv
    at = argv.index("/opt/software:/opt/software")
    view_only = argv[:at - 1] + argv[at + 1:]
    assert view_only.count("--bind") == 1 and "/mnt/flux:/mnt/flux" in view_only
    record = stored(ws, broker, [run], tmp_path, {run.id: view_only})[run.id]
    assert (record.status, record.reason) == ("failed", "mpi"), record.detail


def test_mpich_joins_through_flux_pmi_simple_and_not_with_pmi_off(broker, host: Path, tmp_path: Path) -> None:  # noqa: F811
    ws = workspace(tmp_path)
    run, other = one_node_runs(ws, MPICH)  # (skip_rules naming the Open MPI rule changes nothing but the id)
    assert [rule.name for rule in run.rules] == [rule.name for rule in other.rules] == ["mpich-flux-pmi"]
    argv = ws.launch(run).argv
    assert argv[argv.index("singularity") - 2:argv.index("singularity")] == ["-o", "pmi=simple"]
    off = [("pmi=off" if word == "pmi=simple" else word) for word in ws.launch(other).argv]
    records = stored(ws, broker, [run, other], tmp_path, {other.id: off})
    assert (records[run.id].status, records[run.id].foms["procs"]) == ("ok", 64.0)
    assert (records[other.id].status, records[other.id].reason, records[other.id].detail) == (
        "failed", "mpi", "64 singleton runs, not one 64-rank run (the ranks never joined one MPI job)")


def test_a_bind_of_a_missing_host_path_fails_as_singularity_does(broker, host: Path, tmp_path: Path) -> None:  # noqa: F811
    ws = workspace(tmp_path)
    run = next(run for run in one_node_runs(ws, OPENMPI) if not run.options.skip_rules)
    (host / "mnt/flux/view/lib/flux/libpmi.so").unlink()
    (host / "mnt/flux/view/lib/flux").rmdir()
    for directory in ("mnt/flux/view/lib", "mnt/flux/view", "mnt/flux"):
        (host / directory).rmdir()
    record = stored(ws, broker, [run], tmp_path)[run.id]
    assert (record.status, record.reason) == ("failed", "missing-input")
    assert "mount source /mnt/flux doesn't exist" in (record.detail or "")


@pytest.mark.parametrize("executor", ["python"])
def test_a_view_newer_than_the_image_is_stored_os_abi_from_the_loaders_words(broker, host: Path,  # noqa: F811
                                                                             tmp_path: Path, executor: str,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A jammy view (glibc 2.35) on a cluster running Ubuntu 20.04 Open MPI images (the plan would exclude them; the
    run fails "that way anyway" where the image's OS is not known). Open MPI 4 says only that PMI_Init failed (its
    flux PMI component prints no dlerror()); roles/run_matrix then asks `ldd` in the image with the run's binds,
    whose loader line names the cause: the run is stored os-abi. The 22.04 image runs under the same view."""
    monkeypatch.setenv("FAKE_VIEW_GLIBC", "2.35")
    ws = workspace(tmp_path)
    old = next(run for run in one_node_runs(ws, "openmpi-ubuntu-20.04-arm64") if not run.options.skip_rules)
    new = next(run for run in one_node_runs(ws, OPENMPI) if not run.options.skip_rules)
    records = stored(ws, broker, [old, new], tmp_path, executor=executor)
    assert (records[new.id].status, records[new.id].foms["procs"]) == ("ok", 64.0)
    record = records[old.id]
    assert (record.status, record.reason) == ("failed", "os-abi"), record.detail
    assert record.detail == (f"compat-lab: ldd in the image: {FLUX_PMI_LIBRARY}: /lib/aarch64-linux-gnu/libc.so.6: "
                             f"version `GLIBC_2.35' not found (required by {FLUX_PMI_LIBRARY})")
