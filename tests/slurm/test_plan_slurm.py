"""Planning for local-slurm (pure: no daemons): the launch the metadata decides, and what it rules out."""

from __future__ import annotations

import dataclasses
import json

from planner.core import compat
from planner.core.experiment import Options, load_experiment
from planner.core.launch import render
from planner.core.plan import expand
from planner.core.types import ClusterInfo, VariantInfo
from tests.conftest import REPO, planner

EXP = load_experiment(REPO / "experiments" / "lammps.yaml")
SLURM = ClusterInfo("local-slurm", "slurm", "x86_64", "zen2", 1, 2, container_runtime="/usr/bin/ch-run",
                    launcher="srun", runtime="charliecloud", pmi=("cray_shasta", "none", "pmi2", "pmix", "pmix_v4"),
                    image_dir="/cache/images")


def _variants(**mpi: str) -> dict[str, VariantInfo]:
    return {name: VariantInfo(name, "container", "lammps", {"mpi.implementation": impl, "io.archspec.cpu.target":
                                                           "x86_64", "hardware.gpu.available": "no",
                                                           "lammps.packages": "KSPACE MOLECULE RIGID"},
                              image=EXP.variants[name].image)
            for name, impl in mpi.items()}


VARIANTS = _variants(**{"lammps-debian12-openmpi": "openmpi", "lammps-debian12-mpich": "mpich"})


def _plan(cluster: ClusterInfo = SLURM) -> object:
    clusters = {"local-slurm": cluster}
    return expand(EXP, clusters, VARIANTS, cluster="local-slurm", workloads=["lj"],
                  only_variants=list(VARIANTS), repeats=1)


def test_the_metadata_decides_pmi_and_join() -> None:
    plan = _plan()
    commands = {(run.variant, run.options.runtime_args): render(run, SLURM, VARIANTS[run.variant], EXP.apps["lammps"])
                for run in plan.runs}
    openmpi = commands[("lammps-debian12-openmpi", ())]
    assert openmpi.argv[:6] == ["srun", "--mpi=pmix", "-n", "2", "--cpu-bind=cores", "-J"]
    assert openmpi.argv[6] == openmpi.job and openmpi.scheduler == "srun"
    assert openmpi.argv[7:] == ["-t", "5:00", "ch-run", "-c", "/opt/lammps/bench",
                                "/cache/images/lammps-debian12-openmpi", "--", "lmp", "-v", "x", "1", "-v", "y", "1",
                                "-v", "z", "1", "-in", "in.lj", "-nocite"]
    assert "--join" in commands[("lammps-debian12-openmpi", ("--join",))].argv  # the other launch mode
    # MPICH: PMI-2, and --join whatever the point asked (both modes are then one run)
    mpich = [launch for (variant, _), launch in commands.items() if variant == "lammps-debian12-mpich"]
    assert len(mpich) == 1 and mpich[0].argv[:2] == ["srun", "--mpi=pmi2"] and "--join" in mpich[0].argv
    fired = {rule.name for run in plan.runs for rule in run.rules}
    assert fired == {"openmpi-slurm-pmix", "mpich-slurm-pmi2", "mpich-charliecloud-join"}


def test_an_mpi_without_a_pmi_flavour_the_cluster_offers_is_excluded_with_that_reason() -> None:
    """A Slurm without the pmix plugin (libpmix not installed: `srun --mpi=list` has no pmix)."""
    plan = _plan(dataclasses.replace(SLURM, pmi=("cray_shasta", "none", "pmi2")))
    excluded = {x.variant: x.detail for x in plan.excluded}
    assert excluded["lammps-debian12-openmpi"] == ("PMI pmix is not offered on cluster local-slurm: its srun offers "
                                                   "cray_shasta, none, pmi2")
    assert {run.variant for run in plan.runs} == {"lammps-debian12-mpich"}


