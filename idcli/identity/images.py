"""Reading selfies safely: any mode, EXIF orientation, bounded size, clear errors.

Pillow is lenient by default (truncated files half-load, huge images decode until memory runs
out); here every failure becomes an ImageError that names the file and says what is wrong.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..file_spellings import spelt_on_disk
from ..library_quiet import quiet_damaged_image_tags
from ..not_photos import HEAD_BYTES, not_a_photo
from ..pipeline_formats import misdecoded, unreadable
from ..safeio import NotRegularFile, missing_reason, read_regular

MAX_IMAGE_PIXELS = 50_000_000  # a 50-megapixel selfie is already generous; bombs are far larger
MAX_IMAGE_BYTES = 100 * 1024 * 1024
MIN_SIDE = 32
# Face detection letterboxes to 640x640: past 640:1 a side rounds to 0 pixels and OpenCV aborts with an
# assertion; long before that no face is usable. 10:1 still takes any photo format (panoramas are ~6:1).
MAX_ASPECT = 10


class ImageError(InputError):
    """A selfie that cannot be used."""


def read_image_file(path: Path) -> bytes:
    """The bytes of an image file (links followed), read once; anything else is an ImageError.

    Never blocks on a FIFO, never reads a device, and refuses a file over MAX_IMAGE_BYTES before
    reading a byte of it.
    """
    try:
        # A path given on the command line (encode-identity) in the other Unicode form than the disk's: found as a
        # shot list's paths are (idcli/file_spellings.py).
        data = read_regular(spelt_on_disk(path), MAX_IMAGE_BYTES)
    except NotRegularFile as exc:
        reasons = {
            "missing": missing_reason(path),  # or a link to a missing file, named
            "folder": "is a folder, not an image",
            "special": "is not a regular file (a device or pipe?)",
            "too-large": f"{exc.size:,} bytes is over the {MAX_IMAGE_BYTES:,}-byte limit for a selfie",
        }
        raise ImageError(f"{path}: {reasons.get(exc.kind) or f'cannot read ({exc.detail})'}", file=path) from None
    if not data:
        raise ImageError(f"{path}: the file is empty (0 bytes)", file=path)
    return data


def load_rgb(path: Path, data: bytes | None = None) -> np.ndarray:
    """An image file as an RGB uint8 array (height, width, 3), upright per its EXIF orientation.

    ``data``: the file's bytes when the caller already read them (``path`` then only names the file).
    """
    if data is None:
        data = read_image_file(path)
    rgb = decode_upright(path, data, lambda image: to_rgb(image, path))
    height, width = rgb.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise ImageError(f"{path}: {width}x{height} is too small; a selfie needs at least "
                         f"{MIN_SIDE} pixels on each side", file=path)
    if max(height, width) > MAX_ASPECT * min(height, width):
        raise ImageError(f"{path}: {width}x{height} is too elongated for a selfie (more than {MAX_ASPECT}:1); "
                         "crop it around the face", file=path)
    return rgb


def load_take_rgb(path: Path, data: bytes | None = None) -> np.ndarray:
    """A rendered take as an RGB uint8 array, through the same hardened decode as a selfie but without a
    selfie's shape checks: a take is any size its shot list allowed (704x64, a panoramic strip, is 11:1), and the
    storyboard page, ``idcli qa`` and the animatic movie must read every take a render committed."""
    if data is None:
        data = read_image_file(path)
    return decode_upright(path, data, lambda image: to_rgb(image, path))


@quiet_damaged_image_tags()
def decode_upright(path: Path, data: bytes, convert: Callable[[Any], np.ndarray],
                   max_side: int | None = None) -> np.ndarray:
    """Decode ``data`` (the bytes of ``path``) bounded by MAX_IMAGE_PIXELS (and ``max_side`` pixels a
    side when given, checked before decoding), turn it upright per its EXIF orientation and return
    ``convert(image)`` (a PIL image in, an array out); every failure is an ImageError naming the file.

    Shared by selfies (load_rgb) and plates (idcli/plate_files.py), so both refuse the same bad files.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if (said := not_a_photo(path, data[:HEAD_BYTES])) is not None:  # a Finder or Explorer file, a HEIC photo
        raise ImageError(f"{path}: {said[0]}; {said[1]}", file=path)
    try:
        # Pillow's own (process-wide) MAX_IMAGE_PIXELS is left alone. Image.open warns past it
        # (DecompressionBombWarning, 89-179 MP by default) and raises past twice it; silencing that warning
        # would swap the process-wide warnings state under the host's other threads. So the image is opened as
        # Image.open opens it but without that check: past twice Pillow's limit it is refused as Image.open
        # would refuse it, and idcli's own, lower budget below refuses the rest before anything is decoded.
        canvas = _gif_canvas(data)
        if canvas is not None:
            # Pillow's GIF plugin widens the image to a first frame larger than its logical screen as it opens it,
            # and checks that size itself (warning past Pillow's limit, raising past twice it): refused here first,
            # where it would be refused after the opening, so a bomb is refused without the plugin's warning.
            if _pillow_refuses(canvas):
                raise _bomb_error(path)
            _refuse_oversized(path, *canvas, max_side)
        image = open_without_bomb_check(data)
        if image is None:  # no plugin opens it: Image.open says what is wrong, as before
            image = Image.open(io.BytesIO(data))
        with image:
            if _pillow_refuses(image.size):
                raise _bomb_error(path)
            image.seek(0)  # animated images: the first frame
            if (wrong := misdecoded(image)) is not None:  # a 16-bit TIFF stored per channel: Pillow reads noise
                raise ImageError(f"{path}: {wrong[0]}; {wrong[1]}", file=path)
            width, height = image.size
            _refuse_oversized(path, width, height, max_side)
            image.load()
            return convert(ImageOps.exif_transpose(image) or image)
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise _bomb_error(path) from None
    except UnidentifiedImageError:
        if (said := unreadable(data)) is not None:  # an OpenEXR, DPX or Cineon frame, a float TIFF: said by name
            raise ImageError(f"{path}: {said[0]}; {said[1]}", file=path) from None
        raise ImageError(f"{path}: not an image Pillow can read (JPEG, PNG, WebP, TIFF, BMP ...)", file=path) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{path}: damaged or truncated image ({exc})", file=path) from None


