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
        ("shots[0].prompt", NOTE, "write {anna} to put anna in the shot; if the word is meant as a word, say so "
         "once with 'also_a_word: true' under characters.anna"),
        ("shots[0].prompt", NOTE.replace("anna", "theo"), "write {theo} to put theo in the shot; if the word is "
         "meant as a word, say so once with 'also_a_word: true' under characters.theo"),
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


WORDS = """\
version: 1
project: garden
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 1}
characters:
  rose: {selfies: [selfies/mara_1.jpg], description: a red-haired woman, also_a_word: true}
  will: {selfies: [selfies/theo_1.jpg], description: a young man, also_a_word: true}
  mark: {selfies: [selfies/mara_2.jpg], description: an old man}
shots:
  - id: flower
    prompt: "{mark} leaves a rose on the table; it will wilt"
  - id: forgot
    prompt: "{mark} watches as Rose turns to Will"
  - id: start
    prompt: "Rose petals on the table"
  - id: braces
    prompt: "{rose} turns to {will}, a mark on her cheek"
"""


def _bare_notes(write_shotlist, text: str) -> list[tuple[str, str, str]]:
    result = CliRunner().invoke(app, ["validate", str(write_shotlist(text)), "--json"])
    assert result.exit_code == 0, result.output
    return [(n["path"], n["message"].split(" is a character", 1)[0], n["hint"])
            for n in json.loads(result.stdout).get("notes", []) if "without braces" in n["message"]]


def test_a_name_that_is_also_a_word_is_said_only_where_written_as_a_name(write_shotlist) -> None:
    # A cast of rose and will: "a rose on the table; it will wilt" was noted twice, and plan and render warned of it
    # every run, with nothing the artist could write to say the words are words.
    word_hint = "write {{{0}}} to put {0} in the shot, or {0} in lowercase for the word"
    assert _bare_notes(write_shotlist, WORDS) == [
        ("shots[1].prompt", "'rose'", word_hint.format("rose")),
        ("shots[1].prompt", "'will'", word_hint.format("will")),
        ("shots[2].prompt", "'rose'", word_hint.format("rose")),  # a capital is a name's, wherever it stands
        # mark is not also_a_word: every case of it is said, as before
        ("shots[3].prompt", "'mark'", "write {mark} to put mark in the shot; if the word is meant as a word, say so "
                                      "once with 'also_a_word: true' under characters.mark"),
    ]
    plan = plan_on_cpu(write_shotlist(WORDS))
    assert [w.split(" (first:")[0] for w in plan.warnings if "without braces" in w] == [
        "3 shots name a character of the cast without braces, read as a plain word: that character's identity does "
        "not condition the image"], plan.warnings


def test_without_also_a_word_a_lowercase_name_is_still_said() -> None:
    # The forgotten braces of "{rose} turns to {will}" are the placeholders' own spelling: still caught by default.
    assert bare_names("rose turns to will", ["rose", "will"]) == ["rose", "will"]
    assert bare_names("rose turns to will", ["rose", "will"], frozenset({"rose", "will"})) == []
    assert bare_names("a rose for ROSE", ["rose"], frozenset({"rose"})) == ["rose"]
    assert bare_names("a rose, then Rose, for will", ["rose", "will"], frozenset({"rose"})) == ["rose", "will"]


def test_also_a_word_changes_no_job_key(write_shotlist) -> None:
    plain = plan_on_cpu(write_shotlist(WORDS.replace(", also_a_word: true", "")))
    worded = plan_on_cpu(write_shotlist(WORDS))
    assert [job.key for job in plain.jobs] == [job.key for job in worded.jobs]
