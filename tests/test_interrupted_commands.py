"""Interrupted and failing runs of the commands added after the render: review, select, export, qa and
``render --retake-flagged``. ``kill -9``, Ctrl-C and SIGTERM land at a chosen write (a hook in the child
process signals itself right after the Nth fsync of a temporary); the same command run again must find
nothing partial, nothing lost and no temporary left behind, and every stop must end with its documented
exit code (and, with ``--json``, its one JSON document).

The render's own kill tests are test_faults.py and test_cli.py; docs/reliability.md lists them all.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import (
    SIGNAL_HOOK,
    TMP_SUFFIX,
    assert_nothing_partial,
    cli_env,
    kill_restore_after,
    sigint_as_in_a_terminal,
)
from review_helpers import render_review_run

import idcli
from idcli.store import OutputStore

pytest.importorskip("insightface", exc_type=ImportError)
pytestmark = [pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning"),
              pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="the hook names descriptors via /proc")]


def _run(*args: str, hook: tuple[str, int, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``idcli ARGS`` as a process (with the signal hook when given, SIGINT as from a terminal), finished."""
    return subprocess.run(_argv(args, hook), capture_output=True, text=True, env=cli_env(), timeout=120,
                          preexec_fn=sigint_as_in_a_terminal)


def _argv(args: tuple[str, ...], hook: tuple[str, int, str] | None) -> list[str]:
    if hook is None:
        return [sys.executable, "-m", "idcli", *args]
    needle, nth, sig = hook
    return [sys.executable, "-c", SIGNAL_HOOK, needle, str(nth), sig, *args]


def _temporaries(*folders: Path) -> list[str]:
    return sorted({str(p) for folder in folders for p in folder.rglob(f"*{TMP_SUFFIX}")})


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory, synthetic_face_models: Path) -> Path:
    """An output folder of review_helpers.SHOTS with QA in every sidecar with a cast (rendered once)."""
    return render_review_run(tmp_path_factory.mktemp("interrupted"), synthetic_face_models)


@pytest.fixture
def out(rendered: Path, tmp_path: Path) -> Path:
    """A copy of the rendered folder for one test, on a path with a space and a non-ASCII letter."""
    target = tmp_path / "a folder é" / "out"
    shutil.copytree(rendered, target)
    return target


# -- kill -9, then the same command again -------------------------------------------------------------


@pytest.mark.parametrize("command", ["review", "select", "export"])
def test_kill_9_mid_write_then_the_same_command_leaves_nothing_behind(out: Path, tmp_path: Path,
                                                                       command: str) -> None:
    otio = tmp_path / "edit room" / "cut.otio"
    args, needle, final = {
        "review": (("review", str(out)), "contact-sheet", out / "review" / "contact-sheet.png"),
        "select": (("select", str(out), "sh010=2"), "selects.json", out / "selects.json"),
        "export": (("export", str(out), "--otio", str(otio)), "cut.otio", otio),
    }[command]
    killed = _run(*args, hook=(needle, 1, "KILL"))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = _temporaries(out, otio.parent if otio.parent.exists() else out)
    assert len(left) == 1 and not final.exists(), left  # written and fsynced, never renamed
    again = _run(*args)
    assert again.returncode == 0, again.stderr
    assert final.is_file()
    # The killed writer's temporary is gone once the command has run again (it was never removed before).
    assert _temporaries(out, otio.parent if otio.parent.exists() else out) == []
    if command == "select":
        assert json.loads(final.read_text("utf-8"))["selects"]["sh010"]["take"] == 2
    assert_nothing_partial(out)


def test_a_review_killed_among_thumbnails_is_cleaned_by_the_next_review(out: Path) -> None:
    killed = _run("review", str(out), hook=("thumbs", 2, "KILL"))
    assert killed.returncode == -signal.SIGKILL
    thumbs = out / "review" / "thumbs"
    assert len(_temporaries(thumbs)) == 1 and len(list(thumbs.glob("*.jpg"))) == 1
    again = _run("review", str(out))
    assert again.returncode == 0, again.stderr
    assert "6 new thumbnails" in again.stdout, again.stdout  # the one committed thumbnail is not made again
    assert _temporaries(out) == []


# -- Ctrl-C and SIGTERM --------------------------------------------------------------------------------


