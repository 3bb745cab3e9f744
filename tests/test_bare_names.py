"""A character of the cast written into a prompt without braces (idcli/bare_names.py; docs/shot-lists.md, "Group
shots"): the word reaches the encoder, the character's identity conditions nothing and QA does not look for the face.
validate notes each at its shot's prompt, plan warns once; nothing is refused or changed."""

from __future__ import annotations

import json

from cli_helpers import plan_on_cpu
from typer.testing import CliRunner

from idcli.bare_names import bare_names
from idcli.cli import app

SHOTS = """\
version: 1
project: dinner
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 1}
characters:
  mara: {selfies: [selfies/mara_1.jpg], description: a red-haired woman}
  theo: {selfies: [selfies/theo_1.jpg], description: a young man}
  ann: {selfies: [selfies/mara_2.jpg], description: an old woman}
  anna: {selfies: [selfies/theo_2.jpg], description: a tall woman}
shots:
  - id: forgot
    prompt: "{mara} pours wine for Anna and theo's brother at the dinner table"
  - id: named
    prompt: "{ann} and {anna} eat cake; ann's fork falls"
  - id: fine
    prompt: "{mara} and {theo} at the table"
"""
NOTE = ("'anna' is a character of the cast written without braces: the text encoder reads it as a plain word, so "
        "anna's identity does not condition the image and identity QA does not look for anna's face")


def test_validate_notes_each_cast_member_a_prompt_writes_without_braces(write_shotlist) -> None:
    # "{mara} pours wine for Anna" was valid without a word: Anna was the plain word, her identity nowhere in the
    # image, and QA never looked for her. With six at a table a forgotten pair of braces is easy to miss.
    result = CliRunner().invoke(app, ["validate", str(write_shotlist(SHOTS)), "--json"])
    report = json.loads(result.stdout)
    assert result.exit_code == 0 and report["ok"] is True, result.output
    notes = [(n["path"], n["message"], n["hint"]) for n in report.get("notes", []) if "without braces" in n["message"]]
    assert notes == [
        ("shots[0].prompt", NOTE, "write {anna} to put anna in the shot, or leave it if the word is meant as a word"),
        ("shots[0].prompt", NOTE.replace("anna", "theo"),
         "write {theo} to put theo in the shot, or leave it if the word is meant as a word"),
    ]
    assert all(n["line"] == 12 for n in report["notes"] if "without braces" in n["message"])


def test_a_name_is_a_whole_word_and_a_placeholder_of_the_shot_is_no_bare_name() -> None:
    cast = ["ann", "anna", "mara"]
    assert bare_names("{anna} waves", cast) == []  # 'ann' is not inside '{anna}'
    assert bare_names("{mara} waves at Anna", cast) == ["anna"]  # nor inside 'Anna'
    assert bare_names("{ann} eats; ann's fork falls", cast) == []  # referring back in words
    assert bare_names("anna, then ANN, at the table", cast) == ["anna", "ann"]  # order of appearance, any case
    assert bare_names("a marathon runner, {{mara}} in braces", cast) == ["mara"]  # '{{mara}}' is literal text
    assert bare_names("a marathon runner", cast) == []


def test_plan_warns_once(write_shotlist) -> None:
    plan = plan_on_cpu(write_shotlist(SHOTS))
    lines = [w for w in plan.warnings if "without braces" in w]
    assert len(lines) == 1, plan.warnings
    assert lines[0].startswith("1 shot names a character of the cast without braces, read as a plain word")
    assert "shots.yaml:12:13: shots[0].prompt: 'anna'" in lines[0]


def test_a_name_is_never_found_inside_a_word_of_accented_letters() -> None:
    # Character names are ASCII, prompts are not: 'ren' was found in "Renée" (the 'é' taken for a word's end), so
    # every shot naming Renée noted a cast member ren written without braces, and plan warned of it.
    assert bare_names("{mara} greets Renée at the door", ["ren", "mara"]) == []
    assert bare_names("{mara} and Zoë share a café crème", ["zo", "caf", "mara"]) == []
    assert bare_names("{mara} greets ren, then Ñren", ["ren", "mara"]) == ["ren"]  # the bare 'ren' still said
    assert bare_names("{mara} greets Ñren", ["ren", "mara"]) == []
