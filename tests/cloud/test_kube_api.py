"""The stand-ins for the Kubernetes API server (kube_api.py) and `kubectl exec` (fake_kubectl.py).

They stand in because Kubernetes cannot run here; the end-to-end test relies on them refusing what a real
API server and kubectl refuse, so these tests check that, through the real `kubernetes` client.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from pathlib import Path

import kubernetes
import pytest
import yaml
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from tests.cloud.conftest import OPERATOR_MANIFEST, playbook_env
from tests.cloud.kube_api import kubeconfig
from tests.conftest import REPO

TOKEN = "fake-eksctl-us-east-1"
MINICLUSTER = {"apiVersion": "flux-framework.org/v1alpha2", "kind": "MiniCluster",
               "metadata": {"name": "compat-lab", "namespace": "compat-lab"},
               "spec": {"size": 2, "interactive": True, "containers": [{"image": "ghcr.io/x/singularity:arm"}]}}


def connect(url: str, token: str = TOKEN) -> DynamicClient:
    config = kubernetes.client.Configuration()
    config.host, config.api_key = url, {"authorization": f"Bearer {token}"}
    return DynamicClient(kubernetes.client.ApiClient(config))


def message(err: pytest.ExceptionInfo) -> str:
    """The API server's Status message of a refused request."""
    return json.loads(err.value.body)["message"]


def wait_for(predicate, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError("not reached in time")


def apply_manifest(api: DynamicClient, path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        resource = api.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        resource.create(body=doc, namespace=doc["metadata"].get("namespace"))


def test_a_request_without_the_kubeconfigs_token_is_refused(kube) -> None:
    with pytest.raises(kubernetes.client.exceptions.ApiException) as refused:
        connect(kube.api.url, token="someone-else").resources.get(api_version="v1", kind="Namespace").get()
    assert refused.value.status == 401


def test_minicluster_kind_exists_once_its_crd_is_applied_and_its_schema_is_enforced(kube) -> None:
    api = connect(kube.api.url)
    with pytest.raises(ResourceNotFoundError):
        api.resources.get(api_version="flux-framework.org/v1alpha2", kind="MiniCluster")
    namespaces = api.resources.get(api_version="v1", kind="Namespace")
    apply_manifest(api, OPERATOR_MANIFEST)
    api.resources.invalidate_cache()
    miniclusters = api.resources.get(api_version="flux-framework.org/v1alpha2", kind="MiniCluster")

    with pytest.raises(kubernetes.client.exceptions.ApiException) as no_namespace:
        miniclusters.create(body=MINICLUSTER, namespace="compat-lab")
    assert no_namespace.value.status == 404 and message(no_namespace) == 'namespaces "compat-lab" not found'
    namespaces.create(body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "compat-lab"}})

    broken = copy.deepcopy(MINICLUSTER)
    broken["spec"]["size"] = "two"
    with pytest.raises(kubernetes.client.exceptions.ApiException) as invalid:
        miniclusters.create(body=broken, namespace="compat-lab")
    assert invalid.value.status == 422 and "spec.size: 'two' is not of type 'integer'" in message(invalid)

    miniclusters.create(body=MINICLUSTER, namespace="compat-lab")
    with pytest.raises(kubernetes.client.exceptions.ApiException) as twice:
        miniclusters.create(body=MINICLUSTER, namespace="compat-lab")
    assert twice.value.status == 409

    with pytest.raises(kubernetes.client.exceptions.ApiException) as bad_patch:
        miniclusters.patch(body={"spec": {"size": "three"}}, name="compat-lab", namespace="compat-lab",
                           content_type="application/merge-patch+json")
    assert bad_patch.value.status == 422
    with pytest.raises(kubernetes.client.exceptions.ApiException) as no_manager:
        miniclusters.server_side_apply(body=MINICLUSTER, name="compat-lab", namespace="compat-lab")
    assert no_manager.value.status == 400 and "fieldManager" in message(no_manager)


