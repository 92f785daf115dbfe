"""Reading and writing the configuration file's YAML, with the line of every key kept.

The loader is PyYAML's safe loader without base-60 numbers (``22:00`` stays text, not YAML 1.1's
1320) and without duplicate keys (a key given twice in one mapping is an error). Reading keeps
:data:`Marks`: the line of each key and list item by its path (``("operators", 0, "channels",
"sms", "url")``), so every problem can say where it is.

Aliases (``*name``) are read, but a file whose aliases refer to a node that contains them (it
would never end) or expand it past :data:`MAX_VALUES` values ("billion laughs") is refused before
it is built: such a file made ``msgd config load`` run forever.
"""

from __future__ import annotations

import os
import re
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[str | int, ...]
Marks = dict[Path_, int]
"""1-based line of each key (or list item) of the file, by its path."""

_INT_RE = re.compile(
    r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"
)
_FLOAT_RE = re.compile(
    r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_NO_SEXAGESIMAL = {"tag:yaml.org,2002:int": _INT_RE, "tag:yaml.org,2002:float": _FLOAT_RE}


class ConfigError(ValueError):
    """The file was refused; ``errors`` name each problem and its place."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(f"- {e}" for e in self.errors))


MAX_VALUES = 200_000
"""Keys, values and items of one file, aliases counted each time they are used."""


def _check_expansion(root: yaml.Node) -> None:
    """ConfigError when aliases make ``root`` cyclic or larger than MAX_VALUES (a walk that stops
    at the first of either, so its cost is bounded whatever the file)."""
    count, on_path = 0, set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        if leaving:
            on_path.discard(id(node))
            continue
        if id(node) in on_path:
            mark = node.start_mark
            raise ConfigError([f"line {mark.line + 1}, column {mark.column + 1}: this anchor's value refers"
                               " to itself through an alias (*name): it would never end"])
        count += 1
        if count > MAX_VALUES:
            raise ConfigError([f"the file expands to more than {MAX_VALUES} values through its aliases"
                               " (*name): write the repeated parts out, or repeat them less"])
        if isinstance(node, yaml.SequenceNode):
            children: list[yaml.Node] = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            continue
        on_path.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(children))


class Loader(yaml.SafeLoader):
    """Safe YAML without base-60 numbers (``22:00`` stays text) and without duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            if key_node.value in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"key {key_node.value!r} appears twice",
                    key_node.start_mark,
                )
            seen.add(key_node.value)
        return super().construct_mapping(node, deep)


Loader.yaml_implicit_resolvers = {
    first: [(tag, _NO_SEXAGESIMAL.get(tag, rx)) for tag, rx in resolvers]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class Dumper(yaml.SafeDumper):
    """Block style; multi-line texts as ``|`` literals."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


Dumper.add_representer(str, _represent_str)


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=Dumper, allow_unicode=True, sort_keys=False, width=100)


def _marks(node: yaml.Node, path: Path_, marks: Marks, depth: int = 0) -> None:
    """Record the line of every key and item below ``node`` (anchors' aliases included once)."""
    if depth > 64:
        return
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                where = (*path, key.value)
                _marks(value, where, marks, depth + 1)
                marks[where] = key.start_mark.line + 1  # the key's line, not its value's
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            marks[(*path, i)] = item.start_mark.line + 1
            _marks(item, (*path, i), marks, depth + 1)


def load_yaml(text: str) -> tuple[Any, Marks]:
    """(data, marks) of one YAML document; ConfigError naming the line of a syntax error."""
    loader = Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_expansion(node)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        raise ConfigError([f"{where}{problem}" + (f" ({context})" if context else "")]) from None
    finally:
        loader.dispose()
    marks: Marks = {}
    if node is not None:
        _marks(node, (), marks)
    return data, marks


def _looks_like_path(text: str) -> bool:
    if "\n" in text or not text.strip():
        return False
    if text.endswith((".yaml", ".yml", ".json")):
        return True
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # too long for a file name, NUL bytes: it is YAML text
        return False


def read(source: str | os.PathLike[str] | Mapping[str, Any]) -> tuple[Any, Marks]:
    """(data, marks) from a file path, YAML text or an already parsed mapping (no marks)."""
    if isinstance(source, Mapping):
        return dict(source), {}
    if isinstance(source, os.PathLike) or _looks_like_path(source):
        path = Path(source)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise ConfigError([f"{path}: no such file"]) from None
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read ({exc.strerror or exc})"]) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise ConfigError([f"{path}, line {line}: not UTF-8 text (byte {exc.start}): save the file as"
                               " UTF-8 (an editor's \"Windows-1251\" or \"ANSI\" encoding is not read)"]) from None
        return load_yaml(text)
    return load_yaml(source)


def parse_yaml(text: str) -> Any:
    """The data of one YAML document (msgd's reading of YAML); ConfigError on a syntax error."""
    return load_yaml(text)[0]
