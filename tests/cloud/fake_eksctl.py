#!/usr/bin/env python3
"""A stand-in for eksctl, which cannot be downloaded here, that acts on the AWS emulator.

It understands the few commands roles/eks_cluster runs (`version`, `create cluster --config-file`,
`utils write-kubeconfig`, `delete cluster`) and does to the emulator (AWS_ENDPOINT_URL) what eksctl does
to AWS, minus CloudFormation and the VPC: the EKS cluster, its managed node group and the node
instances, and the CloudFormation stacks eksctl names `eksctl-<cluster>-cluster` and
`eksctl-<cluster>-nodegroup-<group>` (pkg/cfn/manager/api.go: `eksctl-` + cluster name + `-cluster`, and
`-nodegroup-` + the group's name), each holding a stand-in resource: what a teardown must find gone. It
checks the ClusterConfig like eksctl would refuse one (API version, kind, a node group in zones of the
config). FAKE_EKSCTL_FAIL=create makes `create cluster` fail after the cluster exists, like a node group
that never becomes ready (FAKE_EKSCTL_CREATE_SECONDS: how long it waits for the stacks first);
FAKE_EKSCTL_FAIL=delete makes `delete cluster` fail with everything left, as
eksctl does when a stack's deletion fails (its waiter: `waiter state transitioned to Failure`, the stack
DELETE_FAILED, e.g. a VPC whose ENIs are still in use); FAKE_EKSCTL_LOG appends each command line to a file;
FAKE_EKSCTL_KUBE_API is the Kubernetes API server the kubeconfig names (a loopback stand-in).

`python fake_eksctl.py package DIR` writes DIR/eksctl_<OS>_<arch>.tar.gz holding this script as
`eksctl`, and prints the archive's path and sha256 (for `eks_cluster_eksctl_url`/`_checksum`).
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import sys
import tarfile
import time
from pathlib import Path

VERSION = "0.225.0"
ACCOUNT_ROLE = "arn:aws:iam::123456789012:role/eksctl-fake"
API_SERVER = "https://127.0.0.1:1"  # loopback, nothing listens: see write_kubeconfig


def package(directory: Path) -> tuple[Path, str]:
    """The fake as a release archive, with this interpreter in its shebang."""
    machine = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), platform.machine())
    source = Path(__file__).read_text().split("\n", 1)[1]
    script = f"#!{sys.executable}\n{source}".encode()
    directory.mkdir(parents=True, exist_ok=True)
    archive = directory / f"eksctl_{platform.system()}_{machine}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("eksctl")
        info.size, info.mode = len(script), 0o755
        tar.addfile(info, io.BytesIO(script))
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest()


def flags(args: list[str]) -> dict[str, str]:
    found = {}
    for arg in args:
        if arg.startswith("--"):
            key, _, value = arg[2:].partition("=")
            found[key] = value
    return found


def fail(message: str) -> int:
    print(f"Error: {message}", file=sys.stderr)
    return 1


def not_found(name: str) -> int:
    return fail("unable to describe cluster control plane: ResourceNotFoundException: "
                f"No cluster found for name: {name}.")


def clients(region: str):
    import boto3

    return boto3.client("eks", region_name=region), boto3.client("ec2", region_name=region)


#: a stack body with one resource that costs nothing: the stacks only have to exist, as eksctl's do
STACK_TEMPLATE = '{"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}'


def stacks(region: str, name: str) -> list[str]:
    """The eksctl stacks of cluster `name` that are not deleted, node groups first."""
    import boto3

    cfn = boto3.client("cloudformation", region_name=region)
    found = [stack["StackName"] for page in cfn.get_paginator("list_stacks").paginate()
             for stack in page["StackSummaries"]
             if stack["StackName"].startswith(f"eksctl-{name}-") and stack["StackStatus"] != "DELETE_COMPLETE"]
    return sorted(found, key=lambda stack: stack.endswith("-cluster"))


def create_stack(region: str, stack: str) -> None:
    import boto3

    boto3.client("cloudformation", region_name=region).create_stack(StackName=stack, TemplateBody=STACK_TEMPLATE)


def create(config_file: str) -> int:
    import yaml

    config = yaml.safe_load(Path(config_file).read_text())
    if config.get("apiVersion") != "eksctl.io/v1alpha5" or config.get("kind") != "ClusterConfig":
        return fail(f"loading config file {config_file!r}: not an eksctl.io/v1alpha5 ClusterConfig")
    meta, zones = config["metadata"], config.get("availabilityZones", [])
    eks, ec2 = clients(meta["region"])
    print(f"[i]  eksctl version {VERSION}\n[i]  using region {meta['region']}")
    create_stack(meta["region"], f"eksctl-{meta['name']}-cluster")
    eks.create_cluster(name=meta["name"], version=str(meta.get("version", "")), roleArn=ACCOUNT_ROLE,
                       resourcesVpcConfig={"subnetIds": []}, tags=meta.get("tags", {}))
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    for group in config.get("managedNodeGroups", []):
        group_zones = group.get("availabilityZones", zones)
        if not set(group_zones) <= set(zones):
            return fail(f"node group {group['name']}: zones {group_zones} are not among {zones}")
        eks.create_nodegroup(clusterName=meta["name"], nodegroupName=group["name"], nodeRole=ACCOUNT_ROLE,
                             subnets=[f"subnet-{zone}" for zone in group_zones],
                             instanceTypes=[group["instanceType"]],
                             diskSize=group.get("volumeSize", 80), labels=group.get("labels", {}),
                             scalingConfig={"minSize": group["minSize"], "maxSize": group["maxSize"],
                                            "desiredSize": group["desiredCapacity"]})
        create_stack(meta["region"], f"eksctl-{meta['name']}-nodegroup-{group['name']}")
        tags = [{"Key": "eks:cluster-name", "Value": meta["name"]},
                {"Key": "eks:nodegroup-name", "Value": group["name"]}]
        ec2.run_instances(ImageId=image, InstanceType=group["instanceType"], MinCount=group["desiredCapacity"],
                          MaxCount=group["desiredCapacity"], Placement={"AvailabilityZone": group_zones[0]},
                          TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
    # eksctl waits for CloudFormation to create the node group's stack: minutes, here FAKE_EKSCTL_CREATE_SECONDS
    time.sleep(float(os.environ.get("FAKE_EKSCTL_CREATE_SECONDS", "0")))
    if os.environ.get("FAKE_EKSCTL_FAIL") == "create":
        return fail("waiter state transitioned to Failure (node group did not become ready)")
    print(f"[v]  EKS cluster \"{meta['name']}\" in \"{meta['region']}\" region is ready")
    return 0


def write_kubeconfig(name: str, region: str, path: str) -> int:
    eks, _ = clients(region)
    try:
        cluster = eks.describe_cluster(name=name)["cluster"]
    except eks.exceptions.ResourceNotFoundException:
        return not_found(name)
    # Unlike eksctl, not the cluster's endpoint (moto names a real *.eks.amazonaws.com host, which would be
    # resolved) nor `aws eks get-token`: there is no Kubernetes here, so the API server is the loopback
    # stand-in FAKE_EKSCTL_KUBE_API names (tests/cloud/kube_api.py), else a loopback port nothing listens
    # on, and the first Kubernetes call is refused as an unreachable cluster's would be.
    server = os.environ.get("FAKE_EKSCTL_KUBE_API") or API_SERVER
    Path(path).write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- cluster:\n    server: {server}\n  name: {cluster['name']}\n"
        f"contexts:\n- context:\n    cluster: {name}\n    user: {name}\n  name: {name}\ncurrent-context: {name}\n"
        f"users:\n- name: {name}\n  user:\n    token: fake-eksctl-{region}\n")
    return 0


def delete(name: str, region: str) -> int:
    import boto3

    eks, ec2 = clients(region)
    left = stacks(region, name)
    if os.environ.get("FAKE_EKSCTL_FAIL") == "delete":
        return fail(f'waiter state transitioned to Failure: stack "{(left or [f"eksctl-{name}-cluster"])[0]}" '
                    "is DELETE_FAILED")
    try:
        eks.describe_cluster(name=name)
    except eks.exceptions.ResourceNotFoundException:
        # as eksctl does, it says there is no cluster and stops, leaving any orphan stack (a node group's VPC
        # and NAT gateway) where it is: "eksctl can claim that the cluster doesn't exist anymore while
        # there's still an orphan CloudFormation stack" (a cleanup script's comment, found upstream)
        return not_found(name)
    cfn = boto3.client("cloudformation", region_name=region)
    for stack in left:
        cfn.delete_stack(StackName=stack)
    for group in eks.list_nodegroups(clusterName=name)["nodegroups"]:
        eks.delete_nodegroup(clusterName=name, nodegroupName=group)
    eks.delete_cluster(name=name)
    reservations = ec2.describe_instances(Filters=[{"Name": "tag:eks:cluster-name", "Values": [name]}])["Reservations"]
    ids = [instance["InstanceId"] for reservation in reservations for instance in reservation["Instances"]]
    if ids:
        ec2.terminate_instances(InstanceIds=ids)
    print(f"[v]  all cluster resources were deleted ({name})")
    return 0


#: the flags eksctl 0.225 takes for each command the role runs (the ones used here); others are refused
KNOWN_FLAGS = {
    ("create", "cluster"): {"config-file", "timeout", "write-kubeconfig"},
    ("utils", "write-kubeconfig"): {"cluster", "region", "kubeconfig"},
    ("delete", "cluster"): {"name", "region", "wait", "force", "disable-nodegroup-eviction", "timeout", "parallel"},
}


def main(argv: list[str]) -> int:
    if log := os.environ.get("FAKE_EKSCTL_LOG"):
        with open(log, "a") as handle:
            handle.write(" ".join(argv) + "\n")
    words = [arg for arg in argv if not arg.startswith("--")]
    options = flags(argv)
    unknown = sorted(set(options) - KNOWN_FLAGS.get(tuple(words[:2]), set(options)))
    if unknown:
        return fail(f"unknown flag: --{unknown[0]}")
    if words[:1] == ["version"]:
        print(VERSION)
        return 0
    if words[:2] == ["create", "cluster"] and "config-file" in options:
        return create(options["config-file"])
    if words[:2] == ["utils", "write-kubeconfig"]:
        return write_kubeconfig(options["cluster"], options["region"], options["kubeconfig"])
    if words[:2] == ["delete", "cluster"]:
        return delete(options["name"], options["region"])
    return fail(f"the fake eksctl does not know `{' '.join(argv)}`")


if __name__ == "__main__":
    if sys.argv[1:2] == ["package"]:
        path, digest = package(Path(sys.argv[2]))
        print(path, digest)
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
