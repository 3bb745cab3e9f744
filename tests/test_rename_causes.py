"""A character renamed in the shot list, as an artist tidies names at 2 a.m.: what plan and render say.

A character's name is in the job key of every shot where it is one of several characters or a plate face (the
``characters`` lines, the plate's ``faces``), so renaming ``mara`` to ``maya`` renders all those takes again. The
note named no rename: a plate shot's takes said ``characters, plate faces changed`` and a two-character shot's
``characters changed``, as if the cast had changed, and an expression changed in the same edit went unsaid. The
cause now names the rename (``mara's name changed (mara -> maya)``), so the artist can name her back before
rendering, and what else changed (``theo's expression changed (surprise -> anger)``). Nothing else changes: no job
key, no image (the renders are the same as before, the test compares the notes and the causes only).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import idcli
from idcli.cli import app

pytest.importorskip("insightface", exc_type=ImportError)

ROOT = Path(__file__).resolve().parents[1]
RECIPE_PLATE = ROOT / "recipes" / "plates" / "two_people.png"
runner = CliRunner()

SHOTS = """\
version: 1
project: rename-test
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 3, guidance: 4.0, sampler: ddim, takes: 1}
characters:
  mara: {selfies: [selfies/mara_1.jpg], description: a red-haired woman}
  theo: {selfies: [selfies/theo_1.jpg], description: a young man}
shots:
  - id: window
    prompt: "{mara} and {theo} before a window"
    plate: plate.png
    expressions: {mara: joy, theo: {label: surprise, intensity: 0.7}}
  - id: bar
    prompt: "{mara} talks to {theo} in a bar"
    expressions: {mara: joy, theo: surprise}
  - id: alone
    prompt: "{theo} alone on the pier"
"""
RENAMED = SHOTS.replace("{mara}", "{maya}").replace("  mara:", "  maya:").replace("{mara: joy", "{maya: joy")


def _causes(shots: Path, out: Path) -> dict[str, str | None]:
    result = runner.invoke(app, ["plan", str(shots), "--device", "cpu", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return {row["shot_id"]: row["cause"] for row in json.loads(result.stdout)["jobs"] if row["state"] == "stale"}


@pytest.fixture
def rendered(write_shotlist, tmp_path: Path, engine_factory) -> tuple[Path, Path]:
    shutil.copy(RECIPE_PLATE, tmp_path / "plate.png")
    shots, out = write_shotlist(SHOTS), tmp_path / "out"
    report = idcli.render(idcli.load_shotlist(shots), out, device="cpu", engine_factory=engine_factory)
    assert report.failed == 0
    return shots, out


def test_a_renamed_character_is_named_as_renamed_not_as_a_cast_change(rendered: tuple[Path, Path]) -> None:
    shots, out = rendered
    shots.write_text(RENAMED, "utf-8")
    # "alone" names only theo, and a one-character key names no character: not stale.
    assert _causes(shots, out) == {"window": "mara's name changed (mara -> maya)",
                                   "bar": "mara's name changed (mara -> maya)"}
    planned = runner.invoke(app, ["plan", str(shots), "--device", "cpu", "--out", str(out)])
    assert "note:   window, bar: mara's name changed (mara -> maya)" in planned.stdout, planned.stdout


def test_what_else_changed_with_a_rename_is_still_said(rendered: tuple[Path, Path]) -> None:
    shots, out = rendered
    shots.write_text(RENAMED.replace("theo: {label: surprise, intensity: 0.7}", "theo: {label: anger, intensity: "
                                     "0.7}").replace("theo: surprise}", "theo: fear}"), "utf-8")
    causes = _causes(shots, out)
    assert causes == {"window": "mara's name, theo's expression changed (mara -> maya; surprise -> anger)",
                      "bar": "mara's name, theo's expression changed (mara -> maya; surprise -> fear)"}, causes


def test_another_character_in_a_renamed_place_is_still_a_cast_change(rendered: tuple[Path, Path]) -> None:
    """A new name whose selfies are other than the old name's is another person, not a rename."""
    shots, out = rendered
    recast = SHOTS.replace("{mara}", "{ines}").replace("{mara: joy", "{ines: joy").replace(
        "  theo:", "  ines: {selfies: [selfies/ines_1.jpg], description: a blonde girl}\n  theo:")
    shots.write_text(recast, "utf-8")
    causes = _causes(shots, out)
    assert causes["bar"] == "characters changed", causes
    assert causes["window"] == "characters, plate faces changed", causes
