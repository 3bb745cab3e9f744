"""Diagnostics that cannot stop the work: progress lines, notes and warnings are for a person, and a person
who stopped reading (a closed pipe, a hung-up terminal, a closed log file) must not end a render part-way."""

from __future__ import annotations

import contextlib
import os
from typing import Any


class ReaderMayLeave:
    """A diagnostics stream (stderr, a progress log) whose reader may leave: ``idcli render FILE 2>&1 | head``,
    a log pager quit early, a closed log file.

    When nobody reads any more, writes are dropped and the run goes on to its last image and its own exit
    code (a BrokenPipeError from a progress line ended renders part-way with exit 0). When the stream is
    the process's stderr, the first failed write also points fd 2 at /dev/null, so that what libraries
    write there (Ray, ONNX Runtime) and the interpreter's final flush fail no more.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._gone = False

    def write(self, text: str) -> int:
        if not self._gone:
            try:
                return self._stream.write(text)
            except (OSError, ValueError):  # EPIPE, EIO of a hung-up terminal, a closed file object
                self._reader_left()
        return len(text)

    def flush(self) -> None:
        if not self._gone:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self._reader_left()

    def _reader_left(self) -> None:
        self._gone = True
        with contextlib.suppress(OSError, ValueError, AttributeError):
            if self._stream.fileno() != 2:  # a caller's own log file keeps its descriptor
                return
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding, ...: the real stream's
        return getattr(self._stream, name)


def lenient(stream: Any) -> ReaderMayLeave:
    """``stream`` as a :class:`ReaderMayLeave` (itself when it is one already)."""
    return stream if isinstance(stream, ReaderMayLeave) else ReaderMayLeave(stream)


# -- the one style of a note or warning ---------------------------------------------------------------------

_KINDS = ("note", "warning", "error")


def diagnostic(kind: str, text: str) -> str:
    """A line a person should read, in the one style every command uses: ``idcli: note: …``,
    ``idcli: warning: …``, as errors read ``idcli: error: …`` (``kind``: note, warning or error)."""
    from .errors import terminal_safe

    return f"idcli: {kind}: {terminal_safe(text)}"


def note(text: str) -> None:
    """A note for the person at the terminal, on stderr in the one style (``idcli: note: …``), flushed at once;
    a stderr nobody reads any more cannot stop the work. Every command's notes (cli/output.py) and the library's
    own (lock_wait.py) are said through it."""
    import sys

    print(diagnostic("note", text), file=lenient(sys.stderr), flush=True)


def kind_of(text: str) -> tuple[str, str]:
    """``(kind, text)`` of a library's line: its own ``note: ``/``warning: ``/``error: `` taken off, else a note.
    An executor's lines (a batch halved after out of memory, a Ray worker restarted) are notes unless they say
    otherwise; a worker's own line keeps its kind when the driver names the worker."""
    for kind in _KINDS:
        if text.startswith(f"{kind}: "):
            return kind, text[len(kind) + 2:]
    return "note", text


def styled(line: str) -> str:
    """``line`` in that style when it is a library's bare ``note: …``, ``warning: …`` or ``error: …`` (a render's
    progress note, a folder note); any other line (a progress line, one styled already) as it is."""
    for kind in _KINDS:
        if line.startswith(f"{kind}: "):
            return diagnostic(kind, line[len(kind) + 2:])
    return line
