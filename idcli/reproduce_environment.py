"""How ``idcli reproduce`` re-renders as the render did, and what it says when it cannot: the recorded device, torch
threads and VAE decode chunk, and the notes on what differs now (device, dtype, versions, ``--compile``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .option_words import Option, words
from .versions import TOOL_VERSION

# -- comparing ---------------------------------------------------------------------------------------------

def environment_differences(record: dict[str, Any], device: str, dtype: str,
                            threads: int | None = None) -> list[dict[str, Any]]:
    """What of the recorded environment differs now: device, dtype, library versions, idcli's version; on a CPU the
    torch threads (``threads``: the count the re-render ran with, by default this thread's now)."""
    from .provenance import software_versions

    m = record.get("model") or {}
    pairs: list[tuple[str, Any, Any]] = [("device", m.get("device"), device), ("dtype", m.get("dtype"), dtype),
             ("idcli", (record.get("tool") or {}).get("version"), TOOL_VERSION)]
    recorded = record.get("software") or {}
    now = software_versions()
    pairs += [(name, recorded.get(name), now.get(name)) for name in sorted(set(recorded) | set(now))]
    recorded_threads = (record.get("executor") or {}).get("threads")
    if recorded_threads is not None and device == "cpu":  # a CPU's float32 sums round by how they are split
        import torch

        pairs.append(("torch threads", recorded_threads, threads if threads is not None else torch.get_num_threads()))
    return [{"name": n, "recorded": r, "now": v} for n, r, v in pairs if r != v]


def recorded_device(record: dict[str, Any], device: str, notes: list[str]) -> str:
    """The device to re-render on: the one asked for, except that ``auto`` (the default) keeps a CPU-recorded image
    on the CPU where it would pick a GPU, saying so in a note. A GPU's kernels sum in another order than a CPU's, so
    a CPU image re-rendered on the GPU could never be identical, and ``reproduce`` said only that it differed."""
    if device != "auto" or (record.get("model") or {}).get("device") != "cpu":
        return device
    import torch

    if torch.cuda.is_available():
        notes.append(words(("rendered on the CPU: re-rendered on the CPU too, not on this machine's GPU (",
                            Option("device", "auto"), " keeps the recorded device; ", Option("device", "cuda"),
                            " re-renders on the GPU, whose pixels differ)")))
        return "cpu"
    return device


def other_device_note(record: dict[str, Any], device: str) -> str | None:
    """For an image that did not reproduce on another device than the recorded one: that the devices' arithmetic
    differs, and how to ask for the recorded device. None on the recorded device (or one the record does not say)."""
    recorded = (record.get("model") or {}).get("device")
    if not isinstance(recorded, str) or _first_gpu(recorded) == _first_gpu(device) \
            or not recorded.startswith(("cpu", "cuda")):
        return None
    where = "" if recorded == "cpu" else " on a machine with a GPU"
    return words((f"rendered on {recorded}, re-rendered on {device}: the devices' float arithmetic differs, so "
                  "8-bit values may; ", Option("device", recorded), f" re-renders on the recorded device{where}"))


def _first_gpu(device: str) -> str:
    """``cuda`` as ``cuda:0``, the device torch's ``cuda`` is in idcli's process (the first visible one): a record's
    ``cuda`` re-rendered with ``--device cuda:0`` is on the same device, whose arithmetic cannot differ."""
    return "cuda:0" if device == "cuda" else device


@contextlib.contextmanager
def recorded_threads(record: dict[str, Any], device: str, notes: list[str]) -> Iterator[int | None]:
    """Torch's CPU threads set to the count the record's render ran with (``executor.threads``) for the re-render,
    and put back after it, also when it fails; yields the count it ran with (None: the host's, untouched).

    float32 sums split between threads round differently, so a few 8-bit values move by one between thread counts:
    a Ray CPU worker renders with one thread (Ray's ``OMP_NUM_THREADS``) where this process may have one per core,
    and only the recorded count makes its bytes again (docs/scale-out.md). On another device the count does not
    apply: a note says so. The count is torch's for this thread (and for threads torch starts meanwhile), so a
    Python caller's own count is its own again when ``reproduce`` returns.
    """
    threads = (record.get("executor") or {}).get("threads")
    if threads is None:  # a GPU render, or a sidecar from before the count was recorded
        yield None
        return
    if device != "cpu":
        notes.append(f"rendered on a CPU with {threads} torch thread{'s' if threads != 1 else ''}; re-rendered on "
                     f"{device}, where that count does not apply")
        yield None
        return
    import torch

    before = torch.get_num_threads()
    try:  # the change inside the guarded region: a Ctrl-C just after it still puts the caller's count back
        torch.set_num_threads(threads)
        yield threads
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def recorded_decode_chunk(engine: Any, chunk: int | None, device: str, image: Path) -> Iterator[bool]:
    """The engine's VAE decoding ``chunk`` images per call (the record's ``executor.decode_chunk``) while the block
    runs, as the render did: on a GPU a render's chunk follows the free memory, and another chunk can move a decoded
    value by one 8-bit level (docs/provenance.md). None (an older record): decoded as the device allows, as before.
    Yields whether the chunk was set (not on a caller's engine, ``engine_factory``, that has no such setting).

    Out of memory at the recorded chunk is a ReproduceError saying so and what to do: decoding in a smaller chunk
    and then calling the image identical, or not, would be a verdict on another decode than the render's."""
    from .engine.memory import DecodeChunkOutOfMemory
    from .reproduce import ReproduceError  # defined there, where callers catch it

    fixed = getattr(engine, "fixed_decode_chunk", None)
    if chunk is None or fixed is None:
        yield False
        return
    try:
        with fixed(chunk):
            yield True
    except DecodeChunkOutOfMemory as exc:
        raise ReproduceError(
            f"{image}: out of memory on {device} decoding {exc.chunk} image{'s' if exc.chunk != 1 else ''} per VAE "
            f"call, as the render did (its sidecar's executor.decode_chunk is {chunk}); another chunk can move a "
            "pixel by one 8-bit level, so reproduce does not decode in a smaller one. Free the device's memory "
            "(another process may hold some: nvidia-smi lists them) and run it again, or reproduce it on a "
            "machine with more", file=image) from None


def decode_chunk_note(recorded: int | None, used: int | None, chunk_set: bool = True) -> str | None:
    """Why a re-render that is not identical may have decoded otherwise than its render (None: nothing to say;
    ``chunk_set``: whether the engine took the recorded chunk)."""
    if recorded is not None and not chunk_set:
        return (f"the record's VAE decode chunk ({recorded} per call) could not be set on this engine (an "
                "engine_factory's): it decoded as it chose, and another chunk can move a pixel by one 8-bit level")
    if recorded is None and used is not None:
        return (f"the record does not say how many images the VAE decoded per call (a take from before "
                f"2026-12-02): decoded {used} per call, as this device allows; another chunk than the render's "
                "can move a pixel by one 8-bit level")
    if recorded is not None and used is not None and used != recorded:
        return (f"decoded {used} image{'s' if used != 1 else ''} per VAE call, not the recorded {recorded}: the "
                "re-render's batch is smaller than the render's")
    return None


def compile_note(record: dict[str, Any]) -> str | None:
    """Why a ``--compile`` render may not reproduce bit for bit: reproduce renders uncompiled."""
    if not (record.get("executor") or {}).get("compile"):
        return None
    return words(("rendered with ", Option("compile", True), ": torch.compile fuses and reorders float operations, "
                  "so some 8-bit values may differ by one from this uncompiled re-render (docs/performance.md)"))
