"""A closed terminal (SIGHUP) stops a render as Ctrl-C does, and `nohup` keeps it rendering (the night-run trial,
2026-12-02). Before, SIGHUP's default killed the process at once, as `kill -9`: no line, the rendered batches in the
commit queue not committed, a temporary left in flight; Ctrl-C and SIGTERM commit them first.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import (
    SIGNAL_HOOK,
    assert_nothing_partial,
    cli_env,
    journal_commits,
    render_argv,
    sigint_as_in_a_terminal,
)

SHOTS = """\
version: 1
project: hangup
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, takes: 3}
shots:
  - {id: h1, prompt: "a harbour at night"}
  - {id: h2, prompt: "a lighthouse in fog"}
"""


def _render_hung_up(shots: Path, out: Path, hup: signal.Handlers) -> subprocess.CompletedProcess[str]:
    """``idcli render`` that sends itself SIGHUP right after the second image's temporary is fsynced, not yet
    renamed (a write in flight), with SIGHUP's disposition ``hup`` as the terminal or ``nohup`` left it."""

    def start() -> None:
        sigint_as_in_a_terminal()
        signal.signal(signal.SIGHUP, hup)

    return subprocess.run([sys.executable, "-c", SIGNAL_HOOK, ".png.", "2", "HUP", *render_argv(shots, out)],
                          capture_output=True, text=True, env=cli_env(), timeout=300, preexec_fn=start)


def test_a_closed_terminal_stops_the_render_as_ctrl_c_does(write_shotlist, tmp_path: Path) -> None:
    shots, out = write_shotlist(SHOTS), tmp_path / "out"
    done = _render_hung_up(shots, out, signal.SIG_DFL)
    assert done.returncode == 129, (done.returncode, done.stderr)
    assert "idcli: error: interrupted by SIGHUP; completed images are kept, rerun to resume" in done.stderr
    # what is left and the command that finishes, before the error line (a terminal still open reads it)
    note = next(line for line in done.stderr.splitlines() if line.startswith("idcli: note: "))
    left = 6 - len(list(out.glob("*/*_t*.png")))
    assert f" of the 6 takes of shots.yaml {'is' if left == 1 else 'are'} not rendered yet (its last render was " \
           "stopped before it ended); to finish: idcli render " in note
    assert done.stderr.index(note) < done.stderr.index("idcli: error: interrupted")
    assert "Traceback" not in done.stderr
    assert_nothing_partial(out)  # the image being written when the signal came is finished or removed, no temporary
    committed = len(list(out.glob("*/*_t*.json")))
    assert committed >= 2  # the image in flight is committed, as Ctrl-C commits it
    resumed = subprocess.run([sys.executable, "-m", "idcli", *render_argv(shots, out)], capture_output=True,
                             text=True, env=cli_env(), timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(journal_commits(out).values()) == [1] * 6  # each job committed once


@pytest.mark.parametrize("how", ["nohup"])
def test_under_nohup_a_hangup_changes_nothing(write_shotlist, tmp_path: Path, how: str) -> None:
    shots, out = write_shotlist(SHOTS), tmp_path / "out"
    done = _render_hung_up(shots, out, signal.SIG_IGN)  # nohup ignores SIGHUP: idcli leaves it ignored
    assert done.returncode == 0, done.stderr
    assert len(list(out.glob("*/*_t*.json"))) == 6


def test_the_hangup_handler_is_the_commands_alone_and_leaves_an_ignored_hangup_ignored() -> None:

    from idcli.interrupts import interrupted, terminate_as_interrupt

    before = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        with terminate_as_interrupt():
            try:
                os.kill(os.getpid(), signal.SIGHUP)
                signal.sigtimedwait([], 0.1)  # the handler runs at the next bytecode; this gives the signal its moment
                raise AssertionError("SIGHUP did not stop the command")
            except KeyboardInterrupt:
                stopped = interrupted()
            assert stopped.exit_code == 129 and str(stopped).startswith("interrupted by SIGHUP")
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_DFL  # a later hangup ends the process as before
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # nohup
        with terminate_as_interrupt():
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            assert interrupted().exit_code == 130  # the next Ctrl-C is told as SIGINT, not as the hangup
    finally:
        signal.signal(signal.SIGHUP, before)


ONE_TAKE_EACH = SHOTS.replace("takes: 3", "takes: 1")


def _on_a_closed_terminal(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """``idcli ARGV`` whose stdout is a terminal closed before it ran, in a session of its own, so that no SIGHUP
    comes (``setsid``, a job the shell was told to leave alone: ``disown -h``, ``trap '' HUP``): every write to it
    fails with EIO, as after an ssh session dropped while the render went on. stderr is a pipe, to read."""
    import pty

    controller, terminal = pty.openpty()
    os.close(controller)  # the terminal window closed
    try:
        return subprocess.run([sys.executable, "-m", "idcli", *argv], stdin=subprocess.DEVNULL, stdout=terminal,
                              stderr=subprocess.PIPE, text=True, env=cli_env(), timeout=300, start_new_session=True)
    finally:
        os.close(terminal)


def test_a_render_that_outlived_its_terminal_keeps_its_exit_code(write_shotlist, tmp_path: Path) -> None:
    # Before: every image committed, then the summary line on the closed terminal failed with EIO, which idcli
    # told as `idcli: error: Input/output error`, exit 5 ("output unusable"): a script's `&& idcli deliver` never ran.
    shots, out = write_shotlist(ONE_TAKE_EACH), tmp_path / "out"
    done = _on_a_closed_terminal(render_argv(shots, out))
    assert done.returncode == 0, (done.returncode, done.stderr)
    assert "Input/output error" not in done.stderr and "Traceback" not in done.stderr
    assert sorted(journal_commits(out).values()) == [1, 1]  # both takes, each once


def test_a_plan_table_on_a_closed_terminal_is_no_error(write_shotlist, tmp_path: Path) -> None:
    # rich's table write failed with EIO: exit 5, as for the render's summary; a reader gone is no failure (exit 0,
    # as for `idcli plan FILE | head`).
    done = _on_a_closed_terminal(["plan", str(write_shotlist(SHOTS)), "--out", str(tmp_path / "out"),
                                  "--device", "cpu"])
    assert done.returncode == 0, (done.returncode, done.stderr)
    assert "Input/output error" not in done.stderr
