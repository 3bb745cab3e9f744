"""What a person reads at the command line: ``--help`` of every command, and the errors a typo gives.

Each test runs the real console entry point (``python -m idcli``) as a user would, with a clean idcli home.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from cli_helpers import cli_env

# Every command and sub-command, as typed.
COMMANDS = [["validate"], ["schema"], ["expressions"], ["plan"], ["render"], ["bench"], ["restore"], ["reproduce"],
            ["verify"], ["encode-identity"], ["qa"], ["review"], ["select"], ["export"], ["evaluate"],
            ["identity", "show"], ["models", "list"], ["models", "fetch"]]


def idcli(*argv: str, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "idcli", *argv], capture_output=True, text=True, env=cli_env(),
                          timeout=120, cwd=cwd)


def _help_of_every_command() -> str:
    """All commands' --help in one process (a process per command would cost seconds each)."""
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom idcli.cli import app\n"
            f"for argv in {COMMANDS!r}:\n"
            "    result = CliRunner().invoke(app, [*argv, '--help'], terminal_width=100)\n"
            "    assert result.exit_code == 0, (argv, result.output)\n"
            "    print('== ' + ' '.join(argv)); print(result.output)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def every_help() -> str:
    return _help_of_every_command()


def test_help_names_a_list_argument_plainly_not_as_a_python_type(every_help: str) -> None:
    # Typer wrote `SELFIE <list[Path]>`, `SHOT=TAKE <list[str]>` and `OUT <list[Path]>`: Python's type, not a name.
    assert "list[" not in every_help, [line for line in every_help.splitlines() if "list[" in line]
    assert "SELFIE... <path>" in every_help
    assert "SHOT=TAKE... <str>" in every_help
    assert "OUT... <path>" in every_help