@pytest.mark.parametrize(("sig", "code"), [("INT", 130), ("TERM", 143)])
def test_qa_stopped_by_a_signal_says_so_in_its_one_json_document(out: Path, sig: str, code: int) -> None:
    before = {r["sidecar"]["path"]: r for r in idcli.read_results(out)}
    # Only writes inside the output folder count: the hash cache in the idcli home is a '.json' temporary too.
    stopped = _run("qa", str(out), "--qa-low-identity", "0.9", "--json", hook=(f"{out}{os.sep}", 2, sig))
    assert stopped.returncode == code, stopped.stderr
    document = json.loads(stopped.stdout)  # exactly one document, as on success and every other failure
    assert document["ok"] is False and document["exit_code"] == code
    assert document["error"]["type"] == "Interrupted" and f"SIG{sig}" in document["error"]["message"]
    assert "interrupted" in stopped.stderr and "Traceback" not in stopped.stderr
    assert _temporaries(out) == []  # the write in flight was removed, not left for a later run
    assert_nothing_partial(out)
    after = {r["sidecar"]["path"]: r for r in idcli.read_results(out)}
    rewritten = [p for p in after if after[p].get("qa") != before[p].get("qa")]
    assert len(rewritten) == 1  # the first sidecar committed; the second's write was stopped
    again = _run("qa", str(out), "--qa-low-identity", "0.9", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["checked"] == 5, again.stderr


@pytest.mark.parametrize("command", [("review",), ("select", "sh010=1"), ("verify", "--json"),
                                     ("select", "sh010=1", "--json")])
def test_ctrl_c_in_a_review_command_prints_interrupted_and_exits_130(out: Path, command: tuple[str, ...]) -> None:
    """Typer turned a KeyboardInterrupt into a silent exit 130: no 'interrupted' line, no --json document."""
    script = ("import sys, idcli.cli.output as o; real = o.guarded\n"
              "def guarded(fn, as_json=False, **kwargs):\n"
              "    def body():\n"
              "        raise KeyboardInterrupt\n"
              "    return real(body, as_json, **kwargs)\n"
              "o.guarded = guarded\n"
              "import idcli.cli.review_commands, idcli.cli.provenance_commands as p, idcli.cli.review_commands as r\n"
              "p.guarded = r.guarded = guarded\n"
              "sys.argv = ['idcli', *sys.argv[1:]]\n"
              "from idcli.cli import main\nmain()\n")
    done = subprocess.run([sys.executable, "-c", script, command[0], str(out), *command[1:]], capture_output=True,
                          text=True, env=cli_env(), timeout=60)
    assert done.returncode == 130, done.stderr
    assert "interrupted" in done.stderr and "Traceback" not in done.stderr
    if "--json" in command:
        document = json.loads(done.stdout)
        assert document["exit_code"] == 130 and document["error"]["type"] == "Interrupted"


# -- a render starting while review writes -------------------------------------------------------------


def test_a_render_starting_while_review_writes_leaves_its_files_alone(out: Path) -> None:
    """A render's start removes temporaries left by killed runs; a review writing at that moment is alive."""
    review = subprocess.Popen(_argv(("review", str(out)), ("index.html", 1, "STOP")), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=cli_env())
    try:
        deadline = time.monotonic() + 60
        while _process_state(review.pid) != "T":  # frozen with index.html written, not yet renamed
            assert review.poll() is None, review.communicate()
            assert time.monotonic() < deadline, "the review never reached its write"
            time.sleep(0.02)
        with OutputStore(out).session():  # what every render, qa and restore does first
            pass
        os.kill(review.pid, signal.SIGCONT)
        _, stderr = review.communicate(timeout=60)
    finally:
        if review.poll() is None:
            review.kill()
    assert review.returncode == 0, stderr
    assert (out / "review" / "index.html").is_file() and _temporaries(out) == []


def _process_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


# -- render --retake-flagged stopped in a later round --------------------------------------------------

RETAKE_SHOTS = """\
version: 1
project: retake-stop
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 1, guidance: 1.0}
characters:
  mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg]}
shots:
  - {id: face, prompt: "{mara} on a street", takes: 1}
  - {id: land, prompt: "a lighthouse", takes: 1}
"""


# A negative prompt beside guidance 1: a plan warning in every round.
WARNED_RETAKE_SHOTS = RETAKE_SHOTS.replace('"a lighthouse", takes: 1',
                                           '"a lighthouse", negative_prompt: "blurry", takes: 1')


def test_retake_flagged_stopped_in_a_later_round_reports_every_round(write_shotlist, tmp_path: Path,
                                                                   engine_factory) -> None:
    """``render --retake-flagged --json`` stopped in round two said `rendered: 0` (its report was the last
    round's, where round one's images are `skipped`) though the run had rendered them."""
    from idcli.errors import Interrupted
    from idcli.review.retake import render_with_retakes

    def stopping(identity, runtime, adapter=None):
        engine = engine_factory(identity, runtime, adapter)
        real = engine.render

        def render(requests, **kwargs):
            if len(engine_factory.calls) == 2:  # round one rendered face t1 and land t1 (noise: flagged)
                raise KeyboardInterrupt  # Ctrl-C while round two renders face t2
            return real(requests, **kwargs)

        engine.render = render
        return engine

    out = tmp_path / "out"
    with pytest.raises(Interrupted) as stopped:
        render_with_retakes(idcli.load_shotlist(write_shotlist(RETAKE_SHOTS)), out, max_takes=3, device="cpu",
                            batch_size=1, engine_factory=stopping)
    report = stopped.value.report
    assert {(o.shot_id, o.take): o.status for o in report.jobs} == {
        ("face", 1): "rendered", ("land", 1): "rendered"}  # face t2, stopped, stays pending (not reported)
    assert report.as_dict()["counts"]["rendered"] == 2 and len(report.batch_sizes) == 2
    # Nothing lost or rendered twice: the next run renders face t2 (and t3) only.
    again = render_with_retakes(idcli.load_shotlist(tmp_path / "shots.yaml"), out, max_takes=3, device="cpu",
                                batch_size=1, engine_factory=engine_factory)
    assert engine_factory.calls == [1, 1, 1, 1] and again.rendered == 2 and again.count("skipped") == 2


# -- reproduce --out -------------------------------------------------------------------------------------


@pytest.mark.slow  # two reproduce processes, each building the model: ~50 s on 2 shared cores
def test_reproduce_killed_mid_write_leaves_nothing_after_the_next_one(write_shotlist, tmp_path: Path,
                                                                     engine_factory) -> None:
    shots = write_shotlist("""\
        version: 1
        project: repro-stop
        model: {preset: tiny-sd}
        defaults: {size: 64x64, steps: 1, guidance: 1.0}
        shots:
          - {id: land, prompt: "a lighthouse", takes: 1}
        """)
    out, copies = tmp_path / "out", tmp_path / "re render é"
    assert idcli.render(idcli.load_shotlist(shots), out, device="cpu", engine_factory=engine_factory).rendered == 1
    args = ("reproduce", str(out / "land" / "land_t1.png"), "--out", str(copies), "--device", "cpu")
    killed = _run(*args, hook=("re render", 1, "KILL"))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(_temporaries(copies)) == 1 and not (copies / "land_t1.png").exists()
    again = _run(*args)
    assert again.returncode == 0 and "identical" in again.stdout, again.stdout + again.stderr
    assert _temporaries(copies) == [] and (copies / "land_t1.png").is_file()


def test_retake_flagged_stopped_by_sigterm_between_rounds_exits_143(write_shotlist, tmp_path: Path, engine_factory,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A SIGTERM landing while the sidecars of a round were read ended as Ctrl-C (130), with no report."""
    import idcli.review.retake as retake
    from idcli.errors import Interrupted
    from idcli.interrupts import terminate_as_interrupt

    def signalled(report):
        os.kill(os.getpid(), signal.SIGTERM)  # the handler raises KeyboardInterrupt right here
        time.sleep(5)
        raise AssertionError("SIGTERM did not stop the run")

    monkeypatch.setattr(retake, "flagged_shots", signalled)
    stopped: BaseException | None = None
    try:
        with terminate_as_interrupt():  # what `idcli render` runs inside
            retake.render_with_retakes(idcli.load_shotlist(write_shotlist(RETAKE_SHOTS)), tmp_path / "out",
                                       max_takes=3, device="cpu", batch_size=1, engine_factory=engine_factory)
    except BaseException as exc:  # a bare KeyboardInterrupt too (it was one), which pytest would take as its own
        stopped = exc
    assert isinstance(stopped, Interrupted), repr(stopped)
    assert stopped.exit_code == 143 and "SIGTERM" in str(stopped)
    assert stopped.report is not None and stopped.report.rendered == 2


class _CtrlCAtWarning:
    """A terminal's progress whose Nth ``warning:`` line is being printed when Ctrl-C comes (a real SIGINT)."""

    def __init__(self, nth: int) -> None:
        self.nth, self.seen = nth, 0

    def start(self, total: int, already_done: int) -> None: ...
    def advance(self, outcome: object) -> None: ...
    def stop(self) -> None: ...

    def note(self, text: str) -> None:
        if text.startswith("warning: "):
            self.seen += 1
            if self.seen == self.nth:
                os.kill(os.getpid(), signal.SIGINT)  # Python raises KeyboardInterrupt right here
                time.sleep(5)
                raise AssertionError("SIGINT did not stop the run")


def _stopped(call) -> BaseException | None:
    try:
        call()
    except BaseException as exc:  # a bare KeyboardInterrupt too, which pytest would take as its own
        return exc
    return None


def test_ctrl_c_while_a_plan_warning_prints_stops_the_render_as_interrupted(write_shotlist, tmp_path: Path,
                                                                           engine_factory) -> None:
    """``render`` printed the plan's warnings outside its Ctrl-C guard: a Ctrl-C then escaped ``idcli.render`` as a
    bare ``KeyboardInterrupt`` (a SIGTERM as exit 130, not 143; ``--json`` without its document)."""
    from idcli.errors import Interrupted

    shots = write_shotlist(WARNED_RETAKE_SHOTS)
    stopped = _stopped(lambda: idcli.render(idcli.load_shotlist(shots), tmp_path / "out", device="cpu",
                                            batch_size=1, engine_factory=engine_factory, progress=_CtrlCAtWarning(1)))
    assert isinstance(stopped, Interrupted), repr(stopped)
    assert stopped.exit_code == 130 and engine_factory.calls == []


def test_retake_flagged_stopped_while_a_later_round_plans_reports_the_earlier_rounds(write_shotlist, tmp_path: Path,
                                                                                    engine_factory) -> None:
    """A Ctrl-C while round two planned (here: printed the plan's warning) stopped with no report: round one's
    renders went unreported (``render --retake-flagged --json`` said nothing of them)."""
    from idcli.errors import Interrupted
    from idcli.review.retake import render_with_retakes

    shots = write_shotlist(WARNED_RETAKE_SHOTS)
    stopped = _stopped(lambda: render_with_retakes(idcli.load_shotlist(shots), tmp_path / "out", max_takes=3,
                                                   device="cpu", batch_size=1, engine_factory=engine_factory,
                                                   progress=_CtrlCAtWarning(2)))
    assert isinstance(stopped, Interrupted), repr(stopped)
    assert stopped.report is not None, "round one's renders went unreported"
    assert {(o.shot_id, o.take): o.status for o in stopped.report.jobs} == {
        ("face", 1): "rendered", ("land", 1): "rendered"}


# -- restore killed between its renames ----------------------------------------------------------------

RESTORE_SHOTS = """\
version: 1
project: restore-stop
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 1, guidance: 1.0}
shots:
  - {id: a, prompt: "a lighthouse", takes: 1}
"""


def _liked_and_current(write_shotlist, out: Path, engine_factory) -> tuple[str, str]:
    """Render a_t1, edit the prompt, render again: (the liked take's key label, the current one's)."""
    shots = write_shotlist(RESTORE_SHOTS)
    idcli.render(idcli.load_shotlist(shots), out, device="cpu", engine_factory=engine_factory)
    liked = _key_at_a_t1(out)
    shots.write_text(RESTORE_SHOTS.replace("a lighthouse", "a red lighthouse"))
    idcli.render(idcli.load_shotlist(shots), out, device="cpu", engine_factory=engine_factory)
    current = _key_at_a_t1(out)
    assert liked != current
    return liked, current


def _key_at_a_t1(out: Path) -> str:
    """The key label (first 12 hex digits) of the take at a_t1's final paths."""
    return json.loads((out / "a" / "a_t1.json").read_text())["job_key"].split(":")[1][:12]


def _journal_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / ".idcli" / "journal.jsonl").read_text().splitlines()]


