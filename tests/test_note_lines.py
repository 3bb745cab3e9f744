"""validate's notes point at the line that holds the words they are about, and come in file order.

A prompt written as a block (``prompt: |`` or ``prompt: >``) is noted at the block's line that holds the words
(``((x))`` on its third line), not at the ``|`` line; where the text cannot be mapped back exactly (a quoted
scalar's escapes) the note stays at the key's line (idcli/text_marks.py). The notes of a valid shot list are printed
in file order, as an invalid one's problems are, whichever module found each (docs/shot-lists.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from idcli.cli import app

pytest.importorskip("insightface", exc_type=ImportError)

runner = CliRunner()

BLOCKS = r"""version: 1
project: blocks
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2}
characters:
  mara: {selfies: [selfies/mara_1.jpg], description: a red-haired woman}
  anna: {selfies: [selfies/theo_2.jpg], description: a tall woman}
shots:
  - id: literal
    prompt: |
      {mara} at the window,
      rain on the glass,
      ((x)) soft light
  - id: folded
    prompt: >
      {mara} on a pier
      at dusk, (masterpiece:1.3)
  - id: bare
    prompt: |
      {mara} pours wine
      for anna at the table
  - id: twice
    prompt: |
      {mara} looks at
      {mara} in a mirror
  - id: escaped
    prompt: "{mara} says \"hi\",
      ((x))"
  - id: quoted
    prompt: '{mara}''s coat,
      ((x))'
  - id: plain
    prompt: a roof at dusk,
      at dawn BREAK a gull
"""


def _notes(path) -> list[tuple[int, int, str, str]]:
    report = json.loads(runner.invoke(app, ["validate", str(path), "--json"]).stdout)
    assert report["ok"] is True, report
    return [(n["line"], n["column"], n["path"], n["message"]) for n in report["notes"]]


def _at(text: str, words: str) -> tuple[int, int]:
    """The 1-based line and column where ``words`` are written in ``text`` (the first time)."""
    row = next(i for i, line in enumerate(text.splitlines()) if words in line)
    return row + 1, text.splitlines()[row].index(words) + 1


@pytest.mark.parametrize("shot, field, words", [
    (0, "shots[0].prompt", "((x)) soft"),             # literal block: the third line of the text
    (1, "shots[1].prompt", "(masterpiece:1.3)"),      # folded block: its lines joined by spaces, the second one's
    (2, "shots[2].prompt", "anna at"),                # a name without braces, at its own line
    (3, "shots[3].prompt", "{mara} in a mirror"),     # the placeholder that names her again
    (6, "shots[6].prompt", "BREAK"),                  # plain text over two lines
])
def test_a_note_about_words_in_a_block_names_the_line_that_holds_them(write_shotlist, shot, field, words) -> None:
    path = write_shotlist(BLOCKS)
    text = path.read_text("utf-8")
    noted = [(line, column) for line, column, where, _message in _notes(path) if where == field]
    assert noted == [_at(text, words)], noted


@pytest.mark.parametrize("shot, key", [(4, '    prompt: "{mara} says'), (5, "    prompt: '{mara}''s")])
def test_a_quoted_text_with_an_escape_is_noted_at_its_keys_line(write_shotlist, shot, key) -> None:
    path = write_shotlist(BLOCKS)
    text = path.read_text("utf-8")
    noted = [line for line, _column, where, _message in _notes(path) if where == f"shots[{shot}].prompt"]
    assert noted == [_at(text, key)[0]], noted


# Notes from four modules, each checking the file top to bottom in its own pass: the defaults' octal steps (line 4)
# were said last, after the prompts' notes below them.
SEVERAL = """version: 1
project: several
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 010, guidance: 1, negative_prompt: blurry}
characters:
  mara: {selfies: [selfies/mara_1.jpg], description: a red-haired woman}
  anna: {selfies: [selfies/theo_2.jpg], description: a tall woman}
shots:
  - {id: a, prompt: "{mara} at the window, (masterpiece:1.3)"}
  - {id: b, prompt: "{mara} pours wine for anna", expression: joy}
  - {id: c, prompt: "an empty street", expression: joy, seeds: [07, 010]}
