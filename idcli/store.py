"""The output folder: atomic commits, a run lock, resume status and a journal.

Commit protocol for one job (each step survives ``kill -9`` at any instant):
1. the PNG is written to a temporary name in its final folder, flushed, fsynced, renamed;
2. the sidecar JSON likewise, *after* the image: the sidecar is the commit marker;
3. a line is appended to ``.idcli/journal.jsonl``.
A PNG without a sidecar (killed between 1 and 2) carries its record in its ``idcli`` chunk, so the
next run rebuilds the sidecar instead of rendering again. Temporaries are removed at the next start.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import stat
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from . import safeio
from .errors import OutputBusyError, OutputError
from .hashing import sha256_bytes, sha256_fd
from .image_stamps import ImageStamps
from .lock_wait import lock_waiting
from .moving_aside import is_whole_image, move_aside
from .option_words import Option, words
from .plan import Job
from .safeio import TMP_SUFFIX
from .shared_files import (
    created_mode,
    make_folders,
    not_a_regular_file,
    refused_folder,
    refused_to_create,
    refused_to_write,
    share_created,
)

STATE = ".idcli"
MAX_JOURNAL_BYTES = 256 * 1024 * 1024  # a line of ~300 bytes per commit: far beyond any film's re-renders
MAX_JOURNAL_LINE_BYTES = 1024 * 1024  # an entry is a few hundred bytes; a line past this is not one
# The shot list last rendered into the folder. Not *.json: nothing globbing */*.json for sidecars finds it.
MANIFEST = "shotlist.jsonl"
# Reads of files found in the output folder are bounded: a sidecar is a few kB and idcli's largest
# image (2048x2048 RGB PNG) under 13 MB, so anything far larger is not one of ours.
MAX_SIDECAR_BYTES = 4 * 1024 * 1024
MAX_IMAGE_BYTES = 256 * 1024 * 1024
_VERBS = {"writing": "write", "creating": "create", "opening": "open", "reading": "read"}




def modified_reason() -> str:
    """Why a take edited by hand is kept, naming force as the surface in use spells it (option_words.py)."""
    return words(("the image was edited after it was rendered (its bytes differ from its sidecar); kept — ",
                  Option("force", True), " renders it again, moving the edited image to .idcli/superseded"))


# A take whose job key changed: the shot list, or a selfie or pack it names, changed what makes it.
EDITED_REASON = "the shot or its settings changed"


@dataclass(frozen=True)
class JobState:
    status: str  # "done", "new", "stale", "recoverable" or "modified" (edited by hand; kept unless forced)
    reason: str = ""
    record: dict[str, Any] | None = None  # the PNG's record when recoverable
    # sha256 of the image the record was read from (recoverable): recovery needs no second, unchecked read.
    image_sha256: str | None = None
    # The committed sidecar as state() read it, for a take stale for an edit (EDITED_REASON): what stale_causes.py
    # compares with the new job, so the cause costs no second read of the file.
    sidecar: dict[str, Any] | None = field(default=None, compare=False, repr=False)


def _os_error(action: str, path: Path, exc: OSError) -> OutputError:
    from .paths import cache_note

    verb = _VERBS.get(action, action)
    if exc.errno == errno.ENOSPC:
        message = f"disk full while {action} {path}; nothing partial was kept — free space and rerun"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        message = f"permission denied while {action} {path} ({exc.strerror})"
    elif exc.errno == errno.ENOTDIR:
        message = f"cannot {verb} {path}: a file stands where a folder should be on that path"
    elif exc.errno == errno.EEXIST:
        message = f"cannot {verb} {path}: it exists and is not a folder"
    else:
        message = f"cannot {verb} {path}: {exc.strerror or exc}"
    return OutputError(message + cache_note(path), file=path)


def _refused(path: Path, exc: OSError, output_folder: Path | None = None) -> OutputError | None:
    """A folder whose mode refuses the user ``path`` named with whose it is and the fix (a team's folder an earlier
    idcli left shut: shared_files.py); None for idcli's cache, whose own words say what it is and what to do."""
    from .paths import cache_note

    return None if cache_note(path) else refused_to_create(path, exc, output_folder=output_folder)


