"""`ansible-playbook playbooks/cluster.yml -e arch=...` as typed from the repository root: the inventory and
Ansible's own precedence decide the settings, and the planner and the playbooks agree on the state directory.

Each run is the real playbook against moto_server, stopped by the preflight's "Not confirmed" before anything
is created, or the bring-up the manifest tests share (conftest.brought_up); the plan it prints shows the settings
it used.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from planner.edges import cloud
from planner.edges.runner import PlaybookRequest, run_playbook
from tests.cloud.conftest import client

CLUSTER = "playbooks/cluster.yml"


def plan(played) -> dict[str, str]:
    """Nodes, volumes and files from the plan's lines."""
    nodes = re.search(r"(\d+) x (\S+) \((\w+), ", played.out)
    volumes = re.search(r"(\d+) x (\d+) GB (\w+) volumes", played.out)
    kubeconfig = re.search(r"kubeconfig: (\S+?)\"", played.out)
    assert nodes and volumes and kubeconfig, played
    return {"nodes": nodes[1], "type": nodes[2], "arch": nodes[3], "volume_gb": volumes[2],
            "kubeconfig": kubeconfig[1]}


def test_without_an_architecture_it_says_what_to_pass_and_fails(aws, playbook) -> None:
    played = playbook(CLUSTER)
    assert played.rc == 2, played
    assert "Choose the cluster's architecture with -e arch=arm64 or -e arch=amd64 (got no -e arch)." in played.out
    assert sum(aws.config.forwarded.values()) == 0, "no AWS call before the request is understood"
    wrong = playbook(CLUSTER, "-e", "arch=x86_64")
    assert wrong.rc == 2 and "(got x86_64)" in wrong.out, wrong


@pytest.fixture
def site_inventory(tmp_path: Path) -> Path:
    """A user's own inventory beside the repository's: a group variable and a host variable for arm64."""
    site = tmp_path / "site"
    (site / "group_vars" / "arm64").mkdir(parents=True)
    (site / "host_vars").mkdir()
    (site / "hosts.yml").write_text("all:\n  children:\n    eks:\n      children:\n        arm64:\n"
                                    "          hosts:\n            eks-arm64:\n")
    (site / "group_vars" / "arm64" / "size.yml").write_text("eks_cluster_node_count: 4\n")
    (site / "host_vars" / "eks-arm64.yml").write_text("eks_cluster_volume_size: 100\n")
    return site


def test_inventory_variables_beat_role_defaults_and_extra_vars_beat_both(brought_up, aws, playbook,
                                                                        site_inventory) -> None:
    default = plan(brought_up["arm64"]["played"])  # the plan `-e arch=arm64` printed before it brought it up
    assert (default["nodes"], default["type"], default["arch"], default["volume_gb"]) == (
        "2", "hpc7g.16xlarge", "arm64", "150"), "role defaults and group_vars/arm64"

    site = plan(playbook(CLUSTER, "-i", "inventories/eks", "-i", str(site_inventory), "-e", "arch=arm64"))
    assert (site["nodes"], site["volume_gb"]) == ("4", "100"), "a group variable and a host variable win"
    assert site["type"] == "hpc7g.16xlarge", "the repository's group_vars/arm64 still apply"

    extra = plan(playbook(CLUSTER, "-i", "inventories/eks", "-i", str(site_inventory), "-e", "arch=arm64",
                          "-e", "eks_cluster_node_count=5", "-e", "eks_cluster_volume_size=120"))
    assert (extra["nodes"], extra["volume_gb"]) == ("5", "120"), "-e wins over group and host variables"
    assert client(aws, "eks").list_clusters()["clusters"] == []


@pytest.mark.parametrize("rule", ["xdg", "home"])
def test_a_hand_run_playbook_uses_the_planners_state_dir(aws, playbook, tmp_path: Path, rule: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"COMPAT_LAB_STATE_DIR": "", "HOME": str(tmp_path / "home"),
           "XDG_STATE_HOME": str(tmp_path / "xdg") if rule == "xdg" else ""}
    played = playbook(CLUSTER, "-e", "arch=arm64", env=env)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    expected = cloud.state_file("eks-arm64").with_suffix(".kubeconfig")
    assert expected.is_relative_to(tmp_path / ("xdg" if rule == "xdg" else "home/.local/state"))
    assert plan(played)["kubeconfig"] == str(expected)


def test_sweep_reaches_the_broker_recorded_where_the_planner_looks(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """playbooks/sweep.yml's first play, through minicluster's `connect` entry point, with the planner's values."""
    monkeypatch.setenv("COMPAT_LAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    # No run and no broker play: only the first play runs (the second has no hosts).
    extravars = {**cloud.sweep_vars("eks-arm64"), "run_matrix_launcher": "flux", "run_matrix_runs": [],
                 "sweep_hosts": "no_such_group"}
    request = PlaybookRequest("playbooks/sweep.yml", "inventories/eks", extravars)

    refused = run_playbook(request)
    assert not refused.ok
    assert any(f"Cluster eks-arm64 is not up (no {tmp_path}/state/clusters/eks-arm64.json)" in failure
               for failure in refused.failures), refused.failures

    state = cloud.state_file("eks-arm64")
    state.parent.mkdir(parents=True)
    state.write_text('{"name": "eks-arm64", "sif_dir": "/tmp/sif", "lead_broker": {"pod": "compat-lab-0-x", '
                     '"namespace": "compat-lab", "container": "compat-lab", "kubeconfig": "", "context": ""}}')
    reached = run_playbook(request)
    assert reached.ok, reached.failures
    assert cloud.require_up("eks-arm64")["lead_broker"]["pod"] == "compat-lab-0-x"
