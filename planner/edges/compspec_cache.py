"""The cache of compspec artifacts beside the store: what `variants fetch` pulled, read offline.

`plan`, `sweep` and `recommend` read variant attributes from here and never from the network, so they
work on a machine with no registry. Layout (`results/planner.sqlite.compspec/` for `results/planner.sqlite`):

    blobs/sha256-<hex>.json   an artifact, named by its digest (checked again when read)
    index.json                image URI -> where its artifact was found, its digest, when it was fetched,
                              and, after a tag moved, the digest before and which attributes changed
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from planner.core import compspec
from planner.core.errors import InputError
from planner.edges.store import side_file


def cache_path(store: Path) -> Path:
    """Each store keeps its artifacts beside it, a side file as its runs are (`planner.sqlite.runs`)."""
    return side_file(store, ".compspec")


@dataclass(frozen=True)
class Entry:
    image: str
    digest: str  # sha256:<hex> of the artifact
    registry: str  # the host it was fetched from (after mirrors)
    found_by: str  # referrers | referrers tag sha256-... | tag <tag>-compspec | compspec <ref>
    fetched: str  # UTC, "2026-11-30 10:52 UTC"
    previous: str | None = None  # the digest before the tag moved
    changes: list[str] = field(default_factory=list)  # attributes that changed when it moved
    #: the digest of the image manifest its tag named when fetched (keys the image's cached .sif on a cluster)
    image_digest: str | None = None


class ArtifactCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._index: dict[str, Entry] | None = None

    @property
    def index_path(self) -> Path:
        return self.root / "index.json"

    def entries(self) -> dict[str, Entry]:
        if self._index is None:
            try:
                raw = json.loads(self.index_path.read_text())
                self._index = {image: Entry(**item) for image, item in raw.get("images", {}).items()}
                for entry in self._index.values():  # a digest becomes a file name: checked before any use
                    compspec.check_digest(entry.digest)
                    if entry.image_digest is not None:
                        compspec.check_digest(entry.image_digest)
            except FileNotFoundError:
                self._index = {}
            except (json.JSONDecodeError, TypeError, AttributeError, compspec.ArtifactError) as err:
                raise InputError(f"the artifact cache index is damaged ({err.__class__.__name__}); delete it and "
                                 "run `python -m planner variants fetch` again", file=str(self.index_path)) from None
        return self._index

    def entry(self, image: str) -> Entry | None:
        return self.entries().get(image)

    def blob_path(self, digest: str) -> Path:
        """The blob's file, named by its digest (checked first: `sha256:../../x` names no file)."""
        try:
            return self.root / "blobs" / f"{compspec.referrers_tag(digest)}.json"
        except compspec.ArtifactError as err:
            raise InputError(str(err), file=str(self.root)) from None

    def has(self, digest: str) -> bool:
        return self.blob_path(digest).exists()

    def read(self, digest: str) -> bytes:
        path = self.blob_path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise InputError("cached artifact is missing; run `python -m planner variants fetch`",
                             file=str(path)) from None
        if f"sha256:{hashlib.sha256(data).hexdigest()}" != digest:
            raise InputError(f"cached artifact does not match its digest {digest}; delete it and run "
                             "`python -m planner variants fetch`", file=str(path))
        return data

    def attributes(self, image: str) -> tuple[Entry, dict[str, Any]] | None:
        """The cached artifact's attributes for an image, or None when none was fetched."""
        entry = self.entry(image)
        if entry is None:
            return None
        try:
            return entry, compspec.attributes(compspec.parse(self.read(entry.digest)))
        except compspec.ArtifactError as err:
            raise InputError(f"{image}: artifact {entry.digest}: {err}") from None

    def put(self, digest: str, data: bytes) -> None:
        path = self.blob_path(digest)
        if not path.exists():
            _atomic_write(path, data)

    def record(self, entries: list[Entry]) -> None:
        """Write the index once per fetch (readers see the old or the new one, never half)."""
        index = dict(self.entries())
        index.update({entry.image: entry for entry in entries})
        payload = {"images": {image: asdict(entry) for image, entry in sorted(index.items())}}
        _atomic_write(self.index_path, (json.dumps(payload, indent=1) + "\n").encode())
        self._index = index


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
