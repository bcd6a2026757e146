"""`ansible-playbook playbooks/cluster.yml -e arch=...` before anything is created: the preflight.

Everything here runs for real against moto_server on loopback (STS caller identity, EC2 regions, zones,
instance types and offerings, instances, EKS). Two things come from tests/cloud/aws_front.py in front of
moto, because moto has neither: the EC2 vCPU quota (seeded at 512 unless a test says otherwise) and
throttling (the front answers the next N calls of an action with AWS's throttling error, then forwards).
"""

from __future__ import annotations

import re

from tests.cloud.conftest import HPC_QUOTA, client

CLUSTER = "playbooks/cluster.yml"


def plan_lines(out: str) -> str:
    return "\n".join(line for line in out.splitlines() if line.strip().startswith('"'))


def assert_nothing_created(aws, played) -> None:
    assert client(aws, "eks").list_clusters()["clusters"] == []
    assert client(aws, "ec2").describe_instances()["Reservations"] == []
    assert not (played.state_dir / "bin").exists(), "eksctl must not be installed before the cost is confirmed"


def test_without_confirm_shows_plan_and_cost_then_stops(aws, playbook) -> None:
    secret = "sEcReT-never-logged-0123456789"
    played = playbook(CLUSTER, "-e", "arch=arm64", "-vvv", env={"AWS_SECRET_ACCESS_KEY": secret})
    plan = plan_lines(played.out)
    assert played.rc != 0, played
    assert "Plan: create EKS cluster eks-arm64 in us-east-1 (account 123456789012" in plan, played
    assert "2 x hpc7g.16xlarge (arm64, 64 vCPUs, 128.0 GiB each) in us-east-1c" in plan
    assert "control plane in us-east-1c, us-east-1a" in plan
    assert f"vCPU quota {HPC_QUOTA} (Running On-Demand HPC instances): 128 needed, 512 allowed, 0 in use" in plan
    # 2 x 1.6832 + 0.10 + 2 x 150 GB x 0.08 / 730 h
    assert "Estimated cost: $3.50/hour (nodes $3.37, control plane $0.10, volumes $0.03), about $84/day" in plan
    assert "Not confirmed: nothing was created. eks-arm64 would cost about $3.50 per hour" in played.out
    assert "-e confirm=true" in played.out
    assert secret not in played.out
    assert_nothing_created(aws, played)


def test_instance_type_not_offered_in_region(aws, playbook) -> None:
    played = playbook(CLUSTER, "-e", "arch=arm64", "-e", "eks_cluster_region=us-east-2", "-e", "confirm=true")
    assert played.rc != 0
    assert "hpc7g.16xlarge is not offered in any availability zone of us-east-2" in played.out, played
    assert_nothing_created(aws, played)


def test_quota_too_low_counting_running_instances(aws, playbook) -> None:
    aws.config.quotas[HPC_QUOTA] = 160
    ec2 = client(aws, "ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.run_instances(ImageId=image, InstanceType="hpc7g.16xlarge", MinCount=1, MaxCount=1)
    played = playbook(CLUSTER, "-e", "arch=arm64", "-e", "confirm=true")
    assert played.rc != 0
    assert ('vCPU quota too low: 2 x hpc7g.16xlarge need 128 vCPUs of "Running On-Demand HPC instances" '
            f"({HPC_QUOTA}), the quota is 160 and 64 are in use") in played.out, played
    assert client(aws, "eks").list_clusters()["clusters"] == []


def test_unsupported_kubernetes_version(aws, playbook) -> None:
    played = playbook(CLUSTER, "-e", "arch=arm64", "-e", "eks_cluster_kubernetes_version=1.27")
    assert played.rc != 0
    assert "Kubernetes 1.27 is not in EKS standard support; use one of 1.33, 1.34, 1.35" in played.out, played


def test_throttled_calls_are_retried(aws, playbook) -> None:
    """The front throttles the offerings call 3 times and the caller identity twice: the plan still comes."""
    aws.config.throttle.update({"DescribeInstanceTypeOfferings": 3, "GetCallerIdentity": 2})
    played = playbook(CLUSTER, "-e", "arch=arm64")
    assert "Plan: create EKS cluster eks-arm64" in plan_lines(played.out), played
    assert aws.config.throttled["DescribeInstanceTypeOfferings"] == 3
    assert aws.config.throttled["GetCallerIdentity"] == 2
    assert aws.config.forwarded["DescribeInstanceTypeOfferings"] == 1


def test_throttling_beyond_the_retries_fails_clearly(aws, playbook) -> None:
    """With 2 retries, a call throttled 3 times in a row fails the preflight, naming AWS's error."""
    aws.config.throttle["DescribeInstanceTypeOfferings"] = 100
    played = playbook(CLUSTER, "-e", "arch=arm64", "-e", "eks_cluster_aws_retries=2")
    assert played.rc != 0
    assert "Could not read the capacity of the region" in played.out, played
    assert "RequestLimitExceeded" in played.out
    assert aws.config.throttled["DescribeInstanceTypeOfferings"] == 3
    assert aws.config.forwarded["DescribeInstanceTypeOfferings"] == 0


def test_check_mode_plans_amd64_and_changes_nothing(aws, playbook) -> None:
    """--check against the test inventory: the real read-only preflight, the plan, and no change at all."""
    played = playbook(CLUSTER, "--check", "-e", "arch=amd64", "-e", "confirm=true")
    plan = plan_lines(played.out)
    assert played.rc == 0, played
    assert "Plan: create EKS cluster eks-amd64 in us-east-2" in plan
    assert "2 x hpc6a.48xlarge (amd64, 96 vCPUs, 384.0 GiB each) in us-east-2b" in plan
    assert "Estimated cost: $5.89/hour" in plan
    assert re.search(r"ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0", played.out)
    assert client(aws, "eks", "us-east-2").list_clusters()["clusters"] == []
    assert not played.state_dir.exists(), "check mode must not write anything"
