"""Takes added by ``render --retake-flagged`` stay part of the shot's plan: a later plain render of the
same shot list keeps them in the run manifest, so every reader of the folder (read_results, plan, the
review commands) agrees they are live, not orphans (docs/review.md)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import idcli
from idcli.cli import app
from idcli.review.retake import render_with_retakes
from idcli.review.selects import read_selects, select
from idcli.store import OutputStore

pytest.importorskip("insightface", exc_type=ImportError)
pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")

SHOTS = """\
    version: 1
    project: retake
    model: {preset: tiny-sd}
    defaults: {size: 64x64, steps: 1, guidance: 1.0}
    characters:
      mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg]}
    shots:
      - {id: face, prompt: "{mara} on a street", takes: 1}
      - {id: land, prompt: "a lighthouse", takes: 1}
    """
ALL = [("face", 1), ("face", 2), ("face", 3), ("land", 1)]


def _live(out, **kwargs) -> list[tuple[str, int]]:
    return sorted((r["shot_id"], r["take"]) for r in idcli.read_results(out, **kwargs))


def test_a_plain_render_after_retakes_keeps_the_added_takes(write_shotlist, tmp_path, engine_factory) -> None:
    shots = write_shotlist(SHOTS)
    out = tmp_path / "out"
    # random weights render noise: every image of 'face' is flagged no_face, so it gets takes 2 and 3
    render_with_retakes(idcli.load_shotlist(shots), out, max_takes=3, device="cpu", engine_factory=engine_factory)
    select(out, ["face=3"])
    assert _live(out) == ALL

    again = idcli.render(idcli.load_shotlist(shots), out, device="cpu", engine_factory=engine_factory)
    # the added takes are part of the plan: found done, nothing rendered, nothing orphaned
    assert again.rendered == 0 and again.count("skipped") == 4 and again.orphans == []
    assert sorted((j.shot_id, j.take) for j in again.jobs) == ALL
    assert _live(out) == ALL
    assert _live(out, shotlist=shots) == ALL
    assert all(not r["orphan"] for r in idcli.read_results(out, include_orphans=True))
    manifest = OutputStore(out).read_manifest()
    assert manifest is not None
    assert sorted(tuple(t) for t in manifest["takes"]) == ALL
    assert read_selects(out)["face"]["take"] == 3  # the director's pick is still a live take

    # idcli plan of the folder lists them as done jobs, not as orphans
    result = CliRunner().invoke(app, ["plan", str(shots), "--out", str(out), "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert sorted((j["shot_id"], j["take"]) for j in document["jobs"]) == ALL
    assert {j["state"] for j in document["jobs"]} == {"done"} and document["orphans"] == []

    # a second retake round starts from three takes: nothing more to add at --max-takes 3
    report = render_with_retakes(idcli.load_shotlist(shots), out, max_takes=3, device="cpu",
                                 engine_factory=engine_factory)
    assert report.rendered == 0 and _live(out) == ALL


def test_added_takes_end_with_their_shot_or_a_lowered_take_count(write_shotlist, tmp_path, engine_factory) -> None:
    shots = write_shotlist(SHOTS.replace("takes: 1}\n      - {id: land", "takes: 2}\n      - {id: land"))
    out = tmp_path / "out"
    render_with_retakes(idcli.load_shotlist(shots), out, max_takes=3, device="cpu", engine_factory=engine_factory)
    assert _live(out) == ALL

    # raising `takes:` to what the retakes gave changes nothing
    three = write_shotlist(shots.read_text().replace("takes: 2}", "takes: 3}"), "three.yaml")
    assert idcli.render(idcli.load_shotlist(three), out, device="cpu", engine_factory=engine_factory).rendered == 0
    assert _live(out) == ALL
    # lowering `takes:` below what the shot was re-rolled from drops the added takes (kept, as orphans)
    one = write_shotlist(shots.read_text().replace("takes: 2}", "takes: 1}"), "one.yaml")
    report = idcli.render(idcli.load_shotlist(one), out, device="cpu", engine_factory=engine_factory)
    assert report.rendered == 0 and sorted((o["shot_id"], o["take"]) for o in report.orphans) == [
        ("face", 2), ("face", 3)]
    assert _live(out) == [("face", 1), ("land", 1)]
    # and a shot removed from the list takes its added takes with it
    gone = write_shotlist(shots.read_text().replace('  - {id: face, prompt: "{mara} on a street", takes: 2}\n', ""),
                          "gone.yaml")
    report = idcli.render(idcli.load_shotlist(gone), out, device="cpu", engine_factory=engine_factory)
    assert sorted((o["shot_id"], o["take"]) for o in report.orphans) == [("face", 1), ("face", 2), ("face", 3)]


def test_the_retake_rounds_report_every_render_they_moved_aside(write_shotlist, tmp_path, engine_factory) -> None:
    """Each round reports the earlier renders it moved to .idcli/superseded; the merged report listed only the last
    round's, so a prompt edit re-rendered in round one went unsaid ("N earlier render(s) moved … by this run")."""
    shots = write_shotlist(SHOTS)
    out = tmp_path / "out"
    idcli.render(idcli.load_shotlist(shots), out, device="cpu", engine_factory=engine_factory)
    edited = write_shotlist(SHOTS.replace("a lighthouse", "a lighthouse at dusk"), "edited.yaml")
    # round one renders 'land' again (its old take moved aside) and skips 'face'; round two adds face_t2
    report = render_with_retakes(idcli.load_shotlist(edited), out, max_takes=2, device="cpu",
                                 engine_factory=engine_factory)
    assert sorted((j.shot_id, j.take, j.status) for j in report.jobs) == [
        ("face", 1, "skipped"), ("face", 2, "rendered"), ("land", 1, "rendered")]
    assert [(s["shot_id"], s["take"]) for s in report.superseded] == [("land", 1)], report.superseded
    assert report.superseded_total == 1 and report.as_dict()["superseded"] == report.superseded


