"""The render's own counts against the morning note's (night-counts-3, 2026-12-02): takes blocked by a character's
unusable selfie were "failed" in the summary line ``idcli render`` ends with, while ``verify``, ``review`` and the
morning note count them apart, as blocked; and a render's real failures beside blocked takes went unsaid in the note.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from harbour_night import SHOTS
from typer.testing import CliRunner

import idcli
from idcli.cli import app

BLOCKED = ["sc01_sh030_t1", "sc01_sh030_t2"]


@pytest.fixture
def shots(write_shotlist, selfies: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (300, 300), (128, 128, 128)).save(selfies / "ana.jpg", format="JPEG")  # no face in it
    return write_shotlist(SHOTS)


@pytest.fixture
def beam_fails(monkeypatch: pytest.MonkeyPatch, tiny_engines) -> None:
    """The CLI renders with the session's tiny engine, whose every batch holding the lighthouse beam's prompt fails
    (a numerical failure: a failed take, which a render can finish, unlike a blocked one)."""
    import idcli.run as run_module

    class BeamFails:
        def __init__(self, adapter: Any) -> None:
            self.engine = tiny_engines("tiny-sd", adapter)
            self.adapter_record = self.engine.adapter_record

        def render(self, requests: list[Any], **kwargs: Any) -> list[Any]:
            if any("beam" in request.prompt for request in requests):
                raise RuntimeError("NaN in latents")
            return self.engine.render(requests, **kwargs)

        def suggest_batch_size(self, request: Any) -> int:
            return 1

    monkeypatch.setattr(run_module, "default_engine", lambda model, runtime, adapter: BeamFails(adapter))


def _render(shots: Path, *extra: str) -> Any:
    return CliRunner().invoke(app, ["render", str(shots), "--out", "out", "--device", "cpu", "-b", "1", *extra])


def test_the_render_summary_says_blocked_takes_apart_from_failed_ones_as_verify_does(
        shots: Path, tmp_path: Path, beam_fails: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    dry = _render(shots, "--dry-run")
    assert dry.exit_code == idcli.EXIT_JOBS_FAILED, dry.output
    # the dry run's line named neither: its 5 to render and 0 done left two takes of the 7 unsaid
    assert "dry run: 5 to render, 0 done, 2 blocked → out" in dry.stdout, dry.stdout

    result = _render(shots)
    # exit 1 as docs/file-formats.md says: "a character whose selfies cannot be encoded" fails jobs
    assert result.exit_code == idcli.EXIT_JOBS_FAILED, result.output
    # it said "4 rendered, 0 skipped, 0 recovered, 3 failed": the two blocked read as broken renders to try again
    assert "4 rendered, 0 skipped, 0 recovered, 1 failed, 2 blocked in " in result.stdout, result.stdout
    # the morning note's words: what blocks them, what to replace, and that a render before that blocks them again
    assert ("; 2 blocked: character 'ana' cannot be used: selfies/ana.jpg: no face found; use a photo where the face "
            "is clearly visible — replace characters.ana.selfies[0] (shots.yaml:9:15); a render before that blocks "
            "them again") in result.stdout, result.stdout
    note = CliRunner().invoke(app, ["verify", "out"]).stderr
    assert ("2 blocked: character 'ana' cannot be used: selfies/ana.jpg: no face found; use a photo where the face is "
            "clearly visible — replace characters.ana.selfies[0] (shots.yaml:9:15); a render before that blocks them "
            "again") in note, note

    document = json.loads(_render(shots, "--json").stdout)
    assert document["exit_code"] == idcli.EXIT_JOBS_FAILED
    # additive: counts.failed keeps its meaning (the blocked among them), counts.blocked says how many of them
    assert (document["counts"]["failed"], document["counts"]["blocked"], document["counts"]["skipped"]) == (3, 2, 4)
    assert [(b["character"], b["takes"], b["field"], b["line"]) for b in document["blocked"]] == [
        ("ana", BLOCKED, "characters.ana.selfies[0]", 9)]
    verified = json.loads(CliRunner().invoke(app, ["verify", "out", "--json"]).stdout)["unfinished"]
    assert document["blocked"] == verified["blocked"]  # the same object as verify's, key for key


def test_the_morning_note_says_a_renders_failed_takes_beside_its_blocked_ones(
        shots: Path, tmp_path: Path, beam_fails: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run-end line's ``failed`` never counted the blocked takes (they are reported after the session ends), yet
    the note took them off it: 1 failed less 2 blocked said nothing of the failed take."""
    monkeypatch.chdir(tmp_path)
    assert _render(shots).exit_code == idcli.EXIT_JOBS_FAILED
    note = CliRunner().invoke(app, ["verify", "out"]).stderr
    assert ("idcli: note: 1 of the 7 takes of shots.yaml is not rendered yet (its last render ended with 1 failed); "
            "to finish: idcli render shots.yaml --out out --device cpu; 2 blocked: ") in note, note
    verified = json.loads(CliRunner().invoke(app, ["verify", "out", "--json"]).stdout)["unfinished"]
    assert (verified["failed"], verified["left_takes"]) == (1, ["sc01_sh040_t1"])
