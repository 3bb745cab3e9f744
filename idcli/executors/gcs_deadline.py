"""Reads of a Ray cluster's GCS (its actor and worker tables, its free resources) with a deadline, and Ray's clean-up
bounded, so that a head that stops answering without going away cannot hold the driver (docs/scale-out.md, "Faults").

A head whose ``gcs_server`` is stopped (a frozen VM, ``kill -STOP``) keeps its TCP connections open and never answers
on them: Ray 2.60's readers of those tables (``ray._private.state``, its ``GlobalStateAccessor``) wait for the answer
with no timeout, and so does ``ray.shutdown()`` (the driver's core worker says goodbye to the GCS). Ray's ``GcsClient``
takes a ``timeout=`` for its actor table, but not for its worker table nor for the shutdown, and the tests' stand-ins
read the tables as idcli always has: each such call runs in a daemon thread of its own here and is given up after its
deadline. A thread given up may stay stuck in Ray's C++ core until the head answers or its connection closes: being a
daemon thread, it cannot keep the process from exiting (Ray's calls release the GIL while they wait, so the driver goes
on meanwhile). While it waits, no other read is asked: one deadline bounds them all; for ``STUCK_READ_SECONDS`` at
most, then it is left to its thread and the reads are asked again.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

# A GCS answers a table read in milliseconds; a loaded head in well under this. Given up, the read is "Ray cannot say"
# (as for another Ray or Ray Client), and the head watch decides whether the cluster is gone.
GCS_READ_SECONDS = 5.0
# How long ``ray.shutdown()`` is given when the head no longer answers (it returns in about a second when it does).
SHUTDOWN_SECONDS = 5.0
# How long a read given up holds the others back. A read may never return though the head answers again (its connection
# lost in Ray's core): refused for good, every later read was "Ray cannot say", and a worker Ray never placed was never
# dropped (until 2026-12-02). Far longer than the head watch's grace (6 s), so a frozen head costs one read deadline
# before it is told gone; past it, one read is asked (and, the head still frozen, given up) per this many seconds.
STUCK_READ_SECONDS = 60.0


# The reads given up and still waiting in Ray's core, with when each was given up (time.monotonic()): while one is, the
# head has not answered it, and a new read would wait its whole deadline for nothing.
_unanswered: list[tuple[threading.Thread, float]] = []


def within(seconds: float, call: Callable[[], T]) -> T:
    """A read of the head's GCS: ``call()``'s result, or its error, if it returns within ``seconds``; else TimeoutError
    (the call goes on in its daemon thread, its result dropped). While a read given up earlier is still unanswered, a
    new one is not asked: TimeoutError at once. The driver reads one entry per worker as it hands out batches (which
    process runs it, whether Ray placed it), one after another: with W workers and a head frozen before the first
    batch, each read waited its 5 s, W x 5 s before the head watch could say "went away" (until 2026-12-02); now the
    first read's deadline bounds them all, until the head answers it (a pause shorter than the watch's grace), or for
    ``STUCK_READ_SECONDS``: a read that never returns is then left to its daemon thread."""
    now = time.monotonic()
    _unanswered[:] = [(thread, since) for thread, since in _unanswered
                      if thread.is_alive() and now - since < STUCK_READ_SECONDS]
    if _unanswered:
        raise TimeoutError("the Ray cluster's head has not answered an earlier read yet")
    read = _Call(call, "idcli-gcs-read")
    if not read.returns_within(seconds):
        _unanswered.append((read.thread, time.monotonic()))
        raise TimeoutError(f"the Ray cluster's head did not answer in {seconds:g} s")
    return read.result()


class _Call(Generic[T]):
    """``call()`` run in a daemon thread of its own, which cannot keep the process from exiting."""

    def __init__(self, call: Callable[[], T], name: str) -> None:
        self._outcome: list[tuple[bool, object]] = []

        def run() -> None:
            try:
                self._outcome.append((True, call()))
            except BaseException as exc:  # handed to the caller, as if raised there
                self._outcome.append((False, exc))

        self.thread = threading.Thread(target=run, name=name, daemon=True)
        self.thread.start()

    def returns_within(self, seconds: float) -> bool:
        self.thread.join(seconds)
        return bool(self._outcome)

    def result(self) -> T:
        ok, value = self._outcome[0]
        if not ok:
            assert isinstance(value, BaseException)
            raise value
        return value  # type: ignore[return-value]


# Set once a shutdown was given up: this process's Ray core is left half shut down.
_left_stuck: list[bool] = []


def shut_down(shutdown: Callable[[], object], seconds: float = SHUTDOWN_SECONDS) -> bool:
    """Run Ray's ``shutdown`` with a deadline; False when it did not return in time. Then Ray's own exit hook (the same
    ``ray.shutdown``, registered with ``atexit`` when Ray is imported) is taken off: it would wait on the head as this
    call did, at the process's exit, where nothing can stop it. Asked whatever the reads met: a cluster this run
    started itself is stopped by it."""
    stopping = _Call(shutdown, "idcli-ray-shutdown")
    if not stopping.returns_within(seconds):
        _left_stuck.append(True)
        with contextlib.suppress(ImportError):
            from ray._private import worker

            atexit.unregister(worker.shutdown)
        return False
    stopping.result()
    return True


def ray_left_stuck() -> bool:
    """Whether a Ray shutdown in this process was given up (its head stopped answering). Such a process cannot end
    the ordinary way: at its exit Ray's C++ core, still waiting on the head, aborts it (SIGABRT, or SIGSEGV while the
    given-up shutdown's thread runs; Ray 2.60), so the command line ends it with ``os._exit`` and its own exit code,
    once its output is flushed (cli/__init__.py)."""
    return bool(_left_stuck)
