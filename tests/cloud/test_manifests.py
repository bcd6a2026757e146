"""What `ansible-playbook playbooks/cluster.yml -e arch=... -e confirm=true` hands to eksctl and to Kubernetes.

The real playbook runs against moto_server with the fake eksctl (conftest.py), with the Flux Operator and
MiniCluster roles in their render mode (`*_render_dir`), because there is no Kubernetes here: the cluster is
created in the emulator from the ClusterConfig the role rendered, and the manifests that would be applied
are written instead. The ClusterConfig is validated against eksctl's own JSON schema and the MiniCluster
against the Flux Operator CRD's openAPIV3Schema, both vendored from upstream (tests/data/README.md).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.cloud.conftest import BROUGHT_UP, CONTROLLER_IMAGE, CRD, EKSCTL_SCHEMA, OPERATOR_MANIFEST

VIEW = "ghcr.io/converged-computing/flux-view-ubuntu"
EXPECTED = {
    "arm64": {"type": "hpc7g.16xlarge", "region": "us-east-1", "view": f"{VIEW}:arm-focal",
              "image": "ghcr.io/converged-computing/rainbow-experiments:singularity-mamba-arm", "tasks": 128},
    "amd64": {"type": "hpc6a.48xlarge", "region": "us-east-2", "view": f"{VIEW}:tag-focal",
              "image": "ghcr.io/rse-ops/singularity:tag-mamba", "tasks": 192},
}


def load(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.mark.parametrize("target", list(BROUGHT_UP))
def test_cluster_config_is_what_eksctl_accepts(brought_up: dict, target: str) -> None:
    arch = target.split("-")[0]
    assert brought_up[target]["clusters"] == [f"eks-{arch}"]
    (config,) = load(brought_up[target]["config"])
    schema = json.loads(EKSCTL_SCHEMA.read_text())
    jsonschema.validate(config, schema)
    (group,) = config["managedNodeGroups"]
    assert config["metadata"]["name"] == f"eks-{arch}"
    assert config["metadata"]["region"] == EXPECTED[arch]["region"]
    assert config["metadata"]["version"] in {"1.33", "1.34", "1.35"}
    assert group["instanceType"] == EXPECTED[arch]["type"]
    assert group["minSize"] == group["maxSize"] == group["desiredCapacity"] == 2
    assert group["volumeSize"] == 150
    assert group["availabilityZones"] == config["availabilityZones"][:1]
    assert len(config["availabilityZones"]) == 2
    assert group["labels"] == {"flux-operator": "true"}
    assert group.get("efaEnabled", False) is target.endswith("efa")
    assert "placement" not in group
    # The validation reaches the node group: a field eksctl does not know there is refused.
    misspelt = copy.deepcopy(config)
    misspelt["managedNodeGroups"][0]["volumeSizeGB"] = misspelt["managedNodeGroups"][0].pop("volumeSize")
    with pytest.raises(jsonschema.ValidationError, match="'volumeSizeGB' was unexpected"):
        jsonschema.validate(misspelt, schema)


@pytest.mark.parametrize("target", list(BROUGHT_UP))
def test_minicluster_matches_the_architecture(brought_up: dict, target: str) -> None:
    namespace, minicluster = load(brought_up[target]["render"] / "minicluster.yaml")
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
    # flux_operator downloaded, checksum-verified and wrote the manifest it would apply: upstream's, with the
    # controller image pinned by digest in place of the tag.
    rendered, upstream = load(brought_up[target]["render"] / "flux-operator.yaml"), load(OPERATOR_MANIFEST)
    (manager,) = [c for doc in rendered if doc["kind"] == "Deployment"
                  for c in doc["spec"]["template"]["spec"]["containers"] if c["name"] == "manager"]
    assert (manager["image"], manager["imagePullPolicy"]) == (CONTROLLER_IMAGE, "IfNotPresent")
    for container in (c for doc in upstream if doc["kind"] == "Deployment"
                      for c in doc["spec"]["template"]["spec"]["containers"] if c["name"] == "manager"):
        container.update(image=CONTROLLER_IMAGE, imagePullPolicy="IfNotPresent")
    assert rendered == upstream


@pytest.mark.parametrize("target", list(BROUGHT_UP))
def test_minicluster_is_valid_for_the_flux_operator_crd(brought_up: dict, target: str) -> None:
    (crd,) = load(CRD)
    (version,) = crd["spec"]["versions"]
    schema = version["schema"]["openAPIV3Schema"]
    _, minicluster = load(brought_up[target]["render"] / "minicluster.yaml")
    assert minicluster["apiVersion"] == f"{crd['spec']['group']}/{version['name']}"
    assert minicluster["kind"] == crd["spec"]["names"]["kind"]
    jsonschema.validate(minicluster, schema)
    broken = {**minicluster, "spec": {**minicluster["spec"], "size": "two"}}
    with pytest.raises(jsonschema.ValidationError, match="'two' is not of type 'integer'"):
        jsonschema.validate(broken, schema)
