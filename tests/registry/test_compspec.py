"""The pure side of artifacts: parsing with compspec's model, generating lammps-matrix's layout, sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.core import compspec
from tests.conftest import planner
from tests.registry.matrix import MATRIX, artifact_of

IMAGE = "ghcr.io/rse-ops/lammps-matrix:openmpi-ubuntu-gpu-22.04-arm64"


def test_an_artifact_in_lammps_matrix_layout_flattens_to_the_planner_names() -> None:
    data = artifact_of(IMAGE)
    groups = {g["name"]: g["attributes"] for g in json.loads(data)["compatibilities"]}
    # lammps-matrix writes io.archspec keys without their namespace and the others with it
    assert groups["io.archspec"] == {"cpu.model": "0x1", "cpu.target": "arm64", "cpu.vendor": "ARM"}
    assert groups["mpi"] == {"mpi.implementation": "OpenMPI", "mpi.version": "4.1.2"}
    assert [g for g in json.loads(data)["metadata"]["schemas"]] == ["hardware", "mpi", "os", "io.archspec"]
    assert compspec.attributes(compspec.parse(data)) == dict(sorted(MATRIX[IMAGE].items()))


@pytest.mark.parametrize(("data", "message"), [
    (b"{not json", "not JSON (JSONDecodeError"),
    (b'{"kind": "CompatibilitySpec", "version": "0.0.0", "compatibilities": []}',
     "not a compspec CompatibilitySpec: compatibilities: List should have at least 1 item"),
    (b'{"kind": "Other", "version": "1", "compatibilities": [{"name": "mpi", "attributes": {}}]}',
     "not a compspec CompatibilitySpec: kind: Input should be 'CompatibilitySpec'"),
    (b'{"kind": "CompatibilitySpec", "version": "1", "compatibilities": [{"name": "mpi", "attributes": {"a": {}}}]}',
     "not a compspec CompatibilitySpec: compatibilities.0.attributes.a: Input should be a valid string"),
])
def test_what_is_not_a_compatibility_spec_is_one_line(data: bytes, message: str) -> None:
    with pytest.raises(compspec.ArtifactError) as err:
        compspec.parse(data)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_typed_attributes_override_and_say_what_they_replaced() -> None:
    merged = compspec.merge(("artifact sha256:ab", {"mpi.version": "4.0", "os.vendor": "ubuntu"}),
                            ("experiment", {"mpi.version": "4.0.2"}))
    assert merged.attributes == {"mpi.version": "4.0.2", "os.vendor": "ubuntu"}
    assert merged.sources == {"mpi.version": "experiment", "os.vendor": "artifact sha256:ab"}
    assert merged.overridden == {"mpi.version": ("4.0", "artifact sha256:ab")}
    assert compspec.changes({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == ["b 2 -> 3", "c (new) -> 4"]


def test_image_uris_and_mirrors() -> None:
    ref = compspec.image_ref("docker://ghcr.io/rse-ops/lammps-matrix:mpich-ubuntu-22.04-arm64")
    assert (ref.registry, ref.repository, ref.tag) == ("ghcr.io", "rse-ops/lammps-matrix", "mpich-ubuntu-22.04-arm64")
    assert str(compspec.mirrored(ref, {"ghcr.io": "127.0.0.1:5000"})) == \
        "127.0.0.1:5000/rse-ops/lammps-matrix:mpich-ubuntu-22.04-arm64"
    assert compspec.image_ref("library://sylabs/lammps:latest") is None
    assert compspec.referrers_tag("sha256:" + "a" * 64) == "sha256-" + "a" * 64
    with pytest.raises(ValueError, match=r"'ghcr\.io' is not FROM=TO"):
        compspec.parse_mirrors("ghcr.io")


def test_a_bad_mirror_setting_is_bad_input(tmp_path: Path) -> None:
    done = planner("variants", "fetch", "--mirror", "ghcr.io", store=tmp_path / "s.sqlite")
    assert done.returncode == 2
    assert done.stderr == "error: --mirror: 'ghcr.io' is not FROM=TO (e.g. ghcr.io=127.0.0.1:5000)\n"