def _restore(out: Path, *options: str) -> dict:
    from typer.testing import CliRunner

    from idcli.cli import app

    done = CliRunner().invoke(app, ["restore", str(out), "a_t1", *options, "--json"])
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def _assert_whole(out: Path) -> None:
    """Every image at a final path has its sidecar; every kept version is an image with its sidecar."""
    assert_nothing_partial(out, temporaries_allowed=True)
    assert (out / "a" / "a_t1.png").is_file() and (out / "a" / "a_t1.json").is_file()
    kept = sorted(p.name for p in (out / ".idcli" / "superseded" / "a").iterdir())
    stems = {name.rsplit(".", 1)[0] for name in kept}
    assert kept == sorted(f"{stem}.{ext}" for stem in stems for ext in ("json", "png")), kept


def _kill_restore_after(out: Path, renames: int, *options: str) -> None:
    """``idcli restore OUT a_t1 OPTIONS`` killed with SIGKILL right after its ``renames``-th rename."""
    kill_restore_after(out, "a_t1", renames, *options)


# The restore's renames: the current image aside, its sidecar aside, the kept image back, the kept sidecar back.
_RESTORE_KILL_POINTS = {"current-image-aside": 1, "current-take-aside": 2, "kept-image-back": 3,
                        "kept-sidecar-back": 4}