def test_the_operator_runs_once_available_and_gives_a_minicluster_ready_pods(kube) -> None:
    api = connect(kube.api.url)
    namespaces = api.resources.get(api_version="v1", kind="Namespace")
    pods = api.resources.get(api_version="v1", kind="Pod")
    namespaces.create(body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "compat-lab"}})
    apply_manifest(api, OPERATOR_MANIFEST)
    api.resources.invalidate_cache()
    api.resources.get(api_version="flux-framework.org/v1alpha2", kind="MiniCluster").create(
        body=MINICLUSTER, namespace="compat-lab")

    deployments = api.resources.get(api_version="apps/v1", kind="Deployment")
    controller = wait_for(lambda: (d := deployments.get(name="operator-controller-manager",
                                                        namespace="operator-system")).status.availableReplicas and d)
    assert controller.status.observedGeneration == controller.metadata.generation
    ready = wait_for(lambda: [p for p in pods.get(namespace="compat-lab", label_selector="job-name=compat-lab").items
                              if p.status.containerStatuses and all(c.ready for c in p.status.containerStatuses)]
                     if len(pods.get(namespace="compat-lab").items) == 2 else None)
    assert sorted(p.metadata.name[:-5] for p in ready) == ["compat-lab-0-", "compat-lab-1-"]
    assert pods.get(namespace="compat-lab", label_selector="job-name=other").items == []

    namespaces.delete(name="compat-lab")
    assert pods.get(namespace="compat-lab").items == [], "a namespace takes its objects with it"


def kubectl(kube, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", *args], env=kube.env, capture_output=True, text=True, timeout=60, check=False)


def _minicluster_applied(kube, tmp_path: Path, body: dict = MINICLUSTER) -> tuple[Path, object]:
    """The operator and a MiniCluster (`body`) applied to the stand-in API: (kubeconfig path, the Pod resource)."""
    api = connect(kube.api.url)
    config = tmp_path / "kubeconfig"
    config.write_text(kubeconfig(kube.api.url, TOKEN))
    api.resources.get(api_version="v1", kind="Namespace").create(
        body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "compat-lab"}})
    apply_manifest(api, OPERATOR_MANIFEST)
    api.resources.invalidate_cache()
    api.resources.get(api_version="flux-framework.org/v1alpha2", kind="MiniCluster").create(
        body=body, namespace="compat-lab")
    pods = api.resources.get(api_version="v1", kind="Pod")
    return config, pods


def test_the_stand_in_kubectl_execs_in_the_pods_own_directory_and_refuses_what_kubectl_does(kube,
                                                                                           tmp_path: Path) -> None:
    config, pods = _minicluster_applied(kube, tmp_path)
    lead = wait_for(lambda: next((p for p in pods.get(namespace="compat-lab").items
                                  if p.metadata.name.startswith("compat-lab-0-") and p.status.phase == "Running"),
                                 None), seconds=15)
    base = ["--kubeconfig", str(config), "-n", "compat-lab", "exec", "-i"]

    done = kubectl(kube, *base, lead.metadata.name, "-c", "compat-lab", "--", "/bin/sh", "-c",
                   "mkdir -p /tmp/compat-lab && echo hi > /tmp/compat-lab/f && cat /tmp/compat-lab/f && pwd "
                   "&& . /mnt/flux/flux-view.sh && flux resource info")
    assert done.returncode == 1 and "FLUX_URI is not set" in done.stderr, "the pod's Flux is reached as in a pod"
    assert done.stdout.splitlines() == ["hi", "/"], "the pod's own /tmp, and its root as working directory"
    pod_dir = kube.pods / "compat-lab" / lead.metadata.name
    assert (pod_dir / "tmp" / "compat-lab" / "f").read_text() == "hi\n"

    missing = kubectl(kube, *base, "compat-lab-0-nope", "--", "true")
    assert missing.returncode == 1
    assert 'Error from server (NotFound): pods "compat-lab-0-nope" not found' in missing.stderr
    no_container = kubectl(kube, *base, lead.metadata.name, "-c", "other", "--", "true")
    assert no_container.returncode == 1 and "container other not found" in no_container.stderr

    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text(kubeconfig("https://api.example.com", TOKEN))
    refused = kubectl(kube, "--kubeconfig", str(elsewhere), "exec", "-i", lead.metadata.name, "--", "true")
    assert refused.returncode == 1 and "only a loopback API server" in refused.stderr


