"""Image files a VFX pipeline hands over that Pillow cannot read, or reads wrongly, said by name with what to export.

A plate from a VFX house is often an OpenEXR, a DPX or a Cineon frame, or a TIFF of floating-point samples; Pillow
reads none of them, and the reader said "not an image Pillow can read (JPEG, PNG, WebP, TIFF, BMP ...)", naming TIFF
among what it reads. A 16-bit TIFF stored per channel (PlanarConfiguration 2, Photoshop's "Per Channel" pixel order)
Pillow does open, and decodes into noise (each 16-bit sample read as two 8-bit ones): a plate of noise rendered
without a word. Both are said here, for selfies and plates alike (idcli/identity/images.py calls these).
"""

from __future__ import annotations

import io
from typing import Any

# What to export such a file as: what the reader takes, in the colours a viewer shows (the model was trained on sRGB).
EXPORT = ("export it as an 8- or 16-bit PNG or TIFF (interleaved) in sRGB, the show's display transform "
           "applied: a Nuke Write node to PNG, 16 bit, colorspace sRGB, or for a scene-linear file "
           "`oiiotool IN --colorconvert linear sRGB -d uint16 -o OUT.png`")

_MAGIC = (
    (b"\x76\x2f\x31\x01", "an OpenEXR image (floating point, scene-linear)"),
    (b"SDPX", "a DPX image (a film scan or a grade's frame)"),
    (b"XPDS", "a DPX image (a film scan or a grade's frame)"),
    (b"\x80\x2a\x5f\xd7", "a Cineon image (a log film scan)"),
    (b"\xd7\x5f\x2a\x80", "a Cineon image (a log film scan)"),
)

TIFF_PLANAR_CONFIGURATION, TIFF_BITS_PER_SAMPLE, TIFF_SAMPLE_FORMAT = 284, 258, 339
# A classic TIFF's first bytes, big- and little-endian, and a little-endian BigTIFF's (version 43, 64-bit offsets).
_TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0")


def unreadable(data: bytes) -> tuple[str, str] | None:
    """What the file whose bytes are ``data`` is, and what to do, as (what it is, the fix), when it is one of the
    pipeline's formats above that Pillow cannot read; else None (the reader then says what Pillow says)."""
    for magic, what in _MAGIC:
        if data.startswith(magic):
            return f"is {what}, which idcli cannot read", EXPORT
    if data[:4] == b"MM\0+":  # Pillow 13 takes a BigTIFF's version from byte 2, a big-endian one's byte 3
        return "is a big-endian BigTIFF, which Pillow cannot read", EXPORT
    if (kind := wide_tiff(data)) is not None:
        return f"is {kind}, which Pillow cannot read", EXPORT
    return None


def wide_tiff(data: bytes) -> str | None:
    """'a TIFF of 32-bit floating-point samples' (or of N-bit integer samples past 16) for such a TIFF; else None.
    Pillow reads none with three channels, and a one-channel one (mode F or I) only as the selfie reader then takes
    it, its range stretched to 8 bits: a plate's tones changed everywhere (plate_files refuses it)."""
    if data[:4] not in _TIFF_MAGIC or (tags := _first_tiff_directory(data)) is None:
        return None
    formats = set(_values(tags.get(TIFF_SAMPLE_FORMAT, 1)))
    bits = max(_values(tags.get(TIFF_BITS_PER_SAMPLE, 8)))
    if 3 in formats:
        return f"a TIFF of {bits}-bit floating-point samples"
    if bits > 16:
        return f"a TIFF of {bits}-bit integer samples"
    return None


def misdecoded(image: Any) -> tuple[str, str] | None:  # PIL.Image.Image, opened
    """(what it is, the fix) for an image Pillow opens but decodes wrongly: an uncompressed TIFF of more than 8 bits
    a sample stored per channel, whose planes Pillow reads with 8-bit raw modes ('R', 'G', 'B'), each 16-bit sample
    as two 8-bit ones (Pillow 13; a compressed one goes through libtiff, which reads it right, and is left alone);
    else None."""
    if getattr(image, "format", None) != "TIFF":
        return None
    tags = getattr(image, "tag_v2", {})
    bits = max(_values(tags.get(TIFF_BITS_PER_SAMPLE, 8)))
    if tags.get(TIFF_PLANAR_CONFIGURATION) != 2 or bits <= 8:
        return None
    raw_8_bit_planes = any(tile[0] == "raw" and isinstance(tile[3], tuple) and tile[3] and tile[3][0] in _PLANE_MODES
                           for tile in getattr(image, "tile", ()))
    if not raw_8_bit_planes:
        return None
    return (f"is a {bits}-bit TIFF stored per channel (planar), which Pillow decodes wrongly, into noise",
            "save it again with the pixels interleaved (Photoshop: Save As TIFF, Pixel Order: Interleaved), or "
            "export it as a PNG")


# The raw modes Pillow reads one 8-bit plane of a per-channel TIFF with.
_PLANE_MODES = frozenset({"R", "G", "B", "A", "L"})


def _values(value: Any) -> tuple[int, ...]:
    values = value if isinstance(value, tuple) else (value,)
    return tuple(int(v) for v in values if isinstance(v, int)) or (0,)


def _first_tiff_directory(data: bytes) -> dict[int, Any] | None:
    """The tags of a TIFF's first image directory, read by Pillow's own TIFF tag reader; None when it cannot be read."""
    from PIL import TiffImagePlugin

    try:
        # The header: 8 bytes, a BigTIFF's 16 (its first directory's offset is 8 bytes long).
        directory = TiffImagePlugin.ImageFileDirectory_v2(data[:16] if data[:4] == b"II+\0" else data[:8])
        handle = io.BytesIO(data)
        handle.seek(directory.next)
        directory.load(handle)
        return dict(directory)
    except Exception:  # a damaged directory: Pillow's own message stands
        return None
