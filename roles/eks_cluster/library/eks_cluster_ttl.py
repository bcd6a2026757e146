#!/usr/bin/python
"""A cluster's time-to-live, enforced by AWS itself: EventBridge Scheduler deletes its eksctl stacks."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: eks_cluster_ttl
short_description: Tear an eksctl cluster down at a given time, whether or not the machine that made it is there
description:
  - With O(state=present), creates (or moves) two one-time EventBridge Scheduler schedules that call
    CloudFormation C(DeleteStack) (the scheduler's universal target
    C(arn:aws:scheduler:::aws-sdk:cloudformation:deleteStack)) on the cluster's eksctl stacks: the node
    group's stack at O(expires_at), the cluster's stack (control plane, VPC, NAT gateway) O(cluster_delay)
    minutes later, once the node group's stack no longer imports its outputs. Each schedule deletes itself
    after it ran. They run as an IAM role this module creates, which the scheduler may assume and which may
    delete what the stacks hold (CloudFormation deletes with the caller's permissions: eksctl's stacks have
    no service role).
  - With O(state=absent), deletes both schedules and the role. Nothing else is touched.
version_added: "0.1.0"
options:
  cluster_name:
    description: The cluster; its stacks are C(eksctl-<name>-cluster) and C(eksctl-<name>-nodegroup-<nodegroup>).
    type: str
    required: true
  nodegroup:
    description: The name of the cluster's managed node group in its ClusterConfig.
    type: str
    required: true
  expires_at:
    description: When the node group goes, in UTC, C(YYYY-MM-DDTHH:MM:SS). Required with O(state=present).
    type: str
  cluster_delay:
    description: Minutes between the node group's deletion and the cluster stack's.
    type: int
    default: 30
  state:
    description: Whether the schedules exist.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
author:
  - compat-lab
"""

EXAMPLES = r"""
- name: Tear eks-arm64 down in 4 hours
  eks_cluster_ttl:
    region: us-east-1
    cluster_name: eks-arm64
    nodegroup: eks-arm64-nodes
    expires_at: "2026-12-07T18:00:00"
"""

RETURN = r"""
schedules:
  description: The schedules, each C(name), C(at) (UTC) and C(stack) it deletes.
  returned: always
  type: list
role_arn:
  description: The role the schedules run as (present only).
  returned: when state is present
  type: str
"""

import contextlib  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code  # noqa: E402
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule  # noqa: E402

with contextlib.suppress(ImportError):  # a missing botocore is reported by AnsibleAWSModule
    from botocore.exceptions import BotoCoreError, ClientError

TARGET = "arn:aws:scheduler:::aws-sdk:cloudformation:deleteStack"
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"},
                                                  "Action": "sts:AssumeRole"}]}
# What deleting eksctl's stacks deletes: the node group (EKS, its Auto Scaling group and launch template),
# the control plane, IAM roles and instance profiles, the VPC with its subnets, gateways and routes.
POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
    "cloudformation:DeleteStack", "cloudformation:DescribeStacks", "eks:*", "ec2:*", "autoscaling:*",
    "iam:DeleteRole", "iam:DeleteRolePolicy", "iam:DetachRolePolicy", "iam:GetRole", "iam:PassRole",
    "iam:DeleteInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteOpenIDConnectProvider",
    "ssm:GetParameter", "logs:DeleteLogGroup"]}]}


def names(cluster, nodegroup):
    base = f"compat-lab-ttl-{cluster}"
    return base, [(f"{base}-nodes", f"eksctl-{cluster}-nodegroup-{nodegroup}", 0),
                  (f"{base}-cluster", f"eksctl-{cluster}-cluster", 1)]


def ensure_role(iam, role):
    try:
        arn = iam.get_role(RoleName=role)["Role"]["Arn"]
    except is_boto3_error_code("NoSuchEntity"):
        arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST),
                              Description="compat-lab: deletes an EKS cluster's eksctl stacks at its time-to-live",
                              Tags=[{"Key": "project", "Value": "compat-lab"}])["Role"]["Arn"]
    iam.put_role_policy(RoleName=role, PolicyName="delete-eksctl-stacks", PolicyDocument=json.dumps(POLICY))
    return arn


def remove_role(iam, role):
    with contextlib.suppress(iam.exceptions.NoSuchEntityException):
        iam.delete_role_policy(RoleName=role, PolicyName="delete-eksctl-stacks")
    with contextlib.suppress(iam.exceptions.NoSuchEntityException):
        iam.delete_role(RoleName=role)


def main():
    module = AnsibleAWSModule(
        argument_spec={"cluster_name": {"type": "str", "required": True},
                       "nodegroup": {"type": "str", "required": True},
                       "expires_at": {"type": "str"},
                       "cluster_delay": {"type": "int", "default": 30},
                       "state": {"type": "str", "choices": ["present", "absent"], "default": "present"}},
        required_if=[("state", "present", ["expires_at"])],
        supports_check_mode=True,
    )
    params = module.params
    role, schedules = names(params["cluster_name"], params["nodegroup"])
    scheduler, iam = module.client("scheduler"), module.client("iam")
    found = []
    try:
        if params["state"] == "absent":
            for name, stack, _ in schedules:
                with contextlib.suppress(scheduler.exceptions.ResourceNotFoundException):
                    scheduler.get_schedule(Name=name)
                    found.append({"name": name, "stack": stack})
                    if not module.check_mode:
                        scheduler.delete_schedule(Name=name)
            if not module.check_mode:
                remove_role(iam, role)
            module.exit_json(changed=bool(found), schedules=found)
        try:
            first = datetime.datetime.strptime(params["expires_at"], "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            module.fail_json(msg=f"expires_at {params['expires_at']!r} is not YYYY-MM-DDTHH:MM:SS (UTC)")
        if module.check_mode:
            module.exit_json(changed=True, schedules=[])
        arn = ensure_role(iam, role)
        for name, stack, step in schedules:
            at = (first + datetime.timedelta(minutes=step * params["cluster_delay"])).strftime("%Y-%m-%dT%H:%M:%S")
            spec = {"Name": name, "ScheduleExpression": f"at({at})", "ScheduleExpressionTimezone": "UTC",
                    "FlexibleTimeWindow": {"Mode": "OFF"}, "ActionAfterCompletion": "DELETE",
                    "Description": f"compat-lab: time-to-live of EKS cluster {params['cluster_name']}",
                    "Target": {"Arn": TARGET, "RoleArn": arn, "Input": json.dumps({"StackName": stack})}}
            try:
                scheduler.get_schedule(Name=name)
                scheduler.update_schedule(**spec)
            except scheduler.exceptions.ResourceNotFoundException:
                scheduler.create_schedule(**spec)
            found.append({"name": name, "at": at, "stack": stack})
    except (BotoCoreError, ClientError) as err:
        module.fail_json_aws(err, msg=f"Could not set the time-to-live of cluster {params['cluster_name']}")
    module.exit_json(changed=True, schedules=found, role_arn=arn)


if __name__ == "__main__":
    main()
