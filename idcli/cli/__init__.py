"""The ``idcli`` command line: thin commands over the library (see idcli/__init__.py).

This package builds ``app`` from one module per area (docs/architecture.md) and owns ``main``, the console
script's entry point.

Heavy libraries (torch, diffusers, insightface) are imported inside commands, never here, so that
``idcli --help`` answers at once.
"""

from __future__ import annotations

import contextlib
import os
import sys

import typer

from ..errors import EXIT_INTERNAL_ERROR, EXIT_INTERRUPTED, EXIT_INVALID_INPUT, EXIT_OK
from .collector import command_collector

# isort: off
# Each module registers its commands on ``app`` when imported; this order is the order ``idcli --help`` lists them.
from .options import app
from . import shotlist_commands  # noqa: F401  (validate, schema, expressions, plan, render)
from . import bench_command  # noqa: F401  (bench)
from . import provenance_commands  # noqa: F401  (restore, reproduce, verify)
from . import identity_commands  # noqa: F401  (encode-identity; the identity group)
from . import model_commands  # noqa: F401  (the models group)
from . import review_commands  # noqa: F401  (qa, review, select, export, evaluate)
from . import delivery_commands  # noqa: F401  (deliver)
# isort: on
from .output import (
    debug_traceback,
    emit_json,
    encodable_stdout,
    error_object,
    failure,
    guard_stderr,
    open_closed_standard_streams,
    stdout_gone,
    stdout_reader_gone,
)
from .shotlist_commands import folder_notes as folder_notes  # a public name of idcli.cli before the split
from .usage_errors import usage_message


def main() -> None:
    """Console-script entry point.

    Click's own errors (an unknown option, a missing argument) are handled here rather than by Click, so
    that a ``--json`` command line gets its JSON document for those too, and so that a closed stdout pipe
    never turns a finished run into exit 1 (Click maps EPIPE to 1). A closed stderr stops nothing either:
    the run goes on without its progress lines; nor does a standard descriptor closed before the start.
    """
    wants_json = "--json" in sys.argv[1:]
    open_closed_standard_streams()  # `idcli … >&- 2>&-`: nobody reads them, as for a reader that left
    guard_stderr()  # a log reader that leaves never stops a render part-way
    encodable_stdout()  # a locale that is not UTF-8 never stops a command at a character it cannot encode
    quiet_grpc()  # gRPC's info lines (a Ray head's "Got goaway" as it shuts down) never reach the terminal
    try:
        try:
            with command_collector():  # the model libraries' objects are not walked again and again
                code = app(standalone_mode=False)
        except SystemExit as exc:
            # Click answers a closed stdout during its own output (`idcli --help | true`) with exit 1; idcli's
            # commands end with typer.Exit, returned as a code here. The reader leaving is no failure.
            if exc.code != 1 or not stdout_reader_gone():
                raise
            raise BrokenPipeError from None
    except typer.TyperException as exc:  # Typer's (vendored) ClickException: usage errors
        code = getattr(exc, "exit_code", EXIT_INVALID_INPUT)
        own_words = usage_message(exc, sys.argv[1:])  # idcli's one-line form (cli/usage_errors.py)
        if wants_json:
            message = own_words or (exc.format_message() if hasattr(exc, "format_message") else str(exc))
            emit_json(failure(error_object("UsageError", message), code))
        if own_words is not None:
            print(f"idcli: error: {own_words}", file=sys.stderr)
        elif hasattr(exc, "show"):
            exc.show()
        else:
            print(f"idcli: error: {exc}", file=sys.stderr)
    except (typer.Abort, KeyboardInterrupt):
        print("idcli: interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        stdout_gone()
        code = EXIT_OK
    except Exception as exc:  # a bug in idcli: its own exit code, never 1 (failed jobs) as Python would give
        code = EXIT_INTERNAL_ERROR
        message = (f"internal error: {type(exc).__name__}: {exc} — a bug in idcli; rerun with IDCLI_DEBUG=1 for the "
                   "traceback and report it")
        if wants_json:
            emit_json(failure(error_object("InternalError", message), code))
        debug_traceback()
        print(f"idcli: {message}", file=sys.stderr)
    code = code if isinstance(code, int) else EXIT_OK
    _end_if_ray_left_stuck(code)
    sys.exit(code)


def quiet_grpc() -> None:
    """gRPC's C core (grpcio's, and the one inside Ray's core worker) reads ``GRPC_VERBOSITY`` as it starts; unset,
    recent versions leave absl's logging at its default, which writes info lines to stderr: a Ray run's driver printed
    ``I1202 … chttp2_transport.cc:1403] ipv4:…: Got goaway …`` as the cluster shut down after a run that went well
    (seen in CI, 2026-12-02). Errors only, unless the user set it or ``IDCLI_DEBUG`` asks for everything. Set before
    anything imports grpc or Ray, so both read it."""
    if not os.environ.get("IDCLI_DEBUG"):
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


def _end_if_ray_left_stuck(code: int) -> None:
    """A Ray cluster whose head stopped answering (frozen) leaves Ray's core in this process unable to shut down, and
    it aborts an ordinary exit (executors/gcs_deadline.py): the process ends here, its output flushed, with its code."""
    deadline = sys.modules.get("idcli.executors.gcs_deadline")  # loaded only by a Ray run
    if deadline is not None and deadline.ray_left_stuck():
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


__all__ = ["EXIT_INVALID_INPUT", "app", "main"]
