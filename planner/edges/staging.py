"""Write the adapted copy of an input beside links to its other files (data, potentials) in a
directory of the variant's own prefix, from which each run's directory is populated."""

from __future__ import annotations

import os
from pathlib import Path

from planner.core.experiment import Experiment, Source
from planner.core.inputs import adapt, staged_dir
from planner.core.types import VariantInfo


def originals(exp: Experiment, variants: dict[str, VariantInfo]) -> dict[tuple[str, str], str]:
    """The text of every workload input an installed native variant holds, keyed (variant, workload)."""
    found = {}
    for name, variant in variants.items():
        if variant.kind != "native" or not variant.installed:
            continue
        for workload_name, workload in exp.apps[variant.app].workloads.items():
            if workload.native is None:
                continue
            try:
                found[(name, workload_name)] = (Path(variant.layout["share"]) / workload.native.workdir /
                                                workload.native.input).read_text(errors="replace")
            except OSError:  # missing: staging says so when a run needs it
                continue
    return found


def stage(share: str, prefix: str, workload: str, source: Source) -> Path:
    """Write the adapted input and link its sibling files; idempotent, atomic per file."""
    src_dir = Path(share) / source.workdir
    dest = Path(staged_dir(prefix, workload, source))
    original = src_dir / source.input
    if not original.is_file():
        raise FileNotFoundError(f"input {original} not found in the variant")
    dest.mkdir(parents=True, exist_ok=True)
    for entry in src_dir.iterdir():
        link = dest / entry.name
        if entry.is_file() and entry.name != original.name and not link.exists():
            os.symlink(entry, link)
    target = dest / original.name
    adapted = adapt(original.read_text(), source)
    if not target.exists() or target.read_text() != adapted:
        tmp = target.with_suffix(".tmp")
        tmp.write_text(adapted)
        tmp.replace(target)
    return dest


def write_generated(directory: str, files: dict[str, str]) -> None:
    """Write the inputs an app generates from a run's parameters (named by their content: written once)."""
    dest = Path(directory)
    dest.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        target = dest / name
        if not target.exists() or target.read_text() != text:
            tmp = target.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(target)
