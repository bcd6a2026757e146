"""Reading an experiment file: YAML through planner.core.yamlfile, the models, then the checks a schema
cannot make; every error names the file, the line and the field. Pure but for reading the file.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from planner.core import files, yamlfile
from planner.core.errors import InputError
from planner.core.experiment.checks import _check_references
from planner.core.experiment.models import Experiment, _friendly, _is_union_tag
from planner.core.yamlfile import MAX_FILE_BYTES


def parse_experiment(text: str, source: str = "<experiment>") -> Experiment:
    """Validate experiment YAML text; pure apart from the name it is given for messages."""
    document = yamlfile.load(text, source)
    data, lines = document.data, document.lines
    if not isinstance(data, dict):
        raise InputError("an experiment file is a mapping with keys name, apps, variants, clusters, sweeps",
                         file=source, line=1)
    try:
        experiment = Experiment.model_validate({**data, "source": source, "lines": lines})
    except ValidationError as err:
        first = err.errors()[0]
        loc = tuple(part for part in first["loc"] if not _is_union_tag(part))
        raise InputError(_friendly(first), file=source, line=yamlfile.line_for(lines, loc),
                         field=yamlfile.dotted(loc) or None) from None
    _check_references(experiment)
    return experiment


def load_experiment(path: str | Path) -> Experiment:
    return parse_experiment(files.read_text(path, "experiment file", MAX_FILE_BYTES), str(path))
