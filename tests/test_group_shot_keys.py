"""A group or plate shot's job key names only what reaches its pixels (docs/file-formats.md, "Job keys").

A shot's own ``expression`` is every named character's expression unless ``expressions`` gives the character its
own. When every character has its own, the shot's reaches no prompt, line or strength: adding, editing or removing it
must not make the takes stale (a re-render for nothing). Where a character takes it, it stays in the key as before.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cli_helpers import plan_jobs

from idcli.plan import Job

pytest.importorskip("insightface", exc_type=ImportError)

RECIPE_PLATE = Path(__file__).resolve().parents[1] / "recipes" / "plates" / "two_people.png"

SHOTS = """\
version: 1
project: group-keys
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2}
characters:
  mara: {selfies: [selfies/mara_1.jpg], description: a red-haired woman}
  theo: {selfies: [selfies/theo_1.jpg], description: a young man}
shots:
  - id: two
    prompt: "{mara} and {theo} at the dinner table"
    expressions: EXPRESSIONS
    SHOT_LEVEL
  - id: plate
    prompt: "{mara} and {theo} before a window"
    plate: plate.png
    expressions: EXPRESSIONS
    SHOT_LEVEL
"""


def _jobs(write_shotlist, name: str, expressions: str, shot_level: str) -> dict[str, Job]:
    text = SHOTS.replace("EXPRESSIONS", expressions).replace("SHOT_LEVEL", shot_level or "takes: 1")
    return {job.shot_id: job for job in plan_jobs(write_shotlist(text, name))}


def _without_expression(material: dict[str, object]) -> dict[str, object]:
    return {name: value for name, value in material.items() if name != "expression"}


def test_a_shot_expression_every_character_overrides_leaves_the_keys(write_shotlist, tmp_path: Path) -> None:
    shutil.copy(RECIPE_PLATE, tmp_path / "plate.png")
    plain = _jobs(write_shotlist, "plain.yaml", "{mara: joy, theo: fear}", "")
    overridden = _jobs(write_shotlist, "overridden.yaml", "{mara: joy, theo: fear}", "expression: worry")
    for shot_id in ("two", "plate"):
        before, after = plain[shot_id], overridden[shot_id]
        # Everything that reaches the engine is the same: prompts, lines, strengths, plate ...
        assert _without_expression(before.key_material) == _without_expression(after.key_material)
        # ... so the key is too: the takes of the shot without it stay done.
        assert before.key == after.key, shot_id


def test_a_shot_expression_a_character_takes_stays_in_the_key(write_shotlist, tmp_path: Path) -> None:
    # theo has no entry of his own: he takes the shot's expression, so its record is keyed as it always was.
    shutil.copy(RECIPE_PLATE, tmp_path / "plate.png")
    taken = _jobs(write_shotlist, "taken.yaml", "{mara: joy}", "expression: worry")
    for shot_id in ("two", "plate"):
        material = taken[shot_id].key_material
        assert isinstance(material["expression"], dict) and material["expression"]["label"] == "worry", shot_id


def test_a_shot_expression_no_character_takes_is_not_recorded_either(write_shotlist, tmp_path: Path) -> None:
    # The take stays done when the overridden expression is edited, so its sidecar, PNG record, C2PA manifest and
    # review label must not name it: they would name the expression the shot list had when it rendered, not its own.
    shutil.copy(RECIPE_PLATE, tmp_path / "plate.png")
    worry = _jobs(write_shotlist, "worry.yaml", "{mara: joy, theo: fear}", "expression: worry")
    grief = _jobs(write_shotlist, "grief.yaml", "{mara: joy, theo: fear}", "expression: grief")
    taken = _jobs(write_shotlist, "taken.yaml", "{mara: joy}", "expression: worry")
    for shot_id in ("two", "plate"):
        assert worry[shot_id].key == grief[shot_id].key, shot_id
        # What a re-render would record is what the done take records: no shot expression, only the characters'.
        assert worry[shot_id].expression is None and grief[shot_id].expression is None, shot_id
        assert [c["expression"]["label"] for c in worry[shot_id].cast] == ["joy", "fear"], shot_id
        # Where a character takes it, it is recorded as before.
        recorded = taken[shot_id].expression
        assert recorded is not None and recorded["label"] == "worry" and recorded["given"] == "worry", shot_id
