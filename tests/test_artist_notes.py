"""What the previs artist is told about mistakes that validate without an error (second artist tour):
a group photo used as a selfie, two characters with one description in a dual-line shot, ..."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from idcli.cli import app

runner = CliRunner()


@pytest.fixture
def cached_engine(monkeypatch: pytest.MonkeyPatch, tiny_engines) -> None:
    """The CLI reuses the session's tiny engines (building one costs seconds)."""
    import idcli.run as run_module

    monkeypatch.setattr(run_module, "default_engine", lambda model, runtime, adapter: tiny_engines(
        model.preset, adapter))


def _plan_json(path: Path, out: Path) -> dict[str, Any]:
    result = runner.invoke(app, ["plan", str(path), "--out", str(out), "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# -- a group photo used as a selfie ---------------------------------------------------------------------

GROUP_SHOTS = """\
version: 1
project: group
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: euler}
characters:
  mara:
    selfies: [selfies/mara_1.jpg, selfies/group.jpg]
shots:
  - {id: m1, prompt: "{mara} on a pier"}
"""


def _group_photo(selfies: Path) -> None:
    """theo (larger, so the one used) beside mara: a group photo a user might give as mara's selfie."""
    from PIL import Image

    theo = Image.open(selfies / "theo_1.jpg")
    mara: Image.Image = Image.open(selfies / "mara_1.jpg")
    mara = mara.resize((int(mara.width * 0.7), int(mara.height * 0.7)))
    canvas = Image.new("RGB", (theo.width + mara.width, max(theo.height, mara.height)), (90, 120, 160))
    canvas.paste(theo, (0, 0))
    canvas.paste(mara, (theo.width, 0))
    canvas.save(selfies / "group.jpg", quality=92)


def test_a_group_photo_selfie_is_warned_about(write_shotlist, selfies: Path, tmp_path: Path) -> None:
    """The largest face of a group photo is used (docs/identity.md): plan and validate --selfies say so,
    naming the selfie at its line, how many faces it shows, which was used, and how to pick another."""
    _group_photo(selfies)
    path, out = write_shotlist(GROUP_SHOTS.replace("selfies/mara_1.jpg, ", "")), tmp_path / "out"
    # (mara_1 and the group photo of theo would be refused as different people; one selfie is what a user gives)
    where = f"{path}:7:15: characters.mara.selfies[0]"

    def check(text: str) -> None:
        assert where in text, text
        for words in ("selfies/group.jpg", "2 faces", "face 0", "largest", "encode-identity", "--face N",
                      "identity:"):
            assert words in text, (words, text)

    warnings = _plan_json(path, out)["warnings"]
    assert len(warnings) == 1
    check(warnings[0])
    text = runner.invoke(app, ["plan", str(path), "--out", str(out), "--device", "cpu"])
    assert text.exit_code == 0
    check(text.stderr)
    checked = runner.invoke(app, ["validate", str(path), "--selfies"])
    assert checked.exit_code == 0, checked.output
    check(checked.output)
    checked = runner.invoke(app, ["validate", str(path), "--selfies", "--json"])
    assert checked.exit_code == 0, checked.output
    check(json.loads(checked.stdout)["warnings"][0])
    # One face per selfie: nothing to warn about.
    plain = write_shotlist(GROUP_SHOTS.replace(", selfies/group.jpg", ""), "plain.yaml")
    assert _plan_json(plain, out)["warnings"] == []
    assert "warnings" not in json.loads(runner.invoke(app, ["validate", str(plain), "--selfies", "--json"]).stdout)


def test_validate_selfies_warns_about_a_group_photo_when_another_character_fails(
        write_shotlist, selfies: Path) -> None:
    """A tired artist's shot list: one character's selfie shows no face, another's is a group photo. validate
    --selfies said only the error, so the group photo came up one run later, after the first was fixed."""
    from PIL import Image

    _group_photo(selfies)
    Image.new("RGB", (256, 256), (90, 120, 160)).save(selfies / "wall.jpg")
    shots = GROUP_SHOTS.replace("selfies/mara_1.jpg, ", "").replace(
        "shots:\n", "  wall:\n    selfies: [selfies/wall.jpg]\nshots:\n") + '  - {id: w1, prompt: "{wall} waits"}\n'
    path = write_shotlist(shots)
    for options in ([], ["--json"]):
        checked = runner.invoke(app, ["validate", str(path), "--selfies", *options])
        assert checked.exit_code == 2, checked.output
        assert f"{path}:9:15: characters.wall.selfies[0]" in checked.stderr and "no face" in checked.stderr
        warning = f"idcli: warning: {path}:7:15: characters.mara.selfies[0]: selfie 'selfies/group.jpg' shows 2 faces"
        assert warning in checked.stderr, checked.stderr
        assert checked.stderr.index(warning) < checked.stderr.index("characters.wall.selfies[0]")  # then the error
        if options:
            assert json.loads(checked.stdout)["error"]["field"] == "characters.wall.selfies[0]"


# -- two characters with one description in a dual-line shot ------------------------------------------

TWIN_SHOTS = """\
version: 1
project: twins
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: euler}
characters:
  mara:
    selfies: [selfies/mara_1.jpg]
    description: a woman in a grey coat
  theo:
    selfies: [selfies/theo_1.jpg]
    description: A woman in a  grey coat
shots:
  - {id: s1, prompt: "{mara} on a pier"}
  - id: s2
    prompt: "{mara} and {theo} on a pier"
  - {id: s3, prompt: "{mara} and {theo} at a bar", method: single}
"""


def test_two_characters_with_one_description_in_a_dual_line_shot_are_noted(write_shotlist, tmp_path: Path) -> None:
    """docs/method.md: their attention maps coincide and the masks cannot separate them. validate notes it
    at the shot's line; plan says it among its warnings. Shots naming one of them, or single-line, are fine."""
    path = write_shotlist(TWIN_SHOTS)
    where = f"{path}:15:13: shots[1].prompt"
    checked = runner.invoke(app, ["validate", str(path)])
    assert checked.exit_code == 0, checked.output
    lines = [line for line in checked.output.splitlines() if "same description" in line]
    assert len(lines) == 1 and where in lines[0] and "'mara' and 'theo'" in lines[0], checked.output
    assert "distinct description" in lines[0]
    notes = json.loads(runner.invoke(app, ["validate", str(path), "--json"]).stdout)["notes"]
    assert [(n["line"], n["column"], n["path"]) for n in notes if "same description" in n["message"]] == [
        (15, 13, "shots[1].prompt")]
    warnings = [w for w in _plan_json(path, tmp_path / "out")["warnings"] if "same description" in w]
    assert len(warnings) == 1 and where in warnings[0]
    distinct = write_shotlist(TWIN_SHOTS.replace("A woman in a  grey coat", "a man in a blue coat"), "distinct.yaml")
    assert "same description" not in runner.invoke(app, ["validate", str(distinct)]).output


# -- several shot lists of one project rendered into one folder ----------------------------------------

ACT_ONE = """\
version: 1
project: film
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: euler}
shots:
  - {id: a010, prompt: "a lighthouse in a storm"}
"""


def test_the_orphans_note_says_one_shot_list_per_output_folder(write_shotlist, tmp_path: Path,
                                                               cached_engine: None) -> None:
    """act two's plan into act one's folder calls act one's images orphans: the note says why."""
    one, out = write_shotlist(ACT_ONE, "act1.yaml"), tmp_path / "out"
    two = write_shotlist(ACT_ONE.replace("a010", "b010"), "act2.yaml")
    rendered = runner.invoke(app, ["render", str(one), "--out", str(out), "--device", "cpu", "--json"])
    assert rendered.exit_code == 0, rendered.output
    for argv in (["plan", str(two), "--out", str(out), "--device", "cpu"],
                 ["render", str(two), "--out", str(out), "--device", "cpu"]):
        result = runner.invoke(app, argv)
        assert result.exit_code == 0, result.output
        note = next(line for line in result.output.splitlines() if "no longer in the shot list" in line)
        assert "a010_t1" in note and "one shot list per output folder" in note, note


# -- restoring a take of an earlier shot list --------------------------------------------------------------

def test_restore_says_the_next_render_moves_an_older_take_aside_again(write_shotlist, tmp_path: Path,
                                                                      cached_engine: None) -> None:
    """The restored take was made by an earlier version of the shot list: restore says how to keep it."""
    path, out = write_shotlist(ACT_ONE), tmp_path / "out"
    assert runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "-q"]).exit_code == 0
    path.write_text(ACT_ONE.replace("in a storm", "at dawn"), "utf-8")
    assert runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "-q"]).exit_code == 0
    document = json.loads(runner.invoke(app, ["restore", str(out), "a010_t1", "--json"]).stdout)
    assert "moves it aside again" in document["note"]
    # Restoring again undoes it (README): the take the last render made is back, and nothing about it is earlier
    # (the note said it was "rendered from an earlier version of the shot list").
    undone = runner.invoke(app, ["restore", str(out), "a010_t1"])
    assert undone.exit_code == 0 and "restored" in undone.stdout, undone.output
    assert undone.stderr == "", undone.stderr
    restored = runner.invoke(app, ["restore", str(out), "a010_t1"])
    assert restored.exit_code == 0, restored.output
    note = " ".join(restored.stderr.split())
    for words in ("the next idcli render", "moves it aside again", "stale", "edit the shot list back"):
        assert words in note, (words, note)
    assert "note" not in json.loads(runner.invoke(app, ["restore", str(out), "a010_t1", "--json"]).stdout)
    assert runner.invoke(app, ["restore", str(out), "a010_t1"]).exit_code == 0  # the earlier take back again
    # What the note promises: plan calls the restored take stale; edited back, it is kept.
    path.write_text(ACT_ONE, "utf-8")
    assert [j["state"] for j in _plan_json(path, out)["jobs"]] == ["done"]


