"""schemas/experiment.json (issue 20): generated from the pydantic models and current, so an editor that
validates with it accepts exactly the experiment files the planner's models accept."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from planner.edges import schema
from tests.conftest import REPO, TINY

SCHEMA = REPO / "schemas" / "experiment.json"


def test_the_published_schema_is_what_the_models_generate() -> None:
    assert SCHEMA.read_text() == schema.text(), "run: python -m planner.edges.schema"
    assert schema.main(["--check"]) == 0


@pytest.mark.parametrize("path", [*sorted((REPO / "experiments").glob("*.yaml")), TINY], ids=lambda p: p.name)
def test_every_shipped_experiment_validates(path: object) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text()), json.loads(SCHEMA.read_text()))  # type: ignore[attr-defined]


@pytest.mark.parametrize(("change", "where"), [
    (lambda e: e["apps"]["hpcc"].update(colour="red"), "colour"),
    (lambda e: e["apps"]["hpcc"].update(foms={"x": {"pattern": "(\\d+)", "goal": "most"}}), "most"),
    (lambda e: e["variants"]["hpcc-debian-openmpi"]["native"].update(launcher="srun"), "srun"),
])
def test_what_the_models_refuse_the_schema_refuses(change: object, where: str) -> None:
    experiment = yaml.safe_load((REPO / "experiments" / "hpcc.yaml").read_text())
    change(experiment)  # type: ignore[operator]
    with pytest.raises(jsonschema.ValidationError, match=where):
        jsonschema.validate(experiment, json.loads(SCHEMA.read_text()))
