"""Plain words for the YAML mistakes people make most in shot lists, with the fix.

YAML's own messages ("expected <block end>, but found '<scalar>'", "Input should be a valid
string") describe the parser, not the mistake. The common ones:

- ``prompt: {mara} on a pier``: an unquoted value starting with ``{`` is a YAML *mapping*
  (``{mara}`` alone is the mapping ``{"mara": null}``; with text after it, a syntax error);
- ``id: 0010``: unquoted digits are a number (``0010`` even an octal 8 in YAML 1.1), so the id is
  no longer the text written;
- a tab in the indentation: YAML indents with spaces only (or, pasted into a value, separates with
  spaces only);
- screenplay-style prompts: ``prompt: INT. BAR: night`` (a second ': ' starts a mapping),
  ``prompt: "she says "run""`` (the inner quote ends the value), a quote never closed;
- ``-id: b``: a list item's dash without the space after it is part of a key named ``-id``;
- a non-breaking space (or another Unicode space) where YAML needs a space: text copied from a web page, a chat
  or a word processor looks indented, but YAML reads ``\u00a0\u00a0 prompt`` as a key of that name.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

# A key, then a value starting with {name} (a placeholder), optionally after a list dash.
_PLACEHOLDER_VALUE = re.compile(r"^(?P<lead>\s*(?:-\s+)?(?P<key>[A-Za-z_][\w-]*)\s*:\s+)"
                                r"(?P<value>\{[A-Za-z][A-Za-z0-9_]*\}.*?)\s*$")

# A key, then an unquoted plain value (not a quote, flow collection, block scalar, anchor, alias or tag).
_PLAIN_VALUE = re.compile(r"^(?P<lead>\s*(?:-\s+)?(?P<key>[A-Za-z_][\w-]*)\s*:\s+)"
                          r"(?P<value>[^\s\"'{\[|>&*!#%@`].*?)\s*$")
# A key, then a value in double quotes with more double quotes after the first closing one.
_QUOTED_VALUE = re.compile(r'^(?P<lead>\s*(?:-\s+)?(?P<key>[A-Za-z_][\w-]*)\s*:\s+)(?P<value>".*")\s*$')
# A key, then a quote that YAML found no end for.
_OPENED_VALUE = re.compile(r"^(?P<lead>\s*(?:-\s+)?(?P<key>[A-Za-z_][\w-]*)\s*:\s+)(?P<quote>[\"'])(?P<rest>.*?)\s*$")


def double_quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def placeholder_mapping(keys: list[Any], values: list[Any]) -> str | None:
    """``{mara}`` as YAML read it (a flow mapping whose keys have no values), written back; else None."""
    if keys and all(v is None for v in values) and all(isinstance(k, str) for k in keys):
        return "{" + ", ".join(keys) + "}"
    return None


def placeholder_problem(field: str, written: str) -> tuple[str, str]:
    """Message and hint for a text field that YAML read as a mapping because it starts with ``{name}``."""
    key = field.rsplit(".", 1)[-1] if field else "prompt"
    return (f"a value starting with {written} is read by YAML as a mapping (curly braces), not as text",
            f"quote the whole value: {key}: \"{written}\"")


def number_problem(field: str, raw: str, value: Any) -> tuple[str, str]:
    """Message and hint for a text field (an id, a name) written as unquoted digits."""
    key = field.rsplit(".", 1)[-1] if field else "id"
    kind = "a number" if not isinstance(value, bool) else "true/false"
    shown = repr(value) if isinstance(value, bool) else str(value)
    extra = " (a leading 0 makes it octal in YAML 1.1)" if re.fullmatch(r"0\d+", raw) and str(value) != raw else ""
    return (f"'{raw}' is read as {kind} ({shown}), not as the text '{raw}'{extra}",
            f"quote it: {key}: \"{raw}\"")


# A 'key:' line (or '- key:'), the key's column given by where the key starts.
_KEY_LINE = re.compile(r"^\s*(?:-\s+)?(?P<key>[A-Za-z_][\w-]*)\s*:(?P<value>\s.*)?$")


def _indentation_problem(lines: list[str], problem: str, line: int) -> tuple[str, str, int, int] | None:
    """A 'key:' line that starts left or right of the 'key:' line above it. YAML says "expected <block end>, but found
    '<block mapping start>'", or "mapping values are not allowed here" (right of a plain value: it reads the line
    as more of that value)."""
    if not 2 <= line <= len(lines):
        return None
    above_number = next((n for n in range(line - 1, 0, -1)
                         if lines[n - 1].strip() and not lines[n - 1].lstrip().startswith("#")), None)
    current = _KEY_LINE.match(lines[line - 1])
    above = _KEY_LINE.match(lines[above_number - 1]) if above_number else None
    if current is None or above is None or above_number is None:
        return None
    mine, theirs = current.start("key"), above.start("key")
    key, other, fix = current["key"], above["key"], f"start '{current['key']}:' in column {theirs + 1}"
    if "expected <block end>" in problem and mine != theirs:
        return (f"'{key}:' starts in column {mine + 1}, '{other}:' on line {above_number} in column {theirs + 1}: "
                "keys of one block start in the same column", fix, line, mine + 1)
    if "mapping values are not allowed" in problem and mine > theirs and (above["value"] or "").strip():
        return (f"'{key}:' starts in column {mine + 1}, right of '{other}:' on line {above_number} (column "
                f"{theirs + 1}), so YAML reads it as more of the value of '{other}:'", fix, line, mine + 1)
    return None


def unicode_space(char: str) -> bool:
    """A character that looks like a space but is none of YAML's (space, tab): U+00A0, an em space, U+200B ..."""
    return char not in " \t\r\n" and (unicodedata.category(char) == "Zs" or char in "\u200b\u2060\ufeff")


