"""What a Chromium profile has written to disk of a page's localStorage: the records of the LevelDB in
``<profile>/Default/Local Storage/leveldb``, its write-ahead logs (``*.log``) and its tables (``*.ldb``), read
without a LevelDB library (formats: github.com/google/leveldb, doc/log_format.md, doc/table_format.md and
db/write_batch.cc; table blocks are Snappy-compressed, decompressed with cramjam).

Chromium keeps localStorage in memory and commits it to that database in batches, seconds after a write
(StorageAreaImpl's commit delay): a Chromium killed before that loses the write. The browser test harness reads
what was committed here before it closes Chromium, so a restart in a test never depends on that race.

The tables matter: Chromium gives this database a 64 kB write buffer, so once a log passes it (at a commit, or when
the next Chromium opens the profile and recovers the log) its records move into a table and the log is deleted.
How many commits a session makes, and so whether its log crossed that line, depends on timing: a reader of the logs
alone found a picks page's earlier writes "not written" in two of four parallel runs of the suite (2026-12-01).
"""

from __future__ import annotations

import struct
from pathlib import Path

import cramjam

_BLOCK = 32768  # a log is a sequence of 32 KiB blocks; a record never straddles one, it is split into fragments
_HEADER = 7  # crc32c (4), length (2), fragment type (1)
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
_VALUE, _DELETION = 1, 0  # a write batch's entry tags
_FOOTER = 48  # a table's footer: two block handles, padding, then the magic number
_TABLE_MAGIC = (0xDB4775248B80FB57).to_bytes(8, "little")


def storage_folder(profile: Path) -> Path:
    return profile / "Default" / "Local Storage" / "leveldb"


def committed(profile: Path, origin: str) -> dict[str, str]:
    """The localStorage of ``origin`` (``location.origin``: ``file://`` for a page from a file) as the profile's
    logs and tables hold it now: each key's newest value (by LevelDB sequence number), keys deleted since left out."""
    prefix = b"_" + origin.rstrip("/").encode("utf-8")
    folder = storage_folder(profile)
    writes: list[tuple[int, int, bytes, bytes]] = []  # (sequence, tag, key, value)
    if folder.is_dir():
        for table in sorted([*folder.glob("*.ldb"), *folder.glob("*.sst")]):
            writes += _table_entries(table.read_bytes())
        for log in sorted(folder.glob("*.log")):
            for batch in _records(log.read_bytes()):
                writes += _entries(batch)
    items: dict[str, str] = {}
    for _, tag, key, value in sorted(writes, key=lambda write: write[0]):
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


def _entries(batch: bytes) -> list[tuple[int, int, bytes, bytes]]:
    """A write batch's entries as (sequence, tag, key, value): the batch's first sequence number (8 bytes), count
    (4), then tag, key and (for a value) value; each entry takes the next sequence number."""
    first, count = struct.unpack_from("<QI", batch, 0)
    entries, at = [], 12
    for index in range(count):
        tag = batch[at]
        key, at = _slice(batch, at + 1)
        value = b""
        if tag == _VALUE:
            value, at = _slice(batch, at)
        elif tag != _DELETION:
            raise ValueError(f"a LevelDB write batch entry of unknown tag {tag}")
        entries.append((first + index, tag, key, value))
    return entries


def _table_entries(data: bytes) -> list[tuple[int, int, bytes, bytes]]:
    """A table's entries as (sequence, tag, key, value). Its 48-byte footer ends in the magic number and begins
    with the handles of the metaindex and index blocks; the index block's values are the handles of the data
    blocks, whose keys are internal keys: the user key, then 8 bytes of sequence << 8 | tag."""
    if len(data) < _FOOTER or data[-8:] != _TABLE_MAGIC:
        raise ValueError("not a LevelDB table (no magic number in its footer)")
    _, at = _handle(data, len(data) - _FOOTER)  # the metaindex (filters): not needed to read values
    index, _ = _handle(data, at)
    entries = []
    for _, handle in _block(data, index):
        for internal, value in _block(data, _handle(handle, 0)[0]):
            trailer = int.from_bytes(internal[-8:], "little")
            entries.append((trailer >> 8, trailer & 0xFF, internal[:-8], value))
    return entries


def _handle(data: bytes, at: int) -> tuple[tuple[int, int], int]:
    """A block handle (offset and size, two varints) and where the next field begins."""
    offset, at = _varint(data, at)
    size, at = _varint(data, at)
    return (offset, size), at


def _block(data: bytes, handle: tuple[int, int]) -> list[tuple[bytes, bytes]]:
    """A block's (key, value) pairs. After its contents come a compression byte (0 none, 1 Snappy) and a
    checksum; the contents end in the restart points (4 bytes each) and their count. Each entry gives how many
    bytes of the previous key it shares, then the rest of its key and its value."""
    offset, size = handle
    contents, kind = data[offset:offset + size], data[offset + size]
    if kind == 1:
        contents = bytes(cramjam.snappy.decompress_raw(contents))
    elif kind != 0:
        raise ValueError(f"a LevelDB table block of unknown compression {kind}")
    restarts = struct.unpack_from("<I", contents, len(contents) - 4)[0]
    end, at, key = len(contents) - 4 - 4 * restarts, 0, b""
    pairs = []
    while at < end:
        shared, at = _varint(contents, at)
        unshared, at = _varint(contents, at)
        length, at = _varint(contents, at)
        key = key[:shared] + contents[at:at + unshared]
        at += unshared
        pairs.append((key, contents[at:at + length]))
        at += length
    return pairs


def _varint(data: bytes, at: int) -> tuple[int, int]:
    """A little-endian base-128 varint and where the next field begins."""
    number = shift = 0
    while True:
        byte = data[at]
        at += 1
        number |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return number, at


def _slice(data: bytes, at: int) -> tuple[bytes, int]:
    """A length-prefixed byte string (the length a varint) and where the next begins."""
    length, at = _varint(data, at)
    return data[at:at + length], at + length


def _text(stored: bytes) -> str:
    """Chromium's stored string: a format byte, then UTF-16LE (0) or Latin-1 (1)."""
    if stored[:1] == b"\x01":
        return stored[1:].decode("latin-1")
    if stored[:1] == b"\x00":
        return stored[1:].decode("utf-16-le")
    raise ValueError(f"a localStorage string of unknown format {stored[:1]!r}")
