"""A prompt that names one character twice: said, never changed.

``{mara} looks at {mara} in a mirror`` asks for two figures of her, and idcli renders and checks it so: one
character with one identity line whose mask is the attention to both places, and identity QA that matches her
further place among the faces left (review/qa.py ``named_repeats``), so a second face of her passes and a stranger
there is ``low_identity``. Prose that names her again for the same figure (``{mara} talks to a waiter; the waiter
hands {mara} the bill``) reads the same to idcli: the waiter stands in her second place and every take is flagged.
Which one was meant cannot be read from the words, so nothing is refused or guessed; ``validate`` notes each such
shot at its prompt's line and ``plan``/``render`` warn once, saying what idcli does and how to name her once.

Only the characters whose identity conditions the image are said (QA checks no other): not one at strength 0, not
``method: single``'s others. A plate shot is left to its own rule (one face per character, docs/plates.md).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from .errors import Problem
from .lists_each import lists_each
from .yamlsafe import path_text

_WHAT = ("each place takes {name}'s identity, and identity QA expects {name}'s face in each: another face of {name} "
         "(a mirror) passes, anyone else there is low_identity")
HINT = "to name the same figure again, refer back in words ('the waiter hands her the bill'), not with a placeholder"
_TIMES = {2: "twice", 3: "three times"}
# A placeholder's name, or a literal brace (matched so that '{{mara}}' is passed over, as placeholders() reads it).
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


def repeated_name_notes(doc: Any, loaded: Any) -> list[Problem]:
    """A note per shot of a shot list (``ShotList``, its ``LoadedYaml``) whose prompt names a conditioning character
    more than once."""
    from .method import DEFAULT_METHOD
    from .shotlist import placeholders
    from .text_marks import text_mark

    notes = []
    for i, shot in enumerate(doc.shots):
        if shot.plate is not None:
            continue
        try:
            mentions = placeholders(shot.prompt)
        except ValueError:
            continue  # a bad placeholder is an error of its own
        order = list(dict.fromkeys(mentions))
        single = (shot.method or doc.defaults.method or DEFAULT_METHOD) == "single"
        conditioning = [name for name in order[:1] if single] if single else order
        repeated = [name for name in conditioning if mentions.count(name) > 1 and name in doc.characters
                    and doc.characters[name].identity_strength > 0]
        for name in repeated:
            count = mentions.count(name)
            path = ("shots", i, "prompt")
            # At the line of the placeholder that names her again (a 'prompt: |' block's own line).
            again = [m.start() for m in _PLACEHOLDER.finditer(shot.prompt) if m.group(1) == name][1:2]
            line, column = (text_mark(loaded, path, shot.prompt, again[0]) if again else loaded.mark(path)) or (
                None, None)
            notes.append(Problem(f"'{name}' is named {_TIMES.get(count, f'{count} times')}: "
                                 + _WHAT.format(name=name),
                                 path_text(path), line, column, HINT))
    return notes


def repeated_name_warning(notes: list[Problem], source: str) -> str | None:
    """One line for plan and render, however many shots it is (validate lists each)."""
    if not notes:
        return None
    first = replace(notes[0], message=notes[0].message.split(": ", 1)[0])
    count = len({note.path for note in notes})
    shots = "shots name" if count > 1 else "shot names"
    return lists_each(f"{count} {shots} a character more than once, so each place takes the character's identity and "
                      "identity QA expects that face in each", first, source, "with how to name a figure once")
