"""Variants as the planner sees them: declared attributes merged with what an installed variant reports.

A native variant lives in its own prefix under the cache (`<cache>/variants/<name>`), made by
`roles/local_cluster`, which writes `facts.json` there: the LAMMPS version and packages and the MPI
library as `lmp -h` reports them. `layout` predicts the paths before installation so `plan` can show
the very command a sweep will run; `variant_infos` reads the facts (the only I/O here).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from planner.core.experiment import Experiment, Variant
from planner.core.types import VariantInfo


def cache_dir() -> Path:
    if os.environ.get("COMPAT_LAB_CACHE"):
        return Path(os.environ["COMPAT_LAB_CACHE"]).expanduser().resolve()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return (base / "compat-lab").resolve()


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
        "os.vendor": facts.get("os_vendor"),
        "os.version": facts.get("os_version"),
    }
    return {key: value for key, value in out.items() if value not in (None, "")}


def variant_info(exp: Experiment, name: str, cache: Path) -> VariantInfo:
    variant: Variant = exp.variants[name]
    if variant.native is None:
        return VariantInfo(name, "container", variant.app, dict(variant.attributes), image=variant.image,
                           executable=variant.executable)
    paths = layout(exp, name, cache)
    facts = read_facts(paths["facts"])
    installed = facts is not None and facts.get("recipe") == recipe_digest(exp, name)
    attributes = {**(attributes_from_facts(facts) if installed and facts else {}), **variant.attributes}
    return VariantInfo(name, "native", variant.app, attributes, executable=variant.executable,
                       env=dict(variant.native.env), layout=paths, installed=installed)


def variant_infos(exp: Experiment, cache: Path | None = None) -> dict[str, VariantInfo]:
    cache = cache or cache_dir()
    return {name: variant_info(exp, name, cache) for name in exp.variants}
