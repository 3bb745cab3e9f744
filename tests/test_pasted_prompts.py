"""Prompts as AUTOMATIC1111 and ComfyUI users write them, pasted into a shot list (docs/shot-lists.md, "Prompts are
plain text"): each form those tools interpret is either said by `validate` at its line (and rendered as words) or
refused at its line with the fix, never passed to the text encoder silently."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from idcli.cli import app
from idcli.prompt_syntax import foreign_syntax

SHOTS = """\
version: 1
project: pasted
model: {{preset: tiny-sd}}
characters:
  mara: {{selfies: [selfies/mara_1.jpg], description: a woman}}
shots:
  - id: s01
    prompt: {prompt}
"""


def _validate(write_shotlist, prompt: str) -> tuple[int, list[str], dict]:
    path = write_shotlist(SHOTS.format(prompt=json.dumps(prompt)))
    result = CliRunner().invoke(app, ["validate", str(path)])
    document = json.loads(CliRunner().invoke(app, ["validate", str(path), "--json"]).stdout)
    return result.exit_code, [line for line in result.output.splitlines() if line.startswith("idcli: ")], document


@pytest.mark.parametrize("text, found", [
    # A1111's stronger emphasis: two brackets are no prose punctuation (one is, and is left alone).
    ("((masterpiece)), {mara} on a pier, [[fog]]", ["((masterpiece))", "[[fog]]"]),
    ("(((rain)))", ["((rain))"]),
    # An escaped bracket is A1111's literal bracket; here the backslash reaches the encoder too.
    (r"a sign reading \(open\)", [r"\(", r"\)"]),
    # ComfyUI's textual-inversion embeddings, alone and weighted.
    ("embedding:EasyNegative, (embedding:bad_hands:1.2)",
     ["embedding:EasyNegative", "(embedding:bad_hands:1.2)", "embedding:bad_hands"]),
    # A Dynamic Prompts wildcard file, and a wildcard where braces are no placeholder (a description).
    ("{mara} in a __colors__ coat", ["__colors__"]),
    ("a woman in a {red|blue} coat, {{literal|braces}}", ["{red|blue}"]),
    # A1111's [to:when] and [from::when] beside [from:to:when], and its alternating words.
    ("[dog:0.5], [cat::10], [cat:dog:0.5], [cat|dog|fox]",
     ["[dog:0.5]", "[cat::10]", "[cat:dog:0.5]", "[cat|dog|fox]"]),
    # Prose, and the forms already found once each.
    ("(night), [dusk], an embedding: a vector, snake_case, ((a:1.2))", ["(a:1.2)"]),
    ("<embedding:foo>", ["<embedding:foo>"]),
])
def test_pasted_forms_are_found(text: str, found: list[str]) -> None:
    assert [hit for hit, _what in foreign_syntax(text)] == found


def test_a_ratio_or_a_time_in_brackets_is_prose_not_a_weight(write_shotlist) -> None:
    """A previs description names its frame's aspect ratio and a scene's time: `(2.39:1)` and `[10:30]` were noted as
    an A1111 weight and prompt editing, and `plan` and `render` warned of pasted syntax on every such shot list. Words
    ending in a digit before the colon are prose; a weight's or prompt editing's words end in a letter."""
    text = "a wide shot (2.39:1), (16:9), (aspect 4:3), at [10:30], [12:30:45]; (1girl:1.2), [day:night:0.5]"
    assert [hit for hit, _what in foreign_syntax(text)] == ["(1girl:1.2)", "[day:night:0.5]"]
    code, lines, document = _validate(write_shotlist, "{mara} on a pier, anamorphic (2.39:1), dawn [05:40]")
    assert code == 0 and not document.get("notes") and not any("plain words" in line for line in lines), lines


@pytest.mark.parametrize("prompt, shown", [
    ("((masterpiece)), {mara} on a pier", "'((masterpiece))' (emphasis)"),
    (r"a sign reading \(open\) and {mara}", r"'\(' (an escaped bracket)"),
    ("{mara} by the sea, embedding:EasyNegative", "'embedding:EasyNegative' (a ComfyUI embedding)"),
    ("{mara} in a __colors__ coat", "'__colors__' (a wildcard file)"),
    ("{mara} as a [cat|dog], [rain:0.4]", "'[cat|dog]' (alternating words), '[rain:0.4]' (prompt editing)"),
])
def test_validate_notes_them_at_the_prompts_line(write_shotlist, prompt: str, shown: str) -> None:
    code, lines, document = _validate(write_shotlist, prompt)
    assert code == 0, lines
    assert any(line.startswith("idcli: note: ") and ":8:13: shots[0].prompt: " in line and shown in line
               and "plain words" in line for line in lines), lines
    assert [n["path"] for n in document["notes"]] == ["shots[0].prompt"]


@pytest.mark.parametrize("prompt, words, hint", [
    ("{mara} in a {red|blue} coat", "'{red|blue}' is a wildcard (a random choice in Dynamic Prompts and ComfyUI)",
     "write the one meant (red), or a shot for each"),
    ("{mara} in a {2$$red|blue|green} coat", "'{2$$red|blue|green}' is a wildcard", "(red)"),
    ("{mara} in a {red:1.2|blue} coat", "'{red:1.2|blue}' is a wildcard", "(red:1.2)"),
    ("{ mara } on a pier", "'{ mara }' has spaces inside its braces", "write {mara}"),
])
def test_a_wildcard_or_a_spaced_placeholder_is_refused_with_its_fix(write_shotlist, prompt: str, words: str,
                                                                    hint: str) -> None:
    code, lines, document = _validate(write_shotlist, prompt)
    assert code == 2
    error = [line for line in lines if line.startswith("idcli: error: ")]
    assert len(error) == 1 and ":8:13: shots[0].prompt: " in error[0] and words in error[0], lines
    problem = document["error"]["problems"][0]
    assert problem["line"] == 8 and hint in problem["hint"], problem
    assert "literal braces" in problem["hint"]  # what keeps the braces as text, for a prompt that means them


def test_a_wildcard_in_a_description_is_noted_where_braces_are_text(write_shotlist) -> None:
    # A description is substituted as written (its braces are no placeholders): '{red|blue}' reached the encoder.
    path = write_shotlist(SHOTS.format(prompt='"{mara} on a pier"').replace(
        "description: a woman", "description: 'a woman in a {red|blue} coat'"))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert ":5:54: characters.mara.description: '{red|blue}' (a wildcard)" in result.output, result.output


@pytest.mark.parametrize(("key", "value", "said", "not_said"), [
    # A1111's "Clip skip: 2" and ComfyUI's CLIPSetLastLayer: no such knob, and the spelling found none either.
    ("clip_skip", "2", "no clip skip", "allowed:"),
    # LoRAs and embeddings as a field: idcli loads neither (the prompt's tags are noted, this key was listed away).
    ("loras", "[filmgrain]", "merge", "allowed:"), ("lora", "filmgrain", "merge", "allowed:"),
    ("embeddings", "[EasyNegative]", "plain word", "allowed:"),
    # The prompt and the image count as ComfyUI and A1111 name them.
    ("positive", "a pier", "'prompt'", "allowed:"), ("positive_prompt", "a pier", "'prompt'", "'negative_prompt'"),
    ("batch_count", "4", "'takes'", "allowed:"), ("n_iter", "4", "'takes'", "allowed:"),
])
def test_a1111_and_comfyui_prompt_keys_are_answered_by_meaning(write_shotlist, key: str, value: str, said: str,
                                                              not_said: str) -> None:
    path = write_shotlist(SHOTS.format(prompt='"{mara} on a pier"') + f"    {key}: {value}\n")
    report = json.loads(CliRunner().invoke(app, ["validate", str(path), "--json"]).stdout)
    (problem,) = report["error"]["problems"]
    assert problem["field"] == f"shots[0].{key}" and problem["line"] == 9, problem
    words = f"{problem['message']} ({problem['hint']})"
    assert said in words and not_said not in words, words
    if key == "clip_skip":  # the same answer where every shot's settings are given
        path = write_shotlist(SHOTS.format(prompt='"{mara}"').replace("characters:", "defaults: {clip_skip: 2}\n"
                                                                                      "characters:"))
        (problem,) = json.loads(CliRunner().invoke(app, ["validate", str(path), "--json"]).stdout)["error"]["problems"]
        assert problem["field"] == "defaults.clip_skip" and "no clip skip" in problem["hint"], problem


UNGUIDED = """\
version: 1
project: unguided
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 1.0, negative_prompt: "blurry, lowres"}
characters:
  mara: {selfies: [selfies/mara_1.jpg], description: a woman}
