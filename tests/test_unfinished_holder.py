"""Whether a render is writing the folder now, as the morning-after note tells it (idcli/unfinished.py): the lock file
names its holder (``pid N on HOST``) and keeps that text after a kill, so a live process of that pid is no proof. A
pid is given again (a reboot, pid 1 of every container run, a container sharing the host's name under
``--network host``): the note then said a render was writing the folder now, and never gave the command that finishes.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from cli_helpers import cli_env

from idcli.unfinished import unfinished_takes


def _stopped_folder(tmp_path: Path) -> Path:
    """An output folder whose render of two takes started, committed nothing and never ended."""
    (tmp_path / "shots.yaml").write_text("version: 1\n")
    out = tmp_path / "out"
    (out / ".idcli").mkdir(parents=True)
    (out / ".idcli" / "shotlist.jsonl").write_text(json.dumps(
        {"project": "p", "file": str(tmp_path / "shots.yaml"), "file_relpath": "../shots.yaml",
         "takes": [["a", 1], ["b", 1]]}) + "\n")
    (out / ".idcli" / "journal.jsonl").write_text(json.dumps({"event": "run-start", "jobs": 2}) + "\n")
    return out


def _sleeping(*code: str) -> subprocess.Popen[str]:
    """A Python process of this user running ``code``, then waiting for its stdin to close; its first line says it is
    ready."""
    script = "\n".join([*code, "print('ready', flush=True)", "import sys", "sys.stdin.read()"])
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=cli_env())
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    return child


def test_a_live_process_that_does_not_hold_the_lock_is_no_render_running(tmp_path: Path) -> None:
    out = _stopped_folder(tmp_path)
    other = _sleeping()  # alive, this user's, the pid a killed render's lock file names: not that render
    try:
        (out / ".idcli" / "lock").write_text(f"pid {other.pid} on {socket.gethostname()}")
        left = unfinished_takes(out)
        assert left is not None and left.running is None and left.stopped
        assert "(its last render was stopped before it ended); to finish: idcli render " in left.note()
    finally:
        other.communicate("")


def test_a_render_holding_the_lock_is_told_as_running_never_as_stopped(tmp_path: Path) -> None:
    out = _stopped_folder(tmp_path)
    render = _sleeping("from idcli.store import OutputStore",
                       f"session = OutputStore({str(out)!r}).session()", "session.__enter__()")
    try:
        left = unfinished_takes(out)
        assert left is not None and left.running == f"pid {render.pid} on {socket.gethostname()}"
        assert not left.stopped and "to finish" not in left.note()
        assert "a render is writing the folder now" in left.note()
    finally:
        render.communicate("")
