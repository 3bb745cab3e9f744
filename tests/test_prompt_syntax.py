"""Other tools' prompt syntax (AUTOMATIC1111's weights, LoRA tags, BREAK, prompt editing) is plain text to
idcli: said by `validate` at its line and once by `plan`/`render`, never interpreted (docs/shot-lists.md)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from idcli.cli import app
from idcli.prompt_syntax import foreign_syntax

pytest.importorskip("insightface", exc_type=ImportError)

SHOTS = """\
version: 1
project: syntax
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, negative_prompt: "blurry, (deformed:1.4)"}
characters:
  mara: {selfies: [selfies/mara_1.jpg], description: "a red-haired woman <lora:redhead:0.8>"}
shots:
  - {id: weighted, prompt: "{mara} at the window, (masterpiece:1.3), rain"}
  - {id: plain, prompt: "{mara} at the window (night), INT. BAR: night, [dusk]"}
  - {id: chunks, prompt: "{mara} at the window BREAK a lighthouse, [day:night:0.5]"}
"""


@pytest.mark.parametrize("text, found", [
    ("a (masterpiece:1.3) shot", ["(masterpiece:1.3)"]),
    ("(best quality: .8)", ["(best quality: .8)"]),
    ("<lora:redhead:0.8> woman", ["<lora:redhead:0.8>"]),
    ("a BREAK b", ["BREAK"]),
    ("[day:night:0.5]", ["[day:night:0.5]"]),
    ("(night), INT. BAR: night, [dusk], break the door, (scene 2)", []),
])
def test_foreign_syntax_finds_what_other_tools_interpret(text: str, found: list[str]) -> None:
    assert [hit for hit, _what in foreign_syntax(text)] == found


def test_validate_notes_each_field_at_its_line(write_shotlist) -> None:
    path = write_shotlist(SHOTS)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if line.startswith("idcli: note: ")]
    assert len(notes) == 4, result.output
    assert any(":4:" in n and "defaults.negative_prompt" in n and "'(deformed:1.4)'" in n for n in notes)
    assert any(":6:" in n and "characters.mara.description" in n and "<lora:redhead:0.8>" in n for n in notes)
    assert any(":8:" in n and "shots[0].prompt" in n and "'(masterpiece:1.3)'" in n and "plain words" in n
               for n in notes)
    assert any(":10:" in n and "shots[2].prompt" in n and "BREAK" in n and "[day:night:0.5]" in n for n in notes)
    report = json.loads(CliRunner().invoke(app, ["validate", str(path), "--json"]).stdout)
    assert report["ok"] is True and sorted(n["path"] for n in report["notes"]) == [
        "characters.mara.description", "defaults.negative_prompt", "shots[0].prompt", "shots[2].prompt"]


def test_the_text_reaches_the_encoder_as_written_and_plan_says_so_once(write_shotlist) -> None:
    from idcli.planning import plan_shotlist

    plan, _runtime = plan_shotlist(write_shotlist(SHOTS))
    said = [w for w in plan.warnings if "AUTOMATIC1111" in w]
    assert len(said) == 1 and "4 prompt texts" in said[0] and "idcli validate" in said[0]
    jobs = {j.shot_id: j for j in plan.jobs}
    assert "(masterpiece:1.3)" in jobs["weighted"].request.prompt  # not interpreted, not removed
    assert jobs["weighted"].request.negative_prompt == "blurry, (deformed:1.4)"
    clean = SHOTS.replace("(deformed:1.4)", "deformed").replace(" <lora:redhead:0.8>", "")
    assert not [w for w in plan_shotlist(write_shotlist(
        clean.split("  - {id: weighted")[0] + '  - {id: plain, prompt: "{mara} (night), INT. BAR: night"}\n',
        "clean.yaml"))[0].warnings if "AUTOMATIC1111" in w]


def test_plans_warning_names_the_first_text_in_full_even_when_it_says_automatic1111(write_shotlist) -> None:
    """The warning cut the first note's text at its first ': AUTOMATIC1111', which a weighted phrase can hold
    itself: '(look: AUTOMATIC1111 style:1.2)' was shown as '(look'."""
    from idcli.planning import plan_shotlist

    plan, _runtime = plan_shotlist(write_shotlist(SHOTS.replace(
        "(masterpiece:1.3)", "(look: AUTOMATIC1111 style:1.2)").replace(" (deformed:1.4)", "").replace(
        " <lora:redhead:0.8>", "")))
    said = [w for w in plan.warnings if "prompt texts use AUTOMATIC1111" in w]
    assert len(said) == 1 and "shots[0].prompt: '(look: AUTOMATIC1111 style:1.2)' (a weight))" in said[0], said


@pytest.mark.parametrize("text, found", [
    # Python's own names, quoted from a pipeline path: Dynamic Prompts keeps a wildcard it has no file for as written,
    # and a wildcards folder holds no 'init.txt' or 'main.txt' unless made so, so the text reads the same there.
    ("a monitor showing shots/__init__.py and python -m __main__", []),
    ("a pipeline's __pycache__ folder, __future__ imports", []),
    # A wildcard file's name that merely starts like one is still one, and so is a wildcard of names.
    ("a __initial_light__ sky, __mainstreet__ at night, __name__ in a __colors__ coat",
     ["__initial_light__", "__mainstreet__", "__name__", "__colors__"]),
])
def test_pythons_own_dunder_names_are_not_wildcard_files(text: str, found: list[str]) -> None:
    assert [hit for hit, _what in foreign_syntax(text)] == found
