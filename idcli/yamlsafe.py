"""Safe YAML loading that remembers where every value came from.

``yaml.safe_load`` alone is not enough for a tool that must answer every bad document with one
clear message: it accepts duplicate keys silently, alias "billion laughs" documents expand into
exponential work for whatever walks the result, and it forgets line numbers. Here the document is
composed into nodes first, bounded (bytes, nesting, expanded size, cycles), checked for duplicate
keys, indexed by field path, and only then constructed with PyYAML's safe constructor.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import Problem, ShotListError
from .not_photos import APPLEDOUBLE_MAGIC
from .yamlhints import (
    indicator_problem,
    key_starts_with_unicode_space,
    placeholder_mapping,
    syntax_problem,
    unicode_space_problem,
)

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
MAX_EXPANDED_NODES = 200_000  # nodes after alias expansion; a 1,000-shot list uses ~20,000
MAX_DEPTH = 40  # the shot-list schema is at most 5 levels deep
_SURROGATE = re.compile("[\ud800-\udfff]")
_WRITABLE_BITS = 2_100  # at most 633 digits: under the least limit sys.set_int_max_str_digits takes (640)
_NOT_TEXT_TAGS = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool"}

PathKey = tuple[str | int, ...]
Mark = tuple[int, int]  # 1-based line, column
# The hint for a number written with a decimal comma in a {...} mapping ('steps: 2,5'), from the field's path and the
# text as written ('2,5'): what that field takes is the schema's to say, not YAML's (shotlist_problems.
# decimal_comma_hint); None, or no hook: "write a decimal point".
CommaHint = Callable[[PathKey, str], str | None]


def _writable(number: int) -> bool:
    """Whether Python can write ``number`` in decimal (every message does): past ``sys.get_int_max_str_digits()``
    it raises ValueError."""
    try:
        str(number)
    except ValueError:
        return False
    return True


@dataclass
class LoadedYaml:
    """A constructed document and the ``line:col`` of each field path in it."""

    data: Any
    source: str
    value_marks: dict[PathKey, Mark] = field(default_factory=dict)
    key_marks: dict[PathKey, Mark] = field(default_factory=dict)
    # For plain-words hints (idcli/yamlhints.py): unquoted scalars YAML read as numbers or booleans, as
    # written ("0010"), and flow mappings of keys without values as written ("{mara}").
    plain_scalars: dict[PathKey, str] = field(default_factory=dict)
    flow_placeholders: dict[PathKey, str] = field(default_factory=dict)
    # [...] lists written on one line, as written ("[dusk]"): a text field's fix quotes the value itself (not {...}
    # mappings: '{mara: grief}' quoted is a placeholder idcli refuses, so the general fix stays).
    flow_texts: dict[PathKey, str] = field(default_factory=dict)
    # Text values written over several lines, as (style, start line, start column, end line, end column), 0-based,
    # and the document's lines: a note names the line inside a block prompt that holds its words (text_marks.py).
    text_spans: dict[PathKey, tuple[str | None, int, int, int, int]] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list, repr=False, compare=False)
    # text_marks.py's match of a span to its text, made once however many aliases and notes ask for it.
    text_matches: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

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


def path_text(path: PathKey) -> str:
    """A field path as people write it: ``shots[3].size``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _fail(source: str, message: str, line: int | None = None, column: int | None = None,
          hint: str = "", path: PathKey = ()) -> ShotListError:
    problem = Problem(message, path_text(path), line, column, hint)
    return ShotListError(source, [problem])


