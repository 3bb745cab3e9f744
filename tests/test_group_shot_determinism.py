"""A one-character shot renders the same image whether its shot list is only that shot or a dinner scene of
group shots and plate shots around it (docs/architecture.md, "Batch composition"): the same key, and at one job
per forward the same pixels; batched, at most one 8-bit level at a few values (the CPU's summation order)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import idcli

pytest.importorskip("insightface", exc_type=ImportError)

RECIPE_PLATE = Path(__file__).resolve().parents[1] / "recipes" / "plates" / "two_people.png"

HEAD = """\
version: 1
project: dinner
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: dpmpp-2m}
characters:
  mara: {selfies: [selfies/mara_1.jpg], description: a red-haired woman}
  theo: {selfies: [selfies/theo_1.jpg], description: a young man}
  ines: {selfies: [selfies/ines_1.jpg], description: a blonde girl}
shots:
"""
ALONE = """\
  - id: close
    prompt: "close-up of {ines} at the dinner table, candle light"
"""
SCENE = """\
  - id: wide
    prompt: "{mara}, {theo} and {ines} at the dinner table, candle light"
    expressions: {mara: joy, theo: worry}
  - id: two
    prompt: "{mara} and {theo} at the dinner table, candle light"
""" + ALONE + """\
  - id: plate
    prompt: "{mara} and {theo} before a window"
    plate: plate.png
"""


def _pixels(out: Path) -> np.ndarray:
    with Image.open(out / "close" / "close_t1.png") as image:
        return np.asarray(image.convert("RGB")).astype(int)


def test_a_one_character_shot_is_the_same_image_among_group_shots(write_shotlist, tmp_path: Path,
                                                                   engine_factory) -> None:
    shutil.copy(RECIPE_PLATE, tmp_path / "plate.png")
    alone, scene = write_shotlist(HEAD + ALONE, "alone.yaml"), write_shotlist(HEAD + SCENE, "scene.yaml")
    reports = {}
    for name, shots, batch in (("alone", alone, 1), ("scene-1", scene, 1), ("scene", scene, "auto")):
        reports[name] = idcli.render(idcli.load_shotlist(shots), tmp_path / name, device="cpu", batch_size=batch,
                                     engine_factory=engine_factory, qa=False)
        assert reports[name].failed == 0
    keys = {name: next(j.key for j in report.jobs if j.shot_id == "close") for name, report in reports.items()}
    assert len(set(keys.values())) == 1  # the job key never depends on the shot list around it
    assert np.array_equal(_pixels(tmp_path / "alone"), _pixels(tmp_path / "scene-1"))
    assert np.abs(_pixels(tmp_path / "alone") - _pixels(tmp_path / "scene")).max() <= 1
