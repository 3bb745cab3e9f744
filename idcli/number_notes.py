"""A number written with a leading zero (``seeds: [010]``, ``steps: 030``), which YAML 1.1 reads as octal: the seed
8, 24 steps. Valid, and kept as read (YAML 1.1 says so, and a shot list rendered before keeps its keys), so
``validate`` notes it at its line with the number it is and how to write either number (``07``, 7 either way, is
not noted). ``0x10`` (hex) says what it is; ``1:30`` (base 60, 90) is what minutes and seconds mean: neither is
noted. ``plan`` and ``render`` warn once (``octal_warning``): a shot list never validated renders the seed 8.
One outside its field's range (``steps: -010``, -8) is an error whose hint says the same (``octal_hint``)."""

from __future__ import annotations

import re

from .errors import Problem
from .lists_each import lists_each
from .yamlsafe import LoadedYaml, path_text

_OCTAL = re.compile(r"[-+]?0[0-7_]*[0-7][0-7_]*")  # YAML 1.1's octal int: 0 then octal digits ('0' alone is zero)


def octal_reading(raw: str | None) -> tuple[int, int] | None:
    """(the number YAML 1.1 read, the number the digits look like) for an unquoted number it read as octal and
    other than it looks: ``-010`` → (-8, -10); None for any other spelling, and for ``07`` (7 either way)."""
    if raw is None or _OCTAL.fullmatch(raw) is None:
        return None
    read, meant = int(raw.replace("_", ""), 8), int(raw.replace("_", ""), 10)
    return None if read == meant else (read, meant)


def octal_notes(loaded: LoadedYaml) -> list[Problem]:
    """One note per unquoted number of the document that YAML 1.1 read as octal, in document order; the number the
    digits look like is offered only where its field allows it (``steps: 0310`` is 200: 310 steps are too many)."""
    from .shotlist_problems import range_at

    notes = []
    for path, raw in loaded.plain_scalars.items():
        if (reading := octal_reading(raw)) is None:
            continue
        read, meant = reading
        key = path[-1] if path and isinstance(path[-1], str) else None
        line, col = loaded.mark(path) or (None, None)
        allowed = range_at(path)
        hint = (f"write {_keyed(key, read)}, or {_keyed(key, meant)} if that was meant" if not allowed.outside(meant)
                else f"write {_keyed(key, read)}; {meant} is not allowed: {key or 'the value'} must be "
                     f"{allowed.words}")
        notes.append(Problem(f"YAML reads {raw} as the octal number {read} (a leading zero)", path_text(path),
                             line, col, hint))
    return sorted(notes, key=lambda note: (note.line or 0, note.column or 0))


def octal_hint(raw: str | None) -> str:
    """The hint of a number outside its field's range that YAML read as octal (``steps: -010`` is 'must be at least
    1, not -8', a number the artist never wrote): what YAML read; '' for any other spelling. No spelling is offered:
    an octal number is nearer zero than its digits look, so the number written is outside the range too."""
    if (reading := octal_reading(raw)) is None:
        return ""
    return f"YAML reads {raw} as the octal number {reading[0]} (a leading zero)"


def octal_warning(notes: list[Problem], source: str) -> str | None:
    """One line for plan and render, however many numbers it is (validate lists each, with the fix)."""
    if not notes:
        return None
    many = len(notes) != 1
    return lists_each(f"{len(notes)} number{'s' if many else ''} written with a leading zero {'are' if many else 'is'} "
                      f"read by YAML as octal, so the render uses {'other numbers' if many else 'another number'} than "
                      "the digits say", notes[0], source, "with the fix")


def _keyed(key: str | None, number: int) -> str:
    return f"{key}: {number}" if key else str(number)
