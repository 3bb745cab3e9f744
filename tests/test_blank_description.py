"""A character's description of spaces only: ``{mara}`` in a prompt stands for it, so ``prompt: "{mara}"`` rendered
the framing alone, the blank prompt refused since 2026-12-02 let through by another door (docs/shot-lists.md,
"Fields and limits")."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from idcli.cli import app

runner = CliRunner()

SHOTS = """\
version: 1
project: words
model: {{preset: tiny-sd}}
characters:
  mara:
    selfies: [selfies/mara_1.jpg]
    description: {description}
shots:
  - id: a
    prompt: "{{mara}}"
"""


def _problems(write_shotlist, description: str) -> tuple[int, list[dict]]:
    result = runner.invoke(app, ["validate", str(write_shotlist(SHOTS.format(description=description))), "--json"])
    error = json.loads(result.stdout).get("error")
    return result.exit_code, (error.get("problems") or [error]) if error else []


@pytest.mark.parametrize("description", ['"   "', "' '", '"\\t"'])
def test_a_blank_description_is_refused_at_its_line_as_an_empty_one_is(write_shotlist, description: str) -> None:
    code, problems = _problems(write_shotlist, description)
    assert code == 2, problems
    [problem] = problems
    assert (problem["field"], problem["line"], problem["column"]) == ("characters.mara.description", 7, 18), problem
    assert problem["message"] == "the text holds only white space", problem
    assert "write at least 1 character besides spaces" in problem["hint"], problem
    # An empty one, at the same place; one with words, or none at all (the name stands in), is valid.
    code, [empty] = _problems(write_shotlist, '""')
    assert code == 2 and (empty["field"], empty["line"], empty["message"]) == (
        "characters.mara.description", 7, "the text is empty"), empty
    assert _problems(write_shotlist, "a woman in a grey coat") == (0, [])
    assert _problems(write_shotlist, "null") == (0, [])
