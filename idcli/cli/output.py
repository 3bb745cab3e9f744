"""How every command speaks: stdout, the ``--json`` contract, errors and exit codes.

Owns the one-JSON-document contract of ``--json`` (``ok``, ``failure``, ``error_object``; docs/file-formats.md),
printing on stdout that survives a reader going away (``emit``, ``stdout_gone``), and ``guarded``, which turns
idcli's errors and unanticipated file-system failures into one message and their exit code (with IDCLI_DEBUG
also the traceback).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

import typer

from ..diagnostics import diagnostic, lenient, note
from ..errors import EXIT_OK, EXIT_OUTPUT_UNUSABLE, IdcliError, terminal_safe
from ..option_words import options_as_flags


def fail(message: str, code: int) -> None:
    """An error on stderr in the one style (``idcli: error: …``), then exit with ``code``."""
    print(diagnostic("error", message), file=sys.stderr)
    raise typer.Exit(code)


print_note = note  # the commands' name for it: a note on stderr in the one style (idcli/diagnostics.py)


def print_warning(text: str) -> None:
    """A warning on stderr in the one style (``idcli: warning: …``)."""
    print(diagnostic("warning", text), file=sys.stderr)


# -- stdout: one JSON document, and a reader that may go away ------------------------------------------


def stdout_gone() -> None:
    """The reader of stdout went away (``idcli plan --json | head -c 100``): that is not the run's failure.

    stdout is pointed at /dev/null so that the interpreter's final flush does not fail a second time
    (the recipe of Python's docs, "Note on SIGPIPE"); the run keeps its own exit code.
    """
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def stdout_reader_gone() -> bool:
    """Whether stdout is a pipe or socket whose reader has closed it (``idcli --help | true``): the system
    reports an error condition on its write end then. False when it cannot tell (a file, a terminal)."""
    import select

    with contextlib.suppress(OSError, ValueError, AttributeError):
        poller = select.poll()
        poller.register(sys.__stdout__.fileno(), select.POLLOUT)  # type: ignore[union-attr]  # None: suppressed
        return any(events & select.POLLERR for _fd, events in poller.poll(0))
    return False


def terminal_hung_up(exc: OSError) -> bool:
    """Whether ``exc`` is a write to stdout on a terminal that was closed while idcli went on (``setsid``, ``disown
    -h``, ``trap '' HUP``: no SIGHUP came): EIO, no file named, and stdout reports the error. That reader is gone as
    a closed pipe's is; a finished render told it as `Input/output error`, exit 5 (until 2026-12-02)."""
    import errno

    return exc.errno == errno.EIO and exc.filename is None and stdout_reader_gone()


def emit(text: str) -> None:
    """Print one block of text for a person on stdout, control characters escaped (``terminal_safe``)."""
    _write_stdout(terminal_safe(text))


def _write_stdout(text: str) -> None:
    """Write one block on stdout as it is (see :func:`stdout_gone` for a closed pipe)."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        stdout_gone()
    except OSError as exc:  # the terminal closed (EIO): gone as a pipe's reader; any other error is the caller's
        if not terminal_hung_up(exc):
            raise
        stdout_gone()


def open_closed_standard_streams() -> None:
    """Open /dev/null on each standard descriptor the caller closed (``idcli render … >&- 2>&-``, a daemon that
    closed them): Python then has no ``sys.stdout`` / ``sys.stderr`` (None), and every document, note or error
    printed there failed the command (exit 70, then 120; a traceback and exit 1, the failed jobs' code, for stdout).
    What is written there is dropped, as for a reader that left, and the command keeps its exit code. Opened before
    anything else, so no file idcli opens later (an image being written) gets descriptor 1 or 2, where a library's
    own writes to stdout or stderr would land in it."""
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        if getattr(sys, name) is not None:
            continue
        try:
            os.fstat(fd)
        except OSError:  # closed: /dev/null takes its place (dup2, should a lower one be closed too)
            null = os.open(os.devnull, os.O_RDONLY if fd == 0 else os.O_WRONLY)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
        setattr(sys, name, open(fd, mode, encoding="utf-8", closefd=False))  # noqa: SIM115  (the process's, for good)


def guard_stderr() -> None:
    """Make this process's diagnostics unable to stop it (see :class:`idcli.diagnostics.ReaderMayLeave`)."""
    sys.stderr = lenient(sys.stderr)


def stdout_console() -> Any:
    """A rich console for tables on stdout (the terminal's width, or 160 columns in a pipe or a file).

    rich answers a closed stdout with ``SystemExit(1)``; this one raises BrokenPipeError instead, which
    :func:`guarded` treats as the reader having left (``idcli plan FILE | head``: exit 0).
    """
    from rich.console import Console

    class _StdoutConsole(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError

    return _StdoutConsole(width=None if sys.stdout.isatty() else 160)


def stdout_writes_utf8() -> bool:
    """Whether stdout encodes as UTF-8: not in a farm job whose locale is not (``LANG=C`` where Python does not coerce
    it, a latin-1 box) or with ``PYTHONIOENCODING`` set to another codec."""
    import codecs

    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False


def encodable_stdout() -> None:
    """Text that stdout's codec cannot encode (a table's ``→``, a non-ASCII file name) is written escaped, as Python
    writes it on stderr (``backslashreplace``): it stopped the command with exit 70, or exit 1 and no ``--json``
    document. Nothing changes on a UTF-8 stdout."""
    if not stdout_writes_utf8() and callable(reconfigure := getattr(sys.stdout, "reconfigure", None)):
        with contextlib.suppress(ValueError, OSError):
            reconfigure(errors="backslashreplace")


def emit_json(document: dict[str, Any]) -> None:
    """Print the ``--json`` document on stdout: in UTF-8 where stdout writes UTF-8; else pure ASCII, each other
    character as a JSON ``\\u`` escape, so that the bytes are valid UTF-8 (RFC 8259) and ``jq`` reads the same
    values. So is a document holding a file name whose bytes are no UTF-8 (Python's lone surrogates, which UTF-8
    cannot encode: a received ``Ren\\xe9e.png``): ``os.fsencode`` reads its ``\\udce9`` back as the name's bytes."""
    # JSON escapes its own control characters
    text = json.dumps(document, indent=2, ensure_ascii=not stdout_writes_utf8())
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a file name in bytes that are no UTF-8 (a lone surrogate): escaped, as \udce9
            text = json.dumps(document, indent=2, ensure_ascii=True)
    _write_stdout(text)


def ok(**fields: Any) -> dict[str, Any]:
    """A successful ``--json`` document: ``ok``, ``exit_code`` and ``error`` first (docs/file-formats.md)."""
    return {"ok": True, "exit_code": EXIT_OK, "error": None, **fields}


def failure(error: dict[str, Any], exit_code: int) -> dict[str, Any]:
    """A failed ``--json`` document (docs/file-formats.md)."""
    return {"ok": False, "exit_code": exit_code, "error": error}


def error_object(type_name: str, message: str, file: str | None = None) -> dict[str, Any]:
    """A ``--json`` error object for an error that has no line, field or hint."""
    return {"type": type_name, "message": message, "file": file, "line": None, "column": None, "field": None,
            "hint": None, "problems": []}


def debug_traceback() -> None:
    """With IDCLI_DEBUG set, the traceback of the error being handled, on stderr.

    Only added: the exit code and the ``--json`` document stay the same, so a script run with IDCLI_DEBUG
    still reads the documented ones (re-raising made every error exit 1 with no document).
    """
    if os.environ.get("IDCLI_DEBUG"):
        traceback.print_exc(file=sys.stderr)


@options_as_flags()  # errors name their arguments as the command's flags, not as Python's (option_words.py)
def guarded(fn: Callable[[], Any], as_json: bool = False, problems_mean: str = "nothing was rendered") -> Any:
    """Run a command body; idcli errors become one message and their exit code.

    With ``as_json`` the failure is also one JSON document on stdout (``ok: false``, ``exit_code``,
    ``error``), so a script reads the same shape whatever happened. An error of several problems ends with a line
    counting them and saying ``problems_mean``: what they cost the command (``validate``: the file is not valid;
    ``plan``: it was not planned; ``review``, ``export``, ``evaluate``: their ``--shots`` file's problems). The
    default is ``render``'s; a command that reads a shot list says its own, since "nothing was rendered" is no
    news where nothing renders.
    """
    from ..interrupts import interrupted, terminate_as_interrupt

    try:
        # SIGTERM stops every command like Ctrl-C: a write in flight is finished or removed, never left half-done.
        with terminate_as_interrupt():
            try:
                return fn()
            except KeyboardInterrupt:  # Typer would turn it into a silent exit 130: no message, no document
                raise interrupted("what was written before is complete; rerun the command") from None
    except BrokenPipeError:
        stdout_gone()  # a table printed into a pipe whose reader left: the command itself succeeded
        return None
    except OSError as exc:
        if terminal_hung_up(exc):  # a table printed on a terminal closed meanwhile (rich): as a pipe's reader gone
            stdout_gone()
            return None
        # A file-system failure not anticipated deeper down (permissions, a file where a folder should
        # be): one line, not a traceback.
        debug_traceback()
        from ..paths import cache_note

        where = f"{exc.filename}: " if exc.filename else ""
        message = f"{where}{exc.strerror or exc}{cache_note(exc.filename) if isinstance(exc.filename, str) else ''}"
        if as_json:
            emit_json(failure(error_object("OutputError", message, str(exc.filename) if exc.filename else None),
                              EXIT_OUTPUT_UNUSABLE))
        fail(message, EXIT_OUTPUT_UNUSABLE)
    except IdcliError as exc:
        debug_traceback()
        if as_json:
            emit_json(failure(exc.as_json(), exc.exit_code))
        message = exc.render()
        problems = getattr(exc, "problems", None)
        if problems and len(problems) > 1:
            print(terminal_safe(message), file=sys.stderr)
            print(terminal_safe(f"idcli: {len(problems)} problems; {problems_mean}"), file=sys.stderr)
            raise typer.Exit(exc.exit_code) from None
        fail(message, exc.exit_code)

