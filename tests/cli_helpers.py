"""Helpers shared by the tests (and tests/stress/kill_loop.py) that run idcli as a process, plan or render a
shot list on the CPU, or check what a run left in its output folder.

A plain module, like hang_watchdog.py: pytest puts tests/ on the path; kill_loop.py adds it itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from PIL import Image

import idcli
from idcli.hashing import sha256_file
from idcli.run_report import JobOutcome
from idcli.store import TMP_SUFFIX, OutputStore

ROOT = Path(__file__).resolve().parents[1]

__all__ = ["ROOT", "SIGNAL_HOOK", "TMP_SUFFIX", "StoppedAfterFirst", "assert_no_temporaries", "assert_nothing_partial",
           "cli_env", "commit_counts", "journal_commits", "kill_restore_after", "plan_jobs", "plan_on_cpu",
           "render_argv", "render_on_cpu", "sigint_as_in_a_terminal", "spawn_render"]


# -- idcli as a process ---------------------------------------------------------------------------------


# ``[sys.executable, "-c", SIGNAL_HOOK, NEEDLE, N, SIG, *ARGS]`` runs ``idcli ARGS`` after patching os.fsync:
# right after the Nth fsync of a temporary whose path holds NEEDLE, the process sends itself SIG (KILL: no
# clean-up at all; INT/TERM: as a person or a scheduler would; STOP: frozen until the test continues it).
SIGNAL_HOOK = """
import os, signal, sys
from idcli.safeio import TMP_SUFFIX
needle, nth, sig = sys.argv[1], int(sys.argv[2]), getattr(signal, "SIG" + sys.argv[3])
count, real_fsync = [0], os.fsync

def fsync(fd):
    real_fsync(fd)
    try:
        name = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return
    if name.endswith(TMP_SUFFIX) and needle in name:
        count[0] += 1
        if count[0] == nth:
            os.kill(os.getpid(), sig)

os.fsync = fsync
sys.argv = ["idcli", *sys.argv[4:]]
from idcli.cli import main
main()
"""


def cli_env(home: Path | None = None) -> dict[str, str]:
    """The environment of an ``idcli`` child process: this checkout's idcli, offline, quiet, one thread.

    ``home`` sets IDCLI_HOME (tests inherit the isolated one their fixture set in os.environ).
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if home is not None:
        env["IDCLI_HOME"] = str(home)
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_VERBOSITY"] = "error"
    # One thread per run: the runs are tiny and, with two shared cores, torch's default thread pool spins
    # against other processes (measured: a full run took 34-86 s instead of 8-13 s under load).
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = "1"
    env.pop("IDCLI_DEBUG", None)  # a traceback on stderr is what several tests look for
    return env


# Runs ``idcli ARGS`` killed with SIGKILL right after its Nth os.rename (restore's moves are renames).
_RENAME_KILL_HOOK = """
import os, signal, sys
nth, count, real_rename = int(sys.argv[1]), [0], os.rename

def rename(*args, **kwargs):
    real_rename(*args, **kwargs)
    count[0] += 1
    if count[0] == nth:
        os.kill(os.getpid(), signal.SIGKILL)

os.rename = rename
sys.argv = ["idcli", *sys.argv[2:]]
from idcli.cli import main
main()
"""


def kill_restore_after(out: Path, take: str, renames: int, *options: str) -> None:
    """``idcli restore OUT TAKE OPTIONS`` as a process, killed with SIGKILL right after its ``renames``-th rename (the
    current image aside, its sidecar aside, the kept image back, the kept sidecar back: 1 to 4)."""
    killed = subprocess.run([sys.executable, "-c", _RENAME_KILL_HOOK, str(renames), "restore", str(out), take,
                             *options], capture_output=True, text=True, env=cli_env(), timeout=60)
    assert killed.returncode == -signal.SIGKILL, killed.stderr


