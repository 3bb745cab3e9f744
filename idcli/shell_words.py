"""Paths written into a command a note suggests (``idcli render shots.yaml --out renders/x``), as the person would
type them from the folder they are in.

A note that said ``idcli render /home/ana/film/shots.yaml`` where she typed ``shots.yaml`` read as another file
and did not fit a line; the path relative to the current folder, when it lies under it, is the one she knows;
elsewhere the absolute path is. It is
quoted for a POSIX shell, so the command runs as it stands (a space or an apostrophe in a folder's name).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

__all__ = ["shell_path"]


def shell_path(path: str | Path) -> str:
    """``path`` as a shell argument from the current folder: relative when it lies under it, else absolute (a
    ``../../tmp/x`` reads as neither the file she typed nor one she knows, and whether it was shorter depended on
    where the folder sat), quoted."""
    try:
        absolute = os.path.abspath(path)
        relative = os.path.relpath(absolute)
    except ValueError:  # another drive (Windows)
        relative = absolute
    except OSError:  # the current folder was deleted (os.getcwd fails): the path as given still means what it did
        absolute = relative = os.fspath(path)
    under = relative != os.pardir and not relative.startswith(os.pardir + os.sep)
    shorter = relative if under and len(relative) <= len(absolute) else absolute
    # "./-x": a path with a leading "-", pasted, would be read as an option
    return shlex.quote(f"./{shorter}" if shorter.startswith("-") else shorter)
