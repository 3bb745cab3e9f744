"""The plate's face mask and composite worked over the mask's window only (docs/performance.md, "Plate-side steps
of an 8K plate"): every mask value and every composited byte is what the functions gave when they worked the whole
crop square, which are kept here as they were (before 2026-12-02) to compare with."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from idcli.engine import plates as P


def old_face_mask(face_box: P.Box, box: P.Box, plate_size: tuple[int, int] | None = None,
                   growth: float = P.MASK_GROWTH, feather: float = P.FEATHER) -> np.ndarray:
    """engine/plates.face_mask as it was: float64 grids of the whole crop square."""
    x0, y0, side, _ = box
    fx, fy, fw, fh = face_box
    cx, cy = fx + fw / 2 - x0, fy + fh / 2 - y0
    ramp = max(1.0, feather * side)
    band = max(1, int(np.ceil(ramp / 2)))
    rx = max(1.0, growth * fw / 2)
    ry = max(1.0, growth * fh / 2)
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float64) + 0.5
    radius = np.sqrt(((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2)
    scale = np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2) / np.maximum(radius, 1e-9)
    outside = (radius - 1.0) * scale
    mask = np.clip(1.0 - outside / ramp, 0.0, 1.0)
    width, height = plate_size or (x0 + side + 1, y0 + side + 1)
    if y0 > 0 or plate_size is None:
        mask[:band, :] = 0.0
    if y0 + side < height:
        mask[-band:, :] = 0.0
    if x0 > 0 or plate_size is None:
        mask[:, :band] = 0.0
    if x0 + side < width:
        mask[:, -band:] = 0.0
    return mask.astype(np.float32)


def old_composite(plate: np.ndarray, faces: list[tuple[np.ndarray, np.ndarray, P.Box]]) -> np.ndarray:
    """engine/plates.composite as it was: the whole crop square blended, then the plate kept where the mask is 0."""
    out = plate.copy()
    for face, mask, box in faces:
        x0, y0, side, _ = box
        image = Image.fromarray(np.ascontiguousarray(face))
        if face.shape[0] != side:
            image = image.resize((side, side), Image.Resampling.LANCZOS)
        new = np.asarray(image, dtype=np.float32)
        region = out[y0:y0 + side, x0:x0 + side, :3]
        m = mask[:, :, None].astype(np.float32)
        blended = np.clip(m * new + (1 - m) * region.astype(np.float32) + 0.5, 0, 255).astype(np.uint8)
        out[y0:y0 + side, x0:x0 + side, :3] = np.where(m > 0, blended, region)
    return out


def _faces(plate: np.ndarray, boxes: list[P.Box], masks: list[np.ndarray], working: int, seed: int):
    rng = np.random.default_rng(seed)
    size = (plate.shape[1], plate.shape[0])
    return [(rng.integers(0, 256, (working, working, 3), dtype=np.uint8), mask, P.crop_box(box, size))
            for box, mask in zip(boxes, masks, strict=True)]


def _same_render(size: tuple[int, int], boxes: list[P.Box], channels: int = 3, working: int = 64,
                 growth: float = P.MASK_GROWTH, feather: float = P.FEATHER, seed: int = 0) -> np.ndarray:
    """Masks and composite, new and old, byte for byte; returns the union of the masks."""
    plate = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    new_masks, old_masks = [], []
    for box in boxes:
        crop = P.crop_box(box, size)
        new_masks.append(P.face_mask(box, crop, size, growth, feather))
        old_masks.append(old_face_mask(box, crop, size, growth, feather))
        assert new_masks[-1].dtype == np.float32 and new_masks[-1].shape == (crop[2], crop[2])
        assert new_masks[-1].tobytes() == old_masks[-1].tobytes(), (size, box)
    new = P.composite(plate, _faces(plate, boxes, new_masks, working, seed + 1))
    old = old_composite(plate, _faces(plate, boxes, old_masks, working, seed + 1))
    assert new.dtype == old.dtype and new.shape == old.shape and new.tobytes() == old.tobytes(), (size, boxes)
    return P.plate_mask(size, [(m, P.crop_box(b, size)) for m, b in zip(new_masks, boxes, strict=True)])


@pytest.mark.parametrize(("size", "boxes", "channels"), [
    ((760, 420), [(92, 204, 146, 186), (509, 216, 154, 174)], 3),  # the recipe plate's two faces
    ((760, 420), [(92, 204, 146, 186)], 4),  # RGBA: alpha untouched
    ((300, 200), [(0, 150, 60, 50)], 3),  # at the left and bottom edges: the crop slides, no band there
    ((300, 200), [(240, 0, 60, 40)], 3),  # at the top and right edges
    ((120, 90), [(10, 10, 100, 70)], 3),  # the square is bigger than the plate: shrunk to its shorter side
    ((101, 77), [(30, 20, 30, 30)], 3),  # sides not multiples of 8
    ((200, 150), [(60, 40, 1, 1)], 3),  # a one-pixel face: the ellipse's half-axes clamp at 1
    ((400, 260), [(120, 80, 90, 100), (170, 90, 90, 100)], 3),  # two faces whose boxes overlap
])
def test_masks_and_composite_are_byte_identical_to_the_whole_square_arithmetic(
        size: tuple[int, int], boxes: list[P.Box], channels: int) -> None:
    union = _same_render(size, boxes, channels)
    assert union.max() == 1.0  # every case re-generates a face


def test_feather_crossing_the_crop_edge_is_byte_identical() -> None:
    # A wide ramp and a large ellipse: the mask reaches past the crop square on every side (the window is the
    # whole square, clipped), at the plate's edge and inside it.
    for box in [(150, 100, 60, 60), (0, 0, 60, 60), (340, 200, 60, 60)]:
        _same_render((400, 260), [box], growth=3.0, feather=0.4)


def test_random_boxes_sizes_and_feathers_are_byte_identical() -> None:
    rng = np.random.default_rng(12)
    for case in range(40):
        width, height = (int(v) for v in rng.integers(24, 260, 2))
        boxes = []
        for _ in range(int(rng.integers(1, 4))):
            w, h = int(rng.integers(1, max(2, width // 2))), int(rng.integers(1, max(2, height // 2)))
            boxes.append((int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)), w, h))
        _same_render((width, height), boxes, working=int(rng.choice([16, 32, 64])),
                     growth=float(rng.uniform(0.5, 3.0)), feather=float(rng.uniform(0.0, 0.5)), seed=case)


def test_the_mask_is_zero_outside_its_window_and_the_window_is_a_part_of_an_8k_crop() -> None:
    from idcli.engine.plates import mask_window  # the rectangle face_mask computes; 0 outside it

    face = (937, 2106, 1466, 1913)  # the recipe plate's left face on its 7680x4320 upscale
    crop = P.crop_box(face, (7680, 4320))
    side = crop[2]
    ramp = max(1.0, P.FEATHER * side)
    cx, cy = face[0] + face[2] / 2 - crop[0], face[1] + face[3] / 2 - crop[1]
    left, top, right, bottom = mask_window(cx, cy, P.MASK_GROWTH * face[2] / 2, P.MASK_GROWTH * face[3] / 2,
                                            ramp, side)
    assert (right - left) * (bottom - top) < 0.6 * side * side
    mask = P.face_mask(face, crop, (7680, 4320))
    outside = np.ones_like(mask, dtype=bool)
    outside[top:bottom, left:right] = False
    assert not mask[outside].any()
    assert mask[top:bottom, left:right].max() == 1.0
    # A mask of zeros (a face whose mask was cleared) leaves the plate as it is.
    plate = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    zeros = np.zeros((32, 32), np.float32)
    assert P.composite(plate, [(plate[:32, :32], zeros, (0, 0, 32, 32))]).tobytes() == plate.tobytes()
