"""Feature rows from compatibility metadata: attributes in, a flat dict of numbers and categories out. Pure.

A point is a cluster (its attributes), a variant (its compspec attributes), launch options and a
workload. The features describe those attributes, never their names, so what is learnt about one
variant carries over to another with the same MPI, OS or build target. archspec adds what a one-hot
cannot see: whether the host can run code built for the variant's target at all (the host is the
target or a descendant of it), how many generations apart they are, whether they share a vendor, and
which vector instructions each side has.

Numbers are floats, categories are strings (scikit-learn's DictVectorizer one-hot encodes them as
`name=value`). An unknown value is left out rather than encoded, so the model sees "not known".
Every feature belongs to one group (`group_of`), the unit in which importances and the one-line
"why" of a recommendation are told.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping
from typing import Any

import archspec.cpu

from planner.core import archs
from planner.core.compat import suffix_packages
from planner.core.types import gpu_needed

Features = dict[str, float | str]

#: Groups describing where and what is run: shared by every candidate of one recommendation.
CONTEXT_GROUPS = ("host", "cluster", "workload")
#: Groups describing the choice being made: which variant, launched how.
CHOICE_GROUPS = ("cpu", "mpi", "os", "gpu", "version", "packages", "ranks", "affinity", "suffix", "binds",
                 "variant")

#: Attributes the dedicated features cover, or that restate others (model strings, OS names).
_VARIANT_KNOWN = {"io.archspec.cpu.target", "io.archspec.cpu.vendor", "io.archspec.cpu.model", "mpi.implementation",
                  "mpi.version", "os.vendor", "os.version", "os.name", "os.release", "hardware.gpu.available"}
_CLUSTER_KNOWN = {"arch", "microarchitecture", "nodes", "cores_per_node", "gpus_per_node", "instance_type",
                  "price_per_hour", "memory_gb", "kind"}
_LAUNCH_KNOWN = {"nodes", "tasks", "threads", "affinity", "suffix", "bind", "env", "preload"}
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                       "dec"), start=1)}


def group_of(name: str) -> str:
    """The group of a feature name (also of DictVectorizer's `name=value` columns)."""
    return name.split(".", 1)[0]


# ------------------------------------------------------------------------------------- value parsing


def version_number(value: Any) -> float | None:
    """`4.1.2` -> 4.0102, `22.04` -> 22.04, `2021.8` -> 2021.08: ordered like the versions they spell."""
    match = re.search(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(value or ""))
    if not match:
        return None
    major, minor, patch = (int(part) if part else 0 for part in match.groups())
    return major + min(minor, 99) / 100 + min(patch, 99) / 10_000


def release_year(value: Any) -> float | None:
    """An app release as a fractional year: `20250722`, `22 Jul 2025`, `2025.7.22`, `stable_29Sep2021_update2`."""
    text = str(value or "").strip().lower()
    patterns = ((r"(?<!\d)(\d{4})(\d{2})(\d{2})(?!\d)", "ymd"), (r"(\d{1,2})\s*([a-z]{3})[a-z]*\s*(\d{4})", "dmy"),
                (r"(?<!\d)(\d{4})\.(\d{1,2})\.(\d{1,2})", "ymd"))
    for pattern, order in patterns:
        match = re.search(pattern, text)
        if not match:
            continue
        try:
            if order == "ymd":
                date = dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
            else:
                date = dt.date(int(match.group(3)), _MONTHS[match.group(2)], int(match.group(1)))
        except (KeyError, ValueError):
            continue
        return round(date.year + (date.timetuple().tm_yday - 1) / 366, 3)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except (TypeError, ValueError):
        return None


def mpi_family(value: Any) -> str | None:
    """One spelling per MPI implementation: openmpi, mpich, intel-mpi, mvapich, cray-mpich, ..."""
    text = re.sub(r"[\s_]+", "-", str(value or "").strip().lower())
    if not text:
        return None
    for name, spellings in (("openmpi", ("openmpi", "open-mpi", "ompi")), ("intel-mpi", ("intel", "impi")),
                            ("mvapich", ("mvapich",)), ("cray-mpich", ("cray",)), ("mpich", ("mpich",))):
        if any(spelling in text for spelling in spellings):
            return name
    return text


# ------------------------------------------------------------------------------------------ archspec


@functools.cache
def _depth(target: str) -> float:
    return float(len(archspec.cpu.TARGETS[target].ancestors))


def _vendor(target: str | None, declared: Any = None) -> str | None:
    vendor = archs.vendor(target) if target else None
    if vendor in (None, "generic") and declared:
        vendor = str(declared)
    return vendor.lower() if vendor else None


def _host_target(cluster: Mapping[str, Any]) -> str | None:
    return archs.normalize(cluster.get("microarchitecture")) or archs.normalize(cluster.get("arch"))


# ------------------------------------------------------------------------------------------ features


def split_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Canonical stored options -> (launch options, workload parameters without the `param.` prefix)."""
    launch = {k: v for k, v in options.items() if not k.startswith("param.")}
    params = {k.removeprefix("param."): v for k, v in options.items() if k.startswith("param.")}
    return launch, params


def features(*, app: str, workload: str, params: Mapping[str, Any], cluster: Mapping[str, Any],
             variant: Mapping[str, Any], launch: Mapping[str, Any]) -> Features:
    """One feature row: the context (host, cluster, workload) and the choice (variant, launch options)."""
    return {**context_features(app=app, workload=workload, params=params, cluster=cluster),
            **choice_features(app=app, cluster=cluster, variant=variant, launch=launch)}


def context_features(*, app: str, workload: str, params: Mapping[str, Any], cluster: Mapping[str, Any]) -> Features:
    row: Features = {"workload.app": app, "workload.name": f"{app}/{workload}"}
    size = 1.0
    for name, value in params.items():
        number = _number(value)
        if number is not None:
            row[f"workload.{name}"] = number
            if name in ("x", "y", "z"):
                size *= number
        else:
            row[f"workload.{name}"] = str(value)
    row["workload.size"] = size
    host = _host_target(cluster)
    if host:
        row["host.microarchitecture"] = host
        row["host.family"] = str(archspec.cpu.TARGETS[host].family)
        row["host.depth"] = _depth(host)
        row["host.simd"] = float(archs.vector_width(host) or 0)
        vendor = _vendor(host)
        if vendor and vendor != "generic":
            row["host.vendor"] = vendor
    nodes, cores = _number(cluster.get("nodes")), _number(cluster.get("cores_per_node"))
    for name in ("nodes", "cores_per_node", "gpus_per_node", "memory_gb", "price_per_hour"):
        number = _number(cluster.get(name))
        if number is not None:
            row[f"cluster.{name}"] = number
    if nodes and cores:
        row["cluster.cores"] = nodes * cores
    instance = cluster.get("instance_type")
    if instance:
        row["cluster.instance_type"] = str(instance)
        row["cluster.instance_family"] = str(instance).split(".")[0]
    if cluster.get("kind"):
        row["cluster.kind"] = str(cluster["kind"])
    _extras(row, "cluster", cluster, _CLUSTER_KNOWN)
    return row


def choice_features(*, app: str, cluster: Mapping[str, Any], variant: Mapping[str, Any],
                    launch: Mapping[str, Any]) -> Features:
    row: Features = {}
    _cpu(row, cluster, variant)
    mpi = mpi_family(variant.get("mpi.implementation"))
    if mpi:
        row["mpi.implementation"] = mpi
        row["mpi.abi"] = "openmpi" if mpi == "openmpi" else "mpich"
    mpi_version = version_number(variant.get("mpi.version"))
    if mpi_version is not None:
        row["mpi.version"] = mpi_version
    if variant.get("os.vendor"):
        row["os.vendor"] = str(variant["os.vendor"]).lower()
    os_version = version_number(variant.get("os.version"))
    if os_version is not None:
        row["os.version"] = os_version
    needs_gpu = gpu_needed(variant)
    has_gpu = (_number(cluster.get("gpus_per_node")) or 0) > 0
    row["gpu.needed"] = float(needs_gpu)
    row["gpu.missing"] = float(needs_gpu and not has_gpu)
    year = release_year(variant.get(f"{app}.version"))
    if year is not None:
        row["version.release"] = year
    packages = set(str(variant[f"{app}.packages"]).split()) if f"{app}.packages" in variant else None
    if packages is not None:
        row["packages.count"] = float(len(packages))
        for name in packages:
            row[f"packages.{name}"] = 1.0
    _launch(row, cluster, launch, packages, suffix_packages(app))
    _extras(row, "variant", variant, _VARIANT_KNOWN | {f"{app}.version", f"{app}.packages"})
    return row


def _cpu(row: Features, cluster: Mapping[str, Any], variant: Mapping[str, Any]) -> None:
    host = _host_target(cluster)
    found = archs.target(variant.get("io.archspec.cpu.target"), host)
    if found is None:
        return
    row["cpu.target"] = found.name
    if found.archspec:
        row["cpu.generic"] = float(archs.vendor(found.name) == "generic")
        row["cpu.depth"] = _depth(found.name)
    width = archs.vector_width(found.name, host)
    if width is not None:
        row["cpu.simd"] = float(width)
    if host is None:
        return
    runs = archs.can_run(host, found.name)
    # -1 cannot run, 0 not known before running (another branch of archspec's tree, native), 1 can
    row["cpu.can_run"] = {True: 1.0, None: 0.0, False: -1.0}[runs]
    row["cpu.same_family"] = float(archs.family(host) == found.family)
    row["cpu.distance"] = float(archs.distance(host, found.name) or 0) if runs else -1.0
    row["cpu.exact"] = float(host == found.name or found.name == archs.NATIVE)
    # vector width the build leaves unused on this host (0: uses all of it)
    host_width = archs.vector_width(host) or 0
    row["cpu.simd_gap"] = float(host_width - (width or 0)) if runs is not False else -1.0
    host_vendor, target_vendor = _vendor(host), _vendor(found.name, variant.get("io.archspec.cpu.vendor"))
    if host_vendor and target_vendor:
        row["cpu.same_vendor"] = float(host_vendor == target_vendor)


def _launch(row: Features, cluster: Mapping[str, Any], launch: Mapping[str, Any], packages: set[str] | None,
            by_suffix: Mapping[str, str]) -> None:
    nodes = _number(launch.get("nodes")) or 1.0
    tasks = _number(launch.get("tasks")) or 1.0
    threads = _number(launch.get("threads")) or 1.0
    row.update({"ranks.nodes": nodes, "ranks.tasks": tasks, "ranks.threads": threads,
                "ranks.cores": tasks * threads, "ranks.tasks_per_node": tasks / nodes})
    cores = (_number(cluster.get("nodes")) or 0) * (_number(cluster.get("cores_per_node")) or 0)
    if cores:
        row["ranks.fill"] = tasks * threads / cores
    row["affinity.mode"] = str(launch.get("affinity", "default"))
    suffix = str(launch.get("suffix", "none"))
    row["suffix.name"] = suffix
    if suffix in by_suffix and packages is not None:
        row["suffix.supported"] = float(by_suffix[suffix] in packages)
    binds = launch.get("bind") or ()
    row["binds.count"] = float(len(binds))
    if any("mpi" in str(bind).lower() for bind in binds):
        row["binds.mpi"] = 1.0
    if launch.get("preload"):
        row["binds.preload"] = 1.0
    for key in launch.get("env") or {}:
        row[f"binds.env.{key}"] = 1.0
    for key, value in launch.items():
        if key not in _LAUNCH_KNOWN:
            number = _number(value)
            row[f"ranks.{key}" if number is not None else f"binds.{key}"] = number if number is not None \
                else str(value)


def _extras(row: Features, group: str, attributes: Mapping[str, Any], known: set[str]) -> None:
    """Attributes without a dedicated feature: a number where they read as one, else a short category."""
    for key, value in attributes.items():
        if key in known or value in (None, ""):
            continue
        number = _number(value)
        row[f"{group}.{key}"] = number if number is not None else str(value)[:40]


# ------------------------------------------------------------------------------------ explanations


def describe(group: str, *, app: str, cluster: Mapping[str, Any], variant: Mapping[str, Any],
             launch: Mapping[str, Any]) -> str:
    """A few words a person reads for one group of a candidate: `MPI openmpi 4.1.2`, `-sf omp`."""
    if group == "cpu":
        target = archs.normalize(variant.get("io.archspec.cpu.target")) or variant.get("io.archspec.cpu.target")
        host = _host_target(cluster)
        if target and host:
            distance = archs.distance(host, target)
            plural = "s" if distance != 1 else ""
            relation = "compatibility unknown" if distance is None else "exact" if distance == 0 else \
                "cannot run" if distance == -1 else f"{distance} generation{plural} older"
            return f"built for {target} on {host} ({relation})"
        return f"built for {target or 'an unknown target'}"
    if group == "mpi":
        return f"MPI {mpi_family(variant.get('mpi.implementation')) or '?'} {variant.get('mpi.version', '')}".strip()
    if group == "os":
        return f"OS {variant.get('os.vendor', '?')} {variant.get('os.version', '')}".strip()
    if group == "gpu":
        return "GPU build" if gpu_needed(variant) else "CPU build"
    if group == "version":
        return f"{app} {variant.get(f'{app}.version', '?')}"
    if group == "packages":
        packages = str(variant.get(f"{app}.packages", "")).split()
        return f"{len(packages)} {app} packages" if len(packages) > 4 else f"packages {' '.join(packages) or '?'}"
    if group == "ranks":
        counts = [(launch.get("tasks", 1), "rank"), (launch.get("threads", 1), "thread"),
                  (launch.get("nodes", 1), "node")]
        tasks, threads, nodes = (f"{n} {word}{'s' if n != 1 else ''}" for n, word in counts)
        return f"{tasks} x {threads} on {nodes}"
    if group == "affinity":
        return f"affinity {launch.get('affinity', 'default')}"
    if group == "suffix":
        return f"-sf {launch.get('suffix', 'none')}"
    if group == "binds":
        parts = [f"bind {b}" for b in launch.get("bind") or ()]
        parts += ["preload"] if launch.get("preload") else []
        parts += [f"env {k}" for k in launch.get("env") or {}]
        return ", ".join(parts) or "no binds"
    if group == "variant":
        known = _VARIANT_KNOWN | {f"{app}.version", f"{app}.packages"}
        extras = {k: v for k, v in variant.items() if k not in known}
        return ", ".join(f"{k}={v}" for k, v in sorted(extras.items())) or "other attributes"
    return group
