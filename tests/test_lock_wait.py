"""A command waiting for a lock another idcli process holds says so once, then goes on (idcli/lock_wait.py).

Real processes: the test holds the very ``flock`` the command takes (on DEST itself for ``deliver``, on
``OUT/.idcli/selects.lock`` for ``select``, on ``OUT/.idcli/lock`` for ``render --wait``), waits for the note on
the command's stderr, checks that nothing was written meanwhile, then lets go.
"""

from __future__ import annotations

import fcntl
import json
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import NotesKept, cli_env, render_argv, render_on_cpu, sigint_as_in_a_terminal

from idcli.errors import Interrupted
from idcli.lock_wait import lock_waiting
from idcli.store import OutputStore

SHOTS = """\
version: 1
project: lock-wait
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 5.0, sampler: dpmpp-2m, takes: 2}
shots:
  - {id: sh010, prompt: "an empty street at night, rain", seeds: [42, 43]}
"""
WAITS = "Ctrl-C is safe"


@pytest.fixture
def rendered(write_shotlist, tmp_path: Path, engine_factory) -> tuple[Path, Path]:
    shots = write_shotlist(SHOTS)
    out = tmp_path / "out"
    render_on_cpu(shots, out, engine_factory, qa=False)
    return shots, out


def _held(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY) if path.is_dir() else os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def _stderr_line_with(process: subprocess.Popen[str], needle: str, timeout: float = 120.0) -> str:
    """The line of the process's stderr holding ``needle`` (which must be there once so far); fails when the
    process exits or the time is up first. Read raw from the descriptor: a buffered reader could hold the line."""
    stderr = process.stderr
    assert stderr is not None, "started with stderr=subprocess.PIPE"
    chooser = selectors.DefaultSelector()
    chooser.register(stderr, selectors.EVENT_READ)
    seen, end = b"", time.monotonic() + timeout
    while time.monotonic() < end and needle.encode() not in seen:
        if chooser.select(timeout=1.0):
            chunk = os.read(stderr.fileno(), 65536)
            if not chunk:
                break
            seen += chunk
    text = seen.decode("utf-8", "replace")
    if needle not in text:
        process.kill()
        pytest.fail(f"no stderr line with {needle!r}; stderr so far: {text!r}")
    assert text.count(needle) == 1, text
    return next(line for line in text.splitlines() if needle in line)


def _waits_then_goes_on(argv: list[str], lock: Path, untouched: Path) -> str:
    """Run ``idcli ARGV`` while ``lock`` is held: its note, nothing at ``untouched`` meanwhile, exit 0 after."""
    fd = _held(lock)
    process = subprocess.Popen([sys.executable, "-m", "idcli", *argv], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=cli_env(), text=True)
    try:
        note = _stderr_line_with(process, WAITS)
        assert not untouched.exists()
    finally:
        os.close(fd)  # lets the command go on
    _out, rest = process.communicate(timeout=300)
    assert process.returncode == 0, rest
    assert WAITS not in rest  # said once
    return note


def test_a_second_deliver_into_a_held_dest_says_once_that_it_waits(rendered, tmp_path: Path) -> None:
    _shots, out = rendered
    dest = tmp_path / "client"
    dest.mkdir()
    note = _waits_then_goes_on(["deliver", str(out), str(dest)], dest, dest / "delivery.json")
    assert note.startswith("idcli: note: waiting for another idcli deliver into ")
    assert (dest / "delivery.json").is_file()


def test_select_waiting_for_another_select_says_so(rendered) -> None:
    _shots, out = rendered
    note = _waits_then_goes_on(["select", str(out), "sh010=2"], out / ".idcli" / "selects.lock",
                               out / "selects.json")
    assert "another idcli select" in note
    assert (out / "selects.json").is_file()


