"""Clusters as the planner sees them: declared attributes plus what can be detected.

The local cluster is this machine: archspec names its microarchitecture, the scheduler affinity
gives its cores, /proc/meminfo its memory, and containers can run where singularity or apptainer is
installed. An EKS cluster that is up is what its state file says (planner.edges.cloud: the nodes and
cores Flux reported at bring-up, the instance type, the pods' image directory); the experiment's values
describe it only until then, for planning, and one that disagrees with the state file is bad input.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
from pathlib import Path
from typing import Any

import archspec.cpu

from planner.core import archs
from planner.core.experiment import Cluster, Experiment
from planner.core.types import ClusterInfo
from planner.edges import cloud, slurm


@functools.cache
def _host() -> tuple[str, str, int, float | None]:
    host = archspec.cpu.host()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    memory = None
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    memory = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return str(host.family), host.name, cores, memory


def cluster_info(name: str, cluster: Cluster) -> ClusterInfo:
    if cluster.kind == "local":
        arch, micro, cores, memory = _host()
        runtime = shutil.which("singularity") or shutil.which("apptainer")
        return ClusterInfo(name, "local", arch, cluster.microarchitecture or micro, 1,
                           cluster.cores_per_node or cores, cluster.gpus_per_node, "local", cluster.price_per_hour,
                           memory, cluster.sif_dir, runtime)
    if cluster.kind == "slurm":
        return slurm_info(name, cluster)
    family = archs.family(cluster.arch or "amd64") or "x86_64"
    return ClusterInfo(name, cluster.kind, family, cluster.microarchitecture, cluster.nodes,
                       cluster.cores_per_node or 1, cluster.gpus_per_node, cluster.instance_type,
                       cluster.price_per_hour, None, cluster.sif_dir, "singularity", flux_view=cluster.flux_view)


def slurm_info(name: str, cluster: Cluster) -> ClusterInfo:
    """local-slurm: this machine's architecture; its cores and PMI flavours as the role found them at
    bring-up (`slurmd -C`, `srun --mpi=list`), the host's own until it is up; images from the images cache."""
    arch, micro, cores, memory = _host()
    up = slurm.state() or {}
    return ClusterInfo(name, "slurm", arch, cluster.microarchitecture or micro, 1,
                       cluster.cores_per_node or int(up.get("cores") or cores), cluster.gpus_per_node, "local",
                       cluster.price_per_hour, memory, cluster.sif_dir, shutil.which("ch-run"), launcher="srun",
                       runtime="charliecloud", pmi=tuple(up.get("pmi") or ()), image_dir=str(slurm.images_dir()),
                       glibc=host_glibc())


def host_glibc() -> str | None:
    """This machine's glibc version (`2.36`), as its C library reports it; None under another C library."""
    try:
        found = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        return None
    name, _, version = found.partition(" ")
    return version if name == "glibc" and version else None


def as_brought_up(exp: Experiment, name: str, info: ClusterInfo, state: dict[str, Any]) -> ClusterInfo:
    """The cluster as its state file records it; InputError where the experiment says otherwise."""
    flux = state.get("flux") or {}
    actual = {"arch": state.get("arch"), "nodes": flux.get("nodes"), "cores_per_node": state.get("cores_per_node"),
              "instance_type": state.get("instance_type"), "sif_dir": state.get("sif_dir"),
              "flux_view": (state.get("images") or {}).get("flux_view")}
    declared = exp.clusters[name]
    for key, value in actual.items():
        typed = getattr(declared, key)
        if value is not None and key in declared.model_fields_set and typed != value:
            raise exp.error(f"{typed} in the experiment, but cluster {name} has {value} (what Flux and EKS reported "
                            f"at bring-up, {state['state_file']}): remove or correct it", "clusters", name, key)
    found = {key: value for key, value in actual.items() if value is not None and key != "arch"}
    return dataclasses.replace(info, **found)


def cluster_infos(exp: Experiment, state_dir: Path | None = None) -> dict[str, ClusterInfo]:
    """Every cluster of the experiment; an EKS cluster that is up as its state file says (`as_brought_up`)."""
    infos = {}
    for name, cluster in exp.clusters.items():
        infos[name] = cluster_info(name, cluster)
        if cluster.kind == "eks" and (status := cloud.cluster_status(name, state_dir))["up"]:
            infos[name] = as_brought_up(exp, name, infos[name], status)
    return infos
