"""Plan expansion, compatibility exclusions with reasons, stable run ids and rendered commands."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from planner.cli import main
from planner.core import compat
from planner.core.errors import InputError
from planner.core.experiment import OptionMatrix, Options, load_experiment
from planner.core.launch import render
from planner.core.plan import expand
from planner.edges.importer import read_csv
from planner.edges.sweep import Workspace
from planner.learn.features import choice_features
from tests.conftest import REPO, TINY
from tests.registry.matrix import warm_cache


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """The default experiment with its container variants' artifacts fetched (see tests/registry)."""
    artifacts = warm_cache(tmp_path_factory.mktemp("compspec"))
    return Workspace.load(load_experiment(REPO / "experiments" / "lammps.yaml"), artifacts=artifacts)


def test_matrix_semantics_cross_zip_exclude() -> None:
    matrix = OptionMatrix(set={"affinity": "per-task"}, vary={"x": [1, 2]},
                          zip=({"tasks": [2, 1], "threads": [1, 2]},), exclude=({"x": 2, "tasks": 1},))
    points = matrix.points()
    assert points == [
        {"affinity": "per-task", "x": 1, "tasks": 2, "threads": 1},
        {"affinity": "per-task", "x": 1, "tasks": 1, "threads": 2},
        {"affinity": "per-task", "x": 2, "tasks": 2, "threads": 1},
        {"affinity": "per-task", "x": 2, "tasks": 1, "threads": 2},
    ]
    assert [matrix.excludes(p) is not None for p in points] == [False, False, False, True]


def test_eks_arm64_plan_excludes_other_arch_gpu_and_natives_with_reasons(ws: Workspace) -> None:
    plan = expand(ws.exp, ws.clusters, ws.variants, cluster="eks-arm64")
    variants = {run.variant for run in plan.runs}
    assert variants == {"openmpi-ubuntu-22.04-arm64", "openmpi-ubuntu-20.04-arm64", "mpich-ubuntu-20.04-arm64",
                        "mpich-ubuntu-22.04-arm64"}
    reasons = {x.variant: x.detail for x in plan.excluded}
    assert "built for amd64" in reasons["intel-mpi-rocky-9-amd64"]
    assert "needs a GPU" in reasons["openmpi-rocky-gpu-9-arm64"]
    assert "only on the local cluster" in reasons["lammps-2025-mpich"]
    assert all(x.reason == "incompatible" for x in plan.excluded)


def test_run_ids_are_stable_and_repeat_specific(ws: Workspace) -> None:
    first = expand(ws.exp, ws.clusters, ws.variants, cluster="eks-amd64")
    second = expand(ws.exp, ws.clusters, ws.variants, cluster="eks-amd64")
    assert [r.id for r in first.runs] == [r.id for r in second.runs]
    assert len({r.id for r in first.runs}) == len(first.runs)
    by_config: dict[str, set[int]] = {}
    for run in first.runs:
        by_config.setdefault(run.config_id, set()).add(run.repeat)
    assert all(repeats == {0, 1, 2} for repeats in by_config.values())


def test_cores_packages_and_suffix_rules() -> None:
    exp = load_experiment(TINY)
    ws = Workspace.load(exp)
    small = dataclasses.replace(ws.clusters["local"], cores_per_node=1)
    variants = {name: dataclasses.replace(v, attributes={**v.attributes, "lammps.packages": "MOLECULE KSPACE"})
                for name, v in ws.variants.items()}
    plan = expand(exp, {"local": small}, variants, cluster="local")
    details = {x.detail for x in plan.excluded}
    assert any("2 tasks x 1 threads = 2 cores; cluster local has 1" in d for d in details)
    assert any("lacks LAMMPS package REAXFF for workload reaxff" in d for d in details)
    assert not plan.runs  # every point needs 2 cores


def test_the_original_experiment_command_on_one_and_two_nodes(ws: Workspace) -> None:
    plan = expand(ws.exp, ws.clusters, ws.variants, cluster="eks-arm64", only_variants=["mpich-ubuntu-22.04-arm64"])
    commands = {(r.options.nodes, r.parameters["x"]): ws.launch(r).shell() for r in plan.runs}
    sif = "/tmp/compat-lab/sif/lammps-matrix_mpich-ubuntu-22.04-arm64.sif"
    # the original command, with the PMI service the MPICH launch rule makes explicit (Flux's default)
    assert commands[(2, 1)] == ("flux run -N 2 -n 128 -o cpu-affinity=per-task -o pmi=simple singularity exec --pwd "
                                f"/opt/lammps/examples/reaxff/HNS {sif} lmp -v x 1 -v y 1 -v z 1 -in in.reaxc.hns "
                                "-nocite")
    assert commands[(1, 1)].startswith("flux run -N 1 -n 64 -o cpu-affinity=per-task -o pmi=simple singularity exec")


