"""An expression on a shot whose prompt names no character: said, never changed.

``prompt: "an empty street"`` with ``expression: joy`` renders text-only, and the expression's facial
description ('joyful radiant smile, raised cheeks, ...') is still added to the prompt, so a scene with no
person in it is asked for a face. That is not an error (the words may be wanted, a poster's face on a wall),
so the keys and prompts stay as they are; ``validate`` notes each such shot at its expression's line and
``plan``/``render`` warn once.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .errors import Problem
from .lists_each import lists_each
from .yamlsafe import path_text

_NO_PERSON = ("but the prompt names no character: its facial description is added to a scene with no person in "
              "it")
HINT = "name the character whose face it is, e.g. '{mara} on an empty street', or remove the expression"


def faceless_expression_notes(doc: Any, loaded: Any) -> list[Problem]:
    """A note per shot of a shot list (``ShotList``, its ``LoadedYaml``) with an expression and no character."""
    from .shotlist import placeholders

    notes = []
    for i, shot in enumerate(doc.shots):
        if shot.expression is None:
            continue
        try:
            if placeholders(shot.prompt):
                continue
        except ValueError:
            continue  # a bad placeholder is an error of its own
        label = shot.expression if isinstance(shot.expression, str) else shot.expression.label
        path = ("shots", i, "expression")
        line, column = loaded.mark(path) or (None, None)
        notes.append(Problem(f"expression '{label}' {_NO_PERSON}", path_text(path), line, column, HINT))
    return notes


def faceless_expression_warning(notes: list[Problem], source: str) -> str | None:
    """One line for plan and render, however many shots it is (validate lists each)."""
    if not notes:
        return None
    first = replace(notes[0], message=notes[0].message.removesuffix(" " + _NO_PERSON))
    shots, verb = ("shots give", "name") if len(notes) > 1 else ("shot gives", "names")
    return lists_each(f"{len(notes)} {shots} an expression but {verb} no character, so a facial description is added "
                      "to a scene with no person", first, source)
