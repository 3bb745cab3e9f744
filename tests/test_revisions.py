"""A production changes its mind: a shot list rendered, picked, then edited as a script supervisor edits it
(a prompt changed, a shot renamed, one deleted, one left alone) and rendered again into the same folder.

What the artist is told at each step without reading the docs: how many takes were rendered again and why,
which earlier renders are kept and how to list them, and which of yesterday's picks stand, were re-rendered
under them, or belong to shots no longer in the shot list — the same in the human lines and in ``--json``.
The images are the review tests' drawn faces (review_helpers.FaceEngine): no model is built.
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest
from review_helpers import SELFIES, FaceEngine, cli

DAY1 = """\
version: 1
project: harbour
model: {preset: tiny-sd}
defaults: {size: 128x128, steps: 2, guidance: 2.0, takes: 2}
characters:
  mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg], description: a red-haired woman}
  theo: {selfies: [selfies/theo_1.jpg, selfies/theo_2.jpg], description: a young man}
shots:
  - id: sh010
    prompt: "{mara} on the harbour wall"
  - id: sh020
    prompt: "close-up of {mara}, rain"
  - id: sh030
    prompt: "an empty lighthouse at dusk"
  - id: sh040
    prompt: "{theo} alone on the pier"
"""

# The next day: sh010's prompt changed, sh020 renamed sh025, sh030 left alone, sh040 deleted.
DAY2 = (DAY1.replace("on the harbour wall", "on the harbour wall, gulls overhead")
        .replace("id: sh020", "id: sh025")
        .replace('  - id: sh040\n    prompt: "{theo} alone on the pier"\n', ""))
DAY1_PICKS = ["sh010=2", "sh020=1", "sh030=2", "sh040=1"]


@pytest.fixture
def face_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """``idcli render`` draws the cast's faces instead of building a model."""
    import idcli.run as run_module

    engine = FaceEngine()
    monkeypatch.setattr(run_module, "default_engine", lambda model, runtime, adapter: engine)


def _rendered(folder: Path, shots: str) -> None:
    """``shots`` written as folder/shots.yaml with the selfies beside it, rendered into folder/out."""
    shutil.copytree(SELFIES, folder / "selfies")
    (folder / "shots.yaml").write_text(shots, "utf-8")
    rendered = cli("render", folder / "shots.yaml", "--out", folder / "out", "--device", "cpu")
    assert rendered.exit_code == 0, rendered.output


@pytest.fixture(scope="session")
def days_rendered(tmp_path_factory: pytest.TempPathFactory, synthetic_face_models: Path) -> dict[str, Path]:
    """The project folder after day 1 (DAY1 rendered into out/ and every shot picked) and after day 2 (DAY2 written
    over the shot list and rendered into the same folder), each made once; ``day1``/``day2`` give each test a copy.
    Made outside any test, so in an idcli home of its own, as the autouse ``_isolated_state`` gives a test."""
    import idcli.run as run_module

    made: dict[str, Path] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IDCLI_HOME", str(tmp_path_factory.mktemp("idcli-home")))
        patch.setenv("IDCLI_FACE_MODELS", str(synthetic_face_models))
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.delenv("IDCLI_DEBUG", raising=False)
        engine = FaceEngine()
        patch.setattr(run_module, "default_engine", lambda model, runtime, adapter: engine)
        folder = tmp_path_factory.mktemp("day1")
        _rendered(folder, DAY1)
        picked = cli("select", folder / "out", *DAY1_PICKS)
        assert picked.exit_code == 0, picked.output
        made["day1"] = folder
        folder = tmp_path_factory.mktemp("day2")
        shutil.copytree(made["day1"], folder, dirs_exist_ok=True)
        (folder / "shots.yaml").write_text(DAY2, "utf-8")
        rendered = cli("render", folder / "shots.yaml", "--out", folder / "out", "--device", "cpu")
        assert rendered.exit_code == 0, rendered.output
        made["day2"] = folder
    return made


@pytest.fixture
def day1(tmp_path: Path, face_engine: None, days_rendered: dict[str, Path]) -> Path:
    """A copy of the project folder after day 1 (``days_rendered``), for the test to change."""
    shutil.copytree(days_rendered["day1"], tmp_path, dirs_exist_ok=True)
    return tmp_path


@pytest.fixture
def day2(tmp_path: Path, face_engine: None, days_rendered: dict[str, Path]) -> Path:
    """A copy of the project folder after day 2 (``days_rendered``), for the test to change."""
    shutil.copytree(days_rendered["day2"], tmp_path, dirs_exist_ok=True)
    return tmp_path


