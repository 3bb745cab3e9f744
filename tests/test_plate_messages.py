"""A plate box refused says where it reaches past the plate and what is allowed (docs/plates.md, "Fields")."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from idcli.cli import app

RECIPE_PLATE = Path(__file__).resolve().parents[1] / "recipes" / "plates" / "two_people.png"

SHOTS = """\
version: 1
project: plate-messages
model: {preset: tiny-sd}
characters:
  mara: {selfies: [selfies/mara_1.jpg], description: a red-haired woman}
  theo: {selfies: [selfies/theo_1.jpg], description: a young man}
shots:
  - id: window
    prompt: "{mara} and {theo} before a window"
    plate: plate.png
    plate_faces: [[40, 200, 150, 150], BOX]
"""


def test_a_box_past_the_plates_edge_names_the_edge_and_the_limit(write_shotlist, tmp_path: Path) -> None:
    shutil.copy(RECIPE_PLATE, tmp_path / "plate.png")  # 760x420
    said = {}
    for box in ("[700, 100, 100, 100]", "[300, 380, 100, 100]", "[700, 380, 100, 100]"):
        path = write_shotlist(SHOTS.replace("BOX", box))
        result = CliRunner().invoke(app, ["validate", str(path)])
        assert result.exit_code == 2, result.output
        assert f"{path}:11:" in result.output and "shots[0].plate_faces[1]" in result.output
        said[box] = result.output
    assert ("box [700, 100, 100, 100] is outside the 760x420 plate: its right edge x + w = 800 is past 760 "
            "(a box lies inside the plate: x + w at most 760, y + h at most 420)") in said["[700, 100, 100, 100]"]
    assert "its bottom edge y + h = 480 is past 420" in said["[300, 380, 100, 100]"]
    assert "its right edge x + w = 800 is past 760 and its bottom edge y + h = 480 is past 420" in \
        said["[700, 380, 100, 100]"]
