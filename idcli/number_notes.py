"""A number written with a leading zero (``seeds: [010]``, ``steps: 030``), which YAML 1.1 reads as octal: the seed
8, 24 steps. Valid, and kept as read (YAML 1.1 says so, and a shot list rendered before keeps its keys), so
``validate`` notes it at its line with the number it is and how to write either number (``07``, 7 either way, is
not noted). ``0x10`` (hex) says what it is; ``1:30`` (base 60, 90) is what minutes and seconds mean: neither is
noted."""

from __future__ import annotations

import re

from .errors import Problem
from .yamlsafe import LoadedYaml, path_text

_OCTAL = re.compile(r"[-+]?0[0-7_]*[0-7][0-7_]*")  # YAML 1.1's octal int: 0 then octal digits ('0' alone is zero)


def octal_notes(loaded: LoadedYaml) -> list[Problem]:
    """One note per unquoted number of the document that YAML 1.1 read as octal, in document order."""
    notes = []
    for path, raw in loaded.plain_scalars.items():
        if _OCTAL.fullmatch(raw) is None:
            continue
        read = int(raw.replace("_", ""), 8)
        meant = int(raw.replace("_", ""), 10)
        if read == meant:  # 07 is 7 either way
            continue
        key = path[-1] if path and isinstance(path[-1], str) else None
        line, col = loaded.mark(path) or (None, None)
        notes.append(Problem(f"YAML reads {raw} as the octal number {read} (a leading zero)", path_text(path),
                             line, col, f"write {_keyed(key, read)}, or {_keyed(key, meant)} if that was meant"))
    return sorted(notes, key=lambda note: (note.line or 0, note.column or 0))


def _keyed(key: str | None, number: int) -> str:
    return f"{key}: {number}" if key else str(number)
