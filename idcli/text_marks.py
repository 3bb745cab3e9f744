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

from typing import Any

Mark = tuple[int, int]  # 1-based line, column
# A scalar as written: its style (None plain, "'", '"', "|", ">") and its start and end, 0-based line and column.
Span = tuple[str | None, int, int, int, int]

_BETWEEN = " \t\n"  # what a line break may become in a value (a space, a newline, nothing) beside indentation


def text_mark(loaded: Any, path: tuple[Any, ...], text: str, offset: int) -> Mark | None:
    """The line and column (1-based) where the character at ``offset`` of ``text``, the string at ``path`` of
    ``loaded`` (a ``LoadedYaml``), is written; the value's own mark (``loaded.mark``) when that character is on the
    value's first line or cannot be placed exactly."""
    own = loaded.mark(path)
    span = loaded.text_spans.get(tuple(path))
    placed = None if span is None else _place(loaded.lines, span, text, offset)
    if placed is None or own is None or placed[0] == own[0]:
        return own
    return placed


def _place(lines: list[str], span: Span, text: str, offset: int) -> Mark | None:
    """``offset``'s mark, when every source line of the scalar matches ``text`` in order; else None."""
    pieces = _pieces(lines, span)
    if pieces is None:
        return None
    at, end = 0, len(text.rstrip(_BETWEEN))  # past ``end`` only line breaks and indentation are left
    found: list[tuple[int, int, int, int]] = []  # (value offset, length, 0-based line, 0-based column)
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
    for start, length, row, column in found:
        if start <= offset < start + length:
            return row + 1, column + offset - start + 1
    return None


def _pieces(lines: list[str], span: Span) -> list[tuple[int, int, str]] | None:
    """The scalar's source text line by line, as (0-based line, 0-based column, text); None for a quoted line holding
    an escape (its text is not the value's)."""
    style, first, first_column, last, last_column = span
    if style in ("|", ">"):  # the header line holds the indicator (and perhaps a comment); the text starts below it
        return [(row, 0, lines[row]) for row in range(first + 1, min(last, len(lines) - 1) + 1)]
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
