"""Files in a photo folder that are not photos idcli can read, said by name: what the system that made them left
there (macOS Finder's ``._NAME`` and ``.DS_Store``, Windows Explorer's ``Thumbs.db`` and ``desktop.ini``), and
iPhone photos in HEIC, which Pillow cannot decode.

A selfie listed as ``selfies/mara/._1.jpg`` (tab-completed, or a list made with ``ls -a``) or a HEIC photo straight
off an iPhone was answered only when its character was encoded, with "not an image Pillow can read", which names
neither what the file is nor where its photo is. ``validate`` now says it at the selfie's (or plate's) line, and the
image reader in the same words (``idcli encode-identity selfies/mara/*`` picks up ``Thumbs.db``)."""

from __future__ import annotations

from pathlib import Path

# The first four bytes of an AppleDouble file (RFC 1740): what a Mac writes as '._NAME' beside NAME on a disk whose
# file system cannot hold the Finder's metadata itself (FAT and exFAT USB sticks, SMB shares, zip files, tar).
APPLEDOUBLE_MAGIC = b"\x00\x05\x16\x07"
# ISO base media file brands of HEIF images coded in HEVC (what an iPhone saves); AVIF, the same container coded
# in AV1, is read by Pillow and is not among them.
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_CONTAINERS = {b"mif1", b"msf1"}  # a container brand: the coding is said by the compatible brands
_HEIC_SUFFIXES = {".heic", ".heif", ".hif"}
_SYSTEM_FILES = {
    ".ds_store": "the macOS Finder's settings for the folder it lies in",
    "thumbs.db": "Windows Explorer's cache of the folder's thumbnails",
    "ehthumbs.db": "Windows Media Center's cache of the folder's thumbnails",
    "desktop.ini": "Windows Explorer's settings for the folder it lies in",
}
HEAD_BYTES = 64  # what ``not_a_photo`` reads of a file


# How a JPEG, a PNG, a GIF and a WebP start: a file named as a system's (a photo saved as 'Thumbs.db') that is one is
# a photo, and read as one.
_IMAGE_STARTS = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")


def not_a_photo(path: Path, head: bytes, written: str | None = None) -> tuple[str, str] | None:
    """What the file at ``path``, whose first bytes are ``head`` (HEAD_BYTES or all of a shorter file), is when it is
    no photo idcli can read for one of the reasons above, and what to do, as (what it is, the fix); else None.
    ``written``: the path as the shot list writes it, so that the photo to list is said in its folder."""
    name = path.name
    if name.startswith("._") and head.startswith(APPLEDOUBLE_MAGIC):
        photo = name[2:]
        listed = f"{written[: -len(name)]}{photo}" if written and written.endswith(name) else photo
        fix = (f"list '{listed}' instead, or leave this file out" if (path.parent / photo).exists() else
               f"'{photo}' itself is not beside it (this file holds none of its pixels): copy the photos themselves, "
               "or leave this file out")
        return (f"is a macOS AppleDouble file (the Finder's metadata for '{photo}', written beside it on a disk that "
                "is not a Mac's), not a photo", fix)
    is_image = head.startswith(_IMAGE_STARTS) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
    if not is_image and (system := _SYSTEM_FILES.get(name.lower())) is not None:
        return f"is {system}, not a photo", "leave this file out: list the photos only, as *.jpg does and * does not"
    if is_heic(head) or (path.suffix.lower() in _HEIC_SUFFIXES and not head.startswith(b"\xff\xd8")):
        return ("is a HEIC photo (an iPhone's own format), which idcli cannot read",
                "convert it to JPEG or PNG: on a Mac, open it in Preview and File > Export as JPEG, or "
                "`sips -s format jpeg IMG.HEIC --out IMG.jpg`; on the iPhone, Settings > Camera > Formats > "
                "Most Compatible takes JPEGs from then on")
    return None


def is_heic(head: bytes) -> bool:
    """Whether ``head`` starts an ISO base media file of HEVC-coded HEIF: its major brand says so, or it is a HEIF
    container brand whose compatible brands (the rest of the ftyp box) name HEVC and not AV1."""
    if len(head) < 12 or head[4:8] != b"ftyp":
        return False
    major = head[8:12]
    if major in _HEIC_BRANDS:
        return True
    end = min(int.from_bytes(head[:4], "big"), len(head))
    compatible = {head[at:at + 4] for at in range(16, end - 3, 4)}
    return major in _HEIF_CONTAINERS and bool(compatible & _HEIC_BRANDS) and not compatible & _AVIF_BRANDS


def read_head(path: Path) -> bytes:
    """The first HEAD_BYTES of ``path``; b"" when it cannot be read (its own check says why)."""
    try:
        with open(path, "rb") as file:
            return file.read(HEAD_BYTES)
    except OSError:
        return b""