def test_pulled_images_are_not_local_slurm_s_and_built_ones_not_eks_s() -> None:
    pulled = _variants(**{"mpich-ubuntu-22.04-amd64": "mpich"})["mpich-ubuntu-22.04-amd64"]
    lj, options = EXP.apps["lammps"].workloads["lj"], Options(tasks=2)
    assert "runs the images built on this machine" in compat.check(SLURM, pulled, "lj", lj, options)
    eks = ClusterInfo("eks-amd64", "eks", "x86_64", "zen3", 2, 96)
    assert "in this machine's registry, which eks-amd64 cannot reach" in \
        compat.check(eks, VARIANTS["lammps-debian12-mpich"], "lj", lj, options)


def test_clusters_lists_every_cluster_with_its_launcher_and_runtime() -> None:
    done = planner("clusters", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert list(rows) == list(EXP.clusters)
    assert (rows["local"]["launcher"], rows["local"]["runtime"]) == ("mpiexec", "none")
    assert (rows["local-slurm"]["launcher"], rows["local-slurm"]["runtime"]) == ("srun", "charliecloud")
    assert (rows["eks-arm64"]["launcher"], rows["eks-arm64"]["runtime"]) == ("flux", "singularity")
    assert rows["eks-arm64"]["cores_per_node"] == 64 and rows["eks-arm64"]["up"] is False
    bad = planner("clusters", "-e", "/no/such.yaml")
    assert bad.returncode == 2 and "/no/such.yaml" in bad.stderr


def test_a_host_library_bound_into_an_older_glibc_is_excluded_as_os_abi() -> None:
    """The nodes' glibc (detected) against the image's artifact `os.glibc`, for binds the loader reads from."""
    slurm = dataclasses.replace(SLURM, glibc="2.36")
    lj = EXP.apps["lammps"].workloads["lj"]
    host = {"bind": ("/usr/lib/host-mpi:/usr/local/lib",), "env": {"LD_LIBRARY_PATH": "/usr/local/lib"}}
    old, same = (dataclasses.replace(VARIANTS["lammps-debian12-openmpi"], attributes={
        **VARIANTS["lammps-debian12-openmpi"].attributes, "os.glibc": version}) for version in ("2.31", "2.36"))
    why = compat.check(slurm, old, "lj", lj, Options(tasks=2, **host))
    assert compat.reason_code(why) == "os-abi"
    assert "has glibc 2.31 (os.glibc), older than glibc 2.36 of cluster local-slurm's nodes" in why
    assert compat.check(slurm, same, "lj", lj, Options(tasks=2, **host)) is None
    # a bind the loader does not read from (data), or nothing known of the nodes' glibc: nothing to judge
    assert compat.check(slurm, old, "lj", lj, Options(tasks=2, bind=host["bind"])) is None
    assert compat.check(SLURM, old, "lj", lj, Options(tasks=2, **host)) is None


def test_substitutions_of_a_container_input_are_staged_here_and_said_not_applied_where_images_are_pulled() -> None:
    mpich = _variants(**{"lammps-debian12-mpich": "mpich"})
    mpich["lammps-debian12-mpich"].attributes["lammps.packages"] = "REAXFF"
    [run] = expand(EXP, {"local-slurm": SLURM}, mpich, cluster="local-slurm", workloads=["reaxff"],
                   only_variants=list(mpich), repeats=1).runs
    argv = render(run, SLURM, mpich[run.variant], EXP.apps["lammps"]).argv
    stage = f"/cache/images/.inputs/lammps-debian12-mpich-reaxff-{run.input}:/srv"
    assert argv[argv.index("-b") + 1] == stage and argv[-3:] == ["-in", "/srv/in.reaxc.hns", "-nocite"]
    assert not run.warnings
    eks = ClusterInfo("eks-amd64", "eks", "x86_64", "zen3", 2, 96, container_runtime="singularity")
    pulled = _variants(**{"mpich-ubuntu-22.04-amd64": "mpich"})
    pulled["mpich-ubuntu-22.04-amd64"].attributes["lammps.packages"] = "REAXFF"
    runs = expand(EXP, {"eks-amd64": eks}, pulled, cluster="eks-amd64", workloads=["reaxff"],
                  only_variants=list(pulled), repeats=1).runs
    assert runs and all("substitutions are not applied on eks-amd64" in " ".join(run.warnings) for run in runs)
    assert "-in in.reaxc.hns" in " ".join(render(runs[0], eks, pulled[runs[0].variant], EXP.apps["lammps"]).argv)
