"""The model files beside a store: what `fit` writes and `recommend` reads, without scikit-learn.

`results/models/<store's full name>/` (`planner.sqlite` -> `models/planner.sqlite/`, so `a.db` and `a.sqlite`
never share one; a store reached through a symlink shares its own): `meta.json` (library versions, model
format, the store's change tag when fitted (`Store.changes`), the fit report), `models.joblib` (the fitted
`Models`, read back by `planner.edges.training`) and `table.npz` (the prediction table, plain arrays:
`recommend` answers from it without importing scikit-learn).
A model from another scikit-learn or format version is refused: run
`python -m planner fit` again. meta.json is written last, so a reader never sees a half-written
model as complete; every file carries the same stamp, so files of two fits are never mixed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
import uuid
import zipfile
import zlib
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from planner.core.errors import InputError
from planner.core.metrics import Metric
from planner.learn.table import Table

MODEL_FORMAT = 5
META, TABLE, MODELS = "meta.json", "table.npz", "models.joblib"


@dataclass
class ModelMeta:
    stamp: str
    changes: str  # the store's change tag when fitted (`Store.changes`)
    runs: int
    experiment: str | None
    versions: dict[str, Any]
    created: float
    metrics: list[str]  # figures of merit with a FOM model
    goals: dict[str, str]  # per metric: the goal its model ranks towards (max | min)
    report: dict[str, Any]  # what `fit --json` printed


def library_versions() -> dict[str, Any]:
    """What a model file depends on; read without importing scikit-learn."""
    return {"format": MODEL_FORMAT, "scikit-learn": version("scikit-learn"), "numpy": version("numpy"),
            "python": platform.python_version()}


def model_dir(store_path: str | Path) -> Path:
    """A store's model directory: `models/<the store's full resolved name>/` beside it."""
    path = Path(store_path).resolve()
    return path.parent / "models" / path.name


def refit(path: Path, why: str) -> InputError:
    return InputError(f"{why}: run `python -m planner fit` again", file=str(path))


def save(directory: Path, models: object, table: Table, *, changes: str, runs: int, experiment: str | None,
         report: dict[str, Any], goals: dict[str, str]) -> ModelMeta:
    """Write the three files of one fit; returns what meta.json says."""
    import joblib  # pickles the fitted models; loading them back needs scikit-learn, writing them does not

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot write the model here ({err.strerror}); the models of a store live in "
                         "models/<store file name>/ beside it", file=str(directory)) from None
    meta = ModelMeta(uuid.uuid4().hex, changes, runs, experiment, library_versions(), time.time(),
                     sorted(table.mid), {m: goals[m] for m in sorted(table.mid)}, report)
    joblib.dump({"stamp": meta.stamp, "models": models}, directory / f"{MODELS}.tmp", compress=3)
    with open(directory / f"{TABLE}.tmp", "wb") as handle:
        np.savez(handle, stamp=np.array(meta.stamp), **table.to_arrays())
    os.replace(directory / f"{MODELS}.tmp", directory / MODELS)
    os.replace(directory / f"{TABLE}.tmp", directory / TABLE)
    tmp = directory / f"{META}.tmp"
    tmp.write_text(json.dumps(dataclasses.asdict(meta), indent=1))
    os.replace(tmp, directory / META)
    return meta


def load_meta(directory: Path) -> ModelMeta | None:
    """The model's description, or None when no model was fitted; refuses a model of another version."""
    path = directory / META
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        raise refit(path, "not a readable model description") from None
    if not isinstance(data, dict):
        raise refit(path, "not a model description (not a JSON object)")
    theirs, ours = data.get("versions") or {}, library_versions()
    if theirs.get("format") != ours["format"] or theirs.get("scikit-learn") != ours["scikit-learn"]:
        raise refit(path, f"this model was fitted with scikit-learn {theirs.get('scikit-learn', '?')} (model "
                          f"format {theirs.get('format', '?')}); this planner has scikit-learn {ours['scikit-learn']} "
                          f"(format {ours['format']})")
    try:
        return ModelMeta(**{f.name: data[f.name] for f in dataclasses.fields(ModelMeta)})
    except KeyError as err:
        raise refit(path, f"a model description without {err}") from None


def load_table(directory: Path, meta: ModelMeta) -> Table:
    path = directory / TABLE
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:  # a truncated file among them
        raise refit(path, f"not a readable prediction table ({err.__class__.__name__})") from None
    if str(arrays.pop("stamp", "")) != meta.stamp:
        raise refit(path, "model files do not belong together (a fit was interrupted or is running)")
    try:
        return Table.from_arrays(arrays)
    except (KeyError, TypeError, ValueError) as err:
        raise refit(path, f"a prediction table of another layout ({err.__class__.__name__}: {err})") from None


def saved(directory: Path, metric: Metric, meta: ModelMeta | None) -> tuple[ModelMeta, Table] | None:
    """The saved model (`meta`, as `load_meta` read it) and its prediction table when it models this metric
    towards its goal; None when it must be fitted."""
    if meta is None or metric.name not in meta.metrics or meta.goals.get(metric.name) != metric.goal:
        return None
    return meta, load_table(directory, meta)
