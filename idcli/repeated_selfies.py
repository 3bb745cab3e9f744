"""A selfie listed twice for one character: said, never refused.

``selfies: [a.jpg, a.jpg]`` is a valid list whose files exist, but the identity averages each entry's embedding, so
the repeated face counts twice against the others (and a character with only that file gains nothing from the
second entry). Usually a copy-paste slip where another photo was meant; nothing can tell which, so nothing is
changed: ``validate`` notes it at the second entry's line, ``plan`` and ``render`` warn of it (``--json`` too).

Two entries are the same file when their written paths are the same once normalised (``./a.jpg`` is ``a.jpg``);
links are not followed (no file is read here).
"""

from __future__ import annotations

import os
from typing import Any

from .errors import Problem
from .yamlsafe import path_text

HINT = "give each photo once: a face listed twice weighs twice in the identity's average; list another photo if " \
       "one was meant"


def repeated_selfie_notes(doc: Any, loaded: Any) -> list[Problem]:
    """A note per selfie entry of a character (``ShotList``, its ``LoadedYaml``) that repeats an earlier entry."""
    notes = []
    for name, character in doc.characters.items():
        first: dict[str, int] = {}
        for j, value in enumerate(character.selfies or []):
            same = os.path.normpath(value)
            if same not in first:
                first[same] = j
                continue
            path = ("characters", name, "selfies", j)
            line, column = loaded.mark(path) or (None, None)
            notes.append(Problem(f"selfie '{value}' is given twice (as selfies[{first[same]}] too): {name}'s "
                                 "identity averages the same face twice", path_text(path), line, column, HINT))
    return notes
