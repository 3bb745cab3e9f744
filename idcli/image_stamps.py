"""Stamps of committed images already hashed: a resume re-hashes only an image whose file changed since.

Resume proves each done image is the bytes its sidecar's sha256 names (an image damaged or edited since it was
committed is rendered again, or kept as modified). Hashing every image on every resume cost a film-sized folder
seconds (2,000 images of 0.8 MB: 1.4–3.6 s; docs/performance.md, "At film scale: resume, restore, sign"). So
the first hash of an image is kept in ``OUT/.idcli/image-stamps.jsonl`` with the file's stamp — inode, size,
mtime and ctime, in nanoseconds, as git's index keeps them — and a later resume takes the hash from there only
when ``lstat`` finds the very same stamp. Any write to the file, a rename over it, a copy, ``touch`` and
``chmod`` all change its ctime, which no user tool can set back; a file changed through the file system is
therefore always hashed again. What no stamp sees is a disk flipping bits under an unchanged inode: ``idcli
verify`` re-hashes every image.

The file: a first line ``{"schema": 1}``, then one line per image, ``[path, sha256, inode, size, mtime_ns,
ctime_ns]`` (not ``*.json``: nothing globbing for sidecars finds it). A stamp is kept only when it was taken
``SETTLED_NS`` after the file last changed: a write in the same timestamp tick as the hash (coarse on some file
systems) could otherwise leave the stamp unchanged. The file is a cache: it is written only by a run that holds
the folder's lock, replaced atomically, and one that is too large or of another schema is ignored, a damaged
line dropped (those images hashed, as before). Saving drops the stamps of images no longer there.
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

from . import safeio
from .hashing import sha256_fd

STAMPS = "image-stamps.jsonl"
SCHEMA = 1
SETTLED_NS = 2_000_000_000  # coarser than any file system's timestamp granularity (FAT: 2 s)
MAX_STAMPS_BYTES = 64 * 1024 * 1024  # about 400,000 images


def _stamp(st: os.stat_result) -> list[int]:
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


class ImageStamps:
    """The stamps of one output folder's images (``state_dir``: its ``.idcli``), keyed by relative path."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / STAMPS
        self._entries: dict[str, list[object]] | None = None
        self._changed = False
        self._looked_at: set[str] = set()  # paths this run asked about: their entries are current

    def sha256(self, relpath: str, image: Path) -> str | None:
        """The sha256 of the regular file at ``image`` (never through a link), from its stamp when the file is
        unchanged since it was hashed, else hashed now; None when no regular file is there."""
        entries = self._load()
        self._looked_at.add(relpath)
        try:
            now = os.lstat(image)
        except OSError:
            now = None
        known = entries.get(relpath)
        if now is not None and stat.S_ISREG(now.st_mode) and known is not None and known[1:] == _stamp(now):
            return str(known[0])
        return self._hash(relpath, image)

    def _hash(self, relpath: str, image: Path) -> str | None:
        entries = self._load()
        if entries.pop(relpath, None) is not None:
            self._changed = True
        try:
            fd = safeio.open_regular(image, follow_links=False)
        except safeio.NotRegularFile:
            return None
        try:
            before = os.fstat(fd)
            digest = sha256_fd(fd)
            after = os.fstat(fd)
        except OSError:
            return None
        finally:
            os.close(fd)
        if _stamp(before) == _stamp(after) and time.time_ns() - after.st_ctime_ns > SETTLED_NS:
            entries[relpath] = [digest, *_stamp(after)]
            self._changed = True
        return digest

    def _load(self) -> dict[str, list[object]]:
        if self._entries is None:
            self._entries = _read(self.path)
        return self._entries

    def save(self) -> None:
        """Write the stamps when this run changed them (best effort: they are a cache, never a commit)."""
        if not self._changed or self._entries is None:
            return
        self._drop_missing()
        lines = [json.dumps({"schema": SCHEMA})]
        lines += [json.dumps([relpath, *entry], separators=(",", ":"))
                  for relpath, entry in sorted(self._entries.items())]
        try:
            safeio.atomic_write(self.path, ("\n".join(lines) + "\n").encode("utf-8"))
        except OSError:
            return
        self._changed = False

    def _drop_missing(self) -> None:
        """Forget the images no longer there (a shot deleted with its takes, a take removed by hand): one ``lstat``
        per entry this run did not ask about, no hashing; else the file grew with every deleted take."""
        assert self._entries is not None
        root = self.path.parent.parent
        for relpath in [p for p in self._entries if p not in self._looked_at]:
            try:
                regular = stat.S_ISREG(os.lstat(root / relpath).st_mode)
            except (OSError, ValueError):  # ValueError: a NUL in a planted path
                regular = False
            if not regular:
                del self._entries[relpath]


def _read(path: Path) -> dict[str, list[object]]:
    """The stamps file's entries; {} for a missing, oversized or unknown one, and lines of the wrong shape are
    dropped (each must be a path, a sha256 and four integers)."""
    try:
        lines = safeio.read_regular(path, MAX_STAMPS_BYTES, follow_links=False).decode("utf-8").splitlines()
        header = json.loads(lines[0]) if lines else None
    except (safeio.NotRegularFile, OSError, ValueError, RecursionError):
        return {}
    if not (isinstance(header, dict) and header.get("schema") == SCHEMA):
        return {}
    entries: dict[str, list[object]] = {}
    for line in lines[1:]:
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if (isinstance(entry, list) and len(entry) == 6 and isinstance(entry[0], str) and isinstance(entry[1], str)
                and len(entry[1]) == 64 and all(type(n) is int for n in entry[2:])):
            entries[entry[0]] = entry[1:]
    return entries
