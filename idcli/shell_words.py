"""Paths written into a command a note suggests (``idcli render shots.yaml --out renders/x``), as the person would
type them from the folder they are in.

A note that said ``idcli render /home/ana/film/shots.yaml`` where she typed ``shots.yaml`` read as another file
and did not fit a line; the path relative to the current folder, when it lies under it, is the one she knows;
elsewhere the absolute path is. The current folder is the shell's ``$PWD`` when that names it (a folder reached
through a link: ``os.getcwd()`` gives its real path, which her absolute paths do not start with). It is
quoted for a POSIX shell, so the command runs as it stands (a space or an apostrophe in a folder's name); a name
that is not UTF-8, or holds a character a terminal does not show as itself (a tab, an escape), in bash's ``$'\\xNN'``
form (``quote_word``).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

__all__ = ["quote_word", "shell_path"]

# How Python spells a file name's byte that is not UTF-8 (PEP 383's surrogateescape): U+DC80..U+DCFF.
_ESCAPED_BYTES = range(0xDC80, 0xDD00)


def quote_word(word: str) -> str:
    """``word`` quoted as one shell word. A name that is not UTF-8 (a Latin-1 ``caf\\xe9`` from an old share) reaches
    Python with its bytes surrogate-escaped, which no terminal shows and no paste gives back: it is written in ANSI-C
    quotes, ``$'caf\\xe9'``, each such byte (and ``\\``, ``'`` and each character a terminal does not show as
    itself) as an escape, the rest as it is. So is a UTF-8 name with such a character: a tab shows as spaces, a
    newline splits the note, and an escape (which idcli prints as the text ``\\x1b``) pasted inside plain quotes
    named another file. That is bash, zsh and ksh syntax, not POSIX sh's: dash (Debian's /bin/sh) reads ``$'…'``
    as ``$`` and a quoted string. Every other word is quoted for any POSIX shell (``shlex.quote``)."""
    if word.isprintable():  # a surrogate (an escaped byte) is not
        return shlex.quote(word)
    escaped = []
    for char in word:
        code = ord(char)
        if code in _ESCAPED_BYTES:
            escaped.append(f"\\x{code - 0xDC00:02x}")
        elif char in "\\'":
            escaped.append("\\" + char)
        elif not char.isprintable():  # its UTF-8 bytes: \xNN reads the same in every locale, \uNNNN does not
            escaped.extend(f"\\x{byte:02x}" for byte in char.encode("utf-8", "surrogatepass"))
        else:
            escaped.append(char)
    return "$'" + "".join(escaped) + "'"


def _current_folders() -> list[str]:
    """The current folder's spellings a path may start with: the shell's ``$PWD`` when it names this folder (a
    program that changed folder leaves it stale), then the real path (``os.getcwd()``, which may raise OSError)."""
    real = os.getcwd()
    logical = os.environ.get("PWD", "")
    if logical and logical != real and os.path.isabs(logical):
        try:
            if os.path.samefile(logical, real):
                return [os.path.normpath(logical), real]
        except OSError:
            pass
    return [real]


def _under(folder: str, absolute: str) -> str | None:
    """``absolute`` relative to ``folder`` when it lies under it, else None."""
    try:
        relative = os.path.relpath(absolute, folder)
    except ValueError:  # another drive (Windows)
        return None
    return None if relative == os.pardir or relative.startswith(os.pardir + os.sep) else relative


def shell_path(path: str | Path) -> str:
    """``path`` as a shell argument from the current folder: relative when it lies under it, else absolute (a
    ``../../tmp/x`` reads as neither the file she typed nor one she knows, and whether it was shorter depended on
    where the folder sat), quoted."""
    try:
        folders = _current_folders()
    except OSError:  # the current folder was deleted (os.getcwd fails): the path as given still means what it did
        absolute = shorter = os.fspath(path)
    else:
        # Joined with the real path, as the system reads a relative path; a relative path under one spelling of the
        # folder is the same path under the other.
        absolute = os.path.abspath(path)
        relatives = [r for r in (_under(folder, absolute) for folder in folders) if r is not None]
        shorter = relatives[0] if relatives and len(relatives[0]) <= len(absolute) else absolute
    # "./-x": a path with a leading "-", pasted, would be read as an option
    return quote_word(f"./{shorter}" if shorter.startswith("-") else shorter)
