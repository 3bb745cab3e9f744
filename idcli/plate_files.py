"""Reading plates (existing frames a shot puts faces into) through the selfies' hardened reader.

A plate is refused exactly as a bad selfie is (missing, a folder, a FIFO or device, empty, not an
image, truncated, a decompression bomb, over MAX_IMAGE_BYTES) and also past ``MAX_PLATE_SIDE`` pixels
a side, checked before decoding. Its pixels are kept as the file holds them, upright per EXIF:
RGB, or RGBA when the file has transparency, so the composite can return them bit for bit. An embedded RGB colour
profile (ICC: Display P3, Adobe RGB) is kept with them, for the image to carry: its values are the plate's, and shown
without the profile they would show other colours than the plate does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .identity.images import ImageError, decode_upright, read_image_file, to_rgb
from .pipeline_formats import EXPORT, wide_tiff

MAX_PLATE_SIDE = 8192  # pixels a side (and at most MAX_IMAGE_PIXELS in all)
MIN_PLATE_SIDE = 64
# The largest colour profile the image carries: Pillow's PNG reader refuses an iCCP chunk that inflates past 1 MiB
# (PngImagePlugin.MAX_TEXT_CHUNK), so a take carrying a larger one (a JPEG's APP2 chunks hold up to about 16 MB) could
# be opened neither by idcli (storyboard, qa, a take used as a plate) nor by any Pillow.
MAX_CARRIED_PROFILE = 1024 * 1024


class PlateError(ImageError):
    """A plate that cannot be used."""


@dataclass(frozen=True)
class Plate:
    path: Path
    sha256: str  # of the file's bytes
    pixels: np.ndarray  # uint8 (height, width, 3 or 4), upright
    # The file's embedded ICC profile when it describes these RGB values (None: none, or one of another colour
    # space, a CMYK JPEG's or a greyscale PNG's, whose pixels the reader converted to RGB)
    icc_profile: bytes | None = field(default=None, compare=False, repr=False)
    # The size of an RGB profile over MAX_CARRIED_PROFILE, which the image does not carry (plan says so); else 0
    profile_not_carried: int = field(default=0, compare=False)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])


def _pixels(image, path: Path) -> np.ndarray:  # PIL.Image.Image
    if image.mode in ("I;16", "I;16B", "I;16L"):
        # 16-bit greyscale: value / 257, the exact 16-to-8-bit map. The selfie reader stretches the used range
        # to 8 bits (fine for finding a face), which would change a plate's tones everywhere.
        grey = np.floor(np.asarray(image, dtype=np.float64) / 257.0 + 0.5).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode in ("P", "RGB", "L") and "transparency" in image.info:
        # A palette entry or, in an RGB or greyscale PNG, one colour (tRNS) marked transparent: a keyed
        # background the finished image must keep transparent.
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa"):
        return np.asarray(image.convert("RGBA"), dtype=np.uint8).copy()
    return to_rgb(image, path)


# The modes whose values an RGB profile describes as read (a palette's entries are RGB).
_RGB_MODES = ("RGB", "RGBA", "RGBX", "RGBa", "P", "PA")


def rgb_profile(image) -> bytes | None:  # PIL.Image.Image
    """``image``'s embedded ICC profile when it is an RGB profile of RGB values (its header's colour space, bytes
    16-20, is 'RGB '); None otherwise, as a PNG of RGB values may carry no other kind (iCCP, PNG specification)."""
    profile = image.info.get("icc_profile")
    if not isinstance(profile, bytes) or len(profile) < 128 or profile[16:20] != b"RGB ":
        return None
    return profile if image.mode in _RGB_MODES else None


def read_plate(path: Path) -> Plate:
    """The plate at ``path``; a PlateError naming the file and the problem otherwise."""
    profile: list[bytes | None] = [None]

    def convert(image) -> np.ndarray:  # PIL.Image.Image, decoded and upright
        profile[0] = rgb_profile(image)
        return _pixels(image, path)

    try:
        data = read_image_file(path)
        pixels = decode_upright(path, data, convert, max_side=MAX_PLATE_SIDE)
    except PlateError:
        raise
    except ImageError as exc:
        raise PlateError(str(exc).replace("for a selfie", "for a plate"), file=exc.file) from None
    if (kind := wide_tiff(data)) is not None:  # one channel, which Pillow reads: only with its range stretched
        raise PlateError(f"{path}: is {kind}, which idcli cannot use as a plate (its values would be stretched to 8 "
                         f"bits); {EXPORT}", file=path)
    height, width = pixels.shape[:2]
    if min(width, height) < MIN_PLATE_SIDE:
        raise PlateError(f"{path}: {width}x{height} is too small for a plate (at least {MIN_PLATE_SIDE} "
                         "pixels a side)", file=path)
    carried = profile[0] if profile[0] is None or len(profile[0]) <= MAX_CARRIED_PROFILE else None
    return Plate(path, hashlib.sha256(data).hexdigest(), pixels, carried,
                 len(profile[0]) if profile[0] is not None and carried is None else 0)
