"""idcli reproduce's pixel comparison reads every channel a take has (an RGBA plate take's alpha too), and
a take decoded in another mode than the committed one is a difference said in words."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from idcli.reproduce import pixel_difference


def _png(pixels: np.ndarray, mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_take_differing_only_in_alpha_is_a_difference() -> None:
    # White, as a plate take's uncovered border often is: composited on white as RGB, any alpha reads the same.
    committed = np.full((8, 6, 4), 255, dtype=np.uint8)
    reproduced = committed.copy()
    reproduced[2, 3, 3] = 128  # the alpha of one pixel: its colour unchanged
    largest, differing, mode_words = pixel_difference(_png(committed, "RGBA"), _png(reproduced, "RGBA"))
    assert (largest, differing, mode_words) == (127, 1, None)


def test_identical_rgba_pixels_are_no_difference() -> None:
    pixels = np.random.default_rng(3).integers(0, 256, (8, 6, 4), dtype=np.uint8)
    assert pixel_difference(_png(pixels, "RGBA"), _png(pixels.copy(), "RGBA")) == (0, 0, None)


def test_a_take_in_another_mode_is_a_difference_said_in_words() -> None:
    rgba = np.full((8, 6, 4), 255, dtype=np.uint8)  # opaque white: the same colours as the RGB image below
    rgb = np.full((8, 6, 3), 255, dtype=np.uint8)
    largest, differing, mode_words = pixel_difference(_png(rgba, "RGBA"), _png(rgb, "RGB"))
    assert (largest, differing) == (0, 8 * 6)  # the same colours, every pixel stored otherwise
    assert mode_words == "the committed image is RGBA (with transparency), the re-render RGB"


def _png16(grey: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(grey).save(buffer, "PNG")  # uint16: mode I;16 (Pillow picks it; naming it is refused)
    return buffer.getvalue()


def test_a_16_bit_take_is_measured_out_of_255_as_every_other() -> None:
    """A 16-bit greyscale PNG (I;16, a committed take saved again by an editor) compared as its raw 0..65535 values:
    against the RGB re-render of the same grey, reproduce said `largest pixel difference 39844/255`, and --json's
    max_pixel_difference (0..255) was out of its range."""
    grey16 = np.full((8, 6), 40092, dtype=np.uint16)  # 40092 / 257 = 156: the grey below, as 16 bits
    rgb = np.full((8, 6, 3), 156, dtype=np.uint8)
    largest, differing, mode_words = pixel_difference(_png16(grey16), _png(rgb, "RGB"))
    assert (largest, differing) == (0, 8 * 6)
    assert mode_words == "the committed image is I;16, the re-render RGB"
    brighter = grey16.copy()
    brighter[1, 2] = 65535
    largest, differing, _ = pixel_difference(_png16(grey16), _png16(brighter))
    assert (largest, differing) == (99, 1)  # (65535 - 40092) / 257 = 99.0
    brighter[1, 2] = 40093  # a 1/65535 step is less than 1/255 and still a difference, never `pixels-identical`
    assert pixel_difference(_png16(grey16), _png16(brighter)) == (1, 1, None)


def test_a_1_bit_take_is_measured_out_of_255_as_every_other() -> None:
    """A bilevel PNG (mode 1) decodes as booleans: its white was 1, so against the greyscale white re-render it read as
    254 apart, and a flipped pixel of two bilevel takes as 1/255."""
    white = Image.new("1", (6, 8), 1)
    buffer = io.BytesIO()
    white.save(buffer, "PNG")
    bilevel = buffer.getvalue()
    largest, differing, mode_words = pixel_difference(bilevel, _png(np.full((8, 6), 255, dtype=np.uint8), "L"))
    assert (largest, differing, mode_words) == (0, 8 * 6, "the committed image is 1, the re-render L")
    white.putpixel((2, 3), 0)
    buffer = io.BytesIO()
    white.save(buffer, "PNG")
    assert pixel_difference(bilevel, buffer.getvalue()) == (255, 1, None)