def test_restore_after_a_render_put_the_take_back_says_the_next_render_moves_it_aside(
        write_shotlist, tmp_path: Path, cached_engine: None) -> None:
    """A shot edited and edited back: the render put its first take back from .idcli/superseded (no commit). The
    take restore then brings back is the edit's, which the shot list no longer says: the note is due, though the
    journal's last commit at the take has that key (the render that put the first back committed nothing)."""
    path, out = write_shotlist(ACT_ONE), tmp_path / "out"
    for text in (ACT_ONE, ACT_ONE.replace("in a storm", "at dawn"), ACT_ONE):
        path.write_text(text, "utf-8")
        assert runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "-q"]).exit_code == 0
    assert [j["state"] for j in _plan_json(path, out)["jobs"]] == ["done"]
    restored = runner.invoke(app, ["restore", str(out), "a010_t1"])
    assert restored.exit_code == 0, restored.output
    assert "moves it aside again" in " ".join(restored.stderr.split()), restored.stderr
    undone = runner.invoke(app, ["restore", str(out), "a010_t1"])  # the take the last render put back
    assert undone.exit_code == 0 and undone.stderr == "", undone.output


def test_restore_of_a_take_an_earlier_idcli_keyed_names_that_cause_too(write_shotlist, tmp_path: Path,
                                                                       cached_engine: None) -> None:
    """A take superseded only because this idcli keys its unchanged shot differently (CHANGELOG, 'render again
    once'): restore's note names that cause, where editing the shot list back cannot help."""
    path, out = write_shotlist(ACT_ONE), tmp_path / "out"
    assert runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "-q"]).exit_code == 0
    sidecar = out / "a010" / "a010_t1.json"
    record = json.loads(sidecar.read_text("utf-8"))
    record["job_key"] = "idcli-job-v2:" + "0" * 64  # as an earlier idcli keyed the same shot
    sidecar.write_text(json.dumps(record), "utf-8")
    assert runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "-q"]).exit_code == 0
    restored = runner.invoke(app, ["restore", str(out), "a010_t1"])
    assert restored.exit_code == 0, restored.output
    note = " ".join(restored.stderr.split())
    for words in ("moves it aside again", "an earlier idcli", "keyed", "stays restorable"):
        assert words in note, (words, note)


