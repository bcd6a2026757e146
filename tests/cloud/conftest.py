"""Fixtures of the cloud suite: a real moto server on loopback, the AWS front, the fake eksctl, playbook runs.

What is real: moto_server (started once per session, killed at the end), Ansible and its modules, the
repository's playbooks run as a user types them (ansible.cfg's inventory, -e), the roles, eksctl's
archive being downloaded and checksum-verified. What is faked, because it cannot run here: eksctl itself
(tests/cloud/fake_eksctl.py acts on the emulator instead of AWS), the throttling and the EC2 vCPU quotas
moto lacks (tests/cloud/aws_front.py), Kubernetes (the fake eksctl's kubeconfig names a loopback port
nothing listens on, so every Kubernetes call is refused, unless a test starts the loopback stand-in API
server of tests/cloud/kube_api.py with the `kube` fixture, whose pods the stand-in kubectl of
tests/cloud/fake_kubectl.py execs into), and the `flux`, `singularity` and `lmp` commands of a MiniCluster
pod (tests/cloud/fake_flux.py). No test touches DNS or a non-loopback address.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import yaml

from tests.cloud import fake_flux, fake_kubectl
from tests.cloud.aws_front import Front
from tests.cloud.fake_eksctl import package
from tests.cloud.kube_api import Cluster, KubeAPI, shm_mib
from tests.conftest import REPO
from tests.registry.conftest import Registry, push_image, start_registry

BIN = Path(sys.executable).parent
HPC_QUOTA = "L-F7808C92"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """A real moto_server on a free loopback port for the whole session."""
    port = free_port()
    proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start on {url}") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def front_server(moto_url: str) -> Iterator[Front]:
    front = Front(free_port(), moto_url)
    thread = threading.Thread(target=front.serve_forever, daemon=True)
    thread.start()
    yield front
    front.shutdown()
    front.server_close()


def reset(front: Front, moto_url: str) -> Front:
    """Empty the emulator and the front; seed the HPC vCPU quota at 512."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"), timeout=10).close()
    front.config.reset()
    front.config.quotas[HPC_QUOTA] = 512
    return front


@pytest.fixture
def aws(front_server: Front, moto_url: str) -> Front:
    """The emulator behind its front, emptied before each test; the HPC vCPU quota seeded at 512."""
    return reset(front_server, moto_url)


