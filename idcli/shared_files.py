"""Files every run opens for writing in an output folder a team shares (a group-writable folder, setgid so that what
is created in it keeps the team's group): the mode they are created with, and what a user refused one is told.

The folder's lock (``.idcli/lock``) is opened read-write by every run, whoever created it. Created 0644 whatever the
folder, the first user's lock shut every other user of the group out of the folder with "permission denied while
opening …/lock", which named neither whose file it was nor what to change (docs/reliability.md, "A folder a team
shares").
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
from pathlib import Path

from .errors import OutputError
from .shell_words import shell_path

__all__ = ["created_mode", "not_a_regular_file", "refused_to_write"]


def created_mode(folder: Path) -> int:
    """The mode to create a file of ``folder`` with (``os.open``'s, the process's umask still applied): writable by
    the group when ``folder`` is, else by its owner only. Giving the group write on the file gives nothing away:
    whoever may write in the folder may remove the file and create it again."""
    try:
        shared = bool(os.stat(folder).st_mode & stat.S_IWGRP)
    except OSError:  # the open that follows says what is wrong with the folder
        shared = False
    return 0o664 if shared else 0o644


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a user of another machine (an NFS share's numeric owner)
        return f"uid {uid}"


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return f"gid {gid}"


def _team_group(output_folder: Path, gid: int, mine: set[int]) -> int | None:
    """The output folder's group when it is not ``gid`` and is one of ``mine`` (the refused user's groups)."""
    try:
        team = os.stat(output_folder).st_gid
    except OSError:
        return None
    return team if team != gid and team in mine else None


def refused_to_write(path: Path, exc: OSError, output_folder: Path, what: str) -> OutputError | None:
    """The error for a user refused ``path`` (a file every run opens for writing, ``what`` says which) by its
    permissions, or by its folder's when it is not there yet or the folder may not be searched: whose it is, its mode
    and the permission to fix; None for any other error (a read-only file system, a full disk, a file of the user's
    own she may write yet is refused), which the caller words."""
    if exc.errno not in (errno.EACCES, errno.EPERM):
        return None
    try:
        found, verb = path, "opened for writing"
        status = os.lstat(path)
    except (FileNotFoundError, PermissionError) as missing:
        # Not there (this open would have created it), or its folder may not be searched (drwx------, left by a
        # first render under umask 077): its folder refused.
        found, verb = path.parent, "created" if isinstance(missing, FileNotFoundError) else "reached"
        try:
            status = os.stat(found)
        except OSError:
            return None
    except OSError:
        return None
    is_file = found == path
    me, owner, group = _user(os.geteuid()), _user(status.st_uid), _group(status.st_gid)
    mode = stat.filemode(status.st_mode)
    head = (f"{path} ({what}) cannot be {verb} by {me}: "
            f"{'it' if is_file else f'its folder {found}'} belongs to {owner} (group {group}, {mode})")
    if status.st_uid == os.geteuid():
        if not status.st_mode & stat.S_IWUSR:
            return OutputError(f"{head}: not writable by its owner — `chmod u+w {shell_path(found)}`", file=path)
        # Its own, writable, and refused: a read-only share, an ACL or a file attribute, no team's permission to
        # fix; the caller's words ("output folder OUT is not writable" for select's lock).
        return None
    # g+rwX: the file is opened read-write, and a folder is entered (x) as well as written; `g+w` alone left what a
    # first render under umask 077 made (-rw-------, drwx------) refused still.
    team = (f"a folder a team renders into needs its files and folders group-writable: {owner} (or root) runs "
            f"`chmod -R g+rwX {shell_path(output_folder)}`, and each of you renders with `umask 002`, so that what "
            "idcli creates there is too")
    mine = {os.getegid(), *os.getgroups()}
    if status.st_gid not in mine:
        if (shared := _team_group(output_folder, status.st_gid, mine)) is not None:
            # The folder not setgid: what its creator made got her own group. Adding the refused user to that
            # (personal) group is no fix; the team's group given back, and kept for what is created next, is.
            # Three commands, not joined by &&: chgrp stops the chain at a file its runner does not own (the team
            # folder itself, made by an admin) having changed the rest.
            folder, name = shell_path(output_folder), _group(shared)
            chgrp = name if not name.startswith("gid ") else str(shared)  # chgrp takes a number for a nameless one
            return OutputError(
                f"{head}, not to {output_folder}'s group, {name}, which {me} is in: in a folder that is not setgid, "
                f"what each of you creates gets your own group; {owner} (or root) runs `chgrp -R {chgrp} {folder}; "
                f"chmod -R g+rwX {folder}; find {folder} -type d -exec chmod g+s {{}} +`, and each of you renders "
                "with `umask 002`", file=path)
        return OutputError(f"{head}, and {me} is not in its group: add {me} to group {group}; {team}", file=path)
    if not status.st_mode & stat.S_IWGRP:
        return OutputError(f"{head} and is not group-writable; {team}", file=path)
    unread = stat.S_IRGRP if is_file else stat.S_IXGRP  # a lock is opened read-write; a folder is entered
    if not status.st_mode & unread:
        return OutputError(f"{head} and is group-writable but not group-{'readable' if is_file else 'searchable'}; "
                           f"{team}", file=path)
    # Group-writable and still refused: an ACL or a file attribute; the system's own words are all there is.
    return OutputError(f"{head}: {exc.strerror}", file=path)


def not_a_regular_file(path: Path, mode: int, what: str) -> OutputError | None:
    """The error for ``path`` (``what`` says which file), opened and found of ``mode``, when it is no regular file:
    a FIFO planted there (a shared or received folder) took as a lock records no holder, and reading who held it
    stopped ``render --wait`` with "Illegal seek". None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else stat.filemode(mode))
    return OutputError(f"{path} is not a regular file ({kind}); {what} is a plain file idcli creates and keeps "
                       f"nothing in: remove it (`rm {shell_path(path)}`) and run again", file=path)
