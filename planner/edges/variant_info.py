"""Variants as the planner sees them: declared attributes merged with what an installed variant reports.

A native variant lives in its own prefix under the cache (`<cache>/variants/<name>`), made by
`roles/local_cluster`, which writes `facts.json` there: the app's version and packages and the MPI
library as the app's own help reports them. `layout` predicts the paths before installation so `plan` can show
the very command a sweep will run; `variant_infos` reads the facts (the only I/O here).

A container variant's attributes come from its compspec artifact in the cache beside the store
(`planner variants fetch`); attributes typed in the experiment override both, and `provenance` says
where each attribute came from.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.core import apps, compspec
from planner.core.experiment import Experiment
from planner.core.types import VariantInfo
from planner.edges import images
from planner.edges.compspec_cache import ArtifactCache, Entry, cache_path
from planner.edges.store import default_path

#: attribute sources as `variants show` prints them
FROM_EXPERIMENT = "experiment"
FROM_APP = "detected (the app's -h)"
FROM_HOST = "detected (host)"
FROM_DPKG = "detected (host, dpkg-query)"


def cache_dir() -> Path:
    """$COMPAT_LAB_CACHE, else $XDG_CACHE_HOME/compat-lab, else ~/.cache/compat-lab.

    `roles/local_cluster` defaults to the same directory, so a hand-run `cluster.yml` installs where the
    planner looks (tests/test_roles.py runs the role without the planner to hold the two together).
    """
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(os.environ.get("COMPAT_LAB_CACHE") or Path(base) / "compat-lab").expanduser().resolve()


def recipe_digest(exp: Experiment, name: str) -> str:
    """Changes when the recipe (or the recipe of the variant it borrows its binary from) changes."""
    variant = exp.variants[name]
    assert variant.native is not None
    payload: dict[str, Any] = variant.native.model_dump()
    # fields added since variants were first installed count only where set: a digest that changed for
    # them would reinstall every variant already in the cache
    for added in ("host", "launcher"):
        if added not in variant.native.model_fields_set:
            payload.pop(added)
    if variant.native.binary_from:
        payload["binary_from"] = recipe_digest(exp, variant.native.binary_from)
    # a key its app's definition renamed is digested under its old name, as variants were installed with it
    definition = apps.definition(exp.apps[variant.app].definition or variant.app) if variant.app else None
    for old, new in (definition.recipe_aliases if definition else {}).items():
        payload[old] = payload.pop(new)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


#: where Debian puts each launcher of a `host` variant (the `mpirun`/`mpiexec` alternatives may name another MPI)
HOST_LAUNCHERS = {"mpirun": "/usr/bin/mpirun.openmpi", "mpiexec": "/usr/bin/mpiexec.mpich"}


def layout(exp: Experiment, name: str, cache: Path) -> dict[str, str]:
    """Paths of a native variant; `binary_from` borrows another variant's binary and inputs. A `host`
    variant's programs are the host's; its prefix only holds the inputs written for its runs."""
    variant = exp.variants[name]
    assert variant.native is not None
    prefix = cache / "variants" / name
    definition = apps.resolve(variant.app or "", exp.apps[variant.app or ""])
    if variant.native.host:
        executable = variant.executable or definition.executable
        return {"prefix": str(prefix), "launcher": HOST_LAUNCHERS[variant.native.launcher],
                "launcher_name": variant.native.launcher,
                "executable": executable if executable.startswith("/") else f"/usr/bin/{executable}",
                "share": str(prefix / "share"), "libdir": "", "facts": ""}
    python = f"python{sys.version_info.major}.{sys.version_info.minor}"
    wheel = cache / "variants" / (variant.native.binary_from or name) / "lib" / python / "site-packages"
    return {"prefix": str(prefix), "launcher": str(prefix / "bin" / "mpiexec"), "launcher_name": "mpiexec",
            "executable": str(wheel / definition.wheel_executable), "share": str(wheel / definition.wheel_share),
            "libdir": str(prefix / "lib"), "facts": str(prefix / "facts.json")}


def materialization_order(exp: Experiment, names: list[str]) -> list[str]:
    """Native variants to install, each after the variant it borrows its binary from."""
    order: list[str] = []

    def visit(name: str) -> None:
        native = exp.variants[name].native
        if native is None or name in order:
            return
        if native.binary_from:
            visit(native.binary_from)
        order.append(name)

    for name in names:
        visit(name)
    return order


def host_facts(packages: tuple[str, ...], launcher: str, app: str) -> dict[str, Any] | None:
    """Facts of a `host` variant from dpkg's database and the host, like those roles/local_cluster writes for a
    pip variant; None while one of its packages is not installed."""
    try:
        listed = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${db:Status-Status}\n",
                                 *packages], capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    versions = {fields[0]: fields[1] for fields in (line.split("\t") for line in listed.splitlines())
                if len(fields) == 3 and fields[2] == "installed"}
    if set(packages) - set(versions):
        return None
    mpi = "openmpi" if launcher == "mpirun" else "mpich"
    mpi_version = next((v for name, v in versions.items() if name.startswith(("openmpi", "libopenmpi", mpi))), None)
    os_release: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            key, _, value = line.partition("=")
            os_release[key] = value.strip('"')
    return {"arch": platform.machine(), "mpi_implementation": mpi,
            "mpi_version": mpi_version.split("-")[0] if mpi_version else None,
            f"{app}_version": versions.get(app), "os_name": os_release.get("PRETTY_NAME"),
            "os_vendor": os_release.get("ID"), "os_version": os_release.get("VERSION_ID")}


def read_facts(path: str | Path) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def attributes_from_facts(facts: dict[str, Any], app: str) -> dict[str, Any]:
    """compspec-style attributes of a native variant of `app` from its facts (`<app>.version`, `<app>.packages`
    from the facts' `<app>_version`, `<app>_packages`)."""
    out: dict[str, Any] = {
        "io.archspec.cpu.target": facts.get("arch"),
        "hardware.gpu.available": "no",
        "mpi.implementation": facts.get("mpi_implementation"),
        "mpi.version": facts.get("mpi_version"),
        f"{app}.version": facts.get(f"{app}_version"),
        f"{app}.packages": " ".join(facts.get(f"{app}_packages") or []) or None,
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
        detected = attributes_from_facts(facts, variant.app or "") if facts else {}
        if variant.native.host:
            return Provenance(compspec.merge((FROM_DPKG, detected), typed))
        from_app = {k: v for k, v in detected.items() if k.startswith((f"{variant.app}.", "mpi."))}
        from_host = {k: v for k, v in detected.items() if k not in from_app}
        return Provenance(compspec.merge((FROM_HOST, from_host), (FROM_APP, from_app), typed))
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
        built = {}
        pulled = images.fetched(cache, name, where.artifact.image_digest) if where.artifact else None
        if variant.build is not None and pulled is not None:  # fetched from the registry (`variants fetch --images`)
            built = {"layout": {"image": str(pulled), "marker": f"{pulled}.done"}, "installed": True}
        elif variant.build is not None:  # built here: where ch-run finds it, complete once its marker exists
            built = {"layout": {"image": str(images.image_dir(cache, name)), "marker": str(images.marker(cache, name))},
                     "installed": images.is_built(cache, name)}
        return VariantInfo(name, "container", variant.app, where.sourced.attributes, image=variant.image,
                           executable=variant.executable,
                           image_digest=where.artifact.image_digest if where.artifact else None, **built), where
    paths = layout(exp, name, cache)
    if variant.native.host:
        facts = host_facts(variant.native.host, variant.native.launcher, variant.app or "")
        installed = facts is not None
    else:
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
