"""Committing rendered batches on a background thread, so the engine never waits for PNG encoding,
hashing and fsyncs.

One worker thread keeps commits in submission order; at most ``depth`` batches wait, which bounds
the decoded images held in memory. Outcomes are handed back to the calling thread in order, so the
report and the progress display are only ever touched from there. The commit protocol itself is the
store's (image, then sidecar, atomically): a run stopped at any moment leaves what it always did.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class CommitSkipped(Exception):
    """A queued commit not run because an earlier one failed (its jobs stay pending for the next run)."""


class CommitQueue:
    """``on_done`` receives each commit's result on the calling thread; it must be safe to call again with the
    same result (it may have been cut short by a KeyboardInterrupt, and is then called again by ``drain``)."""

    def __init__(self, on_done: Callable[[Any], None], depth: int = 2,
                 stops: Callable[[Any], bool] | None = None) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="idcli-commit")
        self._waiting: deque[Future[Any]] = deque()
        self._on_done = on_done
        self._depth = depth
        # Whether a commit's result means the output cannot take more (disk full, permissions): the worker
        # then runs no later commit, so nothing more is written after the failure, whatever the timing.
        self._stops = stops
        self._stopped = False
        # Time spent committing: it overlaps rendering, so only this shows its cost (idcli bench).
        self.busy_seconds = 0.0
        self.commits = 0

    def submit(self, fn: Callable[..., Any], *args: Any, on_queued: Callable[[], None] | None = None) -> None:
        """Queue ``fn(*args)``, then hand over finished work and wait while more than ``depth`` batches are
        queued. Queued first: a Ctrl-C while waiting here still leaves this batch for ``drain``. ``on_queued`` is
        called once it is queued, before the wait (so a caller knows the queue holds it when a signal cuts it)."""
        self._waiting.append(self._pool.submit(self._timed, fn, *args))
        if on_queued is not None:
            on_queued()
        self._collect(block_while=self._depth)

    def _timed(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._stopped:
            raise CommitSkipped()
        start = time.perf_counter()
        try:
            result = fn(*args)
            if self._stops is not None and self._stops(result):
                self._stopped = True
            return result
        except BaseException:
            self._stopped = True
            raise
        finally:
            self.busy_seconds += time.perf_counter() - start  # one worker thread: no race
            self.commits += 1

    def _collect(self, block_while: int) -> None:
        while self._waiting and (self._waiting[0].done() or len(self._waiting) > block_while):
            future = self._waiting[0]
            # A Ctrl-C while waiting here leaves the queue as it is, so ``drain`` can still hand over
            # the batches already rendered. Only a commit's own failure stops the queue.
            result = future.result()  # raises the commit's own error, handled below
            try:
                self._on_done(result)
            except Exception:
                self._waiting.popleft()  # a failed hand-over is not handed over again
                raise
            # Only now: a Ctrl-C or SIGTERM landing inside ``on_done`` (while the report or progress lines are
            # written) leaves this committed result at the head, and ``drain``/``cancel`` hand it over again.
            self._waiting.popleft()

    def drain(self) -> None:
        """Wait for every queued commit and hand over its result; the first error is raised (then
        ``cancel`` settles the rest)."""
        self._collect(block_while=0)

    def cancel(self) -> None:
        """Drop commits that have not started; the one running finishes (writes are never cut short) and
        its result is still handed over, so jobs it committed are reported as committed."""
        running = [f for f in self._waiting if not f.cancel()]
        self._waiting.clear()
        stopped: KeyboardInterrupt | None = None
        for future in running:
            while True:  # a signal here (render's stop path: its third) interrupts one hand-over, not the rest
                try:
                    with contextlib.suppress(Exception):
                        self._on_done(future.result())
                    break
                except KeyboardInterrupt as exc:
                    stopped = exc  # this result again: ``on_done`` skips what it already took
        if stopped is not None:
            raise stopped

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
