"""Safe YAML loading that remembers where every value came from.

``yaml.safe_load`` alone is not enough for a tool that must answer every bad document with one
clear message: it accepts duplicate keys silently, alias "billion laughs" documents expand into
exponential work for whatever walks the result, and it forgets line numbers. Here the document is
composed into nodes first, bounded (bytes, nesting, expanded size, cycles), checked for duplicate
keys, indexed by field path, and only then constructed with PyYAML's safe constructor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import Problem, ShotListError

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
MAX_EXPANDED_NODES = 200_000  # nodes after alias expansion; a 1,000-shot list uses ~20,000
MAX_DEPTH = 40  # the shot-list schema is at most 5 levels deep

PathKey = tuple[str | int, ...]
Mark = tuple[int, int]  # 1-based line, column


@dataclass
class LoadedYaml:
    """A constructed document and the ``line:col`` of each field path in it."""

    data: Any
    source: str
    value_marks: dict[PathKey, Mark] = field(default_factory=dict)
    key_marks: dict[PathKey, Mark] = field(default_factory=dict)

    def mark(self, path: PathKey, *, key: bool = False) -> Mark | None:
        """Where ``path`` is written; falls back to the nearest enclosing field."""
        table = self.key_marks if key else self.value_marks
        probe = tuple(path)
        while probe:
            if probe in table:
                return table[probe]
            if probe in self.value_marks:
                return self.value_marks[probe]
            probe = probe[:-1]
        return self.value_marks.get((), None)


def _fail(source: str, message: str, line: int | None = None, column: int | None = None,
          hint: str = "") -> ShotListError:
    return ShotListError(source, [Problem(message, line=line, column=column, hint=hint)])


def _decode(raw: bytes, source: str) -> str:
    if not raw.strip():
        raise _fail(source, "the document is empty", hint="a shot list starts with 'version: 1'")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _fail(source, f"byte 0x{raw[exc.start]:02x} is not valid UTF-8", line, column,
                    "save the file as UTF-8") from None


def _mark_of(node: yaml.Node) -> Mark:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Walker:
    """Bounds the node graph and indexes it by field path."""

    def __init__(self, loader: yaml.SafeLoader, source: str, result: LoadedYaml) -> None:
        self.loader = loader
        self.source = source
        self.result = result
        self._sizes: dict[int, int] = {}

    def expanded_size(self, node: yaml.Node, depth: int = 0, active: frozenset[int] = frozenset()) -> int:
        """Node count with every alias expanded; memoised so that counting stays linear."""
        ident = id(node)
        if ident in active:
            raise _fail(self.source, "an alias refers to itself (a recursive structure)", *_mark_of(node))
        if depth > MAX_DEPTH:
            raise _fail(self.source, f"nesting deeper than {MAX_DEPTH} levels", *_mark_of(node))
        if ident in self._sizes:
            return self._sizes[ident]
        size = 1
        if isinstance(node, yaml.SequenceNode):
            for child in node.value:
                size += self.expanded_size(child, depth + 1, active | {ident})
                self._check_total(size, node)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                size += self.expanded_size(key, depth + 1, active | {ident})
                size += self.expanded_size(value, depth + 1, active | {ident})
                self._check_total(size, node)
        self._sizes[ident] = size
        return size

    def _check_total(self, size: int, node: yaml.Node) -> None:
        if size > MAX_EXPANDED_NODES:
            raise _fail(self.source, f"the document expands to more than {MAX_EXPANDED_NODES:,} values "
                        "(alias expansion bomb?)", *_mark_of(node), "use fewer aliases")

    def index(self, node: yaml.Node, path: PathKey) -> None:
        """Record marks for every path and reject duplicate keys."""
        self.result.value_marks.setdefault(path, _mark_of(node))
        if isinstance(node, yaml.SequenceNode):
            for i, child in enumerate(node.value):
                self.index(child, (*path, i))
        elif isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)  # resolve '<<' merge keys the way construction will
            seen: dict[Any, Mark] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise _fail(self.source, "mapping keys must be plain text", *_mark_of(key_node))
                key = key_node.value
                if key in seen:
                    first = seen[key]
                    raise _fail(self.source, f"duplicate key '{key}'", *_mark_of(key_node),
                                f"first given at line {first[0]}")
                seen[key] = _mark_of(key_node)
                child_path = (*path, key)
                self.result.key_marks.setdefault(child_path, _mark_of(key_node))
                self.index(value_node, child_path)


def load_yaml_bytes(raw: bytes, source: str) -> LoadedYaml:
    """Parse one YAML document from bytes, bounded and indexed. Raises ShotListError."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise _fail(source, f"the document is {len(raw):,} bytes; the limit is {MAX_DOCUMENT_BYTES:,}")
    text = _decode(raw, source)
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            message = exc.problem or str(exc)
            if exc.context and "single document" in exc.context:
                message = "expected one YAML document, found several ('---' separators)"
            raise _fail(source, f"YAML syntax error: {message}",
                        mark.line + 1 if mark else None, mark.column + 1 if mark else None) from None
        except yaml.YAMLError as exc:
            raise _fail(source, f"YAML error: {exc}") from None
        except RecursionError:
            raise _fail(source, "nesting too deep to read") from None
        if node is None:
            raise _fail(source, "the document is empty", hint="a shot list starts with 'version: 1'")
        result = LoadedYaml(data=None, source=source)
        walker = _Walker(loader, source, result)
        walker.expanded_size(node)
        walker.index(node, ())
        try:
            result.data = loader.construct_document(node)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            raise _fail(source, f"cannot read value: {exc.problem}",
                        mark.line + 1 if mark else None, mark.column + 1 if mark else None) from None
        except (yaml.YAMLError, ValueError, OverflowError, TypeError) as exc:
            raise _fail(source, f"cannot read value: {exc}") from None
        return result
    finally:
        loader.dispose()


def load_yaml_file(path: Path) -> LoadedYaml:
    """Read and parse a YAML file; unreadable files become a ShotListError naming the file."""
    source = str(path)
    try:
        if path.is_dir():
            raise _fail(source, "is a folder, not a file")
        with path.open("rb") as handle:
            raw = handle.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError:
        raise _fail(source, "no such file") from None
    except (IsADirectoryError, PermissionError, OSError) as exc:
        raise _fail(source, f"cannot read: {exc.strerror or exc}") from None
    return load_yaml_bytes(raw, source)
