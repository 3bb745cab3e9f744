"""Numbers YAML 1.1 reads other than as they look (idcli/number_notes.py; docs/shot-lists.md, "Fields and limits"):
``seeds: [010]`` is the octal 8. It is valid and kept as read (YAML 1.1 says so; YAML 1.2 would read 10), so
``validate`` notes each at its line with the number it is. ``duration: 1:30`` (base 60, 90) is what a cue sheet's
minutes and seconds mean: no note."""

from __future__ import annotations

import json

from cli_helpers import plan_on_cpu
from typer.testing import CliRunner

from idcli.cli import app

SHOTS = """\
version: 1
project: numbers
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 030}
shots:
  - id: a010
    prompt: "an empty pier"
    seeds: [010, 07, 0, 0x10]
    duration: 1:30
  - id: a020
    prompt: "a pier at night"
    takes: 2
"""


def test_validate_notes_an_octal_or_base_60_number_with_the_number_it_is(write_shotlist) -> None:
    # seeds: [010] rendered seed 8 and recorded 8 without a word: a take that could not be found again by its seed.
    result = CliRunner().invoke(app, ["validate", str(write_shotlist(SHOTS)), "--json"])
    assert result.exit_code == 0, result.output
    notes = [(n["path"], n["line"], n["message"], n["hint"]) for n in json.loads(result.stdout)["notes"]]
    assert notes == [
        ("defaults.steps", 4, "YAML reads 030 as the octal number 24 (a leading zero)", "write steps: 24, or steps: 30 "
         "if that was meant"),
        ("shots[0].seeds[0]", 8, "YAML reads 010 as the octal number 8 (a leading zero)", "write 8, or 10 if that was "
         "meant"),
    ], notes


def _problems(write_shotlist, defaults: str, seeds: str) -> list[tuple[str, str, str]]:
    """(field, message, hint) of each problem ``validate --json`` finds with these defaults and first shot's seeds."""
    text = (f"version: 1\nproject: numbers\nmodel: {{preset: tiny-sd}}\ndefaults: {{{defaults}}}\n"
            f"shots:\n  - {{id: a010, prompt: \"an empty pier\", seeds: [{seeds}]}}\n")
    result = CliRunner().invoke(app, ["validate", str(write_shotlist(text)), "--json"])
    assert result.exit_code == 2, result.output
    return [(p["field"], p["message"], p["hint"]) for p in json.loads(result.stdout)["error"]["problems"]]


def test_a_fraction_in_a_whole_number_field_is_answered_with_allowed_whole_numbers_only(write_shotlist) -> None:
    # steps: .5 was answered 'steps: 0 or steps: 1', and 0 steps is refused (steps are at least 1).
    assert _problems(write_shotlist, "steps: .5", "-0.5") == [
        ("defaults.steps", "a whole number is expected here, not the number 0.5",
         "a whole number has no decimal part: steps: 1"),
        ("shots[0].seeds[0]", "a whole number is expected here, not the number -0.5",
         "a whole number has no decimal part: 0"),
    ]
    # Neither whole number either side allowed: the range, not a value that would be refused next.
    assert _problems(write_shotlist, "steps: -0.5", "2.5") == [
        ("defaults.steps", "a whole number is expected here, not the number -0.5",
         "a whole number has no decimal part, and steps must be at least 1 and at most 200"),
        ("shots[0].seeds[0]", "a whole number is expected here, not the number 2.5",
         "a whole number has no decimal part: 2 or 3"),
    ]


def test_an_octal_number_outside_its_range_says_it_was_read_as_octal(write_shotlist) -> None:
    # steps: -010 said 'must be at least 1, not -8', a number never written, with nothing about octal.
    assert _problems(write_shotlist, "steps: -010", "-010") == [
        ("defaults.steps", "must be at least 1, not -8", "YAML reads -010 as the octal number -8 (a leading zero)"),
        ("shots[0].seeds[0]", "must be at least 0, not -8", "YAML reads -010 as the octal number -8 (a leading zero)"),
    ]
    # 0400 is 256 steps, more than 200 (as 400 would be: an octal number is smaller than its digits look, so a
    # number past a bound as read is past it as written too, and no other spelling is offered).
    assert _problems(write_shotlist, "steps: 0400", "1") == [
        ("defaults.steps", "must be at most 200, not 256", "YAML reads 0400 as the octal number 256 (a leading zero)"),
    ]


