"""A selfie listed twice for one character (idcli/repeated_selfies.py; docs/shot-lists.md, "Characters"): the
identity averaged the same face twice without a word. validate notes it at the second entry's line (``--json``
too), plan and render warn of it; nothing is refused (exit 0) or changed."""

from __future__ import annotations

import json

from cli_helpers import plan_on_cpu
from review_helpers import cli

SHOTS = """\
version: 1
project: twice
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 1}
characters:
  mara: {selfies: [selfies/mara_1.jpg, ./selfies/mara_1.jpg], description: a red-haired woman}
  theo: {selfies: [selfies/theo_1.jpg, selfies/theo_2.jpg], description: a young man}
shots:
  - id: table
    prompt: "{mara} and {theo} at a table"
"""
NOTE = ("characters.mara.selfies[1]: selfie './selfies/mara_1.jpg' is given twice (as selfies[0] too): mara's "
        "identity averages the same face twice")


def test_validate_notes_a_selfie_given_twice_at_the_second_entry(write_shotlist) -> None:
    shots = write_shotlist(SHOTS)
    result = cli("validate", shots)
    assert result.exit_code == 0, result.output  # said, not refused
    said = [line for line in result.output.splitlines() if "is given twice" in line]
    column = SHOTS.splitlines()[5].index("./selfies") + 1
    assert said == [f"idcli: note: {shots}:6:{column}: {NOTE} (give each photo once: a face listed twice weighs "
                    "twice in the identity's average; list another photo if one was meant)"], result.output
    notes = json.loads(cli("validate", shots, "--json").stdout)["notes"]
    assert [(n["path"], n["line"]) for n in notes if "given twice" in n["message"]] == [
        ("characters.mara.selfies[1]", 6)]


def test_plan_and_render_warn_of_a_selfie_given_twice(write_shotlist) -> None:
    shots = write_shotlist(SHOTS)
    [warning] = [w for w in plan_on_cpu(shots).warnings if "given twice" in w]
    assert warning.startswith(f"{shots}:6:") and NOTE in warning, warning
    for command in (("plan", shots, "--device", "cpu"), ("render", shots, "--device", "cpu", "--dry-run")):
        printed = cli(*command)
        assert printed.exit_code == 0, printed.output
        assert NOTE in " ".join(printed.output.split()), printed.output
    planned = json.loads(cli("plan", shots, "--device", "cpu", "--json").stdout)
    assert any(NOTE in w for w in planned["warnings"]), planned.get("warnings")


def test_distinct_selfies_are_not_noted(write_shotlist) -> None:
    shots = write_shotlist(SHOTS.replace("./selfies/mara_1.jpg", "selfies/mara_2.jpg"))
    assert "given twice" not in cli("validate", shots).output
