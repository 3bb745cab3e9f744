"""Whether a model's ``.safetensors`` weight file is whole, told from its header alone: what ``plan`` refuses before
any selfie is encoded, where the render would fail as it loads the model (or, for a shard index naming a tensor no
shard holds, load that weight uninitialised: diffusers trusts the index's list of tensors).

The verdict is safetensors' own: ``safe_open`` memory-maps the file and checks the 8-byte header length against the
file, the header's UTF-8 and JSON, each tensor's ``data_offsets`` against the one before it (no overlap, no gap), its
byte count against its dtype × shape, and the last tensor's end against the file's end, reading no tensor (measured:
docs/performance.md, a 7 GB file in milliseconds). safetensors says what is wrong without a number or, for a tensor
of the wrong size, without its name; those are read here from the header (bounded by safetensors' own 100 MB limit),
only once safetensors has refused the file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

CHANGING = "changed while it was read"  # the words of a file written to while it was checked
HEADER_LIMIT = 100_000_000  # safetensors' MAX_HEADER_SIZE: it refuses a longer header as too large
# Bits an element of each safetensors dtype takes (F4 and F6 pack several elements a byte).
_DTYPE_BITS = {"BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8,
               "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32,
               "I64": 64, "U64": 64, "F64": 64, "C64": 64, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6}


def safetensors_damage(file: Path) -> str | None:
    """What is wrong with ``file`` as a safetensors file, in words (None when safetensors opens it): its header cut
    or not JSON, a tensor past the file's end, two tensors' bytes overlapping, a tensor whose bytes do not match its
    dtype and shape, bytes beyond the last tensor; or that it changed while it was read (its size or time: a copy
    still being written). An unreadable file (``OSError``) is left to the caller."""
    from safetensors import SafetensorError, safe_open

    before = file.stat()
    try:
        with safe_open(str(file), framework="numpy"):
            return None
    except SafetensorError as exc:
        said = str(exc).removeprefix("Error while deserializing header: ")
    words = _in_words(file, said)
    # A copy still being written: what safetensors refused and what the words measured are two moments of it.
    after = file.stat()
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        return f"{CHANGING}, from {before.st_size:,} to {after.st_size:,} bytes"
    return words


def damaged_weights_words(folder: Path | str, file: Path, damage: str) -> str:
    """The refusal of a weight file safetensors cannot open, as plan and the render's loading say it (exit 4)."""
    if damage.startswith(CHANGING):
        return (f"cannot load model '{folder}': the weight file '{file}' {damage}: a copy still in progress? To fix: "
                "let the copy finish, then run again")
    return (f"cannot load model '{folder}': the weight file '{file}' is damaged or cut short ({damage}), so the "
            "model cannot load. To fix: copy it again from where it came, or download or save the model again")


def _in_words(file: Path, said: str) -> str:
    """safetensors' words for a file it refuses, with the numbers and the tensor it leaves out read from the header
    (safetensors has checked the header's length against the file before any of these)."""
    size = file.stat().st_size
    if said.startswith("header too small"):
        return f"it has {size:,} bytes, fewer than a safetensors header's 8"
    if said.startswith(("invalid header length", "header too large")):
        with open(file, "rb") as handle:
            length = int.from_bytes(handle.read(8), "little")
        limit = f"; safetensors reads at most {HEADER_LIMIT:,}" if length > HEADER_LIMIT else ""
        return f"its header's length is {length:,} bytes, the file has {size:,}{limit}"
    if said.startswith(("invalid JSON", "invalid UTF-8")):
        return f"its header is not JSON ({said.removeprefix('invalid JSON in header: ')})"
    header = _header(file)
    if header is None:
        return said
    length, tensors = header
    held = size - 8 - length
    if said.startswith("incomplete metadata"):
        placed = max((end for _, _, _, (_, end) in tensors), default=0)
        if held < placed:
            return f"it is cut short: its header places {placed:,} bytes of tensors, the file holds {held:,}"
        return f"it holds {held:,} bytes of tensors, {held - placed:,} more than its header places"
    if said.startswith("invalid offset for tensor"):  # safetensors names the tensor, in backquotes
        return f"the tensor '{said.partition('`')[2].rstrip('`')}' overlaps the one before it or leaves a gap"
    for name, dtype, shape, (start, end) in sorted(tensors, key=lambda tensor: tensor[3]):
        if end > held:
            return f"the tensor '{name}' ends at byte {end:,} of the tensor data, the file holds {held:,}"
        needed = math.prod(shape) * _DTYPE_BITS.get(dtype, 0) / 8
        if end - start != needed:
            return (f"the tensor '{name}' ({dtype}, shape {list(shape)}) needs {needed:,.0f} bytes, its "
                    f"data_offsets {[start, end]} give {end - start:,}")
    return said


def _header(file: Path) -> tuple[int, list[tuple[str, str, tuple[int, ...], tuple[int, int]]]] | None:
    """The header's length and its tensors (name, dtype, shape, data_offsets); None when they cannot be read so."""
    with open(file, "rb") as handle:
        length = int.from_bytes(handle.read(8), "little")
        if length > HEADER_LIMIT:
            return None
        try:
            header = json.loads(handle.read(length))
        except (ValueError, RecursionError):
            return None
    if not isinstance(header, dict):
        return None
    tensors = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            start, end = (int(n) for n in entry["data_offsets"])
            tensors.append((name, str(entry["dtype"]), tuple(int(n) for n in entry["shape"]), (start, end)))
        except (TypeError, KeyError, ValueError):
            return None
    return length, tensors


__all__ = ["damaged_weights_words", "safetensors_damage"]