def _link_in_the_way(folder: Path) -> OutputError:
    """A link where a folder of the output folder is written through (a shot's): refused, whatever it points at."""
    return OutputError(f"{folder} is a symbolic link; idcli never writes through links in the output folder",
                       file=folder)


def write_error(path: Path, exc: OSError) -> OutputError:
    """The OutputError ``atomic_write`` gives for ``exc`` while writing ``path``, for a writer that stages its files
    itself (``export``'s set): 'disk full while writing PATH'; a folder whose mode refuses the user named with the fix
    (shared_files.py), other refusals 'permission denied while writing PATH (...)'."""
    return _refused(path, exc) or _os_error("writing", path, exc)


def not_writable(folder: Path, exc: OSError | None = None, *, then: str = "") -> OutputError:
    """The one message of every writing command (render, select, ...) for an output folder it may not write in
    (a mounted delivery, a read-only share): ``exc`` the refusal's reason, ``then`` what was to be written there."""
    reason = f" ({exc.strerror})" if exc is not None and exc.strerror else ""
    return OutputError(f"output folder {folder} is not writable{reason}{then}", file=folder)


def png_record_of_fd(fd: int) -> dict[str, Any] | None:
    """The ``idcli`` record of the PNG open as ``fd``, read from its headers only (nothing decoded)."""
    from .provenance import read_png_record

    try:
        # closefd=False: the caller owns fd and hashes it next; read_png_record never closes the stream.
        with os.fdopen(fd, "rb", closefd=False) as stream:
            return read_png_record(stream)
    except Exception:  # a damaged file found in the folder is stale, never a crash
        return None


