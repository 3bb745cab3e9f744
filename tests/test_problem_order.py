"""A shot list's problems in file order (docs/shot-lists.md, "Problems in file order"): an artist fixing from the
top reads them as the file goes, on stderr and in ``--json``, whichever check found each one first."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from idcli.cli import app
from idcli.errors import Problem, ShotListError

runner = CliRunner()

# Valid types, so the checks after them run alone: they check the shots before the characters, and the
# characters are written first here (a selfie that does not exist at line 5, a placeholder naming none at 9).
CHARACTERS_FIRST = """\
version: 1
project: order
characters:
  mara:
    selfies: [selfies/nobody.jpg]
shots:
  - id: a
    size: 512x512
    prompt: "{theo} at dusk"
  - id: A
    prompt: a pier
"""


def test_validate_lists_a_files_problems_in_line_order(write_shotlist) -> None:
    path = write_shotlist(CHARACTERS_FIRST)
    plain = runner.invoke(app, ["validate", str(path)])
    assert plain.exit_code == 2, plain.stderr
    said = [line for line in plain.stderr.splitlines() if line.startswith(str(path))]
    lines = [int(line[len(str(path)) + 1:].split(":", 1)[0]) for line in said]
    assert lines == [5, 9, 10], plain.stderr
    error = json.loads(runner.invoke(app, ["validate", str(path), "--json"]).stdout)["error"]
    assert [(p["line"], p["field"]) for p in error["problems"]] == [
        (5, "characters.mara.selfies[0]"), (9, "shots[0].prompt"), (10, "shots[1].id")], error
    assert (error["line"], error["field"]) == (5, "characters.mara.selfies[0]"), error  # the first problem's place


def test_problems_order_by_line_then_column_and_those_without_a_line_go_last() -> None:
    found = [Problem("c", "x", 4, 9), Problem("whole", ""), Problem("b", "y", 4, 2), Problem("a", "z", 1, None),
             Problem("also whole", "")]
    error = ShotListError("shots.yaml", found)
    assert [p.message for p in error.problems] == ["a", "b", "c", "whole", "also whole"]
    assert error.render().splitlines()[0] == "shots.yaml:1: z: a"
