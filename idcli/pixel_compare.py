"""How far a re-rendered PNG is from the committed one: the largest channel difference and the pixels that differ,
every channel compared (``idcli reproduce``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def pixel_difference(committed: bytes, reproduced: bytes) -> tuple[int, int, str | None]:
    """(largest absolute channel difference, pixels that differ, the modes in words when they differ) between
    two PNGs of one size; the mode words make them differ whatever the numbers.

    Every channel the images have is compared: an RGBA plate take whose alpha alone changed is a difference
    (compared as RGB, transparency composited on white, it read as ``pixels-identical``). Two images of other
    modes are compared as RGBA (so the largest difference says how far apart their colours are).
    """
    a_mode, a = _mode_and_pixels(Path("committed.png"), committed)
    b_mode, b = _mode_and_pixels(Path("reproduced.png"), reproduced)
    mode_words = None
    steps = 1  # the image's steps in one of the 255 the difference is said in
    if a_mode != b_mode:
        mode_words = f"the committed image is {_mode_words(a_mode)}, the re-render {_mode_words(b_mode)}"
        a, b = _as_rgba(_as_8_bit(a)), _as_rgba(_as_8_bit(b))
    elif a.dtype != np.uint8:  # 16-bit grey (I;16, or I as some Pillows open it): compared in its own steps
        steps = 257
    if a.shape != b.shape:
        return 255, int(max(a.shape[0] * a.shape[1], b.shape[0] * b.shape[1])), mode_words
    # One signed copy, subtracted and made absolute in place: a 50-megapixel plate take is one more copy, not four
    diff: np.ndarray = a.astype(np.int16 if a.dtype == np.uint8 else np.int64)
    np.subtract(diff, b, out=diff)
    np.abs(diff, out=diff)
    differing = diff.max(axis=2) > 0
    largest = -(-int(diff.max()) // steps)  # rounded up: a 1/65535 step is still a difference, never 0
    if mode_words is not None:  # another mode is another image, even where its colours agree: every pixel
        return largest, differing.size, mode_words
    return largest, int(differing.sum()), None


def _mode_and_pixels(path: Path, data: bytes) -> tuple[str, np.ndarray]:
    """A take's mode and its pixels, every channel kept (height x width x channels), through the same hardened
    decode as every take read for review; a palette image as the colours (and transparency) it shows."""
    from .identity.images import decode_upright

    modes: list[str] = []

    def every_channel(image: Any) -> np.ndarray:
        if image.mode == "P":
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        elif image.mode == "PA":
            image = image.convert("RGBA")
        modes.append(image.mode)
        if image.mode == "1":  # bilevel decodes as booleans: white as 255, as in every other 8-bit mode
            image = image.convert("L")
        pixels = np.asarray(image)
        return pixels[:, :, None] if pixels.ndim == 2 else pixels

    pixels = decode_upright(path, data, every_channel)
    return modes[0], pixels


def _as_8_bit(pixels: np.ndarray) -> np.ndarray:
    """16-bit grey (0..65535) as 0..255, rounded, so two modes compare in one scale; 8-bit pixels as they are."""
    if pixels.dtype == np.uint8:
        return pixels
    return ((np.clip(pixels.astype(np.int64), 0, 65535) + 128) // 257).astype(np.uint8)


def _as_rgba(pixels: np.ndarray) -> np.ndarray:
    """Pixels of one to four channels as RGBA, for comparing two images of other modes."""
    pixels = pixels.astype(np.int32)
    colour = pixels[:, :, :1].repeat(3, axis=2) if pixels.shape[2] in (1, 2) else pixels[:, :, :3]
    alpha = pixels[:, :, -1:] if pixels.shape[2] in (2, 4) else np.full_like(pixels[:, :, :1], 255)
    return np.concatenate([colour, alpha], axis=2)


def _mode_words(mode: str) -> str:
    return f"{mode} (with transparency)" if mode in ("RGBA", "LA") else mode
