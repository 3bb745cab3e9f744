"""Plates: the geometry and pixel arithmetic of putting a re-generated face into an existing frame.

No file I/O and no model here: the plate arrives as pixels (uint8, RGB or RGBA), and every function
is a pure function of its arguments, so the same plate, boxes and strength give the same crops,
masks and composite on every machine. The method (docs/plates.md, DiffSFSR's background
conditioning as face swap + reenactment):

1. ``crop_box``: the face box grown by ``CROP_MARGIN`` of its longer side on every side, made square,
   shifted (then, only when the plate is smaller than the square, shrunk) to lie inside the plate.
2. ``crop_pixels``: that square cut out and resized to the model's working size, so a 60-px face in a
   4K plate is worked at the model's full resolution.
3. ``face_mask``: where the face may change, in crop pixels: an ellipse around the face box, feathered
   over ``FEATHER`` of the crop side, exactly 0 from the crop's border inwards (a crop never shows an
   edge, unless that edge is the plate's) and beyond.
4. ``blend_known``: at every denoising step the latents outside the (latent-grid) mask are put back on
   the plate's own latents noised to the current time: ``z_t ← m ⊙ z_t + (1 − m) ⊙ add_noise(z_0, ε, t)``.
5. ``composite``: the decoded crop resized back and blended into the plate through the feathered mask;
   every pixel where the mask is 0 is copied from the plate array itself (exact, 8-bit; alpha untouched).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

CROP_MARGIN = 0.5  # context on every side of the face box, as a fraction of its longer side
MASK_GROWTH = 1.25  # the ellipse's half-axes, in face-box half-sides (covers brow, chin, cheeks)
FEATHER = 0.08  # width of the mask's ramp from 1 to 0, as a fraction of the crop side
DEFAULT_STRENGTH = 0.6  # fraction of the schedule re-run on the face (1: from pure noise)

Box = tuple[int, int, int, int]  # x, y, width, height in plate pixels


@dataclass(frozen=True)
class FaceCrop:
    """One face of a plate: its box, the square worked at the model's size, and the pixel mask."""

    face_box: Box
    crop_box: Box  # square: width == height
    working_size: int

    def record(self) -> dict[str, list[int]]:
        return {"box": list(self.face_box), "crop_box": list(self.crop_box)}


def crop_box(face_box: Box, plate_size: tuple[int, int], margin: float = CROP_MARGIN) -> Box:
    """The square around ``face_box`` (grown by ``margin`` of its longer side each way), inside the plate.

    ``plate_size`` is (width, height). The square keeps its side and slides inwards at an edge, so a
    face touching the border is still worked with context on the inner side; only a plate smaller than
    the square shrinks it to the plate's shorter side.
    """
    x, y, w, h = face_box
    width, height = plate_size
    side = round(max(w, h) * (1 + 2 * margin))
    side = max(8, min(side, width, height))
    cx, cy = x + w / 2, y + h / 2
    x0 = round(cx - side / 2)
    y0 = round(cy - side / 2)
    x0 = min(max(x0, 0), width - side)
    y0 = min(max(y0, 0), height - side)
    return x0, y0, side, side


