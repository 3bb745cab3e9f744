"""SIGTERM (and SIGHUP, a closed terminal) stops idcli like Ctrl-C, and which signal did.

Python turns SIGINT into ``KeyboardInterrupt``; idcli makes SIGTERM raise it too, so a write in flight is
finished or removed by the same ``except BaseException`` and ``finally`` paths (safeio.atomic_write, the
commit thread), never left half-done. The exit code then follows the signal: 130 for SIGINT, 143 for SIGTERM, 129
for SIGHUP.
Every command runs inside ``terminate_as_interrupt`` (cli/output.py); the library's ``render`` does not install
it (a pipeline owns its process's signals) but reads ``interrupted()`` when a ``KeyboardInterrupt`` reaches it.
``interrupts_held`` holds both for a block that must not stop half way (an export's files put back,
review/export_files.py) and raises the first once that is safe; one left to the system's default (a library caller
that set no SIGTERM handler) ends the process once the block is whole, as it would have at once.
No heavy imports: every command loads this.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from .errors import EXIT_HANGUP, EXIT_INTERRUPTED, EXIT_TERMINATED, Interrupted

# Set by the SIGTERM handler so that the KeyboardInterrupt it raises reports the right signal.
_INTERRUPT: list[Any] = ["SIGINT", EXIT_INTERRUPTED]

# What a command stopped while it waited for another's lock leaves behind, as the waiting note promised ("Ctrl-C is
# safe (nothing has been written yet)", lock_wait.py): not a render's "completed images are kept, rerun to resume".
NOTHING_DONE = "nothing was done; rerun when ready"


class StoppedWaiting(KeyboardInterrupt):
    """Ctrl-C or SIGTERM while a command waited for another idcli process's lock (lock_wait.py), before it did
    anything: every ``except KeyboardInterrupt`` path handles it as ever, and ``interrupted`` says NOTHING_DONE."""


def interrupted(kept: str | None = None) -> Interrupted:
    """The error for the ``KeyboardInterrupt`` being handled: the signal that raised it and its exit code;
    ``kept`` says what the stopped command leaves behind (``Interrupted``'s default: a render's), unless it was
    stopped while waiting (``StoppedWaiting``): then nothing was done."""
    import sys

    signal_name, exit_code = _INTERRUPT
    if isinstance(sys.exc_info()[1], StoppedWaiting):
        kept = NOTHING_DONE
    return Interrupted(signal_name, exit_code) if kept is None else Interrupted(signal_name, exit_code, kept)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the run inside the block like Ctrl-C (exit 143); the previous handler is back after it: one
    left behind outlived the run, and a SIGTERM while the interpreter shut down printed a traceback there.
    Outside the main thread (where Python cannot set handlers) it does nothing."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, frame: Any) -> None:
        _INTERRUPT[:] = ["SIGTERM", EXIT_TERMINATED]
        raise KeyboardInterrupt

    def on_hangup(signum: int, frame: Any) -> None:
        _INTERRUPT[:] = ["SIGHUP", EXIT_HANGUP]
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    # A closed terminal (SIGHUP) killed the run at once, as kill -9: the rendered batches waiting in the commit queue
    # were lost. Only where SIGHUP has its default: under nohup (ignored) the run goes on, as nohup promises.
    hangup = getattr(signal, "SIGHUP", None)  # none on Windows
    previous_hangup = signal.getsignal(hangup) if hangup is not None else None
    if hangup is not None and previous_hangup == signal.SIG_DFL:
        signal.signal(hangup, on_hangup)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        if hangup is not None and previous_hangup == signal.SIG_DFL:
            signal.signal(hangup, signal.SIG_DFL)
        _INTERRUPT[:] = ["SIGINT", EXIT_INTERRUPTED]


class HeldInterrupts:
    """SIGINT and SIGTERM kept back by ``interrupts_held`` (each where Python handles it, or where it is left to the
    system's default, which ends the process: an ignored one is left so), for a block that must not stop half way:
    putting back an export's files. ``check`` stops the block where that is safe, as the first signal held would have
    stopped it."""

    def __init__(self) -> None:
        self.handlers: dict[int, Any] = {}  # the signals held, each with the handler it had
        self.received: list[int] = []
        self.delivered = False
        # Signals whose handler was the system's default (a library caller's SIGTERM, unless it set one): the block
        # stops as for Ctrl-C, and once it has ended the process ends by that signal, as it would have at once.
        self.by_default: set[int] = set()

    def stop_block(self, signum: int, frame: Any) -> None:
        """What ``check`` runs for a signal left to the system's default: the block stops where that is safe (its
        ``except BaseException`` puts things back); ``interrupts_held`` ends the process by the signal after it."""
        raise KeyboardInterrupt

    def hold(self, signum: int, frame: Any) -> None:
        self.received.append(signum)

    def check(self) -> None:
        """Raise the first signal held now, by its own handler (``KeyboardInterrupt``; SIGTERM's exit code set as
        ``terminate_as_interrupt`` sets it); nothing when none came. The signals after it are the same request again:
        none is raised twice (one left to the system's default still ends the process as ``interrupts_held`` ends)."""
        if self.received and not self.delivered:
            self.delivered = True
            signum = self.received[0]
            self.handlers[signum](signum, None)


@contextlib.contextmanager
def interrupts_held() -> Iterator[HeldInterrupts]:
    """Ctrl-C and SIGTERM inside the block are held, not raised, until its end or its ``check``: a second Ctrl-C
    while an export put its files back stopped the put-back half way and left a mixed set (export_files.py). A
    signal held and not raised by ``check`` is raised as the block ends, after the previous handlers are back, also
    when the block ends by an error: the command then stops as interrupted, as it would have. Outside the main
    thread (where Python cannot set handlers, nor raises a signal) it holds nothing."""
    import signal
    import threading

    held = HeldInterrupts()
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    previous_handlers: dict[int, Any] = {}
    try:
        # SIGHUP where terminate_as_interrupt made it stop the command (a closed terminal), not where ignored (nohup)
        for signum in (signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])):
            previous = signal.getsignal(signum)
            if callable(previous):  # Python's own: default_int_handler, terminate_as_interrupt's, a pipeline's
                held.handlers[signum] = previous
            elif previous == signal.SIG_DFL:  # a library caller's SIGTERM ended the export half way (until 2026-12-02)
                held.handlers[signum] = held.stop_block
                held.by_default.add(signum)
            else:  # ignored (SIG_IGN), or set outside Python (None): left so
                continue
            previous_handlers[signum] = previous
            signal.signal(signum, held.hold)
        yield held
    finally:
        # Put back with both blocked (delivered after): a Ctrl-C between the two raised here, and SIGTERM stayed with
        # this ended hold, which took every SIGTERM after it and did nothing (until 2026-12-02).
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, previous_handlers)
        try:
            for held_signal, handler in previous_handlers.items():
                # Only where the hold still stands: a handler ``check`` ran may have set another (a pipeline's that
                # leaves a second SIGTERM to the system's default); put back over it, it was undone (until 2026-12-02).
                if signal.getsignal(held_signal) == held.hold:
                    signal.signal(held_signal, handler)
            # The system's default: the process ends as they are unblocked, the block whole. Any such signal held, not
            # only the first: one after a Ctrl-C is no repeat of it (a caller that catches KeyboardInterrupt went on
            # running, until 2026-12-02).
            ending = next((signum for signum in held.received if signum in held.by_default), None)
            if ending is not None:
                signal.raise_signal(ending)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        held.check()  # raised over an error ending the block too (chained to it): the command was interrupted
