"""Write the adapted copy of an input beside links to its other files (data, potentials) in a
directory of the variant's own prefix, from which each run's directory is populated."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from planner.core.experiment import Experiment, Source
from planner.core.inputs import adapt, staged_dir
from planner.core.types import VariantInfo


def originals(exp: Experiment, variants: dict[str, VariantInfo]) -> dict[tuple[str, str], str]:
    """The text of every workload input an installed native variant holds, and of every input a container
    source adapts (`substitute`) in an image that is a directory here, keyed (variant, workload)."""
    found = {}
    for name, variant in variants.items():
        if not variant.installed:
            continue
        for workload_name, workload in exp.apps[variant.app].workloads.items():
            try:
                if variant.kind == "native" and workload.native is not None:
                    found[(name, workload_name)] = (Path(variant.layout["share"]) / workload.native.workdir /
                                                    workload.native.input).read_text(errors="replace")
                elif variant.layout.get("image") and workload.container and workload.container.substitute:
                    found[(name, workload_name)] = container_input(variant.layout["image"], workload.container) \
                        .read_text(errors="replace")
            except OSError:  # missing: staging says so when a run needs it
                continue
    return found


def in_image(root: str, path: str) -> Path:
    """A path inside a directory image as the container sees it: its symbolic links (absolute ones such as
    /opt/app/examples -> /usr/share/app/examples) resolved within the image, never out of it."""
    parts, seen, current = list(PurePosixPath(path).parts[1:]), 0, PurePosixPath("/")
    while parts:
        part = parts.pop(0)
        if part == "..":
            current = current.parent
            continue
        step = Path(root) / str(current / part).lstrip("/")
        if step.is_symlink():
            seen += 1
            if seen > 40:
                raise OSError(f"too many symbolic links in {path} inside {root}")
            target = PurePosixPath(os.readlink(step))
            parts = [*target.parts[1:], *parts] if target.is_absolute() else [*target.parts, *parts]
            current = PurePosixPath("/") if target.is_absolute() else current
            continue
        current = current / part
    return Path(root) / str(current).lstrip("/")


def container_input(image: str, source: Source) -> Path:
    return in_image(image, str(PurePosixPath(source.workdir) / source.input))


def stage_container(image: str, stage_dir: str, source: Source) -> None:
    """Write the adapted copy of a container input, read from the directory image, into `stage_dir` (bound into
    the container by the run's command); idempotent, atomic."""
    original = container_input(image, source)
    if not original.is_file():
        raise FileNotFoundError(f"input {PurePosixPath(source.workdir) / source.input} not found in image {image}")
    dest = Path(stage_dir)
    dest.mkdir(parents=True, exist_ok=True)
    _write(dest / original.name, adapt(original.read_text(), source))


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
    _write(dest / original.name, adapt(original.read_text(), source))
    return dest


def write_generated(directory: str, files: dict[str, str]) -> None:
    """Write the inputs an app generates from a run's parameters (named by their content: written once)."""
    dest = Path(directory)
    dest.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        _write(dest / name, text)


def _write(target: Path, text: str) -> None:
    """Write `text` to `target` unless it holds it already, atomically (a reader sees the old or the new)."""
    if not target.exists() or target.read_text() != text:
        tmp = target.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(target)
