"""The regular-expression match a test goes on to read, or an AssertionError that shows what was searched.

``re.search(...).group(1)`` fails on a missing match with "'NoneType' object has no attribute 'group'", which says
neither what was looked for nor where; and a type checker rightly reports it (``Match | None``).
"""

from __future__ import annotations

import re


def search(pattern: str, text: str, flags: int = 0) -> re.Match[str]:
    """``re.search(pattern, text, flags)``, asserted found (the message names the pattern and the text's start)."""
    found = re.search(pattern, text, flags)
    assert found, f"no match for {pattern!r} in {text[:500]!r}"
    return found
