"""File primitives shared by every module that reads what a person or another process left on disk.

``open_regular`` / ``read_regular`` never block (a FIFO planted where a file belongs would otherwise
wait forever for a writer), refuse devices, folders and sockets before reading a byte, check the kind
of file on the descriptor they read (no gap between a check and the open) and bound what they read.
``atomic_write`` leaves the final path either absent/old or complete, never partial (a set of files landing
together: ``review/export_files.py``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import stat
from pathlib import Path

from .shared_files import share_created

NAME_MAX = 255  # bytes of one file name: ext4, XFS, btrfs, APFS (UTF-8), NTFS over SMB (its 255 UTF-16 units hold more)
TMP_SUFFIX = ".idcli-tmp"  # temporaries end so: never *.onnx or *.png, so no loader or glob picks one up
CHUNK = 1024 * 1024


class NotRegularFile(Exception):
    """Why a path cannot be read as a regular file; callers word their own message from ``kind``.

    ``kind``: "missing", "link" (a link where links are refused), "folder", "special" (device, FIFO,
    socket), "too-large" (``size`` says how large) or "error" (``detail`` is the system's reason).
    """

    def __init__(self, path: Path, kind: str, detail: str = "", size: int = 0) -> None:
        super().__init__(f"{path}: {detail or kind}")
        self.path, self.kind, self.detail, self.size = path, kind, detail, size


def missing_reason(path: Path) -> str:
    """What to say of a path that is not there: ``no such file``, or, for a link whose target is gone (a share
    not mounted, a folder moved), ``a link to a missing file (TARGET)``: ``ls`` shows such a link, so "no such
    file" reads as wrong."""
    try:
        target = os.readlink(path)
    except (OSError, ValueError):  # not a link, or not there at all
        return "no such file"
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a -> b -> a: no file is missing, the links go round
            return f"a link that leads back to itself through links, a loop ({target})"
    return f"a link to a missing file ({target})"


def open_regular(path: Path, *, follow_links: bool = True) -> int:
    """A read-only descriptor of ``path`` when it is a regular file; raises NotRegularFile otherwise.

    ``follow_links=False`` refuses a link at ``path`` itself (O_NOFOLLOW): for the output folder,
    where a planted link must not make idcli read another file.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | (0 if follow_links else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise NotRegularFile(path, "missing") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_links:
            raise NotRegularFile(path, "link") from None
        if exc.errno == errno.ENXIO:  # a socket, or a device with no driver
            raise NotRegularFile(path, "special") from None
        raise NotRegularFile(path, "error", exc.strerror or str(exc)) from None
    except ValueError as exc:  # an embedded NUL
        raise NotRegularFile(path, "error", str(exc)) from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        os.close(fd)
        raise NotRegularFile(path, "error", exc.strerror or str(exc)) from None
    if stat.S_ISREG(mode):
        return fd
    os.close(fd)
    raise NotRegularFile(path, "folder" if stat.S_ISDIR(mode) else "special")


def read_fd(fd: int, path: Path, limit: int) -> bytes:
    """All bytes of the regular file open as ``fd``, refused past ``limit`` bytes (checked before reading)."""
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise NotRegularFile(path, "too-large", size=size)
        chunks, total = [], 0
        while chunk := os.read(fd, CHUNK):
            total += len(chunk)
            if total > limit:  # grew while being read
                raise NotRegularFile(path, "too-large", size=total)
            chunks.append(chunk)
    except OSError as exc:
        raise NotRegularFile(path, "error", exc.strerror or str(exc)) from None
    return b"".join(chunks)


def read_regular(path: Path, limit: int, *, follow_links: bool = True) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; raises NotRegularFile otherwise."""
    fd = open_regular(path, follow_links=follow_links)
    try:
        return read_fd(fd, path, limit)
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: some file systems refuse)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sha256_regular(path: Path) -> str | None:
    """sha256 of a regular file (streamed; no link at ``path``, never blocks on a FIFO), or None."""
    from .hashing import sha256_fd

    try:
        fd = open_regular(path, follow_links=False)
    except NotRegularFile:
        return None
    try:
        return sha256_fd(fd)
    except OSError:
        return None
    finally:
        os.close(fd)


def atomic_write(final: Path, data: bytes, *, replace: bool = True) -> None:
    """Write ``data`` so that ``final`` is either absent/old or complete, never partial.

    The bytes go to a dot-named temporary in the same folder, are flushed and fsynced, then renamed
    over ``final`` and the folder fsynced. OSError propagates; the temporary never stays behind.
    ``replace=False``: a file already at ``final`` (even one that appeared while writing) is kept and
    FileExistsError raised — the temporary is hard-linked to ``final``, which never replaces.
    A device at ``final`` is never replaced (OSError): ``os.replace`` would swap it for a regular file
    (``encode-identity -o /dev/null --force`` as root replaced the machine's /dev/null). A FIFO or socket
    is replaced as any file is (one planted at a final path of an output folder is "not done").
    In a group-writable folder the file is made group-writable whatever the umask (shared_files.py).
    """
    refuse_device(final)
    tmp = temporary_path(final)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        share_created(fd, final.parent)  # the temporary's mode is the one the rename puts in place
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, final)
        else:
            _link_new(tmp, final)
    except BaseException:  # interrupts included
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(final.parent)


def refuse_device(final: Path) -> None:
    """Raise OSError (EINVAL) when ``final`` is a character or block device: a write never replaces one."""
    try:
        mode = os.lstat(final).st_mode
    except OSError:
        return  # nothing there (or unreadable: the write itself will say)
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        raise OSError(errno.EINVAL, "is a device, not a regular file; give a file path", str(final))