def test_a_quoted_number_with_a_leading_zero_is_not_answered_with_its_octal_spelling(write_shotlist) -> None:
    # steps: "010" was answered 'write the number without quotes: steps: 010', which YAML reads as 8 steps: the fix
    # rendered another number than the one written. The digits' number is offered without the zero; 007 (7 either
    # way) is still told to drop its quotes.
    octal = "(YAML reads {} without quotes as the octal number 8, a leading zero)"
    assert _problems(write_shotlist, 'steps: "010"', '"0_10", "007"') == [
        ("defaults.steps", "a whole number is expected here, not the text '010'",
         f"write the number without quotes or its leading zero: steps: 10 {octal.format('010')}"),
        ("shots[0].seeds[0]", "a whole number is expected here, not the text '0_10'",
         f"write the number without quotes or its leading zero: 10 {octal.format('0_10')}"),
        ("shots[0].seeds[1]", "a whole number is expected here, not the text '007'", "write it without quotes"),
    ]


def test_the_octal_note_offers_the_written_digits_only_where_the_field_allows_them(write_shotlist) -> None:
    text = SHOTS.replace("steps: 030", "steps: 0310")  # 200 steps as read; 310 is more than a shot may have
    result = CliRunner().invoke(app, ["validate", str(write_shotlist(text)), "--json"])
    assert result.exit_code == 0, result.output
    steps = [n for n in json.loads(result.stdout)["notes"] if n["path"] == "defaults.steps"]
    assert [(n["message"], n["hint"]) for n in steps] == [
        ("YAML reads 0310 as the octal number 200 (a leading zero)",
         "write steps: 200; 310 is not allowed: steps must be at least 1 and at most 200")]


OCTAL_WARNING = ("2 numbers written with a leading zero are read by YAML as octal, so the render uses other numbers "
                 "than the digits say (first: {file}:4:32: defaults.steps: YAML reads 030 as the octal number 24 (a "
                 "leading zero)); 'idcli validate' lists each, with the fix")


def test_plan_and_render_warn_once_of_octal_numbers(write_shotlist, tmp_path) -> None:
    # validate alone said it: an artist who goes straight to render got the seed 8 and 24 steps without a word.
    shots = write_shotlist(SHOTS)
    expected = OCTAL_WARNING.format(file=shots)
    plan = plan_on_cpu(shots)
    assert [w for w in plan.warnings if "octal" in w] == [expected], plan.warnings
    result = CliRunner().invoke(app, ["plan", str(shots), "--device", "cpu"])
    assert result.exit_code == 0 and result.stderr.count("read by YAML as octal") == 1, result.output
    assert f"idcli: warning: {expected}" in result.stderr, result.stderr
    planned = CliRunner().invoke(app, ["plan", str(shots), "--device", "cpu", "--json"])
    assert [w for w in json.loads(planned.stdout)["warnings"] if "octal" in w] == [expected], planned.output
    rendered = CliRunner().invoke(app, ["render", str(shots), "--out", str(tmp_path / "out"), "--device", "cpu",
                                        "--dry-run", "--json"])
    assert rendered.exit_code == 0, rendered.output
    assert [w for w in json.loads(rendered.stdout)["warnings"] if "octal" in w] == [expected], rendered.output
    assert rendered.stderr.count("read by YAML as octal") == 1, rendered.stderr  # a warning, not a refusal: once
    # --quiet drops progress and notes, not warnings ("the images may be wrong"): this one says they may be.
    quiet = CliRunner().invoke(app, ["render", str(shots), "--out", str(tmp_path / "out"), "--device", "cpu",
                                     "--dry-run", "--quiet"])
    assert quiet.exit_code == 0 and quiet.stderr.count("read by YAML as octal") == 1, quiet.output


def test_a_shot_list_without_octal_numbers_gets_no_such_warning(write_shotlist) -> None:
    plan = plan_on_cpu(write_shotlist(SHOTS.replace("030", "30").replace("010, ", "")))
    assert not [w for w in plan.warnings if "octal" in w], plan.warnings
