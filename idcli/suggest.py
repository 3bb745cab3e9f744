"""Did-you-mean suggestions for unknown keys, names and labels."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, choices: Iterable[str], n: int = 3, cutoff: float = 0.6) -> list[str]:
    """The ``n`` choices closest to ``word`` (case-insensitive), best first."""
    options = list(choices)
    lowered = {c.lower(): c for c in options}
    hits = difflib.get_close_matches(word.lower(), list(lowered), n=n, cutoff=cutoff)
    return [lowered[h] for h in hits]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A hint such as ``did you mean 'steps'?``, or an empty string when nothing is close."""
    hits = closest(word, choices, n=1)
    return f"did you mean '{hits[0]}'?" if hits else ""
