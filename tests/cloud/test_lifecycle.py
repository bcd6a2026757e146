"""Creating and tearing down with `-e confirm=true` / `-e state=absent`, against moto_server.

eksctl is tests/cloud/fake_eksctl.py, packaged as the release archive the role downloads and verifies: it
creates the EKS cluster, its node group and the node instances in the emulator (no CloudFormation, no
VPC). There is no Kubernetes here: the kubeconfig it writes names a loopback port nothing listens on, so
the Flux Operator's apply is refused after the cluster exists, exactly the "creation failed half-way"
case whose teardown (roles/eks_lifecycle) is under test. The operator's manifest is the vendored CRD,
downloaded from a file:// URL and checksum-verified like the upstream one.
"""

from __future__ import annotations

import pytest

from tests.cloud.conftest import client, eksctl_args, operator_manifest_args

CLUSTER = "playbooks/cluster.yml"
# The apply is refused by the kubeconfig's loopback API server: the error names it, nothing else is reached.
REFUSED = "HTTPSConnectionPool(host='127.0.0.1', port=1)"


def up_args(fake_eksctl, *extra: str) -> list[str]:
    return [CLUSTER, "-e", "arch=arm64", "-e", "confirm=true", *eksctl_args(fake_eksctl),
            *operator_manifest_args("arm64"), *extra]


def final_error(played) -> str:
    """The message the play ends with (the last fatal line)."""
    return [line for line in played.out.splitlines() if line.startswith("fatal:")][-1]


def running_nodes(aws) -> list[dict]:
    reservations = client(aws, "ec2").describe_instances(
        Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}])["Reservations"]
    return [instance for reservation in reservations for instance in reservation["Instances"]]


def eksctl_calls(played) -> list[str]:
    log = played.state_dir.parent / "eksctl.log"
    return [line.split(" --", 1)[0] for line in log.read_text().splitlines()] if log.exists() else []


def test_eksctl_failing_half_way_is_torn_down(aws, playbook, fake_eksctl) -> None:
    played = playbook(*up_args(fake_eksctl), env={"FAKE_EKSCTL_FAIL": "create"})
    assert played.rc != 0
    assert 'Creating eks-arm64 failed at "create | Create the cluster and its nodes with eksctl"' in played.out, played
    assert "node group did not become ready" in played.out
    assert "It was torn down again." in played.out
    assert eksctl_calls(played) == ["create cluster", "delete cluster"]
    assert client(aws, "eks").list_clusters()["clusters"] == []
    assert running_nodes(aws) == []
    assert not (played.state_dir / "clusters" / "eks-arm64.kubeconfig").exists()


def test_a_later_failure_tears_down_what_this_run_created(aws, playbook, fake_eksctl) -> None:
    played = playbook(*up_args(fake_eksctl))
    assert played.rc != 0
    error = final_error(played)
    assert '"msg": "apply | Apply the Flux Operator manifest: ' in error, played
    assert REFUSED in error
    assert error.endswith('What this run created was torn down."}'), error
    assert "Could not delete the MiniCluster or the operator" in played.out, "the API is gone: go on to the cluster"
    assert eksctl_calls(played) == ["create cluster", "utils write-kubeconfig", "delete cluster"]
    assert client(aws, "eks").list_clusters()["clusters"] == []
    assert running_nodes(aws) == []
    assert not (played.state_dir / "clusters" / "eks-arm64.json").exists()


def test_kept_on_failure_then_torn_down_with_state_absent(aws, playbook, fake_eksctl) -> None:
    kept = playbook(*up_args(fake_eksctl, "-e", "keep_on_failure=true"))
    assert kept.rc != 0
    error = final_error(kept)
    assert '"msg": "apply | Apply the Flux Operator manifest: ' in error, kept
    assert "torn down" not in error
    assert eksctl_calls(kept) == ["create cluster", "utils write-kubeconfig"]
    assert client(aws, "eks").list_clusters()["clusters"] == ["eks-arm64"]
    assert len(running_nodes(aws)) == 2
    kubeconfig = kept.state_dir / "clusters" / "eks-arm64.kubeconfig"
    assert oct(kubeconfig.stat().st_mode & 0o777) == "0o600"

    gone = playbook(CLUSTER, "-e", "arch=arm64", "-e", "state=absent")
    assert gone.rc == 0, gone
    assert eksctl_calls(gone)[-1] == "delete cluster"
    assert client(aws, "eks").list_clusters()["clusters"] == []
    assert running_nodes(aws) == []
    assert not kubeconfig.exists()


def recorded_up(state_dir) -> tuple:
    """A cluster recorded as up: its state file and kubeconfig, as a bring-up leaves them."""
    clusters = state_dir / "clusters"
    clusters.mkdir(parents=True)
    state = clusters / "eks-arm64.json"
    state.write_text('{"name": "eks-arm64", "sif_dir": "/tmp/sif", "lead_broker": {}}')
    kubeconfig = clusters / "eks-arm64.kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    return state, kubeconfig


def test_a_teardown_with_expired_credentials_touches_nothing(aws, playbook, tmp_path) -> None:
    state, kubeconfig = recorded_up(tmp_path / "state")
    aws.config.expired = True
    gone = playbook(CLUSTER, "-e", "arch=arm64", "-e", "state=absent")
    assert gone.rc != 0
    assert "Failed to retrieve caller identity" in final_error(gone), gone
    assert "The security token included in the request is expired" in gone.out
    assert state.exists() and kubeconfig.exists(), "the cluster is still recorded as up, as it is"
    assert eksctl_calls(gone) == []


@pytest.mark.parametrize("state", ["present", "absent"])
def test_a_mistyped_region_is_refused_before_any_call(aws, playbook, fake_eksctl, tmp_path, state: str) -> None:
    recorded, _ = recorded_up(tmp_path / "state")
    played = playbook(*up_args(fake_eksctl, "-e", f"state={state}", "-e", "eks_cluster_region=us-eats-1"))
    assert played.rc != 0
    error = final_error(played)
    assert "us-eats-1 is not an AWS region with EKS (eks_cluster_region); regions botocore knows: " in error, played
    assert "us-east-1, us-east-2" in error
    assert sum(aws.config.forwarded.values()) == 0, "no AWS call"
    assert recorded.exists() and eksctl_calls(played) == []
