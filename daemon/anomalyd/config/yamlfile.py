"""Read the config file's YAML strictly and within bounds.

PyYAML's `safe_load` takes a repeated key silently (the last wins: two `http:` blocks
lose the first one's token), and expands aliases without limit: a few hundred bytes of
nested aliases (a "billion laughs" file) make gigabytes and minutes of work, which a
reload would spend inside the worker. So this loader

- refuses a file over `MAX_BYTES`;
- composes the node graph first (aliases are shared nodes there, nothing is expanded
  yet) and refuses one whose expansion would exceed `MAX_NODES` nodes, counted over the
  graph with memoisation, so the count itself is linear in the file;
- refuses a repeated key in a mapping, naming both lines.

Anchors, aliases and merge keys (`<<: *defaults`) stay usable within those bounds.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

#: The largest config file accepted; real ones are a few kilobytes.
MAX_BYTES = 1024 * 1024
#: The most YAML nodes the document may expand to, aliases counted at each use.
MAX_NODES = 200_000

_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlProblem(ValueError):
    """The text is not a config document this loader accepts; the message says where."""


def load_yaml(text: str) -> Any:
    """The document in `text` (None when it holds none); raises YamlProblem or
    yaml.YAMLError."""
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_BYTES:
        raise YamlProblem(f"the file is {size} bytes; the limit is {MAX_BYTES}")
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded = _expanded_size(node)
        if expanded > MAX_NODES:
            raise YamlProblem(
                f"aliases expand the document to more than {MAX_NODES} nodes"
                " (an alias bomb?); write the values out or use fewer nested aliases"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded_size(root: Node) -> int:
    """How many nodes the document has once every alias is expanded: a node shared
    through aliases counts once per use. Memoised per node, so a bomb costs a few
    operations per distinct node; stops early past MAX_NODES; a node that contains
    itself (a recursive alias) counts as too large."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in in_progress:
            return MAX_NODES + 1  # recursive: infinite once expanded
        total = 1
        if not isinstance(node, ScalarNode):
            in_progress.add(key)
            for child in _children(node):
                total += size(child)
                if total > MAX_NODES:
                    break
            in_progress.discard(key)
        sizes[key] = total
        return total

    return size(root)


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses repeated keys in a mapping."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        self._refuse_repeated_keys(node)
        return super().construct_mapping(node, deep=deep)

    def _refuse_repeated_keys(self, node: MappingNode) -> None:
        # Before merge keys are flattened: keys a merge brings in may be overridden.
        first: dict[Any, Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, ScalarNode):
                continue
            key = self.construct_object(key_node, deep=True)
            if key in first:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found a repeated key {key!r} (first at {_mark(first[key].start_mark)})",
                    key_node.start_mark,
                )
            first[key] = key_node


def _mark(mark: yaml.Mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


Location = tuple[str | int, ...]


def key_lines(text: str) -> dict[Location, int]:
    """The line (1-based) where each key path of the document is written:
    {("http", "port"): 12, ("rules", 0): 30, ...}. Aliases are not followed (what they
    bring in is written elsewhere); keys that are not text or numbers are skipped. Call it
    on text `load_yaml` accepted: the walk is then bounded by the document's size."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    lines: dict[Location, int] = {}
    seen: set[int] = set()

    def walk(node: Node, path: Location) -> None:
        if id(node) in seen:  # an alias: its anchor's lines are already recorded
            return
        seen.add(id(node))
        if isinstance(node, MappingNode):
            for key_node, value in node.value:
                if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
                    continue
                child = (*path, key_node.value)
                lines.setdefault(child, key_node.start_mark.line + 1)
                walk(value, child)
        elif isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                lines.setdefault((*path, i), item.start_mark.line + 1)
                walk(item, (*path, i))

    if root is not None:
        walk(root, ())
    return lines
