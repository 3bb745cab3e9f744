"""What validate says about group shots (docs/shot-lists.md, docs/method.md "Several characters"): a hint must
lead somewhere that validates."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from idcli.cli import app

SHOTS = """\
version: 1
project: dinner
model: {preset: tiny-sd}
characters:
  mara: {selfies: [selfies/mara_1.jpg], description: a red-haired woman}
  theo: {selfies: [selfies/theo_1.jpg], description: a young man}
  ines: {selfies: [selfies/ines_1.jpg], description: a blonde girl}
  nadia: {selfies: [selfies/mara_2.jpg], description: a woman with navy braids}
  ravi: {selfies: [selfies/theo_2.jpg], description: a grey-haired man}
  olga: {selfies: [selfies/ines_2.jpg], description: an old woman}
  piet: {selfies: [selfies/theo_1.jpg], description: a bald man}
shots:
  - id: crowd
    prompt: "{mara}, {theo}, {ines}, {nadia}, {ravi}, {olga} and {piet} at a long dinner table"
    method: single
  - id: pair
    prompt: "{mara} and {theo} whisper at the table"
    method: single
"""


def test_the_single_method_note_does_not_suggest_dual_line_beyond_its_limit(write_shotlist) -> None:
    path = write_shotlist(SHOTS)
    report = json.loads(CliRunner().invoke(app, ["validate", str(path), "--json"]).stdout)
    assert report["ok"] is True, report
    hints = {n["path"]: n["hint"] for n in report["notes"] if "conditions one identity" in n["message"]}
    # Seven characters: dual-line is refused for them (at most 6), so the note says what can be done instead.
    assert hints["shots[0].prompt"] == ("a dual-line shot may name at most 6 characters: split the shot for one "
                                        "identity line per character")
    assert hints["shots[1].prompt"] == "use 'method: dual-line' for one identity line per character"
    # The hint for the crowd is true: the same shot as dual-line is refused, at most 6 is accepted.
    dual = write_shotlist(SHOTS.replace("    method: single\n  - id: pair", "  - id: pair"), "dual.yaml")
    refused = CliRunner().invoke(app, ["validate", str(dual)])
    assert refused.exit_code == 2 and "may name at most 6" in refused.output


PAIR = """\
version: 1
project: dinner
model: {preset: tiny-sd}
characters:
  mara: {selfies: [selfies/mara_1.jpg], description: a red-haired woman}
  theo: {selfies: [selfies/theo_1.jpg], description: a young man}
shots:
  - id: pair
    prompt: "{mara} and {theo} whisper at the table"
