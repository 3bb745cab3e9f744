"""CHANGELOG.md's entries read whole: no entry carries the tail of another.

Two branches that each reword the end of one entry can merge into the entry once whole plus the other's tail
glued under the next entry (2026-12-01: the animatic's frame-count entry ended up after `plan`'s table entry as
"…tests/test_cli.py).\n  differ by a frame (63, 62, 63, …), and no shot is cut…"). Such a tail begins mid-sentence,
in lower case, right after a line that ended a sentence: that is what this looks for.
"""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# A bullet's continuation: indented two spaces, not a nested list item or code.
CONTINUATION = re.compile(r"^  (?! )(?![-*] )")
SENTENCE_END = re.compile(r"[.!?]\)?$")
# An abbreviation or an ellipsis ("`--shots`, `--wait`, ...).") ends no sentence.
ABBREVIATION = re.compile(r"(?:\b(?:e\.g|i\.e|etc|vs|cf)\.|\.\.\.\)?\.?)$")


def spliced_lines(text: str) -> list[tuple[int, str]]:
    """The lines (numbered from 1) that go on in lower case after the line above them ended a sentence."""
    lines = text.splitlines()
    found: list[tuple[int, str]] = []
    for number, (above, line) in enumerate(pairwise(lines), start=2):
        if not CONTINUATION.match(line) or not line[2:3].islower():
            continue
        if SENTENCE_END.search(above.rstrip()) and not ABBREVIATION.search(above.rstrip()):
            found.append((number, line.strip()))
    return found


def test_spliced_lines_finds_an_entry_tail_glued_under_another_entry() -> None:
    text = ("- **A** (2026-12-01): one thing\n  (tests/test_a.py).\n"
            "  differ by a frame, and more of another entry.\n"
            "- **B**: it says so. Next\n  sentence, e.g.\n  a list (`a`, `b`, ...).\n  not an end\n")
    assert spliced_lines(text) == [(3, "differ by a frame, and more of another entry.")]


def test_no_changelog_entry_carries_the_tail_of_another() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert spliced_lines(text) == [], "CHANGELOG.md: text goes on after an entry ended (a merge glued two entries?)"
