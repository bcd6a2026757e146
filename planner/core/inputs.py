"""Adapted copies of app inputs: the planner never edits installed files.

An input whose `run N` is hard-coded (or whose styles changed name between versions) gets a
`substitute` list in the experiment; `adapt` applies it and `staged_dir` names where the adapted
copy lives in the variant's prefix (`planner.edges.staging` writes it).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import PurePosixPath

from planner.core.experiment import Source


def adapt(text: str, source: Source) -> str:
    for rule in source.substitute:
        text = re.sub(rule.pattern, rule.replace, text, flags=re.MULTILINE)
    return text


def digest(source: Source | None, original: str | None) -> str:
    """What a run reads, as part of its id: the source (workdir, input, substitutions, `uses`) and, where
    the planner can read it (an installed native variant), the input's own text. The files beside the
    input (data, potentials) come with the variant's version and are not read."""
    payload = {"source": source.model_dump() if source else None,
               "text": hashlib.sha256(original.encode()).hexdigest() if original is not None else None}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def staged_dir(prefix: str, workload: str, source: Source) -> PurePosixPath:
    digest = hashlib.sha256(json.dumps(source.model_dump(), sort_keys=True).encode()).hexdigest()[:10]
    return PurePosixPath(prefix) / "inputs" / f"{workload}-{digest}"