shots:
  - {id: s01, prompt: "{mara} on a pier"}
  - {id: s02, prompt: "{mara} at a bar", negative_prompt: "(worst quality), extra fingers"}
  - {id: s03, prompt: "{mara} at dawn", guidance: 6.0}
"""


def test_a_negative_prompt_that_guidance_1_leaves_unused_is_noted_at_its_line(write_shotlist) -> None:
    # ComfyUI's and turbo models' habit, cfg 1.0: classifier-free guidance is off, so the negative prompt never
    # reaches the model (nor the job key), and a pasted 'blurry, lowres' was kept without a word.
    path = write_shotlist(UNGUIDED)
    report = json.loads(CliRunner().invoke(app, ["validate", str(path), "--json"]).stdout)
    assert report["ok"] is True
    unused = [n for n in report.get("notes", []) if "not used" in n["message"]]
    assert [(n["path"], n["line"]) for n in unused] == [("defaults.negative_prompt", 4),
                                                        ("shots[1].negative_prompt", 9)], unused
    assert "s01" in unused[0]["message"] and "s03" not in unused[0]["message"]  # s03's guidance uses it
    assert "guidance 1" in unused[1]["message"] and "above 1" in unused[1]["hint"], unused[1]
    from idcli.planning import plan_shotlist

    plan, _runtime = plan_shotlist(path)
    said = [w for w in plan.warnings if "not used" in w]
    assert len(said) == 1 and "2 negative prompts" in said[0] and "idcli validate" in said[0], plan.warnings
    assert not [w for w in plan_shotlist(write_shotlist(UNGUIDED.replace("guidance: 1.0", "guidance: 1.5"),
                                                        "guided.yaml"))[0].warnings if "not used" in w]


def test_an_a1111_infotext_pasted_into_a_prompt_is_noted_with_where_its_parts_go(write_shotlist) -> None:
    # "PNG Info" copied whole from A1111: its negative prompt and settings line reached the encoder as prompt words.
    prompt = ("{mara} on a pier\nNegative prompt: blurry, lowres\n"
              "Steps: 20, Sampler: DPM++ 2M, CFG scale: 7, Seed: 1234, Size: 512x512")
    assert [what for _hit, what in foreign_syntax(prompt)] == ["A1111's negative prompt line",
                                                               "A1111's settings line"]
    code, lines, document = _validate(write_shotlist, prompt)
    assert code == 0, lines
    (note,) = document["notes"]
    assert note["path"] == "shots[0].prompt" and note["line"] == 8, note
    assert "'Negative prompt:' (A1111's negative prompt line)" in note["message"], note
    assert "negative_prompt" in note["hint"] and "seeds" in note["hint"], note
    assert [what for _hit, what in foreign_syntax("the negative prompt: a photo; steps: 3 of 20")] == []
