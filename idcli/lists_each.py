"""The one line ``plan`` and ``render`` say for a kind of note that ``validate`` lists one by one.

Six checks (other tools' prompt syntax, names without braces, a character named twice, an expression with no
character, an unused negative prompt, octal numbers) each note every place at its line in ``validate``, and warn
once in ``plan`` and ``render``: how many, the first place, and where to see the rest. The first place and the
pointer to ``validate`` are worded here, once, so the six lines read alike. Pure Python.
"""

from __future__ import annotations

from dataclasses import replace

from .errors import Problem


def lists_each(said: str, first: Problem, source: str, then: str = "") -> str:
    """``said`` (how many, and what it does), then ``first``'s place and message without its hint, then that
    ``validate`` lists each (``then``: what it gives with each, ``with the fix``):
    ``3 shots … (first: shots.yaml:9:13: shots[0].prompt: 'anna'); 'idcli validate' lists each, with the fix``."""
    where = replace(first, hint="").format(source)
    return f"{said} (first: {where}); 'idcli validate' lists each{f', {then}' if then else ''}"
