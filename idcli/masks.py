"""``--save-masks``: a job's fusion mask over time as one PNG strip, for review.

Each frame is the decoded preview of the clean image the sampler predicted at that evaluation, with
the fusion mask laid over it in red (brighter = more identity line), and a caption: the evaluation
index, and 'fused' while the fusion window is open (before it, the mask is still being accumulated
but not yet applied).
"""

from __future__ import annotations

import io
from typing import Any

FRAME_SIDE = 256  # longest side of one frame, in pixels
GAP = 4
OVERLAY = (255, 40, 40)


def _frame(preview: Any, mask: Any, caption: str) -> Any:
    import numpy as np
    from PIL import Image, ImageDraw

    base = Image.fromarray((np.clip(preview, 0, 1) * 255).round().astype("uint8"))
    scale = FRAME_SIDE / max(base.size)
    size = (max(1, round(base.width * scale)), max(1, round(base.height * scale)))
    base = base.resize(size, Image.Resampling.BILINEAR)
    weight = Image.fromarray((np.clip(mask, 0, 1) * 255).round().astype("uint8")).resize(size,
                                                                                          Image.Resampling.BILINEAR)
    alpha = np.asarray(weight, dtype=np.float32)[..., None] / 255.0 * 0.6
    blended = np.asarray(base, dtype=np.float32) * (1 - alpha) + np.array(OVERLAY, np.float32) * alpha
    frame = Image.fromarray(blended.round().astype("uint8"))
    draw = ImageDraw.Draw(frame)
    draw.rectangle((0, 0, 8 + 7 * len(caption), 14), fill=(0, 0, 0))
    draw.text((4, 2), caption, fill=(255, 255, 255))
    return frame


def mask_strip_png(frames: list[dict[str, Any]], evaluations: int) -> bytes:
    """The PNG bytes of a horizontal strip, one frame per entry of ``frames`` (from the engine's facts)."""
    from PIL import Image

    tiles = [_frame(f["preview"], f["mask"], f"{f['step'] + 1}/{evaluations}" + (" fused" if f["fused"] else ""))
             for f in frames]
    width = sum(t.width for t in tiles) + GAP * (len(tiles) - 1)
    height = max(t.height for t in tiles)
    strip = Image.new("RGB", (width, height), (20, 20, 20))
    x = 0
    for tile in tiles:
        strip.paste(tile, (x, 0))
        x += tile.width + GAP
    buffer = io.BytesIO()
    strip.save(buffer, format="PNG")
    return buffer.getvalue()
