"""Counts in plain English for what a person reads: ``1 shot``, ``2 shots``, never ``1 shots``.

A one-shot test render is often a director's first look, and its page, review, verify, qa and export lines all
counted "1 shots", "1 images". Machine-read output (``--json``) carries the numbers alone and is not worded here.
"""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun``, the noun plural unless ``n`` is 1 (``plural``, else ``noun`` + "s")."""
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"
