"""Python's garbage collector in an ``idcli`` command's process: the model libraries are walked once, not a dozen times.

A render imports torch, diffusers and transformers: over 400,000 objects the collector tracks, alive until the
process ends. With CPython's default thresholds a full collection runs each time the long-lived heap has grown by
a quarter, so those imports alone set off seven, each walking everything imported so far; and the interpreter
walks the whole heap again as it shuts down. None of it is garbage. docs/testing.md ("Start-up of a render
process") has the measurements.

So, for the one command a process runs (never in the library: its callers may run for days):

- a full collection waits for 100 collections of the middle generation instead of 10 (about 700,000 new objects
  instead of 70,000); young objects, where nearly all cyclic garbage dies, are collected as before;
- once the command is over (at exit, after every other exit handler), what is left is frozen, so the
  interpreter's shutdown does not walk it: the memory goes back to the system with the process.

A caller that runs ``main()`` in its own process (the tests do) gets its threshold back when ``main()`` ends, and
the freeze only when that process exits.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
from collections.abc import Iterator

FULL_COLLECTION_EVERY = 100  # middle-generation collections between full ones (CPython's default: 10)

_freeze_registered = False


@contextlib.contextmanager
def command_collector() -> Iterator[None]:
    """Run one command with full collections spaced out; freeze what is left when the process exits."""
    global _freeze_registered
    if not _freeze_registered:
        # Registered before the command imports anything, so it runs after their exit handlers (last in, first
        # out): nothing that still runs Python code at exit finds the collector frozen.
        atexit.register(gc.freeze)
        _freeze_registered = True
    thresholds = gc.get_threshold()
    gc.set_threshold(thresholds[0], thresholds[1], max(thresholds[2], FULL_COLLECTION_EVERY))
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
