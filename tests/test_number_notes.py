"""Numbers YAML 1.1 reads other than as they look (idcli/number_notes.py; docs/shot-lists.md, "Fields and limits"):
``seeds: [010]`` is the octal 8. It is valid and kept as read (YAML 1.1 says so; YAML 1.2 would read 10), so
``validate`` notes each at its line with the number it is. ``duration: 1:30`` (base 60, 90) is what a cue sheet's
minutes and seconds mean: no note."""

from __future__ import annotations

import json

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