def _decode(raw: bytes, source: str) -> str:
    if not raw.strip():
        raise _fail(source, "the document is empty", hint="a shot list starts with 'version: 1'")
    if raw.startswith(APPLEDOUBLE_MAGIC) and (name := Path(source).name).startswith("._"):
        # `idcli validate ._shots.yaml` (tab completion on a USB stick a Mac wrote): "control character U+0000".
        raise _fail(source, f"this is a macOS AppleDouble file (the Finder's metadata for '{name[2:]}'), not a shot "
                    "list", 1, 1, f"give '{name[2:]}'")
    if (utf16 := _utf16_kind(raw)) is not None:
        # Notepad's "Unicode" encodings: every character two bytes, so the first non-ASCII byte (or a NUL YAML
        # refuses) landed anywhere, and "byte 0xff is not valid UTF-8" named neither the encoding nor the fix.
        raise _fail(source, f"the file is saved as {utf16}, not UTF-8", 1, 1,
                    "save it as UTF-8: in Notepad, File > Save as with Encoding UTF-8; in VS Code, click the encoding "
                    "in the status bar, then Save with Encoding > UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _fail(source, f"byte 0x{raw[exc.start]:02x} is not valid UTF-8", line, column,
                    "save the file as UTF-8") from None


def _utf16_kind(raw: bytes) -> str | None:
    """"UTF-16 LE" or "UTF-16 BE" when ``raw`` is text in UTF-16: its byte order mark, or (without one) a NUL byte
    beside each of its first ASCII characters; None otherwise. A shot list starts with ASCII ('version: 1', a
    comment), so a UTF-8 one never has NULs there."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16 LE" if raw.startswith(b"\xff\xfe") else "UTF-16 BE"
    head = raw[:64]
    pairs = len(head) // 2
    if pairs >= 2:
        if all(head[2 * i + 1] == 0 and head[2 * i] != 0 for i in range(pairs)):
            return "UTF-16 LE"
        if all(head[2 * i] == 0 and head[2 * i + 1] != 0 for i in range(pairs)):
            return "UTF-16 BE"
    return None


def _mark_of(node: yaml.Node) -> Mark:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _mark_of_yaml(mark: yaml.Mark | None) -> Mark | None:
    return (mark.line + 1, mark.column + 1) if mark else None


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with the bounds applied while reading, not after.

    Counting values only once the node graph was composed let a flat 3.8 MB list (under the byte
    limit) take 30 s and 1.2 GB before it was refused, and a few thousand '[' cost PyYAML quadratic
    work until Python's recursion limit stopped it. Here composition stops at the value limit, and
    the scanner stops at the nesting limit, where the document says so.
    """

    def __init__(self, text: str, source: str) -> None:
        super().__init__(text)
        self._source = source
        self._composed = 0
        # 'prompt: &grainy film, {mara}': an anchor on a text no alias refers to took the first word silently.
        self.scalar_anchors: dict[int, str] = {}
        self.aliased: set[str] = set()

    def _too_deep(self) -> ShotListError:
        mark = self.get_mark()
        return _fail(self._source, f"nesting deeper than {MAX_DEPTH} levels", mark.line + 1, mark.column + 1)

    def fetch_flow_collection_start(self, token_class: Any) -> None:
        if self.flow_level >= MAX_DEPTH:  # '[' or '{' inside MAX_DEPTH others: deeper than any node may be
            raise self._too_deep()
        super().fetch_flow_collection_start(token_class)

    def add_indent(self, column: int) -> bool:
        added = super().add_indent(column)
        if added and len(self.indents) > MAX_DEPTH:
            raise self._too_deep()
        return added

    def compose_scalar_node(self, anchor: Any) -> Any:  # the stub says dict; PyYAML passes the name
        node = super().compose_scalar_node(anchor)
        if anchor is not None:
            self.scalar_anchors[id(node)] = anchor
        return node

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliased.add(self.peek_event().anchor)
        if not self.check_event(yaml.AliasEvent):  # an alias adds no node to hold (expansion is bounded later)
            self._composed += 1
            if self._composed > MAX_EXPANDED_NODES:
                mark = self.peek_event().start_mark
                raise _fail(self._source, f"the document holds more than {MAX_EXPANDED_NODES:,} values",
                            mark.line + 1, mark.column + 1, "split it into several shot lists")
        return super().compose_node(parent, index)


