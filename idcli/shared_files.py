"""What idcli creates in a folder a team shares (a group-writable folder, setgid so that what is created in it keeps
the team's group): the mode it is created with, and what a user refused one is told.

The folder's lock (``.idcli/lock``) is opened read-write by every run, whoever created it. Created 0644 whatever the
folder, the first user's lock shut every other user of the group out of the folder with "permission denied while
opening …/lock", which named neither whose file it was nor what to change (docs/reliability.md, "A folder a team
shares"). And every other file and folder idcli made there (a shot's folder, its takes, ``.idcli/superseded``, the
review page, an export) took the umask's mode: made under ``umask 022`` (most systems' default), a shot's folder
``drwxr-sr-x`` shut the next user of the group out of her retake, her resume and her review. What idcli creates in a
group-writable folder is made group-readable and -writable (a folder group-searchable too) whatever the umask's group
bits, where it has the folder's group (a setgid folder gives it; in one that is not, what is made has the user's own
group, which the folder is not shared with); the umask's bits for others are kept, and nothing is made writable by
others (``share_created``, ``make_folders``).
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

__all__ = ["created_mode", "make_folders", "not_a_regular_file", "refused_folder", "refused_to_create",
           "refused_to_move", "refused_to_write", "share_created"]


def created_mode(folder: Path) -> int:
    """The mode to create a file of ``folder`` with (``os.open``'s, the process's umask still applied): writable by
    the group when ``folder`` is, else by its owner only. Giving the group write on the file gives nothing away:
    whoever may write in the folder may remove the file and create it again."""
    try:
        shared = bool(os.stat(folder).st_mode & stat.S_IWGRP)
    except OSError:  # the open that follows says what is wrong with the folder
        shared = False
    return 0o664 if shared else 0o644


def group_writable(folder: Path) -> bool:
    """Whether ``folder`` is writable by its group: a folder a team shares, where what idcli creates is shared too."""
    try:
        return bool(os.stat(folder).st_mode & stat.S_IWGRP)
    except OSError:
        return False


def _shared_mode(mode: int) -> int:
    """``mode`` (an ``st_mode``) with the group given read and write, and search for a folder; the setgid bit and
    the others' bits (the umask's) kept: never made writable by others here."""
    return stat.S_IMODE(mode) | (stat.S_IRWXG if stat.S_ISDIR(mode) else stat.S_IRGRP | stat.S_IWGRP)


def share_created(made: int | Path, folder: Path, *, folder_only: bool = False) -> None:
    """Give the group read and write (and search, for a folder) of ``made`` (a descriptor, or a path never followed
    through a link), just created by this process in ``folder``, when ``folder`` is group-writable, whatever the
    umask's group bits: under ``umask 022`` a shot's folder ``drwxr-sr-x`` shut the next user of the group out of
    it. Only what this user owns, and only a file or folder; best effort (a file system without modes, FAT or some
    network shares, keeps what it has). Called after a library writes a file by name (the movie's encoder) as well:
    the mode it chose is what a rename puts in place.

    Only when ``made`` has ``folder``'s group (a setgid folder gives it): in a folder that is not setgid (``chmod
    775``, or ``/tmp``'s ``1777``) what is made gets the user's own group, on many systems ``users``, every account
    of the machine, which the folder is not shared with. Never a file with more than one name: another user of the
    folder may swap what was just made for a hard link to a file of this user's elsewhere. ``folder_only``: ``made``
    is a path where a folder was just made (anything else there is left alone)."""
    if not group_writable(folder):
        return
    try:
        folder_gid = os.stat(folder).st_gid
        # O_NOFOLLOW: a link planted at the path is never followed to another file
        fd = made if isinstance(made, int) else os.open(made, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
                                                        | os.O_NOCTTY | (os.O_DIRECTORY if folder_only else 0))
        try:
            status = os.fstat(fd)
            if status.st_uid != os.geteuid() or status.st_gid != folder_gid:
                return
            if not (stat.S_ISDIR(status.st_mode) or (stat.S_ISREG(status.st_mode) and status.st_nlink == 1)):
                return
            if (shared := _shared_mode(status.st_mode)) != stat.S_IMODE(status.st_mode):
                os.fchmod(fd, shared)
        finally:
            if not isinstance(made, int):
                os.close(fd)
    except OSError:
        return


def make_folders(folder: Path) -> None:
    """``folder.mkdir(parents=True, exist_ok=True)``, each folder made given to the group (``share_created``) where
    the folder it is made in is group-writable: ``Path.mkdir`` made the shot's folder and ``.idcli/superseded/SHOT``
    with the umask's mode. OSError as ``Path.mkdir`` raises it (FileExistsError when a file stands there)."""
    try:
        os.mkdir(folder)
    except FileNotFoundError:
        if folder.parent == folder:
            raise
        make_folders(folder.parent)
        try:
            os.mkdir(folder)
        except FileExistsError:
            if not folder.is_dir():
                raise
            return
    except FileExistsError:
        if not folder.is_dir():
            raise
        return
    share_created(folder, folder.parent, folder_only=True)


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


def _groups_of(uid: int) -> set[int]:
    """The groups of the user ``uid`` (her own and those listing her); none for a user this machine has no name for."""
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        return set()
    return {entry.pw_gid} | {group.gr_gid for group in grp.getgrall() if entry.pw_name in group.gr_mem}


def _a_strangers(status: os.stat_result) -> bool:
    """Whether what has ``status`` (not the refused user's, nor of a group of hers) is a stranger's: its owner in no
    group with her, and its group one nobody else joined (the owner's own, or a number with no name here). A team's
    group that others joined (``film``, an admin's folder's) is one she may be added to."""
    try:
        members = set(grp.getgrgid(status.st_gid).gr_mem)
    except KeyError:
        members = set()
    if members - {_user(status.st_uid)}:
        return False
    return not _groups_of(status.st_uid) & {os.getegid(), *os.getgroups()}


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
    return _refusal(path, found, verb, status, exc, output_folder, what)


def _output_folder_of(path: Path) -> Path:
    """The output folder ``path`` lies in (the nearest folder above it holding ``.idcli``), for the fix a refusal
    names; the folder ``path`` is in when none is (a delivery's folder)."""
    for folder in path.parents:
        if (folder / ".idcli").is_dir():
            return folder
    return path.parent


def _nearest_existing(path: Path) -> tuple[Path, os.stat_result] | None:
    """The nearest folder above ``path`` that is there and may be looked at, and its status: the one a file or
    folder made at ``path`` (its missing folders first) is refused by."""
    for folder in path.parents:
        try:
            return folder, os.stat(folder)
        except OSError:
            continue
    return None


def _may_write_in(status: os.stat_result) -> bool:
    """Whether the mode bits of a folder of ``status`` let this user add and remove names in it (w and x of her
    class: owner, group or others); root is refused by none but a test gives a folder to another user."""
    if status.st_uid == os.geteuid():
        need = stat.S_IWUSR | stat.S_IXUSR
    elif status.st_gid in {os.getegid(), *os.getgroups()}:
        need = stat.S_IWGRP | stat.S_IXGRP
    else:
        need = stat.S_IWOTH | stat.S_IXOTH
    return status.st_mode & need == need


def refused_to_create(path: Path, exc: OSError, what: str | None = None,
                      output_folder: Path | None = None) -> OutputError | None:
    """The error for a user refused making ``path`` (a file written to a temporary and renamed there, or a folder)
    by the folder it is made in: a shot's folder made ``drwxr-sr-x`` by an earlier idcli under ``umask 022`` said
    only ``permission denied while writing PATH``, not whose folder it is nor what to change. Whose it is, its mode
    and the fix (``refused_to_write``'s words); None for any other error, which the caller words."""
    if exc.errno not in (errno.EACCES, errno.EPERM) or (found := _nearest_existing(path)) is None:
        return None
    folder, status = found
    return _refusal(path, folder, "created", status, exc, output_folder or _output_folder_of(path), what)


def refused_folder(folder: Path, what: str) -> OutputError | None:
    """The error for a user whose write in ``folder`` (``what`` says which: the output folder) its mode refuses: a
    team's output folder an earlier idcli made ``drwxr-sr-x`` under ``umask 022`` told the next user of the group only
    ``output folder OUT is not writable``. None when its mode does not refuse her (a read-only share) or it is her
    own (``chmod 555``: "output folder OUT is not writable" says it), which the caller words."""
    try:
        status = os.stat(folder)
    except OSError:
        return None
    if status.st_uid == os.geteuid() or _may_write_in(status):
        return None
    return _refusal(folder, folder, "written in", status, OSError(errno.EACCES, os.strerror(errno.EACCES)), folder,
                    what)


def refused_to_move(source: Path, target: Path, exc: OSError, what: str | None = None) -> OutputError | None:
    """The error for a user refused moving ``source`` to ``target`` (a take moved aside to ``.idcli/superseded``,
    or put back) by the folder it leaves or the one it goes to: the first of them whose mode refuses her is named,
    as ``refused_to_create`` names one. None for any other error, or when neither folder's mode refuses her."""
    if exc.errno not in (errno.EACCES, errno.EPERM):
        return None
    for path, subject in ((source, "its folder"), (target, "the folder it goes to,")):
        if (found := _nearest_existing(path)) is not None and not _may_write_in(found[1]):
            return _refusal(source, found[0], "moved", found[1], exc, _output_folder_of(source), what,
                            subject=f"{subject} {found[0]}")
    return None


def _refusal(path: Path, found: Path, verb: str, status: os.stat_result, exc: OSError, output_folder: Path,
             what: str | None, *, subject: str | None = None) -> OutputError | None:
    """``refused_to_write``'s words for ``path``, refused by ``found`` (``path`` itself or a folder above it) of
    ``status``; ``subject`` names ``found`` when it is not "it" or "its folder FOUND"."""
    is_file = found == path
    me, owner, group = _user(os.geteuid()), _user(status.st_uid), _group(status.st_gid)
    mode = stat.filemode(status.st_mode)
    head = (f"{path}{f' ({what})' if what else ''} cannot be {verb} by {me}: "
            f"{subject or ('it' if is_file else f'its folder {found}')} belongs to {owner} (group {group}, {mode})")
    if status.st_uid == os.geteuid():
        if not status.st_mode & stat.S_IWUSR:
            return OutputError(f"{head}: not writable by its owner — `chmod u+w {shell_path(found)}`", file=path)
        # Its own, writable, and refused: a read-only share, an ACL or a file attribute, no team's permission to
        # fix; the caller's words ("output folder OUT is not writable" for select's lock).
        return None
    # g+rwX: the file is opened read-write, and a folder is entered (x) as well as written; `g+w` alone left what a
    # first render under umask 077 made (-rw-------, drwx------) refused still.
    team = (f"a folder a team renders into needs its files and folders group-writable: {owner} (or root) runs "
            f"`chmod -R g+rwX {shell_path(output_folder)}`, and each of you works there with `umask 002`, so that "
            "what other programs create there is too (idcli makes what it creates there group-writable)")
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
        if _a_strangers(status):
            # Copied in from elsewhere, or made by someone outside every team of hers: joining its group (a
            # stranger's own, or a number this machine has no name for) is no fix, nor is a team's chmod.
            folder, uid = shell_path(output_folder), os.geteuid()
            taker = me if not me.startswith("uid ") else str(uid)  # chown takes a number for a nameless user
            return OutputError(
                f"{head}, who shares no group with {me} (a folder copied in from elsewhere keeps its owner): adding "
                f"{me} to group {group} is no fix; root gives it to {me}, `chown -R {taker}: {folder}` (its owner "
                f"cannot give it to a group of {me}'s), or {me} works on a copy (`cp -R {folder} COPY`, the copy "
                f"{me}'s) or writes elsewhere", file=path)
        return OutputError(f"{head}, and {me} is not in its group: add {me} to group {group}; {team}", file=path)
    if not status.st_mode & stat.S_IWGRP:
        return OutputError(f"{head} and is not group-writable; {team}", file=path)
    is_folder = stat.S_ISDIR(status.st_mode)
    unread = stat.S_IXGRP if is_folder else stat.S_IRGRP  # a lock is opened read-write; a folder is entered
    if not status.st_mode & unread:
        return OutputError(f"{head} and is group-writable but not group-{'searchable' if is_folder else 'readable'}; "
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
