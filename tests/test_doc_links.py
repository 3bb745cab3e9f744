"""Every relative link and `#anchor` in README.md and docs/*.md resolves, so the docs' cross-references stay true.

Anchors follow GitHub's heading slugs (lower case, punctuation but `-` and `_` dropped, each space a hyphen, a
repeated heading gets `-1`, `-2`, ...), which is what a reader clicking the link on GitHub lands on.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^(```|~~~)")
INLINE_CODE = re.compile(r"`+[^`]*`+")
# [text](target) and ![alt](target); the target ends at whitespace (an optional "title" follows) or ')'.
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, numbered from 1 (links and headings inside fences are examples)."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: markup dropped, lower case, punctuation removed, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors_of(path: Path) -> set[str]:
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in _prose_lines(path.read_text(encoding="utf-8")):
        anchors.update(HTML_ANCHOR.findall(line))
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def links_of(path: Path) -> list[tuple[int, str]]:
    found = []
    for number, line in _prose_lines(path.read_text(encoding="utf-8")):
        for target in LINK.findall(INLINE_CODE.sub("", line)):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: are not ours to check
                found.append((number, target))
    return found


def broken_links(doc: Path, root: Path = ROOT) -> list[str]:
    problems = []
    for line, target in links_of(doc):
        file_part, _, anchor = target.partition("#")
        linked = (doc.parent / unquote(file_part)).resolve() if file_part else doc
        where = f"{doc.relative_to(root)}:{line}: {target}"
        if not linked.exists():
            problems.append(f"{where}: no such file")
        elif anchor and linked.suffix == ".md" and unquote(anchor) not in anchors_of(linked):
            problems.append(f"{where}: no heading in {linked.name} has the anchor #{anchor}")
        elif anchor and linked.suffix != ".md":
            problems.append(f"{where}: an anchor into a file that is not Markdown")
    return problems


def test_the_docs_do_link_to_each_other() -> None:
    """Guards the link pattern itself: a pattern that matched nothing would pass every doc."""
    links = [target for doc in DOCS for _, target in links_of(doc)]
    assert len(links) > 50 and any("#" in target for target in links)


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(doc: Path) -> None:
    assert broken_links(doc) == []


def test_the_checker_catches_a_missing_file_and_a_missing_anchor(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    (tmp_path / "other.md").write_text("# The `--json` contract: scripts and pipelines\n## Again\n## Again\n")
    doc.write_text(
        "# Top\n"
        "[ok](other.md#the---json-contract-scripts-and-pipelines) [dup](other.md#again-1) [self](#top)\n"
        "[gone](missing.md) [bad](other.md#nowhere) `[code](not-a-link.md)`\n"
        "```\n[fenced](also-not-a-link.md)\n```\n"
    )
    assert broken_links(doc, root=tmp_path) == [
        "doc.md:3: missing.md: no such file",
        "doc.md:3: other.md#nowhere: no heading in other.md has the anchor #nowhere",
    ]