"""


def test_validate_says_a_valid_files_notes_in_file_order(write_shotlist) -> None:
    path = write_shotlist(SEVERAL)
    notes = _notes(path)
    places = [(line, column) for line, column, _path, _message in notes]
    assert len({where for _line, _column, where, _message in notes}) >= 5, notes  # several modules speak
    assert places == sorted(places), notes
    plain = runner.invoke(app, ["validate", str(path)])
    assert plain.exit_code == 0, plain.output
    said = [line.split(f"{path}:", 1)[1] for line in plain.stdout.splitlines() if line.startswith("idcli: note: ")]
    assert [tuple(int(part) for part in line.split(":")[:2]) for line in said] == places, plain.stdout


@pytest.mark.parametrize("module, function, message, then", [
    ("prompt_syntax", "foreign_syntax_warning", "'((x))' (emphasis): AUTOMATIC1111/ComfyUI prompt syntax, which idcli "
     "does not interpret: brackets, backslashes, colons, numbers and keywords reach the text encoder as plain words",
     ""),
    ("bare_names", "bare_name_warning", "'anna' is a character of the cast written without braces", ", with the fix"),
    ("expression_notes", "faceless_expression_warning", "expression 'joy' but the prompt names no character: its "
     "facial description is added to a scene with no person in it", ""),
    ("number_notes", "octal_warning", "YAML reads 010 as the octal number 8 (a leading zero)", ", with the fix"),
    ("repeated_names", "repeated_name_warning", "'mara' is named twice: each place takes mara's identity",
     ", with how to name a figure once"),
    ("unused_negative", "unused_negative_warning", "the negative prompt is not used: guidance 1 turns classifier-free "
     "guidance off", ""),
])
def test_plans_one_line_names_the_first_place_without_its_hint_and_points_at_validate(module, function, message,
                                                                                     then) -> None:
    import importlib

    from idcli.errors import Problem

    warning = getattr(importlib.import_module(f"idcli.{module}"), function)
    notes = [Problem(message, f"shots[{i}].prompt", 9 + i, 13, "the hint") for i in range(2)]
    line = warning(notes, "s.yaml")
    assert line.startswith("2 ") and line.endswith(f"; 'idcli validate' lists each{then}"), line
    assert " (first: s.yaml:9:13: shots[0].prompt: " in line, line
    assert "the hint" not in line and "shots[1]" not in line, line
    assert warning([], "s.yaml") is None


def test_the_unused_negative_prompts_line_in_full() -> None:
    from idcli.errors import Problem
    from idcli.unused_negative import unused_negative_warning

    note = Problem("the negative prompt is not used: guidance 1 turns classifier-free guidance off",
                   "shots[0].negative_prompt", 9, 13, "raise guidance")
    assert unused_negative_warning([note], "s.yaml") == (
        "1 negative prompt is not used (first: s.yaml:9:13: shots[0].negative_prompt: the negative prompt is not "
        "used: guidance 1 turns classifier-free guidance off); 'idcli validate' lists each")


class _CountedLines(list[str]):
    """A document's lines that count how many times one is read."""

    reads = 0

    def __getitem__(self, index: Any) -> Any:
        self.reads += 1
        return super().__getitem__(index)


def test_a_block_prompt_every_shot_aliases_is_matched_to_its_lines_once(write_shotlist) -> None:
    """`prompt: *p` on many shots, `&p` a block followed by blank lines (which its span takes in): each note of each
    shot matched the block and its blank lines anew (2,000 shots over 200,000 blank lines, a 255 KB file: 42 s of CPU
    where 0.9 s was enough), and one block over 4 million blank lines peaked at 486 MiB where 97 MiB was enough, a
    tuple per blank line (docs/performance.md). Read counts, not seconds: the block's three lines are read once,
    however many notes ask, and the blank lines after it not at all."""
    from idcli.bare_names import bare_name_notes
    from idcli.prompt_syntax import foreign_syntax_notes
    from idcli.repeated_names import repeated_name_notes
    from idcli.shotlist import parse_shotlist
    from idcli.yamlsafe import load_yaml_bytes

    blanks, aliases = 2_000, 60
    path = write_shotlist(BLOCKS.split("shots:\n", 1)[0] + "shots:\n  - id: s0\n    prompt: &p |\n      the quay,\n"
                          "      {mara} ((x)) pours wine for anna\n      and {mara} again\n" + "\n" * blanks
                          + "".join(f"  - {{id: s{i}, prompt: *p}}\n" for i in range(1, aliases)))
    text = path.read_text("utf-8")
    document = load_yaml_bytes(path.read_bytes(), str(path))
    lines = document.lines = _CountedLines(document.lines)
    shotlist = parse_shotlist(document, path.parent, check_files=False).shotlist  # its notes, as validate says them
    notes = {check.__name__: check(shotlist, document)
             for check in (foreign_syntax_notes, bare_name_notes, repeated_name_notes)}
    for check, words, past in [("foreign_syntax_notes", "((x))", 0), ("bare_name_notes", "for anna", len("for ")),
                               ("repeated_name_notes", "{mara} again", 0)]:
        line, column = _at(text, words)
        assert {(n.line, n.column) for n in notes[check]} == {(line, column + past)}, (check, notes[check][:2])
        assert len(notes[check]) == aliases, check
    assert lines.reads <= 3, (lines.reads, len(lines))