def space_name(char: str) -> str:
    if char == "\u00a0":
        return "a non-breaking space (U+00A0)"
    name = unicodedata.name(char, "space").lower()
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name} (U+{ord(char):04X})"


# A 'key:' at the start of a line (or after a list's '- '): where YAML needs a space after the colon.
_KEY_COLON = re.compile(r"^[ \t]*(?:-[ \t]+)?(?P<key>[A-Za-z_][\w-]*):")
COPIED = "it comes with text copied from a web page, a chat or a word processor"


def unicode_space_problem(lines: list[str], first: int, last: int) -> tuple[str, str, int, int] | None:
    """The first Unicode space on lines ``first``..``last`` (1-based) where YAML needs its own space: in the
    indentation, after a key's ':' or after a list item's '-'. Message, hint, line and column; else None."""
    for number in range(max(first, 1), min(last, len(lines)) + 1):
        text = lines[number - 1]
        end = 0
        while end < len(text) and (text[end] in " \t" or unicode_space(text[end])):
            end += 1
        for index, char in enumerate(text[:end]):
            if unicode_space(char):
                return (f"{space_name(char)} is used for indentation; YAML indents with ordinary spaces only",
                        f"replace it with ordinary spaces; {COPIED}", number, index + 1)
        if text[end:end + 1] == "-" and unicode_space(text[end + 1:end + 2] or " "):
            return (f"{space_name(text[end + 1])} after the list item's '-'; YAML needs an ordinary space there",
                    f"replace it with an ordinary space; {COPIED}", number, end + 2)
        key = _KEY_COLON.match(text)
        if key is not None and unicode_space(text[key.end():key.end() + 1] or " "):
            return (f"{space_name(text[key.end()])} after '{key['key']}:'; YAML needs an ordinary space there",
                    f"replace it with an ordinary space; {COPIED}", number, key.end() + 1)
    return None


# '-id: b': a dash, then a key at once. YAML reads '-id' as the key, not as a list item holding 'id'.
_GLUED_DASH = re.compile(r"^(?P<indent>[ \t]*)-(?P<item>[A-Za-z_][\w-]*[ \t]*:(?:[ \t].*)?)$")


def _glued_dash_problem(lines: list[str], first: int, last: int) -> tuple[str, str, int, int] | None:
    """A line ``-key: value`` on lines ``first``..``last`` (1-based): message, hint, line, column; else None."""
    for number in range(max(first, 1), min(last, len(lines)) + 1):
        glued = _GLUED_DASH.match(lines[number - 1])
        if glued is not None:
            item = glued["item"].rstrip()
            return ("a list item's '-' needs a space after it; YAML reads '-" + item.split(":", 1)[0].strip()
                    + "' as a key's name", f"write a space after the '-': - {item}", number,
                    len(glued["indent"]) + 1)
    return None


def key_starts_with_unicode_space(key: str) -> bool:
    """A key YAML read from a line indented with a Unicode space ('\u00a0\u00a0 prompt')."""
    return bool(key) and unicode_space(key[0])