def face_mask(face_box: Box, box: Box, plate_size: tuple[int, int] | None = None, growth: float = MASK_GROWTH,
              feather: float = FEATHER) -> np.ndarray:
    """The feathered face mask in crop pixels (float32, side x side, values 0..1).

    1 inside an ellipse of half-axes ``growth`` times the face box's half-sides, ramping linearly to 0
    over ``feather`` of the crop side; forced to exactly 0 on a band at the crop's border so the
    composite never shows the square's edge -- except on sides that lie on the plate's own edge
    (``plate_size`` given): no seam can show there, and a face touching the edge is re-generated to it.
    """
    x0, y0, side, _ = box
    fx, fy, fw, fh = face_box
    cx, cy = fx + fw / 2 - x0, fy + fh / 2 - y0
    ramp = max(1.0, feather * side)
    band = max(1, int(np.ceil(ramp / 2)))
    rx = max(1.0, growth * fw / 2)
    ry = max(1.0, growth * fh / 2)
    mask = np.zeros((side, side), dtype=np.float32)
    left, top, right, bottom = mask_window(cx, cy, rx, ry, ramp, side)
    if left < right and top < bottom:
        # Pixel centres of the window only: each pixel's value is the same float64 arithmetic as over the whole
        # crop (element by element), so the mask is bit for bit what it was when the whole square was computed.
        xs = np.arange(left, right, dtype=np.float64)[None, :] + 0.5
        ys = np.arange(top, bottom, dtype=np.float64)[:, None] + 0.5
        # Distance outside the ellipse, in pixels along the ray (exact on the axes, close elsewhere).
        radius = np.sqrt(((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2)
        scale = np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2) / np.maximum(radius, 1e-9)  # ellipse radius on the ray
        outside = (radius - 1.0) * scale
        mask[top:bottom, left:right] = np.clip(1.0 - outside / ramp, 0.0, 1.0)
    width, height = plate_size or (x0 + side + 1, y0 + side + 1)
    if y0 > 0 or plate_size is None:
        mask[:band, :] = 0.0
    if y0 + side < height:
        mask[-band:, :] = 0.0
    if x0 > 0 or plate_size is None:
        mask[:, :band] = 0.0
    if x0 + side < width:
        mask[:, -band:] = 0.0
    return mask


def mask_window(cx: float, cy: float, rx: float, ry: float, ramp: float, side: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom), in crop pixels, of the window outside which ``face_mask`` is exactly 0.

    ``outside`` is the distance from the ellipse along the ray, and a point of the ellipse lies within ``rx`` of the
    centre across and ``ry`` down, so a pixel more than ``rx + ramp`` across (``ry + ramp`` down) from the centre
    is more than ``ramp`` outside: its mask is 0. Two pixels more on every side keep float rounding (about 1e-12
    of a pixel) far from the edge. The window of an 8K plate's face is about half its crop square."""
    left = max(0, int(np.floor(cx - rx - ramp)) - 2)
    right = min(side, int(np.ceil(cx + rx + ramp)) + 2)
    top = max(0, int(np.floor(cy - ry - ramp)) - 2)
    bottom = min(side, int(np.ceil(cy + ry + ramp)) + 2)
    return left, top, right, bottom


def resize_mask(mask: np.ndarray, side: int) -> np.ndarray:
    """A mask resized to ``side`` x ``side`` (bilinear), with exact 0 kept where the source is 0 around."""
    import torch
    import torch.nn.functional as F

    tensor = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
    out = F.interpolate(tensor, size=(side, side), mode="bilinear", align_corners=False)[0, 0].numpy()
    out[out < 1e-6] = 0.0
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def rgb_of(plate: np.ndarray) -> np.ndarray:
    """The plate's colour as the model sees it: RGB; an RGBA plate's transparent pixels over white."""
    if plate.shape[2] == 3:
        return plate
    alpha = plate[:, :, 3:4].astype(np.float32) / 255.0
    return np.clip(plate[:, :, :3] * alpha + 255.0 * (1 - alpha) + 0.5, 0, 255).astype(np.uint8)


def crop_pixels(plate: np.ndarray, box: Box, working_size: int) -> np.ndarray:
    """The crop square of the plate (RGB uint8) resized to ``working_size`` (Lanczos)."""
    from PIL import Image

    x0, y0, side, _ = box
    square = rgb_of(plate)[y0:y0 + side, x0:x0 + side]
    image = Image.fromarray(np.ascontiguousarray(square))
    if side != working_size:
        image = image.resize((working_size, working_size), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8).copy()


def latent_mask(mask: np.ndarray, latent_side: int):  # -> torch.Tensor (1, 1, s, s)
    """The pixel mask on the latent grid: a latent cell is regenerated when any pixel it covers may change.

    Max-pooling (not averaging) keeps every latent under the feathered ramp free, so the composite's
    ramp blends two finished images rather than a half-blended latent.
    """
    import torch
    import torch.nn.functional as F

    tensor = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
    side = tensor.shape[-1]
    if side % latent_side == 0:
        pooled = F.max_pool2d(tensor, kernel_size=side // latent_side)
    else:
        pooled = F.adaptive_max_pool2d(tensor, latent_side)
    return (pooled > 0).to(torch.float32)


def blend_known(latents, mask, plate_latents, noise, timestep, add_noise: Callable | None):  # torch tensors
    """Step 4 of the method: keep the known region on the plate's latents noised to ``timestep``.

    ``add_noise`` is the scheduler's ``add_noise(original, noise, timesteps)``; ``mask`` is 1 where the
    face is re-generated. ``timestep`` None means the end of the schedule (no noise: the plate itself).
    """
    if timestep is None:
        known = plate_latents
    elif add_noise is None:
        raise ValueError("blend_known: a timestep needs the scheduler's add_noise")
    else:
        import torch

        t = torch.as_tensor(timestep).reshape(1).to(plate_latents.device)
        known = add_noise(plate_latents, noise, t)
    return mask * latents + (1 - mask) * known


def start_index(steps: int, strength: float) -> int:
    """The first step run on a plate face, as diffusers' img2img counts it: the last ``strength`` of
    the schedule (at least one step whenever strength > 0)."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"plate strength {strength} is outside 0..1")
    run = min(steps, round(steps * strength))
    if strength > 0 and run == 0:
        run = 1
    return steps - run


def composite(plate: np.ndarray, faces: list[tuple[np.ndarray, np.ndarray, Box]]) -> np.ndarray:
    """The plate with each re-generated face blended in; ``faces``: (face RGB uint8 at working size, mask
    in crop pixels, crop box). Every pixel whose mask is 0 is the plate's own, bit for bit; an RGBA
    plate keeps its alpha everywhere."""
    out = plate.copy()
    for face, mask, box in faces:
        x0, y0, side, _ = box
        window = _nonzero_window(mask)
        if window is None:
            continue  # a mask of zeros changes nothing
        top, bottom, left, right = window
        # Only the mask's nonzero rectangle is resized and blended: everywhere else the plate's own pixels stay, as
        # the full square's arithmetic gave them back; inside it each byte is what the whole square's gave.
        new = resized_window(face, side, window).astype(np.float32)
        region = out[y0 + top:y0 + bottom, x0 + left:x0 + right, :3]
        m = mask[top:bottom, left:right, None].astype(np.float32)
        blended = np.clip(m * new + (1 - m) * region.astype(np.float32) + 0.5, 0, 255).astype(np.uint8)
        # Where the mask is 0 the arithmetic would already give the plate back; take it literally anyway.
        out[y0 + top:y0 + bottom, x0 + left:x0 + right, :3] = np.where(m > 0, blended, region)
    return out


def resized_window(face: np.ndarray, side: int, window: tuple[int, int, int, int]) -> np.ndarray:
    """Rows ``top:bottom`` and columns ``left:right`` (``window``) of ``face`` resized to ``side`` x ``side``
    (Lanczos), uint8: the same bytes as resizing the whole face and cutting the window out, for less work.

    Pillow resizes in two passes, each rounded to 8 bits: across (every row of the face to ``side`` columns), then
    down (every column to ``side`` rows). Each output column of the second pass reads only its own column of the
    first, so running the passes as two resizes, the second on the window's columns alone, gives the same bytes
    (the same coefficient tables: each pass's sizes are the whole resize's). A fractional ``box`` would not: it
    changes the sample positions' floating-point arithmetic. tests/test_plate_composite_window.py checks it
    against the whole resize, which a Pillow that changed its passes would fail."""
    from PIL import Image

    top, bottom, left, right = window
    if face.shape[:2] == (side, side):
        return face[top:bottom, left:right]
    height = face.shape[0]
    lanczos = Image.Resampling.LANCZOS
    across = Image.fromarray(np.ascontiguousarray(face)).resize((side, height), lanczos)
    down = across.crop((left, 0, right, height)).resize((right - left, side), lanczos)
    return np.asarray(down.crop((0, top, right - left, bottom)))


def _nonzero_window(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the smallest rectangle holding every nonzero value of ``mask``; None if none."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    columns = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(columns[0]), int(columns[-1]) + 1


def plate_mask(plate_size: tuple[int, int], masks: list[tuple[np.ndarray, Box]]) -> np.ndarray:
    """The union (max) of the face masks over the whole plate, float32 (height, width): --save-masks and tests."""
    width, height = plate_size
    union = np.zeros((height, width), dtype=np.float32)
    for mask, (x0, y0, side, _) in masks:
        view = union[y0:y0 + side, x0:x0 + side]
        np.maximum(view, mask, out=view)
    return union
