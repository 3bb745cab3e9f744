"""Why a group shot's take is stale, per character (idcli/stale_causes.py): the first character named is said as the
others are.

With several characters each one's identity strength is balanced for its own expression (docs/method.md, the
identity/expression balance), so a changed expression changes that character's strength with it, which the cause
folds into the expression (``theo's expression changed (surprise -> fear)``). The first character named is also the
job's subject, checked a second time through the one-character record, where the strength's change was said on its
own: changing mara's expression said ``mara's strength, mara's expression changed (joy -> grief)``, though no strength
was touched. Nothing else changes: no job key, no image.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import idcli
from idcli.cli import app

pytest.importorskip("insightface", exc_type=ImportError)

SHOTS = """\
version: 1
project: causes-test
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: ddim, takes: 1}
characters:
  mara: {selfies: [selfies/mara_1.jpg], description: a red-haired woman}
  theo: {selfies: [selfies/theo_1.jpg], description: a young man}
shots:
  - id: bar
    prompt: "{mara} talks to {theo} in a bar"
    expressions: {mara: joy, theo: surprise}
"""


def _causes(shots: Path, out: Path) -> dict[str, str | None]:
    result = CliRunner().invoke(app, ["plan", str(shots), "--device", "cpu", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return {row["shot_id"]: row["cause"] for row in json.loads(result.stdout)["jobs"] if row["state"] == "stale"}


def test_the_first_characters_expression_is_said_as_the_others_are(write_shotlist, tmp_path: Path,
                                                                   engine_factory) -> None:
    shots, out = write_shotlist(SHOTS), tmp_path / "out"
    assert idcli.render(idcli.load_shotlist(shots), out, device="cpu", engine_factory=engine_factory).failed == 0
    shots.write_text(SHOTS.replace("theo: surprise", "theo: fear"), "utf-8")
    assert _causes(shots, out) == {"bar": "theo's expression changed (surprise -> fear)"}
    shots.write_text(SHOTS.replace("mara: joy", "mara: grief"), "utf-8")
    assert _causes(shots, out) == {"bar": "mara's expression changed (joy -> grief)"}
    # A strength the artist changed is still said, with the expression's change beside it.
    shots.write_text(SHOTS.replace("mara: joy", "mara: grief").replace(
        "description: a young man}", "description: a young man, identity_strength: 0.5}"), "utf-8")
    assert _causes(shots, out) == {"bar": "mara's expression, theo's strength changed (joy -> grief)"}
