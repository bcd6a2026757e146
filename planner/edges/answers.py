"""Saved answers of `recommend`: the text and JSON a recommendation printed, kept beside the model.

`fit` tabulates predictions so that `recommend` never fits; this goes one step further. Each answer is
saved under a key made of everything it was computed from:

- the request (app, workload, cluster, top, metric, goal, parameters), the store's resolved path and
  its fingerprint (`fingerprint`: any run added, retried or forgotten changes it);
- the model's stamp (a new fit is a new stamp) and its files by size and modification time, and the
  experiment file by content digest;
- every other file the catalog read (cluster state files, native variants' facts, the artifact cache
  index) by size and modification time, and the environment variables that place them;
- the planner's own source files and the numeric libraries, by size and modification time.

A saved answer is printed only when the key recomputed now is equal in every part, so it is exactly what
the full computation would print; anything else (a missing, damaged or foreign file) is a miss and
`recommend` computes the answer as before. `fit` saves the answers a user asks first (every app and
workload, each cluster and all clusters, at the defaults) and clears the old ones.

Standard library only: the quick path in `planner.cli.quick` imports this and nothing heavier.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

#: Where answers live inside a store's model directory (`results/models/<store>/answers/`).
ANSWERS = "answers"
#: Bumped whenever what an answer holds, or its key, changes meaning.
FORMAT = 1
#: The environment that places the files the catalog reads (state files, caches) or the store.
ENVIRONMENT = ("PLANNER_STORE", "COMPAT_LAB_CACHE", "COMPAT_LAB_STATE_DIR", "XDG_CACHE_HOME", "XDG_STATE_HOME",
               "HOME")
#: The files of a fit (`planner.edges.modelfiles`).
MODEL_FILES = ("meta.json", "table.npz", "models.joblib")
#: Libraries whose upgrade changes what the saved model computes.
LIBRARIES = ("numpy", "sklearn")

_PLANNER = Path(__file__).resolve().parent.parent


def default_store() -> str:
    """$PLANNER_STORE, else results/planner.sqlite (`planner.edges.store.default_path`)."""
    return os.environ.get("PLANNER_STORE") or "results/planner.sqlite"


def model_dir(store_path: str | Path) -> Path:
    """A store's model directory: `models/<store name>/` beside it (`planner.edges.modelfiles`)."""
    path = Path(store_path)
    return path.parent / "models" / path.stem


def fingerprint(db: sqlite3.Connection) -> str:
    """Changes whenever the stored data changes: the counts of runs and figures of merit, and the newest run
    (its rowid, id, status and end time: a retried last run reuses its rowid but not its end time)."""
    count, last = db.execute("SELECT COUNT(*), MAX(rowid) FROM runs").fetchone()
    foms = db.execute("SELECT COUNT(*) FROM foms").fetchone()[0]
    newest = db.execute("SELECT id, status, finished FROM runs WHERE rowid = ?", (last,)).fetchone() \
        if last is not None else None
    digest = hashlib.sha256(json.dumps(newest).encode()).hexdigest()[:12] if newest else "none"
    return f"{count}-{last}-{foms}-{digest}"


def signature(path: str | Path) -> list[Any] | None:
    """A file's size and modification time, None when it is absent."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def content(path: str | Path) -> str | None:
    """A file's sha256, None when it is absent or unreadable."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def code() -> list[Any]:
    """The planner's source files and the numeric libraries as installed: an upgrade or an edit is a miss."""
    files = sorted(str(p) for p in _PLANNER.rglob("*.py"))
    libraries = []
    for name in LIBRARIES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        libraries.append([name, signature(spec.origin) if spec is not None and spec.origin else None])
    return [sys.version, FORMAT, [[f, signature(f)] for f in files], libraries]


def model_stamp(directory: Path) -> str | None:
    """The stamp of the fit in this model directory (see `planner.edges.modelfiles`), None without one."""
    try:
        data = json.loads((directory / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    stamp = data.get("stamp") if isinstance(data, dict) else None
    return stamp if isinstance(stamp, str) else None


def model(directory: Path) -> list[Any] | None:
    """The fit in this model directory: its stamp and its files' sizes and modification times (a model file
    replaced or edited since, e.g. one of another scikit-learn version, is a miss); None without a fit."""
    stamp = model_stamp(directory)
    if stamp is None:
        return None
    return [stamp, *(signature(directory / name) for name in MODEL_FILES)]


def key(request: dict[str, Any], *, store: Path, store_fingerprint: str, model: list[Any], experiment: Path,
        watched: list[str]) -> dict[str, Any]:
    """Everything an answer depends on, each part as it is now (see the module's description)."""
    return {"request": request, "store": str(store.resolve()), "fingerprint": store_fingerprint, "model": model,
            "experiment": [str(experiment.resolve()), content(experiment)],
            "watched": [[path, signature(path)] for path in watched],
            "environment": [[name, os.environ.get(name)] for name in ENVIRONMENT], "code": code()}


def _file(directory: Path, request: dict[str, Any]) -> Path:
    name = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:32]
    return directory / ANSWERS / f"{name}.json"


def load(directory: Path, request: dict[str, Any], current: Any) -> dict[str, str] | None:
    """The saved text and JSON of this request when its key is `current(watched)` now, else None.
    `current` computes the key for the files the saved answer watched (they are listed in the file)."""
    try:
        saved = json.loads(_file(directory, request).read_text())
        watched = saved["key"]["watched"]
        if saved["key"] != current([path for path, _ in watched]):
            return None
        output = saved["output"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(output, dict) or not all(isinstance(output.get(k), str) for k in ("text", "json")):
        return None
    return output


def save(directory: Path, answer_key: dict[str, Any], text: str, as_json: str) -> None:
    """Save an answer under its key (atomically; a directory that cannot be written is no error)."""
    path = _file(directory, answer_key["request"])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"key": answer_key, "output": {"text": text, "json": as_json}}))
        os.replace(tmp, path)
    except OSError:
        return


def clear(directory: Path) -> None:
    """Drop every saved answer (a new fit makes them all stale)."""
    folder = directory / ANSWERS
    if folder.is_dir():
        for path in folder.iterdir():
            try:
                path.unlink()
            except OSError:
                continue
