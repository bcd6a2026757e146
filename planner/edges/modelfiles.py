"""The model files beside a store: what `fit` writes and `recommend` reads, without scikit-learn.

`results/models/<store's full name>/` (`planner.sqlite` -> `models/planner.sqlite/`, so `a.db` and `a.sqlite`
never share one; a store reached through a symlink shares its own): `meta.json` (library versions, model
format, the store's change tag when fitted (`Store.changes`), the fit report), `models.joblib` (the fitted
`Models`, read back by `planner.edges.training`) and `table.npz`: what `recommend` reads, in plain arrays
(no scikit-learn): the prediction table, and every stored run as `fit` read it (`column_reader.snapshot`), tagged
with the store's change counter and the digest of the catalog (`catalog_digest`: the experiment, its clusters and
variants as detected, archspec's database, the planner's code) they were made with. `recommend` reads the runs from
there only while the store's counter and the catalog's digest are exactly those (else it reads the store), and
uses the table only while the catalog's digest is (else it fits again: the table's predictions, attributes and
hard-rule verdicts are the old catalog's).
A model from another scikit-learn or format version is refused: run
`python -m planner fit` again. meta.json is written last, so a reader never sees a half-written
model as complete; every file carries the same stamp, so files of two fits are never mixed.
"""

from __future__ import annotations

import dataclasses
import hashlib
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
from typing import TYPE_CHECKING, Any

import numpy as np

from planner.core.errors import InputError
from planner.core.metrics import Metric
from planner.learn.table import Table

if TYPE_CHECKING:
    from planner.learn.catalog import Catalog

MODEL_FORMAT = 5
META, TABLE, MODELS = "meta.json", "table.npz", "models.joblib"
#: `table.npz` members of the runs snapshot and its tags (the table's own members have no such prefix)
SNAPSHOT, CHANGES, CATALOG = "store:", "tag:changes", "tag:catalog"
_PLANNER = Path(__file__).resolve().parent.parent


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


def catalog_digest(catalog: Catalog) -> str:
    """What the hard rules, commands and candidates depend on beyond the store, by value: the experiment, its
    clusters and variants as detected now (cores, microarchitecture, artifacts, installed facts), archspec's
    microarchitecture database as loaded, and the planner's own code."""
    import archspec.cpu.schema

    digest = hashlib.sha256()
    exp = catalog.exp
    # the experiment by value (not where its file is, nor its line numbers: those only place error messages)
    digest.update(json.dumps([exp.model_dump(mode="json", exclude={"source", "lines"}) if exp is not None else None,
                              {k: dataclasses.asdict(v) for k, v in sorted(catalog.cluster_infos.items())},
                              {k: dataclasses.asdict(v) for k, v in sorted(catalog.variant_infos.items())},
                              archspec.cpu.schema.TARGETS_JSON.data], sort_keys=True, default=str).encode())
    for path in sorted(_PLANNER.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def save(directory: Path, models: object, table: Table, *, changes: str, runs: int, experiment: str | None,
         report: dict[str, Any], goals: dict[str, str], catalog: str = "",
         snapshot: dict[str, np.ndarray] | None = None) -> ModelMeta:
    """Write the three files of one fit; returns what meta.json says. `catalog`: the `catalog_digest` the table
    was made with; `snapshot`: the store's runs (`column_reader.snapshot`) at change `changes`, for `recommend`."""
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
        stored = {f"{SNAPSHOT}{name}": array for name, array in (snapshot or {}).items()}
        np.savez(handle, stamp=np.array(meta.stamp), **{CHANGES: np.array(changes), CATALOG: np.array(catalog)},
                 **stored, **table.to_arrays())
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


def load_table(directory: Path, meta: ModelMeta, catalog: str | None = None) -> Table | None:
    """The prediction table; None when it was made with another catalog than the one of digest `catalog` (its
    predictions, attributes and hard-rule verdicts are that catalog's; None: not asked)."""
    path = directory / TABLE
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files if not name.startswith(SNAPSHOT)}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:  # a truncated file among them
        raise refit(path, f"not a readable prediction table ({err.__class__.__name__})") from None
    if str(arrays.pop("stamp", "")) != meta.stamp:
        raise refit(path, "model files do not belong together (a fit was interrupted or is running)")
    made_with = str(arrays.pop(CATALOG, ""))
    arrays.pop(CHANGES, None)
    try:
        table = Table.from_arrays(arrays)
    except (KeyError, TypeError, ValueError) as err:
        raise refit(path, f"a prediction table of another layout ({err.__class__.__name__}: {err})") from None
    return table if catalog is None or made_with == catalog else None


def load_snapshot(directory: Path, meta: ModelMeta, *, changes: str, catalog: str) -> dict[str, np.ndarray] | None:
    """The store's runs as `fit` saved them (`column_reader.snapshot`) when the file is this model's and its tags are
    exactly the store's change counter now and the catalog's digest now; None otherwise (read the store)."""
    try:
        with np.load(directory / TABLE, allow_pickle=False) as data:
            if str(data["stamp"]) != meta.stamp or str(data[CHANGES]) != changes or str(data[CATALOG]) != catalog \
                    or f"{SNAPSHOT}runs" not in data.files:
                return None
            return {name[len(SNAPSHOT):]: data[name] for name in data.files if name.startswith(SNAPSHOT)}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error):
        return None


def saved(directory: Path, metric: Metric, meta: ModelMeta | None,
          catalog: str | None = None) -> tuple[ModelMeta, Table] | None:
    """The saved model (`meta`, as `load_meta` read it) and its prediction table when it models this metric
    towards its goal and was fitted with the catalog of digest `catalog` (when given); None when it must be
    fitted."""
    if meta is None or metric.name not in meta.metrics or meta.goals.get(metric.name) != metric.goal:
        return None
    table = load_table(directory, meta, catalog)
    return None if table is None else (meta, table)
