"""Clusters as the planner sees them: declared attributes plus what can be detected.

The local cluster is this machine: archspec names its microarchitecture, the scheduler affinity
gives its cores, /proc/meminfo its memory, and containers can run where singularity or apptainer is
installed. EKS clusters are described by the experiment (instance type, nodes, cores per node).
"""

from __future__ import annotations

import functools
import os
import shutil

import archspec.cpu

from planner.core import archs
from planner.core.experiment import Cluster, Experiment
from planner.core.types import ClusterInfo


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
    family = archs.family(cluster.arch or "amd64") or "x86_64"
    return ClusterInfo(name, cluster.kind, family, cluster.microarchitecture, cluster.nodes,
                       cluster.cores_per_node or 1, cluster.gpus_per_node, cluster.instance_type,
                       cluster.price_per_hour, None, cluster.sif_dir, "singularity")


def cluster_infos(exp: Experiment) -> dict[str, ClusterInfo]:
    return {name: cluster_info(name, cluster) for name, cluster in exp.clusters.items()}
