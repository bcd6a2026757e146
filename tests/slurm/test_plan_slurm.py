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