class _Walker:
    """Bounds the node graph and indexes it by field path."""

    def __init__(self, loader: _BoundedLoader, source: str, result: LoadedYaml, text: str = "",
                 comma_hint: CommaHint | None = None) -> None:
        self.loader = loader
        self.comma_hint = comma_hint
        self.source = source
        self.result = result
        self.lines = text.splitlines()
        self._sizes: dict[int, int] = {}
        self._keys_checked: set[int] = set()

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

    def _check_scalar(self, node: yaml.ScalarNode, path: PathKey) -> None:
        """Construct one scalar now, so that a value PyYAML cannot build is reported at its line.

        Without this, a 5,000-digit integer or a date like 2024-13-45 failed later inside
        ``construct_document`` with no position at all. The result is cached by the loader, so the
        document is not constructed twice.
        """
        try:
            value = self.loader.construct_object(node)
            if type(value) is int and value.bit_length() > _WRITABLE_BITS and not _writable(value):
                # 0777…, 0xfff…: octal and hex are read whatever their length, but not written past the limit
                raise ValueError("past Python's limit on the digits of an int written out")
            if isinstance(value, str) and (surrogate := _SURROGATE.search(value)):
                # "\ud800" escapes (JSON-style surrogate pairs included) are not characters; they reached
                # pydantic and the file system as UnicodeEncodeError tracebacks.
                code = ord(surrogate.group())
                raise _fail(self.source, f"\\u{code:04x} is a UTF-16 surrogate, not a character", *_mark_of(node),
                            "write the character itself, or a \\U0001F600-style escape", path=path)
        except yaml.MarkedYAMLError as exc:
            # 'prompt: !grainy film, {mara}': a text that starts with '!' is a tag no constructor knows.
            said = indicator_problem(self.lines, _mark_of(node)[0]) if node.tag.startswith("!") else None
            if said is not None:
                raise _fail(self.source, said[0], said[2], said[3], said[1], path=path) from None
            raise _fail(self.source, f"cannot read value: {exc.problem}", *_mark_of(node),
                        path=path) from None
        except (yaml.YAMLError, ValueError, OverflowError, TypeError) as exc:
            message = f"cannot read value: {exc}"
            if node.tag == "tag:yaml.org,2002:int":
                message = f"the number is too large ({len(node.value):,} digits)"
            raise _fail(self.source, message, *_mark_of(node), path=path) from None

    def _check_lost_anchor(self, node: yaml.ScalarNode, path: PathKey) -> None:
        """An unquoted text starting with '&' that no alias uses: YAML took its first word as an anchor's name and
        dropped it from the text, without an error. An anchor an alias refers to was meant; so was a quoted text's."""
        anchor = self.loader.scalar_anchors.get(id(node))
        if anchor is None or anchor in self.loader.aliased or node.style is not None:
            return
        said = indicator_problem(self.lines, _mark_of(node)[0])
        if said is not None:
            raise _fail(self.source, f"{said[0]}: the text is '{node.value}', without '&{anchor}'", said[2], said[3],
                        said[1], path=path)

    def _check_duplicates(self, node: yaml.MappingNode, path: PathKey) -> None:
        """Reject a key written twice in one mapping.

        Only keys written in the mapping itself count: keys brought in by a '<<' merge may be
        overridden there (that is what merge keys are for), so this runs before flattening and
        once per node (an aliased node has been flattened by the time it is visited again).
        """
        if id(node) in self._keys_checked:
            return
        self._keys_checked.add(id(node))
        seen: dict[Any, Mark] = {}
        for key_node, _value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise _fail(self.source, "mapping keys must be plain text", *_mark_of(key_node), path=path)
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = key_node.value
            if key_node.style is None and isinstance(key, str) and key_starts_with_unicode_space(key):
                # A line indented with U+00A0 (copied from a web page): YAML read '\u00a0\u00a0 prompt' as a key.
                line, column = _mark_of(key_node)
                message, hint, *at = unicode_space_problem(self.lines, line, line) or (
                    "a key starts with a Unicode space, not an ordinary one", "replace it with ordinary spaces",
                    line, column)
                raise _fail(self.source, message, at[0], at[1], hint)
            if key in seen:
                first = seen[key]
                raise _fail(self.source, f"duplicate key '{key}'", *_mark_of(key_node),
                            f"first given at line {first[0]}", path=(*path, key))
            seen[key] = _mark_of(key_node)

    def _check_decimal_commas(self, node: yaml.MappingNode, path: PathKey) -> None:
        """'{label: joy, intensity: 0,5}': in a flow mapping the comma ends the value, and YAML reads intensity 0 and
        a key 5 with no value, which pydantic refused as 'Keys should be strings' (the number silently cut). A whole
        number, a comma with no space, then a whole number as a key without a value is a decimal comma."""
        for (key, value), (after, its_value) in zip(node.value, node.value[1:], strict=False):
            numbers = [n for n in (value, after) if isinstance(n, yaml.ScalarNode) and n.style is None
                       and n.tag.endswith(":int")]
            if len(numbers) < 2 or not isinstance(key, yaml.ScalarNode) or not isinstance(its_value, yaml.ScalarNode) \
                    or not its_value.tag.endswith(":null") or its_value.value:
                continue
            end, start = value.end_mark, after.start_mark
            if end.line != start.line or self.lines[end.line][end.column:start.column] != ",":
                continue
            written = f"{key.value}: {value.value},{after.value}"
            hint = self.comma_hint((*path, key.value), f"{value.value},{after.value}") if self.comma_hint else None
            raise _fail(self.source, f"the comma in '{written}' ends the value in a {{...}} mapping, so YAML reads "
                        f"{key.value}: {value.value} and a key {after.value}", *_mark_of(value),
                        hint or f"write a decimal point: {key.value}: {value.value}.{after.value}",
                        path=(*path, key.value))

    def index(self, node: yaml.Node, path: PathKey) -> None:
        """Record marks for every path and reject duplicate keys."""
        self.result.value_marks.setdefault(path, _mark_of(node))
        start, end = node.start_mark, node.end_mark
        if isinstance(node, yaml.SequenceNode) and node.flow_style and start.line == end.line:
            self.result.flow_texts.setdefault(path, self.lines[start.line][start.column:end.column])
        if isinstance(node, yaml.ScalarNode):
            self._check_scalar(node, path)
            self._check_lost_anchor(node, path)
            if node.style is None and node.tag in _NOT_TEXT_TAGS:
                self.result.plain_scalars.setdefault(path, node.value)
            elif start.line != end.line and node.tag == "tag:yaml.org,2002:str":
                self.result.text_spans.setdefault(path, (node.style, start.line, start.column, end.line, end.column))
        elif isinstance(node, yaml.SequenceNode):
            for i, child in enumerate(node.value):
                self.index(child, (*path, i))
        elif isinstance(node, yaml.MappingNode):
            self._check_duplicates(node, path)
            try:
                self.loader.flatten_mapping(node)  # resolve '<<' merge keys the way construction will
            except yaml.MarkedYAMLError as exc:
                # '<<: 5' or '<<: [1]': this used to escape as a traceback.
                mark = exc.problem_mark or node.start_mark
                raise _fail(self.source, f"bad merge key: {exc.problem}", mark.line + 1,
                            mark.column + 1, path=path) from None
            # After flattening, merged keys come first and the mapping's own keys last; the last
            # one wins in construction, so it is also the one whose position is recorded.
            effective: dict[Any, tuple[yaml.Node, yaml.Node]] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise _fail(self.source, "mapping keys must be plain text", *_mark_of(key_node),
                                path=path)
                self._check_scalar(key_node, path)
                effective[key_node.value] = (key_node, value_node)
            if node.flow_style:
                self._check_decimal_commas(node, path)
                written = placeholder_mapping([k.value for k, _ in node.value],
                                              [None if isinstance(v, yaml.ScalarNode) and v.tag.endswith(":null")
                                               else v for _, v in node.value])
                if written:
                    self.result.flow_placeholders.setdefault(path, written)
            for key, (key_node, value_node) in effective.items():
                child_path = (*path, key)
                self.result.key_marks.setdefault(child_path, _mark_of(key_node))
                self.index(value_node, child_path)


