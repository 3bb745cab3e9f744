"""Ctrl-C while the ``idcli`` command line is still being imported (its first ~0.1-0.2 s) ends with one line,
``idcli: interrupted``, and exit 130, never a Python traceback (docs/reliability.md).

The child goes through the console script's own entry, the function pyproject's ``[project.scripts]`` names (the
installed script is the shared environment's, so not this tree's). A thread in the child sends SIGINT to its own
process every millisecond from a chosen point of the import until the process ends: the point is the Nth module
loaded after ``idcli.cli`` began, so the tries cover the import from its first module to its last, and the many
Ctrl-Cs of an impatient user land while the process is saying so and exiting, too.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from cli_helpers import cli_env, sigint_as_in_a_terminal

ROOT = Path(__file__).resolve().parents[1]

# argv: ENTRY_MODULE ENTRY_FUNCTION N, then idcli's own arguments.
CHILD = """
import importlib, os, signal, sys, threading, time
module, function, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
entry = getattr(importlib.import_module(module), function)
del sys.argv[1:4]
sys.argv[0] = "idcli"

def ctrl_c_from_the_nth_module():
    while "idcli.cli" not in sys.modules:
        time.sleep(0.0002)
    loaded = len(sys.modules)
    while len(sys.modules) < loaded + nth and "idcli.cli.review_commands" not in sys.modules:
        time.sleep(0.0002)
    while True:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.001)

threading.Thread(target=ctrl_c_from_the_nth_module, daemon=True).start()
entry()
"""


def _console_script_entry() -> tuple[str, str]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        target = tomllib.load(file)["project"]["scripts"]["idcli"]
    module, function = target.split(":")
    return module, function


def test_ctrl_c_while_the_command_line_is_imported_says_one_line_and_exits_130() -> None:
    module, function = _console_script_entry()
    outcomes = []
    for nth in range(0, 60, 4):
        done = subprocess.run([sys.executable, "-c", CHILD, module, function, str(nth), "--version"],
                              capture_output=True, text=True, env=cli_env(), timeout=120,
                              preexec_fn=sigint_as_in_a_terminal)
        outcomes.append((nth, done.returncode, done.stderr))
    wrong = [outcome for outcome in outcomes if outcome[1:] != (130, "idcli: interrupted\n")]
    assert not wrong, wrong


def test_python_m_idcli_goes_through_the_same_entry() -> None:
    # Both ways in share one guard (idcli/command_entry.py), so the test above holds for ``python -m idcli`` too.
    module, function = _console_script_entry()
    main_source = (ROOT / "idcli" / "__main__.py").read_text(encoding="utf-8")
    assert f"from {module.removeprefix('idcli')} import {function}" in main_source
