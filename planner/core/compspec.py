"""Compatibility artifacts: parse, flatten, generate, and merge attributes with their sources. Pure.

An artifact is a compspec `CompatibilitySpec`: compatibility groups, one per namespace (`io.archspec`,
`mpi`, `os`, `hardware`, and one named after the app for what the app itself tells: its version and
packages), each with attributes. The upstream image matrices (an app definition's `image_matrix`)
write some keys with their namespace (`mpi.version`) and some without (`cpu.target` in `io.archspec`);
both flatten to the planner's dotted names (`io.archspec.cpu.target`). The groups are held in the
`compspec` library's own model (`compspec.create.artifact`); the wire format is checked first so a
broken artifact is one line naming what is wrong.

Images are named by URI (`docker://ghcr.io/org/name:tag`); their artifact is found in the registry
by the OCI referrers of the image manifest or by the `<tag>-compspec` tag (see planner.edges.registry).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from compspec.create.artifact import Artifact, Compatibility
from pydantic import BaseModel, ConfigDict, Field, ValidationError

#: what the upstream image matrices publish:
#: `oras push <image>-compspec --artifact-type ARTIFACT_TYPE spec.json:ARTIFACT_TYPE`
ARTIFACT_TYPE = "application/org.supercontainers.compspec"
TAG_SUFFIX = "-compspec"

#: the namespaces a generated artifact uses, with the schema each names; an app's own namespace (its
#: version and packages: `<app>.version`) has no published schema and names `urn:compat-lab:<app>`
SCHEMAS = {
    "hardware": "https://raw.githubusercontent.com/compspec/schemas/main/hardware/compspec.json",
    "mpi": "https://raw.githubusercontent.com/compspec/schemas/main/mpi/compspec.json",
    "os": "https://raw.githubusercontent.com/compspec/schemas/main/os/compspec.json",
    "io.archspec": "https://raw.githubusercontent.com/compspec/schemas/main/archspec/compspec.json",
}
#: the upstream image matrices write io.archspec keys without their namespace (`cpu.target`); the others with it
_BARE_KEYS = {"io.archspec"}

Value = str | int | float | bool


class ArtifactError(ValueError):
    """An artifact that is not a valid compspec CompatibilitySpec; the message is one line."""


#: a content digest as OCI writes it (image-spec descriptor.md: `algorithm:encoded`), of the algorithms
#: registries use, with the length each one's hex has
DIGEST = re.compile(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")
#: what a terminal would act on: C0 and C1 control characters and DEL (escape sequences start with them)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def check_digest(value: Any, what: str = "digest") -> str:
    """`value` when it is a digest (checked before it becomes a file name or a URL), else ArtifactError."""
    if isinstance(value, str) and DIGEST.fullmatch(value):
        return value
    shown = printable(repr(value))
    raise ArtifactError(f"{what} {shown[:80]}{'...' if len(shown) > 80 else ''} is not a digest "
                        "(sha256:<64 hex> or sha512:<128 hex>)")


def printable(text: str) -> str:
    """Text from a registry or an artifact as it may reach a terminal: control characters taken out."""
    return _CONTROL.sub("", text)


class _Group(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1)
    version: str = "0.0.0"
    attributes: dict[str, Value]


class _Metadata(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = ""
    schemas: dict[str, str] = {}


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")
    version: str
    kind: Literal["CompatibilitySpec"]
    metadata: _Metadata = _Metadata()
    compatibilities: list[_Group] = Field(min_length=1)


def parse(data: bytes) -> Artifact:
    """The artifact in compspec's model, or ArtifactError saying what is wrong (one line)."""
    try:
        wire = _Wire.model_validate(json.loads(data))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArtifactError(f"not JSON ({err.__class__.__name__}: {str(err).splitlines()[0]})") from None
    except RecursionError:
        raise ArtifactError("not JSON this reads (nested too deeply)") from None
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"] if part not in {"str", "int", "float", "bool"})
        raise ArtifactError(f"not a compspec CompatibilitySpec: {printable(where) or 'artifact'}: "
                            f"{printable(first['msg'])}") from None
    artifact = Artifact(name=printable(wire.metadata.name))
    for group in wire.compatibilities:
        compat = Compatibility(namespace=printable(group.name), schema=wire.metadata.schemas.get(group.name, ""),
                               version=printable(group.version))
        for key, value in group.attributes.items():
            compat.add_attribute(printable(key), printable(value) if isinstance(value, str) else value)
        artifact.add_compatibility_group(compat)
    return artifact