"""


def test_regions_are_answered_with_where_a_shot_says_who_stands_where(write_shotlist) -> None:
    # A regional prompter's habit: 'regions:' got "did you mean 'expressions'?", which leads to
    # expressions: {mara: left}, an unknown expression. The hint says where positions go instead.
    path = write_shotlist(PAIR + "    regions: {mara: left, theo: right}\n")
    report = json.loads(CliRunner().invoke(app, ["validate", str(path), "--json"]).stdout)
    (problem,) = report["error"]["problems"]
    assert (problem["field"], problem["line"]) == ("shots[0].regions", 10)
    assert "expressions" not in problem["hint"]
    assert "in the prompt" in problem["hint"] and "plate_faces" in problem["hint"]
    # The hint leads somewhere that validates: the positions written in the prompt's words.
    moved = write_shotlist(PAIR.replace("{mara} and {theo} whisper", "{mara} on the left and {theo} on the right "
                                        "whisper"), "moved.yaml")
    assert CliRunner().invoke(app, ["validate", str(moved)]).exit_code == 0


@pytest.mark.parametrize(("key", "value", "field"), [
    ("cfg", "7", "guidance"), ("cfg_scale", "7", "guidance"), ("scheduler", "euler", "sampler"),
    ("num_inference_steps", "8", "steps"), ("width", "256", "size"), ("height", "256", "size"),
    ("denoising_strength", "0.5", "plate_strength"), ("denoise", "0.5", "plate_strength"),
])
def test_another_tools_name_for_a_field_names_idclis(write_shotlist, key: str, value: str, field: str) -> None:
    path = write_shotlist(PAIR + f"    {key}: {value}\n")
    report = json.loads(CliRunner().invoke(app, ["validate", str(path), "--json"]).stdout)
    (problem,) = report["error"]["problems"]
    assert problem["field"] == f"shots[0].{key}" and problem["message"] == f"unknown key '{key}'"
    assert f"'{field}'" in problem["hint"], problem["hint"]


@pytest.mark.parametrize(("key", "value", "field", "not_said"), [
    # Where each character stands, as a layout or regional tool names it: spelling sent these to fields that mean
    # something else (positions -> expressions, placement -> plate_strength, areas and masks -> takes).
    ("positions", "{mara: left, theo: right}", "in the prompt", "expressions"),
    ("position", "left", "in the prompt", ""), ("placement", "{mara: left}", "in the prompt", "plate_strength"),
    ("layout", "two-shot", "in the prompt", ""), ("areas", "[left, right]", "in the prompt", "takes"),
    ("masks", "[left, right]", "in the prompt", "takes"),
    ("regional_prompts", "[a, b]", "in the prompt", "negative_prompt"),
    # An existing frame and its faces, as img2img tools name them.
    ("init_image", "plate.png", "'plate'", ""), ("plate_file", "plate.png", "'plate'", "plate_faces"),
    ("img2img_strength", "0.5", "'plate_strength'", "identity_strength"),
    ("boxes", "[[1, 2, 30, 30]]", "'plate_faces'", ""), ("face_boxes", "[[1, 2, 30, 30]]", "'plate_faces'", ""),
    ("bbox", "[1, 2, 30, 30]", "'plate_faces'", ""),
    # 'strength' alone: either strength, said as both.
    ("strength", "0.5", "'identity_strength'", ""),
])
def test_where_characters_stand_and_plate_words_are_answered_by_meaning(write_shotlist, key: str, value: str,
                                                                        field: str, not_said: str) -> None:
    path = write_shotlist(PAIR + f"    {key}: {value}\n")
    report = json.loads(CliRunner().invoke(app, ["validate", str(path), "--json"]).stdout)
    (problem,) = report["error"]["problems"]
    assert problem["field"] == f"shots[0].{key}" and problem["message"] == f"unknown key '{key}'"
    assert field in problem["hint"], problem["hint"]
    assert not not_said or f"'{not_said}'" not in problem["hint"], problem["hint"]
    if key == "strength":
        assert "'plate_strength'" in problem["hint"], problem["hint"]
        # A character has no plate: its 'strength' is its identity_strength alone.
        path = write_shotlist(PAIR.replace("description: a young man}", "description: a young man, strength: 0.5}"))
        report = json.loads(CliRunner().invoke(app, ["validate", str(path), "--json"]).stdout)
        (problem,) = report["error"]["problems"]
        assert problem["field"] == "characters.theo.strength", problem
        assert "'identity_strength'" in problem["hint"] and "plate_strength" not in problem["hint"], problem["hint"]


def test_a_batch_size_in_the_shot_list_is_answered_with_the_option(write_shotlist) -> None:
    path = write_shotlist(PAIR.replace("shots:", "defaults: {batch_size: 4}\nshots:"))
    report = json.loads(CliRunner().invoke(app, ["validate", str(path), "--json"]).stdout)
    (problem,) = report["error"]["problems"]
    assert problem["field"] == "defaults.batch_size" and "--batch-size" in problem["hint"]


def test_an_expression_for_a_cast_member_the_prompt_leaves_out_is_not_renamed_to_a_near_name(write_shotlist) -> None:
    # `ann` and `anna` are two people. "{ann} eats cake" with `expressions: {anna: joy}` said "'anna' is not named in
    # the prompt (did you mean 'ann'?)": moving anna's expression onto ann, another character. anna is in the cast, so
    # the fix is to name her in the prompt or to drop the entry; only a name no character has is a typo to correct.
    shots = SHOTS.replace("  piet:", "  ann: {selfies: [selfies/mara_1.jpg], description: a woman in red}\n"
                                     "  anna: {selfies: [selfies/ines_1.jpg], description: a girl in blue}\n  piet:")
    shots += ('  - id: cake\n    prompt: "{ann} eats cake at the table"\n'
              "    expressions: {anna: joy, anne: grief}\n")
    report = json.loads(CliRunner().invoke(app, ["validate", str(write_shotlist(shots)), "--json"]).stdout)
    assert report["ok"] is False, report
    problems = {p["field"]: p for p in report["error"]["problems"]}
    anna = problems["shots[2].expressions.anna"]
    assert anna["message"] == "'anna' is not named in the prompt"
    assert anna["hint"] == ("'anna' is a character of the cast, not a misspelt 'ann': put {anna} in the prompt, or "
                            "remove this entry (the prompt names: ann)")
    assert "did you mean" not in anna["hint"]
    # A name no character has is still a typo, with the near name of the prompt.
    anne = problems["shots[2].expressions.anne"]
    assert anne["message"] == "'anne' is not named in the prompt" and anne["hint"] == "did you mean 'ann'?"
