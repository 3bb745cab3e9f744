"""What a shot list's author is told about a prompt YAML does not read as text, and about a few keys
(docs/shot-lists.md, "Prompts are plain text" and "Fields and limits"): each at its line and column, with the fix,
never the parser's own words."""

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
    document = json.loads(runner.invoke(app, ["validate", str(path), "--json"]).stdout)
    return plain.exit_code, plain.stderr, document


def _problems(document: dict[str, Any]) -> list[dict[str, Any]]:
    error = document["error"]
    return error.get("problems") or [error]


@pytest.mark.parametrize(("line", "where", "words", "fix"), [
    # A1111's literal bracket in double quotes: YAML stops at the backslash; this was "this quoted value is never
    # closed; YAML read on to the end of the file".
    ('    prompt: "a \\(sign\\) and {mara}"\n', (8, 16), "'\\(' is no escape YAML knows",
     "prompt: 'a \\(sign\\) and {mara}', or write \\\\( for each"),
    ('    prompt: "{mara} under a \\[neon\\] sign"\n', (8, 29), "'\\[' is no escape YAML knows",
     "prompt: '{mara} under a \\[neon\\] sign'"),
    # An apostrophe in the value: doubled inside the single quotes offered.
    ('    prompt: "{mara}\'s \\(sign\\)"\n', (8, 23), "'\\(' is no escape", "prompt: '{mara}''s \\(sign\\)'"),
])
def test_an_unknown_escape_in_double_quotes_is_said_with_the_fix(write_shotlist, line: str, where: tuple[int, int],
                                                                 words: str, fix: str) -> None:
    code, stderr, document = _validate(write_shotlist, line)
    assert code == 2, stderr
    error = document["error"]
    assert (error["line"], error["column"]) == where, error
    assert words in error["message"] and fix in error["hint"], error
    assert "never closed" not in stderr and "YAML syntax error" not in stderr, stderr


@pytest.mark.parametrize(("line", "words", "fix"), [
    ("    prompt: [dusk], {mara} on a pier\n", "'[' is read by YAML as a list",
     'quote the whole value: prompt: "[dusk], {mara} on a pier"'),
    ("    prompt: [dusk] {mara} on a pier\n", "'[' is read by YAML as a list",
     'quote the whole value: prompt: "[dusk] {mara} on a pier"'),
    ("    prompt: *grainy* {mara} on a pier\n", "'*' is read by YAML as an alias",
     'prompt: "*grainy* {mara} on a pier"'),
    # Quoted at the start, then text: the quote ends the value (below), not the '@'.
    ("    prompt: '@mara' on a pier\n", "starts with a quote", "prompt: \"'@mara' on a pier\""),
    ("    prompt: @mara on a pier\n", "'@' cannot be text", 'prompt: "@mara on a pier"'),
    ("    prompt: `{mara}` on a pier\n", "'`' cannot be text", 'prompt: "`{mara}` on a pier"'),
    ("    prompt: %100 {mara}\n", "'%' is read by YAML as a directive", 'prompt: "%100 {mara}"'),
    # A tag no constructor knows: was "cannot read value: could not determine a constructor for the tag '!grainy'".
    ("    prompt: !grainy film, {mara} on a pier\n", "'!' is read by YAML as a tag",
     'prompt: "!grainy film, {mara} on a pier"'),
    ("    prompt: a pier\n    negative_prompt: [blurry], lowres\n", "'[' is read by YAML as a list",
     'negative_prompt: "[blurry], lowres"'),
])
def test_a_prompt_starting_with_yaml_syntax_is_said_with_the_fix(write_shotlist, line: str, words: str | None,
                                                                 fix: str | None) -> None:
    code, stderr, document = _validate(write_shotlist, line)
    assert code == 2, stderr
    error = document["error"]
    if words is None:
        assert "YAML syntax error" in error["message"], error
        return
    last = line.rstrip("\n").splitlines()[-1]
    column = len(last) - len(last.split(": ", 1)[1]) + 1
    assert (error["line"], error["column"]) == (7 + line.count("\n"), column), error
    assert words in error["message"] and fix in error["hint"], error
    assert "expected <block end>" not in stderr and "cannot start any token" not in stderr, stderr
    assert "constructor" not in stderr, stderr


