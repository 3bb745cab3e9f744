"""Where a character of a text value is written in the file: the line inside a multi-line prompt that holds it.

A note about words in a prompt written as a block (``prompt: |`` or ``prompt: >``, the text on the lines below)
pointed at the ``|`` line, while the words (``((x))`` on the block's third line) were lines further down. Here a
text's position is mapped back to its line and column, exactly or not at all: each source line of the scalar, less
its indentation, must appear whole and in order in the value, only whitespace between (what literal ``|``, folded
``>``, plain and quoted text that spans lines do to line breaks). A line with a quoted scalar's escape (``\\"``,
``''``) is not its value's text, so such a text falls back to the value's own mark (the key's line). A position on
the value's first line keeps that mark too, so single-line values are said where they always were. Pure Python.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from typing import Any

Mark = tuple[int, int]  # 1-based line, column
# A scalar as written: its style (None plain, "'", '"', "|", ">") and its start and end, 0-based line and column.
Span = tuple[str | None, int, int, int, int]
Found = tuple[int, int, int, int]  # a source line's words in the value: offset, length, 0-based line and column

_BETWEEN = " \t\n"  # what a line break may become in a value (a space, a newline, nothing) beside indentation


def text_mark(loaded: Any, path: tuple[Any, ...], text: str, offset: int) -> Mark | None:
    """The line and column (1-based) where the character at ``offset`` of ``text``, the string at ``path`` of
    ``loaded`` (a ``LoadedYaml``), is written; the value's own mark (``loaded.mark``) when that character is on the
    value's first line or cannot be placed exactly."""
    own = loaded.mark(path)
    span = loaded.text_spans.get(tuple(path))
    placed = None if span is None else _place(_matched(loaded, span, text), offset)
    if placed is None or own is None or placed[0] == own[0]:
        return own
    return placed


def _matched(loaded: Any, span: Span, text: str) -> list[Found] | None:
    """``_match`` of a scalar and its text, made once per document: every shot's ``prompt: *p`` is the one scalar,
    and a block's span takes in the blank lines after it, so matching it anew for each note of each shot read those
    lines once per note (2,000 shots over 200,000 blank lines: 42 s of CPU instead of 0.9; docs/performance.md)."""
    key = (span, text)
    if key not in loaded.text_matches:
        loaded.text_matches[key] = _match(loaded.lines, span, text)
    found: list[Found] | None = loaded.text_matches[key]
    return found


def _place(found: list[Found] | None, offset: int) -> Mark | None:
    """``offset``'s mark among a text's matched lines (``_match``); None when unmatched or between them."""
    if found is None:
        return None
    i = bisect_right(found, offset, key=lambda piece: piece[0]) - 1  # the last piece starting at or before it
    if i >= 0:
        start, length, row, column = found[i]
        if offset < start + length:
            return row + 1, column + offset - start + 1
    return None


def _match(lines: list[str], span: Span, text: str) -> list[Found] | None:
    """Where each source line of the scalar is in ``text``, when every one matches it in order; else None."""
    pieces = _pieces(lines, span)
    if pieces is None:
        return None
    at, end = 0, len(text.rstrip(_BETWEEN))  # past ``end`` only line breaks and indentation are left
    found: list[Found] = []
    for row, column, piece in pieces:
        words = piece.strip(" \t")
        if not words:
            continue
        while at < len(text) and text[at] in _BETWEEN:
            at += 1
        if not text.startswith(words, at):
            return None
        found.append((at, len(words), row, column + len(piece) - len(piece.lstrip(" \t"))))
        at += len(words)
        if at >= end:
            break  # the value is used up: a block's end may reach the next key's line
    if at < end:
        return None
    return found


def _pieces(lines: list[str], span: Span) -> Iterable[tuple[int, int, str]] | None:
    """The scalar's source text line by line, as (0-based line, 0-based column, text); None for a quoted line holding
    an escape (its text is not the value's)."""
    style, first, first_column, last, last_column = span
    if style in ("|", ">"):  # the header line holds the indicator (and perhaps a comment); the text starts below it
        # Read as matched: the span takes in every blank line after the block, which _match stops short of.
        return ((row, 0, lines[row]) for row in range(first + 1, min(last, len(lines) - 1) + 1))
    quote = 1 if style in ("'", '"') else 0
    pieces = []
    for row in range(first, min(last, len(lines) - 1) + 1):
        start = first_column + quote if row == first else 0
        end = last_column - quote if row == last else len(lines[row])
        piece = lines[row][start:end]
        if (style == '"' and "\\" in piece) or (style == "'" and "''" in piece):
            return None
        pieces.append((row, start, piece))
    return pieces
