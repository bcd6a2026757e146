#!/usr/bin/python
"""What of an EKS cluster made by eksctl is still there (and billing), read-only."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: eks_cluster_leftovers_info
short_description: What is left of an eksctl cluster, whatever EKS says about the cluster itself
description:
  - Reads, and never changes, what a teardown must find gone before it may forget a cluster: the EKS
    cluster O(cluster_name), the EC2 instances tagged C(eks:cluster-name=<name>) that are pending or running,
    and the CloudFormation stacks eksctl names C(eksctl-<name>-*) (C(-cluster), C(-nodegroup-<group>),
    C(-addon-...)) that are not deleted. The stacks are listed even when the cluster is gone: eksctl can
    say "No cluster found" while a stack holding a VPC and a NAT gateway is left.
version_added: "0.1.0"
options:
  cluster_name:
    description: Name of the cluster (and of its eksctl stacks).
    type: str
    required: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
author:
  - compat-lab
"""

EXAMPLES = r"""
- name: What is left of eks-arm64
  eks_cluster_leftovers_info:
    region: us-east-1
    cluster_name: eks-arm64
  register: left
"""

RETURN = r"""
cluster:
  description: The EKS cluster, C(exists) and C(status).
  returned: always
  type: dict
instances:
  description: Pending or running instances of the cluster, each C(id) and C(type).
  returned: always
  type: list
stacks:
  description: The cluster's eksctl stacks not deleted, each C(name) and C(status); the cluster stack last
    (the others import its outputs, so it is deleted last).
  returned: always
  type: list
"""

import contextlib  # noqa: E402

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code  # noqa: E402
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule  # noqa: E402

with contextlib.suppress(ImportError):  # a missing botocore is reported by AnsibleAWSModule
    from botocore.exceptions import BotoCoreError, ClientError


def cluster_facts(eks, name):
    try:
        cluster = eks.describe_cluster(name=name)["cluster"]
    except is_boto3_error_code("ResourceNotFoundException"):
        return {"exists": False, "status": None}
    return {"exists": True, "status": cluster.get("status")}


def instances(ec2, name):
    pages = ec2.get_paginator("describe_instances").paginate(Filters=[
        {"Name": "tag:eks:cluster-name", "Values": [name]},
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "shutting-down"]}])
    return [{"id": item["InstanceId"], "type": item["InstanceType"]}
            for page in pages for reservation in page["Reservations"] for item in reservation["Instances"]]


def stacks(cfn, name):
    prefix = f"eksctl-{name}-"
    found = [{"name": item["StackName"], "status": item["StackStatus"]}
             for page in cfn.get_paginator("list_stacks").paginate() for item in page["StackSummaries"]
             if item["StackName"].startswith(prefix) and item["StackStatus"] != "DELETE_COMPLETE"]
    return sorted(found, key=lambda stack: (stack["name"] == f"{prefix}cluster", stack["name"]))


def main():
    module = AnsibleAWSModule(argument_spec={"cluster_name": {"type": "str", "required": True}},
                              supports_check_mode=True)
    name = module.params["cluster_name"]
    try:
        facts = {"cluster": cluster_facts(module.client("eks"), name),
                 "instances": instances(module.client("ec2"), name),
                 "stacks": stacks(module.client("cloudformation"), name)}
    except (BotoCoreError, ClientError) as err:
        module.fail_json_aws(err, msg=f"Could not read what is left of cluster {name}")
    module.exit_json(changed=False, **facts)


if __name__ == "__main__":
    main()
