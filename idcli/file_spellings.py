"""A path as the disk spells it, where the shot list spells a name with the same letters in another Unicode form;
and a Windows absolute path (``C:\\…``, ``\\\\server\\share``), named as one where it cannot be reached.

An accented name has two spellings: composed (NFC, one code point for ``é``: what Windows, Linux and nearly every
editor type) and decomposed (NFD, ``e`` and a combining accent: what macOS Finder gives file names, kept as such when
the folder is copied, zipped or synced to another machine). macOS looks names up in either form; Linux's file systems
compare bytes, so a shot list typed on Windows naming ``selfies/Renée/1.jpg`` did not find the folder copied off a
Mac, and said so with a "did you mean 'Renée'?" that read the same as what it had looked for.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path


def spelt_on_disk(path: Path) -> Path:
    """``path`` with each name that does not exist replaced by the one entry of its folder that is the same text in
    another Unicode normalization form; ``path`` itself when it exists, when a name is ASCII (one spelling only),
    or when no entry, or more than one (two files whose names differ only so), matches.

    Only a path that does not exist is looked into, so a path that is found reads exactly as before (and costs one
    ``lstat``); the files themselves are keyed by their content, so no job key depends on the spelling."""
    if os.path.lexists(path) or path.as_posix().isascii():
        return path
    found = Path(path.anchor) if path.anchor else Path()
    for part in path.parts[1:] if path.anchor else path.parts:
        step = found / part
        if not os.path.lexists(step):
            if part.isascii():
                return path  # this name has one spelling and is not there: nothing else to find
            same = unicodedata.normalize("NFC", part)
            try:
                entries = os.listdir(found)
            except OSError:
                return path
            matches = [entry for entry in entries if unicodedata.normalize("NFC", entry) == same]
            if len(matches) != 1:
                return path
            step = found / matches[0]
        found = step
    return found


def windows_drive(value: str) -> str | None:
    """The drive (``C:``) or network share (``\\\\server\\share``) a Windows absolute path starts with, on a machine
    that is not Windows (where it was read as a file name in the shot list's folder); None otherwise."""
    if os.name == "nt":
        return None
    if (drive := re.match(r"[A-Za-z]:(?=[\\/])", value)) is not None:
        return f"drive {drive.group(0).upper()}"
    if (share := re.match(r"\\\\[^\\/]+[\\/][^\\/]+", value)) is not None:
        return f"the network share {share.group(0)}"
    return None