@pytest.mark.parametrize(("view", "refused"), [("arm-jammy", True), ("arm-focal", False)])
def test_the_views_flux_does_not_load_in_a_pods_image_older_than_the_view(kube, tmp_path: Path, view: str,
                                                                          refused: bool) -> None:
    """The issue's amd64 pair: a jammy view (glibc 2.35) in pods whose image is older (here a focal one, 2.31):
    the view's own `flux` is refused by the loader (glibc elf/dl-version.c's words, exit 127), so the broker never
    answers; a focal view loads in the same pods."""
    body = {**MINICLUSTER, "spec": {**MINICLUSTER["spec"], "containers": [{"image": "ghcr.io/x/singularity:focal"}],
                                    "flux": {"container": {"image": f"ghcr.io/converged-computing/flux-view-ubuntu:"
                                                                    f"{view}"}}}}
    config, pods = _minicluster_applied(kube, tmp_path, body)
    lead = wait_for(lambda: next((p for p in pods.get(namespace="compat-lab").items
                                  if p.metadata.name.startswith("compat-lab-0-") and p.status.phase == "Running"),
                                 None), seconds=15)
    done = kubectl(kube, "--kubeconfig", str(config), "-n", "compat-lab", "exec", "-i", lead.metadata.name, "--",
                   "/bin/sh", "-c", ". /mnt/flux/flux-view.sh && FLUX_URI=$fluxsocket flux resource info")
    if refused:
        assert done.returncode == 127
        assert done.stderr.strip() == ("flux: /lib/aarch64-linux-gnu/libc.so.6: version `GLIBC_2.35' not found "
                                       "(required by flux)")
    else:
        assert (done.returncode, done.stdout.strip()) == (0, "2 Nodes, 128 Cores, 0 GPUs")


def test_minicluster_pods_stay_pending_while_their_image_is_pulled(kube, tmp_path: Path) -> None:
    """A kubelet keeps a pod Pending, its container waiting in ContainerCreating, while it pulls the image
    (Kubernetes' pod lifecycle); `kubectl exec` into it is refused until it runs. The stand-in's pods take
    POD_PULL_SECONDS (they turned Ready one tick after the MiniCluster was applied before issue 22)."""
    config, pods = _minicluster_applied(kube, tmp_path)
    lead = wait_for(lambda: next((p for p in pods.get(namespace="compat-lab").items
                                  if p.metadata.name.startswith("compat-lab-0-")), None), seconds=15)
    assert lead.status.phase == "Pending"
    assert lead.status.containerStatuses[0].state.waiting.reason == "ContainerCreating"
    early = kubectl(kube, "--kubeconfig", str(config), "-n", "compat-lab", "exec", "-i", lead.metadata.name, "--",
                    "true")
    assert early.returncode == 1
    assert f"unable to upgrade connection: pod {lead.metadata.name} is not running" in early.stderr
    wait_for(lambda: pods.get(name=lead.metadata.name, namespace="compat-lab").status.phase == "Running", seconds=30)
    late = kubectl(kube, "--kubeconfig", str(config), "-n", "compat-lab", "exec", "-i", lead.metadata.name, "--",
                   "true")
    assert late.returncode == 0, late.stderr


def test_bring_up_stops_at_once_when_the_views_flux_does_not_load_in_the_pods_image(kube, tmp_path: Path) -> None:
    """roles/minicluster with a jammy view in pods of an older image: the loader's refusal ends the wait for Flux
    at the first try (not minicluster_broker_retries x 10 s) and the play says which view and image, and why."""
    api = connect(kube.api.url)
    config = tmp_path / "kubeconfig"
    config.write_text(kubeconfig(kube.api.url, TOKEN))
    apply_manifest(api, OPERATOR_MANIFEST)
    view = "ghcr.io/converged-computing/flux-view-ubuntu:arm-jammy"
    extra = {"minicluster_kubeconfig": str(config), "minicluster_size": 2, "minicluster_tasks": 2,
             "minicluster_flux_view_image": view, "minicluster_image": "ghcr.io/x/singularity:focal",
             "minicluster_state_dir": str(tmp_path / "state"), "minicluster_broker_retries": 30,
             "minicluster_resources": {"limits": {"cpu": "2", "memory": "8Gi"}},
             "ansible_python_interpreter": sys.executable}
    started = time.monotonic()
    done = subprocess.run(["ansible-playbook", "tests/cloud/minicluster_up.yml", "-e", json.dumps(extra)],
                          cwd=REPO, env=playbook_env(tmp_path, kube.env), capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode != 0, done.stdout
    assert (f"The Flux view {view} does not load in the pods' image ghcr.io/x/singularity:focal: flux: "
            "/lib/aarch64-linux-gnu/libc.so.6: version `GLIBC_2.35' not found (required by flux); choose a view whose "
            "glibc is not newer than that image's") in " ".join(done.stdout.split()), done.stdout
    assert time.monotonic() - started < 120 and "FAILED - RETRYING" not in done.stdout