def test_forced_retake_rounds_render_each_take_once(write_shotlist, tmp_path, engine_factory) -> None:
    """--force renders the folder's takes again once: each retake round after the first rendered every take again
    too (9 renders for 4 takes at --max-takes 3), moving the run's own renders of the round before aside."""
    shots = write_shotlist(SHOTS)
    out = tmp_path / "out"
    idcli.render(idcli.load_shotlist(shots), out, device="cpu", engine_factory=engine_factory)
    del engine_factory.calls[:]
    report = render_with_retakes(idcli.load_shotlist(shots), out, max_takes=3, device="cpu", force=True,
                                 engine_factory=engine_factory)
    assert sum(engine_factory.calls) == 4 and report.rendered == 4, engine_factory.calls
    assert sorted((s["shot_id"], s["take"]) for s in report.superseded) == [("face", 1), ("land", 1)]
    assert report.superseded_total == 2 and _live(out) == ALL


def test_forced_retake_rounds_into_another_projects_folder_still_say_so(write_shotlist, tmp_path,
                                                                        engine_factory) -> None:
    """The first round's run renders into another project's folder (--force); a later round finds the folder this
    project's, so the merged report said `other_project: null` and the note that --force took it on went unsaid."""
    out = tmp_path / "out"
    idcli.render(idcli.load_shotlist(write_shotlist(SHOTS)), out, device="cpu", engine_factory=engine_factory)
    other = write_shotlist(SHOTS.replace("project: retake", "project: harbour"), "other.yaml")
    report = render_with_retakes(idcli.load_shotlist(other), out, max_takes=2, device="cpu", force=True,
                                 engine_factory=engine_factory)
    assert sorted((j.shot_id, j.take) for j in report.jobs) == [("face", 1), ("face", 2), ("land", 1)]
    assert report.other_project == "retake" and report.as_dict()["other_project"] == "retake"


def test_retake_rounds_report_each_take_of_two_shots_of_the_same_content(write_shotlist, tmp_path, engine_factory,
                                                                        monkeypatch) -> None:
    """Two shots of the same content share each take's job key; the merged report of the rounds keeps both. It kept
    one take per key: the shot whose take 1 it dropped looked one take short of flagged, and got 'take 2' forever."""
    import idcli.run as run_module

    rounds, render = [], run_module.render

    def counted(*args, **kwargs):
        rounds.append(kwargs.get("takes"))
        assert len(rounds) <= 3, f"retake rounds never end: {rounds}"
        return render(*args, **kwargs)

    monkeypatch.setattr(run_module, "render", counted)
    twins = SHOTS.replace('takes: 1}\n      - {id: land, prompt: "a lighthouse", takes: 1}',
                          'seeds: [5]}\n      - {id: twin, prompt: "{mara} on a street", seeds: [5]}')
    report = render_with_retakes(idcli.load_shotlist(write_shotlist(twins)), tmp_path / "out", max_takes=2,
                                 device="cpu", engine_factory=engine_factory)
    assert rounds == [{}, {"face": 2, "twin": 2}]
    assert sorted((j.shot_id, j.take, j.status) for j in report.jobs) == [
        ("face", 1, "rendered"), ("face", 2, "rendered"), ("twin", 1, "rendered"), ("twin", 2, "rendered")]


def test_a_flagged_take_put_back_from_superseded_counts_for_a_retake(write_shotlist, tmp_path, engine_factory) -> None:
    """A take put back from .idcli/superseded (a shot edited back: ``restored``) is committed with the QA verdict of
    its render, as a skipped one is; --retake-flagged did not count it, so its all-flagged shot got no more takes."""
    shots = write_shotlist(SHOTS)
    out = tmp_path / "out"
    idcli.render(idcli.load_shotlist(shots), out, device="cpu", engine_factory=engine_factory)
    edited = write_shotlist(SHOTS.replace("{mara} on a street", "{mara} on a bridge"), "edited.yaml")
    idcli.render(idcli.load_shotlist(edited), out, device="cpu", engine_factory=engine_factory)
    kept = next((out / ".idcli" / "superseded" / "face").glob("*.json"))
    assert json.loads(kept.read_text())["qa"]["flags"]  # the kept take was flagged at its render
    # edited back: face_t1 is put back, flagged (random weights: no face); the round adds take 2
    report = render_with_retakes(idcli.load_shotlist(shots), out, max_takes=2, device="cpu",
                                 engine_factory=engine_factory)
    assert sorted((j.shot_id, j.take, j.status) for j in report.jobs) == [
        ("face", 1, "restored"), ("face", 2, "rendered"), ("land", 1, "skipped")]
