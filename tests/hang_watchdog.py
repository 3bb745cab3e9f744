"""A SIGALRM watchdog for tests that must fail rather than hang (hostile inputs, fuzzing)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Hang(BaseException):
    """Raised by the watchdog; a BaseException so that no ``except OSError``/``Exception`` can swallow it."""


@contextmanager
def no_hang(seconds: int = 20) -> Iterator[None]:
    """Fail instead of hanging the suite (a FIFO opened for reading blocks until a writer comes).

    The alarm keeps firing every second once due, and the block fails afterwards even if the code under
    test swallowed the interruption (a blocked open() that got EINTR-as-exception and carried on).
    """
    fired: list[bool] = []

    def on_alarm(signum: int, frame: Any) -> None:
        fired.append(True)
        raise Hang(f"still running after {seconds} s: it hangs")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert not fired, f"still running after {seconds} s: it hangs"
