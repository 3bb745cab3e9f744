"""The animatic's media URLs: each still's path as the .otio, the EDL and the FCP 7 XML write it, and whether
OpenTimelineIO reads it back as that path.

The .otio and the EDL hold a still's path relative to their own file (a project that moves keeps them valid); the
FCP 7 XML an absolute ``file://localhost/`` URL, the ``pathurl`` form of Apple's reference. OTIO turns a media URL
back into a path with ``url_utils.filepath_from_url`` (its .otioz and .otiod bundlers, ``otiotool``, every pipeline
tool built on it), and that reader has two quirks an output folder's name can meet:

- it decodes the escapes twice (``urllib.parse.unquote``, then ``url2pathname``, which unquotes again), so a name
  holding ``%`` and two hex digits cannot be written in a form it reads back: ``50%41`` escaped as ``50%2541`` is
  read ``50A``, and unescaped ``50%41`` is read ``50A`` too;
- it takes a name that starts with one letter and ``:`` (``c:x``) as a Windows drive where it is the path's first
  or second part, and drops what comes before it.

``check_read_back`` refuses such a path before anything is written, naming the folder (``.otio`` and EDL; the
XML's absolute URL is read once by the editing applications it is for, and is left as Apple's reference writes it).
A first part that holds ``:`` elsewhere (``renders:v2``: a folder macOS's Finder shows as ``renders/v2``) would be
read as a URL's scheme; it is written ``./renders:v2/…`` as RFC 3986 (section 4.2) asks, which every reader reads
as the path.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import InputError, printable
from ..option_words import Option

# What url_utils.filepath_from_url cannot read back in a folder's name (module doc).
_TWICE_DECODED = re.compile(r"%[0-9A-Fa-f]{2}")
_DRIVE_LIKE = re.compile(r"[A-Za-z]:")


def relative_url(base: Path, target: Path) -> str:
    """``target`` as a URL relative to the folder ``base`` (the .otio's), in OTIO's own form
    (``url_utils.url_from_filepath``: not percent-encoded, which ``otiotool --verify-media`` and the
    bundlers read as a path; ``url_utils.filepath_from_url`` reads both forms)."""
    from opentimelineio import url_utils

    return url_utils.url_from_filepath(Path(os.path.relpath(target.resolve(), base.resolve())).as_posix())


def relative_media_url(base: Path, target: Path) -> str:
    """``target`` as a media reference's URL relative to the .otio file's folder ``base``: OTIO's own form
    (``relative_url``: spaces and letters as they are) with the three characters that change what a URL means
    escaped: ``%`` (an escape), ``#`` (a fragment follows) and ``?`` (a query follows). Unescaped, OTIO's
    ``url_utils.filepath_from_url`` (which its .otioz bundler reads with) read ``renders/sc12 #2/...`` as
    ``renders/sc12 ``. A first part holding ``:`` is written after ``./``, so that it is no URL's scheme (module
    doc): ``renders:v2/sc01/…`` was read as the scheme ``renders`` and the path ``v2/sc01/…``."""
    url = relative_url(base, target).replace("%", "%25").replace("#", "%23").replace("?", "%3F")
    return f"./{url}" if ":" in url.split("/", 1)[0] else url


def ascii_media_url(base: Path, target: Path) -> str:
    """``target`` as the EDL's ``* FROM CLIP:`` path from the EDL's folder ``base``: the .otio's relative URL
    (``relative_media_url``) with each character outside ASCII percent-encoded, its UTF-8 bytes as RFC 3987 maps a
    name into a URI. CMX 3600 is ASCII and EDL readers differ on anything else (Latin-1, a Windows code page,
    UTF-8), so ``Renée/…`` is written ``Ren%C3%A9e/…``; OTIO's adapter reads it back as the media's URL, which
    ``url_utils.filepath_from_url`` turns into the real path. A path in ASCII without ``%``, ``#`` or ``?`` is
    written as it is."""
    from urllib.parse import quote

    return "".join(c if c.isascii() else quote(c, safe="") for c in relative_media_url(base, target))


def absolute_url(target: Path) -> str:
    """``target`` as the absolute file URL FCP 7 XML's ``pathurl`` holds (``file://localhost/…``,
    percent-encoded): the form Apple's FCP 7 XML reference gives it, and what Final Cut Pro 7 and Premiere write."""
    from urllib.parse import quote

    return "file://localhost" + quote(target.resolve().as_posix())


def check_read_back(timeline: Any, root: Path, name: str, path: Path) -> None:
    """Refuse the file ``path`` of format ``name`` (``otio`` or ``edl``, ``timeline`` its media as relative URLs;
    ``root`` the output folder the clips' ``idcli`` metadata names images in) when OpenTimelineIO reads a still's
    URL back as another path than the still's (module doc): its bundlers and otiotool would miss the still, or take
    another file of that name. Nothing is written then; the words name the folder and what to do."""
    from opentimelineio import url_utils

    for clip in timeline.find_clips():
        meta = clip.metadata.get("idcli")
        if not meta:
            continue  # black, or a slug: no file
        expected = PurePosixPath(Path(os.path.relpath((root / meta["image"]).resolve(),
                                                      path.parent.resolve())).as_posix())
        read = PurePosixPath(url_utils.filepath_from_url(clip.media_reference.target_url))
        if read == expected:
            continue
        folder = next((part for part in expected.parts[:-1]
                       if _TWICE_DECODED.search(part) or _DRIVE_LIKE.match(part)), None)
        raise InputError(Option(name, path), f": OpenTimelineIO reads the path from it to {Path(meta['image']).name}, "
                         f"{printable(str(expected))!r}, as {printable(str(read))!r}{_why(folder)}, so its bundlers "
                         "and otiotool would miss the stills; rename the folder", *_named(folder),
                         ", or write the file where its path to the renders does not pass through it (",
                         Option("fcp_xml"),
                         " holds an absolute file URL, read as written)", field=name)


def _why(folder: str | None) -> str:
    """Which of url_utils' quirks (module doc) ``folder`` meets, in words; none found: nothing said."""
    if folder is None:
        return ""
    escape = _TWICE_DECODED.search(folder)
    if escape is not None:
        from urllib.parse import unquote

        return (f" (its url_utils decodes a media URL's escapes twice, so {escape[0]!r} in a folder's name is read "
                f"as {unquote(escape[0])!r})")
    return f" (its url_utils takes a name starting with a letter and ':', {folder[:2]!r}, for a Windows drive)"


def _named(folder: str | None) -> tuple[str, ...]:
    if folder is None:
        return ()
    return (f" {printable(folder)!r} (a name without '%' and two hex digits, not starting with a letter and ':')",)