def client(front: Front, service: str, region: str = "us-east-1"):
    return boto3.client(service, region_name=region, endpoint_url=front.url, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


@dataclass(frozen=True)
class Eksctl:
    url: str
    checksum: str


@pytest.fixture(scope="session")
def fake_eksctl(tmp_path_factory: pytest.TempPathFactory) -> Eksctl:
    """The fake eksctl packaged as a release archive, as eks_cluster downloads and verifies it."""
    archive, digest = package(tmp_path_factory.mktemp("eksctl-release"))
    return Eksctl(f"file://{archive}", f"sha256:{digest}")


def eksctl_args(eksctl: Eksctl) -> list[str]:
    """Extra variables that make eks_cluster download and verify the fake instead of the release."""
    return ["-e", f"eks_cluster_eksctl_url={eksctl.url}", "-e", f"eks_cluster_eksctl_checksum={eksctl.checksum}"]


@dataclass
class Played:
    rc: int
    out: str
    state_dir: Path

    def __repr__(self) -> str:  # what an assertion shows: the errors, then the end of the playbook's output
        errors = [line[:800] for line in self.out.splitlines() if line.startswith(("fatal:", "[ERROR]"))]
        return "\n".join([f"rc={self.rc}", *errors, self.out[-3000:]])


def ansible_playbook(workdir: Path, front: Front, *args: str, env: dict[str, str] | None = None,
                     timeout: float = 300) -> Played:
    """`ansible-playbook ARGS` from the repository root as a user would type it, against the emulator.

    No -i unless ARGS has one: ansible.cfg's inventory applies. The user's own AWS and Ansible
    configuration is kept out; credentials are dummies; the state directory is workdir/state.
    """
    full_env = playbook_env(workdir, env)
    done = subprocess.run([str(BIN / "ansible-playbook"), *args, "-e", f"eks_cluster_aws_endpoint_url={front.url}"],
                          cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)
    return Played(done.returncode, done.stdout + done.stderr, workdir / "state")


def playbook_env(workdir: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment ansible_playbook runs the playbook with (see there)."""
    state_dir = workdir / "state"
    full_env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "ANSIBLE_"))}
    full_env.update({
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        # The user's home stays untouched (~/.cache, ~/.kube, ~/.ansible), as does the XDG layout.
        "HOME": str(workdir / "home"), "XDG_CACHE_HOME": "", "XDG_STATE_HOME": "",
        "ANSIBLE_HOME": str(workdir / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-tmp"), "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable, "ANSIBLE_DEPRECATION_WARNINGS": "0",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": str(workdir / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(workdir / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true", "COMPAT_LAB_STATE_DIR": str(state_dir),
        "FAKE_EKSCTL_LOG": str(workdir / "eksctl.log"),
        # ghcr.io is read from a loopback port (nothing listens there unless a test's registry does): no
        # test resolves a name
        "COMPAT_LAB_REGISTRY_MIRRORS": "ghcr.io=127.0.0.1:1",
    })
    full_env.update(env or {})
    return full_env


@pytest.fixture
def playbook(tmp_path: Path, aws: Front, controller_registry: ControllerRegistry):
    """Run `ansible-playbook ARGS` (see ansible_playbook) in the test's own directory, the controller image's
    tags served by the loopback registry (controller_registry) as ghcr.io serves them."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> Played:
        return ansible_playbook(tmp_path, aws, *args, env={**controller_registry.env, **(env or {})},
                                timeout=timeout)

    return run


#: The Flux Operator's MiniCluster CRD, vendored from upstream (tests/data/README.md).
CRD = REPO / "tests" / "data" / "flux-operator" / "minicluster-crd.yaml"
#: The Flux Operator's whole arm64 manifest (namespace, CRD, RBAC, controller Deployment), vendored from upstream.
OPERATOR_MANIFEST = REPO / "tests" / "data" / "flux-operator" / "flux-operator-arm.yaml"
#: eksctl's ClusterConfig JSON schema (the definitions the role's config reaches), vendored from upstream.
EKSCTL_SCHEMA = REPO / "tests" / "data" / "eksctl" / "schema.json"


#: The controller image flux_operator pins in the tests: a stand-in digest, as no registry can resolve the tag here.
CONTROLLER_IMAGE = ("ghcr.io/flux-framework/flux-operator@sha256:"
                    + hashlib.sha256(b"stand-in controller image").hexdigest())


def operator_manifest_args(arch: str = "arm64", manifest: Path = OPERATOR_MANIFEST) -> list[str]:
    """Extra variables giving flux_operator a local manifest, checksum-verified as the upstream one is,
    and its controller image pinned (CONTROLLER_IMAGE).

    The vendored upstream manifest stands in for the download from GitHub, and the role's get_url still
    verifies the file's sha256.
    """
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
    return ["-e", f"flux_operator_manifest_url=file://{manifest}",
            "-e", json.dumps({"flux_operator_manifest_checksums": {arch: f"sha256:{digest}"},
                              "flux_operator_controller_images": {arch: CONTROLLER_IMAGE}})]


#: how long the stand-in's MiniCluster pods stay Pending, pulling their image
POD_PULL_SECONDS = 3.0


@dataclass
class Kube:
    """The stand-in Kubernetes API of an EKS cluster, and what a test passes on to reach it."""

    api: KubeAPI
    pods: Path  # each pod's directory: pods/<namespace>/<pod>
    env: dict[str, str]  # the fake eksctl's kubeconfig names the API; the stand-in kubectl comes first on PATH

    def objects(self, group: str, plural: str, namespace: str | None = None) -> list[dict]:
        with self.api.cluster.lock:
            return self.api.cluster.list_of(group, plural, namespace)


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[Kube]:
    """A loopback stand-in for the cluster's Kubernetes API (tests/cloud/kube_api.py), for one test.

    Its pods hold what the Flux Operator puts in a MiniCluster pod for the runs: the Flux environment
    script at /mnt/flux/flux-view.sh (in the pod's directory), which puts the fake flux, singularity and lmp
    on PATH and tells them how many nodes the MiniCluster has and where to log their calls.
    """
    tools = tmp_path / "pod-tools"
    fake_flux.install(tools)
    bin_dir = tmp_path / "bin"
    fake_kubectl.install(bin_dir)

    def glibc(image: str | None) -> str:
        return (image and fake_flux.image_glibc(image)) or ""

    def on_pod(directory: Path, minicluster: dict, index: int) -> None:
        spec = minicluster["spec"]
        view = directory / "mnt" / "flux"
        view.mkdir(parents=True)
        (view / "flux-view.sh").write_text(
            f"export PATH={shlex.quote(str(tools))}:$PATH\n"
            f"export FAKE_FLUX_NODES={int(minicluster['spec']['size'])}"
            f" FAKE_FLUX_LOG={shlex.quote(str(directory / 'flux-calls.jsonl'))}"
            f" FAKE_ROOT={shlex.quote(str(directory / 'container'))} FAKE_SHM_MIB={shm_mib(minicluster)}"
            f" FAKE_VIEW_GLIBC={glibc(spec.get('flux', {}).get('container', {}).get('image'))}"
            f" FAKE_POD_GLIBC={glibc(next(iter(spec.get('containers') or [{}])).get('image'))}\n"
            "fluxsocket=local:///mnt/flux/view/run/flux/local\n")

    # the token the fake eksctl's kubeconfig carries for us-east-1: a request without it is refused
    # pods turn Ready only once their image is pulled, here a few seconds (a real pull takes minutes)
    api = KubeAPI(free_port(), Cluster(tmp_path / "pods", on_pod, token="fake-eksctl-us-east-1",
                                       pull_seconds=POD_PULL_SECONDS))
    thread = threading.Thread(target=api.serve_forever, daemon=True)
    thread.start()
    try:
        yield Kube(api, tmp_path / "pods", {"FAKE_EKSCTL_KUBE_API": api.url,
                                            "PATH": f"{bin_dir}{os.pathsep}{BIN}{os.pathsep}{os.environ['PATH']}",
                                            "TMPDIR": str(tmp_path)})
    finally:
        api.shutdown()
        api.server_close()
        thread.join(timeout=10)


#: The Flux Operator's controller image, as the manifests name it (flux_operator_controller_tags).
CONTROLLER_REPOSITORY = "flux-framework/flux-operator"


@dataclass
class ControllerRegistry:
    """A real OCI registry on loopback (Debian's docker-registry) standing in for ghcr.io, serving the
    controller image's tags as upstream publishes them: `:arm` and `:latest` as image indexes."""

    registry: Registry
    digests: dict[str, str]  # "<tag>/<arch>" -> the digest of that tag's image for that arch
    env: dict[str, str]  # what points the bring-up at it: the mirror the planner reads too

    def pinned(self, tag: str, arch: str) -> str:
        return f"ghcr.io/{CONTROLLER_REPOSITORY}@{self.digests[f'{tag}/{arch}']}"


def push_index(client, ref, arches: list[str]) -> dict[str, str]:
    """An OCI image index under ref's tag with one small image per arch (linux/<arch>); arch -> image digest."""
    from planner.edges import registry as oci

    manifests, digests = [], {}
    for arch in arches:
        digest = push_image(client, ref.with_tag(f"{ref.tag}-{arch}"), arch)
        _, _, size = client.manifest(ref, digest)
        manifests.append({"mediaType": oci.OCI_MANIFEST, "digest": digest, "size": size,
                          "platform": {"os": "linux", "architecture": arch}})
        digests[arch] = digest
    client.put_manifest(ref, ref.tag, {"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": manifests},
                        oci.OCI_INDEX)
    return digests


@pytest.fixture(scope="session")
def controller_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerRegistry]:
    """The controller image's tags on a loopback registry, reached through COMPAT_LAB_REGISTRY_MIRRORS."""
    from planner.core.compspec import ImageRef
    from planner.edges import registry as oci

    reg = start_registry(tmp_path_factory.mktemp("controller-registry"))
    try:
        client = oci.Client(reg.host)
        digests = {}
        for tag, arches in (("arm", ["arm64", "amd64"]), ("latest", ["amd64"])):
            for arch, digest in push_index(client, ImageRef(reg.host, CONTROLLER_REPOSITORY, tag), arches).items():
                digests[f"{tag}/{arch}"] = digest
        yield ControllerRegistry(reg, digests, {"COMPAT_LAB_REGISTRY_MIRRORS": f"ghcr.io={reg.host}"})
    finally:
        reg.stop()


def shipped_operator_args(arch: str = "arm64", manifest: Path = OPERATOR_MANIFEST) -> list[str]:
    """operator_manifest_args without the controller pin: the shipped defaults resolve the controller's tag.

    Only the manifest's download is replaced (no github.com here), checksum-verified as upstream's is."""
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
    return ["-e", f"flux_operator_manifest_url=file://{manifest}",
            "-e", json.dumps({"flux_operator_manifest_checksums": {arch: f"sha256:{digest}"}})]


#: The bring-ups the manifest and inventory tests share: each target's extra variables. moto implements no
#: placement groups (CreatePlacementGroup answers 500), so EFA goes without one here; EFA is asked of one
#: architecture and not of the other, so two bring-ups show both the architectures and EFA on and off.
BROUGHT_UP = {"arm64": [], "amd64-efa": ["-e", "eks_cluster_efa_enabled=true"]}


@pytest.fixture(scope="session")
def brought_up(tmp_path_factory: pytest.TempPathFactory, front_server: Front, moto_url: str,
               fake_eksctl: Eksctl) -> dict[str, dict]:
    """Each BROUGHT_UP target brought up once by the real playbook (`-e confirm=true`), the Flux Operator and
    MiniCluster roles in their render mode (no Kubernetes here); what it left behind, by target."""
    left = {}
    for target, extra in BROUGHT_UP.items():
        arch = target.split("-")[0]
        work = tmp_path_factory.mktemp(target)
        reset(front_server, moto_url)
        render = work / "render"
        played = ansible_playbook(
            work, front_server, "playbooks/cluster.yml", "-e", f"arch={arch}", "-e", "confirm=true",
            *eksctl_args(fake_eksctl), *operator_manifest_args(arch),
            "-e", f"flux_operator_render_dir={render}", "-e", f"minicluster_render_dir={render}", *extra)
        assert played.rc == 0, played
        config = played.state_dir / "clusters" / f"eks-{arch}.eksctl.yaml"
        region = yaml.safe_load(config.read_text())["metadata"]["region"]  # the tests check it is the arch's
        left[target] = {"played": played, "clusters": client(front_server, "eks", region).list_clusters()["clusters"],
                        "config": config, "render": render}
    reset(front_server, moto_url)
    return left
