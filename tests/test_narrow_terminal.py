"""`idcli plan` on a terminal narrower than its table: the columns a reader can do without are left out whole, and
said, rather than every cell cut to "…" (on an 80-column terminal every shot read ``sc0…``; the python-api trial,
2026-12-02)."""

from __future__ import annotations

import fcntl
import os
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

from cli_helpers import cli_env

SHOTS = """\
version: 1
project: narrow
model: {preset: tiny-sd}
defaults: {size: 96x96, steps: 3, guidance: 4.0, sampler: ddim, takes: 2}
shots:
  - id: sc01_sh010
    prompt: a wet street at night
  - id: sc01_sh020
    prompt: a lighthouse at dusk
"""


def _plan_on_a_terminal(argv: list[str], columns: int) -> tuple[str, str, int]:
    """``idcli plan`` with stdout a terminal ``columns`` wide (stderr a pipe): what the terminal showed, stderr and
    the exit code."""
    import pty

    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {**cli_env(), "COLUMNS": str(columns), "NO_COLOR": "1"}
    process = subprocess.Popen([sys.executable, "-m", "idcli", *argv], stdin=subprocess.DEVNULL, stdout=terminal,
                               stderr=subprocess.PIPE, env=env)
    os.close(terminal)
    shown = b""
    try:
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the command ended and closed the terminal
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(controller)
    stderr = process.stderr.read().decode() if process.stderr is not None else ""
    # the text as a reader sees it: rich bolds the header even with NO_COLOR
    return re.sub(r"\x1b\[[0-9;]*m", "", shown.decode()).replace("\r", ""), stderr, process.wait(timeout=300)


def test_an_80_column_terminal_shows_every_shot_whole_and_says_which_columns_it_left_out(
        write_shotlist, tmp_path: Path) -> None:
    columns = 80
    shots = write_shotlist(SHOTS)
    shown, stderr, code = _plan_on_a_terminal(["plan", str(shots), "--out", str(tmp_path / "out")], columns)
    assert code == 0, stderr
    rows = [line for line in shown.splitlines() if line.startswith("│")]
    assert len(rows) == 4, shown
    # Before: rich cut every column to fit, each cell ending in "…" (`sc0…`, `258…`): no row told from another.
    assert "…" not in "\n".join(rows), shown
    assert [row.split("│")[1].strip() for row in rows] == ["sc01_sh010", "sc01_sh010", "sc01_sh020", "sc01_sh020"]
    assert all(len(line) <= columns for line in shown.splitlines() if line[:1] in "┏┃┡│└")  # the table fits
    header = next(line for line in shown.splitlines() if line.startswith("┃"))
    assert [cell.strip() for cell in header.split("┃")[1:-1]][:3] == ["shot", "take", "seed"] and "state" in header
    assert "key" not in header
    note = next(line for line in stderr.splitlines() if "not shown" in line)
    assert note.startswith("idcli: note: ") and f"terminal's {columns} columns" in note and "key" in note
    assert "idcli plan --json" in note


def test_a_terminal_wide_enough_shows_every_column_and_no_note(write_shotlist, tmp_path: Path) -> None:
    shots = write_shotlist(SHOTS)
    shown, stderr, code = _plan_on_a_terminal(["plan", str(shots), "--out", str(tmp_path / "out")], 200)
    assert code == 0, stderr
    header = next(line for line in shown.splitlines() if line.startswith("┃"))
    assert [cell.strip() for cell in header.split("┃")[1:-1]] == [
        "shot", "take", "seed", "identity", "size", "steps", "sampler", "tokens", "state", "group", "key"]
    assert "not shown" not in stderr


def test_a_column_that_fits_once_a_wider_one_is_left_out_is_shown(write_shotlist, tmp_path: Path) -> None:
    """hostile-read-31: the columns were left out one by one until the rest fit, so at 52 columns, where identity (a
    wide header) had to go, size, left out before it, stayed out though it fits beside the four kept: the note said
    `size … not shown, to fit the terminal's 52 columns` over 10 columns left blank."""
    columns = 52
    shots = write_shotlist(SHOTS)
    shown, stderr, code = _plan_on_a_terminal(["plan", str(shots), "--out", str(tmp_path / "out")], columns)
    assert code == 0, stderr
    header = next(line for line in shown.splitlines() if line.startswith("┃"))
    assert [cell.strip() for cell in header.split("┃")[1:-1]] == ["shot", "take", "seed", "size", "state"], shown
    assert all(len(line) <= columns for line in shown.splitlines() if line[:1] in "┏┃┡│└")  # the table fits
    rows = [line for line in shown.splitlines() if line.startswith("│")]
    assert "…" not in "\n".join(rows) and all("96x96" in row for row in rows), shown
    note = next(line for line in stderr.splitlines() if "not shown" in line)
    assert "identity, steps, sampler, tokens, group, key not shown" in note, note