def syntax_problem(text: str, problem: str, line: int | None, column: int | None, *, context: str | None = None,
                   context_at: tuple[int, int] | None = None) -> tuple[str, str, int | None, int | None] | None:
    """A plain-words message, hint and position for a YAML syntax error, when it is a known mistake."""
    lines = text.splitlines()
    if "'\\t'" in problem and line is not None:
        before = lines[line - 1][: column - 1] if column is not None and 1 <= line <= len(lines) else ""
        if before.strip():  # after text on its line: a tab pasted into a value (from a spreadsheet, say)
            return ("a tab character outside quotes; YAML separates values with spaces only",
                    "replace the tab with a space; only inside quotes is a tab kept as text", line, column)
        return ("a tab character is used for indentation; YAML indents with spaces only",
                "replace the tab(s) at the start of the line with spaces", line, column)
    if line is None:
        return None
    # The parser stops on the line holding the space, or up to two lines on (a value read as more of a plain one).
    spaced = unicode_space_problem(lines, line - 2, line)
    if spaced is not None:
        return spaced
    if "expected <block end>" in problem or "mapping values are not allowed" in problem:
        # '-id: b' is reported on its own line, or (as the first item) on the line after it.
        glued = _glued_dash_problem(lines, line - 1, line)
        if glued is not None:
            return glued
    if "unknown escape character" in problem and column is not None:
        # 'prompt: "a \\(sign\\)"': A1111's escaped bracket in double quotes. YAML stops at the backslash, and the
        # "while scanning a double-quoted scalar" context below would call the value never closed.
        return _escape_problem(lines, line, column, context_at)
    if context and "quoted scalar" in context and context_at is not None and 1 <= context_at[0] <= len(lines):
        # A quote opened and never closed: YAML reads on to the end of the file and reports it there.
        opened = _OPENED_VALUE.match(lines[context_at[0] - 1])
        fix = (f"close it where the value ends: {opened['key']}: {opened['quote']}{opened['rest']}{opened['quote']}"
               if opened else "close the quote where the value ends")
        return ("this quoted value is never closed; YAML read on to the end of the file", fix, *context_at)
    current = lines[line - 1] if 1 <= line <= len(lines) else ""
    plain = _PLAIN_VALUE.match(current)
    # The colon YAML stopped at lies inside the value (not the key's own: a continuation line 'more: text').
    if "mapping values are not allowed" in problem and plain and column is not None and column > len(plain["lead"]):
        # 'prompt: INT. BAR: night' — the second ': ' would start a mapping inside the value.
        return (f"a ':' before a space or the line's end inside an unquoted value makes YAML read "
                f"'{plain['key']}' as holding a mapping",
                f"quote the whole value: {plain['key']}: {double_quoted(plain['value'])}", line,
                len(plain["lead"]) + 1)
    if "expected <block end>" in problem and (quoted := _QUOTED_VALUE.match(current)) \
            and quoted["value"].count('"') > 2:
        # 'prompt: "she says "run" twice"' — the second '"' ends the value; the rest is left over.
        inner = quoted["value"][1:-1]
        fix = f"{quoted['key']}: '{inner}'" if "'" not in inner else f"{quoted['key']}: {double_quoted(inner)}"
        return ("a double quote inside a double-quoted value ends the value early",
                f"put the value in single quotes, or write \\\" for each inner quote: {fix}", line,
                len(quoted["lead"]) + 1)
    if "expected <block end>" in problem and (started := _quote_first_problem(current, line)) is not None:
        return started
    indented = _indentation_problem(lines, problem, line)
    if indented is not None:
        return indented
    # The parser stops at or just after the line holding the mistake.
    for number in (line, line - 1):
        if 1 <= number <= len(lines):
            match = _PLACEHOLDER_VALUE.match(lines[number - 1])
            if match:
                value = match["value"]
                written = value[: value.index("}") + 1]
                message, _ = placeholder_problem(match["key"], written)
                escaped = value.replace("\\", "\\\\").replace('"', '\\"')
                return (message, f"quote the whole value: {match['key']}: \"{escaped}\"", number,
                        len(match["lead"]) + 1)
    return indicator_problem(lines, line)


def _escape_problem(lines: list[str], line: int, column: int,
                    context_at: tuple[int, int] | None) -> tuple[str, str, int, int]:
    """A backslash in a double-quoted value before a character that starts no YAML escape (``\\(``, ``\\[``): message,
    hint, and the backslash's line and column (``line``, ``column``: where YAML stopped, the character after it)."""
    text = lines[line - 1] if 1 <= line <= len(lines) else ""
    escaped = text[column - 2:column] if column >= 2 else "\\"
    quoted = _QUOTED_VALUE.match(lines[context_at[0] - 1]) if context_at and 1 <= context_at[0] <= len(lines) else None
    fix = "put the value in single quotes, where a backslash is text, or write two backslashes"
    if quoted is not None and context_at is not None and context_at[0] == line:
        inner = quoted["value"][1:-1]
        single = inner.replace("'", "''")
        fix = (f"put the value in single quotes, where a backslash is text: {quoted['key']}: '{single}', or write "
               f"{escaped[:1]}{escaped} for each")
        bare = re.sub(r"\\([()\[\]])", r"\1", inner)
        if "\\" not in bare:  # A1111's escaped brackets only: idcli reads brackets as text (prompt_syntax.py)
            fix += f"; idcli reads every bracket as text, so none needs a backslash: {quoted['key']}: \"{bare}\""
    return (f"'{escaped}' is no escape YAML knows: in double quotes a backslash starts an escape such as \\n or "
            "\\\"", fix, line, max(column - 1, 1))


