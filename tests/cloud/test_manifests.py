"""What cluster.yml hands to eksctl and to Kubernetes, rendered from inventories/eks as it is.

The ClusterConfig is validated against a JSON schema written here for the eksctl.io/v1alpha5 fields the
role uses (names and types as in eksctl's own schema, no other field allowed), the MiniCluster against
the openAPIV3Schema of the Flux Operator's CRD from ../shared/reference (skipped where that folder is
absent, as in a user's clone).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.cloud.conftest import BIN, REFERENCE
from tests.conftest import REPO

STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
CLUSTER_CONFIG = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "availabilityZones", "managedNodeGroups"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "eksctl.io/v1alpha5"},
        "kind": {"const": "ClusterConfig"},
        "metadata": {
            "type": "object", "required": ["name", "region", "version"], "additionalProperties": False,
            "properties": {"name": {"type": "string", "pattern": "^[a-zA-Z][-a-zA-Z0-9]*$"},
                           "region": {"type": "string"}, "version": {"type": "string", "pattern": r"^1\.\d+$"},
                           "tags": STRINGS},
        },
        "availabilityZones": {"type": "array", "items": {"type": "string"}, "minItems": 2, "uniqueItems": True},
        "managedNodeGroups": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["name", "instanceType", "minSize", "maxSize", "desiredCapacity"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string"},
                "amiFamily": {"enum": ["AmazonLinux2023", "AmazonLinux2", "Ubuntu2204", "Ubuntu2404", "Bottlerocket"]},
                "instanceType": {"type": "string"},
                "availabilityZones": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "desiredCapacity": {"type": "integer", "minimum": 1},
                "minSize": {"type": "integer", "minimum": 1},
                "maxSize": {"type": "integer", "minimum": 1},
                "volumeSize": {"type": "integer", "minimum": 1},
                "volumeType": {"enum": ["gp2", "gp3", "io1", "io2", "sc1", "st1"]},
                "labels": STRINGS,
                "tags": STRINGS,
                "efaEnabled": {"type": "boolean"},
                "placement": {"type": "object", "required": ["groupName"], "additionalProperties": False,
                              "properties": {"groupName": {"type": "string", "minLength": 1}}},
            },
        }},
    },
}
VIEW = "ghcr.io/converged-computing/flux-view-ubuntu"
EXPECTED = {
    "arm64": {"type": "hpc7g.16xlarge", "region": "us-east-1", "view": f"{VIEW}:arm-jammy",
              "image": "ghcr.io/converged-computing/rainbow-experiments:singularity-mamba-arm", "tasks": 128},
    "amd64": {"type": "hpc6a.48xlarge", "region": "us-east-2", "view": f"{VIEW}:tag-jammy",
              "image": "ghcr.io/rse-ops/singularity:tag-mamba", "tasks": 192},
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rendered")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")},
           "ANSIBLE_ROLES_PATH": str(REPO / "roles"), "ANSIBLE_HOME": str(out / ".ansible"), "ANSIBLE_NOCOLOR": "1",
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run([str(BIN / "ansible-playbook"), "tests/cloud/render.yml", "-e", f"out_dir={out}",
                           "-e", f"ansible_python_interpreter={sys.executable}"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return out


def load(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.mark.parametrize("target", ["arm64", "amd64", "arm64-efa"])
def test_cluster_config_uses_only_known_eksctl_fields(rendered: Path, target: str) -> None:
    (config,) = load(rendered / target / "cluster-config.yaml")
    jsonschema.validate(config, CLUSTER_CONFIG)
    arch = target.split("-")[0]
    (group,) = config["managedNodeGroups"]
    assert config["metadata"]["name"] == f"eks-{arch}"
    assert config["metadata"]["region"] == EXPECTED[arch]["region"]
    assert config["metadata"]["version"] in {"1.33", "1.34", "1.35"}
    assert group["instanceType"] == EXPECTED[arch]["type"]
    assert group["minSize"] == group["maxSize"] == group["desiredCapacity"] == 2
    assert group["volumeSize"] == 150
    assert group["availabilityZones"] == config["availabilityZones"][:1]
    assert group["labels"] == {"flux-operator": "true"}
    assert group.get("efaEnabled", False) is target.endswith("efa")
    assert ("placement" in group) is target.endswith("efa")


def test_cluster_config_schema_refuses_what_eksctl_would() -> None:
    bad = {"apiVersion": "eksctl.io/v1alpha5", "kind": "ClusterConfig", "metadata": {"name": "x", "region": "r",
           "version": "1.34"}, "availabilityZones": ["a", "b"],
           "managedNodeGroups": [{"name": "n", "instanceType": "t", "minSize": 2, "maxSize": 2, "desiredCapacity": 2,
                                  "volumeSize": "150"}]}
    with pytest.raises(jsonschema.ValidationError, match="'150' is not of type 'integer'"):
        jsonschema.validate(bad, CLUSTER_CONFIG)


@pytest.mark.parametrize("target", ["arm64", "amd64", "arm64-efa"])
def test_minicluster_matches_the_architecture(rendered: Path, target: str) -> None:
    namespace, minicluster = load(rendered / target / "minicluster.yaml")
    arch = target.split("-")[0]
    spec = minicluster["spec"]
    (container,) = spec["containers"]
    assert namespace == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "compat-lab"}}
    assert minicluster["metadata"] == {"name": "compat-lab", "namespace": "compat-lab"}
    assert spec["size"] == 2 and spec["tasks"] == EXPECTED[arch]["tasks"] and spec["interactive"] is True
    assert spec["flux"]["container"]["image"] == EXPECTED[arch]["view"]
    assert spec["flux"].get("arch") == ("arm" if arch == "arm64" else None)
    assert container["image"] == EXPECTED[arch]["image"]
    assert container["securityContext"] == {"privileged": True}
    assert ("vpc.amazonaws.com/efa" in container["resources"]["limits"]) is target.endswith("efa")
    assert spec["pod"]["nodeSelector"] == {"flux-operator": "true"}


@pytest.mark.parametrize("target", ["arm64", "amd64", "arm64-efa"])
def test_minicluster_is_valid_for_the_flux_operator_crd(rendered: Path, target: str) -> None:
    manifest = REFERENCE / "flux-operator" / "flux-operator.yaml"
    if not manifest.is_file():
        pytest.skip(f"{manifest} is absent (a user's clone has no ../shared/reference); the CRD schema is needed")
    crd = next(doc for doc in load(manifest) if doc["kind"] == "CustomResourceDefinition")
    (version,) = crd["spec"]["versions"]
    _, minicluster = load(rendered / target / "minicluster.yaml")
    assert minicluster["apiVersion"] == f"{crd['spec']['group']}/{version['name']}"
    jsonschema.validate(minicluster, version["schema"]["openAPIV3Schema"])
    broken = {**minicluster, "spec": {**minicluster["spec"], "size": "two"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, version["schema"]["openAPIV3Schema"])