def test_select_json_waiting_says_so_on_stderr_and_prints_only_the_document(rendered) -> None:
    _shots, out = rendered
    fd = _held(out / ".idcli" / "selects.lock")
    process = subprocess.Popen([sys.executable, "-m", "idcli", "select", str(out), "sh010=2", "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(), text=True)
    try:
        assert "another idcli select" in _stderr_line_with(process, WAITS)
    finally:
        os.close(fd)
    stdout, rest = process.communicate(timeout=300)
    assert process.returncode == 0, rest
    document = json.loads(stdout)  # the wait note is not on stdout: the one document is all there is
    assert document["ok"] is True and document["selects"]["sh010"]["take"] == 2
    assert document["changed"] == ["sh010=t2 (new)"]


def test_render_wait_behind_a_run_on_the_folder_says_so(rendered) -> None:
    shots, out = rendered
    journal = out / ".idcli" / "journal.jsonl"
    before = journal.read_bytes()
    note = _waits_then_goes_on(render_argv(shots, out, "--wait"), out / ".idcli" / "lock", out / "nothing-here")
    assert "another idcli run" in note and str(out) in note
    assert journal.read_bytes().startswith(before)


def test_a_lock_free_within_the_moment_is_taken_without_a_word(tmp_path: Path) -> None:
    said: list[str] = []
    path = tmp_path / "lock"
    path.touch()
    fd = os.open(path, os.O_RDWR)
    try:
        lock_waiting(fd, "nobody", said.append)
    finally:
        os.close(fd)
    assert said == []


def test_the_store_session_says_what_it_waits_for_through_its_caller(tmp_path: Path) -> None:
    """``session(wait=True, on_wait=…)``: a render's note goes through its progress (silent with --quiet)."""
    store = OutputStore(tmp_path / "out")
    with store.session():
        pass
    holder = _held(tmp_path / "out" / ".idcli" / "lock")
    said: list[str] = []

    def say(text: str) -> None:
        said.append(text)
        os.close(holder)

    with store.session(wait=True, on_wait=say):
        pass
    assert len(said) == 1 and "waiting for another idcli run" in said[0] and WAITS in said[0]


def test_render_wait_stopped_while_waiting_says_nothing_was_done(rendered) -> None:
    """Ctrl-C while ``render --wait`` queued behind another run: it said "completed images are kept, rerun to
    resume", of a render that never began. It says what the waiting note promised: nothing was done."""
    import signal

    shots, out = rendered
    journal = out / ".idcli" / "journal.jsonl"
    before = journal.read_bytes()
    fd = _held(out / ".idcli" / "lock")
    try:
        process = subprocess.Popen([sys.executable, "-m", "idcli", *render_argv(shots, out, "--wait")],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(), text=True,
                                   preexec_fn=sigint_as_in_a_terminal)
        _stderr_line_with(process, WAITS)
        process.send_signal(signal.SIGINT)
        _out, rest = process.communicate(timeout=120)
    finally:
        os.close(fd)
    assert process.returncode == 130, rest
    assert "interrupted by SIGINT; nothing was done; rerun when ready" in rest, rest
    assert "rerun to resume" not in rest, rest
    assert journal.read_bytes() == before


def _descriptors_on(path: Path) -> list[int]:
    """This process's open descriptors on ``path`` (as /proc/self/fd names their files)."""
    target, found = str(path.resolve()), []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == target:
                found.append(int(name))
        except OSError:  # the descriptor listdir itself used, closed since
            continue
    return found


class _CtrlCWhileWaiting(NotesKept):
    """A render's progress on which Ctrl-C comes while the render waits for the folder's lock (its note is the sign)."""

    def note(self, text: str) -> None:
        super().note(text)
        if WAITS in text:
            raise KeyboardInterrupt


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="descriptors are named via /proc")
def test_render_wait_stopped_while_waiting_closes_the_lock_file_for_a_python_caller(rendered, engine_factory) -> None:
    """A pipeline's long-lived process that stops ``idcli.render(wait=True)`` while it waits behind another run: the
    folder's lock file was left open, a descriptor lost per stopped wait. Every way out of the wait closes it."""
    shots, out = rendered
    lock = out / ".idcli" / "lock"
    fd = _held(lock)  # another run writes the folder
    try:
        with pytest.raises(Interrupted, match="nothing was done; rerun when ready"):
            render_on_cpu(shots, out, engine_factory, wait=True, progress=_CtrlCWhileWaiting())
    finally:
        os.close(fd)
    assert _descriptors_on(lock) == []
