"""Plan expansion, compatibility exclusions with reasons, stable run ids and rendered commands."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from planner.cli import main
from planner.core import compat
from planner.core.errors import InputError
from planner.core.experiment import Experiment, OptionMatrix, Options, load_experiment, parse_experiment
from planner.core.launch import render
from planner.core.plan import expand
from planner.edges.compspec_cache import cache_path
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
    assert any("lacks lammps package REAXFF for workload reaxff" in d for d in details)
    assert not plan.runs  # every point needs 2 cores


def test_the_original_experiment_command_on_one_and_two_nodes(ws: Workspace) -> None:
    plan = expand(ws.exp, ws.clusters, ws.variants, cluster="eks-arm64", only_variants=["mpich-ubuntu-22.04-arm64"])
    runs = {(r.options.nodes, r.parameters["x"], r.repeat): r for r in plan.runs}
    commands = {point: ws.launch(run).shell() for point, run in runs.items()}
    sif = "/tmp/compat-lab/sif/ghcr.io_rse-ops_lammps-matrix_mpich-ubuntu-22.04-arm64-8757ad29be8e0efcc19c.sif"
    # the original command, with the PMI service the MPICH launch rule makes explicit (Flux's default), the
    # job named after the run (a stop or a later sweep finds it in Flux) and Flux enforcing the timeout
    assert commands[(2, 1, 0)] == (f"flux run --job-name={runs[(2, 1, 0)].id} -t 3600s -N 2 -n 128 "
                                   "-o cpu-affinity=per-task -o pmi=simple singularity exec --pwd "
                                   f"/opt/lammps/examples/reaxff/HNS {sif} lmp -v x 1 -v y 1 -v z 1 -in in.reaxc.hns "
                                   "-nocite")
    assert commands[(1, 1, 0)].startswith(f"flux run --job-name={runs[(1, 1, 0)].id} -t 3600s -N 1 -n 64 "
                                          "-o cpu-affinity=per-task -o pmi=simple singularity exec")
    assert len({run.id for run in runs.values()}) == len(runs)  # every repeat its own job name


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
    assert str(err.value) == "--cluster: unknown cluster 'mars'; known: local, local-slurm, eks-arm64, eks-amd64"


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


# ------------------------------------------------------------------------------------------ launch rules


def _plan_json(store: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    warm_cache(cache_path(store))
    assert main(["plan", "--cluster", "eks-arm64", "--store", str(store), "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_variant_whose_attributes_were_never_fetched_is_warned_with_how_to_fetch_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No artifact cache beside the store: no MPI rule can match, and the warning says what to run."""
    assert main(["plan", "--cluster", "eks-arm64", "--store", str(tmp_path / "p.sqlite"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["runs"]
    multi = [row for row in rows if row["options"].get("tasks", 1) > 1]
    assert multi and all(row["rules"] == [] for row in multi)
    assert all(row["warnings"] and row["warnings"][0].startswith(
        "no launch rule for mpi.implementation=unknown (the variant's attributes are not fetched: "
        "`python -m planner variants fetch`)") for row in multi)


def test_plan_on_eks_arm64_shows_the_rules_each_run_fired_and_why(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    rows = _plan_json(tmp_path / "p.sqlite", capsys)["runs"]
    fired = {row["variant"]: [(rule["name"], rule["why"]) for rule in row["rules"]] for row in rows}
    assert fired["mpich-ubuntu-22.04-arm64"] == [
        ("mpich-flux-pmi", "variant mpi.implementation=mpich, cluster launcher=flux")]
    assert fired["openmpi-ubuntu-20.04-arm64"] == [
        ("openmpi-flux-pmi-library", "variant mpi.implementation=OpenMPI, cluster launcher=flux")]
    openmpi = next(row for row in rows if row["variant"] == "openmpi-ubuntu-22.04-arm64")
    assert "-o pmi=simple singularity exec --bind /mnt/flux:/mnt/flux --bind /opt/software:/opt/software" \
        in openmpi["command"]
    assert openmpi["options"]["bind"] == ["/mnt/flux:/mnt/flux", "/opt/software:/opt/software"]
    # the only warning: reaxff's container substitutions (for the images built here) are not applied to an image
    # the cluster pulls, whose input is read as shipped
    assert all(row["warnings"] == (["workload reaxff's substitutions are not applied on eks-arm64: it pulls the "
                                    "image, whose input is read as shipped"] if row["workload"] == "reaxff" else [])
               for row in rows)

    assert main(["plan", "--cluster", "eks-arm64", "--store", str(tmp_path / "p.sqlite")]) == 0
    text = capsys.readouterr().out
    assert ("rule openmpi-flux-pmi-library: variant mpi.implementation=OpenMPI, cluster launcher=flux -> "
            "-o pmi=simple; --bind /mnt/flux:/mnt/flux --bind /opt/software:/opt/software") in text
    assert "rule mpich-flux-pmi: variant mpi.implementation=mpich, cluster launcher=flux -> -o pmi=simple" in text
    assert main(["sweep", "--dry-run", "--cluster", "eks-arm64", "--store", str(tmp_path / "p.sqlite"), "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)["runs"]
    assert [(row["id"], row["rules"]) for row in dry] == [(row["id"], row["rules"]) for row in rows]


def test_a_flux_run_no_mpi_rule_covers_is_planned_with_a_warning(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    text = (REPO / "experiments" / "lammps.yaml").read_text()
    start, end = text.index("launch_rules:"), text.index("sweeps:")
    path = tmp_path / "no-rules.yaml"
    path.write_text(text[:start] + text[end:])
    rows = _plan_json(tmp_path / "p.sqlite", capsys, "-e", str(path))["runs"]
    assert rows and all(row["rules"] == [] for row in rows)
    warned = next(row for row in rows if row["variant"] == "openmpi-ubuntu-22.04-arm64" and "tasks" in row["options"])
    tasks = warned["options"]["tasks"]
    assert warned["warnings"] == [
        f"no launch rule for mpi.implementation=OpenMPI: nothing here connects the image's MPI to Flux's PMI, so "
        f"the {tasks} tasks may run as {tasks} singleton runs of lammps (the run then fails with reason mpi)",
        "workload reaxff's substitutions are not applied on eks-arm64: it pulls the image, whose input is read as "
        "shipped"]
    assert main(["plan", "--cluster", "eks-arm64", "--store", str(tmp_path / "p.sqlite"), "-e", str(path)]) == 0
    assert "warning: no launch rule for mpi.implementation=mpich" in capsys.readouterr().out


def _rules_experiment(rules: str, options: str) -> Experiment:
    text = (REPO / "experiments" / "lammps.yaml").read_text()
    start, end = text.index("launch_rules:"), text.index("sweeps:")
    text = text[:start] + rules + text[end:]
    # the eks sweep's ranks at one size, varied as the test asks
    sizes = ("        - {nodes: [1, 1, 2, 2], tasks: [64, 64, 128, 128], x: [1, 8, 1, 8], y: [1, 8, 1, 8], "
             "z: [1, 6, 1, 12]}\n")
    assert sizes in text
    text = text.replace(sizes, "        - {nodes: [1, 2], tasks: [64, 128]}\n" + options)
    return parse_experiment(text, "rules.yaml")


def test_the_sweep_can_compare_with_and_without_a_rule_and_its_own_options_win(ws: Workspace) -> None:
    rules = """launch_rules:
  - name: flux-view
    match: {variant: {mpi.implementation: openmpi, os.version: '22.*'}, cluster: {launcher: flux, arch: ARM64}}
    add: {pmi: simple, bind: [/mnt/flux:/mnt/flux], env: {A: rule, B: rule}, shell: {pmi-simple.nomap: ''},
          args: [-k, 'off'], affinity: per-task}
  - name: later
    match: {variant: {hardware.gpu.available: no}}
    add: {pmi: pmix, env: {B: later, C: later}}
"""
    # with and without the first rule, with and without an env of the point's own (not both: excluded)
    options = ("      vary: {x: [1], skip_rules: [[], [flux-view]], env: [{}, {A: mine}]}\n"
               "      exclude: [{skip_rules: [[flux-view]], env: {A: mine}}]\n")
    exp = _rules_experiment(rules, options)
    plan = expand(exp, ws.clusters, ws.variants, cluster="eks-arm64", only_variants=["openmpi-ubuntu-22.04-arm64"])
    runs = [run for run in plan.runs if run.options.nodes == 1 and run.repeat == 0]
    assert len(runs) == 3 and len({run.id for run in runs}) == 3
    plain = next(run for run in runs if not run.options.skip_rules and run.options.env.get("A") == "rule")
    mine = next(run for run in runs if run.options.env.get("A") == "mine")
    skipped = next(run for run in runs if run.options.skip_rules)
    assert [rule.name for rule in plain.rules] == ["flux-view", "later"]
    assert plain.rules[0].why == ("variant mpi.implementation=OpenMPI, variant os.version=22.04, "
                                  "cluster launcher=flux, cluster arch=arm64")
    assert plain.options.env == {"A": "rule", "B": "rule", "C": "later"}  # earlier rules win a key
    assert plain.rules[1].kept == "pmi=simple (rule flux-view); env B=rule"
    assert mine.options.env["A"] == "mine" and "env A=mine" in mine.rules[0].kept  # the point's own value wins
    assert (skipped.options.pmi, [rule.name for rule in skipped.rules]) == ("pmix", ["later"])
    argv = render(plain, ws.clusters["eks-arm64"], ws.variants[plain.variant], ws.exp.apps["lammps"]).argv
    flux = argv[:argv.index("singularity")]
    assert flux[-6:] == ["-o", "cpu-affinity=per-task", "-o", "pmi=simple", "-o", "pmi-simple.nomap"]
    assert argv[-4:] == ["in.reaxc.hns", "-k", "off", "-nocite"]
    assert plain.key()["options"]["shell"] == {"pmi-simple.nomap": ""}  # what the rules added is in the key


def test_flux_options_on_a_native_variant_are_excluded_with_the_reason(ws: Workspace) -> None:
    rules = "launch_rules:\n  - name: everywhere\n    match: {}\n    add: {pmi: simple}\n"
    exp = _rules_experiment(rules, "      vary: {x: [1]}\n")
    plan = expand(exp, ws.clusters, ws.variants, cluster="local", workloads=["lj"])
    assert not plan.runs
    assert {x.detail for x in plan.excluded if x.variant.startswith("lammps-")} == {
        "pmi and shell are Flux options; native variants are launched with mpiexec"}


def test_the_flux_view_is_chosen_from_the_planned_images_os_and_an_older_image_is_os_abi(ws: Workspace) -> None:
    """A view's flux and libpmi.so need a glibc at least as new as their own in the image (issue 22: a jammy view in
    an Ubuntu 20.04 image fails in MPI_Init). With no view configured the plan picks, per arch, the view with the
    newest glibc no planned image is older than: amd64's Rocky 8 image (2.28) calls for the rocky tag-8 view, which
    serves every amd64 image; arm64's Ubuntu 20.04 and 22.04 images for arm-focal (2.31)."""
    plan = expand(ws.exp, ws.clusters, ws.variants, cluster="eks-amd64")
    assert not [x for x in plan.excluded if x.reason == "os-abi"]
    [own] = plan.miniclusters["eks-amd64"]
    assert (own.view.image, own.chosen) == ("ghcr.io/converged-computing/flux-view-rocky:tag-8", True)
    assert set(own.variants) == {run.variant for run in plan.runs} >= {"intel-mpi-rocky-8-amd64",
                                                                        "mpich-ubuntu-22.04-amd64"}
    assert own.pod_image.image == "ghcr.io/rse-ops/singularity:tag-mamba" and own.pod_image.glibc is None
    [arm] = expand(ws.exp, ws.clusters, ws.variants, cluster="eks-arm64").miniclusters["eks-arm64"]
    assert arm.view.image == "ghcr.io/converged-computing/flux-view-ubuntu:arm-focal"
    assert arm.pod_image.label.endswith("(ubuntu 24.04, glibc 2.39)")

    # a view configured (the experiment's flux_view, or what a cluster that is up runs): images older than it are
    # os-abi, and the plan says which other MiniCluster serves them
    jammy = {**ws.clusters, "eks-arm64": dataclasses.replace(
        ws.clusters["eks-arm64"], flux_view="ghcr.io/converged-computing/flux-view-ubuntu:arm-jammy")}
    plan = expand(ws.exp, jammy, ws.variants, cluster="eks-arm64")
    abi = {x.variant: x.detail for x in plan.excluded if x.reason == "os-abi"}
    assert set(abi) == {"mpich-ubuntu-20.04-arm64", "openmpi-ubuntu-20.04-arm64"}
    assert all(detail.endswith("minicluster_flux_view_image=ghcr.io/converged-computing/flux-view-ubuntu:arm-focal "
                               "serves it") for detail in abi.values())
    assert {run.variant for run in plan.runs} == {"mpich-ubuntu-22.04-arm64", "openmpi-ubuntu-22.04-arm64"}
    own, other = plan.miniclusters["eks-arm64"]
    assert (own.view.image, own.chosen, set(own.variants)) == (
        "ghcr.io/converged-computing/flux-view-ubuntu:arm-jammy", False,
        {"mpich-ubuntu-22.04-arm64", "openmpi-ubuntu-22.04-arm64"})
    assert (other.view.image, set(other.variants)) == ("ghcr.io/converged-computing/flux-view-ubuntu:arm-focal",
                                                       {"mpich-ubuntu-20.04-arm64", "openmpi-ubuntu-20.04-arm64"})


def test_an_image_older_than_every_view_is_excluded_as_os_abi_and_the_rest_keep_their_view(ws: Workspace) -> None:
    """Ubuntu 18.04 (glibc 2.27) is older than every Flux view the operator publishes (the oldest, Rocky 8, is
    2.28): its points are os-abi at plan time, and the view chosen is the one that serves the others."""
    bionic = dataclasses.replace(ws.variants["mpich-ubuntu-20.04-amd64"], name="mpich-ubuntu-18.04-amd64",
                                 attributes={**ws.variants["mpich-ubuntu-20.04-amd64"].attributes,
                                             "os.version": "18.04"})
    declared = ws.exp.variants["mpich-ubuntu-20.04-amd64"]
    exp = ws.exp.model_copy(update={"variants": {**ws.exp.variants, "mpich-ubuntu-18.04-amd64": declared}})
    plan = expand(exp, ws.clusters, {**ws.variants, "mpich-ubuntu-18.04-amd64": bionic}, cluster="eks-amd64")
    abi = {x.variant: x.detail for x in plan.excluded if x.reason == "os-abi"}
    assert set(abi) == {"mpich-ubuntu-18.04-amd64"}
    assert abi["mpich-ubuntu-18.04-amd64"] == (
        "variant mpich-ubuntu-18.04-amd64 is ubuntu 18.04 (glibc 2.27), older than cluster eks-amd64's Flux view "
        "ghcr.io/converged-computing/flux-view-rocky:tag-8 (glibc 2.28), whose flux and libpmi.so would not load in "
        "it; no Flux view known here serves it")
    [own] = plan.miniclusters["eks-amd64"]
    assert own.view.image.endswith("flux-view-rocky:tag-8") and "mpich-ubuntu-18.04-amd64" not in own.variants


def test_every_known_view_and_pod_image_cites_its_source() -> None:
    assert {(v.arch, v.os) for v in compat.FLUX_VIEWS} == {(a, o) for a in ("amd64", "arm64")
                                                           for o in ("ubuntu", "rocky")}
    assert all(view.glibc and "flux-operator" in view.source for view in compat.FLUX_VIEWS)
    assert all(image.source for image in compat.POD_IMAGES.values())


def test_plan_prints_the_minicluster_configuration_that_serves_each_image(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What a user brings the cluster up with: the view and the pods' image, and the images each serves."""
    [config] = _plan_json(tmp_path / "p.sqlite", capsys)["miniclusters"]["eks-arm64"]
    assert config == {
        "flux_view": "ghcr.io/converged-computing/flux-view-ubuntu:arm-focal",
        "flux_view_os": "ghcr.io/converged-computing/flux-view-ubuntu:arm-focal (ubuntu 20.04, glibc 2.31)",
        "pod_image": "ghcr.io/converged-computing/rainbow-experiments:singularity-mamba-arm",
        "pod_image_os": "ghcr.io/converged-computing/rainbow-experiments:singularity-mamba-arm (ubuntu 24.04, "
                        "glibc 2.39)",
        "variants": ["mpich-ubuntu-20.04-arm64", "mpich-ubuntu-22.04-arm64", "openmpi-ubuntu-20.04-arm64",
                     "openmpi-ubuntu-22.04-arm64"], "chosen": True, "problem": None}
    assert main(["plan", "--cluster", "eks-arm64", "--store", str(tmp_path / "p.sqlite")]) == 0
    text = capsys.readouterr().out
    assert ("MiniCluster on eks-arm64 (chosen from the images' os.* attributes): -e minicluster_flux_view_image="
            "ghcr.io/converged-computing/flux-view-ubuntu:arm-focal -e minicluster_image="
            "ghcr.io/converged-computing/rainbow-experiments:singularity-mamba-arm") in text
    assert ("serves: mpich-ubuntu-20.04-arm64, mpich-ubuntu-22.04-arm64, openmpi-ubuntu-20.04-arm64, "
            "openmpi-ubuntu-22.04-arm64") in text


def test_plan_json_shows_the_os_abi_reason(tmp_path: Path) -> None:
    assert compat.reason_code(compat.OsAbi("x")) == "os-abi" and compat.reason_code("y") == "incompatible"