# ``.NAME.PID-START.HEX.idcli-tmp``: START is the writer's start time, so a later process given the same pid
# (pid 1 in every container run, a busy host) is not taken for the writer. ``.NAME.PID.HEX.idcli-tmp``
# (earlier versions; systems without /proc) is judged by the pid alone, as before.
_TEMPORARY = re.compile(r"\..+\.(?P<pid>[1-9]\d{0,9})(?:-(?P<start>\d{1,20}))?\.[0-9a-f]{8}" + re.escape(TMP_SUFFIX))


def process_start(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (field 22 of ``/proc/PID/stat``); None when
    that cannot be read (no /proc, the process gone or hidden). Together with the pid it names one process:
    a pid is reused, a (pid, start) pair is not."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            line = handle.read(4096)
        # the command name (field 2) is in parentheses and may hold spaces or ")": fields after the last ")"
        return int(line.rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def temporary_path(final: Path) -> Path:
    """A fresh temporary name beside ``final`` (``.NAME.PID-START.HEX.idcli-tmp``): ``atomic_write``'s, and
    the one a writer that streams or builds a folder uses, so ``remove_dead_temporaries`` judges all alike.
    NAME is ``final``'s, cut at a character to keep the whole within ``NAME_MAX`` bytes: a name the file system takes
    (an editor's 230-byte EDL name, 80 Cyrillic letters) failed as `File name too long` once the tag was added."""
    tag = f".{_writer_tag()}.{secrets.token_hex(4)}{TMP_SUFFIX}"
    room = NAME_MAX - len(os.fsencode(tag)) - 1  # the leading dot
    name = final.name
    while len(os.fsencode(name)) > room:
        name = name[:-1]
    return final.with_name(f".{name}{tag}")


# Each process's tag, read once per pid (a test empties it to read the tag again).
writer_tags: dict[int, str] = {}


def _writer_tag() -> str:
    """``PID-START`` of this process, read from /proc once per pid (a forked child has a pid of its own, so it
    reads its own start rather than inheriting the parent's tag)."""
    pid = os.getpid()
    tag = writer_tags.get(pid)
    if tag is None:
        start = process_start(pid)
        tag = writer_tags[pid] = str(pid) if start is None else f"{pid}-{start}"
    return tag


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, another user's
        return True
    return True


def _writer_running(match: re.Match[str]) -> bool:
    pid = int(match["pid"])
    if not _alive(pid):
        return False
    if match["start"] is None:
        return True  # an old-format name: the pid alone decides, as it did
    start = process_start(pid)
    return start is None or start == int(match["start"])  # unreadable (hidden /proc): keep, as before


def written_by_a_running_writer(name: str) -> bool:
    """Whether ``name`` is an ``atomic_write`` temporary of a writer still running: a write in progress
    (``idcli review`` or ``select`` writing the folder a render is starting in; another thread of this
    process), not a leftover. An old-format name carrying this process's pid counts as a leftover, as before
    (the caller holds the output folder's lock)."""
    match = _TEMPORARY.fullmatch(name)
    if match is None or (match["start"] is None and int(match["pid"]) == os.getpid()):
        return False
    return _writer_running(match)


# Names earlier versions gave two writers in idcli's home, judged by the pid alone: the hash cache's
# ``.file-hashes.json.PID.tmp`` and the random image encoder's ``.NAME.partial-PID`` folder.
_EARLIER_HOME_TEMPORARY = re.compile(
    r"\.file-hashes\.json\.(?P<file>[1-9]\d{0,9})\.tmp|\..+\.partial-(?P<folder>[1-9]\d{0,9})")


def _earlier_home_leftover(name: str) -> bool:
    match = _EARLIER_HOME_TEMPORARY.fullmatch(name)
    if match is None:
        return False
    pid = int(match["file"] or match["folder"])
    # This version writes no such name: one with this process's pid is a previous process's (pid 1 in containers).
    return pid == os.getpid() or not _alive(pid)


def remove_dead_temporaries(folder: Path, *, earlier_home_names: bool = False) -> list[Path]:
    """Remove ``atomic_write``'s temporaries (files, or folders named by ``temporary_path``) in ``folder``
    whose writer process is gone (killed with -9: nothing runs then to remove them; its pid may since belong
    to another process); returns what was removed.
    Outside an output folder (whose lock ``OutputStore`` cleans under) a temporary of a live process may be a
    write in progress: those stay. ``earlier_home_names``: also the names earlier versions' home writers used
    (only for folders in idcli's home: elsewhere such a name may be another program's)."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMPORARY.fullmatch(entry.name)
        if match is None:
            if not (earlier_home_names and _earlier_home_leftover(entry.name)):
                continue
        elif _writer_running(match):
            continue
        if entry.is_file(follow_symlinks=False):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        elif entry.is_dir(follow_symlinks=False):  # a folder built whole, then renamed (an image encoder)
            shutil.rmtree(entry.path, ignore_errors=True)  # links inside are unlinked, never followed
            if not os.path.lexists(entry.path):
                removed.append(Path(entry.path))
    return removed


def _link_new(tmp: Path, final: Path) -> None:
    """Give ``tmp``'s complete file the name ``final`` only if nothing has it (FileExistsError otherwise)."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise
    except OSError as exc:
        # A file system without hard links: check, then rename (the window between them is tiny).
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP):
            raise
        if os.path.lexists(final):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(final)) from None
        os.replace(tmp, final)
        return
    tmp.unlink()
