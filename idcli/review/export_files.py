"""An export's files land as one set: the .otio, the EDL, the FCP 7 XML and the movie of one cut, or none of them.

Each file alone was atomic (a temporary renamed over it), but each was put in place as soon as it was written: a
disk that filled while the last one was written, or a rename refused, left the new cut's files beside the last cut's
others, and an editor imported a mixed set with nothing to say so. ``ExportFiles`` writes every file to a temporary
beside it (``safeio.temporary_path``: an export killed with -9 leaves only temporaries, which the next export in
that folder removes), and ``land`` renames them in only once all are complete. A rename that fails, or Ctrl-C or
SIGTERM between two renames (``KeyboardInterrupt``), puts back the files renamed before it: the earlier file of each
is kept as a hard link (a copy where the file system has no hard links; a symlink standing at a target is kept as
the link) until the whole set is in place; Ctrl-C and SIGTERM are held while the set lands and act only between two
renames (``interrupts.interrupts_held``), so a second one never stops the put-back half way: it stops the export as
interrupted once the earlier set is whole. The target folders are locked while a set lands, so two exports into one
folder at once land one after the other, never the second's files between the first's renames. Only ``kill -9`` in
the microseconds between two renames can leave a mixed set (docs/review.md).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

from ..interrupts import interrupts_held
from ..lock_wait import lock_waiting
from ..safeio import fsync_dir, refuse_device, temporary_path
from ..shared_files import share_created
from ..store import write_error

# A file system without hard links refuses os.link with one of these (FAT, some network shares).
_NO_HARD_LINKS = (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP)


class ExportFiles:
    """The files of one export, staged as temporaries beside their targets until ``land`` puts them all in place.
    Use as a context manager: on leaving it, whatever was not landed is removed."""

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []  # (temporary, target), in the order they are landed

    def __enter__(self) -> ExportFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()

    def temporary(self, target: Path) -> Path:
        """A fresh temporary beside ``target`` for a writer that opens a file by name (the movie's encoder); ``land``
        renames it over ``target``. A device at ``target`` is refused (OutputError) before anything is written."""
        try:
            refuse_device(target)
        except OSError as exc:
            raise write_error(target, exc) from None
        temporary = temporary_path(target)
        self._staged.append((temporary, target))
        return temporary

    def write(self, target: Path, data: bytes) -> None:
        """Write ``data`` to a temporary for ``target``, flushed to disk (errors: OutputError naming ``target``)."""
        temporary = self.temporary(target)
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise write_error(target, exc) from None

    def land(self) -> None:
        """Put every staged file in place: each temporary flushed to disk, then renamed over its target in order.
        When a rename fails (OutputError naming its target) or an interrupt comes, the targets renamed so far get
        their earlier files back (a target that had none is removed): the folder holds the earlier set whole. The
        renames are made with the target folders locked (``_folders_locked``): another export's wait, then land."""
        for temporary, target in self._staged:  # everything that can fail before the first target changes
            # The mode the movie's encoder (a library, writing by name) or ``write`` gave the temporary is the one the
            # rename puts in place: group-writable in a folder a team shares (shared_files.py).
            share_created(temporary, target.parent)
            try:
                _fsync_file(temporary)
                refuse_device(target)
            except OSError as exc:
                raise write_error(target, exc) from None
        with _folders_locked({target.parent for _temporary, target in self._staged}):
            self._land()

    def _land(self) -> None:
        kept: list[Path] = []  # the earlier files' links, removed once the set is in place or put back
        landed: list[tuple[Path, Path | None, bool]] = []  # (target, its earlier file's link, whether one was there)
        current = Path()  # the target being landed, named by an error
        # Ctrl-C and SIGTERM are held while the set lands and raised only between two renames (``check``), so that
        # the put-back after a failure or an interrupt never stops half way: a second Ctrl-C there left a mixed set
        # (until 2026-12-02). One that comes during the put-back stops the export as interrupted once it is done.
        with interrupts_held() as held:
            try:
                for temporary, current in self._staged:
                    held.check()
                    existed = os.path.lexists(current)
                    earlier = _keep(current) if existed else None
                    if earlier is not None:
                        kept.append(earlier)
                    # Listed before the rename, so an interrupt right after it still puts the earlier file back (and
                    # one during it puts back what is there already, or finds nothing to remove).
                    landed.append((current, earlier, existed))
                    os.replace(temporary, current)
                held.check()  # an interrupt during the last rename: the earlier set back, as for the others
            except BaseException as exc:  # interrupts included
                _put_back(landed)
                for link in kept:
                    with contextlib.suppress(OSError):
                        link.unlink(missing_ok=True)
                # Here, not only on leaving ``ExportFiles``: a signal left to the system's default ends the process as
                # ``interrupts_held`` ends, and the temporaries would stay until the next export into the folder.
                self.discard()
                if isinstance(exc, OSError):
                    raise write_error(current, exc) from None
                raise
            # The set is in place. Its earlier files' links go while the signals are still held: a Ctrl-C or SIGTERM
            # right after the last check acts as the hold ends, and left them all beside the set (until 2026-12-02).
            self._staged.clear()
            for link in kept:
                with contextlib.suppress(OSError):
                    link.unlink()
            for folder in {target.parent for target, _earlier, _existed in landed}:
                fsync_dir(folder)

    def discard(self) -> None:
        """Remove the temporaries not landed (an export that stopped before ``land``, or in it)."""
        for temporary, _target in self._staged:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
        self._staged.clear()


@contextlib.contextmanager
def _folders_locked(folders: set[Path]) -> Iterator[None]:
    """Each of ``folders`` locked (an ``flock`` on the folder itself, so no lock file is left among the editor's) while
    a set lands: two exports into one folder at once otherwise renamed their files in turn, and the second's EDL could
    land between the first's renames, beside its XML. Taken in name order, so two sets sharing folders never wait on
    each other. Best effort: a folder that cannot be opened or locked (a share without locks) is landed unlocked."""
    with contextlib.ExitStack() as stack:
        for folder in sorted(folders):
            try:
                fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            except OSError:
                continue
            stack.callback(os.close, fd)  # closing it releases the lock
            try:
                lock_waiting(fd, f"another export into {folder} to put its files in place")
            except OSError:
                continue
        yield


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _keep(target: Path) -> Path | None:
    """The file at ``target`` kept under a temporary name (a hard link: the target itself never goes missing), to be
    put back if the set cannot land; None when nothing is there, or what is there is no regular file or symlink to
    keep. A symlink (``cut.edl`` pointing at ``cut_v3.edl``) is kept as the link itself, not what it points at: left
    out, a set that could not land left the new file where the link stood beside the earlier set's others."""
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return None
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):  # a FIFO or socket: replaced, as atomic_write replaces it
        return None
    link = temporary_path(target)
    try:
        os.link(target, link, follow_symlinks=False)  # of a symlink, a second name for the link itself
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        try:
            if stat.S_ISLNK(mode):
                os.symlink(os.readlink(target), link)
            else:
                shutil.copy2(target, link)  # a regular file (checked above): never a FIFO that would block
        except BaseException:  # a disk that filled mid-copy: no half copy left beside the file
            with contextlib.suppress(OSError):
                link.unlink(missing_ok=True)
            raise
    return link


def _put_back(landed: list[tuple[Path, Path | None, bool]]) -> None:
    """Undo the renames of ``landed``, last first: each target its earlier file (or symlink) again, or none where it
    had none (a FIFO that stood there, not kept, is left as the rename left it)."""
    for target, earlier, existed in reversed(landed):
        with contextlib.suppress(OSError):
            if earlier is not None:
                os.replace(earlier, target)
            elif not existed:
                target.unlink()
