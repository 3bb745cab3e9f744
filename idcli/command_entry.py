"""The ``idcli`` command's entry point (the console script's and ``python -m idcli``'s): Ctrl-C while the command
line is still being imported ends with one line and exit 130, as it does once a command runs.

Importing ``idcli.cli`` takes ~0.1-0.2 s (Typer, Click, every command module); a Ctrl-C in that time used to end
in a ``KeyboardInterrupt`` traceback, because the console script's generated wrapper imported ``idcli.cli`` itself,
outside any guard. This module's own import costs nothing beyond ``import idcli`` (idcli/__init__.py: the error
types and the version, 25-40 ms), which Python runs before any of idcli's code can catch anything.
"""

from __future__ import annotations

import sys

from .errors import EXIT_INTERRUPTED


def main() -> None:
    """Import the command line under a Ctrl-C guard, then run it (idcli.cli.main owns everything after)."""
    try:
        from .cli import main as run_command
    except KeyboardInterrupt:
        _ignore_further_ctrl_c()
        print("idcli: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    run_command()


def _ignore_further_ctrl_c() -> None:
    """A user pressing Ctrl-C again while the process says so and exits already has the stop they asked for.

    ``signal`` is imported here, not at the top: its import builds enums (milliseconds, unguarded there).
    """
    import signal  # already loaded by the command line's import, unless the Ctrl-C cut that short

    signal.signal(signal.SIGINT, signal.SIG_IGN)
