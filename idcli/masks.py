"""``--save-masks``: a job's fusion mask over time as one PNG strip, for review.

Each frame is the decoded preview of the clean image the sampler predicted at that evaluation, with
each character's fusion mask laid over it in that character's colour (red, then blue, green, ... in
the order the prompt names them; brighter = more of that character's identity line), and a caption:
the evaluation index, and 'fused' while the fusion window is open (before it, the mask is still being
accumulated but not yet applied). With several characters a legend below the strip names each colour,
in as many rows as the strip's width needs.

A plate job's ``--save-masks`` file (same name) is one frame at the plate's size instead: the rendered
image with the union of its feathered face masks laid over it (the engine's ``plate_mask``; brighter =
more of the re-generated face, nothing outside = the plate's own pixels), each face box outlined and
named in its character's colour, in sRGB (a plate's colour profile converted: idcli/display_colour.py).
"""

from __future__ import annotations

import io
from typing import Any

FRAME_SIDE = 256  # longest side of one frame, in pixels
GAP = 4
OVERLAY = (255, 40, 40)  # the first character's colour (the only one for one-character images)
# One colour per character, in line order; the limit of characters per shot is below their number.
CHARACTER_COLOURS = (OVERLAY, (40, 110, 255), (40, 220, 70), (255, 200, 30), (220, 60, 255), (30, 230, 230))
LEGEND_HEIGHT = 16


def character_colour(index: int) -> tuple[int, int, int]:
    return CHARACTER_COLOURS[index % len(CHARACTER_COLOURS)]


def _frame(preview: Any, masks: list[Any], caption: str) -> Any:
    import numpy as np
    from PIL import Image, ImageDraw

    base = Image.fromarray((np.clip(preview, 0, 1) * 255).round().astype("uint8"))
    scale = FRAME_SIDE / max(base.size)
    size = (max(1, round(base.width * scale)), max(1, round(base.height * scale)))
    base = base.resize(size, Image.Resampling.BILINEAR)
    blended = np.asarray(base, dtype=np.float32)
    # The masks are exclusive (they sum to at most 1), so their tints add up to at most 60% opacity.
    for index, mask in enumerate(masks):
        weight = Image.fromarray((np.clip(mask, 0, 1) * 255).round().astype("uint8")).resize(
            size, Image.Resampling.BILINEAR)
        alpha = np.asarray(weight, dtype=np.float32)[..., None] / 255.0 * 0.6
        blended = blended * (1 - alpha) + np.array(character_colour(index), np.float32) * alpha
    frame = Image.fromarray(blended.round().astype("uint8"))
    draw = ImageDraw.Draw(frame)
    draw.rectangle((0, 0, 8 + 7 * len(caption), 14), fill=(0, 0, 0))
    draw.text((4, 2), caption, fill=(255, 255, 255))
    return frame


def _entry_width(name: str) -> int:
    """Pixels one legend entry takes: its swatch, a gap, its name (about 7 pixels a letter) and the space after."""
    return 24 + 7 * len(name)


def legend_entries(names: list[str], width: int) -> list[tuple[int, int, str]]:
    """(x, row, name) of each legend entry, in character order, rows wrapped at ``width``: six characters' names
    did not fit in one row under a one- or two-frame strip (steps 1-2, or portrait frames), and the last colours
    fell off its edge unnamed."""
    entries: list[tuple[int, int, str]] = []
    x, row = 4, 0
    for name in names:
        if x > 4 and x + _entry_width(name) > width:
            x, row = 4, row + 1
        entries.append((x, row, name))
        x += _entry_width(name)
    return entries


def mask_strip_png(frames: list[dict[str, Any]], evaluations: int) -> bytes:
    """The PNG bytes of a horizontal strip, one frame per entry of ``frames`` (from the engine's facts)."""
    from PIL import Image, ImageDraw

    tiles = [_frame(f["preview"], f.get("masks") or [f["mask"]],
                    f"{f['step'] + 1}/{evaluations}" + (" fused" if f["fused"] else "")) for f in frames]
    names = list(frames[0].get("names") or []) if frames else []
    width = sum(t.width for t in tiles) + GAP * (len(tiles) - 1)
    entries = legend_entries(names, width) if len(names) > 1 else []
    # A name longer than the frames are wide widens the strip rather than being cut at its edge.
    width = max([width, *(x + _entry_width(name) for x, _row, name in entries)])
    rows = 1 + max((row for _x, row, _name in entries), default=-1)
    height = max(t.height for t in tiles) + LEGEND_HEIGHT * rows
    strip = Image.new("RGB", (width, height), (20, 20, 20))
    x = 0
    for tile in tiles:
        strip.paste(tile, (x, 0))
        x += tile.width + GAP
    if entries:
        draw = ImageDraw.Draw(strip)
        top = height - LEGEND_HEIGHT * rows + 2
        for index, (x, row, name) in enumerate(entries):
            y = top + LEGEND_HEIGHT * row
            draw.rectangle((x, y, x + 10, y + 10), fill=character_colour(index))
            draw.text((x + 14, y), name, fill=(255, 255, 255))
    buffer = io.BytesIO()
    strip.save(buffer, format="PNG")
    return buffer.getvalue()


def plate_mask_png(pixels: Any, mask: Any, faces: list[dict[str, Any]], profile: bytes | None = None) -> bytes:
    """The PNG bytes of a plate job's mask file: ``pixels`` (the rendered image, uint8 RGB or RGBA) with
    ``mask`` (float32, plate-sized union of the face masks) tinted over it and each face of ``faces``
    (``{character, box}``, in line order) outlined in its character's colour. ``profile``: the colour profile the
    image carries (its plate's); the file carries none, so the image's values are converted to sRGB first
    (idcli/display_colour.py) and it shows the picture as the image does."""
    import numpy as np
    from PIL import Image, ImageDraw

    from .display_colour import to_srgb

    base = np.asarray(to_srgb(np.asarray(pixels, dtype=np.uint8)[:, :, :3], profile), dtype=np.float32)
    alpha = np.clip(np.asarray(mask, dtype=np.float32), 0, 1)[..., None] * 0.6
    blended = base * (1 - alpha) + np.array(OVERLAY, np.float32) * alpha
    frame = Image.fromarray(blended.round().astype("uint8"))
    draw = ImageDraw.Draw(frame)
    for index, face in enumerate(faces):
        x, y, w, h = face["box"]
        colour = character_colour(index)
        draw.rectangle((x, y, x + w - 1, y + h - 1), outline=colour, width=2)
        name = str(face.get("character", ""))
        draw.rectangle((x, max(0, y - 14), x + 8 + 7 * len(name), max(0, y - 14) + 13), fill=(0, 0, 0))
        draw.text((x + 4, max(0, y - 14) + 1), name, fill=colour)
    buffer = io.BytesIO()
    frame.save(buffer, format="PNG")
    return buffer.getvalue()
