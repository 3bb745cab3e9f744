"""The files of ``OUT/review/``: where they go, the thumbnails, and what is no longer used.

Thumbnails are made once: named after the sha256 of the image's bytes (not the sidecar's: a retouched image
gets a new one), reused while the image is unchanged; thumbnails of images no longer present are removed, and
so are the contact sheets past the last one (an earlier, longer cut's). A thumbnail is sRGB: a take carrying a
colour profile is converted (idcli/display_colour.py). Every write is atomic, inside the output folder, never
through a link.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from ..errors import InputError
from .runs import Take

REVIEW_DIR = "review"
THUMBS_DIR = "thumbs"
THUMB_WIDTH = 384
_SHEET_NAME = re.compile(r"contact-sheet(?:-([1-9]\d*))?\.png")
# Hashed with a tagged take's sha256 for its thumbnail's name: the thumbnail is sRGB (see ``thumbnail``).
_SRGB_NAMING = b"\0thumbnail in sRGB"
_THUMB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*_t\d+-[0-9a-f]{12}\.jpg")


def sheet_name(index: int) -> str:
    """The file name of contact sheet ``index`` (0-based): contact-sheet.png, contact-sheet-2.png, …"""
    return "contact-sheet.png" if index == 0 else f"contact-sheet-{index + 1}.png"


def write_file(root: Path, relpath: str, data: bytes) -> Path:
    """Atomically, inside the output folder, never through a link (the store's own path rules)."""
    from ..shared_files import make_folders
    from ..store import OutputStore, atomic_write

    target = OutputStore(root).path(relpath)
    try:
        make_folders(target.parent)  # review/ and review/thumbs: group-writable in a folder a team shares
    except OSError as exc:
        # A read-only share refused review/ as a bare "OUT/review: Read-only file system": said as every writing
        # command says it (review adds the way out, --to: review_commands._way_out)
        import errno

        from ..store import not_writable, write_error

        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise not_writable(root, exc, then=f": the page goes into {root / REVIEW_DIR}") from None
        raise write_error(target.parent, exc) from None
    atomic_write(target, data)
    return target


def page_folder(root: Path, to: Path | None) -> Path:
    """Where the page goes: OUT/review/, or ``review --to DIR``'s DIR (idcli/review/page_elsewhere.py)."""
    return root / REVIEW_DIR if to is None else to


def write_page_file(root: Path, to: Path | None, name: str, data: bytes) -> Path:
    """Write the page folder's ``name`` (``thumbs/…`` too) atomically: in OUT through the store's rules, in
    ``--to``'s DIR as page_elsewhere writes it (OUT untouched)."""
    if to is None:
        return write_file(root, f"{REVIEW_DIR}/{name}", data)
    from .page_elsewhere import write_elsewhere

    return write_elsewhere(to, name, data)


def clear_dead_temporaries(root: Path, to: Path | None = None) -> None:
    """Remove what a review killed part-way left in review/ and review/thumbs (a render's start clears only
    folders directly inside the output folder, so thumbnails' temporaries were never removed)."""
    from ..safeio import remove_dead_temporaries

    page = page_folder(root, to)
    for folder in (page, page / THUMBS_DIR):
        if folder.is_dir() and not folder.is_symlink():  # never a linked folder: the files could be anyone's
            remove_dead_temporaries(folder)


def thumbnail(root: Path, take: Take, to: Path | None = None) -> tuple[str, bool, tuple[int, int]]:
    """The take's thumbnail file name in review/thumbs (made if missing), whether it was made now, and its
    width and height (the page gives every thumbnail its size, so a lazily loaded one keeps its place)."""
    from PIL import Image

    from ..display_colour import file_rgb_profile, image_to_srgb
    from ..hashing import sha256_bytes
    from ..identity.images import ImageError, load_take_rgb, read_image_file

    # Named by the bytes on disk, not the sidecar's sha256: an image retouched by hand after its render
    # gets a new thumbnail (the page shows the picture the link opens).
    try:
        data = read_image_file(root / take.image)
    except ImageError as exc:
        raise InputError(str(exc).split(": ", 1)[-1]) from None
    profile = file_rgb_profile(data)
    # A take with a colour profile: its thumbnail is converted to sRGB (idcli/display_colour.py), so it is named
    # apart from one made before 2026-12-02, which showed the values unconverted and must not be reused.
    digest = sha256_bytes(data) if profile is None else sha256_bytes(sha256_bytes(data).encode() + _SRGB_NAMING)
    name = f"{take.stem}-{digest[:12]}.jpg"
    target = page_folder(root, to) / THUMBS_DIR / name
    size = _our_thumbnail_size(target) if target.is_file() and not target.is_symlink() else None
    if size is not None:
        return name, False, size
    try:
        rgb = load_take_rgb(root / take.image, data)
    except ImageError as exc:
        raise InputError(str(exc).split(": ", 1)[-1]) from None
    image = Image.fromarray(rgb)
    image.thumbnail((THUMB_WIDTH, THUMB_WIDTH * 4))
    image = image_to_srgb(image, profile)  # after the resize: a 384-pixel image to convert, not the take
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    write_page_file(root, to, f"{THUMBS_DIR}/{name}", buffer.getvalue())
    return name, True, image.size


def _our_thumbnail_size(path: Path) -> tuple[int, int] | None:
    """The size of ``path`` if it is a thumbnail as ``thumbnail`` makes them (a JPEG at most THUMB_WIDTH
    wide that decodes), else None. Its name (the image's sha256) can be computed by anyone holding the
    folder, so a file planted under it (a decompression bomb, a truncated or full-size picture) is made
    again, never decoded whole."""
    from PIL import Image

    try:
        with Image.open(path) as image:  # reads the header only; a bomb's size is refused before decoding
            if image.format != "JPEG" or image.width > THUMB_WIDTH or image.height > THUMB_WIDTH * 4:
                return None
            image.load()
            return image.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def remove_unused_thumbnails(root: Path, keep: set[str], to: Path | None = None) -> None:
    folder = page_folder(root, to) / THUMBS_DIR
    if not folder.is_dir() or folder.is_symlink():
        return
    for entry in folder.iterdir():
        if _THUMB_NAME.fullmatch(entry.name) and entry.name not in keep and entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)


def remove_unused_sheets(root: Path, keep: set[str], to: Path | None = None) -> None:
    folder = page_folder(root, to)
    for entry in folder.iterdir():
        if _SHEET_NAME.fullmatch(entry.name) and entry.name not in keep and entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)
