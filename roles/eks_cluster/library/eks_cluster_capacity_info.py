#!/usr/bin/python
"""Read-only capacity facts an EKS cluster of one instance type depends on."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: eks_cluster_capacity_info
short_description: Capacity facts for an EKS node group (offerings, zones, vCPU quota, usage, cluster)
description:
  - Reads, and never changes, what decides whether a node group of O(instance_type) can be created in
    the region: the instance type's description, the availability zones that offer it
    (C(DescribeInstanceTypeOfferings)), the On-Demand vCPU quota that covers its family (Service Quotas,
    the applied value or else the AWS default), the vCPUs already running in that quota class, and
    whether the EKS cluster O(cluster_name) exists.
  - Chooses the zones for the cluster from that, so that the node group sits in one zone that offers
    the type (EFA and placement groups need all nodes in one subnet) and the control plane gets a second
    zone, avoiding zones EKS does not support.
  - Throttled calls are retried by botocore with the policy set in O(aws_config).
version_added: "0.1.0"
options:
  instance_type:
    description: EC2 instance type of the nodes.
    type: str
    required: true
  cluster_name:
    description: Name of the EKS cluster to look for.
    type: str
    required: true
  requested_zones:
    description: Zones to use instead of choosing them; the first one hosts the nodes.
    type: list
    elements: str
    default: []
  excluded_zone_ids:
    description: Zone IDs that EKS control planes do not support.
    type: list
    elements: str
    default: []
  vcpu_quotas:
    description:
      - On-Demand vCPU quota classes, each C(code), C(name) and the instance family C(prefixes) it covers
        (a family matches a prefix when the rest of the family starts with a digit, so C(hpc7g) is C(hpc)).
    type: list
    elements: dict
    required: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
author:
  - compat-lab
"""

EXAMPLES = r"""
- name: Capacity facts for two hpc7g nodes
  eks_cluster_capacity_info:
    region: us-east-1
    instance_type: hpc7g.16xlarge
    cluster_name: eks-arm64
    vcpu_quotas:
      - {code: L-F7808C92, name: Running On-Demand HPC instances, prefixes: [hpc]}
  register: capacity
"""

RETURN = r"""
instance_type:
  description: The instance type, or null when the region does not know it.
  returned: always
  type: dict
  contains:
    name: {description: Instance type, type: str}
    vcpus: {description: Default vCPUs, type: int}
    cores: {description: Default physical cores, type: int}
    threads_per_core: {description: Default threads per core, type: int}
    memory_mib: {description: Memory in MiB, type: int}
    architectures: {description: Supported CPU architectures, type: list}
    efa_supported: {description: Whether EFA is supported, type: bool}
offered_zones:
  description: Zone names that offer the instance type, sorted.
  returned: always
  type: list
zones:
  description: Available zones of the region, each C(name) and C(id).
  returned: always
  type: list
node_zone:
  description: The zone chosen for the nodes, or null when no usable zone offers the type.
  returned: always
  type: str
cluster_zones:
  description: The zones for the cluster (the node zone first), or an empty list.
  returned: always
  type: list
quota:
  description: The vCPU quota of the instance family, C(code), C(name), C(value) and C(source) (applied or default),
    or C(code), C(name) and C(error) when it could not be read; null when no class covers the family.
  returned: always
  type: dict
vcpus_in_use:
  description: vCPUs of pending and running instances in the same quota class.
  returned: always
  type: int
cluster:
  description: The EKS cluster, C(exists), C(status) and C(version).
  returned: always
  type: dict
"""

# Ansible modules put their documentation first, so the imports follow it.
import contextlib  # noqa: E402
import re  # noqa: E402

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code  # noqa: E402
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule  # noqa: E402

with contextlib.suppress(ImportError):  # a missing botocore is reported by AnsibleAWSModule
    from botocore.exceptions import BotoCoreError, ClientError


def quota_class(instance_type, vcpu_quotas):
    family = instance_type.split(".", 1)[0]
    best = None
    for quota in vcpu_quotas:
        for prefix in quota.get("prefixes", []):
            rest = family[len(prefix):]
            if family.startswith(prefix) and rest[:1].isdigit() and (best is None or len(prefix) > best[0]):
                best = (len(prefix), quota)
    return best[1] if best else None


def describe_types(ec2, names):
    found = {}
    names = sorted(set(names))
    for start in range(0, len(names), 100):
        try:
            pages = ec2.get_paginator("describe_instance_types").paginate(InstanceTypes=names[start:start + 100])
            for page in pages:
                for item in page["InstanceTypes"]:
                    found[item["InstanceType"]] = item
        except is_boto3_error_code("InvalidInstanceType"):
            continue
    return found


def instance_type_facts(item):
    vcpu = item.get("VCpuInfo", {})
    return {
        "name": item["InstanceType"],
        "vcpus": vcpu.get("DefaultVCpus"),
        "cores": vcpu.get("DefaultCores"),
        "threads_per_core": vcpu.get("DefaultThreadsPerCore"),
        "memory_mib": item.get("MemoryInfo", {}).get("SizeInMiB"),
        "architectures": item.get("ProcessorInfo", {}).get("SupportedArchitectures", []),
        "efa_supported": bool(item.get("NetworkInfo", {}).get("EfaSupported")),
    }


