"""The composite resizes and blends only the face mask's nonzero window (docs/plates.md, "The method", step 6): every
byte is what the composite of before 2026-12-02 (late morning) gave, which resized the decoded face to its whole crop
square; that function is kept here, as it was, to compare with."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from idcli.engine import plates as P


def reference_composite(plate: np.ndarray, faces: list[tuple[np.ndarray, np.ndarray, P.Box]]) -> np.ndarray:
    """engine/plates.composite as it was at 2c85d5d: the face resized to the whole square, the window blended."""
    out = plate.copy()
    for face, mask, box in faces:
        x0, y0, side, _ = box
        image = Image.fromarray(np.ascontiguousarray(face))
        if face.shape[0] != side:
            image = image.resize((side, side), Image.Resampling.LANCZOS)
        rows = np.flatnonzero(mask.any(axis=1))
        if rows.size == 0:
            continue
        columns = np.flatnonzero(mask.any(axis=0))
        top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(columns[0]), int(columns[-1]) + 1
        new = np.asarray(image, dtype=np.float32)[top:bottom, left:right]
        region = out[y0 + top:y0 + bottom, x0 + left:x0 + right, :3]
        m = mask[top:bottom, left:right, None].astype(np.float32)
        blended = np.clip(m * new + (1 - m) * region.astype(np.float32) + 0.5, 0, 255).astype(np.uint8)
        out[y0 + top:y0 + bottom, x0 + left:x0 + right, :3] = np.where(m > 0, blended, region)
    return out


def _random_mask(rng: np.random.Generator, side: int) -> np.ndarray:
    """A mask that is not an ellipse: a random rectangle of random values with 1s, 0s and values above 1 in it."""
    mask = np.zeros((side, side), np.float32)
    top, left = (int(v) for v in rng.integers(0, side, 2))
    bottom, right = int(rng.integers(top + 1, side + 1)), int(rng.integers(left + 1, side + 1))
    values = rng.uniform(-0.2, 1.2, (bottom - top, right - left)).astype(np.float32)
    values[rng.uniform(size=values.shape) < 0.3] = 1.0
    values[rng.uniform(size=values.shape) < 0.1] = 0.0
    mask[top:bottom, left:right] = values
    return mask


def _same(plate: np.ndarray, faces: list[tuple[np.ndarray, np.ndarray, P.Box]]) -> None:
    new, old = P.composite(plate, faces), reference_composite(plate, faces)
    assert new.dtype == old.dtype and new.shape == old.shape
    assert new.tobytes() == old.tobytes(), [(f.shape, b) for f, _m, b in faces]


@pytest.mark.parametrize(("size", "boxes", "working", "channels"), [
    ((760, 420), [(92, 204, 146, 186), (509, 216, 154, 174)], 64, 3),  # the recipe plate: faces made larger
    ((760, 420), [(92, 204, 146, 186), (509, 216, 154, 174)], 512, 4),  # made smaller; RGBA: alpha untouched
    ((301, 203), [(0, 150, 61, 53)], 48, 3),  # the left and bottom edges of an odd-sized plate
    ((301, 203), [(239, 0, 62, 41)], 40, 3),  # the top and right edges
    ((121, 91), [(11, 9, 99, 71)], 64, 3),  # a square bigger than the plate, shrunk to its shorter side
    ((640, 360), [(200, 100, 81, 97)], None, 3),  # a working size that is the square's own: no resize at all
    ((400, 260), [(120, 80, 90, 100), (170, 90, 90, 100)], 56, 3),  # overlapping faces: the second over the first
])
def test_face_masks_composite_as_the_whole_square_resize_did(size: tuple[int, int], boxes: list[P.Box],
                                                             working: int | None, channels: int) -> None:
    rng = np.random.default_rng(sum(size) + (working or 0))
    plate = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    faces = []
    for box in boxes:
        crop = P.crop_box(box, size)
        side = working or crop[2]
        face = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        faces.append((face, P.face_mask(box, crop, size), crop))
    _same(plate, faces)


def test_random_plates_masks_and_working_sizes_composite_as_before() -> None:
    rng = np.random.default_rng(20261202)
    for _case in range(60):
        width, height = (int(v) for v in rng.integers(20, 420, 2))
        plate = rng.integers(0, 256, (height, width, int(rng.choice([3, 4]))), dtype=np.uint8)
        faces = []
        for _ in range(int(rng.integers(1, 4))):
            side = int(rng.integers(8, min(width, height) + 1))
            x0, y0 = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
            working = int(rng.choice([8, 16, 24, 64, 72, side, 2 * side + 3]))
            face = rng.integers(0, 256, (working, working, 3), dtype=np.uint8)
            if rng.uniform() < 0.5:  # a feathered face mask of a random box in the square
                w, h = int(rng.integers(1, side + 1)), int(rng.integers(1, side + 1))
                box = (x0 + int(rng.integers(0, side - w + 1)), y0 + int(rng.integers(0, side - h + 1)), w, h)
                mask = P.face_mask(box, (x0, y0, side, side), (width, height), float(rng.uniform(0.5, 3.0)),
                                   float(rng.uniform(0.0, 0.5)))
            else:
                mask = _random_mask(rng, side)
            faces.append((face, mask, (x0, y0, side, side)))
        _same(plate, faces)


def test_an_8k_face_composites_as_before_and_resizes_only_its_window(monkeypatch: pytest.MonkeyPatch) -> None:
    size = (7680, 4320)
    face_box = (937, 2106, 1466, 1913)  # the recipe plate's left face on its 7680x4320 upscale: at the bottom edge
    crop = P.crop_box(face_box, size)
    rng = np.random.default_rng(8)
    plate = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    faces = [(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8), P.face_mask(face_box, crop, size), crop)]
    old = reference_composite(plate, faces)
    made: list[int] = []  # pixels of every resize the new composite asks Pillow for
    resize = Image.Image.resize

    def counted(self: Image.Image, new_size: tuple[int, int], *args: object, **kwargs: object) -> Image.Image:
        made.append(new_size[0] * new_size[1])
        return resize(self, new_size, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Image.Image, "resize", counted)
    assert P.composite(plate, faces).tobytes() == old.tobytes()
    side = crop[2]
    assert sum(made) < 0.75 * side * side, (made, side)  # the whole square is 14.6 megapixels; the window's columns


def test_resized_window_is_the_window_of_the_whole_resize() -> None:
    rng = np.random.default_rng(3)
    for working, side in [(64, 200), (512, 137), (128, 3826), (33, 33), (100, 99)]:
        face = rng.integers(0, 256, (working, working, 3), dtype=np.uint8)
        whole = np.asarray(Image.fromarray(face).resize((side, side), Image.Resampling.LANCZOS))
        for _ in range(4):
            top, left = (int(v) for v in rng.integers(0, side, 2))
            bottom, right = int(rng.integers(top + 1, side + 1)), int(rng.integers(left + 1, side + 1))
            part = P.resized_window(face, side, (top, bottom, left, right))
            assert part.dtype == np.uint8
            assert part.tobytes() == np.ascontiguousarray(whole[top:bottom, left:right]).tobytes()