@pytest.mark.parametrize("renames", _RESTORE_KILL_POINTS.values(), ids=_RESTORE_KILL_POINTS.keys())
def test_restore_killed_between_its_renames_is_finished_by_the_same_command(write_shotlist, tmp_path: Path,
                                                                             engine_factory, renames: int) -> None:
    """Killed after the current image moved aside, after the whole current take did, after the kept image moved
    back, or after the last rename (before its `restore` line): the rerun put back the displaced take (or its image
    without its sidecar), or moved the half-restored image aside as a_t1.KEY.2.png away from its a_t1.KEY.json,
    where --key could not tell them; after the last rename it took the restore for a new one and put back the take
    the killed run had just displaced, undoing it. The rerun names where the displaced take is kept, and journals
    it, whichever rename the kill came after (it was null after the 2nd and 3rd: the killed run's `restore-begin`
    line now names it before any rename)."""
    out = tmp_path / "out"
    liked, current = _liked_and_current(write_shotlist, out, engine_factory)
    _kill_restore_after(out, renames)
    result = _restore(out)  # the same command again
    assert result["name"] == f"a_t1.{liked}"  # the restore the killed run began, finished
    assert _key_at_a_t1(out) == liked
    assert sorted(p.name for p in (out / ".idcli" / "superseded" / "a").iterdir()) == [
        f"a_t1.{current}.json", f"a_t1.{current}.png"]
    _assert_whole(out)
    # the journal names the take moved aside as restore does (its line orders the kept versions; it was left null)
    journal = _journal_of(out)
    assert [e for e in journal if e["event"] == "restore"][-1].get("moved_aside") == result["moved_aside"]
    assert result["moved_aside"] == f"a_t1.{current}"


