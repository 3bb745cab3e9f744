"""A prompt that names one character twice (idcli/repeated_names.py; docs/shot-lists.md, "A character named twice"):
idcli renders and checks two figures of her, which a mirror shot means and prose naming her again does not
(`{mara} talks to a waiter; the waiter hands {mara} the bill`: the waiter stands in her second place, and QA flags
him). validate notes each such shot at its prompt's line, plan warns once; nothing is refused or changed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_helpers import plan_on_cpu
from review_helpers import DetectedFace, cli

SHOTS = """\
version: 1
project: repeats
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 1}
characters:
  mara: {selfies: [selfies/mara_1.jpg], description: a red-haired woman}
  theo: {selfies: [selfies/theo_1.jpg], description: a young man}
  piet: {selfies: [selfies/theo_2.jpg], description: a tall stranger, identity_strength: 0}
shots:
  - id: waiter
    prompt: "{mara} talks to a waiter; the waiter hands {mara} the bill"
  - id: once
    prompt: "{mara} and {theo} at a table"
  - id: single
    method: single
    prompt: "{mara} looks at {theo}, then {theo} looks away"
  - id: textonly
    prompt: "{piet} waves at {piet}'s reflection"
"""
NOTE = ("'mara' is named twice: each place takes mara's identity, and identity QA expects mara's face in each: "
        "another face of mara (a mirror) passes, anyone else there is low_identity")


def test_validate_notes_a_shot_naming_a_character_twice_at_its_prompt(write_shotlist) -> None:
    shots = write_shotlist(SHOTS)
    result = cli("validate", shots)
    assert result.exit_code == 0, result.output  # said, not refused
    said = [line for line in result.output.splitlines() if "is named twice" in line]
    assert said == [f"idcli: note: {shots}:11:13: shots[0].prompt: {NOTE} (to name the same figure again, refer back "
                    "in words ('the waiter hands her the bill'), not with a placeholder)"], result.output
    notes = json.loads(cli("validate", shots, "--json").stdout)["notes"]
    assert [n["path"] for n in notes if "named twice" in n["message"]] == ["shots[0].prompt"]


def test_only_characters_whose_identity_conditions_the_image_are_said(write_shotlist) -> None:
    # method: single conditions mara only (theo twice is his description twice); piet is at strength 0
    text = "\n".join(n["message"] for n in json.loads(cli("validate", write_shotlist(SHOTS), "--json").stdout)["notes"])
    assert "'theo' is named" not in text and "'piet' is named" not in text


def test_plan_warns_once_of_a_character_named_twice(write_shotlist) -> None:
    shots = write_shotlist(SHOTS.replace("{mara} and {theo} at a table", "{theo} looks at {theo} in a mirror"))
    [warning] = [w for w in plan_on_cpu(shots).warnings if "more than once" in w]
    assert warning == (f"2 shots name a character more than once, so each place takes the character's identity and "
                       f"identity QA expects that face in each (first: {shots}:11:13: shots[0].prompt: 'mara' is named "
                       "twice); 'idcli validate' lists each, with how to name a figure once")
    printed = cli("plan", shots, "--device", "cpu")
    assert printed.exit_code == 0 and f"idcli: warning: {warning}" in " ".join(printed.output.split()), printed.output


def test_what_qa_does_with_the_waiter_in_her_second_place() -> None:
    # The behaviour the note describes: named twice, the waiter's face is her second place (low_identity); named
    # once (the prose refers back in words), he is a stranger beside her and nothing is flagged.
    from idcli.review.qa import CastMember, assess, named_repeats

    mara, waiter = np.eye(512)[0], np.eye(512)[1]
    faces = [DetectedFace([0, 0, 50, 50], mara), DetectedFace([60, 0, 100, 40], waiter)]
    twice = named_repeats("{mara} talks to a waiter; the waiter hands {mara} the bill")
    assert assess(faces, [CastMember("mara", mara)], 100, 100, repeats=twice)["flags"] == ["low_identity"]
    once = named_repeats("{mara} talks to a waiter; the waiter hands her the bill")
    assert assess(faces, [CastMember("mara", mara)], 100, 100, repeats=once)["flags"] == []


@pytest.mark.parametrize("prompt", ["{mara} looks at {mara} in a mirror", "{mara}, {mara} and {mara}"])
def test_the_note_counts_the_places(write_shotlist, prompt: str) -> None:
    shots = write_shotlist(SHOTS.replace("{mara} talks to a waiter; the waiter hands {mara} the bill", prompt))
    text = cli("validate", shots).output
    assert ("'mara' is named twice" in text) == (prompt.count("{mara}") == 2)
    assert ("'mara' is named three times" in text) == (prompt.count("{mara}") == 3)
