"""A character of the cast written into a prompt without braces: said, never changed.

``prompt: "{mara} pours wine for anna at the table"`` with ``anna`` in the cast reads ``anna`` as a plain word: the
text encoder gets the word, anna's identity conditions nothing (no identity line, no mask) and identity QA does not
look for her face. In a dinner scene of six, a placeholder's braces are easily forgotten, and nothing said so. The
word may also be meant as a word (a character named ``rose`` beside "a rose on the table"), so nothing is refused or
changed: ``validate`` notes each such name at its shot's prompt and ``plan``/``render`` warn once.

Only a character the prompt does not also name with a placeholder is said: ``{ann} … ann's cake`` refers back to her
in words, as docs/shot-lists.md recommends. A name is matched as a whole word in any case (``Anna``, ``anna's``), so
``ann`` is never found inside ``anna`` or ``{anna}``, nor ``ren`` inside ``Renée`` (a word's letters are any
language's).

A character whose name is also a word (``also_a_word: true``: rose, will, mark) is said only where the prompt writes
the name capitalised (``Rose turns to Will``), as scripts write names: in lowercase it is the word (``a rose on the
table``), and the note that no spelling could silence is gone. Without it every case is said, so ``rose turns to
will``, the placeholders' own spelling without their braces, is still caught.
"""

from __future__ import annotations

import re
import string
from dataclasses import replace
from typing import Any

from .errors import Problem
from .lists_each import lists_each
from .yamlsafe import path_text

_WHAT = ("is a character of the cast written without braces: the text encoder reads it as a plain word, so {name}'s "
         "identity does not condition the image and identity QA does not look for {name}'s face")
HINT = ("write {{{name}}} to put {name} in the shot; if the word is meant as a word, say so once with "
        "'also_a_word: true' under characters.{name}")
# A name that is also a word, written capitalised: the name's case is what says it is one.
WORD_HINT = "write {{{name}}} to put {name} in the shot, or {name} in lowercase for the word"


def bare_names(prompt: str, cast: list[str], words: frozenset[str] = frozenset()) -> list[str]:
    """The characters of ``cast`` that ``prompt``'s own words (outside placeholders) name as a whole word, in any
    case, and that no placeholder of it names; in order of first appearance. ``words``: names that are also words
    (``also_a_word``), found only written with a capital (``Rose``, ``ROSE``). [] when the prompt cannot be parsed."""
    try:
        parts = list(string.Formatter().parse(prompt))
    except ValueError:
        return []  # a bad brace is an error of its own
    placed = {field for _literal, field, _spec, _conversion in parts if field is not None}
    # The literal parts joined by a break no name spans: a placeholder's description is not the prompt's own words.
    text = " \0 ".join(literal for literal, _field, _spec, _conversion in parts)
    found: list[tuple[int, str]] = []
    for name in cast:
        if name in placed:
            continue
        # A word's letters are any language's (\w): names are ASCII, prompts not ('ren' is no word of "Renée").
        match = next((m for m in re.finditer(rf"(?<!\w){re.escape(name)}(?!\w)", text, re.IGNORECASE)
                      if name not in words or m.group()[0].isupper()), None)
        if match is not None:
            found.append((match.start(), name))
    return [name for _start, name in sorted(found)]


# A placeholder or a literal brace, each kept as long as written so that a position in the rest stays the prompt's.
_BRACES = re.compile(r"\{\{|\}\}|\{[^{}]*\}")


def _bare_name_at(prompt: str, name: str, also_a_word: bool = False) -> int | None:
    """Where ``prompt``'s own words first name ``name`` as ``bare_names`` finds it; None when not found so."""
    words = _BRACES.sub(lambda match: "\0" * len(match.group()), prompt)
    return next((m.start() for m in re.finditer(rf"(?<!\w){re.escape(name)}(?!\w)", words, re.IGNORECASE)
                 if not also_a_word or m.group()[0].isupper()), None)


def bare_name_notes(doc: Any, loaded: Any) -> list[Problem]:
    """A note per character a shot's prompt writes without braces (``ShotList``, its ``LoadedYaml``), at the line
    that writes the name (a 'prompt: |' block's own line)."""
    from .text_marks import text_mark

    cast = list(doc.characters)
    words = frozenset(name for name, character in doc.characters.items() if character.also_a_word)
    notes = []
    for i, shot in enumerate(doc.shots):
        for name in bare_names(shot.prompt, cast, words):
            path = ("shots", i, "prompt")
            at = _bare_name_at(shot.prompt, name, name in words)
            line, column = (loaded.mark(path) if at is None else text_mark(loaded, path, shot.prompt, at)) or (
                None, None)
            notes.append(Problem(f"'{name}' " + _WHAT.format(name=name), path_text(path), line, column,
                                 (WORD_HINT if name in words else HINT).format(name=name)))
    return notes


def bare_name_warning(notes: list[Problem], source: str) -> str | None:
    """One line for plan and render, however many shots it is (validate lists each)."""
    if not notes:
        return None
    first = replace(notes[0], message=notes[0].message.split(" is a character", 1)[0])
    count = len({note.path for note in notes})
    shots = "shots name" if count > 1 else "shot names"
    return lists_each(f"{count} {shots} a character of the cast without braces, read as a plain word: that "
                      "character's identity does not condition the image", first, source, "with the fix")
