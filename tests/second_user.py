"""The test process (root, whom no mode refuses) made a second user of a team's group: the ``os`` calls that create,
open, rename and remove files refuse what the kernel refuses a user who is not root by the mode bits, inside one
folder. A plain module like cli_helpers.py: pytest puts tests/ on the path.

The second user is uid 0 without root's privilege, her groups the team's: a file she creates is hers (uid 0), one
the test gave to another uid (the first user's, ``os.chown``) is not. Checked as the kernel checks them: search (x)
on every folder on the way below the shared folder, write and search on the folder a name is added to or removed
from, write on a folder moved to another folder (its ``..`` changes), read or write on a file opened so, the owner
alone changing a mode. What a library opens by name in C (PyAV's movie) is not seen; its folder is checked by the
rename that puts it in place.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

import pytest

__all__ = ["act_as_second_user", "give_to", "modes"]

_R, _W, _X = 4, 2, 1


def act_as_second_user(monkeypatch: pytest.MonkeyPatch, shared: Path, team_gid: int) -> None:
    """From now until ``monkeypatch.undo()``, this process is refused inside ``shared`` what a user of group
    ``team_gid`` (and none other) who owns only uid 0's files is refused there by the mode bits."""
    real = {name: getattr(os, name) for name in ("open", "mkdir", "rename", "replace", "link", "unlink", "remove",
                                                  "rmdir", "symlink", "access", "fchmod", "getgroups")}
    top = os.path.realpath(shared)

    def inside(path: Any) -> str | None:
        full = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(os.fsdecode(path))),
                                             os.path.basename(os.fsdecode(path))))
        return full if full == top or full.startswith(top + os.sep) else None

    def allowed(status: os.stat_result, need: int) -> bool:
        if status.st_uid == 0:
            bits = status.st_mode >> 6
        elif status.st_gid == team_gid:
            bits = status.st_mode >> 3
        else:
            bits = status.st_mode
        return bits & need == need

    def refuse(path: Any) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(path))

    def check(path: Any, need: int) -> None:
        """``path`` itself needs ``need``; every folder above it, up to ``shared``, search."""
        full = inside(path)
        if full is None:
            return
        folder = os.path.dirname(full)
        while folder.startswith(top + os.sep) or folder == top:
            if not allowed(os.stat(folder), _X):
                refuse(path)
            folder = os.path.dirname(folder)
        try:
            status = os.lstat(full)
        except FileNotFoundError:
            return
        if need and not allowed(status, need):
            refuse(path)

    def in_folder(path: Any) -> None:
        """A name added to or removed from ``path``'s folder."""
        if (full := inside(path)) is not None and full != top:
            check(os.path.dirname(full), _W | _X)

    def fake_open(path: Any, flags: int, *args: Any, dir_fd: int | None = None, **kwargs: Any) -> int:
        if dir_fd is None and inside(path) is not None:
            if os.path.lexists(path):
                access = flags & os.O_ACCMODE
                need = (_R if access in (os.O_RDONLY, os.O_RDWR) else 0) | \
                    (_W if access in (os.O_WRONLY, os.O_RDWR) or flags & os.O_TRUNC else 0)
                check(path, need)
            elif flags & os.O_CREAT:
                in_folder(path)
        return real["open"](path, flags, *args, dir_fd=dir_fd, **kwargs)

    def adding(name: str) -> Any:
        def call(path: Any, *args: Any, **kwargs: Any) -> Any:
            # A folder made where a name is already: EEXIST, before any permission is looked at (as Linux does)
            if not kwargs.get("dir_fd") and not (name == "mkdir" and os.path.lexists(path)):
                in_folder(path)
            return real[name](path, *args, **kwargs)
        return call

    def moving(name: str) -> Any:
        def call(source: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
            if not (kwargs.get("src_dir_fd") or kwargs.get("dst_dir_fd")):
                in_folder(source)
                in_folder(target)
                full = inside(source)
                if (full is not None and os.path.isdir(full) and not os.path.islink(full)
                        and os.path.dirname(full) != os.path.dirname(os.path.realpath(os.fsdecode(target)))):
                    check(full, _W)  # a folder moved to another folder: its ``..`` is written
            return real[name](source, target, *args, **kwargs)
        return call

    def fake_link(source: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
        in_folder(target)
        return real["link"](source, target, *args, **kwargs)

    def fake_symlink(source: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
        in_folder(target)
        return real["symlink"](source, target, *args, **kwargs)

    def fake_access(path: Any, mode: int, *args: Any, **kwargs: Any) -> bool:
        if inside(path) is not None and mode != os.F_OK:
            try:
                check(path, (_R if mode & os.R_OK else 0) | (_W if mode & os.W_OK else 0)
                      | (_X if mode & os.X_OK else 0))
            except PermissionError:
                return False
        return bool(real["access"](path, mode, *args, **kwargs))

    def fake_fchmod(fd: int, mode: int) -> None:
        if os.fstat(fd).st_uid != 0:  # only a file's owner changes its mode
            raise PermissionError(errno.EPERM, "Operation not permitted")
        real["fchmod"](fd, mode)

    monkeypatch.setattr(os, "open", fake_open)
    for name in ("mkdir", "unlink", "remove", "rmdir"):
        monkeypatch.setattr(os, name, adding(name))
    monkeypatch.setattr(os, "rename", moving("rename"))
    monkeypatch.setattr(os, "replace", moving("replace"))
    monkeypatch.setattr(os, "link", fake_link)
    monkeypatch.setattr(os, "symlink", fake_symlink)
    monkeypatch.setattr(os, "access", fake_access)
    monkeypatch.setattr(os, "fchmod", fake_fchmod)
    monkeypatch.setattr(os, "getgroups", lambda: [team_gid])


def give_to(owner: int, shared: Path) -> None:
    """Everything under ``shared`` (not ``shared`` itself) given to uid ``owner``, its group kept: what the first user
    made, as she would have."""
    for path in sorted(shared.rglob("*")):
        os.chown(path, owner, path.lstat().st_gid, follow_symlinks=False)


def modes(shared: Path) -> dict[str, str]:
    """Each path under ``shared`` and its mode as ``ls -l`` writes it."""
    return {str(path.relative_to(shared)): stat.filemode(path.lstat().st_mode) for path in sorted(shared.rglob("*"))}