def load_yaml_bytes(raw: bytes, source: str, comma_hint: CommaHint | None = None) -> LoadedYaml:
    """Parse one YAML document from bytes, bounded and indexed. Raises ShotListError. ``comma_hint``: the fix for a
    decimal comma in a {...} mapping, as its field takes numbers (``CommaHint``)."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise _fail(source, f"the document is {len(raw):,} bytes; the limit is {MAX_DOCUMENT_BYTES:,}")
    text = _decode(raw, source)
    try:
        loader = _BoundedLoader(text, source)
    except yaml.reader.ReaderError as exc:
        # PyYAML checks the whole text for control characters (NUL, BEL, ...) when the loader is
        # created; this used to escape as a traceback instead of a message with a position.
        line: int | None = text.count("\n", 0, exc.position) + 1
        column: int | None = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise _fail(source, f"control character U+{exc.character:04X} is not allowed", line, column,
                    "remove it, or write it as an escape in a double-quoted string") from None
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            message = exc.problem or str(exc)
            if exc.context and "single document" in exc.context:
                message = "expected one YAML document, found several ('---' separators)"
            line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
            context_at = (exc.context_mark.line + 1, exc.context_mark.column + 1) if exc.context_mark else None
            known = syntax_problem(text, message, line, column, context=exc.context, context_at=context_at)
            if known is not None:  # a common mistake: say it in plain words, with the fix
                raise _fail(source, known[0], known[2], known[3], known[1]) from None
            raise _fail(source, f"YAML syntax error: {message}", line, column) from None
        except yaml.YAMLError as exc:
            raise _fail(source, f"YAML error: {exc}") from None
        except RecursionError:
            # The reader stops where the composer gave up, which is inside the deep nesting.
            mark = loader.get_mark()
            raise _fail(source, f"nesting deeper than {MAX_DEPTH} levels (too deep to read)",
                        mark.line + 1, mark.column + 1) from None
        if node is None:
            raise _fail(source, "the document is empty", hint="a shot list starts with 'version: 1'")
        result = LoadedYaml(data=None, source=source)
        walker = _Walker(loader, source, result, text, comma_hint)
        result.lines = walker.lines
        walker.expanded_size(node)
        walker.index(node, ())
        try:
            result.data = loader.construct_document(node)
        except yaml.MarkedYAMLError as exc:
            # Scalars were checked while indexing; what fails here is a tagged sequence or mapping
            # (such as !!python/object/apply:...). Name the field written at that position.
            at = _mark_of_yaml(exc.problem_mark)
            path = next((p for p, m in result.value_marks.items() if m == at), ()) if at else ()
            line, column = at or (None, None)
            raise _fail(source, f"cannot read value: {exc.problem}", line, column, path=path) from None
        except (yaml.YAMLError, ValueError, OverflowError, TypeError) as exc:
            raise _fail(source, f"cannot read value: {exc}") from None
        return result
    finally:
        loader.dispose()


def load_yaml_file(path: Path) -> LoadedYaml:
    """Read and parse a YAML file; unreadable files become a ShotListError naming the file."""
    return load_yaml_bytes(read_document(path), str(path))


def read_document(path: Path) -> bytes:
    """A document's bytes, read once and bounded (a pipe such as ``<(make_shots)`` can be read only once)."""
    source = str(path)
    try:
        if path.is_dir():
            raise _fail(source, "is a folder, not a file")
        with path.open("rb") as handle:
            raw = handle.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError:
        # '-' is many tools' name for stdin; here a pipe is read through its file name.
        hint = "to read a shot list from a pipe, give /dev/stdin" if source == "-" else ""
        raise _fail(source, "no such file", hint=hint) from None
    except (IsADirectoryError, PermissionError, OSError) as exc:
        raise _fail(source, f"cannot read: {exc.strerror or exc}") from None
    return raw
