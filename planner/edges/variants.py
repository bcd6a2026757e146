"""Variants as the planner sees them: declared attributes merged with what an installed variant reports.

A native variant lives in its own prefix under the cache (`<cache>/variants/<name>`), made by
`roles/local_cluster`, which writes `facts.json` there: the LAMMPS version and packages and the MPI
library as `lmp -h` reports them. `layout` predicts the paths before installation so `plan` can show
the very command a sweep will run; `variant_infos` reads the facts (the only I/O here).

A container variant's attributes come from its compspec artifact in the cache beside the store
(`planner variants fetch`); attributes typed in the experiment override both, and `provenance` says
where each attribute came from.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.core import compspec
from planner.core.experiment import Experiment
from planner.core.types import VariantInfo
from planner.edges.compspec_cache import ArtifactCache, Entry, cache_path
from planner.edges.store import default_path

#: attribute sources as `variants show` prints them
FROM_EXPERIMENT = "experiment"
FROM_LMP = "detected (lmp -h)"
FROM_HOST = "detected (host)"


def cache_dir() -> Path:
    """$COMPAT_LAB_CACHE, else $XDG_CACHE_HOME/compat-lab, else ~/.cache/compat-lab.

    `roles/local_cluster` defaults to the same directory, so a hand-run `cluster.yml` installs where the
    planner looks (tests/test_roles.py runs the role without the planner to hold the two together).
    """
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(os.environ.get("COMPAT_LAB_CACHE") or Path(base) / "compat-lab").expanduser().resolve()


def recipe_digest(exp: Experiment, name: str) -> str:
    """Changes when the recipe (or the recipe of the variant it borrows LAMMPS from) changes."""
    variant = exp.variants[name]
    assert variant.native is not None
    payload: dict[str, Any] = variant.native.model_dump()
    if variant.native.lammps_from:
        payload["lammps_from"] = recipe_digest(exp, variant.native.lammps_from)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def layout(exp: Experiment, name: str, cache: Path) -> dict[str, str]:
    """Paths of a native variant; `lammps_from` borrows another variant's LAMMPS binary and inputs."""
    variant = exp.variants[name]
    assert variant.native is not None
    prefix = cache / "variants" / name
    python = f"python{sys.version_info.major}.{sys.version_info.minor}"
    lammps_prefix = cache / "variants" / (variant.native.lammps_from or name)
    lammps_dir = lammps_prefix / "lib" / python / "site-packages" / "lammps"
    return {"prefix": str(prefix), "mpiexec": str(prefix / "bin" / "mpiexec"), "lmp": str(lammps_dir / "lmp"),
            "share": str(lammps_dir / "share" / "lammps"), "libdir": str(prefix / "lib"),
            "facts": str(prefix / "facts.json")}


def materialization_order(exp: Experiment, names: list[str]) -> list[str]:
    """Native variants to install, each after the variant it borrows LAMMPS from."""
    order: list[str] = []

    def visit(name: str) -> None:
        native = exp.variants[name].native
        if native is None or name in order:
            return
        if native.lammps_from:
            visit(native.lammps_from)
        order.append(name)

    for name in names:
        visit(name)
    return order


def read_facts(path: str | Path) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def attributes_from_facts(facts: dict[str, Any]) -> dict[str, Any]:
    """compspec-style attributes of a native variant from its facts."""
    out: dict[str, Any] = {
        "io.archspec.cpu.target": facts.get("arch"),
        "hardware.gpu.available": "no",
        "mpi.implementation": facts.get("mpi_implementation"),
        "mpi.version": facts.get("mpi_version"),
        "lammps.version": facts.get("lammps_version"),
        "lammps.packages": " ".join(facts.get("lammps_packages") or []) or None,
        "os.name": facts.get("os_name"),
        "os.vendor": facts.get("os_vendor"),
        "os.version": facts.get("os_version"),
    }
    return {key: value for key, value in out.items() if value not in (None, "")}


@dataclass(frozen=True)
class Provenance:
    """A variant's attributes with where each came from."""

    sourced: compspec.Sourced
    artifact: Entry | None = None  # the cached artifact a container variant's attributes came from
    known: bool = True  # False: a container variant with no artifact fetched and nothing typed


def provenance(exp: Experiment, name: str, facts: dict[str, Any] | None, artifacts: ArtifactCache) -> Provenance:
    variant = exp.variants[name]
    typed = (FROM_EXPERIMENT, variant.attributes)
    if variant.native is not None:
        detected = attributes_from_facts(facts) if facts else {}
        from_lmp = {k: v for k, v in detected.items() if k.startswith(("lammps.", "mpi."))}
        from_host = {k: v for k, v in detected.items() if k not in from_lmp}
        return Provenance(compspec.merge((FROM_HOST, from_host), (FROM_LMP, from_lmp), typed))
    cached = artifacts.attributes(variant.image) if variant.image else None
    if cached is None:
        return Provenance(compspec.merge(typed), known=bool(variant.attributes))
    entry, attributes = cached
    return Provenance(compspec.merge((f"artifact {entry.digest[:19]}", attributes), typed), entry)


def variant_info(exp: Experiment, name: str, cache: Path, artifacts: ArtifactCache | None = None) -> VariantInfo:
    return _variant(exp, name, cache, artifacts or default_artifacts())[0]


def _variant(exp: Experiment, name: str, cache: Path, artifacts: ArtifactCache) -> tuple[VariantInfo, Provenance]:
    variant = exp.variants[name]
    if variant.native is None:
        where = provenance(exp, name, None, artifacts)
        return VariantInfo(name, "container", variant.app, where.sourced.attributes, image=variant.image,
                           executable=variant.executable,
                           image_digest=where.artifact.image_digest if where.artifact else None), where
    paths = layout(exp, name, cache)
    facts = read_facts(paths["facts"])
    installed = facts is not None and facts.get("recipe") == recipe_digest(exp, name)
    where = provenance(exp, name, facts if installed else None, artifacts)
    return VariantInfo(name, "native", variant.app, where.sourced.attributes, executable=variant.executable,
                       env=dict(variant.native.env), layout=paths, installed=installed), where


def default_artifacts() -> ArtifactCache:
    return ArtifactCache(cache_path(default_path()))


def variant_infos(exp: Experiment, cache: Path | None = None,
                  artifacts: ArtifactCache | None = None) -> dict[str, VariantInfo]:
    return {name: info for name, (info, _) in provenances(exp, cache, artifacts).items()}


def provenances(exp: Experiment, cache: Path | None = None,
                artifacts: ArtifactCache | None = None) -> dict[str, tuple[VariantInfo, Provenance]]:
    """Every variant with where its attributes came from (`variants show`, the plan's notes)."""
    cache, artifacts = cache or cache_dir(), artifacts or default_artifacts()
    return {name: _variant(exp, name, cache, artifacts) for name in exp.variants}