def attributes(artifact: Artifact) -> dict[str, Value]:
    """Flat, namespaced attributes (`io.archspec.cpu.target`, `mpi.version`), sorted by name."""
    out: dict[str, Value] = {}
    for compat in artifact.compats.values():
        for key, value in compat.attrs.items():
            out[key if key.startswith(f"{compat.namespace}.") else f"{compat.namespace}.{key}"] = value
    return dict(sorted(out.items()))


def generate(name: str, flat: Mapping[str, Value]) -> bytes:
    """An artifact with the namespaces and key style of the upstream image matrices, from flat attributes."""
    artifact = Artifact(name=name)
    groups: dict[str, Compatibility] = {}
    for key, value in sorted(flat.items()):
        namespace = next((ns for ns in SCHEMAS if key.startswith(f"{ns}.")), key.split(".")[0])
        if namespace == key:
            raise ArtifactError(f"attribute {key!r} has no namespace (namespace.name, e.g. mpi.version)")
        schema = SCHEMAS.get(namespace, f"urn:compat-lab:{namespace}")
        group = groups.setdefault(namespace, Compatibility(namespace, schema, "0.0.0"))
        group.add_attribute(key.removeprefix(f"{namespace}.") if namespace in _BARE_KEYS else key, value)
    # a stable group order, whatever order the attributes came in: the published namespaces, then the app's
    for namespace in [*(ns for ns in SCHEMAS if ns in groups), *sorted(set(groups) - set(SCHEMAS))]:
        artifact.add_compatibility_group(groups[namespace])
    return (json.dumps(artifact.to_dict(), indent=2) + "\n").encode()


# ------------------------------------------------------------------------------------- attribute sources


@dataclass(frozen=True)
class Sourced:
    """A variant's attributes, where each came from, and the values the experiment replaced."""

    attributes: dict[str, Any]
    sources: dict[str, str]
    overridden: dict[str, tuple[Any, str]]  # attribute -> (value it replaced, that value's source)


def merge(*layers: tuple[str, Mapping[str, Any]]) -> Sourced:
    """Later layers win; each attribute keeps the label of the layer it came from."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    overridden: dict[str, tuple[Any, str]] = {}
    for label, layer in layers:
        for key, value in layer.items():
            if key in values and values[key] != value:
                overridden[key] = (values[key], sources[key])
            values[key], sources[key] = value, label
    return Sourced(dict(sorted(values.items())), sources, overridden)


def changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What differs between two attribute sets, one short phrase per attribute."""
    out = []
    for key in sorted(set(old) | set(new)):
        if key not in new:
            out.append(f"{key} {old[key]} -> (gone)")
        elif key not in old:
            out.append(f"{key} (new) -> {new[key]}")
        elif old[key] != new[key]:
            out.append(f"{key} {old[key]} -> {new[key]}")
    return out


# ------------------------------------------------------------------------------------------------ images


@dataclass(frozen=True)
class ImageRef:
    registry: str  # host[:port]
    repository: str  # org/name
    tag: str | None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """The tag or digest, as the registry API takes it."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}" + (f"@{self.digest}" if self.digest else f":{self.tag}")

    def with_tag(self, tag: str) -> ImageRef:
        return ImageRef(self.registry, self.repository, tag)


_REF = re.compile(r"^(?P<registry>[a-z0-9.-]+(?::\d+)?|\[[0-9a-f:]+\](?::\d+)?)/(?P<repository>[a-z0-9._/-]+?)"
                  r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$")


def image_ref(uri: str) -> ImageRef | None:
    """The registry reference of an image URI (docker:// or oras://, or none); None when it is not one."""
    text = re.sub(r"^(docker|oras)://", "", uri)
    if "://" in text:
        return None  # library://, shub://: not an OCI registry
    match = _REF.match(text)
    if match is None or ("." not in match["registry"] and ":" not in match["registry"] \
            and match["registry"] != "localhost"):
        return None
    return ImageRef(match["registry"], match["repository"], match["tag"] or (None if match["digest"] else "latest"),
                    match["digest"])


def parse_mirrors(text: str) -> dict[str, str]:
    """`FROM=TO[,FROM=TO]`: registry hosts to read from another host (a mirror, a local registry)."""
    mirrors = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        source, sep, target = item.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise ValueError(f"{item!r} is not FROM=TO (e.g. ghcr.io=127.0.0.1:5000)")
        mirrors[source.strip()] = target.strip()
    return mirrors


def mirrored(ref: ImageRef, mirrors: Mapping[str, str]) -> ImageRef:
    return ImageRef(mirrors.get(ref.registry, ref.registry), ref.repository, ref.tag, ref.digest)


def referrers_tag(digest: str) -> str:
    """The OCI 1.1 referrers tag schema, for registries without the referrers API (of a checked digest)."""
    return check_digest(digest).replace(":", "-")
