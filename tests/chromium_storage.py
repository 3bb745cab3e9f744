"""What a Chromium profile has written to disk of a page's localStorage: the records of the LevelDB write-ahead log
in ``<profile>/Default/Local Storage/leveldb`` (format: github.com/google/leveldb, doc/log_format.md and
db/write_batch.cc), read without a LevelDB library.

Chromium keeps localStorage in memory and commits it to that database in batches, seconds after a write
(StorageAreaImpl's commit delay): a Chromium killed before that loses the write. The browser test harness reads
what was committed here before it closes Chromium, so a restart in a test never depends on that race.

Chromium reuses the log across sessions of a small profile. Once the log passes LevelDB's write buffer (a session
that stored 70 kB did) its records move into a table file (``*.ldb``, compressed), which is not read here: a key
only there reads as not committed, so a wait for it fails (naming the keys) rather than passing on a guess.
"""

from __future__ import annotations

import struct
from pathlib import Path

_BLOCK = 32768  # a log is a sequence of 32 KiB blocks; a record never straddles one, it is split into fragments
_HEADER = 7  # crc32c (4), length (2), fragment type (1)
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
_VALUE, _DELETION = 1, 0  # a write batch's entry tags


def storage_folder(profile: Path) -> Path:
    return profile / "Default" / "Local Storage" / "leveldb"


def committed(profile: Path, origin: str) -> dict[str, str]:
    """The localStorage of ``origin`` (``location.origin``: ``file://`` for a page from a file) as the profile's
    logs hold it now: each key's newest value, keys deleted since left out."""
    prefix = b"_" + origin.rstrip("/").encode("utf-8")
    items: dict[str, str] = {}
    folder = storage_folder(profile)
    logs = sorted(folder.glob("*.log"), key=lambda p: int(p.stem)) if folder.is_dir() else []
    for log in logs:
        for batch in _records(log.read_bytes()):
            for tag, key, value in _entries(batch):
                where, _, name = key.partition(b"\0")
                if where.rstrip(b"/") != prefix or not name:
                    continue  # another origin's, or Chromium's own bookkeeping (META:, METAACCESS:, VERSION)
                if tag == _VALUE:
                    items[_text(name)] = _text(value)
                else:
                    items.pop(_text(name), None)
    return items


def _records(data: bytes) -> list[bytes]:
    """The whole records of a log, its fragments joined; a record still being written at the end is left out."""
    records, pending = [], b""
    block = 0
    while block < len(data):
        at, end = block, min(block + _BLOCK, len(data))
        while end - at >= _HEADER:
            length, kind = struct.unpack_from("<HB", data, at + 4)
            if kind == 0 or at + _HEADER + length > end:  # the block's zero padding, or a fragment written in part
                break
            fragment = data[at + _HEADER:at + _HEADER + length]
            at += _HEADER + length
            if kind == _FULL:
                records.append(fragment)
            elif kind == _FIRST:
                pending = fragment
            elif kind == _MIDDLE:
                pending += fragment
            elif kind == _LAST:
                records.append(pending + fragment)
                pending = b""
        block += _BLOCK
    return records


def _entries(batch: bytes) -> list[tuple[int, bytes, bytes]]:
    """A write batch's entries: sequence number (8 bytes), count (4), then tag, key and (for a value) value."""
    entries, at = [], 12
    for _ in range(struct.unpack_from("<I", batch, 8)[0]):
        tag = batch[at]
        key, at = _slice(batch, at + 1)
        value = b""
        if tag == _VALUE:
            value, at = _slice(batch, at)
        elif tag != _DELETION:
            raise ValueError(f"a LevelDB write batch entry of unknown tag {tag}")
        entries.append((tag, key, value))
    return entries


def _slice(data: bytes, at: int) -> tuple[bytes, int]:
    """A length-prefixed byte string (the length a little-endian base-128 varint) and where the next begins."""
    length = shift = 0
    while True:
        byte = data[at]
        at += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return data[at:at + length], at + length


def _text(stored: bytes) -> str:
    """Chromium's stored string: a format byte, then UTF-16LE (0) or Latin-1 (1)."""
    if stored[:1] == b"\x01":
        return stored[1:].decode("latin-1")
    if stored[:1] == b"\x00":
        return stored[1:].decode("utf-16-le")
    raise ValueError(f"a localStorage string of unknown format {stored[:1]!r}")