def sigint_as_in_a_terminal() -> None:
    """``preexec_fn`` of an idcli process a test stops with SIGINT: SIGINT's default disposition in the child.

    A shell starts a background job (``pytest ... &`` in a script) with SIGINT ignored, and an ignored signal stays
    ignored through fork and exec: Python then installs no KeyboardInterrupt handler, and the SIGINT the test
    sends does nothing (the run went on to exit 0, docs/testing.md). idcli keeps that POSIX behaviour for its users
    (a background job is not stopped by the terminal's Ctrl-C); the tests' children get SIGINT as a process started
    from a terminal has it.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def render_argv(shots: Path, out: Path, *extra: str, batch_size: int | None = 1) -> list[str]:
    """The arguments after ``idcli`` of a CPU render (batch size 1 unless given; None: the default)."""
    sizing = [] if batch_size is None else ["--batch-size", str(batch_size)]
    return ["render", str(shots), "--out", str(out), "--device", "cpu", *sizing, *extra]


def spawn_render(shots: Path, out: Path, *extra: str, batch_size: int | None = 1, env: dict[str, str] | None = None,
                 cwd: Path | None = None, stdout: int | IO[Any] | None = subprocess.PIPE,
                 stderr: int | IO[Any] | None = subprocess.PIPE) -> subprocess.Popen[str]:
    """Start ``python -m idcli render`` (see :func:`render_argv`) in the :func:`cli_env` environment, SIGINT as from a
    terminal (:func:`sigint_as_in_a_terminal`: tests stop it with SIGINT)."""
    return subprocess.Popen([sys.executable, "-m", "idcli", *render_argv(shots, out, *extra, batch_size=batch_size)],
                            stdout=stdout, stderr=stderr, env=env if env is not None else cli_env(), cwd=cwd,
                            text=True, preexec_fn=sigint_as_in_a_terminal)


# -- planning and rendering in the test process -----------------------------------------------------------


def plan_on_cpu(shots: Path) -> Any:
    """The plan of a shot list file on the CPU (identities encoded into the current IDCLI_HOME)."""
    plan, _runtime = idcli.plan_shotlist(idcli.load_shotlist(shots), device="cpu")
    return plan


def plan_jobs(shots: Path) -> list[Any]:
    """The jobs of a shot list file, planned on the CPU, in plan order."""
    return list(plan_on_cpu(shots).jobs)


def render_on_cpu(shots: Path, out: Path, engine_factory: Any, **kwargs: Any) -> Any:
    """``idcli.render`` of a shot list file on the CPU with the given engine factory; its report."""
    return idcli.render(idcli.load_shotlist(shots), out, device="cpu", engine_factory=engine_factory, **kwargs)


# -- what an output folder holds ------------------------------------------------------------------------


def commit_counts(entries: Iterable[dict[str, Any]]) -> Counter[str]:
    """Journal commit lines per job key (rendered and recovered alike)."""
    return Counter(e["job_key"] for e in entries if e.get("event") == "commit")


def journal_commits(out: Path) -> Counter[str]:
    """Journal commit lines per job key in an output folder."""
    return commit_counts(OutputStore(out).journal_entries())


def assert_no_temporaries(root: Path) -> None:
    """No temporary file of the commit protocol anywhere under ``root``."""
    left = sorted(str(p) for p in root.rglob(f"*{TMP_SUFFIX}"))
    assert not left, f"temporaries left: {left}"


def assert_nothing_partial(out: Path, jobs: Iterable[Any] | None = None, *, temporaries_allowed: bool = False) -> None:
    """Nothing partial at a final path: every PNG complete, every sidecar matching its image's sha256.

    ``temporaries_allowed``: a SIGKILL leaves temporaries, removed by the next run's start, so checks right
    after a kill allow them. ``jobs``: each of these jobs must also be done (sidecar naming the job).
    """
    if not temporaries_allowed:
        assert_no_temporaries(out)
    for png in out.rglob("*.png"):
        with Image.open(png) as im:
            im.verify()  # chunk structure and CRCs
        with Image.open(png) as im:
            im.load()  # and the pixels decode: a truncated PNG fails here
    for sidecar in out.glob("*/*.json"):
        record = json.loads(sidecar.read_text("utf-8"))
        assert sha256_file(out / record["image"]["path"]) == record["image"]["sha256"], sidecar
    for job in jobs or ():
        record = json.loads((out / job.sidecar_relpath).read_text("utf-8"))
        assert record["job_key"] == job.key, job.sidecar_relpath
        assert sha256_file(out / job.image_relpath) == record["image"]["sha256"], job.image_relpath


class NotesKept:
    """A progress object for ``idcli.render(progress=...)`` that keeps the notes a render gives."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def start(self, total: int, already_done: int) -> None: ...
    def advance(self, outcome: JobOutcome) -> None: ...
    def note(self, text: str) -> None:
        self.notes.append(text)
    def stop(self) -> None: ...


class StoppedAfterFirst:
    """A progress object whose first committed image is followed by Ctrl-C, as an artist's at 2 a.m. (the image
    saver runs beside the render: under load every image of a small batch may be saved before the stop lands)."""

    def start(self, total: int, already_done: int) -> None: ...
    def advance(self, outcome: JobOutcome) -> None:
        raise KeyboardInterrupt
    def note(self, text: str) -> None: ...
    def stop(self) -> None: ...