# A key, then an unquoted value starting with a character that begins YAML syntax rather than text.
_INDICATOR_VALUE = re.compile(r"^(?P<lead>\s*(?:-\s+)?(?P<key>[A-Za-z_][\w-]*)\s*:\s+)(?P<value>[\[{*&!%@`].*?)\s*$")
_STARTS = {"[": "as a list (square brackets)", "{": "as a mapping (curly braces)",
           "*": "as an alias (a reference to an '&' anchor)", "&": "as an anchor's name",
           "!": "as a tag", "%": "as a directive"}
# Fields that hold text, where quoting the whole value is the fix (a list or mapping is right elsewhere).
_TEXT_KEYS = {"prompt", "negative_prompt", "description"}


def indicator_problem(lines: list[str], line: int) -> tuple[str, str, int, int] | None:
    """``prompt: [dusk], {mara} on a pier``: a text value whose first character starts YAML syntax (a list, a
    mapping, an alias, an anchor, a tag, a directive, or '@' and a backtick, which YAML reserves) and an error after
    it. Message, hint, line and column of the value; else None. The parser stops on that line or the next."""
    for number in (line, line - 1):
        match = _INDICATOR_VALUE.match(lines[number - 1]) if 1 <= number <= len(lines) else None
        if match is not None and match["key"] in _TEXT_KEYS:
            first, value, kept = match["value"][0], match["value"], ""
            # '&p {mara} …' with '*p' elsewhere: the anchor is meant, the '{' after it is the mistake.
            if (used := _used_anchor(lines, value)) is not None:
                kept, value = used
                first = value[0]
            said = (f"is read by YAML {_STARTS[first]}, not as text" if first not in "@`"
                    else "cannot be text: YAML reserves that character at a value's start")
            return (f"a value starting with '{first}' {said}",
                    f"quote the whole value: {match['key']}: {kept}{double_quoted(value)}", number,
                    len(match["lead"]) + len(kept) + 1)
    return None


def _used_anchor(lines: list[str], value: str) -> tuple[str, str] | None:
    """('&p ', the rest) when ``value`` is an anchor an alias of the document uses, followed by a value that itself
    starts YAML syntax: quoting the anchor with the text would leave '*p' naming no anchor."""
    anchored = re.match(r"&(?P<name>[^\s,\[\]{}]+)\s+(?=[\[{*&!%@`])", value)
    if anchored is None or not re.search(rf"\*{re.escape(anchored['name'])}(?![^\s,\[\]{{}}])", "\n".join(lines)):
        return None
    return anchored.group(0), value[anchored.end():]


# A key, then a value that starts with a quote and goes on after the quote closes: 'prompt: "Run," she says'.
_QUOTE_FIRST = re.compile(r"^(?P<lead>\s*(?:-\s+)?(?P<key>[A-Za-z_][\w-]*)\s*:\s+)(?P<value>[\"'].*?)\s*$")


def _quote_first_problem(current: str, line: int) -> tuple[str, str, int, int] | None:
    """``prompt: "Run," she says, {mara}``: a value starting with a quoted line of dialogue ends where that quote
    closes, and the words after it are what YAML "expected <block end>" at. Message, hint, line, column; else None."""
    started = _QUOTE_FIRST.match(current)
    if started is None:
        return None
    value = started["value"]
    closed = re.match(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^']|'')*'", value)
    after = value[closed.end():] if closed else ""
    # A whole quoted value (its mistake is elsewhere, an indentation say), or one never closed (said above).
    if not after.strip() or re.match(r"\s+#", after):
        return None
    whole = f"'{value}'" if value[0] == '"' and "'" not in value else double_quoted(value)
    return ("the value starts with a quote, so it ends where that quote closes, and YAML cannot read the text after it",
            f"quote the whole value: {started['key']}: {whole}", line, len(started["lead"]) + 1)
