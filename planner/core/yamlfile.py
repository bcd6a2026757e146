"""The one way compat-lab reads a YAML file a user wrote (experiments, references, matrix manifests). Pure.

`load` parses with libyaml where PyYAML has it, refuses duplicate mapping keys, an alias that contains
itself and documents that expand beyond `MAX_YAML_NODES` values (an alias bomb costs its size in the
file, not its expansion), and keeps the node tree so that an error found later (by a schema, by a
cross-reference check) names the line it comes from: `Document.line_of(path)` and `dotted(path)`.
Every failure is an `InputError` naming the file and, where known, the line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from planner.core.errors import InputError

#: values (mapping keys, values and list items, aliases expanded) a document may hold
MAX_YAML_NODES = 200_000
#: bytes a YAML file the user names may hold
MAX_FILE_BYTES = 16 << 20

Path = tuple[Any, ...]

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    """Refuses duplicate mapping keys: a silently overwritten variant is a lost afternoon."""


def _construct_mapping(loader: Any, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: merged keys may be overridden
            continue
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None, None, f"a mapping key must be a plain name, not a {key_node.id}", key_node.start_mark)
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _expanded_size(node: yaml.Node, sizes: dict[int, int | None]) -> int:
    """How many nodes the document has once every alias is expanded (each shared node counted once
    per use, computed once)."""
    if id(node) in sizes:
        size = sizes[id(node)]
        if size is None:
            raise InputError(f"an alias refers to the node that contains it (line {node.start_mark.line + 1}); "
                             "a YAML file here is a tree")
        return size
    sizes[id(node)] = None  # being counted: meeting it again below is a recursive alias
    children: list[yaml.Node] = []
    if isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    size = sizes[id(node)] = 1 + sum(_expanded_size(child, sizes) for child in children)
    return size


def _line_map(node: yaml.Node, path: Path = ()) -> dict[Path, int]:
    lines = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*path, key_node.value)
            lines.update(_line_map(value_node, child))
            lines[child] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_line_map(item, (*path, index)))
    return lines


def line_for(lines: dict[Path, int], path: Path) -> int | None:
    """The line of `path`, or of its nearest ancestor the file has."""
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def dotted(path: Path) -> str:
    """`sweeps[0].options.env` for ("sweeps", 0, "options", "env")."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass(frozen=True)
class Document:
    data: Any  # what the file holds, as Python values (None for an empty file)
    node: yaml.Node | None  # the node tree, for where things are in the text
    lines: dict[Path, int] = field(default_factory=dict)  # each key's and item's line (1-based)

    def line_of(self, path: Path) -> int | None:
        return line_for(self.lines, path)


def load(text: str, source: str, max_nodes: int = MAX_YAML_NODES) -> Document:
    """Parse `text` (named `source` in messages), or raise InputError naming the file and line."""
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            try:
                size = _expanded_size(node, {})
            except InputError as err:
                raise InputError(err.detail, file=source, line=1) from None
            if size > max_nodes:
                raise InputError(f"the YAML expands to more than {max_nodes:,} values (aliases included); "
                                 "a file here is far smaller", file=source, line=1)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise InputError(f"not valid YAML: {err.problem or err.context}", file=source,
                         line=mark.line + 1 if mark else None) from None
    except yaml.YAMLError as err:  # a reader error (a control character) without a mark
        raise InputError(f"not valid YAML: {err}", file=source) from None
    except RecursionError:
        raise InputError("the YAML is nested too deeply", file=source) from None
    finally:
        loader.dispose()
    return Document(data, node, _line_map(node) if node is not None else {})