def offered_zones(ec2, instance_type):
    zones = set()
    paginator = ec2.get_paginator("describe_instance_type_offerings")
    pages = paginator.paginate(LocationType="availability-zone",
                               Filters=[{"Name": "instance-type", "Values": [instance_type]}])
    for page in pages:
        zones.update(item["Location"] for item in page["InstanceTypeOfferings"])
    return sorted(zones)


def read_quota(quotas_client, quota):
    """The applied value where the account has one, else the AWS default (as the console shows)."""
    facts = {"code": quota["code"], "name": quota.get("name", quota["code"])}
    try:
        value = quotas_client.get_service_quota(ServiceCode="ec2", QuotaCode=quota["code"])["Quota"]["Value"]
        return {**facts, "value": value, "source": "applied"}
    except is_boto3_error_code("NoSuchResourceException"):
        pass
    except (BotoCoreError, ClientError) as err:  # pylint: disable=duplicate-except
        return {**facts, "error": str(err)}
    try:
        value = quotas_client.get_aws_default_service_quota(ServiceCode="ec2", QuotaCode=quota["code"])
        return {**facts, "value": value["Quota"]["Value"], "source": "default"}
    except (BotoCoreError, ClientError) as err:
        return {**facts, "error": str(err)}


def vcpus_in_use(ec2, quota, vcpu_quotas):
    counts = {}
    paginator = ec2.get_paginator("describe_instances")
    pages = paginator.paginate(Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}])
    for page in pages:
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                if quota_class(instance["InstanceType"], vcpu_quotas) is quota:
                    counts[instance["InstanceType"]] = counts.get(instance["InstanceType"], 0) + 1
    if not counts:
        return 0
    types = describe_types(ec2, counts)
    return sum(n * types.get(t, {}).get("VCpuInfo", {}).get("DefaultVCpus", 0) for t, n in counts.items())


def cluster_facts(eks, name):
    try:
        cluster = eks.describe_cluster(name=name)["cluster"]
    except is_boto3_error_code("ResourceNotFoundException"):
        return {"exists": False, "status": None, "version": None}
    return {"exists": True, "status": cluster.get("status"), "version": cluster.get("version")}


def choose_zones(offered, zones, requested, excluded_ids):
    usable = [zone["name"] for zone in zones if zone["id"] not in excluded_ids]
    if requested:
        node_zone = requested[0] if requested[0] in offered else None
        return node_zone, (list(requested) if node_zone else [])
    candidates = [zone for zone in offered if zone in usable]
    if not candidates:
        return None, []
    node_zone = candidates[0]
    # The control plane needs a second zone; prefer one that also offers the type (room to move nodes).
    others = candidates[1:] + [zone for zone in usable if zone not in candidates]
    return node_zone, [node_zone, *others[:1]]


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            instance_type=dict(type="str", required=True),
            cluster_name=dict(type="str", required=True),
            requested_zones=dict(type="list", elements="str", default=[]),
            excluded_zone_ids=dict(type="list", elements="str", default=[]),
            vcpu_quotas=dict(type="list", elements="dict", required=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not re.match(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$", params["instance_type"]):
        module.fail_json(msg=f"{params['instance_type']!r} is not an EC2 instance type name (e.g. hpc7g.16xlarge)")
    ec2 = module.client("ec2")
    try:
        types = describe_types(ec2, [params["instance_type"]])
        zones = [{"name": zone["ZoneName"], "id": zone["ZoneId"]}
                 for zone in ec2.describe_availability_zones(
                     Filters=[{"Name": "state", "Values": ["available"]}])["AvailabilityZones"]
                 if zone.get("ZoneType", "availability-zone") == "availability-zone"]
        offered = offered_zones(ec2, params["instance_type"])
        quota = quota_class(params["instance_type"], params["vcpu_quotas"])
        quota_facts = read_quota(module.client("service-quotas"), quota) if quota else None
        in_use = vcpus_in_use(ec2, quota, params["vcpu_quotas"]) if quota else 0
        cluster = cluster_facts(module.client("eks"), params["cluster_name"])
    except (BotoCoreError, ClientError) as err:
        module.fail_json_aws(err, msg="Could not read the capacity of the region")
    node_zone, cluster_zones = choose_zones(offered, zones, params["requested_zones"], params["excluded_zone_ids"])
    item = types.get(params["instance_type"])
    module.exit_json(
        changed=False,
        instance_type=instance_type_facts(item) if item else None,
        offered_zones=offered,
        zones=zones,
        node_zone=node_zone,
        cluster_zones=cluster_zones,
        quota=quota_facts,
        vcpus_in_use=in_use,
        cluster=cluster,
    )


if __name__ == "__main__":
    main()