@pytest.mark.parametrize("renames", [2, 3, 4], ids=["current-take-aside", "kept-image-back", "kept-sidecar-back"])
def test_restore_with_key_killed_between_its_renames_is_finished_by_the_same_command(
        write_shotlist, tmp_path: Path, engine_factory, renames: int) -> None:
    """``restore --key K`` killed after the whole current take moved aside, after the kept image moved back, or after
    the last rename: the same command again says where the displaced take is kept (it said nothing), and after the
    kept image moved back, or the last rename, it found the version asked for no longer kept and exited 2."""
    out = tmp_path / "out"
    liked, current = _liked_and_current(write_shotlist, out, engine_factory)
    _kill_restore_after(out, renames, "--key", liked)
    result = _restore(out, "--key", liked)
    assert result["name"] == f"a_t1.{liked}" and result["moved_aside"] == f"a_t1.{current}"
    assert _key_at_a_t1(out) == liked
    _assert_whole(out)
    journal = _journal_of(out)
    assert [e for e in journal if e["event"] == "restore"][-1]["moved_aside"] == f"a_t1.{current}"


def test_restore_killed_after_its_last_rename_by_an_earlier_idcli_is_finished_by_its_key(
        write_shotlist, tmp_path: Path, engine_factory) -> None:
    """A `restore-begin` line written before 2026-12-01 names only the version (no `aside`, no `sha256`): after a
    kill following the last rename, the take at the final path is told to be that version by its key, and the rerun
    finishes the restore instead of putting back the take it displaced."""
    out = tmp_path / "out"
    liked, current = _liked_and_current(write_shotlist, out, engine_factory)
    _kill_restore_after(out, 4)
    journal = out / ".idcli" / "journal.jsonl"
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    assert lines[-1]["event"] == "restore-begin" and lines[-1]["sha256"]
    lines[-1] = {name: value for name, value in lines[-1].items() if name not in ("aside", "sha256")}
    journal.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = _restore(out)
    assert result["name"] == f"a_t1.{liked}" and result["moved_aside"] is None  # the old line did not name it
    assert _key_at_a_t1(out) == liked
    assert sorted(p.name for p in (out / ".idcli" / "superseded" / "a").iterdir()) == [
        f"a_t1.{current}.json", f"a_t1.{current}.png"]
    _assert_whole(out)


