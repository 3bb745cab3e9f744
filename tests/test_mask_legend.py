"""The ``--save-masks`` strip's legend (idcli/masks.py): every character's colour named, however narrow the strip."""

from __future__ import annotations

from io import BytesIO

import numpy as np
import pytest
from PIL import Image

from idcli.masks import CHARACTER_COLOURS, FRAME_SIDE, mask_strip_png

SIX = ["mara", "theo", "ines", "nadia", "grandmother_rose", "anna"]


def _strip(names: list[str], frames: int, size: tuple[int, int] = (256, 320)) -> np.ndarray:
    preview = np.full((*size, 3), 0.5, dtype=np.float32)
    masks = [np.zeros((size[0] // 8, size[1] // 8), dtype=np.float32) for _ in names]
    png = mask_strip_png([{"step": i, "fused": True, "preview": preview, "masks": masks, "names": names}
                          for i in range(frames)], evaluations=frames)
    return np.asarray(Image.open(BytesIO(png)).convert("RGB"), dtype=np.int16)


def _swatches(strip: np.ndarray, frame_height: int) -> list[int]:
    """Indices of the character colours whose whole 11x11 swatch is in the legend (below the frames)."""
    legend = strip[frame_height:]
    found = []
    for index, colour in enumerate(CHARACTER_COLOURS):
        hit = np.all(legend == np.array(colour, dtype=np.int16), axis=-1).astype(np.int32)
        # An 11x11 block of the colour: the swatch drawn whole, not cut at the strip's edge.
        sums = np.lib.stride_tricks.sliding_window_view(hit, (11, 11)).sum(axis=(-1, -2)) if hit.shape[0] >= 11 \
            else np.zeros(1)
        if sums.max() == 121:
            found.append(index)
    return found


@pytest.mark.parametrize(("frames", "size"), [(1, (256, 320)), (2, (448, 256)), (8, (256, 320))])
def test_a_six_character_legend_names_every_colour_in_a_narrow_strip(frames: int, size: tuple[int, int]) -> None:
    # One frame (steps: 1) is 256 pixels wide, a portrait one less, and six names took 24 + 7 per letter each in one
    # row: the fifth and sixth characters' colours fell off the strip's right edge, so who was magenta or cyan could
    # not be read. The legend now wraps to further rows (and the strip widens for a name longer than a frame).
    strip = _strip(SIX, frames, size)
    frame_height = round(FRAME_SIDE * size[0] / max(size))
    assert _swatches(strip, frame_height) == list(range(6))


def test_a_legend_that_fits_keeps_its_one_row() -> None:
    one, two = _strip(["mara"], 8), _strip(["mara", "theo"], 8)
    assert two.shape[0] == one.shape[0] + 16 and two.shape[1] == one.shape[1]
