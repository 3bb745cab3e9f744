"""What a take's colour profile means for the files made from it: they are shown as sRGB.

A plate take's PNG carries its plate's RGB colour profile (iCCP; docs/plates.md, "Colour"), so a colour-managed
viewer shows its values as the plate's (a Display P3 red as that red). The files made from takes carry none: the
review page's thumbnails (JPEG), the contact sheets and printed boards made from them, the animatic movie (BT.709,
whose primaries are sRGB's) and a plate job's ``--save-masks`` overlay. A browser (Chromium) and a player take an
untagged picture as sRGB, so values left as they were looked shifted next to the image itself (a saturated Display P3
red 30 levels off in a channel). So each such file converts its take's values from the take's profile to sRGB with
LittleCMS (Pillow's ImageCms) before it uses them, and a take without a profile is used exactly as before, byte for
byte (the common case: a text-to-image take, a plate without one).

Relative colorimetric: the white point is mapped to sRGB's and colours inside sRGB's gamut are kept as they look;
colours outside it (a wide-gamut plate's most saturated) are clipped to its edge. For the matrix/TRC profiles cameras
and phones embed (Display P3, Adobe RGB) LittleCMS has no perceptual tables and would use this intent anyway; naming
it keeps a profile that has them (a printer's, a LUT profile) from giving another answer.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from typing import Any

import numpy as np


def file_rgb_profile(data: bytes) -> bytes | None:
    """The RGB colour profile the image file ``data`` carries (PNG iCCP, JPEG APP2), None when it carries none, one of
    another colour space (greyscale, CMYK), or cannot be opened. Only the header is read: the caller has already
    decoded the pixels through the hardened reader."""
    from PIL import Image

    from .identity.images import open_without_bomb_check
    from .plate_files import rgb_profile

    try:
        # Opened as the hardened reader opens it, without Image.open's bomb check: it warned (Pillow's
        # DecompressionBombWarning, its source path) for a 95-megapixel stray, ahead of the reader's own refusal.
        image = open_without_bomb_check(data)
        if image is None:
            return None
        with image:  # chunks before the pixel data; nothing decoded
            return rgb_profile(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def to_srgb(pixels: np.ndarray, profile: bytes | None) -> np.ndarray:
    """``pixels`` (uint8 RGB or RGBA, values in ``profile``'s colour space) as sRGB values; alpha is kept. Without a
    profile, or with one LittleCMS cannot read (a hand-edited file's), ``pixels`` itself is returned unchanged: the
    values are shown as sRGB, as every viewer shows an untagged picture and as idcli did before profiles were kept."""
    if profile is None:
        return pixels
    transform = cached_transform(profile)
    if transform is None:
        return pixels
    from PIL import Image

    colour = Image.fromarray(np.ascontiguousarray(pixels[:, :, :3]), "RGB")
    converted = np.asarray(transform.apply(colour), dtype=np.uint8)
    if pixels.shape[2] == 4:
        return np.dstack([converted, pixels[:, :, 3]])
    return converted.copy()


def image_to_srgb(image: Any, profile: bytes | None) -> Any:
    """A PIL RGB image ``image`` as sRGB (``to_srgb``); ``image`` itself when there is nothing to convert."""
    if profile is None:
        return image
    from PIL import Image

    pixels = np.asarray(image.convert("RGB"))
    converted = to_srgb(pixels, profile)
    return image if converted is pixels else Image.fromarray(converted, "RGB")


# A profile's floating-point device-to-PCS pipelines (ICC v4 D2Bx tags, multiProcessElements). LittleCMS prefers them
# to the matrix and curves or the A2B tables and evaluates them element by element as it builds a transform: a 524 KB
# profile chaining 65,535 matrices (a take edited outside idcli, a stray plate's) took 120 s a 384-pixel thumbnail
# (docs/performance.md). Chromium (skcms) never reads them; so the conversion reads the profile as Chromium does.
_FLOAT_PIPELINE_TAGS = frozenset({b"D2B0", b"D2B1", b"D2B2", b"D2B3"})


def _without_float_pipelines(profile: bytes) -> bytes:
    """``profile`` with its D2Bx tags renamed in its tag table (to lower case, which no reader knows): their data stays
    where it is, every other tag's offset with it, and LittleCMS reads what Chromium reads."""
    edited = bytearray(profile)
    count = int.from_bytes(profile[128:132], "big") if len(profile) >= 132 else 0
    for at in range(132, min(132 + 12 * count, len(profile) - 3), 12):
        if bytes(edited[at:at + 4]) in _FLOAT_PIPELINE_TAGS:
            edited[at:at + 4] = bytes(edited[at:at + 4]).lower()
    return bytes(edited)


# The transforms a process has built, by (the profile's sha256, the pixels' mode), most recently used last. Building
# one took about half a thumbnail's time under load and was done per take, though a run's takes carry a few profiles
# (their plates'): a 200-take review built 200 of one (docs/performance.md). A transform is read-only once built
# (LittleCMS copies its one-pixel cache per call), so threads making thumbnails can share it. A profile LittleCMS
# refuses is kept too (as None), so it is not parsed again per take.
TRANSFORM_CACHE_SIZE = 8
_transforms: OrderedDict[tuple[str, str], Any] = OrderedDict()
_transforms_lock = threading.Lock()


def cached_transform(profile: bytes, mode: str = "RGB") -> Any:
    """``transform_to_srgb(profile)``, built once per process for each of the last ``TRANSFORM_CACHE_SIZE``
    (profile, mode) pairs used."""
    key = (hashlib.sha256(profile).hexdigest(), mode)
    with _transforms_lock:
        if key in _transforms:
            _transforms.move_to_end(key)
            return _transforms[key]
    transform = transform_to_srgb(profile, mode)  # outside the lock: another thread's hit need not wait
    with _transforms_lock:
        _transforms[key] = transform
        _transforms.move_to_end(key)
        while len(_transforms) > TRANSFORM_CACHE_SIZE:
            _transforms.popitem(last=False)
    return transform


def clear_transform_cache() -> None:
    """Forget the transforms built so far (tests, and measurements of a fresh process)."""
    with _transforms_lock:
        _transforms.clear()


def transform_to_srgb(profile: bytes, mode: str = "RGB") -> Any:
    """A LittleCMS RGB → sRGB transform from ``profile`` (its floating-point pipelines aside), or None when LittleCMS
    refuses the profile."""
    from PIL import ImageCms

    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(_without_float_pipelines(profile)))
        return ImageCms.buildTransform(source, ImageCms.createProfile("sRGB"), mode, mode,
                                       renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None
