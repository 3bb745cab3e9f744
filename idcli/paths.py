"""Where idcli keeps its own state (caches). One variable, IDCLI_HOME, moves all of it."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from .file_spellings import spelt_on_disk

# Each IDCLI_HOME value as first read in this process, made absolute against the folder it was read in.
_HOMES: dict[str, Path] = {}


def state_dir() -> Path:
    """``$IDCLI_HOME``, else ``$XDG_CACHE_HOME/idcli`` (when absolute), else ``~/.cache/idcli``. A relative
    ``IDCLI_HOME`` is made absolute once, against the current folder the first time it is read in the process:
    resolved at each use, a host that changes folder between calls (a pipeline's per-shot ``os.chdir``) used a cache
    in each folder."""
    if home := os.environ.get("IDCLI_HOME"):
        if (found := _HOMES.get(home)) is None:
            found = _HOMES.setdefault(home, absolute(Path(home).expanduser()))
        return found
    # The XDG Base Directory spec: a relative XDG_CACHE_HOME is invalid and ignored (read against each use's
    # current folder, it gave a cache per folder).
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "idcli"


def relative_home() -> tuple[str, Path] | None:
    """``IDCLI_HOME`` as set and the folder this process made of it, when the value is relative; None otherwise.

    A process started with this one's environment elsewhere (the Ray workers of the local cluster a run starts,
    which begin in the folder the cluster started in) reads the same value against its own folder, another cache:
    it is handed this pair and, through ``use_home``, uses this process's folder."""
    home = os.environ.get("IDCLI_HOME")
    if not home or os.path.isabs(os.path.expanduser(home)):
        return None
    return home, state_dir()


def use_home(given: tuple[str, Path] | None) -> None:
    """``given`` (a driver's ``relative_home()``): this process's IDCLI_HOME, when it is the same relative value, is
    made the folder the driver made of it. Another value (a cluster node's own IDCLI_HOME) is left as it is."""
    if given is not None and os.environ.get("IDCLI_HOME") == given[0]:
        _HOMES[given[0]] = given[1]


def cache_note(path: str | os.PathLike[str] | None) -> str:
    """What an error about ``path`` adds when the path lies in idcli's cache (``state_dir()``): exit 5 otherwise reads
    as the output folder's fault, and a farm's read-only shared ``IDCLI_HOME`` needs naming; "" for any other path."""
    if path is None:
        return ""
    home = Path(os.path.abspath(state_dir()))
    if not Path(os.path.abspath(path)).is_relative_to(home):
        return ""
    return f"; this is idcli's cache (IDCLI_HOME, now {home}): make it a writable folder, or set IDCLI_HOME to one"


def absolute(path: str | os.PathLike[str]) -> Path:
    """``path`` absolute, as idcli prints and records it (``out_dir``, ``abs_path``): without ``.`` or ``..``
    (``/a/b/../c`` is ``/a/c``) and without resolving the symlinks it names (a studio's ``/shows`` link stays
    ``/shows``). Only a ``..`` right after a symlink resolves that link: the system reads ``link/..`` as the parent of
    the link's target, and lexical normalisation (``os.path.normpath``) would name another folder."""
    given = Path(path).absolute()
    if ".." not in given.parts:
        return given
    found = Path(given.anchor)
    for part in given.parts[1:]:
        if part != "..":
            found /= part
            continue
        if found.is_symlink():
            with contextlib.suppress(OSError, RuntimeError):  # a loop of links: the system cannot read it either
                found = found.resolve()
        found = found.parent
    return found


def real_path(path: str | os.PathLike[str]) -> Path:
    """``path`` with its links resolved, as ``Path.resolve()`` gives it, for comparing two paths; a loop of links is
    left where it loops (``Path.resolve`` raises RuntimeError on one: a link to itself in a folder verify reads was
    an internal error), so the file is reported as the one that cannot be read."""
    return Path(os.path.realpath(path))


def expand_user(value: str) -> Path | None:
    """``~`` and ``~user`` expanded; None when that user has no home folder here (Path raises)."""
    try:
        return Path(value).expanduser()
    except RuntimeError:
        return None


def local_path(value: str, base_dir: Path) -> Path | None:
    """A path as a shot list writes it: ``~`` expanded, relative ones under ``base_dir``; an accented name the disk
    spells in another Unicode form (a folder copied off a Mac) as the disk spells it (idcli/file_spellings.py).

    None when ``value`` names a ``~user`` with no home folder here: no local path (the shot list's
    validation reports it with its line; a hub id never starts with ``~``).
    """
    path = expand_user(value)
    if path is None:
        return None
    return spelt_on_disk(path if path.is_absolute() else base_dir / path)


def document_folder(path: Path) -> Path:
    """The folder a document's relative paths resolve from: the file's own folder, or the current folder when
    the document is no regular file — a pipe (``/dev/stdin``, ``<(make_shots)``), whose "folder" (``/dev``,
    ``/proc/self/fd``) holds none of its files."""
    try:
        regular = stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        regular = False
    return path.resolve().parent if regular else Path.cwd().resolve()