def test_restoring_a_hand_edited_take_of_the_same_job_says_nothing_more(write_shotlist, tmp_path: Path,
                                                                         cached_engine: None) -> None:
    """--force rendered over a retouched image (same job): putting the retouch back needs no shot-list edit."""
    from PIL import Image

    path, out = write_shotlist(ACT_ONE), tmp_path / "out"
    assert runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "-q"]).exit_code == 0
    Image.new("RGB", (64, 64), (200, 10, 10)).save(out / "a010" / "a010_t1.png")  # retouched by hand
    forced = runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "-q", "--force"])
    assert forced.exit_code == 0, forced.output
    restored = runner.invoke(app, ["restore", str(out), "a010_t1", "--json"])
    assert restored.exit_code == 0 and "note" not in json.loads(restored.stdout), restored.output


# -- validate lists every problem, type errors and the checks after them -------------------------------

MIXED_SHOTS = """\
version: 1
project: mixed
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: many, guidance: 4.0, sampler: euler}
characters:
  mara:
    selfies: [selfies/nobody.jpg]
  theo:
    selfies: 12
shots:
  - {id: s1, prompt: "{mara} on a pier", expression: gloomish}
  - {id: s2, prompt: "{theo} at a bar", takes: lots}
  - {id: s3, prompt: "{nobody} at a bar"}
  - {id: s4, prompt: "{theo} on a pier", expression: gloomish}
"""


