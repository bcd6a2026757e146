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


def staged_dir(prefix: str, workload: str, source: Source) -> PurePosixPath:
    digest = hashlib.sha256(json.dumps(source.model_dump(), sort_keys=True).encode()).hexdigest()[:10]
    return PurePosixPath(prefix) / "inputs" / f"{workload}-{digest}"
