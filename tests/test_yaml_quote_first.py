"""A prompt that starts with a quoted line of dialogue, and an anchor an alias uses on a prompt YAML cannot read:
what YAML reads there, said at the value with a fix that validates (docs/shot-lists.md, "Prompts are plain text")."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from idcli.cli import app

runner = CliRunner()

BASE = """\
version: 1
project: words
model: {preset: tiny-sd}
characters:
  mara: {selfies: [selfies/mara_1.jpg], description: a woman in a grey coat}
shots:
  - id: a
"""


def _validate(write_shotlist, shot_lines: str) -> tuple[int, str, dict[str, Any]]:
    path = write_shotlist(BASE + shot_lines)
    plain = runner.invoke(app, ["validate", str(path)])
    return plain.exit_code, plain.stderr, json.loads(runner.invoke(app, ["validate", str(path), "--json"]).stdout)


@pytest.mark.parametrize(("value", "fixed"), [
    ('"Run," she says, {mara} on a pier', """'"Run," she says, {mara} on a pier'"""),
    ("'Run' she says, {mara} on a pier", '''"'Run' she says, {mara} on a pier"'''),
    ('"Run," she says, {mara}\'s coat', '''"\\"Run,\\" she says, {mara}'s coat"'''),
], ids=["double", "single", "both-quotes"])
def test_a_prompt_starting_with_a_quoted_line_is_said_with_the_whole_value_quoted(write_shotlist, value: str,
                                                                                   fixed: str) -> None:
    """The quote that opens the value closes it after 'Run,'; the words after were "expected <block end>"."""
    code, stderr, document = _validate(write_shotlist, f"    prompt: {value}\n")
    assert code == 2, stderr
    error = document["error"]
    assert (error["line"], error["column"]) == (8, 13), error
    assert "starts with a quote" in error["message"] and "expected <block end>" not in stderr, error
    assert error["hint"] == f"quote the whole value: prompt: {fixed}", error
    assert _validate(write_shotlist, f"    prompt: {fixed}\n")[0] == 0


def test_an_anchor_an_alias_uses_is_kept_in_the_fix(write_shotlist) -> None:
    """'prompt: &p {mara} on a pier' with '*p' in another shot: the anchor is meant, the '{' is the mistake; quoting
    the anchor too ('"&p {mara} …"') left '*p' naming no anchor."""
    shots = "    prompt: &p {mara} on a pier at dusk\n  - id: b\n    prompt: *p\n"
    code, stderr, document = _validate(write_shotlist, shots)
    assert code == 2, stderr
    error = document["error"]
    assert (error["line"], error["column"]) == (8, 16), error
    assert "'{' is read by YAML as a mapping" in error["message"], error
    assert error["hint"] == 'quote the whole value: prompt: &p "{mara} on a pier at dusk"', error
    assert _validate(write_shotlist, shots.replace("&p {mara} on a pier at dusk", '&p "{mara} on a pier at dusk"'))[
        0] == 0


def test_a_whole_quoted_prompt_on_a_misindented_line_is_not_taken_for_one_starting_with_a_quote(write_shotlist) -> None:
    code, stderr, document = _validate(write_shotlist, '    prompt: "a pier"  # dusk\n   negative_prompt: "blur"\n')
    assert code == 2, stderr
    assert "starts with a quote" not in json.dumps(document), document