def test_validate_lists_type_errors_and_the_checks_of_what_parsed(write_shotlist) -> None:
    """README: 'exit 2 with every problem and its line'. The checks that need parsed values (unknown
    expressions, placeholders, missing files) run for the shots and characters that parsed, beside the type
    errors; a shot or character with a type error gets only those (no guess from half a value)."""
    path = write_shotlist(MIXED_SHOTS)
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert result.exit_code == 2, result.output
    found = {(p["line"], p["field"]) for p in json.loads(result.stdout)["error"]["problems"]}
    assert found == {
        (4, "defaults.steps"), (9, "characters.theo.selfies"), (12, "shots[1].takes"),  # type errors
        (7, "characters.mara.selfies[0]"),  # the selfie does not exist
        (11, "shots[0].expression"), (14, "shots[3].expression"),  # unknown expression
        (13, "shots[2].prompt"),  # a placeholder naming no character
    }, found
    lines = [p["line"] for p in json.loads(result.stdout)["error"]["problems"]]
    assert lines == sorted(lines)  # in the file's order
    text = runner.invoke(app, ["validate", str(path)]).output
    assert "nobody.jpg" in text and "gloomish" in text and "steps" in text


def test_render_json_carries_the_plans_warnings(write_shotlist, selfies: Path, tmp_path: Path,
                                                cached_engine: None) -> None:
    """A script reading render --json sees the group-photo warning too (plan --json's 'warnings')."""
    _group_photo(selfies)
    path, out = write_shotlist(GROUP_SHOTS.replace("selfies/mara_1.jpg, ", "")), tmp_path / "out"
    result = runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "--json", "-q"])
    assert result.exit_code == 0, result.output
    warnings = json.loads(result.stdout)["warnings"]
    assert len(warnings) == 1 and "selfie 'selfies/group.jpg' shows 2 faces" in warnings[0]


