"""lammps-matrix as the tests know it: 18 images, their attributes, and artifacts in lammps-matrix's layout."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from planner.core import compspec
from planner.edges.compspec_cache import ArtifactCache, Entry

DATA = Path(__file__).parent / "data"
MATRIX: dict[str, dict[str, str]] = json.loads((DATA / "lammps-matrix.json").read_text())["images"]
REPO = "rse-ops/lammps-matrix"
#: two artifacts lammps-matrix also publishes without an architecture in the tag (20 in all)
ALIASES = {"openmpi-ubuntu-gpu-20.04": "openmpi-ubuntu-gpu-20.04-amd64",
           "openmpi-ubuntu-gpu-22.04": "openmpi-ubuntu-gpu-22.04-amd64"}


def artifact_of(image: str) -> bytes:
    return compspec.generate("lammps-prototype", MATRIX[image])


def warm_cache(root: Path) -> ArtifactCache:
    """A cache as `variants fetch` leaves it for experiments/lammps.yaml, for tests about planning, not fetching."""
    cache = ArtifactCache(root)
    entries = []
    for image in MATRIX:
        data = artifact_of(image)
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        cache.put(digest, data)
        entries.append(Entry(f"docker://{image}", digest, "ghcr.io", f"tag {image.split(':')[1]}-compspec",
                             "2026-01-01 00:00:00 UTC"))
    cache.record(entries)
    return cache