def _bomb_error(path: Path) -> ImageError:
    return ImageError(f"{path}: image dimensions are over the {MAX_IMAGE_PIXELS:,}-pixel budget "
                      "(decompression bomb?)", file=path)


def _refuse_oversized(path: Path, width: int, height: int, max_side: int | None) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageError(f"{path}: {width}x{height} is over the {MAX_IMAGE_PIXELS:,}-pixel budget", file=path)
    if max_side is not None and max(width, height) > max_side:
        raise ImageError(f"{path}: {width}x{height} is over the limit of {max_side} pixels a side", file=path)


def open_without_bomb_check(data: bytes) -> Any:  # PIL.ImageFile.ImageFile | None
    """``data`` opened (lazily: headers only) by the plugin Image.open would pick, the first in Pillow's registry
    that accepts its first bytes and opens it, as Image.open returns it but without its decompression-bomb
    check and that check's warning; None where no plugin opens it, and Image.open then says what is wrong."""
    import struct

    from PIL import Image

    prefix = data[:16]
    tried: set[str] = set()
    # Module globals, not API: a Pillow that renamed them opens with its bomb check, as before. Present, not truthy:
    # ID and OPEN are empty until Image.preinit fills them, for the first image a process opens.
    if not all(hasattr(Image, name) for name in ("preinit", "init", "ID", "OPEN")):
        return None
    for loader in (Image.preinit, Image.init):  # the common plugins first, then all, as Image.open does
        loader()
        for format_id in [each for each in Image.ID if each not in tried]:
            tried.add(format_id)
            factory, accept = Image.OPEN[format_id]
            try:
                accepted = not accept or accept(prefix)
                if accepted and not isinstance(accepted, str):  # a str is Pillow's "not this plugin, because"
                    return factory(io.BytesIO(data), "")
            except (SyntaxError, IndexError, TypeError, struct.error):
                continue  # Image.open tries the next plugin on these too
            except Exception:
                return None  # Image.open meets the same and reports it as before
    return None


def _gif_canvas(data: bytes) -> tuple[int, int] | None:
    """The size Pillow's GIF plugin gives ``data`` as it opens it: the logical screen, widened to the first frame
    where that frame reaches past it (GifImagePlugin's ``_seek(0)``, whose blocks are walked here as it walks
    them); None when ``data`` is no GIF or ends before a first frame (Pillow then says what is wrong, as before)."""
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        return None
    width, height = int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    at = 13 + ((3 << ((data[10] & 7) + 1)) if data[10] & 0x80 else 0)  # past the global colour table

    def sub_block() -> bytes | None:  # GifImageFile.data(): a length byte and that many bytes; None at length 0
        nonlocal at
        size = data[at] if at < len(data) else 0
        at += 1
        block = data[at:at + size]
        at += size
        return block or None

    while at < len(data):
        kind, at = data[at], at + 1
        if kind == 0x3B:  # ';': the trailer, no frame
            return None
        if kind == 0x2C:  # ',': the first image descriptor: left, top, width, height
            if at + 8 > len(data):
                return None
            left, top, frame_width, frame_height = (int.from_bytes(data[at + i:at + i + 2], "little")
                                                    for i in (0, 2, 4, 6))
            return max(width, left + frame_width), max(height, top + frame_height)
        if kind == 0x21:  # '!': an extension: its label, then sub-blocks up to an empty one
            label, at = (data[at] if at < len(data) else None), at + 1
            block = sub_block()
            if label == 0xFE:  # a comment ends at its empty sub-block, even a first one
                while block:
                    block = sub_block()
                continue
            if label == 0xFF and block and block.startswith(b"NETSCAPE2.0"):
                sub_block()  # the loop count
            while sub_block():
                pass
        # any other byte is skipped, as Pillow skips it
    return None


def _pillow_refuses(size: tuple[int, int]) -> bool:
    """Whether Image.open raises DecompressionBombError at this size (past twice Pillow's MAX_IMAGE_PIXELS, its
    own formula): that refusal, worded "decompression bomb?", stays the one a user sees for it, as before."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    return limit is not None and max(1, size[0]) * max(1, size[1]) > 2 * limit


def to_rgb(image, path: Path) -> np.ndarray:  # PIL.Image.Image
    """A decoded image of any mode as 8-bit RGB (16-bit and float greyscale scaled, transparency on white)."""
    from PIL import Image

    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit and 32-bit greyscale: scale the used range to 8 bits instead of clipping to white.
        data = np.asarray(image, dtype=np.float64)
        top = data.max() if data.max() > 255 else 255.0
        grey = np.clip(data / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        # Floating-point greyscale: scale the finite range to 8 bits. One NaN or infinite pixel used to
        # turn the whole picture black (NaN spans), which then read as "no face found".
        data = np.asarray(image, dtype=np.float64)
        finite = np.isfinite(data)
        if not finite.any():
            raise ImageError(f"{path}: the image holds no finite pixel values (all NaN or infinite)", file=path)
        low, high = data[finite].min(), data[finite].max()
        data = np.where(finite, data, low)
        grey = ((data - low) / ((high - low) or 1.0) * 255.0 + 0.5).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa"):
        # Transparent pixels become white, as a photo print would show them.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