def test_a_prompt_starting_with_an_anchor_no_alias_uses_is_refused(write_shotlist) -> None:
    """'prompt: &grainy film, {mara}' was valid YAML, an anchor on the text 'film, {mara}': the first word gone."""
    code, stderr, document = _validate(write_shotlist, "    prompt: &grainy film, {mara} on a pier\n")
    assert code == 2, stderr
    error = document["error"]
    assert (error["line"], error["column"]) == (8, 13), error
    assert "'&' is read by YAML as an anchor's name" in error["message"], error
    assert "the text is 'film, {mara} on a pier', without '&grainy'" in error["message"], error
    assert error["hint"] == 'quote the whole value: prompt: "&grainy film, {mara} on a pier"', error
    # An anchor an alias uses was meant, and so was one on a quoted text.
    assert _validate(write_shotlist, "    prompt: &pier a pier\n  - id: b\n    prompt: *pier\n")[0] == 0
    assert _validate(write_shotlist, "    prompt: &pier \"a pier\"\n")[0] == 0


def test_a_seed_in_the_defaults_is_answered_with_where_seeds_go(write_shotlist) -> None:
    path = write_shotlist(BASE.replace("characters:", "defaults: {seed: 42}\ncharacters:") + "    prompt: a pier\n")
    document = json.loads(runner.invoke(app, ["validate", str(path), "--json"]).stdout)
    [problem] = _problems(document)
    assert (problem["field"], problem["line"]) == ("defaults.seed", 4), problem
    assert problem["hint"] == "seeds are a shot's: write seeds: [42] under a shot, a list: one seed per take", problem


@pytest.mark.parametrize(("line", "fix"), [
    ("    prompt: a pier\n    seed: 42\n", "write seeds: [42], a list"),
    ("    prompt: a pier\n    seed: [7, 8]\n", "write seeds: [7, 8]"),
    ("    prompt: a pier\n    Seed: 42\n", "write seeds: [42]"),
])
def test_seed_is_answered_with_the_list_to_write(write_shotlist, line: str, fix: str) -> None:
    code, stderr, document = _validate(write_shotlist, line)
    assert code == 2, stderr
    [problem] = _problems(document)
    assert problem["field"].startswith("shots[0].") and problem["line"] == 9, problem
    assert fix in problem["hint"] and "did you mean" not in problem["hint"], problem
    # The fix, as written, validates: no second error after the rename.
    fixed = line.replace("seed: 42", "seeds: [42]").replace("Seed: 42", "seeds: [42]").replace(
        "seed: [7, 8]", "seeds: [7, 8]")
    assert _validate(write_shotlist, fixed)[0] == 0


@pytest.mark.parametrize("prompt", ['"   "', '"\\t \\n"', "' '"])
def test_a_blank_prompt_is_refused_at_its_line_as_an_empty_one_is(write_shotlist, prompt: str) -> None:
    code, stderr, document = _validate(write_shotlist, f"    prompt: {prompt}\n")
    assert code == 2, stderr
    [problem] = _problems(document)
    assert (problem["field"], problem["line"], problem["column"]) == ("shots[0].prompt", 8, 13), problem
    assert problem["message"] == "the text holds only white space", problem
    assert "write at least 1 character" in problem["hint"], problem
    # An empty prompt is refused the same way, at the same place.
    code, _, document = _validate(write_shotlist, '    prompt: ""\n')
    [empty] = _problems(document)
    assert code == 2 and (empty["field"], empty["line"], empty["column"]) == ("shots[0].prompt", 8, 13), empty
    assert empty["message"] == "the text is empty", empty


def test_the_schema_tells_an_editor_that_a_prompt_needs_a_character_besides_spaces() -> None:
    import re

    from idcli.shotlist import json_schema

    pattern = json_schema()["$defs"]["Shot"]["properties"]["prompt"]["pattern"]
    assert re.search(pattern, "  {mara} ") and not re.search(pattern, " \t ")