@pytest.mark.parametrize("flags", [["-q"], ["--quiet", "--dry-run"], ["--dry-run"], []])
def test_render_quiet_hides_notes_but_not_warnings(write_shotlist, selfies: Path, tmp_path: Path,
                                                  cached_engine: None, flags: list[str]) -> None:
    """-q hides progress and notes; a warning (the images may be wrong: a group photo as a selfie) is still
    said, once, with or without -q and in a dry run."""
    _group_photo(selfies)
    path, out = write_shotlist(GROUP_SHOTS.replace("selfies/mara_1.jpg, ", "")), tmp_path / "out"
    result = runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", *flags])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("selfie 'selfies/group.jpg' shows 2 faces") == 1, result.stderr
    assert "warning:" in result.stderr
    if "-q" in flags or "--quiet" in flags:
        assert "RANDOM weights" not in result.stderr and "encoding the selfies" not in result.stderr, result.stderr
        assert result.stdout == "", result.stdout


def test_the_group_photo_command_works_from_the_current_folder(write_shotlist, selfies: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The suggested `idcli encode-identity SELFIE ... -o PACK` is run from where the user is, not from the shot
    list's folder: its selfie path must find the photo from there (a space in a folder name quoted), and the
    pack must land where `identity: NAME.idpack` in the shot list will look for it."""
    import shlex

    _group_photo(selfies)
    path, out = write_shotlist(GROUP_SHOTS.replace("selfies/mara_1.jpg, ", "")), tmp_path / "out"
    elsewhere = tmp_path / "an other folder"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    warning = _plan_json(path, out)["warnings"][0]
    command = shlex.split(warning.split("`")[1])
    assert command[:2] == ["idcli", "encode-identity"], command
    assert (elsewhere / command[2]).resolve() == (selfies / "group.jpg").resolve(), command
    pack = command[command.index("-o") + 1]
    assert (elsewhere / pack).resolve() == (path.parent / "mara.idpack").resolve(), command
    assert "identity: mara.idpack" in warning


def test_validate_counts_in_plain_english(write_shotlist) -> None:
    """The summary line says '1 shot, 1 job', not '1 shots, 1 jobs'."""
    path = write_shotlist("""\
        version: 1
        project: one
        model: {preset: tiny-sd}
        shots:
          - {id: a010, prompt: "a lighthouse"}
        """)
    checked = runner.invoke(app, ["validate", str(path)])
    assert checked.exit_code == 0, checked.output
    assert "valid — project one, 1 shot, 1 job, 0 characters" in checked.stdout


def test_one_shot_one_take_is_counted_in_plain_english_everywhere(write_shotlist, tmp_path: Path) -> None:
    """A one-shot test render, as a director's first look often is: the page's summary said "1 shots · 1 takes",
    review "1 shots, 1 takes", verify and qa "1 images checked", export "1 clips", the progress line "1 jobs"."""
    path = write_shotlist("""\
        version: 1
        project: one
        model: {preset: tiny-sd}
        defaults: {size: 64x64, steps: 2, takes: 1}
        shots:
          - {id: a010, prompt: "a lighthouse"}
        """)
    out = tmp_path / "out"
    rendered = runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu"])
    assert rendered.exit_code == 0, rendered.output
    assert "1 job: " in rendered.stderr and "1 jobs" not in rendered.stderr, rendered.stderr
    said = {}
    for command in (["review", str(out)], ["verify", str(out)], ["qa", str(out)],
                    ["export", str(out), "--otio", str(tmp_path / "cut.otio")]):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, result.output
        said[command[0]] = result.stdout
    assert ": 1 shot, 1 take (1 new thumbnail); " in said["review"], said
    assert "\n1 image checked, 0 signed, 0 failed" in said["verify"], said
    assert said["qa"].startswith("0 images checked, 0 flagged (none), 1 without a cast"), said  # no character
    assert ": 1 clip, 72 frames at 24 fps" in said["export"], said
    page = (out / "review" / "index.html").read_text()
    assert "1 shot · 1 take · 0 flagged" in page and "1 shots" not in page and "1 takes" not in page
