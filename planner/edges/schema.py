"""schemas/experiment.json, the experiment file's JSON Schema, generated from the pydantic models.

    python -m planner.edges.schema           # rewrite schemas/experiment.json
    python -m planner.edges.schema --check   # exit 1 when the file is not what the models generate

Editors that speak JSON Schema (VS Code's YAML extension, `# yaml-language-server: $schema=...`) complete and
validate experiment files with it; tests/test_schema.py keeps it current.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from planner.core.experiment import Experiment

PATH = Path(__file__).resolve().parents[2] / "schemas" / "experiment.json"
#: fields the loader fills in, never written in a file
_LOADER_FIELDS = ("source", "lines")


def experiment_schema() -> dict[str, Any]:
    schema = Experiment.model_json_schema(mode="validation")
    for name in _LOADER_FIELDS:
        schema["properties"].pop(name, None)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://compat-lab.invalid/schemas/experiment.json"
    schema["title"] = "compat-lab experiment"
    return schema


def text() -> str:
    return json.dumps(experiment_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        current = PATH.read_text() if PATH.exists() else ""
        if current != text():
            print(f"{PATH} is not what the models generate: run python -m planner.edges.schema", file=sys.stderr)
            return 1
        return 0
    if argv:
        print("usage: python -m planner.edges.schema [--check]", file=sys.stderr)
        return 2
    PATH.parent.mkdir(exist_ok=True)
    PATH.write_text(text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
