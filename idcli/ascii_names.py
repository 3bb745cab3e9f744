"""The ASCII spelling of an accented name: ``Renée`` → ``Renee``, offered where a name must be ASCII.

Character names and shot ids are ASCII (a character name is a ``{placeholder}``, a shot id names files that every
file system and editorial tool must take), and a French, Spanish or German cast is written with accents: ``renée``,
``josé``, ``zoë``. The refusal named the rule only; it now also says the name to write. A letter with no ASCII
base (``ß``, ``ø``) offers nothing: which spelling the team uses is theirs to say.
"""

from __future__ import annotations

import unicodedata


def ascii_spelling(text: str) -> str | None:
    """``text`` without its accents when that leaves ASCII and differs from it; None otherwise."""
    folded = "".join(char for char in unicodedata.normalize("NFKD", text) if not unicodedata.combining(char))
    return folded if folded != text and folded.isascii() else None
