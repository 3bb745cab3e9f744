"""Prompt syntax of other tools that idcli reads as plain words, found so that validate and plan can say so.

AUTOMATIC1111's web UI (and Forge, and compel in part) interprets bits of a prompt: ``(word:1.3)`` weights
a phrase, ``<lora:name:0.8>`` loads a LoRA, ``BREAK`` starts a new 75-token chunk, ``[from:to:0.5]`` swaps
words part-way through sampling. idcli has none of this: every character of a prompt reaches the text
encoder as text, so a prompt pasted from A1111 renders differently there and here. Only forms that mean
nothing else in prose are looked for; plain ``(word)`` and ``[word]`` emphasis are left alone because
brackets are ordinary punctuation in a shot description. Pure Python, no torch.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from .errors import Problem
from .yamlsafe import path_text

# (pattern, what it is in the tool that interprets it)
_FORMS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\([^()]*:\s*[+-]?(?:\d+\.?\d*|\.\d+)\s*\)"), "a weight"),
    (re.compile(r"<(?:lora|lyco|hypernet|embedding):[^<>]*>", re.IGNORECASE), "a LoRA tag"),
    (re.compile(r"\bBREAK\b"), "a chunk break"),
    (re.compile(r"\[[^\[\]:]*:[^\[\]:]*:\s*(?:\d+\.?\d*|\.\d+)\s*\]"), "prompt editing"),
)


def foreign_syntax(text: str) -> list[tuple[str, str]]:
    """Each piece of ``text`` that AUTOMATIC1111 would interpret, with what it is, in order of position."""
    hits = [(m.start(), m.group(0), what) for pattern, what in _FORMS for m in pattern.finditer(text)]
    return [(found, what) for _start, found, what in sorted(hits)]


_READ_AS_WORDS = (": AUTOMATIC1111 prompt syntax, which idcli does not interpret: brackets, colons, numbers and "
                  "keywords reach the text encoder as plain words")


def foreign_syntax_message(hits: list[tuple[str, str]]) -> str:
    """One sentence for a note: what was found and that idcli reads it as words."""
    shown = ", ".join(f"'{found}' ({what})" for found, what in hits[:3]) + (", …" if len(hits) > 3 else "")
    return shown + _READ_AS_WORDS


HINT = "idcli has no prompt weighting or LoRA tags: write the words without them; see docs/shot-lists.md"


def foreign_syntax_notes(doc: Any, loaded: Any) -> list[Problem]:
    """A note per prompt text of a shot list (``ShotList``, its ``LoadedYaml``) holding AUTOMATIC1111 syntax:
    the default and shot negative prompts, character descriptions and shot prompts, at their lines."""
    fields: list[tuple[tuple[Any, ...], str | None]] = [(("defaults", "negative_prompt"), doc.defaults.negative_prompt)]
    fields += [(("characters", name, "description"), c.description) for name, c in doc.characters.items()]
    for i, shot in enumerate(doc.shots):
        fields += [(("shots", i, "prompt"), shot.prompt), (("shots", i, "negative_prompt"), shot.negative_prompt)]
    notes = []
    for path, text in fields:
        hits = foreign_syntax(text) if text else []
        if hits:
            line, column = loaded.mark(path) or (None, None)
            notes.append(Problem(foreign_syntax_message(hits), path_text(path), line, column, HINT))
    return notes


def foreign_syntax_warning(notes: list[Problem], source: str) -> str | None:
    """One line for plan and render, however many texts hold such syntax (validate lists each)."""
    if not notes:
        return None
    # The first note's place and what it found, without the sentence (a prompt may itself say "AUTOMATIC1111").
    first = replace(notes[0], message=notes[0].message.removesuffix(_READ_AS_WORDS), hint="").format(source)
    return (f"{len(notes)} prompt text{'s' if len(notes) > 1 else ''} use AUTOMATIC1111 syntax that idcli reads as "
            f"plain words (first: {first}); 'idcli validate' lists each")
