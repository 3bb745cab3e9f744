"""``idcli review OUT --to DIR``: the storyboard page written into a folder of its own, OUT only read.

A director reaching the renders through a read-only share (or a folder she does not own) cannot have the page in
OUT/review/. DIR is idcli's to own, as OUT/review/ is: it may be new, empty, or hold what an earlier ``review --to``
wrote there (index.html, thumbs/ with thumbnails, contact-sheet*.png, the dot-named temporaries of a write killed
part-way); anything else there is a stranger's file, and since a later review removes the thumbnails and sheets no
longer used, such a DIR is refused before anything is written or removed. DIR inside OUT is refused too: OUT/review/
is what ``idcli review OUT`` writes, and any other folder of OUT is a render's. Every write is atomic
(idcli/safeio.py), never through a link.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import InputError

_PAGE_FILES = re.compile(r"index\.html|contact-sheet(?:-[1-9]\d*)?\.png")
_THUMB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*_t\d+-[0-9a-f]{12}\.jpg")


def _temporary(name: str) -> bool:
    from ..safeio import TMP_SUFFIX

    return name.startswith(".") and name.endswith(TMP_SUFFIX)


def check_page_folder(to: Path, out: Path) -> None:
    """Refuse (InputError, exit 2) a DIR that is not idcli's to own, or that lies in OUT; nothing is written."""
    from ..shell_words import shell_path

    if to.is_symlink():
        raise InputError(f"--to {to} is a symbolic link; idcli writes the page into a folder, never through a link",
                         file=to, field="to")
    if to.exists() and not to.is_dir():
        raise InputError(f"--to {to} exists and is not a folder; give a new or empty folder", file=to, field="to")
    real_out, real_to = out.resolve(), to.resolve()
    if real_to == real_out or real_out in real_to.parents:
        raise InputError(f"--to {to} lies inside the output folder {out}; the page of a folder you can write goes "
                         f"into OUT/review: idcli review {shell_path(out)}", file=to, field="to")
    if not to.is_dir():
        return
    strangers = sorted(_strangers(to))
    if strangers:
        shown = ", ".join(strangers[:5]) + (f" and {len(strangers) - 5} more" if len(strangers) > 5 else "")
        raise InputError(f"--to {to} holds files idcli did not write there ({shown}); a review removes the "
                         "thumbnails it no longer uses, so it writes only into a new or empty folder or one an "
                         "earlier review --to wrote: give another folder", file=to, field="to")


def _strangers(to: Path) -> list[str]:
    """The names in DIR (and DIR/thumbs) that a ``review --to`` never writes."""
    found: list[str] = []
    for entry in os.scandir(to):
        name = entry.name
        if name == "thumbs" and entry.is_dir(follow_symlinks=False):
            found += [f"thumbs/{inner.name}" for inner in os.scandir(entry.path)
                      if not (inner.is_file(follow_symlinks=False)
                              and (_THUMB_NAME.fullmatch(inner.name) or _temporary(inner.name)))]
        elif not (entry.is_file(follow_symlinks=False) and (_PAGE_FILES.fullmatch(name) or _temporary(name))):
            found.append(name)
    return [os.fsdecode(name).encode("utf-8", "backslashreplace").decode("utf-8") for name in found]


def make_page_folder(folder: Path) -> None:
    """Create DIR (or DIR/thumbs) with its parents; a link in its place is refused, as in the output folder."""
    from ..errors import OutputError

    if folder.is_symlink():
        raise OutputError(f"{folder} is a symbolic link; idcli never writes the page through links", file=folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"cannot create {folder}: it exists and is not a folder", file=folder) from None
    except OSError as exc:
        raise OutputError(f"cannot create {folder}: {exc.strerror or exc}", file=folder) from None


def write_elsewhere(folder: Path, name: str, data: bytes) -> Path:
    """Write DIR/``name`` atomically (``name`` may be ``thumbs/…``)."""
    from ..errors import OutputError
    from ..safeio import atomic_write

    target = folder / name
    make_page_folder(target.parent)
    if target.is_symlink():
        raise OutputError(f"{target} is a symbolic link; idcli never writes the page through links", file=target)
    try:
        atomic_write(target, data)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}", file=target) from None
    return target


def links_base(out: Path, to: Path) -> str:
    """The page's way from DIR to OUT's files, relative (a file:// page follows it; the CSP's img-src 'self'
    allows any file: image, as it does the ``../`` of OUT/review/), ending in ``/``."""
    relative = os.path.relpath(out.resolve(), to.resolve())
    return Path(relative).as_posix().rstrip("/") + "/"