@pytest.mark.parametrize("renames", [3, 4], ids=["kept-image-back", "kept-sidecar-back"])
def test_restore_of_another_key_after_a_killed_restore_finishes_it_first(write_shotlist, tmp_path: Path,
                                                                         engine_factory, renames: int) -> None:
    """``restore --key OLDEST`` killed after the kept image moved back, or after its last rename, then ``restore
    --key MIDDLE``: the killed restore is finished first (its `restore` line, naming where the take it displaced is
    kept), then the middle version is put back, the oldest moving aside in its place; nothing is lost."""
    out = tmp_path / "out"
    oldest, middle = _liked_and_current(write_shotlist, out, engine_factory)
    shots = write_shotlist(RESTORE_SHOTS.replace("a lighthouse", "a blue lighthouse"))
    idcli.render(idcli.load_shotlist(shots), out, device="cpu", engine_factory=engine_factory)
    newest = _key_at_a_t1(out)
    assert len({oldest, middle, newest}) == 3
    _kill_restore_after(out, renames, "--key", oldest)
    result = _restore(out, "--key", middle)
    assert result["name"] == f"a_t1.{middle}" and result["moved_aside"] == f"a_t1.{oldest}"
    assert _key_at_a_t1(out) == middle
    assert sorted(p.name for p in (out / ".idcli" / "superseded" / "a").iterdir()) == sorted(
        f"a_t1.{key}.{ext}" for key in (oldest, newest) for ext in ("json", "png"))
    _assert_whole(out)
    journal = _journal_of(out)
    finished, restored = [e for e in journal if e["event"] == "restore"][-2:]
    assert (finished["from"], finished["moved_aside"]) == (f"a_t1.{oldest}", f"a_t1.{newest}")
    assert (restored["from"], restored["moved_aside"]) == (f"a_t1.{middle}", f"a_t1.{oldest}")


def test_read_results_leaves_out_a_take_a_killed_supersede_left_without_its_image(out: Path) -> None:
    """A render killed between moving a take's image aside and its sidecar (this idcli's order, and earlier
    ones') leaves the sidecar at its final path without its image: no committed take, so read_results does
    not yield it (a script opening ``image.abs_path`` found no file), as review and export skip it."""
    record = next(idcli.read_results(out))
    shot, take, key = record["shot_id"], record["take"], record["job_key"]
    kept = out / ".idcli" / "superseded" / shot
    kept.mkdir(parents=True, exist_ok=True)
    os.rename(record["image"]["abs_path"], kept / f"{shot}_t{take}.{key.split(':', 1)[1][:12]}.png")
    assert Path(record["sidecar"]["abs_path"]).is_file()
    left = [(r["shot_id"], r["take"]) for r in idcli.read_results(out, include_orphans=True)]
    assert (shot, take) not in left and left, left
    assert all(Path(r["image"]["abs_path"]).is_file() for r in idcli.read_results(out, include_orphans=True))


# -- a render into the take of a killed restore, then the restore again -------------------------------------------

