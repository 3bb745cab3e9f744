"""The morning after a long night's render (the night-run trial, 2026-12-02): a run stopped half way (Ctrl-C,
SIGTERM, a closed terminal, a kill) or ended with jobs failed left a folder whose ``verify`` said only "10 images
checked, 0 signed, 0 failed", exit 0, and whose ``review`` said "91 shots, 10 takes": nothing said that 93 takes of
the shot list were never rendered, nor the command that renders them. ``idcli status``, what she typed first, was no
command, with no word of where to look.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import SIGNAL_HOOK, StoppedAfterFirst, cli_env, journal_commits, render_on_cpu, sigint_as_in_a_terminal
from typer.testing import CliRunner

import idcli
from idcli.cli import app

SHOTS = """\
version: 1
project: harbour-night
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2}
characters:
  mara:
    selfies: [selfies/mara_1.jpg]
shots:
  - id: sc01_sh010
    prompt: "{mara} on the quay at night, rain"
  - id: sc01_sh020
    prompt: "the harbour wall, waves breaking"
    takes: 2
  - id: sc01_sh030
    prompt: "a lighthouse beam over black water"
"""


def _are(count: int) -> str:
    """The note's verb for a count of takes (a count of one "is", night-counts-tail)."""
    return "is" if count == 1 else "are"


def _interrupted_night(write_shotlist, tmp_path: Path, engine_factory) -> tuple[Path, Path]:
    shots = write_shotlist(SHOTS)
    out = tmp_path / "Prévis nuit" / "rendu 1"  # a folder name with a space and an accent, quoted in the command
    with pytest.raises(idcli.Interrupted):
        render_on_cpu(shots, out, engine_factory, batch_size=1, progress=StoppedAfterFirst())
    return shots, out


def test_verify_of_a_stopped_render_says_what_is_not_rendered_and_the_command_that_finishes(
        write_shotlist, tmp_path: Path, engine_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    shots, out = _interrupted_night(write_shotlist, tmp_path, engine_factory)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["verify", str(out)])
    assert result.exit_code == 0, result.output  # the images there are sound
    # the first image, and those of batches its stop still committed (the commit queue): a few, never all
    committed = len(list(out.glob("*/*_t*.png")))
    assert 1 <= committed < 4 and f"{committed} image" in result.stdout
    command = f"idcli render shots.yaml --out {shlex.quote(os.path.relpath(out))} --device cpu"
    assert (f"idcli: note: {4 - committed} of the 4 takes of shots.yaml {_are(4 - committed)} not rendered yet (its "
            f"last render was "
            f"stopped before it ended); to finish: {command}") in result.stderr
    # the command given is the one that finishes: after it, verify has nothing more to say
    report = render_on_cpu(shots, out, engine_factory)
    assert report.rendered == 4 - committed and report.count("skipped") == committed
    again = CliRunner().invoke(app, ["verify", str(out)])
    assert again.exit_code == 0 and "not rendered yet" not in again.output


