"""CPU targets with archspec: one spelling for every name, and the relations between targets.

Variants name their CPU target in many ways (`arm64`, `amd64`, archspec's `neoverse_v1`, GCC's
`-march=neoverse-v1`, `znver3`); clusters name their microarchitecture. `normalize` maps each to an
archspec microarchitecture; `can_run` and `distance` answer what a plain one-hot cannot see.
"""

from __future__ import annotations

import functools
import re

import archspec.cpu

#: Container platform names and other common spellings for the generic family targets.
_ALIASES = {"amd64": "x86_64", "x86-64": "x86_64", "x64": "x86_64", "arm64": "aarch64", "aarch_64": "aarch64",
            "generic": "x86_64"}
#: GCC -march spellings archspec's compiler table does not produce for the version we ask about.
_GCC_EXTRA = {"x86-64": "x86_64", "x86-64-v2": "x86_64_v2", "x86-64-v3": "x86_64_v3", "x86-64-v4": "x86_64_v4",
              "armv8-a": "aarch64", "armv8.1-a": "armv8.1a", "armv8.2-a": "armv8.2a", "armv8.3-a": "armv8.3a",
              "armv8.4-a": "armv8.4a", "armv8.5-a": "armv8.5a", "armv9-a": "armv9.0a"}


@functools.cache
def _gcc_names() -> dict[str, str]:
    """GCC -march/-mcpu names -> archspec names, read from archspec's own compiler flag table."""
    names: dict[str, str] = dict(_GCC_EXTRA)
    for name, target in archspec.cpu.TARGETS.items():
        try:
            flags = target.optimization_flags("gcc", "13.2.0")
        except Exception:
            continue
        for match in re.finditer(r"-m(?:arch|cpu)=([\w.+-]+)", flags):
            names.setdefault(match.group(1).split("+")[0], name)
    return names


@functools.cache
def normalize(name: str | None) -> str | None:
    """The archspec name of a CPU target in any common spelling, or None when unknown."""
    if not name:
        return None
    key = str(name).strip().lower().removeprefix("-march=").removeprefix("-mcpu=")
    key = _ALIASES.get(key, key)
    if key in archspec.cpu.TARGETS:
        return key
    if key.replace("-", "_") in archspec.cpu.TARGETS:
        return key.replace("-", "_")
    return _gcc_names().get(key)


def family(name: str | None) -> str | None:
    """The architecture family (x86_64, aarch64, ppc64le, ...) of a target, or None when unknown."""
    target = normalize(name)
    return str(archspec.cpu.TARGETS[target].family) if target else None


def can_run(host: str | None, target: str | None) -> bool | None:
    """Can a host of microarchitecture `host` run code built for `target`? None when unknown.

    True when the host is the target or a descendant of it (it has every feature the build assumed).
    """
    host_name, target_name = normalize(host), normalize(target)
    if host_name is None or target_name is None:
        return None
    host_t, target_t = archspec.cpu.TARGETS[host_name], archspec.cpu.TARGETS[target_name]
    return host_t == target_t or target_t in host_t.ancestors


def distance(host: str | None, target: str | None) -> int | None:
    """Generations between a host and the target it runs: 0 same, >0 host newer, -1 cannot run."""
    host_name, target_name = normalize(host), normalize(target)
    if host_name is None or target_name is None:
        return None
    verdict = can_run(host_name, target_name)
    if not verdict:
        return -1
    host_t, target_t = archspec.cpu.TARGETS[host_name], archspec.cpu.TARGETS[target_name]
    return 0 if host_t == target_t else _depth(host_t) - _depth(target_t)


def _depth(target: archspec.cpu.Microarchitecture) -> int:
    return len(target.ancestors)


def vendor(name: str | None) -> str | None:
    target = normalize(name)
    return str(archspec.cpu.TARGETS[target].vendor) if target else None


def platform_name(name: str | None) -> str | None:
    """Container platform spelling of a target's family: amd64 or arm64 (others unchanged)."""
    fam = family(name)
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(fam, fam) if fam else None
