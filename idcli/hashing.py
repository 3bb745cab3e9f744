"""Content hashes: canonical JSON, tagged digests and cached file hashes.

The canonical JSON contract (changing it changes every job key, so every render looks stale):
keys sorted, no insignificant whitespace, UTF-8 without escaping, floats in Python's shortest
round-trip form, NaN and infinities refused, tuples written as lists.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .paths import state_dir

CHUNK = 1024 * 1024


def canonical_json(obj: Any) -> str:
    """Serialise ``obj`` canonically (see the module docstring: changing this changes every hash)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def tagged_hash(tag: str, obj: Any) -> str:
    """``tag:sha256hex`` of the canonical JSON of ``obj``; the tag names what was hashed and how."""
    digest = hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()
    return f"{tag}:{digest}"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_fd(fd: int) -> str:
    """sha256 of the whole file open as ``fd``, streamed from its start (pread: the offset is not used)."""
    digest = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, CHUNK, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    """sha256 of a file's bytes, streamed."""
    with path.open("rb") as handle:
        return sha256_fd(handle.fileno())


def sha256_file_cached(path: Path) -> str:
    """sha256 of a large file (model weights), cached by path and stamp: size, mtime, inode and ctime, as git's index
    (and idcli/image_stamps.py) stamp a file.

    Weights are gigabytes; hashing them on every plan would cost seconds. The cache lives in the
    idcli state folder and is only a shortcut: a file whose stamp changed is hashed again. Size and mtime alone
    missed a file replaced by another of its size with its mtime kept (``cp -p``, ``rsync -t``, normalised
    timestamps; a fine-tune has its base's size): no tool sets a ctime back.
    """
    path = path.resolve()
    stat = path.stat()
    cache_file = state_dir() / "file-hashes.json"
    entry_key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ino}|{stat.st_ctime_ns}"
    try:
        cache = json.loads(cache_file.read_text("utf-8"))
    except (OSError, ValueError):
        cache = {}
    if isinstance(cache, dict) and isinstance(cache.get(entry_key), str):
        return cache[entry_key]
    value = sha256_file(path)
    cache = cache if isinstance(cache, dict) else {}
    cache[entry_key] = value
    from .safeio import atomic_write, remove_dead_temporaries  # safeio imports this module

    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        remove_dead_temporaries(cache_file.parent, earlier_home_names=True)  # a plan killed mid-write left one
        atomic_write(cache_file, json.dumps(cache).encode("utf-8"))
    except OSError:
        pass  # a read-only home only costs a re-hash next time
    return value