def test_verify_json_names_the_unfinished_takes_and_review_says_it_too(
        write_shotlist, tmp_path: Path, engine_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    shots, out = _interrupted_night(write_shotlist, tmp_path, engine_factory)
    monkeypatch.chdir(tmp_path)
    document = json.loads(CliRunner().invoke(app, ["verify", str(out), "--json"]).stdout)
    assert document["ok"] is True
    unfinished = document["unfinished"]
    assert unfinished["takes"] == 4 and unfinished["stopped"] is True
    assert unfinished["shotlist"] == str(shots)
    on_disk = {f"{shot}_t{take}" for shot, take in [("sc01_sh010", 1), ("sc01_sh020", 1), ("sc01_sh020", 2),
                                                    ("sc01_sh030", 1)]
               if (out / shot / f"{shot}_t{take}.png").is_file()}
    assert unfinished["missing"] == 4 - len(on_disk) and not on_disk & set(unfinished["missing_takes"])
    assert unfinished["command"].startswith("idcli render shots.yaml --out ")
    review = CliRunner().invoke(app, ["review", str(out)])
    assert review.exit_code == 0, review.output
    assert f"{4 - len(on_disk)} of the 4 takes of shots.yaml {_are(4 - len(on_disk))} not rendered yet" in \
        review.stderr


def test_the_printed_command_run_as_printed_renders_only_what_the_stopped_render_left(
        write_shotlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The note's command once left out the render's options: pasted, it rendered this shot list with its own
    preset (sd15, no weights here: an error; else new keys, everything again) and other face models."""
    shots = write_shotlist(SHOTS.replace("{preset: tiny-sd}", "{preset: sd15}"), name="-night's shots.yaml")
    out = tmp_path / "-rendu 1" / "l'équipe"  # a leading "-", a space, a quote: each read back by the shell as is
    argv = ["render", str(shots), "--out", str(out), "--device", "cpu", "--batch-size", "1",
            "--preset", "tiny-sd", "--face-models", "synthetic", "--quiet"]
    # SIGTERM right after the second image's temporary is fsynced: a render stopped half way
    stopped = subprocess.run([sys.executable, "-c", SIGNAL_HOOK, ".png.", "2", "TERM", *argv], capture_output=True,
                             text=True, env=cli_env(), timeout=300, cwd=tmp_path, preexec_fn=sigint_as_in_a_terminal)
    assert stopped.returncode == 143, stopped.stderr
    monkeypatch.chdir(tmp_path)  # where she pastes it
    left = CliRunner().invoke(app, ["verify", str(out), "--json"])
    command = json.loads(left.stdout)["unfinished"]["command"]
    words = shlex.split(command)
    assert words[:3] == ["idcli", "render", "./-night's shots.yaml"] and "--quiet" not in words
    given = set(itertools.pairwise(words))
    assert {("--preset", "tiny-sd"), ("--face-models", "synthetic"), ("--device", "cpu")} <= given
    committed = len(list(out.glob("*/*_t*.png")))
    assert 1 <= committed < 4
    finished = subprocess.run([sys.executable, "-m", "idcli", *words[1:]], capture_output=True, text=True,
                              env=cli_env(), timeout=300, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.startswith(f"{4 - committed} rendered, {committed} skipped, ")
    assert sorted(journal_commits(out).values()) == [1] * 4  # nothing rendered twice


def test_a_run_that_ended_with_failed_jobs_is_told_apart_from_a_stopped_one(
        write_shotlist, tmp_path: Path, engine_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    shots = write_shotlist(SHOTS)
    out = tmp_path / "out"
    render_on_cpu(shots, out, engine_factory, only="sc01_sh010")  # a run that ended; two shots left for later
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["verify", str(out)])
    # not "3 of the 4 takes are not rendered yet": the run was asked for one shot, and did it (test_unfinished_counts)
    assert ("idcli: note: its last render rendered all it was asked for (--only sc01_sh010); 2 other shots of "
            "shots.yaml were not asked for in that render; to render them: idcli render shots.yaml --out out "
            "--device cpu") in result.stderr
    # the shot list edited since the run: the command renders what it holds now, and the note says so
    shots.write_text(SHOTS.replace("rain", "heavy rain"), "utf-8")
    edited = CliRunner().invoke(app, ["verify", str(out)])
    assert "shots.yaml was changed since that render" in edited.stderr


def test_a_render_stopped_by_a_full_disk_is_told_so_the_morning_after(
        write_shotlist, tmp_path: Path, engine_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    import idcli.store as store_module

    shots, out = write_shotlist(SHOTS), tmp_path / "out"
    real_fsync = os.fsync
    writes = {"n": 0}

    def fsync_until_full(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(out)):  # the output folder's writes only
            writes["n"] += 1
            if writes["n"] > 3:  # the second image's write finds the disk full
                raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    render_on_cpu(shots, out, engine_factory, dry_run=True)  # identities encoded now: count only output writes
    monkeypatch.setattr(store_module.os, "fsync", fsync_until_full)
    report = render_on_cpu(shots, out, engine_factory, batch_size=1)
    monkeypatch.setattr(store_module.os, "fsync", real_fsync)
    assert report.error and report.not_rendered and not report.failed
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["verify", str(out), "--json"])
    unfinished = json.loads(result.stdout)["unfinished"]
    assert unfinished["stopped"] is False and unfinished["not_rendered"] == report.not_rendered
    assert unfinished["failed"] == 0 and unfinished["error"].startswith("disk full while writing ")
    said = CliRunner().invoke(app, ["verify", str(out)]).stderr
    # not "ended with 3 failed": the takes were never reached, none is a broken shot
    assert (f"(its last render ended with {report.not_rendered} not rendered: the disk filled while writing "
            f"{out}") in said and " failed" not in said
    assert said.rstrip().endswith("); to finish: idcli render shots.yaml --out out --device cpu")


def test_a_folder_with_no_image_yet_says_how_to_finish_in_its_error(
        write_shotlist, tmp_path: Path, engine_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    shots, out = write_shotlist(SHOTS), tmp_path / "out"
    render_on_cpu(shots, out, engine_factory, only="sc01_sh010")
    for path in (out / "sc01_sh010").iterdir():  # as a render stopped before its first commit leaves it
        path.unlink()
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["verify", "out"])
    assert result.exit_code == 2
    assert ("out: no committed renders to check yet; 1 of the 1 take of shots.yaml its last render was asked for "
            "(--only sc01_sh010) is not rendered yet; to finish: idcli render shots.yaml --out out --device cpu "
            "--only sc01_sh010; 2 other shots of shots.yaml were not asked for in that render") in result.stderr


def test_plan_ends_with_its_jobs_by_state_and_the_command_that_finishes(
        write_shotlist, tmp_path: Path, engine_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    shots, out = write_shotlist(SHOTS), tmp_path / "out"
    render_on_cpu(shots, out, engine_factory, only="sc01_sh010")
    monkeypatch.chdir(tmp_path)
    planned = CliRunner().invoke(app, ["plan", "shots.yaml", "--out", "out", "--device", "cpu"])
    assert planned.exit_code == 0, planned.output
    assert planned.stdout.splitlines()[-1] == ("4 jobs: 3 new, 1 done; to finish: "
                                               "idcli render shots.yaml --out out --device cpu")
    render_on_cpu(shots, out, engine_factory)
    planned = CliRunner().invoke(app, ["plan", "shots.yaml", "--out", "out", "--device", "cpu"])
    assert planned.stdout.splitlines()[-1] == "4 jobs: 4 done; all done"


def test_a_finished_folder_gets_no_note(write_shotlist, tmp_path: Path, engine_factory) -> None:
    shots = write_shotlist(SHOTS)
    out = tmp_path / "out"
    render_on_cpu(shots, out, engine_factory)
    result = CliRunner().invoke(app, ["verify", str(out), "--json"])
    assert json.loads(result.stdout)["unfinished"] is None


@pytest.mark.parametrize("word, pointer", [
    ("status", "what a folder holds and lacks: idcli verify OUT (idcli plan FILE --out OUT: each job's state)"),
    ("resume", "idcli render FILE --out OUT again renders only what is not done"),
    ("continue", "idcli render FILE --out OUT again renders only what is not done"),
    ("finish", "idcli render FILE --out OUT again renders only what is not done"),
])
def test_the_commands_an_artist_types_the_morning_after_point_to_the_ones_that_do_it(word: str, pointer: str) -> None:
    done = subprocess.run([sys.executable, "-m", "idcli", word, "renders/x"], capture_output=True, text=True,
                          env=cli_env(), timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"idcli: error: {word}: no such command of idcli ({pointer})\n"


def test_a_library_renders_own_ray_backend_is_the_cluster_the_command_names(write_shotlist, tmp_path: Path,
                                                                              engine_factory) -> None:
    """``idcli.render(..., executor=RayBackend(address, workers))`` journaled ``ray_address`` and ``workers`` as the
    call's own arguments (None: the backend holds them), so the morning after's command said ``--executor ray``
    alone: pasted, it rendered on ``RAY_ADDRESS``'s cluster or a local Ray, not the one the night used
    (hostile-read-21, 2026-12-02)."""
    from idcli.executors.local import LocalExecutor
    from idcli.runtime import Runtime
    from idcli.unfinished import unfinished_takes

    class Backend:  # stands in for a RayBackend (run._backend takes any object with its methods)
        name, address, workers = "ray-like", "ray://farm-head:10001", 3

        def runtime(self, device: str, dtype: str) -> Any:
            return Runtime("cpu", "float32")

        def executor(self, model: Any, runtime: Any, adapter: Any, project: str) -> LocalExecutor:
            return LocalExecutor(engine_factory(model, runtime, adapter), "cpu")

        def close(self) -> None: ...

    shots = write_shotlist(SHOTS)
    out = tmp_path / "out"
    with pytest.raises(idcli.Interrupted):
        idcli.render(idcli.load_shotlist(shots), out, device="cpu", executor=Backend(),  # type: ignore[arg-type]
                     progress=StoppedAfterFirst(), qa=False, batch_size=1)
    note = unfinished_takes(out)
    assert note is not None
    words = shlex.split(note.command)
    assert words[words.index("--executor") + 1] == "ray"
    assert words[words.index("--ray-address") + 1] == "ray://farm-head:10001"
    assert words[words.index("--workers") + 1] == "3"


def test_the_commands_face_models_folder_is_the_one_the_render_used(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The face-model folder the command names is the one the render read, as idcli reads ``--face-models``
    (``face_models_folder``): a folder named ``synthetic`` in the current folder was printed ``--face-models
    synthetic``, the random test pack; ``~/faces`` (a library caller's, or a quoted one) was recorded under the
    current folder, ``CWD/~/faces``, so the command pasted from elsewhere named a folder that is not there
    (hostile-read-21, 2026-12-02)."""
    from idcli.identity.faces import face_models_folder
    from idcli.unfinished import finish_command, render_request

    def named(face_models: str, recorded_in: Path, pasted_in: Path) -> Path | None:
        monkeypatch.chdir(recorded_in)
        request = render_request(preset=None, device="cpu", dtype=None, face_models=face_models, executor="local",
                                 ray_address=None, workers=None, sign=None)
        monkeypatch.chdir(pasted_in)
        words = shlex.split(finish_command(Path("shots.yaml"), Path("out"), json.loads(json.dumps(request))))
        folder, _chosen = face_models_folder(words[words.index("--face-models") + 1])
        return None if folder is None else (pasted_in / folder).resolve()

    home, night, morning = tmp_path / "home", tmp_path / "night", tmp_path / "morning"
    for folder in (home / "faces", night / "synthetic", morning):
        folder.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    assert named("synthetic", night, night) is None  # the word: the test pack, as given
    assert named(str(night / "synthetic"), night, night) == (night / "synthetic").resolve()
    assert named("~/faces", night, morning) == (home / "faces").resolve()
