"""A real OCI registry on 127.0.0.1 (Debian's docker-registry: the CNCF distribution registry, which has
no referrers API, so the referrers tag schema is what is exercised), seeded as lammps-matrix publishes."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from planner.core import compspec
from planner.core.compspec import ARTIFACT_TYPE, ImageRef
from planner.edges import registry
from tests.registry.matrix import ALIASES, MATRIX, REPO, artifact_of
from tests.system import needs


@dataclass
class Registry:
    host: str
    storage: Path
    process: subprocess.Popen

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def start_registry(root: Path, htpasswd: Path | None = None) -> Registry:
    needs("docker-registry")
    binary = shutil.which("docker-registry")
    assert binary is not None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    storage = root / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    config = {"version": 0.1, "log": {"level": "error", "accesslog": {"disabled": True}},
              "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
              "http": {"addr": f"127.0.0.1:{port}"}}
    if htpasswd is not None:
        config["auth"] = {"htpasswd": {"realm": "compat-lab-test", "path": str(htpasswd)}}
    (root / "config.yml").write_text(json.dumps(config))  # JSON is YAML
    process = subprocess.Popen([binary, "serve", str(root / "config.yml")], stdout=subprocess.DEVNULL,
                               stderr=(root / "registry.log").open("w"))
    host = f"127.0.0.1:{port}"
    for _ in range(200):
        try:
            if requests.get(f"http://{host}/v2/", timeout=1).status_code in (200, 401):
                return Registry(host, storage, process)
        except requests.ConnectionError:
            time.sleep(0.05)
        if process.poll() is not None:
            break
    process.kill()
    pytest.fail(f"docker-registry did not start: {(root / 'registry.log').read_text()[-500:]}")


def push_image(client: registry.Client, ref: ImageRef, arch: str) -> str:
    """A small image manifest (one tiny layer) standing in for the real image; returns its digest."""
    config = json.dumps({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    layer = client.put_blob(ref, f"layer of {ref}".encode(), "application/vnd.oci.image.layer.v1.tar")
    manifest = {"schemaVersion": 2, "mediaType": registry.OCI_MANIFEST,
                "config": client.put_blob(ref, config, "application/vnd.oci.image.config.v1+json"), "layers": [layer]}
    client.put_manifest(ref, ref.tag, manifest, registry.OCI_MANIFEST)
    return client.manifest(ref)[0]


def push_like_lammps_matrix(client: registry.Client, ref: ImageRef, data: bytes,
                            artifact_type: str = ARTIFACT_TYPE) -> str:
    """`oras push <image>-compspec --artifact-type T spec.json:T`: no subject, the tag convention only."""
    layer = client.put_blob(ref, data, artifact_type)
    layer["annotations"] = {"org.opencontainers.image.title": "spec.json"}
    client.put_blob(ref, b"{}", registry.EMPTY_CONFIG["mediaType"])
    manifest = {"schemaVersion": 2, "mediaType": registry.OCI_MANIFEST, "artifactType": artifact_type,
                "config": registry.EMPTY_CONFIG, "layers": [layer]}
    client.put_manifest(ref, f"{ref.tag}{compspec.TAG_SUFFIX}", manifest, registry.OCI_MANIFEST)
    return layer["digest"]


def seed_matrix(host: str) -> dict[str, str]:
    """The 18 images and 20 artifacts of lammps-matrix under REPO on `host`; returns image -> artifact digest."""
    client = registry.Client(host)
    digests = {}
    tags = {image.split(":")[1]: image for image in MATRIX}
    tags.update({alias: f"ghcr.io/{REPO}:{target}" for alias, target in ALIASES.items()})
    for tag, image in tags.items():
        ref = ImageRef(host, REPO, tag)
        push_image(client, ref, "arm64" if tag.endswith("arm64") else "amd64")
        digests[f"ghcr.io/{REPO}:{tag}"] = push_like_lammps_matrix(client, ref, artifact_of(image))
    return digests


@pytest.fixture(scope="session")
def matrix_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """One registry for the session, seeded with lammps-matrix (tests that change it use their own repos)."""
    reg = start_registry(tmp_path_factory.mktemp("registry"))
    try:
        seed_matrix(reg.host)
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[Registry]:
    """A registry this test may stop or break."""
    reg = start_registry(tmp_path / "registry")
    try:
        yield reg
    finally:
        reg.stop()
