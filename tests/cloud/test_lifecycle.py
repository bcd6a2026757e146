"""Creating and tearing down with `-e confirm=true` / `-e state=absent`, against moto_server.

eksctl is tests/cloud/fake_eksctl.py, packaged as the release archive the role downloads and verifies: it
creates the EKS cluster, its node group and the node instances in the emulator (no CloudFormation, no
VPC). There is no Kubernetes here, so the Flux Operator step fails after the cluster exists: exactly the
"creation failed half-way" case whose teardown is under test.
"""

from __future__ import annotations

from tests.cloud.conftest import REFERENCE, client

CLUSTER = "playbooks/cluster.yml"


def up_args(fake_eksctl, *extra: str) -> list[str]:
    args = [CLUSTER, "-e", "arch=arm64", "-e", "confirm=true", "-e", f"eks_cluster_eksctl_url={fake_eksctl.url}",
            "-e", f"eks_cluster_eksctl_checksum={fake_eksctl.checksum}"]
    manifest = REFERENCE / "flux-operator" / "flux-operator-arm.yaml"
    if manifest.is_file():
        args += ["-e", f"flux_operator_manifest_url=file://{manifest}"]
    return args + list(extra)


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
    assert "Cluster | Flux Operator" in played.out or "flux_operator" in played.out
    assert "What this run created was torn down." in played.out, played
    assert eksctl_calls(played) == ["create cluster", "utils write-kubeconfig", "delete cluster"]
    assert client(aws, "eks").list_clusters()["clusters"] == []
    assert running_nodes(aws) == []
    assert not (played.state_dir / "clusters" / "eks-arm64.json").exists()


def test_kept_on_failure_then_torn_down_with_state_absent(aws, playbook, fake_eksctl) -> None:
    kept = playbook(*up_args(fake_eksctl, "-e", "keep_on_failure=true"))
    assert kept.rc != 0
    assert "torn down" not in kept.out, kept
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
