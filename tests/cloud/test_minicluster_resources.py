"""The pods' CPU limit and the ranks each pod runs agree, or the minicluster role refuses before anything is
rendered or applied (it was a limit of 62 CPUs for 64 ranks per hpc7g node). The role runs for real, in its
render mode (no Kubernetes here), with the repository's inventory."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from planner.edges.runner import PlaybookRequest, run_playbook


def render(tmp_path: Path, arch: str, **extra: object):
    request = PlaybookRequest("tests/cloud/minicluster_render.yml", "inventories/eks", limit=f"eks-{arch}",
                              extravars={"eks_cluster_node_count": 2, "minicluster_render_dir": str(tmp_path),
                                         "minicluster_state_dir": str(tmp_path / "state"), **extra})
    return run_playbook(request)


@pytest.mark.parametrize(("arch", "ranks"), [("arm64", 64), ("amd64", 96)])
def test_the_inventory_gives_every_rank_of_a_node_a_cpu(tmp_path: Path, arch: str, ranks: int) -> None:
    done = render(tmp_path, arch)
    assert done.ok, done.failures
    minicluster = next(doc for doc in yaml.safe_load_all((tmp_path / "minicluster.yaml").read_text())
                       if doc and doc["kind"] == "MiniCluster")
    resources = minicluster["spec"]["containers"][0]["resources"]
    assert minicluster["spec"]["tasks"] // minicluster["spec"]["size"] == ranks
    assert float(resources["limits"]["cpu"]) >= ranks > float(resources["requests"]["cpu"])


@pytest.mark.parametrize("cpu", ["62", "63500m", "63.9"])
def test_a_cpu_limit_below_the_ranks_per_pod_is_refused_before_anything_is_rendered(tmp_path: Path,
                                                                                   cpu: str) -> None:
    done = render(tmp_path, "arm64", minicluster_resources={"limits": {"cpu": cpu}, "requests": {"cpu": "60"}})
    assert not done.ok
    assert any(f"minicluster_resources.limits.cpu is {cpu}, fewer CPUs than the 64 ranks each pod runs" in failure
               for failure in done.failures), done.failures
    assert not (tmp_path / "minicluster.yaml").exists()


@pytest.mark.parametrize(("arch", "shm"), [("arm64", "512Mi"), ("amd64", "768Mi")])
def test_every_pod_gets_a_memory_backed_dev_shm_sized_from_its_ranks(tmp_path: Path, arch: str, shm: str) -> None:
    """A container runtime's 64 MiB /dev/shm kills 64 MPICH ranks (tests/cloud/test_shm.py shows it with real
    MPICH); the CRD's memory-backed volume at /dev/shm (flux-operator PR 226) gives 8 MiB per rank."""
    done = render(tmp_path, arch)
    assert done.ok, done.failures
    minicluster = next(doc for doc in yaml.safe_load_all((tmp_path / "minicluster.yaml").read_text())
                       if doc and doc["kind"] == "MiniCluster")
    (container,) = minicluster["spec"]["containers"]
    assert container["volumes"] == {"dev-shm": {"emptyDir": True, "emptyDirMedium": "memory",
                                                "emptyDirSizeLimit": shm, "path": "/dev/shm"}}
    # Open MPI's shared-memory transport backs onto /dev/shm too, not the operator's disk-backed /mnt/flux
    assert container["environment"]["OMPI_MCA_btl_vader_backing_directory"] == "/dev/shm"


def test_a_memory_limit_without_room_for_dev_shm_is_refused_before_anything_is_rendered(tmp_path: Path) -> None:
    done = render(tmp_path, "arm64", minicluster_resources={"limits": {"cpu": "64", "memory": "512Mi"},
                                                            "requests": {"cpu": "62", "memory": "512Mi"}})
    assert not done.ok
    assert any("minicluster_resources.limits.memory is 512Mi, no more than the 512Mi of /dev/shm the 64 ranks"
               in failure for failure in done.failures), done.failures
    assert not (tmp_path / "minicluster.yaml").exists()