def test_local_command_binds_the_variant_mpi_and_stages_inputs(ws: Workspace) -> None:
    plan = expand(ws.exp, ws.clusters, ws.variants, cluster="local", workloads=["lj"],
                  only_variants=["lammps-2025-impi"])
    omp = next(r for r in plan.runs if r.options.suffix == "omp")
    impi = ws.variants["lammps-2025-impi"]
    # what the installed variant's facts say (`lmp -h`), so that the test needs no installation
    impi = dataclasses.replace(impi, attributes={**impi.attributes, "mpi.implementation": "intel-mpi"})
    launch = render(omp, ws.clusters["local"], impi, ws.exp.apps["lammps"])
    prefix = impi.layout["prefix"]
    assert launch.env["LD_LIBRARY_PATH"] == f"{prefix}/lib"
    assert launch.env["I_MPI_PIN_DOMAIN"] == "omp"  # Intel MPI pins through env, not -bind-to
    assert launch.argv[:3] == [f"{prefix}/bin/mpiexec", "-n", "1"]
    python = f"python{sys.version_info.major}.{sys.version_info.minor}"
    base = prefix.replace("lammps-2025-impi", "lammps-2025-mpich")
    assert launch.argv[3] == f"{base}/lib/{python}/site-packages/lammps/lmp"  # the same binary, another MPI
    assert launch.argv[4:] == ["-v", "x", "1", "-v", "y", "1", "-v", "z", "1", "-v", "steps", "200", "-in", "in.lj",
                               "-sf", "omp", "-pk", "omp", "2", "-nocite"]
    assert launch.stage and launch.stage.startswith(f"{prefix}/inputs/lj-")


def test_unknown_cluster_filter_is_bad_input(ws: Workspace) -> None:
    with pytest.raises(InputError) as err:
        expand(ws.exp, ws.clusters, ws.variants, cluster="mars")
    assert str(err.value) == "--cluster: unknown cluster 'mars'; known: local, eks-arm64, eks-amd64"


def test_container_variant_on_local_needs_a_runtime(ws: Workspace) -> None:
    workload = ws.exp.apps["lammps"].workloads["reaxff"]
    variant = ws.variants["mpich-ubuntu-22.04-amd64"]
    bare = dataclasses.replace(ws.clusters["local"], container_runtime=None)
    assert "needs singularity or apptainer" in compat.check(bare, variant, "reaxff", workload, Options())
    with_runtime = dataclasses.replace(bare, container_runtime="/usr/bin/apptainer", arch="x86_64",
                                       microarchitecture="zen3")
    assert compat.check(with_runtime, variant, "reaxff", workload, Options()) is None


def test_sweeping_a_variant_that_cannot_run_here_is_bad_input(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sweep", "--variant", "mpich-ubuntu-22.04-arm64", "--store", str(tmp_path / "s.sqlite")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: --variant: variant mpich-ubuntu-22.04-arm64 cannot run on cluster local: "), err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s.sqlite").exists()


def test_an_imported_row_of_a_planned_point_gets_the_planned_ids(ws: Workspace, tmp_path: Path) -> None:
    """Plan and import build a run's key with the same function (core/types.run_key)."""
    plan = expand(ws.exp, ws.clusters, ws.variants, cluster="local", workloads=["reaxff"],
                  only_variants=["lammps-2025-impi"])
    run = next(r for r in plan.runs if r.options.suffix == "omp" and r.repeat == 1)
    options = {name.removeprefix("param."): value for name, value in run.key()["options"].items()}
    header = ["cluster", "app", "workload", "variant", "status", "metric", "value", "repeat",
              *(f"option.{name}" for name in options)]
    row = [run.cluster, run.app, run.workload, run.variant, "ok", "loop_time", "1.5", str(run.repeat),
           *(str(value) for value in options.values())]
    path = tmp_path / "one.csv"
    path.write_text(",".join(header) + "\n" + ",".join(row) + "\n")
    [record] = read_csv(path).records
    # an import knows no input digest: it names the planned point as a run that does not record its input
    unread = dataclasses.replace(run, input=None)
    assert (record.id, record.config_id, record.options) == (unread.id, unread.config_id, run.key()["options"])
    assert run.input is not None and run.id != unread.id  # the input the plan read is part of the run's id


@pytest.mark.parametrize("spelling", ["yes", "True", "1", "on", " ON "])
def test_gpu_spellings_mean_the_same_to_the_rules_and_the_features(ws: Workspace, spelling: str) -> None:
    variant = ws.variants["mpich-ubuntu-22.04-amd64"]
    gpu = dataclasses.replace(variant, attributes={**variant.attributes, "hardware.gpu.available": spelling})
    cluster = ws.clusters["eks-amd64"]
    workload = ws.exp.apps["lammps"].workloads["reaxff"]
    assert compat.check(cluster, variant, "reaxff", workload, Options()) is None
    assert "needs a GPU" in compat.check(cluster, gpu, "reaxff", workload, Options())
    row = choice_features(app="lammps", cluster=cluster.attributes(), variant=gpu.attributes, launch={})
    assert (row["gpu.needed"], row["gpu.missing"]) == (1.0, 1.0)