def test_a_render_after_edits_says_which_takes_it_rendered_again_and_why(day1: Path) -> None:
    (day1 / "shots.yaml").write_text(DAY2, "utf-8")
    planned = cli("plan", day1 / "shots.yaml", "--out", day1 / "out", "--device", "cpu")
    # plan says beforehand what render says after: which takes render again, and why
    # the restore command names the real folder, ready to paste
    assert ("note: 2 take(s) render again because what makes them changed; the earlier renders are kept: idcli "
            f"restore {day1 / 'out'} --list") in planned.stdout
    assert "note:   sh010: prompt changed" in planned.stdout  # the cause, from the takes' sidecars
    result = cli("render", day1 / "shots.yaml", "--out", day1 / "out", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "4 rendered, 2 skipped" in result.stdout
    # sh010's two takes replace yesterday's (their shot changed); sh025's are new; sh030 is done.
    assert "idcli: note: 2 take(s) rendered again because what makes them changed;" in result.stderr
    assert "idcli: note:   sh010: prompt changed" in result.stderr
    assert "the earlier renders are kept: idcli restore" in result.stderr
    assert "--list" in result.stderr
    document = json.loads(cli("render", day1 / "shots.yaml", "--out", day1 / "out", "--device", "cpu",
                              "--json").stdout)
    assert document["counts"]["rendered"] == 0  # nothing changed since: nothing said to be rendered again


def test_render_says_what_its_counts_count(day1: Path) -> None:
    """"8 jobs: 8 already done" counted takes put back from .idcli/superseded and images edited by hand (kept, not
    rendered) as done, matching no count of --json; "N earlier render(s) kept in .idcli/superseded" counted this
    run's alone, while `restore --list` (which it suggests) lists the folder's. Each line says what it counts, in
    the words and numbers of --json's ``counts`` and the new ``superseded_total``."""
    from PIL import Image

    shots, out = day1 / "shots.yaml", day1 / "out"
    sh010 = DAY1.replace("on the harbour wall", "on the harbour wall, gulls overhead")
    both = sh010.replace("an empty lighthouse at dusk", "an empty lighthouse at dawn")
    for text in (sh010, both):  # sh010's two takes moved aside, then sh030's
        shots.write_text(text, "utf-8")
        rendered = cli("render", shots, "--out", out, "--device", "cpu")
        assert rendered.exit_code == 0, rendered.output
    assert (f"idcli: note: 2 earlier render(s) moved to {out / '.idcli' / 'superseded'} by this run, 4 kept there in "
            f"all (idcli restore {out} --list lists them, idcli restore {out} SHOT_tN puts one back)"
            ) in rendered.stderr.splitlines(), rendered.stderr
    shots.write_text(DAY1.replace("an empty lighthouse at dusk", "an empty lighthouse at dawn"), "utf-8")
    edited = out / "sh040" / "sh040_t1.png"  # sh010 edited back (its two takes restored), and sh040_t1 retouched
    with Image.open(edited) as image:
        retouched = image.convert("RGB")
    retouched.putpixel((3, 3), (255, 0, 0))
    retouched.save(edited)
    # The dry run says beforehand what the render then does: it called the two takes it would put back "pending"
    # ("dry run: 2 to render, 5 done"), and the kept one was in no count of its line.
    dry = cli("render", shots, "--out", out, "--device", "cpu", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    assert {k: v for k, v in json.loads(dry.stdout)["counts"].items() if v} == {"skipped": 5, "restored": 2, "kept": 1}
    said = cli("render", shots, "--out", out, "--device", "cpu", "--dry-run")
    assert f"dry run: 0 to render, 5 done, 2 to restore, 1 kept (edited by hand) → {out}" in said.stdout, said.output
    rendered = cli("render", shots, "--out", out, "--device", "cpu", "--json")
    assert rendered.exit_code == 0, rendered.output
    assert "8 jobs: 5 already done, 2 restored, 1 edited by hand (kept), 0 to render" in rendered.stderr.splitlines(), (
        rendered.stderr)
    document = json.loads(rendered.stdout)
    assert {k: document["counts"][k] for k in ("skipped", "restored", "kept", "rendered")} == {
        "skipped": 5, "restored": 2, "kept": 1, "rendered": 0}
    assert len(document["superseded"]) == 2 and document["superseded_total"] == 4  # sh010's edited takes, aside now
    assert document["superseded_total"] == len(json.loads(cli("restore", out, "--list", "--json").stdout)["versions"])
    again = json.loads(cli("render", shots, "--out", out, "--device", "cpu", "--json").stdout)  # nothing moves now
    assert again["superseded"] == [] and again["superseded_total"] == 4


def test_the_dry_run_counts_a_take_whose_sidecar_a_kill_lost_as_recovered(day1: Path) -> None:
    """A run killed between an image and its sidecar: the next render rebuilds the sidecar from the PNG
    (``recovered``), rendering nothing; its dry run called the take ``pending``, "1 to render"."""
    shots, out = day1 / "shots.yaml", day1 / "out"
    (out / "sh020" / "sh020_t1.json").unlink()
    dry = cli("render", shots, "--out", out, "--device", "cpu", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["counts"]["recovered"] == 1 and json.loads(dry.stdout)["counts"]["pending"] == 0
    said = cli("render", shots, "--out", out, "--device", "cpu", "--dry-run")
    assert "dry run: 0 to render, 7 done, 1 to recover → " in said.stdout, said.output
    rendered = json.loads(cli("render", shots, "--out", out, "--device", "cpu", "--json").stdout)
    assert (rendered["counts"]["recovered"], rendered["counts"]["rendered"]) == (1, 0)


def test_restore_list_without_a_take_lists_every_kept_render(day2: Path) -> None:
    out = day2 / "out"
    listed = cli("restore", out, "--list")
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert [line.split(".", 1)[0] for line in lines] == ["sh010_t1", "sh010_t2"], listed.stdout
    document = json.loads(cli("restore", out, "--list", "--json").stdout)
    assert [(v["shot_id"], v["take"]) for v in document["versions"]] == [("sh010", 1), ("sh010", 2)]
    missing = cli("restore", day2 / "no-such-folder", "--list")
    assert missing.exit_code == 2 and "no such output folder" in missing.stderr
    refused = cli("restore", out)  # restoring still needs the take
    assert refused.exit_code == 2 and "SHOT_tN" in refused.stderr


def test_orphans_after_a_rename_or_a_deletion_are_called_so(day1: Path) -> None:
    (day1 / "shots.yaml").write_text(DAY2, "utf-8")
    result = cli("plan", day1 / "shots.yaml", "--out", day1 / "out", "--device", "cpu")
    assert result.exit_code == 0, result.output
    note = next(line for line in result.stdout.splitlines() if "no longer in the shot list" in line)
    assert "sh020_t1, sh020_t2, sh040_t1, sh040_t2" in note
    assert "renamed or removed" in note  # the likely cause here, not only another shot list's renders


def test_select_says_which_earlier_picks_were_re_rendered_or_left_the_shot_list(day2: Path) -> None:
    out = day2 / "out"
    result = cli("select", out, "sh025=2")
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if line.startswith("idcli: note: selects.json")]
    assert any("sh010=t2" in n and "re-rendered since it was picked" in n for n in notes), result.stderr
    assert any("sh020=t1" in n and "no longer in the shot list" in n for n in notes), result.stderr
    assert any("sh040=t1" in n and "no longer in the shot list" in n for n in notes), result.stderr
    assert not any("sh030" in n for n in notes)  # unchanged: its pick stands, nothing to say
    document = json.loads(cli("select", out, "sh025=2", "--json").stdout)
    assert document["notes"] == [n.removeprefix("idcli: note: ") for n in notes]


def test_select_lists_the_picks_in_shot_list_order_after_a_re_pick(day2: Path) -> None:
    """The "selects.json: ..." line listed the picks carried forward first and the shot picked now last
    (sh010, sh020, sh030, sh040, sh025): in shot-list order, shots no longer in the shot list last by id, as
    ``select OUT`` lists them. DAY2's order (sh010, sh025, sh030) is neither the file's nor the ids'."""
    out = day2 / "out"
    result = cli("select", out, "sh025=2")
    assert result.exit_code == 0, result.output
    assert f"{out / 'selects.json'}: sh010=t2, sh025=t2, sh030=t2, sh020=t1, sh040=t1" in result.stdout.splitlines()
    listed = json.loads(cli("select", out, "--json").stdout)["standing"]
    assert [s["shot_id"] for s in listed] == ["sh010", "sh025", "sh030", "sh020", "sh040"]  # the same order


def test_export_and_review_say_which_picks_no_longer_stand(day2: Path) -> None:
    out = day2 / "out"
    exported = cli("export", out, "--otio", day2 / "day2.otio", "--edl", day2 / "day2.edl")
    assert exported.exit_code == 0, exported.output
    notes = [line for line in exported.stderr.splitlines() if line.startswith("idcli: note:")]
    stale = [n for n in notes if "sh010" in n]
    assert len(stale) == 1, notes  # said once, not once per format
    assert "take 2" in stale[0] and "re-rendered since it was picked" in stale[0]
    assert any("sh020" in n and "sh040" in n and "no longer in the shot list" in n for n in notes), notes
    document = json.loads(cli("export", out, "--otio", day2 / "again.otio", "--json").stdout)
    assert [n for n in document["notes"] if "sh010" in n or "sh020" in n] == [
        n.removeprefix("idcli: note: ") for n in notes]
    import opentimelineio as otio

    timeline = otio.adapters.read_from_file(str(day2 / "day2.otio"))  # held: its tracks die with it
    clips = {c.name: c.metadata["idcli"] for c in timeline.tracks[0]}
    assert list(clips) == ["sh010", "sh025", "sh030"]
    assert clips["sh030"]["selected"] is True and clips["sh030"]["take"] == 2  # an unchanged shot keeps its pick

    reviewed = cli("review", out)
    assert reviewed.exit_code == 0, reviewed.output
    assert [line for line in reviewed.stderr.splitlines() if line.startswith("idcli: note:")] == notes
    counts = json.loads(cli("review", out, "--json").stdout)
    assert counts["counts"]["selected"] == 2  # sh010 and sh030, as the page's "2 of 3 shots picked"
    assert counts["notes"] == [n.removeprefix("idcli: note: ") for n in notes]


def test_shots_names_the_shot_list_whose_takes_stand_not_the_last_renders(day2: Path) -> None:
    """``--shots FILE`` orders review and export by another shot list than the one the folder was last rendered from:
    here yesterday's, which still has sh020 and sh040 (renamed and removed since; their takes and picks kept). Which
    takes stand came from the last render's manifest all the same, so both showed as gaps, their picks "beyond the
    shot's takes", though that shot list asks for both takes of each."""
    import re

    import opentimelineio as otio

    out, yesterday = day2 / "out", day2 / "day1.yaml"
    yesterday.write_text(DAY1, "utf-8")
    exported = cli("export", out, "--otio", day2 / "day1.otio", "--shots", yesterday, "--json")
    assert exported.exit_code == 0, exported.output
    timeline = otio.adapters.read_from_file(str(day2 / "day1.otio"))
    clips = {c.name: c.metadata["idcli"] for c in timeline.tracks[0] if isinstance(c, otio.schema.Clip)}
    assert {shot: (clip["take"], clip["selected"]) for shot, clip in clips.items()} == {
        "sh010": (2, True), "sh020": (1, True), "sh030": (2, True), "sh040": (1, True)}
    notes = json.loads(exported.stdout)["notes"]
    assert not any("beyond the shot's takes" in n for n in notes), notes
    assert any(n.startswith("sh010: the director's select, take 2, was re-rendered") for n in notes), notes
    reviewed = json.loads(cli("review", out, "--shots", yesterday, "--json").stdout)
    assert reviewed["counts"]["selected"] == 4 and reviewed["notes"] == notes
    page = (out / "review" / "index.html").read_text("utf-8")  # the page as the notes: the selects are the boards
    assert "not pickable" not in page
    boards = dict(re.findall(r'id="take-(sh\d+)_t\d+" data-take="(\d+)" data-board="1"', page))
    # sh025, not in that shot list, is shown after it as every such shot is
    assert boards == {"sh010": "2", "sh020": "1", "sh030": "2", "sh040": "1", "sh025": "1"}, boards
    # today's shot list given as --shots: as without it (the last render's), sh025 not picked yet
    (day2 / "day2.yaml").write_text(DAY2, "utf-8")
    today = json.loads(cli("export", out, "--otio", day2 / "day2.otio", "--shots", day2 / "day2.yaml",
                           "--json").stdout)
    assert today["notes"] == json.loads(cli("export", out, "--otio", day2 / "last.otio", "--json").stdout)["notes"]


def test_a_select_beyond_the_shots_takes_is_not_exported_as_the_select(day1: Path) -> None:
    # sh030 was picked as take 2; the shot list now asks for one take: take 2 is kept, an orphan.
    (day1 / "shots.yaml").write_text(DAY1.replace('dusk"\n', 'dusk"\n    takes: 1\n'), "utf-8")
    rendered = cli("render", day1 / "shots.yaml", "--out", day1 / "out", "--device", "cpu")
    assert rendered.exit_code == 0 and "sh030_t2" in rendered.stderr, rendered.output
    exported = cli("export", day1 / "out", "--otio", day1 / "cut.otio", "--json")
    assert exported.exit_code == 0, exported.output
    import opentimelineio as otio

    timeline = otio.adapters.read_from_file(str(day1 / "cut.otio"))
    clips = {c.name: c.metadata["idcli"] for c in timeline.tracks[0]}
    assert (clips["sh030"]["take"], clips["sh030"]["selected"]) == (1, False)  # as deliver and the page: not take 2
    assert (clips["sh010"]["take"], clips["sh010"]["selected"]) == (2, True)
    notes = json.loads(exported.stdout)["notes"]
    assert any("sh030" in n and "take 2" in n and "beyond the shot's takes" in n for n in notes), notes
    reviewed = json.loads(cli("review", day1 / "out", "--json").stdout)
    assert reviewed["counts"]["selected"] == 3  # sh010, sh020, sh040: the page's "3 of 4 shots picked"
    assert reviewed["notes"] == notes


def test_the_printed_board_and_contact_sheet_skip_a_select_beyond_the_shots_takes(day1: Path) -> None:
    import re

    (day1 / "shots.yaml").write_text(DAY1.replace('dusk"\n', 'dusk"\n    takes: 1\n'), "utf-8")
    assert cli("render", day1 / "shots.yaml", "--out", day1 / "out", "--device", "cpu").exit_code == 0
    reviewed = cli("review", day1 / "out")
    assert reviewed.exit_code == 0, reviewed.output
    page = (day1 / "out" / "review" / "index.html").read_text("utf-8")
    boards = dict(re.findall(r'id="take-(sh\d+)_t\d+" data-take="(\d+)" data-board="1"', page))
    # sh030's board shows its take 1 (the take of the shot list), not the select of take 2 kept beyond it
    assert boards == {"sh010": "2", "sh020": "1", "sh030": "1", "sh040": "1"}, boards


def test_a_take_rendered_again_for_a_missing_image_is_not_blamed_on_an_edit(day1: Path) -> None:
    (day1 / "out" / "sh030" / "sh030_t1.png").unlink()  # deleted by hand; the shot list unchanged
    planned = cli("plan", day1 / "shots.yaml", "--out", day1 / "out", "--device", "cpu")
    assert "because what makes them changed" not in planned.stdout, planned.stdout
    assert "note: 1 take(s) render again: the image is missing: sh030_t1" in planned.stdout, planned.stdout
    result = cli("render", day1 / "shots.yaml", "--out", day1 / "out", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "because what makes them changed" not in result.stderr, result.stderr
    assert "idcli: note: 1 take(s) rendered again: the image is missing: sh030_t1" in result.stderr, result.stderr



def test_render_json_says_why_each_take_rendered_again_as_its_note_does(day1: Path) -> None:
    # The human note told a take rendered again for a missing image from one rendered again for an edit; render
    # --json had only state "stale" for both (and cause null for the missing one): a pipeline could not tell.
    from idcli.store import EDITED_REASON

    (day1 / "out" / "sh030" / "sh030_t1.png").unlink()
    (day1 / "shots.yaml").write_text(DAY1.replace("on the harbour wall", "on the harbour wall, gulls"), "utf-8")
    planned = json.loads(cli("plan", day1 / "shots.yaml", "--out", day1 / "out", "--device", "cpu", "--json").stdout)
    result = cli("render", day1 / "shots.yaml", "--out", day1 / "out", "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    reasons = {(j["shot_id"], j["take"]): (j["state"], j["reason"]) for j in json.loads(result.stdout)["jobs"]}
    assert reasons[("sh030", 1)] == ("stale", "the image is missing")
    assert reasons[("sh010", 1)] == reasons[("sh010", 2)] == ("stale", EDITED_REASON)
    assert reasons[("sh020", 1)] == ("done", None)  # skipped: nothing to say why
    # as plan --json said before the run, for the takes rendered again
    assert {(j["shot_id"], j["take"]): j["reason"] for j in planned["jobs"] if j["state"] == "stale"} == {
        key: reason for key, (state, reason) in reasons.items() if state == "stale"}


def test_retake_rounds_keep_why_round_one_rendered_a_take_again() -> None:
    from idcli.review.retake import merge_rounds
    from idcli.run_report import RenderReport
    from idcli.store import EDITED_REASON

    first, second = RenderReport("out", {}), RenderReport("out", {})
    first.stale_reasons = {"idcli-job-v2:a": EDITED_REASON}  # round two finds that take done: no reason of its own
    second.stale_reasons = {"idcli-job-v2:b": "the image is missing"}
    assert merge_rounds(first, second).stale_reasons == {"idcli-job-v2:a": EDITED_REASON,
                                                         "idcli-job-v2:b": "the image is missing"}


def test_retake_rounds_keep_a_warning_said_in_round_one_only() -> None:
    """The engine says its warnings on its first batch (a FaceID file without its LoRA): round two, on the same
    engine, does not say them again, and the merged report kept only the last round's."""
    from idcli.review.retake import merge_rounds
    from idcli.run_report import RenderReport

    first, second = RenderReport("out", {}), RenderReport("out", {})
    first.warnings = ["plan's", "the adapter 'a.bin' carries no LoRA"]
    second.warnings = ["plan's"]
    assert merge_rounds(first, second).warnings == ["plan's", "the adapter 'a.bin' carries no LoRA"]


# A scene edited shot by shot: each shot's takes render again for one cause, which plan and render name per shot.
CAUSES_DAY1 = (DAY1.replace('close-up of {mara}, rain"\n', 'close-up of {mara}, rain"\n    expression: joy\n')
               .replace('dusk"\n', 'dusk"\n    seeds: [11, 12]\n'))
CAUSES_DAY2 = (CAUSES_DAY1.replace("on the harbour wall", "on the harbour wall, gulls overhead")  # the prompt
               .replace("expression: joy", "expression: grief")
               .replace("seeds: [11, 12]", "seeds: [21, 22]\n    framing: wide")
               .replace("selfies: [selfies/theo_1.jpg, selfies/theo_2.jpg]", "selfies: [selfies/theo_1.jpg]"))
CAUSES = {"sh010": "prompt changed", "sh020": "expression changed (joy -> grief)",
          "sh030": "seed, framing changed", "sh040": "theo's selfies changed"}


@pytest.fixture
def causes_day1(tmp_path: Path, face_engine: None) -> Path:
    _rendered(tmp_path, CAUSES_DAY1)
    (tmp_path / "shots.yaml").write_text(CAUSES_DAY2, "utf-8")
    return tmp_path


def test_plan_and_render_name_each_shots_cause_from_its_sidecar(causes_day1: Path) -> None:
    shots, out = causes_day1 / "shots.yaml", causes_day1 / "out"
    planned = cli("plan", shots, "--out", out, "--device", "cpu")
    assert planned.exit_code == 0, planned.output
    assert ("note: 8 take(s) render again because what makes them changed; the earlier renders are kept: "
            f"idcli restore {out} --list") in planned.stdout, planned.stdout
    for shot, cause in CAUSES.items():
        assert f"note:   {shot}: {cause}" in planned.stdout, planned.stdout
    document = json.loads(cli("plan", shots, "--out", out, "--device", "cpu", "--json").stdout)
    assert {(j["shot_id"], j["cause"]) for j in document["jobs"]} == set(CAUSES.items())
    assert all(j["reason"] == "the shot or its settings changed" for j in document["jobs"])  # unchanged field

    rendered = cli("render", shots, "--out", out, "--device", "cpu")
    assert rendered.exit_code == 0, rendered.output
    assert "idcli: note: 8 take(s) rendered again because what makes them changed" in rendered.stderr
    for shot, cause in CAUSES.items():
        assert f"idcli: note:   {shot}: {cause}" in rendered.stderr, rendered.stderr
    (causes_day1 / "shots.yaml").write_text(CAUSES_DAY2.replace("steps: 2", "steps: 3"), "utf-8")
    again = json.loads(cli("render", shots, "--out", out, "--device", "cpu", "--json").stdout)
    assert {j["cause"] for j in again["jobs"]} == {"steps changed"}


def test_plan_and_render_read_each_stale_sidecar_once(causes_day1: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store reads a take's sidecar to find its state; the cause of a stale one is told from that same read (a
    second read per stale take doubled the sidecar reads of a film whose every shot changed)."""
    from collections import Counter

    from idcli.store import OutputStore

    reads: Counter[str] = Counter()
    read_sidecar = OutputStore.read_sidecar

    def counted(store: OutputStore, job: object) -> object:
        reads[job.stem] += 1  # type: ignore[attr-defined]
        return read_sidecar(store, job)  # type: ignore[arg-type]

    monkeypatch.setattr(OutputStore, "read_sidecar", counted)
    shots, out = causes_day1 / "shots.yaml", causes_day1 / "out"
    for command in (("plan", shots, "--out", out, "--device", "cpu", "--json"),
                    ("render", shots, "--out", out, "--device", "cpu", "--json")):
        reads.clear()
        document = json.loads(cli(*command).stdout)
        assert {(j["shot_id"], j["cause"]) for j in document["jobs"]} == set(CAUSES.items())  # the causes still said
        assert len(reads) == 8 and set(reads.values()) == {1}, (command[0], reads)


def test_a_sidecar_that_cannot_say_what_changed_keeps_the_general_words(causes_day1: Path) -> None:
    out = causes_day1 / "out"
    for sidecar in (out / "sh010").glob("*.json"):  # an older sidecar: no prompt or seed recorded
        record = json.loads(sidecar.read_text("utf-8"))
        for name in ("prompt", "seed", "method", "expression", "framing"):
            record.pop(name, None)
        sidecar.write_text(json.dumps(record), "utf-8")
    planned = cli("plan", causes_day1 / "shots.yaml", "--out", out, "--device", "cpu")
    assert ("note: 2 take(s) render again because what makes them changed (the shot's prompt or settings, or a "
            "character's selfies or pack): sh010_t1, sh010_t2") in planned.stdout, planned.stdout
    assert "note:   sh020: expression changed (joy -> grief)" in planned.stdout


def test_many_shots_with_one_cause_share_a_capped_line() -> None:
    from idcli.cli.shotlist_commands import rerender_notes
    from idcli.store import EDITED_REASON

    stale = {f"sh{n:04d}_t1": EDITED_REASON for n in range(1, 31)}
    causes = {stem: "steps changed" for stem in stale}
    causes.update({f"sh{n:04d}_t1": f"cause {n} changed" for n in range(21, 31)})  # ten more causes, one shot each
    lines = rerender_notes(stale, "render again", causes, {stem.split("_t")[0]: 1 for stem in stale})
    assert lines[0].startswith("30 take(s) render again because what makes them changed;")
    assert lines[1] == ("  sh0001, sh0002, sh0003, sh0004, sh0005, sh0006, sh0007, sh0008, sh0009, sh0010 ... and 10 "
                        "more: steps changed")
    assert len(lines) == 1 + 10 + 1  # the header, ten causes, then a count of the rest
    assert lines[-1] == "  ... 1 more take(s) with 1 other cause(s): plan --json gives each job's cause"


def test_a_tampered_sidecar_names_no_odd_value_and_breaks_nothing(causes_day1: Path) -> None:
    out = causes_day1 / "out"
    for sidecar in (out / "sh020").glob("*.json"):  # a label too long to be one, a method of another shape
        record = json.loads(sidecar.read_text("utf-8"))
        record["expression"] = {"label": "\x1b[31m" + "x" * 500, "intensity": "high"}
        record["method"] = {**record["method"], "identity": 5, "characters": 7}
        sidecar.write_text(json.dumps(record), "utf-8")
    for sidecar in (out / "sh030").glob("*.json"):
        sidecar.write_text(json.dumps({**json.loads(sidecar.read_text("utf-8")), "sampler": [1], "size": "big",
                                       "model": 3, "plate": "x"}), "utf-8")
    planned = cli("plan", causes_day1 / "shots.yaml", "--out", out, "--device", "cpu")
    assert planned.exit_code == 0, planned.output
    assert "note:   sh020: expression changed\n" in planned.stdout, planned.stdout  # the label is not shown
    assert "x" * 41 not in planned.stdout and "\x1b[31m" not in planned.stdout
    assert "note:   sh030: seed, framing, plate changed" in planned.stdout, planned.stdout


# The shot's own words edited together with what the prompt is composed from: both named (the sidecar records the
# shot's prompt as written, ``shot_prompt``), and a cast swapped in the same words is no prompt edit.
EDITED_TOO = (CAUSES_DAY1.replace('"{mara} on the harbour wall"', '"{theo} on the harbour wall"')  # the cast only
              .replace("close-up of {mara}, rain", "close-up of {mara}, heavy rain").replace("joy", "grief")
              .replace('"an empty lighthouse at dusk"', '"an empty lighthouse at night"\n    framing: wide'))
EDITED_TOO_CAUSES = {"sh010": "characters changed", "sh020": "prompt, expression changed (joy -> grief)",
                     "sh030": "prompt, framing changed"}


def test_a_prompt_edited_with_its_expression_framing_or_cast_is_named_with_them(causes_day1: Path) -> None:
    shots, out = causes_day1 / "shots.yaml", causes_day1 / "out"
    shots.write_text(EDITED_TOO, "utf-8")
    document = json.loads(cli("plan", shots, "--out", out, "--device", "cpu", "--json").stdout)
    assert {(j["shot_id"], j["cause"]) for j in document["jobs"] if j["state"] == "stale"} == set(
        EDITED_TOO_CAUSES.items())
    for sidecar in (out / "sh020").glob("*.json"):  # a sidecar from before shot_prompt: today's words
        record = json.loads(sidecar.read_text("utf-8"))
        assert record.pop("shot_prompt") == "close-up of {mara}, rain"
        sidecar.write_text(json.dumps(record), "utf-8")
    planned = cli("plan", shots, "--out", out, "--device", "cpu")
    assert "note:   sh020: expression changed (joy -> grief)" in planned.stdout, planned.stdout
    assert "note:   sh030: prompt, framing changed" in planned.stdout, planned.stdout


def test_a_characters_description_edit_is_named_as_such_not_as_a_prompt_change(causes_day1: Path) -> None:
    """A description stands in for its character's placeholder, so editing it changes every prompt naming the
    character: the cause is the description (the sidecar's ``descriptions``), and the shot's prompt only when its own
    words changed too. A sidecar from before ``descriptions`` can only say the prompt changed."""
    shots, out = causes_day1 / "shots.yaml", causes_day1 / "out"
    edited = CAUSES_DAY1.replace("a red-haired woman", "a grey-haired woman in a raincoat")
    shots.write_text(edited.replace("close-up of {mara}, rain", "close-up of {mara}, heavy rain"), "utf-8")
    document = json.loads(cli("plan", shots, "--out", out, "--device", "cpu", "--json").stdout)
    assert {(j["shot_id"], j["cause"]) for j in document["jobs"] if j["state"] == "stale"} == {
        ("sh010", "mara's description changed"), ("sh020", "prompt, mara's description changed")}
    rendered = cli("render", shots, "--out", out, "--device", "cpu")
    assert "idcli: note:   sh010: mara's description changed" in rendered.stderr, rendered.stderr
    record = json.loads((out / "sh010" / "sh010_t1.json").read_text("utf-8"))
    assert record["descriptions"] == {"mara": "a grey-haired woman in a raincoat"}
    for sidecar in (out / "sh010").glob("*.json"):  # a sidecar from before descriptions
        record = json.loads(sidecar.read_text("utf-8"))
        del record["descriptions"]
        sidecar.write_text(json.dumps(record), "utf-8")
    # edited again, not back: edited back, the takes kept in superseded are put back, not rendered (no cause said)
    shots.write_text(CAUSES_DAY1.replace("a red-haired woman", "a dark-haired woman"), "utf-8")
    planned = cli("plan", shots, "--out", out, "--device", "cpu")
    assert "note:   sh010: prompt changed" in planned.stdout, planned.stdout


def test_a_delivered_record_keeps_the_shot_prompt_as_written() -> None:
    """Written by people, like ``prompt``: a prompt that reads as a path is no studio path to reduce to a name."""
    from idcli.delivery_record import delivery_record

    sidecar = {"prompt": "/night/ a woman", "shot_prompt": "/night/ {mara}", "image": {"path": "sh010/sh010_t1.png"}}
    record = delivery_record(sidecar, delivered_name="sh010_take1.png", source_name="sh010_t1.png",
                             source_sha256="0" * 64, signature="none")
    assert (record["prompt"], record["shot_prompt"]) == ("/night/ a woman", "/night/ {mara}")


def test_a_delivered_record_keeps_the_descriptions_as_written() -> None:
    """Written by people like ``shot_prompt``, under character names: never reduced to a file name, nor taken for
    one of the studio's paths that a delivery must not carry."""
    from idcli.delivery_record import delivery_record, local_strings

    sidecar = {"prompt": "/night/ a woman", "descriptions": {"mara": "/night/ a woman", "path": "a/b c"},
               "image": {"path": "sh010/sh010_t1.png"}}
    record = delivery_record(sidecar, delivered_name="sh010_take1.png", source_name="sh010_t1.png",
                             source_sha256="0" * 64, signature="none")
    assert record["descriptions"] == {"mara": "/night/ a woman", "path": "a/b c"}
    assert local_strings(sidecar, "/studio/out") == {"/studio/out", "sh010/sh010_t1.png"}


def test_select_without_picks_lists_each_select_and_whether_it_stands(day2: Path) -> None:
    out = day2 / "out"
    before = (out / "selects.json").read_bytes()
    listed = cli("select", out)
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.splitlines() == [
        f"{out / 'selects.json'}: 4 pick(s), in shot-list order; 1 as rendered when picked",
        f"sh010=t2: re-rendered since it was picked (look again: idcli select {out} sh010=N)",
        "sh030=t2: as rendered when picked",
        "sh020=t1: shot renamed or removed from the shot list (left out of review, export and deliver)",
        "sh040=t1: shot renamed or removed from the shot list (left out of review, export and deliver)",
        "not picked yet: sh025",
    ], listed.stdout
    document = json.loads(cli("select", out, "--json").stdout)
    assert [(s["shot_id"], s["take"], s["standing"]) for s in document["standing"]] == [
        ("sh010", 2, "re-rendered"), ("sh030", 2, "as-picked"), ("sh020", 1, "shot-gone"), ("sh040", 1, "shot-gone")]
    assert document["unpicked"] == ["sh025"] and document["changed"] == []
    assert set(document["selects"]) == {"sh010", "sh020", "sh030", "sh040"}  # as selects.json holds them
    assert (out / "selects.json").read_bytes() == before  # listing writes nothing


def test_select_without_picks_says_which_picked_images_changed_since_their_render(day1: Path) -> None:
    """A take retouched by hand read as "as rendered when picked" in the list, and deliver then refused it (its
    bytes are not its sidecar's): an editor trusting the list had a delivery fail. The list says so of each pick,
    with what deliver and render do with it and what to do; --json gives it as ``image_changed``."""
    from PIL import Image

    out = day1 / "out"
    edited = out / "sh030" / "sh030_t2.png"
    with Image.open(edited) as image:
        retouched = image.convert("RGB")
    retouched.putpixel((3, 3), (255, 0, 0))  # a retouch, saved by another program: a whole image still
    retouched.save(edited)
    damaged = out / "sh010" / "sh010_t2.png"
    damaged.write_bytes(damaged.read_bytes()[:200])  # cut short: no whole image
    listed = cli("select", out)
    assert listed.exit_code == 0, listed.output
    shots = shlex.quote(str(day1 / "shots.yaml"))
    assert listed.stdout.splitlines() == [
        f"{out / 'selects.json'}: 4 pick(s), in shot-list order; 4 as rendered when picked; the images of 2 changed "
        "since their render: deliver refuses them",
        "sh010=t2: as rendered when picked, but its image is damaged since the render: deliver refuses it (idcli "
        f"render {shots} --out {out} renders it again)",
        "sh020=t1: as rendered when picked",
        "sh030=t2: as rendered when picked, but its image was edited after the render: deliver refuses it (idcli "
        f"render {shots} --out {out} --only sh030 --force renders the shot again, keeping the edited image in "
        f".idcli/superseded; or pick another take: idcli select {out} sh030=N)",
        "sh040=t1: as rendered when picked",
    ], listed.stdout
    document = json.loads(cli("select", out, "--json").stdout)
    assert [(s["shot_id"], s["standing"], s["image_changed"]) for s in document["standing"]] == [
        ("sh010", "as-picked", "damaged"), ("sh020", "as-picked", None), ("sh030", "as-picked", "edited"),
        ("sh040", "as-picked", None)]
    refused = cli("deliver", out, day1 / "dest", "--shots", "sh030")  # what the list says deliver does
    assert refused.exit_code == 2 and "changed since it was committed" in refused.stderr, refused.output
    rendered = cli("render", day1 / "shots.yaml", "--out", out, "--only", "sh030", "--force", "--device", "cpu")
    assert rendered.exit_code == 0, rendered.output  # what it says to run: sh030 as rendered now, deliverable
    standing = json.loads(cli("select", out, "--json").stdout)["standing"]
    assert {s["shot_id"]: s["image_changed"] for s in standing}["sh030"] is None
    assert cli("deliver", out, day1 / "dest", "--shots", "sh030").exit_code == 0


def test_a_pick_re_rendered_and_then_edited_by_hand_reads_in_two_short_lines(day2: Path) -> None:
    """A take re-rendered since it was picked and then retouched by hand read as one line of some 330 characters (260
    less its paths), the edited image's remedy and the re-render's joined, naming `idcli select` twice: the pick's
    line says both in short, the render that makes it deliverable again follows on a line of its own."""
    from PIL import Image

    out = day2 / "out"
    edited = out / "sh010" / "sh010_t2.png"
    with Image.open(edited) as image:
        retouched = image.convert("RGB")
    retouched.putpixel((3, 3), (255, 0, 0))
    retouched.save(edited)
    listed = cli("select", out)
    assert listed.exit_code == 0, listed.output
    shots = shlex.quote(str(day2 / "shots.yaml"))
    lines = listed.stdout.splitlines()
    at = lines.index(next(line for line in lines if line.startswith("sh010=")))
    assert lines[at:at + 3] == [
        f"sh010=t2: re-rendered since it was picked, then edited by hand: deliver refuses it (look again: idcli select "
        f"{out} sh010=N)",
        f"  idcli render {shots} --out {out} --only sh010 --force renders it again, keeping the edited image in "
        ".idcli/superseded",
        "sh030=t2: as rendered when picked",
    ], listed.stdout
    assert all(len(line.replace(str(out), "OUT").replace(shots, "SHOTS")) <= 130 for line in lines[at:at + 2]), lines


def test_select_without_picks_in_a_folder_without_any(day1: Path) -> None:
    (day1 / "out" / "selects.json").unlink()
    listed = cli("select", day1 / "out")
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.splitlines() == [f"{day1 / 'out' / 'selects.json'}: no picks (idcli select {day1 / 'out'} "
                                          "SHOT=TAKE records one)", "not picked yet: sh010, sh020, sh030, sh040"]
    assert not (day1 / "out" / "selects.json").exists()
    (day1 / "out" / "selects.json").write_text('{"schema": 1, "selects": {"sh010": {"take": "two"}}}', "utf-8")
    damaged = cli("select", day1 / "out")  # a damaged file is said, never listed as "no picks"
    assert damaged.exit_code == 2 and "selects.json: damaged" in damaged.stderr, damaged.output


def test_a_pick_with_a_damaged_job_key_reads_as_re_rendered_everywhere(day1: Path) -> None:
    """A hand-edited selects.json whose pick has a job key that is no string cannot say the take is the one the
    director saw: select's list, select's notes, review's and export's notes and the page all read it as
    re-rendered (look again), never as standing; the words say its record is damaged, not that the shot changed."""
    out = day1 / "out"
    data = json.loads((out / "selects.json").read_text("utf-8"))
    data["selects"]["sh030"]["job_key"] = 12345
    (out / "selects.json").write_text(json.dumps(data), "utf-8")
    listed = json.loads(cli("select", out, "--json").stdout)
    assert {s["shot_id"]: s["standing"] for s in listed["standing"]}["sh030"] == "re-rendered"
    assert (f"sh030=t2: its record in selects.json is damaged (its job_key is no take's key) (look again: idcli "
            f"select {out} sh030=N)") in cli("select", out).stdout
    noted = cli("select", out, "sh010=1")
    assert noted.exit_code == 0, noted.output
    assert any("sh030=t2: its record in selects.json is damaged" in line for line in noted.stderr.splitlines()), (
        noted.stderr)
    for command in (("review", out), ("export", out, "--otio", day1 / "cut.otio")):
        said = cli(*command)
        assert said.exit_code == 0, said.output
        assert any(line.startswith("idcli: note: sh030: the director's select, take 2: its record in selects.json "
                                   "is damaged") for line in said.stderr.splitlines()), said.stderr
        assert "prompt, settings or a character's selfies changed" not in said.stderr  # not said of sh030: untrue
    assert "prompt, settings" not in noted.stderr
    page = (out / "review" / "index.html").read_text("utf-8")  # the page says what the notes say
    assert "its record in selects.json is damaged" in page and "re-rendered since picked" not in page
    delivered = cli("deliver", out, day1 / "dest")  # and deliver, which said it was re-rendered after it was picked
    assert delivered.exit_code == 0, delivered.output
    assert "the director's select: its record in selects.json is damaged" in delivered.stderr, delivered.stderr
    assert "re-rendered" not in delivered.stderr


def test_review_json_says_its_notes_on_stderr_as_export_and_select_do(day2: Path) -> None:
    """The --json contract: the document on stdout, notes still on stderr (docs/file-formats.md)."""
    out = day2 / "out"
    for command in (("review", out), ("export", out, "--otio", day2 / "cut.otio"), ("select", out, "sh025=1")):
        plain = cli(*command)
        # A second export over the .otio the first wrote says how the cut changed since (a note of its own): both
        # runs write it afresh, so they have the same notes to say.
        (day2 / "cut.otio").unlink(missing_ok=True)
        as_json = cli(*command, "--json")
        assert as_json.exit_code == 0, as_json.output
        notes = [line for line in plain.stderr.splitlines() if line.startswith("idcli: note:")]
        assert notes and [line for line in as_json.stderr.splitlines() if line.startswith("idcli: note:")] == notes
        assert [f"idcli: note: {n}" for n in json.loads(as_json.stdout)["notes"]][:len(notes)] == notes


@pytest.mark.parametrize(("picked_key", "rendered_key", "listed", "live", "expected"), [
    ("k1", "k1", True, {("sh010", 2)}, "as-picked"),
    (None, "k1", True, {("sh010", 2)}, "as-picked"),  # recorded without a key: nothing says otherwise
    ("k0", "k1", True, {("sh010", 2)}, "re-rendered"),
    (12345, "k1", True, {("sh010", 2)}, "re-rendered"),  # a damaged key cannot be the take's: look again
    (["k1"], "k1", None, None, "re-rendered"),
    ("k1", "k1", False, {("sh020", 1)}, "shot-gone"),
    ("k1", None, False, None, "shot-gone"),  # gone first: the shot list decides before the files
    ("k1", None, True, {("sh010", 2)}, "not-rendered"),
    ("k1", "k1", True, {("sh010", 1)}, "beyond-takes"),
    (12345, "k1", True, {("sh010", 1)}, "beyond-takes"),
    ("k0", "k1", None, None, "re-rendered"),  # a folder from before the run manifest: the keys still tell
])
def test_pick_standing_decides_each_case_once(picked_key: object, rendered_key: str | None, listed: bool | None,
                                              live: set[tuple[str, int]] | None, expected: str) -> None:
    from idcli.review.pick_standing import PickStanding, pick_standing

    standing = pick_standing("sh010", 2, picked_key, rendered_key, listed=listed, live=live)
    assert standing is PickStanding(expected)


def test_the_restore_command_a_note_suggests_can_be_pasted(tmp_path: Path) -> None:
    """The notes said `idcli restore OUT --list` with a literal OUT: pasted at 2 a.m., that is an error. They name
    the folder, quoted for the shell (a space in a show's folder name is common)."""
    import shlex
    import subprocess

    from idcli.cli.shotlist_commands import rerender_notes
    from idcli.store import EDITED_REASON

    folder = tmp_path / "sc 12 renders"
    lines = rerender_notes({"sh010_t1": EDITED_REASON}, "render again", {}, {"sh010": 1}, folder)
    command = lines[0].split("the earlier renders are kept: ", 1)[1]
    assert shlex.split(command) == ["idcli", "restore", str(folder), "--list"]
    # the shell gives restore the folder as one argument
    echoed = subprocess.run(["bash", "-c", f"printf '%s\\n' {command.removeprefix('idcli restore ')}"],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    assert echoed == [str(folder), "--list"]


def test_plan_counts_only_the_takes_a_render_renders_as_rendering_again(day1: Path) -> None:
    """An edit undone, or a seed inserted: plan said "N take(s) render again" for takes the render then put back
    from .idcli/superseded (restored) or made of an image already there (reused), rendering none of them. At 2 a.m.
    that count is the night's cost; plan now counts what the render renders and names the rest as it does them."""
    shots, out = day1 / "shots.yaml", day1 / "out"
    shots.write_text(DAY1.replace("on the harbour wall", "on the harbour wall, gulls overhead"), "utf-8")
    assert cli("render", shots, "--out", out, "--device", "cpu").exit_code == 0  # sh010's takes moved aside
    # sh010 edited back (its two takes kept in superseded); sh030 gets a seed before its two derived ones.
    seeds = [json.loads((out / "sh030" / f"sh030_t{t}.json").read_text("utf-8"))["seed"] for t in (1, 2)]
    shots.write_text(DAY1.replace('dusk"\n', f'dusk"\n    seeds: [5, {seeds[0]}, {seeds[1]}]\n'), "utf-8")
    planned = cli("plan", shots, "--out", out, "--device", "cpu")
    assert planned.exit_code == 0, planned.output
    assert "note: 1 take(s) render again because what makes them changed" in planned.stdout, planned.stdout
    assert "note:   sh030_t1: seed changed" in planned.stdout
    assert ("note: 2 take(s) put back from .idcli/superseded (their shot edited back), not rendered again: "
            "sh010_t1, sh010_t2") in planned.stdout, planned.stdout
    assert "note: 2 take(s) reuse an image of the same job already in the folder" in planned.stdout
    rows = {f"{r['shot_id']}_t{r['take']}": r for r in json.loads(
        cli("plan", shots, "--out", out, "--device", "cpu", "--json").stdout)["jobs"]}
    assert {stem: (r["restores"] or {}).get("path") for stem, r in rows.items() if r["restores"]} == {
        "sh010_t1": rows["sh010_t1"]["restores"]["path"], "sh010_t2": rows["sh010_t2"]["restores"]["path"]}
    assert all(rows[stem]["restores"]["path"].startswith(".idcli/superseded/") for stem in ("sh010_t1", "sh010_t2"))
    rendered = cli("render", shots, "--out", out, "--device", "cpu", "--json")
    document = json.loads(rendered.stdout)
    assert {k: v for k, v in document["counts"].items() if v and k != "skipped"} == {
        "rendered": 1, "restored": 2, "reused": 2}
    assert "idcli: note: 1 take(s) rendered again because what makes them changed" in rendered.stderr
