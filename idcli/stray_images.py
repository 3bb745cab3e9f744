"""Images in an output folder that are no take (in a delivery folder, no delivered copy): ``idcli verify`` names
each one and fails it.

verify checks the images named as takes (``SHOT/SHOT_tN.png`` beside their sidecars). Anything else that looks like
an image — a retouched crop saved as ``SHOT/SHOT_final.png``, a take renamed, a frame dropped into the folder — was
passed over in silence, so a folder holding images nothing had checked still said "0 failed": a reviewer signing
off the folder signed off those too. Only what idcli itself writes there besides takes is left alone: masks
(``--save-masks``, beside their take; a checked take's beside it in a renamed shot folder too), the review page's
folder (``review/``: contact sheets and thumbnails, previews made from the takes) and hidden files and folders
(``.idcli/``, temporaries, a desktop's ``.DS_Store``). A mask's name with no take beside it (a render killed
before the take's image, or a picture copied there) fails in words of its own.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from . import safeio
from .paths import real_path
from .store import MAX_IMAGE_BYTES

# What a studio's tools save pictures as (by name, case aside): the files a reviewer takes for frames.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".exr", ".dpx", ".psd", ".gif",
                            ".bmp", ".avif", ".heic", ".heif", ".jxl", ".tga"})
REVIEW_FOLDER = "review"  # idcli review's page, thumbnails and contact sheets (docs/review.md)


def is_own_mask(path: Path) -> bool:
    """Whether ``path`` is a mask idcli wrote in its shot's folder: ``SHOT_tN.mask.png`` beside its take (the take's
    image or its sidecar there), or ``SHOT_tN.uncommitted[.K].mask.png`` (a killed render's, docs/file-formats.md).
    A committed mask's name alone is not enough: a plate copied to ``SHOT_t9.mask.png`` passed unseen."""
    match = _mask_name(path)
    return match is not None and (bool(match["uncommitted"]) or _take_is_there(path, match["stem"]))


def lone_take_mask(path: Path) -> str | None:
    """The take (``SHOT_tN``) whose committed mask's name ``path`` has when neither that take's image nor its sidecar
    is beside it, else None. A ``--save-masks`` commit killed after writing the mask, before the image, leaves one
    (the render run again moves it aside: moving_aside.py's ``_move_stray_mask``); so does a picture copied there."""
    match = _mask_name(path)
    if match is None or match["uncommitted"] or _take_is_there(path, match["stem"]):
        return None
    return match["stem"]


def _mask_name(path: Path) -> re.Match[str] | None:
    """``SHOT_tN.mask.png`` or ``SHOT_tN.uncommitted[.K].mask.png`` in the folder ``SHOT``: the take's stem and
    whether it is an uncommitted one."""
    shot = re.escape(path.parent.name)
    return re.fullmatch(rf"(?P<stem>{shot}_t[1-9]\d*)(?P<uncommitted>\.uncommitted(\.\d+)?)?\.mask\.png", path.name)


def _take_is_there(mask: Path, stem: str) -> bool:
    """Whether the take ``stem`` has its image or its sidecar beside ``mask`` (a link counts: verify judges it)."""
    return any(os.path.lexists(mask.with_name(stem + suffix)) for suffix in (".png", ".json"))


def lone_mask_problem(path: Path, stem: str) -> str:
    """Why a take's mask with no take beside it fails verify: what a kill leaves, or a file named so by hand."""
    shot = path.parent.name
    return (f"a take's mask whose take is not here (neither {shot}/{stem}.png nor its sidecar {shot}/{stem}.json is "
            "beside it): a render killed before the take's image? Run the render again (it moves the mask aside); "
            "else it was added or renamed outside idcli, and nothing checks where it came from.")


def _mask_of_checked_take(path: Path, checked: set[Path]) -> bool:
    """Whether ``path`` is the ``--save-masks`` mask of a take verify checked, beside it (``SHOT_tN.mask.png`` of
    ``SHOT_tN.png``): in a renamed shot folder the name no longer starts with the folder's, and the take fails for
    where it is; its mask, which idcli wrote beside it, is no image added outside idcli."""
    if not path.name.endswith(".mask.png"):
        return False
    return real_path(path.with_name(path.name[: -len(".mask.png")] + ".png")) in checked


def walk(root: Path, unreadable: list[tuple[Path, OSError]] | None = None
         ) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk(root)``, top down, links not followed into folders, folders that cannot be read passed over, the
    caller pruning ``folders`` in place as it does there, but as a loop: Python 3.11's os.walk recurses once a
    folder, so a folder nested a thousand deep stopped ``idcli verify`` with ``internal error: RecursionError``.
    Each folder passed over that way is added to ``unreadable`` with why (one that vanished meanwhile aside)."""
    pending = [os.fspath(root)]
    while pending:
        top = pending.pop()
        folders: list[str] = []
        files: list[str] = []
        try:
            with os.scandir(top) as entries:
                for entry in entries:
                    try:
                        is_folder = entry.is_dir()  # a link to a folder is listed as one, as os.walk lists it
                    except OSError:
                        is_folder = False
                    (folders if is_folder else files).append(entry.name)
        except OSError as exc:
            # Its images go unchecked, so the caller names it (verify fails it: unreadable_problem); a folder that
            # vanished since its parent was listed holds nothing left to check.
            if unreadable is not None and not isinstance(exc, FileNotFoundError):
                unreadable.append((Path(top), exc))
            continue
        yield top, folders, files
        pending += [path for name in reversed(folders) if not os.path.islink(path := os.path.join(top, name))]


def stray_images(root: Path, checked: set[Path], *, own_folders: tuple[str, ...] = (REVIEW_FOLDER,),
                 masks: bool = True, unreadable: list[tuple[Path, OSError]] | None = None) -> list[Path]:
    """The image files under ``root`` that are neither in ``checked`` (resolved paths) nor idcli's own, in name
    order; ``own_folders``: folders of ``root`` idcli fills with previews, ``masks``: whether takes' masks are idcli's
    own there (neither, in a delivery folder). Links are not followed into folders (a link to a folder elsewhere is
    not the output folder's). The folders it cannot read are added to ``unreadable`` (``walk``)."""
    found = []
    for folder, folders, files in walk(root, unreadable):
        here = Path(folder)
        folders[:] = sorted(name for name in folders if not name.startswith(".")
                            and not (here == root and name in own_folders))
        for name in files:
            path = here / name
            if (name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES or real_path(path) in checked
                    or (masks and (is_own_mask(path) or _mask_of_checked_take(path, checked)))):
                continue
            found.append(path)
    return sorted(found)


def unreadable_problem(root: Path, folder: Path, error: OSError) -> str:
    """Why a folder verify cannot list fails: the images in it are not checked (until 2026-12-02 it was passed over
    in silence, and the folder around it passed)."""
    shown = folder.relative_to(root).as_posix() if folder != root else folder.as_posix()
    return (f"{shown} is a folder verify cannot read ({error.strerror or type(error).__name__}): the images there are "
            "not checked. Make it readable to this user (chmod -R u+rX), or run verify as a user who can read it")


NOT_A_TAKE = "not a take of this render (a take is SHOT/SHOT_tN.png beside its sidecar)"
NOT_A_DELIVERED_COPY = ("not a delivered copy (a copy is SHOT_takeN.png beside its sidecar, listed in "
                        "delivery.json)")


# Whose take a PNG's own record names, said of a stray and of a take's image with no sidecar that is another's.
OWN_RECORD_IS = "Its own record (its idcli chunk) is"


def stray_problem(path: Path, what: str = NOT_A_TAKE) -> str:
    """Why a stray image fails verify (``what`` it is not: a take, or a delivered copy), and, when it carries an
    idcli record of its own size (a take renamed or copied), whose take that record says it is: where the reviewer
    looks next."""
    stem = lone_take_mask(path) if what == NOT_A_TAKE else None  # a delivery holds no masks: not one of its words
    problem = (lone_mask_problem(path, stem) if stem else
               f"{what}, so nothing checks where it came from: added, renamed or edited outside idcli?")
    take = recorded_take(path)
    return f"{problem} {OWN_RECORD_IS} {take}" if take else problem


def recorded_take(path: Path) -> str | None:
    """``SHOT take N's (SHOT/SHOT_tN.png)`` from a PNG's own record, or None when it carries none naming a take."""
    from .provenance import read_png_record

    if path.suffix.lower() != ".png":
        return None
    try:
        data = safeio.read_regular(path, MAX_IMAGE_BYTES, follow_links=False)
    except safeio.NotRegularFile:
        return None
    take = take_of_record(read_png_record(data))
    return f"{take_words(*take)}'s ({take_path(*take)})" if take else None


def take_of_record(record: object) -> tuple[str, int] | None:
    """(shot id, take) a record (an image's idcli chunk, a sidecar) names, or None when it names none by the names a
    shot list can give: a received file's record may say anything, and these words reach a terminal and a path."""
    from .shotlist import SAFE_ID

    if not isinstance(record, dict):
        return None
    shot, take = record.get("shot_id"), record.get("take")
    if not (isinstance(shot, str) and SAFE_ID.fullmatch(shot) and type(take) is int and take > 0):
        return None
    return shot, take


def take_words(shot: str, take: int) -> str:
    return f"{shot} take {take}"


def take_path(shot: str, take: int) -> str:
    """Where a take's image is, relative to the output folder."""
    return f"{shot}/{shot}_t{take}.png"
