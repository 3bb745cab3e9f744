"""Waiting for a lock another idcli process holds, said once instead of in silence.

A second ``idcli deliver`` into a DEST another deliver is writing, ``idcli select`` while another select writes
the folder's picks, ``render --wait`` (``qa``, ``restore``) behind a run on its folder: each waits for the other's
``flock``. Waiting without a word looked like a hang, so after a short moment one note says what it waits for and
that Ctrl-C is safe (nothing has been written yet: every one of them takes its lock before its first write), then
the wait goes on until the lock is free. Stopped meanwhile, the command says so (interrupts.StoppedWaiting: "nothing
was done; rerun when ready"), not what a command stopped midway keeps.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable

from .diagnostics import note
from .interrupts import StoppedWaiting

NOTICE_AFTER_S = 1.0  # a lock held for less than this (the usual case: a select's few writes) passes unsaid
_POLL_S = 0.05


def lock_waiting(fd: int, waiting_for: str, say: Callable[[str], None] | None = None,
                 notice_after: float = NOTICE_AFTER_S) -> None:
    """Take an exclusive ``flock`` on ``fd``, waiting as long as another holds it.

    When the lock is still held after ``notice_after`` seconds, ``say`` (by default: an ``idcli: note:`` on
    stderr) is called once with ``waiting for {waiting_for}; Ctrl-C is safe …``. An OSError of ``flock`` itself
    (ENOLCK on a share without locks) is the caller's to handle.
    """
    deadline = time.monotonic() + notice_after
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    break
            time.sleep(_POLL_S)
        (say or note)(f"waiting for {waiting_for}; Ctrl-C is safe (nothing has been written yet)")
        fcntl.flock(fd, fcntl.LOCK_EX)
    except KeyboardInterrupt:  # stopped before the lock was taken: said as the note promised (interrupts.py)
        raise StoppedWaiting from None
