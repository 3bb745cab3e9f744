"""What the previs artist is told about mistakes that validate without an error (second artist tour):
a group photo used as a selfie, two characters with one description in a dual-line shot, ..."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from idcli.cli import app

runner = CliRunner()


def _plan_json(path: Path, out: Path) -> dict[str, Any]:
    result = runner.invoke(app, ["plan", str(path), "--out", str(out), "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# -- a group photo used as a selfie ---------------------------------------------------------------------

GROUP_SHOTS = """\
version: 1
project: group
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: euler}
characters:
  mara:
    selfies: [selfies/mara_1.jpg, selfies/group.jpg]
shots:
  - {id: m1, prompt: "{mara} on a pier"}
"""


def _group_photo(selfies: Path) -> None:
    """theo (larger, so the one used) beside mara: a group photo a user might give as mara's selfie."""
    from PIL import Image

    theo, mara = Image.open(selfies / "theo_1.jpg"), Image.open(selfies / "mara_1.jpg")
    mara = mara.resize((int(mara.width * 0.7), int(mara.height * 0.7)))
    canvas = Image.new("RGB", (theo.width + mara.width, max(theo.height, mara.height)), (90, 120, 160))
    canvas.paste(theo, (0, 0))
    canvas.paste(mara, (theo.width, 0))
    canvas.save(selfies / "group.jpg", quality=92)


def test_a_group_photo_selfie_is_warned_about(write_shotlist, selfies: Path, tmp_path: Path) -> None:
    """The largest face of a group photo is used (docs/identity.md): plan and validate --selfies say so,
    naming the selfie at its line, how many faces it shows, which was used, and how to pick another."""
    _group_photo(selfies)
    path, out = write_shotlist(GROUP_SHOTS.replace("selfies/mara_1.jpg, ", "")), tmp_path / "out"
    # (mara_1 and the group photo of theo would be refused as different people; one selfie is what a user gives)
    where = f"{path}:7:15: characters.mara.selfies[0]"

    def check(text: str) -> None:
        assert where in text, text
        for words in ("selfies/group.jpg", "2 faces", "face 0", "largest", "encode-identity", "--face N",
                      "identity:"):
            assert words in text, (words, text)

    warnings = _plan_json(path, out)["warnings"]
    assert len(warnings) == 1
    check(warnings[0])
    text = runner.invoke(app, ["plan", str(path), "--out", str(out), "--device", "cpu"])
    assert text.exit_code == 0
    check(text.stderr)
    checked = runner.invoke(app, ["validate", str(path), "--selfies"])
    assert checked.exit_code == 0, checked.output
    check(checked.output)
    checked = runner.invoke(app, ["validate", str(path), "--selfies", "--json"])
    assert checked.exit_code == 0, checked.output
    check(json.loads(checked.stdout)["warnings"][0])
    # One face per selfie: nothing to warn about.
    plain = write_shotlist(GROUP_SHOTS.replace(", selfies/group.jpg", ""), "plain.yaml")
    assert _plan_json(plain, out)["warnings"] == []
    assert "warnings" not in json.loads(runner.invoke(app, ["validate", str(plain), "--selfies", "--json"]).stdout)
