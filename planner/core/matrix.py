"""A matrix manifest as experiment variants: `variants import-matrix`. Pure (text in, text out).

A matrix manifest (an app's upstream image matrix, apps.Definition.image_manifest) lists images and their artifacts:
`images: [{name: ghcr.io/org/app:tag, artifact: ghcr.io/org/app:tag-compspec}, ...]`. Each image becomes
a container variant named after its tag, declared by its URI alone; its attributes come from the artifact
(`planner variants fetch`). The variants are added to the experiment's text after its last variant, so
its comments and layout stay as they were; a variant whose image is already declared is kept as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from planner.core import yamlfile
from planner.core.compspec import TAG_SUFFIX, image_ref
from planner.core.errors import InputError
from planner.core.experiment import parse_experiment


@dataclass(frozen=True)
class MatrixImage:
    variant: str
    image: str  # docker://host/org/app:tag
    compspec: str | None  # the artifact's reference where it is not `<image>-compspec`


class _Entry(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str
    artifact: str | None = None


class _Manifest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    images: list[_Entry] = Field(min_length=1)


def parse_matrix(text: str, source: str) -> list[MatrixImage]:
    document = yamlfile.load(text, source)
    try:
        manifest = _Manifest.model_validate(document.data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = tuple(first["loc"])
        raise InputError(f"{first['msg']}; a matrix manifest is `images: [{{name: IMAGE, artifact: REF}}, ...]`",
                         file=source, line=document.line_of(loc) or 1, field=yamlfile.dotted(loc)) from None
    out = []
    for index, entry in enumerate(manifest.images):
        ref = image_ref(entry.name)
        if ref is None or ref.tag is None:
            raise InputError(f"{entry.name!r} is not an image reference such as ghcr.io/org/app:tag", file=source,
                             line=document.line_of(("images", index)), field=f"images[{index}].name")
        compspec = entry.artifact if entry.artifact not in (None, f"{entry.name}{TAG_SUFFIX}") else None
        out.append(MatrixImage(re.sub(r"[^a-z0-9_.-]", "-", ref.tag.lower()).lstrip("-_.") or "latest",
                               f"docker://{entry.name}", compspec))
    return out


def add_variants(text: str, source: str, images: list[MatrixImage]) -> tuple[str, list[str], list[str]]:
    """The experiment text with the images added as variants; (text, added names, names already there)."""
    exp = parse_experiment(text, source)
    declared = {variant.image: name for name, variant in exp.variants.items() if variant.image}
    added, kept, blocks = [], [], []
    for item in images:
        if item.image in declared:
            kept.append(declared[item.image])
            continue
        if item.variant in exp.variants or item.variant in added:
            raise exp.error(f"variant {item.variant} already exists with another image; the matrix has "
                            f"{item.image} (rename one of them)", "variants", item.variant)
        entry: dict[str, Any] = {"image": item.image}
        if item.compspec:
            entry["compspec"] = item.compspec
        blocks.append(yaml.safe_dump({item.variant: entry}, default_flow_style=False, sort_keys=False))
        added.append(item.variant)
    if not blocks:
        return text, added, kept
    variants = _variants_node(yamlfile.load(text, source).node)
    if variants is None or variants.flow_style or not variants.value:
        raise exp.error("import-matrix adds to a block mapping of variants; write `variants:` with one "
                        "variant on its own lines first", "variants")
    indent = " " * variants.value[0][0].start_mark.column
    end = text.find("\n", _last_scalar(variants).end_mark.index)
    end = len(text) if end < 0 else end
    added_text = "".join(indent + line + "\n" for block in blocks for line in block.splitlines())
    new_text = text[:end] + "\n" + added_text.rstrip("\n") + text[end:]
    if not new_text.endswith("\n"):
        new_text += "\n"
    parse_experiment(new_text, source)  # what is written must load
    return new_text, added, kept


def _variants_node(root: yaml.Node | None) -> yaml.MappingNode | None:
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "variants" and isinstance(value, yaml.MappingNode):
                return value
    return None


def _last_scalar(node: yaml.Node) -> yaml.Node:
    while isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.value:
        last = node.value[-1]
        node = last[1] if isinstance(last, tuple) else last
    return node