REUSE_SHOTS = """\
version: 1
project: restore-stop
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 1, guidance: 1.0}
shots:
  - {id: a, prompt: "a lighthouse", seeds: [7]}
  - {id: b, prompt: "a blue lighthouse", seeds: [7]}
"""


class _Killed(BaseException):
    """A render stopped at a chosen point of committing a reused take, as by a kill (nothing after it runs)."""


@pytest.mark.parametrize("render", ["finished", "killed before its commit line", "killed before its image"])
def test_a_take_reused_into_after_a_killed_restore_overtakes_that_restore(write_shotlist, tmp_path: Path,
                                                                           engine_factory, render: str,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A restore killed with the current take moved aside (the final paths empty), then a render that reuses an image
    into that take (its key found at b_t1), then the restore again: the rerun does what a fresh restore does — puts
    back the most recently replaced version, moving the reused take aside — instead of finishing the killed restore
    over it. A render killed after the reused take's files, before its `commit` line, left its `reuse-begin` line
    the take's newest, which did not end the killed restore (`restore-begin`): the rerun put back the version the
    killed run had chosen, as if no render had come between (a finished reuse's `commit` line always ended it).
    Killed before its image, the render wrote nothing into the take: the rerun finishes the killed restore."""
    from idcli.store import OutputStore

    shots, out = write_shotlist(REUSE_SHOTS), tmp_path / "out"
    idcli.render(idcli.load_shotlist(shots), out, device="cpu", engine_factory=engine_factory)
    liked = _key_at_a_t1(out)
    shots.write_text(REUSE_SHOTS.replace('"a lighthouse"', '"a red lighthouse"'))
    idcli.render(idcli.load_shotlist(shots), out, device="cpu", engine_factory=engine_factory)
    current = _key_at_a_t1(out)
    _kill_restore_after(out, 2)  # the current take moved aside, whole; nothing at a_t1's final paths
    assert not (out / "a" / "a_t1.png").exists() and not (out / "a" / "a_t1.json").exists()

    shots.write_text(REUSE_SHOTS.replace('"a lighthouse"', '"a blue lighthouse"'))  # a_t1 is now b_t1's job
    if render == "finished":
        report = idcli.render(idcli.load_shotlist(shots), out, device="cpu", engine_factory=engine_factory)
        assert {(j.shot_id, j.status) for j in report.jobs} == {("a", "reused"), ("b", "skipped")}
    else:
        real_journal, real_commit = OutputStore.journal, OutputStore.commit

        def journal(store: OutputStore, entry: dict) -> None:
            if render == "killed before its commit line" and entry.get("event") == "commit" and entry["shot_id"] == "a":
                raise _Killed
            real_journal(store, entry)

        def commit(store: OutputStore, job, *args, **kwargs):
            if render == "killed before its image" and job.shot_id == "a":
                raise _Killed
            return real_commit(store, job, *args, **kwargs)

        monkeypatch.setattr(OutputStore, "journal", journal)
        monkeypatch.setattr(OutputStore, "commit", commit)
        with pytest.raises(_Killed):
            idcli.render(idcli.load_shotlist(shots), out, device="cpu", engine_factory=engine_factory)
        monkeypatch.undo()
        assert [e["event"] for e in _journal_of(out) if e.get("shot_id") == "a"][-2:] == ["restore-begin",
                                                                                          "reuse-begin"]
    if render == "killed before its image":
        result = _restore(out)  # the killed restore, finished: put back what it chose, naming where it moved the take
        assert (result["name"], result["moved_aside"]) == (f"a_t1.{liked}", f"a_t1.{current}")
        assert _key_at_a_t1(out) == liked
        _assert_whole(out)
        return
    reused = _key_at_a_t1(out)
    assert reused not in (liked, current)

    result = _restore(out)  # the restore again, after the render
    assert result["name"] == f"a_t1.{current}" and result["moved_aside"] == f"a_t1.{reused}"
    assert _key_at_a_t1(out) == current
    assert sorted(p.name for p in (out / ".idcli" / "superseded" / "a").iterdir()) == sorted(
        f"a_t1.{key}.{ext}" for key in (liked, reused) for ext in ("json", "png"))
    _assert_whole(out)
    restored = [e for e in _journal_of(out) if e["event"] == "restore"][-1]
    assert (restored["from"], restored["moved_aside"]) == (f"a_t1.{current}", f"a_t1.{reused}")
