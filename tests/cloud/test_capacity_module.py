"""The capacity module's own decisions, on data: quota classes, zone choice, quota fallbacks.

The module runs for real against moto in test_preflight.py; here its pure parts are called directly, and
Service Quotas answers come from botocore's Stubber (moto has no EC2 quotas).
"""

from __future__ import annotations

import importlib.util

import boto3
import pytest
from botocore.stub import Stubber

from tests.conftest import REPO

SPEC = importlib.util.spec_from_file_location(
    "eks_cluster_capacity_info", REPO / "roles" / "eks_cluster" / "library" / "eks_cluster_capacity_info.py")
capacity = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(capacity)

QUOTAS = [
    {"code": "L-F7808C92", "name": "Running On-Demand HPC instances", "prefixes": ["hpc"]},
    {"code": "L-DB2E81BA", "name": "Running On-Demand G and VT instances", "prefixes": ["g", "vt"]},
    {"code": "L-1216C47A", "name": "Running On-Demand Standard instances", "prefixes": ["a", "c", "h", "m", "t"]},
]
ZONES = [{"name": "us-east-1a", "id": "use1-az6"}, {"name": "us-east-1b", "id": "use1-az1"},
         {"name": "us-east-1c", "id": "use1-az2"}, {"name": "us-east-1e", "id": "use1-az3"}]


@pytest.mark.parametrize(("instance_type", "code"), [
    ("hpc7g.16xlarge", "L-F7808C92"), ("hpc6a.48xlarge", "L-F7808C92"), ("h1.2xlarge", "L-1216C47A"),
    ("c5n.9xlarge", "L-1216C47A"), ("g5.xlarge", "L-DB2E81BA"), ("vt1.3xlarge", "L-DB2E81BA"),
    ("inf1.xlarge", None), ("trn1.2xlarge", None),
])
def test_quota_class_by_family_prefix(instance_type: str, code: str | None) -> None:
    found = capacity.quota_class(instance_type, QUOTAS)
    assert (found["code"] if found else None) == code


def test_nodes_go_to_the_offering_zone_and_the_control_plane_gets_a_second() -> None:
    assert capacity.choose_zones(["us-east-1c"], ZONES, [], []) == ("us-east-1c", ["us-east-1c", "us-east-1a"])
    assert capacity.choose_zones(["us-east-1a", "us-east-1c"], ZONES, [], []) == \
        ("us-east-1a", ["us-east-1a", "us-east-1c"])


def test_zones_eks_cannot_use_are_avoided() -> None:
    assert capacity.choose_zones(["us-east-1e"], ZONES, [], ["use1-az3"]) == (None, [])
    assert capacity.choose_zones(["us-east-1c", "us-east-1e"], ZONES, [], ["use1-az3"])[0] == "us-east-1c"


def test_requested_zones_must_offer_the_type() -> None:
    assert capacity.choose_zones(["us-east-1c"], ZONES, ["us-east-1b", "us-east-1a"], []) == (None, [])
    assert capacity.choose_zones(["us-east-1c"], ZONES, ["us-east-1c", "us-east-1a"], []) == \
        ("us-east-1c", ["us-east-1c", "us-east-1a"])


def quotas_client():
    return boto3.client("service-quotas", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def test_quota_falls_back_to_the_aws_default() -> None:
    client = quotas_client()
    with Stubber(client) as stub:
        stub.add_client_error("get_service_quota", "NoSuchResourceException")
        stub.add_response("get_aws_default_service_quota", {"Quota": {"Value": 384.0}})
        assert capacity.read_quota(client, QUOTAS[0]) == {
            "code": "L-F7808C92", "name": "Running On-Demand HPC instances", "value": 384.0, "source": "default"}


def test_unreadable_quota_reports_why() -> None:
    client = quotas_client()
    with Stubber(client) as stub:
        stub.add_client_error("get_service_quota", "AccessDeniedException", "not allowed to read quotas")
        found = capacity.read_quota(client, QUOTAS[0])
    assert "value" not in found
    assert "not allowed to read quotas" in found["error"]