def sidecar_bytes(sidecar: dict[str, Any]) -> bytes:
    """A sidecar as idcli writes it (the commit, ``idcli qa``'s rewrite). NaN or Infinity is a ValueError: no JSON
    reader but Python's takes them and verify refuses them as edited by hand, so one must fail where it is written,
    never reach a delivery."""
    return (json.dumps(sidecar, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def atomic_write(final: Path, data: bytes, *, replace: bool = True) -> None:
    """Write ``data`` so that ``final`` is either absent/old or complete, never partial (errors: OutputError;
    with ``replace=False``, FileExistsError when a file is at ``final``)."""
    try:
        safeio.atomic_write(final, data, replace=replace)
    except OSError as exc:
        if isinstance(exc, FileExistsError) and not replace:
            raise  # the caller knows what the file is and how to replace it
        raise (_refused(final, exc) or _os_error("writing", final, exc)) from None


class OutputStore:
    """One output folder. Use ``with store.session():`` around writes."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock_fd: int | None = None
        # Earlier renders moved to .idcli/superseded by commits of this store ({shot_id, take, name}).
        self.superseded: list[dict[str, Any]] = []
        # The hashes state() took, kept by a session for the next resume (idcli/image_stamps.py).
        self.stamps = ImageStamps(self.root / STATE)

    # -- paths ----------------------------------------------------------------------------------

    def path(self, relpath: str) -> Path:
        """A path inside the output folder; refuses anything that would land outside it."""
        target = self.root / relpath
        root = self.root.resolve()
        probe = self.root
        for part in Path(relpath).parts[:-1]:
            probe = probe / part
            if probe.is_symlink():
                raise _link_in_the_way(probe)
        if target.is_symlink():
            raise OutputError(f"{target} is a symbolic link; idcli never writes through links in the output "
                              "folder — remove it and rerun", file=target)
        if not target.resolve().is_relative_to(root):
            raise OutputError(f"refusing to write {target}: it resolves outside the output folder {root}", file=target)
        return target

    # -- session: lock + cleanup ----------------------------------------------------------------

    def check_usable(self, shot_ids: Iterable[str] = ()) -> None:
        """Raise the OutputError a render would, for what can be seen without writing: a file where the output
        folder, one of its parents, its ``.idcli`` folder or the folder of one of ``shot_ids`` should be, or a link at
        such a shot's folder (``plan`` and ``render --dry-run``, which write nothing, said every job was new there; a
        render stops at that shot's first commit, in the same words)."""
        for folder in (self.root, *self.root.parents):
            if not folder.exists() and not folder.is_symlink():
                continue  # render creates it
            if folder.is_dir():
                break
            if folder == self.root:
                raise OutputError(f"output path {self.root} exists and is not a folder", file=self.root)
            raise OutputError(f"output path {self.root} cannot be made: {folder} is a file, not a folder",
                              file=folder)
        state = self.root / STATE
        if state.is_symlink():
            raise OutputError(f"{state} is a symbolic link; idcli never writes through links in the output folder",
                              file=state)
        if state.exists() and not state.is_dir():
            raise OutputError(f"{state} exists and is not a folder", file=state)
        for shot_id in sorted(set(shot_ids)):
            folder = self.root / shot_id
            if folder.is_symlink():  # to a file, a folder or nothing: the render refuses it in these words (path)
                raise _link_in_the_way(folder)
            if folder.exists() and not folder.is_dir():
                raise OutputError(f"cannot create {folder}: it exists and is not a folder", file=folder)

    def _prepare_root(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise OutputError(f"output path {self.root} exists and is not a folder", file=self.root)
        state = self.root / STATE
        if state.is_symlink():
            raise OutputError(f"{state} is a symbolic link; idcli never writes through links in the output folder",
                              file=state)
        try:
            make_folders(self.root / STATE)  # group-writable in a folder a team shares (shared_files.py)
        except FileExistsError:
            raise OutputError(f"{self.root / STATE} exists and is not a folder", file=self.root / STATE) from None
        except OSError as exc:
            raise _os_error("creating", self.root, exc) from None
        if not os.access(self.root, os.W_OK):  # whose it is and the fix, where its mode refuses (shared_files.py)
            raise refused_folder(self.root, "the output folder") or not_writable(self.root)

    @contextmanager
    def session(self, wait: bool = False, on_wait: Callable[[str], None] | None = None) -> Iterator[OutputStore]:
        """Hold the folder's lock for a run and clear leftovers from interrupted runs.

        ``wait``: queue behind a run holding the lock (else OutputBusyError); after a moment ``on_wait`` (by
        default a note on stderr) is told once what it waits for (idcli/lock_wait.py)."""
        self._prepare_root()
        lock_path = self.root / STATE / "lock"
        try:
            # O_NOFOLLOW: a link planted at the lock's path must not make idcli truncate another file. Every run
            # opens it read-write: group-writable in a folder a team shares (shared_files.py). O_NONBLOCK: a FIFO
            # planted there is refused below, not waited on.
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK,
                         created_mode(lock_path.parent))
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise OutputError(f"{lock_path} is a symbolic link; refusing to use it", file=lock_path) from None
            raise (refused_to_write(lock_path, exc, self.root, "the output folder's lock")
                   or _os_error("opening", lock_path, exc)) from None
        if (special := not_a_regular_file(lock_path, os.fstat(fd).st_mode, "the output folder's lock")) is not None:
            os.close(fd)
            raise special
        share_created(fd, lock_path.parent)  # group-writable whatever the umask, in a folder a team shares
        try:
            if wait:
                lock_waiting(fd, f"another idcli run ({self._holder(fd)}) to finish writing {self.root}", on_wait)
            else:
                self._lock_at_once(fd)
        except BlockingIOError:
            busy = self._busy(fd)
            os.close(fd)
            raise busy from None
        except BaseException:  # stopped while waiting (StoppedWaiting), or flock refused: the file is closed too
            os.close(fd)  # a long-lived caller (a pipeline's process) would keep one descriptor per stopped wait
            raise
        with contextlib.suppress(OSError):  # who holds the lock is information; a full disk must not stop here
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        self._lock_fd = fd
        try:
            self.clean_temporaries()
            yield self
        finally:
            self.stamps.save()  # under the lock: one writer at a time
            self._lock_fd = None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _lock_at_once(self, fd: int) -> None:
        """The folder's lock, or BlockingIOError while a run holds it. A lock may be held for a moment: another
        render's look (``check_not_busy``), or a run between taking the lock and naming itself, or between its last
        word and letting go; it is tried again for up to 0.2 s, not called busy. Whatever the lock file names: a run
        killed with -9 leaves its name there, and a look in that moment was taken for the dead run (exit 3 naming a
        pid long gone; hostile-read-21, 2026-12-02)."""
        for _ in range(20):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                time.sleep(0.01)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def check_not_busy(self) -> None:
        """OutputBusyError now when another run holds the folder's lock, before a render's planning (seconds of
        selfies and model checks) rather than after it. Only a look: the lock is taken, and checked again, by
        ``session``; a folder or lock file not there yet, or not a regular file, is left to ``session`` to judge."""
        try:
            fd = os.open(self.root / STATE / "lock", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return
            try:  # shared: two renders' looks do not collide; a run's lock is exclusive
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                if not os.pread(fd, 1, 0):  # held for a moment (see _lock_at_once): session judges
                    return
                raise self._busy(fd) from None
            except OSError:
                return
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _busy(self, fd: int) -> OutputBusyError:
        return OutputBusyError(f"another idcli run ({self._holder(fd)}) is writing {self.root}; wait for it to "
                               "finish, or pass ", Option("wait", True), " to queue behind it")

    @staticmethod
    def _holder(fd: int) -> str:
        """Who holds the lock, as its holder wrote it into the lock file (``pid N on HOST``)."""
        return os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"

    def clean_temporaries(self) -> int:
        """Remove temporaries left by killed runs. Safe only while holding the lock.

        Only folders directly inside the output folder are searched, and a linked folder is never
        entered: a link planted in the output folder must not make idcli delete files elsewhere. A
        temporary of a writer still running — same pid and start time (``safeio.written_by_a_running_writer``)
        — is a write in progress (``idcli review`` writes ``review/`` without this lock) and stays; its writer
        renames or removes it.
        """
        removed = 0
        try:
            folders = [e for e in os.scandir(self.root) if e.is_dir(follow_symlinks=False)]
        except OSError:
            return 0
        for folder in folders:
            try:
                entries = list(os.scandir(folder.path))
            except OSError:
                continue
            for entry in entries:
                if not (entry.name.startswith(".") and entry.name.endswith(TMP_SUFFIX)):
                    continue
                if entry.is_dir(follow_symlinks=False) or safeio.written_by_a_running_writer(entry.name):
                    continue
                try:
                    os.unlink(entry.path)
                    removed += 1
                except OSError:
                    pass
        return removed

    # -- status ---------------------------------------------------------------------------------

    def read_sidecar(self, job: Job) -> dict[str, Any] | None:
        try:
            raw = safeio.read_regular(self.path(job.sidecar_relpath), MAX_SIDECAR_BYTES, follow_links=False)
        except safeio.NotRegularFile:
            return None
        try:
            data = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError):
            return None
        return data if isinstance(data, dict) else None

    def state(self, job: Job) -> JobState:
        """Whether ``job`` is done (sidecar key and image hash match), new, stale or recoverable.

        Reads nothing through a link at the image's path, never blocks on a FIFO or reads a device, and
        bounds what it reads: whatever was planted in the output folder, this answers at once.
        """
        image = self.root / job.image_relpath
        sidecar = self.read_sidecar(job)
        if sidecar is not None:
            image_record = sidecar.get("image")
            expected = image_record.get("sha256") if isinstance(image_record, dict) else None
            actual = self.stamps.sha256(job.image_relpath, image)  # hashed unless unchanged since last hashed
            if actual is not None and actual != expected and expected and is_whole_image(image):
                # Whole, but not the bytes idcli wrote: edited by hand. Kept unless --force (which moves
                # it aside); a damaged or cut-short image is rendered again.
                return JobState("modified", modified_reason())
            if sidecar.get("job_key") != job.key:
                return JobState("stale", EDITED_REASON, sidecar=sidecar)
            if actual is None:
                return JobState("stale", "the image is missing" if not image.is_symlink()
                                else "the image is a symbolic link")
            if actual != expected:
                return JobState("stale", "the image does not match its sidecar")
            return JobState("done")
        try:
            fd = safeio.open_regular(image, follow_links=False)
        except safeio.NotRegularFile as exc:
            if exc.kind == "link":
                return JobState("stale", "the image is a symbolic link")
            if exc.kind in ("folder", "special") or os.path.lexists(image):
                return JobState("stale", "something that is not an image file is at the image's path")
            return JobState("new")  # missing, or a file where its folder should be (commit reports that)
        try:
            # The record comes from the PNG's headers and the hash from the same descriptor, so both
            # describe one file; nothing larger than idcli ever writes is parsed or hashed.
            record = png_record_of_fd(fd) if os.fstat(fd).st_size <= MAX_IMAGE_BYTES else None
            if record and record.get("job_key") == job.key:
                return JobState("recoverable", "image committed, sidecar missing", record, sha256_fd(fd))
        except OSError:
            pass
        finally:
            os.close(fd)
        return JobState("stale", "an image without a matching sidecar")

    # -- commit ---------------------------------------------------------------------------------

    def commit(self, job: Job, png: bytes, sidecar: dict[str, Any], mask: bytes | None = None) -> tuple[Path, Path]:
        """Write image then sidecar atomically; returns their paths. ``mask`` (the --save-masks file) is written
        after the earlier take is moved aside, before the image: written earlier, it went aside with that take."""
        if self._lock_fd is None:
            raise RuntimeError("commit outside a store session")
        # Both paths are checked before anything is written: a refused sidecar path leaves no new image.
        image_path = self.path(job.image_relpath)
        sidecar_path = self.path(job.sidecar_relpath)
        if png:
            # A new image: whatever render was here before is kept in .idcli/superseded, never overwritten.
            self.path(job.mask_relpath)
            moved = move_aside(self.root, job.shot_id, job.stem, job.image_relpath, job.sidecar_relpath,
                               job.mask_relpath)
            if moved:
                self.superseded.append({"shot_id": job.shot_id, "take": job.take, "name": moved})
                self.journal({"event": "supersede", "shot_id": job.shot_id, "take": job.take, "as": moved})
            if mask is not None:
                self._write_at(self.path(job.mask_relpath), mask)
            self._write_at(image_path, png)
        self._write_at(sidecar_path, sidecar_bytes(sidecar))
        self.journal({"event": "commit", "job_key": job.key, "shot_id": job.shot_id, "take": job.take,
                      "recovered": bool(sidecar.get("recovered"))})
        return image_path, sidecar_path

    def write(self, relpath: str, data: bytes) -> Path:
        """Write one file of the output folder atomically (creating its folder); failures are OutputErrors."""
        if self._lock_fd is None:
            raise RuntimeError("write outside a store session")
        return self._write_at(self.path(relpath), data)

    def _write_at(self, path: Path, data: bytes) -> Path:
        """``write`` for a path already checked by ``self.path``."""
        try:
            make_folders(path.parent)  # a shot's folder: group-writable in a folder a team shares (shared_files.py)
        except OSError as exc:  # FileExistsError included: a file stands where the folder should be
            raise (_refused(path.parent, exc, self.root) or _os_error("creating", path.parent, exc)) from None
        atomic_write(path, data)
        return path

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Record the shot list a run renders from (project, its takes): orphans and projects are judged by it."""
        self.write(f"{STATE}/{MANIFEST}", (json.dumps(manifest, ensure_ascii=False) + "\n").encode("utf-8"))

    def read_manifest(self) -> dict[str, Any] | None:
        """The manifest of the last run (``.idcli/shotlist.jsonl``), or None (none yet, or unreadable)."""
        try:
            raw = safeio.read_regular(self.root / STATE / MANIFEST, MAX_SIDECAR_BYTES * 8, follow_links=False)
            data = json.loads(raw.decode("utf-8"))
        except (safeio.NotRegularFile, ValueError, RecursionError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def journal(self, entry: dict[str, Any]) -> None:
        """Append one line to the run journal (the record of what every run committed)."""
        from .provenance import now

        line = json.dumps({"time": now().isoformat(), "pid": os.getpid(), **entry}, ensure_ascii=False) + "\n"
        try:
            # O_NONBLOCK: a FIFO planted as the journal (a received or shared folder) blocked the open until a
            # reader came, hanging render and restore; a journal that is no regular file gets no line.
            fd = os.open(self.root / STATE / "journal.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
                         | os.O_NONBLOCK, created_mode(self.root / STATE))
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    return
                share_created(fd, self.root / STATE)
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)
        except OSError:
            pass  # the journal is a record, not the commit marker: never fail a run over it

    def journal_newest_first(self, mentioning: str | None = None, shots: Collection[str] | None = None,
                             events: Collection[str] = ()) -> Iterator[dict[str, Any]]:
        """The journal's entries from the newest back, read in blocks from its end, so a caller that wants the
        last entry about one take stops there instead of parsing a film's whole journal (a restore of a
        44 MB journal parsed it all: 1–5.5 s, 300 MB; docs/performance.md). ``mentioning``: lines that do not
        contain this text are skipped unparsed (an id's entries name it). ``shots``: lines whose ``shot_id`` is
        none of these, as idcli writes it (``"shot_id": "ID"``: a shot id is a safe ASCII name), likewise; looked
        at for each line, so a caller takes out the shots it is done with as it goes. ``events``: lines of none of these
        events, as idcli writes them (``"event": "NAME"``), likewise."""
        try:  # never through a link, never from a FIFO (a received folder's journal may be either: it hung restore)
            fd = safeio.open_regular(self.root / STATE / "journal.jsonl", follow_links=False)
        except safeio.NotRegularFile:
            return
        handle = os.fdopen(fd, "rb")
        needle = mentioning.encode("utf-8") if mentioning is not None else None
        kinds = [json.dumps({"event": event}, ensure_ascii=False)[1:-1].encode("utf-8") for event in events]
        with handle:
            for line in lines_newest_first(handle):
                if needle is not None and needle not in line:
                    continue
                if kinds and not any(kind in line for kind in kinds):
                    continue
                if shots is not None and _shot_of_line(line) not in shots:
                    continue
                try:
                    entry = json.loads(line)
                except (ValueError, RecursionError):
                    continue  # a line cut by a kill
                if isinstance(entry, dict):
                    yield entry

    def journal_entries(self) -> list[dict[str, Any]]:
        """The journal's entries (objects only), read bounded, never through a link or from a FIFO: a received
        folder's journal may be anything (a line `[]` or nested past Python's stack was an internal error)."""
        try:
            raw = safeio.read_regular(self.root / STATE / "journal.jsonl", MAX_JOURNAL_BYTES, follow_links=False)
        except safeio.NotRegularFile:
            return []
        entries = []
        for line in raw.decode("utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except (ValueError, RecursionError):
                continue  # a line cut by a kill
            if isinstance(entry, dict):
                entries.append(entry)
        return entries


def _shot_of_line(line: bytes) -> str | None:
    """The ``shot_id`` a journal line names, read from its text as ``OutputStore.journal`` writes it."""
    start = line.find(b'"shot_id": "')
    if start < 0:
        return None
    start += len(b'"shot_id": "')
    end = line.find(b'"', start)
    return line[start:end].decode("utf-8", errors="replace") if end >= 0 else None


def lines_newest_first(handle: BinaryIO, block: int = 1 << 16) -> Iterator[bytes]:
    """The non-empty lines of a binary file, last first, read backwards ``block`` bytes at a time: memory and
    reads grow with the lines taken, not with the file."""
    position = handle.seek(0, os.SEEK_END)
    rest = b""  # the start of the block read last: a line that may begin in an earlier block
    while position > 0:
        step = min(block, position)
        position -= step
        handle.seek(position)
        lines = (handle.read(step) + rest).split(b"\n")
        rest = lines[0]
        if len(rest) > MAX_JOURNAL_LINE_BYTES:  # no entry is this long: a received journal with no newlines
            return
        yield from (line for line in reversed(lines[1:]) if line.strip())
    if rest.strip():
        yield rest


def image_sha256(png: bytes) -> str:
    return sha256_bytes(png)
