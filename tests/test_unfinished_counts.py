"""What the morning-after note (idcli/unfinished.py) counts as "not rendered yet", and the command it offers, against
what the last render was really asked for and could do (night-counts, 2026-12-02): takes blocked by a character's
unusable selfie were counted as not rendered yet with a command that only blocks them again; a render given
``--only`` had the rest of the shot list counted as work it failed to do; a library render's ``dtype``, which no
``idcli render`` option says, was "finished" by a command that renders other images.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import StoppedAfterFirst, render_on_cpu
from harbour_night import SHOTS
from typer.testing import CliRunner

import idcli
from idcli.cli import app

MARA_ONLY = SHOTS.replace("  ana:\n    selfies: [selfies/ana.jpg]\n", "").replace("{ana}", "{mara}")


@pytest.fixture
def shots(write_shotlist, selfies: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (300, 300), (128, 128, 128)).save(selfies / "ana.jpg", format="JPEG")  # no face in it
    return write_shotlist(SHOTS)


def _are(count: int) -> str:
    """The note's verb for a count of takes (a count of one "is")."""
    return "is" if count == 1 else "are"


def _committed(out: Path) -> set[str]:
    return {path.stem for path in out.glob("*/*_t*.png")}


def test_takes_blocked_by_an_unusable_selfie_are_counted_apart_with_their_fix_not_the_render(
        shots: Path, tmp_path: Path, engine_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    with pytest.raises(idcli.Interrupted):
        render_on_cpu(shots, out, engine_factory, batch_size=1, progress=StoppedAfterFirst())
    # commits run beside the render: on a loaded machine every batch rendered before the Ctrl-C is committed
    (out / "sc01_sh040" / "sc01_sh040_t1.png").unlink(missing_ok=True)  # the last: one take always left
    monkeypatch.chdir(tmp_path)
    committed = _committed(out)
    left = 5 - len(committed)  # the 7 takes less ana's 2, which the render could not plan
    assert 1 <= len(committed) < 5
    said = CliRunner().invoke(app, ["verify", "out"]).stderr
    command = "idcli render shots.yaml --out out --device cpu"
    # counted: not "7 - committed not rendered yet" with a command that blocks ana's two again
    assert (f"idcli: note: {left} of the 7 takes of shots.yaml are not rendered yet (its last render was stopped "
            f"before it ended); to finish: {command}; 2 blocked: character 'ana' cannot be used: ") in said, said
    assert "— replace characters.ana.selfies[0] (shots.yaml:9:15); a render before that blocks them again" in said
    document = json.loads(CliRunner().invoke(app, ["verify", "out", "--json"]).stdout)["unfinished"]
    # the keys there were keep their meaning: every take of the shot list with no image, the command unchanged
    assert document["missing"] == left + 2 and {"sc01_sh030_t1", "sc01_sh030_t2"} <= set(document["missing_takes"])
    assert document["command"] == command
    blocked = document["blocked"]
    assert [(b["character"], b["takes"], b["field"], b["line"]) for b in blocked] == [
        ("ana", ["sc01_sh030_t1", "sc01_sh030_t2"], "characters.ana.selfies[0]", 9)]
    assert "no face" in blocked[0]["message"]
    assert len(document["left_takes"]) == left and not set(document["left_takes"]) & committed

    # the command finishes what it can; then the note says only what blocks the rest, and offers no render
    render_on_cpu(shots, out, engine_factory)
    said = CliRunner().invoke(app, ["verify", "out"]).stderr
    assert ("idcli: note: 2 of the 7 takes of shots.yaml are blocked: character 'ana' cannot be used: ") in said, said
    assert "not rendered yet" not in said and "to finish" not in said and "idcli render" not in said
    assert "ended with 2 failed" not in said  # the blocked two are the failures: said once, as blocked


def test_a_render_given_only_counts_what_it_was_asked_for_and_says_the_rest_were_not_asked_for(
        write_shotlist, tmp_path: Path, engine_factory, tiny_engines, monkeypatch: pytest.MonkeyPatch) -> None:
    import idcli.run as run_module

    shots = write_shotlist(MARA_ONLY)
    out = tmp_path / "out"
    with pytest.raises(idcli.Interrupted):
        render_on_cpu(shots, out, engine_factory, batch_size=1, progress=StoppedAfterFirst(), only=["sc01_sh020"])
    # commits run beside the render: on a loaded machine all 3 could be committed before the Ctrl-C took
    (out / "sc01_sh020" / "sc01_sh020_t3.png").unlink(missing_ok=True)
    monkeypatch.chdir(tmp_path)
    committed = _committed(out)
    assert committed and {name.rsplit("_", 1)[0] for name in committed} == {"sc01_sh020"} and len(committed) < 3
    said = CliRunner().invoke(app, ["verify", "out"]).stderr
    command = "idcli render shots.yaml --out out --device cpu --only sc01_sh020"
    assert (f"idcli: note: {3 - len(committed)} of the 3 takes of shots.yaml its last render was asked for "
            f"(--only sc01_sh020) {_are(3 - len(committed))} not rendered yet (its last render was stopped before it "
            f"ended); to finish: "
            f"{command}; 3 other shots of shots.yaml were not asked for in that render") in said, said
    document = json.loads(CliRunner().invoke(app, ["verify", "out", "--json"]).stdout)["unfinished"]
    assert document["only"] == ["sc01_sh020"] and document["asked_command"] == command
    assert document["command"] == "idcli render shots.yaml --out out --device cpu"  # as before: the whole list
    assert document["not_asked_takes"] == ["sc01_sh010_t1", "sc01_sh030_t1", "sc01_sh030_t2", "sc01_sh040_t1"]
    assert document["missing"] == 7 - len(committed)  # as before: every take of the shot list with no image

    # the command run as printed renders what was asked for and nothing else; then none of it is left
    monkeypatch.setattr(run_module, "default_engine", lambda model, runtime, adapter: tiny_engines(
        model.preset, adapter))
    finished = CliRunner().invoke(app, [*shlex.split(command)[1:], "--no-qa"])
    assert finished.exit_code == 0, finished.output
    assert _committed(out) == {"sc01_sh020_t1", "sc01_sh020_t2", "sc01_sh020_t3"}
    said = CliRunner().invoke(app, ["verify", "out"]).stderr
    assert ("idcli: note: its last render rendered all it was asked for (--only sc01_sh020); 3 other shots of "
            "shots.yaml were not asked for in that render; to render them: idcli render shots.yaml --out out "
            "--device cpu") in said, said
    assert "not rendered yet" not in said and "to finish" not in said


def test_a_library_renders_dtype_is_said_in_words_not_offered_as_a_command_that_renders_other_images(
        write_shotlist, tmp_path: Path, engine_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    shots = write_shotlist(MARA_ONLY)
    out = tmp_path / "out"
    with pytest.raises(idcli.Interrupted):
        render_on_cpu(shots, out, engine_factory, batch_size=1, progress=StoppedAfterFirst(), dtype="float16")
    monkeypatch.chdir(tmp_path)
    said = CliRunner().invoke(app, ["verify", "out"]).stderr
    # "to finish: idcli render shots.yaml --out out --device cpu" planned float32 keys: every take again
    assert "to finish: idcli render" not in said, said
    assert ("are not rendered yet (its last render was stopped before it ended); to finish, repeat that render as "
            "it was asked, with dtype='float16' (a library call's: no idcli render option says it)") in said, said
    document = json.loads(CliRunner().invoke(app, ["verify", "out", "--json"]).stdout)["unfinished"]
    assert document["not_in_command"] == {"dtype": "float16"}
    assert document["command"] == "idcli render shots.yaml --out out --device cpu"  # its meaning unchanged
    # the dtype the shot list says itself (its model.dtype, auto) is one the command repeats: offered as before
    with pytest.raises(idcli.Interrupted):
        render_on_cpu(shots, tmp_path / "same", engine_factory, batch_size=1, progress=StoppedAfterFirst(),
                      dtype="auto")
    said = CliRunner().invoke(app, ["verify", "same"]).stderr
    assert "to finish: idcli render shots.yaml --out same --device cpu" in said, said


def test_a_library_renders_added_takes_are_rendered_by_the_printed_command(
        write_shotlist, tmp_path: Path, engine_factory, tiny_engines, monkeypatch: pytest.MonkeyPatch) -> None:
    """``takes`` (a library caller's raised take counts) is not an option either, yet the folder's manifest records
    the takes planned, so the printed command plans them again (idcli/added_takes.py): it is offered as is."""
    import idcli.run as run_module

    shots = write_shotlist(MARA_ONLY)
    out = tmp_path / "out"
    with pytest.raises(idcli.Interrupted):
        render_on_cpu(shots, out, engine_factory, batch_size=1, progress=StoppedAfterFirst(),
                      takes={"sc01_sh040": 3})
    monkeypatch.chdir(tmp_path)
    committed = _committed(out)
    said = CliRunner().invoke(app, ["verify", "out"]).stderr
    assert f"{9 - len(committed)} of the 9 takes of shots.yaml are not rendered yet" in said, said
    command = "idcli render shots.yaml --out out --device cpu"
    assert f"to finish: {command}" in said
    monkeypatch.setattr(run_module, "default_engine", lambda model, runtime, adapter: tiny_engines(
        model.preset, adapter))
    finished = CliRunner().invoke(app, [*shlex.split(command)[1:], "--no-qa"])
    assert finished.exit_code == 0, finished.output
    assert {"sc01_sh040_t2", "sc01_sh040_t3"} <= _committed(out) and len(_committed(out)) == 9
    assert json.loads(CliRunner().invoke(app, ["verify", "out", "--json"]).stdout)["unfinished"] is None


@pytest.mark.parametrize("fix", ["selfie replaced in place", "shot list edited"])
def test_blocked_takes_whose_selfie_was_fixed_since_are_offered_the_render_that_now_makes_them(
        fix: str, shots: Path, selfies: Path, tmp_path: Path, engine_factory, tiny_engines,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """hostile-read-25: once the selfie the note names was replaced (or the shot list edited to name another), the
    note still said the takes "are blocked", "a render before that blocks them again", and offered no command."""
    import shutil

    import idcli.run as run_module

    out = tmp_path / "out"
    render_on_cpu(shots, out, engine_factory)  # ana's 2 takes blocked, the rest rendered
    monkeypatch.chdir(tmp_path)
    assert "2 of the 7 takes of shots.yaml are blocked" in CliRunner().invoke(app, ["verify", "out"]).stderr
    if fix == "selfie replaced in place":
        shutil.copy(selfies / "mara_1.jpg", selfies / "ana.jpg")
        changed = "selfies/ana.jpg was changed since that render"
    else:
        shots.write_text(SHOTS.replace("selfies/ana.jpg", "selfies/mara_1.jpg"), "utf-8")
        changed = "shots.yaml was changed since that render"
    said = CliRunner().invoke(app, ["verify", "out"]).stderr
    command = "idcli render shots.yaml --out out --device cpu"
    assert ("idcli: note: 2 of the 7 takes of shots.yaml were blocked in its last render: character 'ana' cannot be "
            "used: ") in said, said
    assert f"; {changed}: if that fixed it, this renders them: {command}" in said, said
    assert "are blocked" not in said and "blocks them again" not in said
    document = json.loads(CliRunner().invoke(app, ["verify", "out", "--json"]).stdout)["unfinished"]
    assert [(b["takes"], b["changed_since"]) for b in document["blocked"]] == [
        (["sc01_sh030_t1", "sc01_sh030_t2"], changed.split(" was ")[0])]
    assert document["left_takes"] == [] and document["missing"] == 2  # still counted apart: sums unchanged

    # the command, run as printed, renders them
    monkeypatch.setattr(run_module, "default_engine", lambda model, runtime, adapter: tiny_engines(
        model.preset, adapter))
    finished = CliRunner().invoke(app, [*shlex.split(command)[1:], "--no-qa"])
    assert finished.exit_code == 0, finished.output
    assert {"sc01_sh030_t1", "sc01_sh030_t2"} <= _committed(out)
    assert json.loads(CliRunner().invoke(app, ["verify", "out", "--json"]).stdout)["unfinished"] is None


def test_a_take_blocked_by_two_characters_names_both_and_is_offered_its_render_only_once_both_are_replaced(
        write_shotlist, selfies: Path, tmp_path: Path, engine_factory, tiny_engines,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """hostile-read-25: a shot naming two characters whose selfies show no face was said blocked by the first alone
    (the render itself named both): replacing that one file left the takes blocked by the other."""
    import shutil

    from PIL import Image

    import idcli.run as run_module

    for name, shade in (("ana", 128), ("bo", 100)):
        Image.new("RGB", (300, 300), (shade, 128, 128)).save(selfies / f"{name}.jpg", format="JPEG")  # no face
    shots = write_shotlist(SHOTS.replace("  ana:\n", "  bo:\n    selfies: [selfies/bo.jpg]\n  ana:\n").replace(
        "{ana} under the lighthouse", "{ana} and {bo} under the lighthouse"))
    out = tmp_path / "out"
    render_on_cpu(shots, out, engine_factory)
    monkeypatch.chdir(tmp_path)
    said = CliRunner().invoke(app, ["verify", "out"]).stderr
    assert "2 of the 7 takes of shots.yaml are blocked: character 'ana' cannot be used: selfies/ana.jpg" in said, said
    assert ("; character 'bo' cannot be used: selfies/bo.jpg: no face found; use a photo where the face is clearly "
            "visible — replace characters.bo.selfies[0] (shots.yaml:9:15); a render before that blocks them again"
            ) in said, said
    document = json.loads(CliRunner().invoke(app, ["verify", "out", "--json"]).stdout)["unfinished"]
    assert [(b["character"], b["takes"], [(a["character"], a["field"]) for a in b["also"]]) for b in
            document["blocked"]] == [("ana", ["sc01_sh030_t1", "sc01_sh030_t2"], [("bo", "characters.bo.selfies[0]")])]
    assert document["left_takes"] == [] and document["missing"] == 2  # counted once

    shutil.copy(selfies / "mara_1.jpg", selfies / "ana.jpg")  # one of the two replaced: still blocked, by bo
    said = CliRunner().invoke(app, ["verify", "out"]).stderr
    assert "2 of the 7 takes of shots.yaml are blocked: character 'bo' cannot be used" in said, said
    assert "'ana'" not in said and "idcli render" not in said and "blocks them again" in said

    shutil.copy(selfies / "mara_1.jpg", selfies / "bo.jpg")
    said = CliRunner().invoke(app, ["verify", "out"]).stderr
    command = "idcli render shots.yaml --out out --device cpu"
    assert "2 of the 7 takes of shots.yaml were blocked in its last render: character 'ana' cannot be used" in said
    assert f"was changed since that render: if that fixed it, this renders them: {command}" in said, said
    monkeypatch.setattr(run_module, "default_engine", lambda model, runtime, adapter: tiny_engines(
        model.preset, adapter))
    finished = CliRunner().invoke(app, [*shlex.split(command)[1:], "--no-qa"])
    assert finished.exit_code == 0, finished.output
    assert json.loads(CliRunner().invoke(app, ["verify", "out", "--json"]).stdout)["unfinished"] is None


def test_the_asked_command_leaves_out_an_only_shot_the_edited_shot_list_no_longer_holds(
        write_shotlist, tmp_path: Path, engine_factory, tiny_engines, monkeypatch: pytest.MonkeyPatch) -> None:
    """hostile-read-25: after ``--only sc01_sh020 --only sc01_sh040`` stopped and sc01_sh040 was renamed in the shot
    list, the note offered ``… --only sc01_sh020 --only sc01_sh040 (shots.yaml was changed since that render: this
    renders what it holds now)``, which render refuses (exit 2: no such shot)."""
    import idcli.run as run_module

    shots = write_shotlist(MARA_ONLY)
    out = tmp_path / "out"
    render_on_cpu(shots, out, engine_factory, only=["sc01_sh020", "sc01_sh040"])
    for take in ("sc01_sh020/sc01_sh020_t3.png", "sc01_sh040/sc01_sh040_t1.png"):  # not stopped: a take of each left
        (out / take).unlink()
    monkeypatch.chdir(tmp_path)
    shots.write_text(MARA_ONLY.replace("sc01_sh040", "sc01_sh050"), "utf-8")
    said = CliRunner().invoke(app, ["verify", "out"]).stderr
    command = "idcli render shots.yaml --out out --device cpu --only sc01_sh020"
    assert (f"; to finish: {command} (shots.yaml was changed since that render: this renders what it holds now; "
            "--only sc01_sh040 left out: no such shot in it now)") in said, said
    document = json.loads(CliRunner().invoke(app, ["verify", "out", "--json"]).stdout)["unfinished"]
    assert document["asked_command"] == command and document["only"] == ["sc01_sh020", "sc01_sh040"]
    monkeypatch.setattr(run_module, "default_engine", lambda model, runtime, adapter: tiny_engines(
        model.preset, adapter))
    finished = CliRunner().invoke(app, [*shlex.split(command)[1:], "--no-qa"])
    assert finished.exit_code == 0, finished.output
    assert {"sc01_sh020_t1", "sc01_sh020_t2", "sc01_sh020_t3"} <= _committed(out)

    # none of the shots asked for is in it now: no command that would be refused, the whole list's offered
    shots.write_text(MARA_ONLY.replace("sc01_sh040", "sc01_sh050").replace("sc01_sh020", "sc01_sh025"), "utf-8")
    render_on_cpu(shots, tmp_path / "other", engine_factory, only=["sc01_sh025"])
    (tmp_path / "other" / "sc01_sh025" / "sc01_sh025_t1.png").unlink()
    shots.write_text(MARA_ONLY, "utf-8")
    said = CliRunner().invoke(app, ["verify", "other"]).stderr
    assert "--only sc01_sh025" not in said.split("not rendered yet")[1], said
    assert ("shots.yaml was changed since that render and holds none of the shots it was asked for now: to render "
            "what it holds, idcli render shots.yaml --out other --device cpu") in said, said


@pytest.mark.parametrize("mix", ["only a blocked and an open shot, stopped", "only the blocked shot and another",
                                 "every shot, blocked ones left", "every shot, stopped"])
def test_left_blocked_and_not_asked_add_up_to_missing_in_every_mix(
        mix: str, shots: Path, tmp_path: Path, engine_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    """hostile-read-25, a guard (passing before): each missing take is counted in exactly one of the three, in the
    JSON and in the note's numbers."""
    out = tmp_path / "out"
    only = {"only a blocked and an open shot, stopped": ["sc01_sh030", "sc01_sh020", "sc01_sh020"],
            "only the blocked shot and another": ["sc01_sh030", "sc01_sh010"]}.get(mix)
    render_on_cpu(shots, out, engine_factory, only=only)
    if "stopped" in mix:  # what a stop leaves, made so: how many a Ctrl-C lets commit depends on the machine's load
        (out / "sc01_sh020" / "sc01_sh020_t2.png").unlink()
    monkeypatch.chdir(tmp_path)
    document = json.loads(CliRunner().invoke(app, ["verify", "out", "--json"]).stdout)["unfinished"]
    left, not_asked = document["left_takes"], document["not_asked_takes"]
    blocked = [take for entry in document["blocked"] for take in entry["takes"]]
    assert sorted(left + not_asked + blocked) == sorted(document["missing_takes"]), document
    assert len(set(left + not_asked + blocked)) == document["missing"]
    assert blocked == ["sc01_sh030_t1", "sc01_sh030_t2"]  # ana's: in every mix, whether asked for or not
    said = CliRunner().invoke(app, ["verify", "out"]).stderr
    if left:
        assert f"{len(left)} of the " in said and f"{_are(len(left))} not rendered yet" in said, said
    assert ("2 blocked: " if left else "2 of the ") in said, said
    shots_not_asked = len({take.rsplit("_t", 1)[0] for take in not_asked})
    assert (f"{shots_not_asked} other shot" in said) == bool(not_asked), said


def test_a_blocked_selfie_that_cannot_be_read_is_no_crash_of_the_render_and_still_said_blocked(
        shots: Path, tmp_path: Path, engine_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    """hostile-read-25: the run-start line hashes a blocked character's selfies; one that cannot be read (the very
    reason it is unusable: permissions, an I/O error) must not stop the render, nor read as replaced after."""
    import idcli.hashing as hashing

    real = hashing.sha256_file

    def unreadable(path: Path) -> str:
        if path.name == "ana.jpg":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(hashing, "sha256_file", unreadable)
    out = tmp_path / "out"
    report = render_on_cpu(shots, out, engine_factory)
    assert report.rendered == 5
    monkeypatch.chdir(tmp_path)
    said = CliRunner().invoke(app, ["verify", "out"]).stderr
    assert "2 of the 7 takes of shots.yaml are blocked: " in said and "blocks them again" in said, said


def test_plan_offers_no_render_to_finish_when_only_blocked_takes_are_left(
        shots: Path, tmp_path: Path, engine_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    """hostile-read-25: ``idcli plan``'s last line counted blocked takes as left to do, ``7 jobs: 5 done, 2 blocked;
    to finish: idcli render …``: that render blocks them again (exit 1), as the morning note said before 81."""
    render_on_cpu(shots, tmp_path / "out", engine_factory)
    monkeypatch.chdir(tmp_path)
    said = CliRunner().invoke(app, ["plan", "shots.yaml", "--out", "out", "--device", "cpu"]).output
    assert ("7 jobs: 5 done, 2 blocked; the 2 blocked render once the file named above is fixed, then: "
            "idcli render shots.yaml --out out --device cpu") in said, said
    assert "to finish" not in said


def test_a_count_of_one_says_is_and_the_same_command_is_printed_once(
        write_shotlist, selfies: Path, tmp_path: Path, engine_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    """night-counts-tail: "1 of the 6 takes … are not rendered yet", "1 of the 6 takes … are blocked"; and with takes
    left and blocked takes whose selfie was replaced since, the note printed the same render command twice."""
    import shutil

    from PIL import Image

    Image.new("RGB", (300, 300), (128, 128, 128)).save(selfies / "ana.jpg", format="JPEG")  # no face in it
    shots = write_shotlist(SHOTS.replace("    takes: 2\n", ""))  # ana's shot: one take
    out = tmp_path / "out"
    render_on_cpu(shots, out, engine_factory)  # ana's one take blocked, the other 5 rendered
    monkeypatch.chdir(tmp_path)
    said = CliRunner().invoke(app, ["verify", "out"]).stderr
    assert "idcli: note: 1 of the 6 takes of shots.yaml is blocked: character 'ana' cannot be used" in said, said
    assert "a render before that blocks it again" in said, said
    (out / "sc01_sh040" / "sc01_sh040_t1.png").unlink()  # one take left to render
    said = CliRunner().invoke(app, ["verify", "out"]).stderr
    command = "idcli render shots.yaml --out out --device cpu"
    assert f"idcli: note: 1 of the 6 takes of shots.yaml is not rendered yet; to finish: {command}; 1 blocked: " \
        in said, said
    shutil.copy(selfies / "mara_1.jpg", selfies / "ana.jpg")  # fixed: the blocked take is the same command's
    said = CliRunner().invoke(app, ["verify", "out"]).stderr
    assert f"1 of the 6 takes of shots.yaml is not rendered yet; to finish: {command}; 1 was blocked in its last " \
        "render: character 'ana' cannot be used: " in said, said
    assert said.count("idcli render") == 1, said
    assert "selfies/ana.jpg was changed since that render: if that fixed it, the command to finish renders it too" \
        in said, said


def test_verify_json_of_a_folder_with_no_image_yet_keeps_the_unfinished_object_and_its_exit_code(
        shots: Path, tmp_path: Path, engine_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    """night-counts-tail: an ``--only`` render of the blocked shot alone leaves no image; ``verify`` exits 2 with the
    note in its message, and its ``--json`` document had no ``unfinished``: a script reading it got nothing."""
    out = tmp_path / "out"
    render_on_cpu(shots, out, engine_factory, only=["sc01_sh030"])  # ana's 2 takes blocked: no image at all
    monkeypatch.chdir(tmp_path)
    assert _committed(out) == set()
    said = CliRunner().invoke(app, ["verify", "out"])
    assert said.exit_code == 2 and "no committed renders to check yet; 2 of the 2 takes" in said.stderr, said.stderr
    result = CliRunner().invoke(app, ["verify", "out", "--json"])
    assert result.exit_code == 2, result.output  # its meaning kept: nothing checked is no pass
    document = json.loads(result.stdout)
    assert document["ok"] is False and document["exit_code"] == 2
    assert document["error"]["type"] == "InputError" and "no committed renders to check yet" in \
        document["error"]["message"]
    unfinished = document["unfinished"]
    assert unfinished["only"] == ["sc01_sh030"] and unfinished["missing"] == 7
    assert [(b["character"], b["takes"]) for b in unfinished["blocked"]] == [
        ("ana", ["sc01_sh030_t1", "sc01_sh030_t2"])]
    assert document["counts"]["checked"] == 0 and document["images"] == []


RETAKES = """\
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


@pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")
def test_a_retake_flagged_render_left_unfinished_is_offered_its_retake_rounds_again(
        write_shotlist, tmp_path: Path, engine_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    """night-counts-tail: ``render --retake-flagged --max-takes 3`` was not in the run-start ``request``: with a
    round's take left, the note offered a plain render, which finishes that round and runs no other."""
    pytest.importorskip("insightface", exc_type=ImportError)
    from idcli.review.retake import render_with_retakes

    shots = write_shotlist(RETAKES)
    out = tmp_path / "out"
    # random weights render noise: every image of 'face' is flagged no_face, so it gets takes 2 and 3
    render_with_retakes(idcli.load_shotlist(shots), out, max_takes=3, device="cpu", engine_factory=engine_factory)
    (out / "face" / "face_t3.png").unlink()  # the last round's take, as a stop before its commit leaves it
    monkeypatch.chdir(tmp_path)
    said = CliRunner().invoke(app, ["verify", "out"]).stderr
    command = "idcli render shots.yaml --out out --device cpu --retake-flagged --max-takes 3"
    assert f"1 of the 4 takes of shots.yaml is not rendered yet; to finish: {command}" in said, said
    document = json.loads(CliRunner().invoke(app, ["verify", "out", "--json"]).stdout)["unfinished"]
    assert document["asked_command"] == command and document["command"] == command

    # at the default --max-takes the flag alone
    render_with_retakes(idcli.load_shotlist(shots), out, device="cpu", engine_factory=engine_factory)
    (out / "face" / "face_t6.png").unlink()
    said = CliRunner().invoke(app, ["verify", "out"]).stderr
    assert "to finish: idcli render shots.yaml --out out --device cpu --retake-flagged" in said, said
    assert "--max-takes" not in said


class StoppedAtTheNextRound:
    """A progress object that a Ctrl-C stops as the retake rounds add a take: between two rounds."""

    def start(self, total: int, already_done: int) -> None: ...
    def advance(self, outcome: Any) -> None: ...
    def note(self, text: str) -> None:
        if "adding take" in text:
            raise KeyboardInterrupt
    def stop(self) -> None: ...


def test_a_retake_flagged_render_stopped_between_two_rounds_says_the_rounds_left_and_the_command_that_goes_on(
        write_shotlist, tmp_path: Path, engine_factory, tiny_engines, monkeypatch: pytest.MonkeyPatch) -> None:
    """night-counts-3: stopped between two retake rounds, no take is missing, so neither the stop nor verify nor
    review said anything (88 left it alone): the shots every take of which QA flagged never got their further takes.
    The stop itself escaped as a bare KeyboardInterrupt, no report, where a stop within a round is ``Interrupted``."""
    pytest.importorskip("insightface", exc_type=ImportError)
    import idcli.run as run_module
    from idcli.review.retake import render_with_retakes

    shots = write_shotlist(RETAKES)
    out = tmp_path / "out"
    with pytest.raises(idcli.Interrupted) as stopped:
        # random weights render noise: every image of 'face' is flagged no_face, so the next round adds face_t2
        render_with_retakes(idcli.load_shotlist(shots), out, max_takes=3, device="cpu", engine_factory=engine_factory,
                            progress=StoppedAtTheNextRound())
    assert stopped.value.report is not None and stopped.value.report.rendered == 2  # round one's, reported
    assert _committed(out) == {"face_t1", "land_t1"}
    monkeypatch.chdir(tmp_path)
    command = "idcli render shots.yaml --out out --device cpu --retake-flagged --max-takes 3"
    said = CliRunner().invoke(app, ["verify", "out"]).stderr
    assert ("idcli: note: 1 shot of shots.yaml has every take flagged by identity QA and fewer than 3 takes (face): "
            f"its last render, with --retake-flagged, stopped before its retake rounds ended; to finish: {command}"
            ) in said, said
    document = json.loads(CliRunner().invoke(app, ["verify", "out", "--json"]).stdout)["unfinished"]
    assert (document["missing"], document["retake_shots"], document["asked_command"]) == (0, ["face"], command)
    review = CliRunner().invoke(app, ["review", "out"])
    assert "has every take flagged by identity QA" in review.stderr, review.output

    # the command, run as printed, goes on with the rounds; then nothing is left to say
    monkeypatch.setattr(run_module, "default_engine", lambda model, runtime, adapter: tiny_engines(
        model.preset, adapter))
    finished = CliRunner().invoke(app, shlex.split(command)[1:])
    assert finished.exit_code == 0, finished.output
    assert _committed(out) == {"face_t1", "face_t2", "face_t3", "land_t1"}
    assert json.loads(CliRunner().invoke(app, ["verify", "out", "--json"]).stdout)["unfinished"] is None


def _stopped_between_two_rounds(write_shotlist, out: Path, engine_factory) -> None:
    """``render --retake-flagged --max-takes 3`` stopped as it adds face_t2: face_t1 flagged, land_t1 not."""
    from idcli.review.retake import render_with_retakes

    with pytest.raises(idcli.Interrupted):
        # random weights render noise: every image of 'face' is flagged no_face, so the next round adds face_t2
        render_with_retakes(idcli.load_shotlist(write_shotlist(RETAKES)), out, max_takes=3, device="cpu",
                            engine_factory=engine_factory, progress=StoppedAtTheNextRound())
    assert _committed(out) == {"face_t1", "land_t1"}


def test_a_flagged_take_edited_since_is_judged_by_the_note_as_the_retake_rounds_judge_it(
        write_shotlist, tmp_path: Path, engine_factory, tiny_engines, monkeypatch: pytest.MonkeyPatch) -> None:
    """retake-cost: the note reuses the hashes verify has just taken (and the image stamps elsewhere) where it hashed
    every flagged take again; an image changed since its commit is still no flagged take, in verify, in review, and
    in the rounds themselves (a render keeps an image edited by hand, unjudged: no take is added for it)."""
    pytest.importorskip("insightface", exc_type=ImportError)
    import idcli.run as run_module

    out = tmp_path / "out"
    _stopped_between_two_rounds(write_shotlist, out, engine_factory)
    monkeypatch.chdir(tmp_path)
    document = json.loads(CliRunner().invoke(app, ["verify", "out", "--json"]).stdout)["unfinished"]
    assert document["retake_shots"] == ["face"]
    # face_t1 edited by hand: its bytes another image's (land_t1's), its sidecar as committed
    (out / "face" / "face_t1.png").write_bytes((out / "land" / "land_t1.png").read_bytes())
    verified = CliRunner().invoke(app, ["verify", "out", "--json"])
    assert verified.exit_code != 0  # the changed image fails verify ...
    assert json.loads(verified.stdout)["unfinished"] is None  # ... and the note asks for no retake round for it
    review = CliRunner().invoke(app, ["review", "out"])
    assert "has every take flagged by identity QA" not in review.stderr, review.output
    # the rounds agree: the render with --retake-flagged keeps face_t1 and adds no take to face
    monkeypatch.setattr(run_module, "default_engine", lambda model, runtime, adapter: tiny_engines(
        model.preset, adapter))
    again = CliRunner().invoke(app, ["render", "shots.yaml", "--out", "out", "--device", "cpu", "--retake-flagged",
                                     "--max-takes", "3"])
    assert again.exit_code == 0, again.output
    assert _committed(out) == {"face_t1", "land_t1"}


def test_the_note_judges_a_flagged_take_by_the_hashes_verify_took(write_shotlist, tmp_path: Path,
                                                                  engine_factory) -> None:
    """retake-cost: ``unfinished_takes`` takes the sha256 verify read each image with (by path) rather than reading
    every flagged take's image again: an image verify read as other bytes than its sidecar records is no flagged take,
    one it read as recorded is."""
    pytest.importorskip("insightface", exc_type=ImportError)
    import os

    from idcli.unfinished import unfinished_takes

    out = tmp_path / "out"
    _stopped_between_two_rounds(write_shotlist, out, engine_factory)
    image = os.path.normpath(out / "face" / "face_t1.png")
    recorded = json.loads((out / "face" / "face_t1.json").read_text("utf-8"))["image"]["sha256"]
    judged = unfinished_takes(out, {image: recorded})
    assert judged is not None and judged.retake_shots == ("face",)
    assert unfinished_takes(out, {image: "0" * 64}) is None  # read as changed: no retake round left
    judged = unfinished_takes(out)  # no hashes given: the image read here
    assert judged is not None and judged.retake_shots == ("face",)


def test_a_large_only_selection_is_finished_by_a_command_of_prefixes(
        write_shotlist, tmp_path: Path, engine_factory, tiny_engines, monkeypatch: pytest.MonkeyPatch) -> None:
    """night-counts-3: an --only render of hundreds of shots was offered "to finish" with one --only per shot. It is
    said by prefixes where one matches chosen shots alone (the shot list unchanged), whether or not another shot
    lacks takes too (hostile-read-31: the command with no --only offered where none did rendered other shots)."""
    import idcli.run as run_module

    ids = [f"sc{n:02d}" for n in range(1, 13)]
    shots = write_shotlist("version: 1\nproject: many\nmodel: {preset: tiny-sd}\n"
                           "defaults: {size: 64x64, steps: 1}\nshots:\n"
                           + "".join(f"  - {{id: {shot}, prompt: \"a harbour at dusk, view {shot}\"}}\n"
                                     for shot in ids))
    out = tmp_path / "out"
    render_on_cpu(shots, out, engine_factory, only=["sc12"])  # done before: not asked for in the night's render
    with pytest.raises(idcli.Interrupted):
        render_on_cpu(shots, out, engine_factory, batch_size=1, progress=StoppedAfterFirst(), only=ids[:11])
    (out / "sc11" / "sc11_t1.png").unlink(missing_ok=True)  # commits run beside the render: one is always left
    left = 12 - len(_committed(out))
    assert 1 <= left < 11
    monkeypatch.chdir(tmp_path)
    whole = "idcli render shots.yaml --out out --device cpu"
    short = f"{whole} --only 'sc0*' --only sc10 --only sc11"
    said = CliRunner().invoke(app, ["verify", "out"]).stderr
    # said short by a prefix that matches chosen shots alone (--only takes patterns, since night-counts-3); never
    # with no --only, which renders again a take of sc12 not done as this render keys it (hostile-read-31)
    assert (f"of the 11 takes of shots.yaml its last render was asked for (--only sc01, sc02, sc03, sc04, sc05, … "
            f"(11 shots)) {_are(left)} not rendered yet (its last render was stopped before it ended); to finish: "
            f"{short}") in said, said
    assert "--only sc01 --only" not in said, said
    document = json.loads(CliRunner().invoke(app, ["verify", "out", "--json"]).stdout)["unfinished"]
    assert document["asked_command"] == short and document["command"] == whole

    # sc12's image gone too: the selection is said the same, and the note says sc12 was not asked for
    done_before = (out / "sc12" / "sc12_t1.png").read_bytes()
    (out / "sc12" / "sc12_t1.png").unlink()
    said = CliRunner().invoke(app, ["verify", "out"]).stderr
    assert f"to finish: {short}; 1 other shot of shots.yaml was not asked for in that render" in said, said
    document = json.loads(CliRunner().invoke(app, ["verify", "out", "--json"]).stdout)["unfinished"]
    assert document["asked_command"] == short

    # the short command, run as printed, renders the takes left of the 11 shots and not sc12
    monkeypatch.setattr(run_module, "default_engine", lambda model, runtime, adapter: tiny_engines(
        model.preset, adapter))
    finished = CliRunner().invoke(app, [*shlex.split(short)[1:], "--json"])
    assert finished.exit_code == 0, finished.output
    counts = json.loads(finished.stdout)["counts"]
    assert (counts["rendered"], counts["skipped"]) == (left, 11 - left), counts
    assert _committed(out) == {f"{shot}_t1" for shot in ids[:11]}
    # the run-start line records the shots the pattern selected: the note counts them as asked for
    said = CliRunner().invoke(app, ["verify", "out"]).stderr
    assert ("its last render rendered all it was asked for (--only sc01, sc02, sc03, sc04, sc05, … (11 shots)); 1 "
            "other shot of shots.yaml was not asked for in that render; to render it: " + whole) in said, said
    (out / "sc12" / "sc12_t1.png").write_bytes(done_before)
    assert json.loads(CliRunner().invoke(app, ["verify", "out", "--json"]).stdout)["unfinished"] is None
    refused = CliRunner().invoke(app, ["render", "shots.yaml", "--out", "out", "--device", "cpu", "--only", "zz*"])
    assert refused.exit_code == idcli.EXIT_INVALID_INPUT and "--only zz*: no shot in shots.yaml matches it" in (
        refused.stderr), refused.output


def test_a_large_selection_is_not_finished_by_a_command_that_renders_a_shot_it_was_not_asked_for_again(
        write_shotlist, tmp_path: Path, engine_factory, tiny_engines, monkeypatch: pytest.MonkeyPatch) -> None:
    """hostile-read-31: "every take left is of the 11 shots: no --only needed" judged takes by their images alone. A
    shot not asked for whose take is there but not done as the night's render would key it (rendered before in
    another dtype: another preset, a selfie replaced since, do the same) is rendered again by the command with no
    --only, its take moved aside: the work --only was given to leave alone. The selection is said as it was asked."""
    import idcli.run as run_module

    ids = [f"sc{n:02d}" for n in range(1, 13)]
    shots = write_shotlist("version: 1\nproject: many\nmodel: {preset: tiny-sd}\n"
                           "defaults: {size: 64x64, steps: 1}\nshots:\n"
                           + "".join(f"  - {{id: {shot}, prompt: \"a harbour at dusk, view {shot}\"}}\n"
                                     for shot in ids))
    out = tmp_path / "out"
    # sc12 rendered before in another dtype: a take there, not one the night's render would call done
    render_on_cpu(shots, out, engine_factory, only=["sc12"], dtype="bfloat16")
    with pytest.raises(idcli.Interrupted):
        render_on_cpu(shots, out, engine_factory, batch_size=1, progress=StoppedAfterFirst(), only=ids[:11])
    (out / "sc11" / "sc11_t1.png").unlink(missing_ok=True)  # commits run beside the render: one is always left
    left = 12 - len(_committed(out))
    monkeypatch.chdir(tmp_path)
    document = json.loads(CliRunner().invoke(app, ["verify", "out", "--json"]).stdout)["unfinished"]
    offered = document["asked_command"]
    assert offered == "idcli render shots.yaml --out out --device cpu --only 'sc0*' --only sc10 --only sc11", offered
    said = CliRunner().invoke(app, ["verify", "out"]).stderr
    assert "no --only needed" not in said, said

    # the command offered, run as printed, renders the takes left of the 11 shots, and sc12's take is left as it was
    sc12 = (out / "sc12" / "sc12_t1.png").read_bytes()
    monkeypatch.setattr(run_module, "default_engine", lambda model, runtime, adapter: tiny_engines(
        model.preset, adapter))
    finished = CliRunner().invoke(app, [*shlex.split(offered)[1:], "--json"])
    assert finished.exit_code == 0, finished.output
    counts = json.loads(finished.stdout)["counts"]
    assert (counts["rendered"], counts["skipped"]) == (left, 11 - left), counts
    assert (out / "sc12" / "sc12_t1.png").read_bytes() == sc12
