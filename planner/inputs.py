"""Adapted copies of app inputs: the planner never edits installed files.

An input whose `run N` is hard-coded (or whose styles changed name between versions) gets a
`substitute` list in the experiment; `adapt` applies it (pure) and `stage` writes the adapted copy
beside links to the input's other files (data, potentials) in a directory of the variant's own
prefix, from which each run's directory is populated.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path, PurePosixPath

from planner.experiment import Source


def adapt(text: str, source: Source) -> str:
    for rule in source.substitute:
        text = re.sub(rule.pattern, rule.replace, text, flags=re.MULTILINE)
    return text


def staged_dir(prefix: str, workload: str, source: Source) -> PurePosixPath:
    digest = hashlib.sha256(json.dumps(source.model_dump(), sort_keys=True).encode()).hexdigest()[:10]
    return PurePosixPath(prefix) / "inputs" / f"{workload}-{digest}"


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
