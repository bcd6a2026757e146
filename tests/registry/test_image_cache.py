"""Issue 19: a MiniCluster's image cache (`sif_path`) is keyed by the image's full reference and the digest
its tag named when `variants fetch` looked: three images with one last path component shared one `.sif`
(a run of one variant could execute another's image), and a moved tag was never pulled again."""

from __future__ import annotations

import json
from pathlib import Path

from planner.core.launch import sif_path
from planner.core.types import ClusterInfo
from planner.edges import registry
from tests.registry.conftest import Registry, push_image, push_like_lammps_matrix
from tests.registry.matrix import artifact_of
from tests.registry.test_registry import experiment_with, no_user_credentials, run  # noqa: F401 (a fixture)

CLUSTER = ClusterInfo("eks-arm64", "eks", "aarch64", None, 2, 64)
A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def test_distinct_references_never_share_a_cached_image() -> None:
    from planner.core.launch import pull_reference

    images = ["docker://ghcr.io/org-a/lammps:mpich", "docker://ghcr.io/org-b/lammps:mpich",
              "docker://quay.io/org-a/lammps:mpich", "docker://ghcr.io/org-a/lammps_mpich",
              "docker://ghcr.io/org-a/lammps:mpich@" + A, "oras://ghcr.io/org-a/lammps:mpich"]
    paths = [sif_path(CLUSTER, image) for image in images]
    assert len(set(paths)) == len(images)
    assert all(path.startswith("/tmp/compat-lab/sif/") and path.endswith(".sif") for path in paths)
    assert len({sif_path(CLUSTER, images[0], digest) for digest in (None, A, B)}) == 3  # a new digest, a new path
    assert sif_path(CLUSTER, images[0], A) == sif_path(CLUSTER, images[0], A)
    assert pull_reference(images[0], A) == f"docker://ghcr.io/org-a/lammps@{A}"  # what is pulled is what is keyed
    assert pull_reference("docker://127.0.0.1:5000/org/lammps:mpich", B) == f"docker://127.0.0.1:5000/org/lammps@{B}"
    assert pull_reference(images[0], None) == images[0]


def _sweep_items(store: Path, experiment: Path) -> dict:
    done = run("plan", "-e", str(experiment), "--cluster", "eks-arm64", "--json", store=store)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_moved_tag_is_cached_at_a_new_path_and_pulled_by_its_digest(own_registry: Registry, tmp_path: Path) -> None:
    client = registry.Client(own_registry.host)
    image = "ghcr.io/rse-ops/lammps-matrix:mpich-ubuntu-22.04-arm64"
    ref = registry.ImageRef(own_registry.host, "rse-ops/lammps-matrix", "mpich-ubuntu-22.04-arm64")
    first = push_image(client, ref, "arm64")
    push_like_lammps_matrix(client, ref, artifact_of(image))
    exp = experiment_with(tmp_path, f"  mpich-arm:\n    image: docker://{image}\n")
    store = tmp_path / "planner.sqlite"
    assert run("variants", "fetch", "-e", str(exp), store=store, host=own_registry.host).returncode == 0
    before = {run["command"].split(" lmp ")[0].split()[-1] for run in _sweep_items(store, exp)["runs"]}
    client.put_blob(ref, b"a new layer", "application/vnd.oci.image.layer.v1.tar")
    moved = push_image(client, registry.ImageRef(own_registry.host, "rse-ops/lammps-matrix", "rebuilt"), "arm64")
    manifest = client.manifest(ref, moved)[1]
    manifest["annotations"] = {"rebuilt": "yes"}  # another image under the same tag
    client.put_manifest(ref, ref.tag, manifest, registry.OCI_MANIFEST)
    second = client.manifest(ref)[0]
    assert second != first
    assert run("variants", "fetch", "-e", str(exp), store=store, host=own_registry.host).returncode == 0
    after = {run["command"].split(" lmp ")[0].split()[-1] for run in _sweep_items(store, exp)["runs"]}
    [old], [new] = before, after
    assert old != new and old.endswith(".sif") and new.endswith(".sif")
    assert new == sif_path(CLUSTER, f"docker://{image}", second)