def test_a_placeholder_in_a_negative_prompt_is_the_characters_description_as_text(shared_plan) -> None:
    """docs/shot-lists.md, `negative_prompt`: '{mara}' there is her description, words the image is steered away
    from; which identities condition the image follows the prompt alone."""
    plan = shared_plan("""\
        version: 1
        project: negative
        model: {preset: tiny-sd}
        defaults: {size: 64x64, steps: 2}
        characters:
          mara: {selfies: [selfies/mara_1.jpg], description: a woman in a grey coat}
          theo: {selfies: [selfies/theo_1.jpg], description: a bearded man}
        shots:
          - {id: a, prompt: "{mara} on a pier", negative_prompt: "{theo}, {mara}, blurry"}
        """)
    [job] = plan.jobs
    assert job.request.negative_prompt == "a bearded man, a woman in a grey coat, blurry"
    assert job.conditioning == ("mara",) and job.characters == ("mara",)


@pytest.mark.parametrize(("line", "field", "fix"), [
    # A valid YAML list alone: the fix was 'quote the text: prompt: "..."', a placeholder for the words written.
    ("    prompt: [dusk]\n", "shots[0].prompt", 'quote the value as written: prompt: "[dusk]"'),
    ('    prompt: a pier\n    negative_prompt: [blurry, "lowres"]\n', "shots[0].negative_prompt",
     'quote the value as written: negative_prompt: "[blurry, \\"lowres\\"]"'),
    ("    prompt: a pier\n    description: [a pier at dusk]\n", None, None),  # a shot has no description
])
def test_a_text_field_yaml_read_as_a_list_is_answered_with_the_value_quoted(write_shotlist, line: str,
                                                                             field: str | None,
                                                                             fix: str | None) -> None:
    code, stderr, document = _validate(write_shotlist, line)
    assert code == 2, stderr
    [problem] = _problems(document)
    if field is None:
        assert problem["message"] == "unknown key 'description'", problem
        return
    assert (problem["field"], problem["line"]) == (field, 7 + line.count("\n")), problem
    assert problem["message"] == "text is expected here, not a list", problem
    assert problem["hint"] == fix, problem
    assert '"..."' not in stderr, stderr


def test_a_character_description_read_as_a_list_is_answered_with_the_value_quoted(write_shotlist) -> None:
    text = BASE.replace("description: a woman in a grey coat", "description: [a woman, grey coat]")
    path = write_shotlist(text + "    prompt: a pier\n")
    [problem] = _problems(json.loads(runner.invoke(app, ["validate", str(path), "--json"]).stdout))
    assert (problem["field"], problem["line"]) == ("characters.mara.description", 5), problem
    assert problem["hint"] == 'quote the value as written: description: "[a woman, grey coat]"', problem


def test_a_list_written_over_several_lines_keeps_the_general_fix(write_shotlist) -> None:
    """Only a value written on one line is quoted back: several lines quoted as one would not be the words meant."""
    code, stderr, document = _validate(write_shotlist, "    prompt:\n      - dusk\n      - a pier\n")
    assert code == 2, stderr
    [problem] = _problems(document)
    assert problem["hint"] == 'quote the text: prompt: "..."', problem


def test_a_tab_after_a_key_is_answered_in_one_flat_sentence(write_shotlist) -> None:
    """'steps:<TAB>2' was told "(replace the tab with a space (inside quotes a tab is kept as text))"."""
    code, stderr, document = _validate(write_shotlist, "    prompt: a pier\n    steps:\t2\n")
    assert code == 2, stderr
    error = document["error"]
    assert (error["line"], error["column"]) == (9, 11), error
    assert error["hint"] == "replace the tab with a space; only inside quotes is a tab kept as text", error
    assert stderr.count("(") == stderr.count(")") == 1, stderr  # the hint's own parentheses, none inside them


def test_a_mapping_in_a_prompt_keeps_the_general_fix(write_shotlist) -> None:
    """'{mara: grief}' quoted back would be a placeholder idcli refuses in the next run: only a [...] list is."""
    code, stderr, document = _validate(write_shotlist, "    prompt: {mara: grief}\n")
    assert code == 2, stderr
    [problem] = _problems(document)
    assert problem["hint"] == 'quote the text: prompt: "..."', problem


# -- a prompt starting with a quoted line of dialogue; an anchor an alias uses ---------------------------------


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
