"""The picks file a director exports from the storyboard page: ``picks.json``, fed back with
``idcli select OUT --from picks.json`` (docs/review.md, "Picks on the page").

The page writes it (idcli/review/page_assets.py's script; the director has no idcli); this module reads it, bounded and
checked field by field, so that a file from a laptop is validated as strictly as picks typed on the command line::

    {"schema": 1, "kind": "idcli-picks", "project": "sc12", "run": "3f9c…", "exported": "2026-…",
     "picks": {"sc12_sh010": {"take": 2, "key": "1470872d32d7af48"}, "sc12_sh020": {"take": null}}}

``take`` null clears the shot's select. ``key`` says which render of the take the director looked at: the first
16 hex digits of its job key (``seen_key``; the page carries no more, for size: 4,729 takes' full keys were 0.4 MB
of a film's page). A take re-rendered since has another key, and ``select`` refuses the pick unless forced, or
records it at the one other take of the shot that shows the render seen (the shot's takes shifted: selects.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, printable
from ..option_words import Option

PICKS_KIND = "idcli-picks"
PICKS_SCHEMA = 1
MAX_PICKS_BYTES = 4 * 1024 * 1024  # 2,000 shots' picks are about 0.1 MB
MAX_TAKE = 9999  # as SHOT=TAKE on the command line (four digits)
_SEEN_KEY = re.compile(r"[0-9a-f]{16}")


def seen_key(job_key: str) -> str:
    """A take's job key as the page and its picks file carry it: the first 16 hex digits of its digest (64 bits:
    enough to tell a re-render from the take the director saw)."""
    return job_key.split(":", 1)[-1][:16]


def is_seen_key(text: str) -> bool:
    """Whether ``text`` is a take's key as the page and its picks file carry it (a hand-edited selects.json's
    job key may not give one)."""
    return bool(_SEEN_KEY.fullmatch(text))


@dataclass(frozen=True)
class FilePick:
    """One shot's pick from a picks file: ``take`` None clears the select; ``key`` the take's ``seen_key`` as the
    director saw it (None: not said)."""

    shot: str
    take: int | None
    key: str | None


@dataclass(frozen=True)
class PicksFile:
    path: Path
    project: str | None
    picks: list[FilePick]
    from_stdin: bool = False  # read from standard input (``--from -``)

    @property
    def shown(self) -> str:
        """How messages name the file in full."""
        return "standard input" if self.from_stdin else str(self.path)

    @property
    def name(self) -> str:
        """How a pick's message names the file: its base name."""
        return "standard input" if self.from_stdin else self.path.name


def read_picks_file(path: str | Path) -> PicksFile:
    """The picks of an exported ``picks.json`` (``-``: standard input, as the page's text is piped in from the
    clipboard); any problem is an InputError naming the file and the field."""
    from_stdin = str(path) == "-"
    path = Path(path)
    raw = _read_stdin() if from_stdin else _read_file(path)
    shown = "standard input" if from_stdin else str(path)
    try:  # utf-8-sig: the text the page shows, pasted into a file by Notepad, starts with a byte order mark
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InputError(f"{shown}: not a picks file (not UTF-8 text)", file=path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{shown}: line {exc.lineno}: not JSON ({exc.msg}); export the picks from the storyboard "
                         "page again", file=path, line=exc.lineno, column=exc.colno) from None
    except RecursionError:
        raise InputError(f"{shown}: not a picks file (nested too deep)", file=path) from None

    def wrong(field: str, allowed: str) -> InputError:
        return InputError(f"{shown}: {field}: {allowed}", file=path, field=field)

    if not isinstance(data, dict) or data.get("kind") != PICKS_KIND:
        raise InputError(f"{shown}: not a picks file (expected the JSON the storyboard page's \"export picks\" "
                         f"gives, with \"kind\": \"{PICKS_KIND}\")", file=path)
    if data.get("schema") != PICKS_SCHEMA:
        raise wrong("schema", f"{data.get('schema')!r:.40} is not a picks-file version this idcli reads "
                              f"(it reads {PICKS_SCHEMA})")
    project = data.get("project")
    if project is not None and not isinstance(project, str):
        raise wrong("project", "a string, the project the page showed")
    picks = data.get("picks")
    if not isinstance(picks, dict):
        raise wrong("picks", "an object, shot id -> {\"take\": N, \"key\": \"…\"}")
    found = []
    for shot, pick in picks.items():
        field = f"picks.{printable(shot):.80}"  # the file's own words, quoted as a command-line pick's are
        if not shot or not isinstance(pick, dict):
            raise wrong(field, "an object {\"take\": N, \"key\": \"…\"} (take null clears the pick)")
        take, key = pick.get("take"), pick.get("key")
        unknown = sorted(set(pick) - {"take", "key"})
        if unknown:
            raise wrong(f"{field}.{unknown[0]}", "not a field of a pick (it has take and key)")
        if take is not None and not (type(take) is int and 1 <= take <= MAX_TAKE):
            raise wrong(f"{field}.take", f"{take!r:.40} is not a take: a whole number 1–{MAX_TAKE}, or null to "
                                         "clear the pick")
        if key is not None and not (isinstance(key, str) and is_seen_key(key)):
            raise wrong(f"{field}.key", f"{key!r:.40} is not a take's key as the page gives it (16 hex digits)")
        found.append(FilePick(shot, take, key))
    if not found:
        raise wrong("picks", "no picks in it; pick takes on the page, then export")
    return PicksFile(path, project, found, from_stdin)


def _read_file(path: Path) -> bytes:
    from ..safeio import NotRegularFile, read_regular

    try:
        return read_regular(path, MAX_PICKS_BYTES)
    except NotRegularFile as exc:
        # A pipe given by name (/dev/stdin, <(...)) is refused as every file idcli reads that could block; ``-`` reads
        # standard input on purpose.
        hint = "; to read the picks from a pipe, give --from -" if exc.kind == "special" else ""
        raise InputError(f"{path}: cannot read the picks file ({exc.kind}){hint}", file=path) from None


_STDIN = Option("from_file", "-", flag="--from")


def _read_stdin() -> bytes:
    """Standard input, bounded as a picks file: ``pbpaste | idcli select OUT --from -``."""
    import sys

    stream = sys.stdin
    if stream is None or stream.closed:
        raise InputError(_STDIN, ": standard input is closed; pipe the picks in (pbpaste | idcli select OUT --from -)",
                         field="from_file")
    if stream.isatty():  # a director typing JSON at a prompt is not the case; a forgotten pipe is
        raise InputError(_STDIN, ": standard input is a terminal; pipe the picks in (pbpaste | idcli select OUT "
                         "--from -), or give the picks file", field="from_file")
    raw = stream.buffer.read(MAX_PICKS_BYTES + 1)
    if len(raw) > MAX_PICKS_BYTES:
        raise InputError(f"standard input: cannot read the picks file (too-large: over {MAX_PICKS_BYTES:,} bytes)",
                         field="from_file")
    return raw

