"""A ``restore`` killed part-way, finished (superseded.py tells the whole protocol). A restore journals a
``restore-begin`` line naming the version it puts back, the name it moves the take at the final paths aside under and
its image's sha256, then renames, then journals ``restore``: killed at any instant, it leaves a take split between two
renames (an image without its sidecar, at the final paths or kept), or put back whole with no ``restore`` line. Its
rerun rejoins the halves (matched by sha256) and journals the line; a render that finds such an image at its final
path as its job's does the same (``rejoin_put_back``). Split from superseded.py."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import safeio
from .kept_files import (
    KEPT_NAME,
    SUPERSEDED,
    is_regular,
    key_label,
    move_file,
    recorded_image_sha256,
    scan_kept,
    take_key,
)
from .kept_versions import each_alone, list_superseded


@dataclass(frozen=True)
class BegunRestore:
    """A restore of a take that journalled its ``restore-begin`` line and never its ``restore`` line (killed)."""

    name: str  # the kept version it was putting back
    aside: str | None  # the name it was moving the take at the final paths aside under; None when none was there
    sha256: str | None  # the sha256 of the image it was putting back


def begun_restore(store: Any, shot: str, take: int) -> BegunRestore | None:
    """The restore of this take begun and never finished, from the journal's ``restore-begin`` line; None when none
    is pending. A line before 2026-12-01 named no ``aside`` and no ``sha256`` (None).

    Any later line of the take by another command overtakes it: what that command put at the final paths or moved
    aside is the take now, and the rerun restores as a fresh restore does. A render's ``reuse-begin`` counts once its
    image is at the final path (its ``sha256``): a render killed after it, before its ``commit`` line, left the reused
    take there, and the rerun finished the old restore over it; killed before the image, it wrote nothing there."""
    image = Path(store.root) / shot / f"{shot}_t{take}.png"
    for entry in store.journal_newest_first(mentioning=shot):
        if entry.get("shot_id") == shot and entry.get("take") == take and entry.get("event") in (
                "restore-begin", "restore", "commit", "supersede", "reuse", "reuse-begin"):
            if entry["event"] == "reuse-begin" and not (
                    isinstance(entry.get("sha256"), str) and safeio.sha256_regular(image) == entry["sha256"]):
                continue  # a render killed before its image: the take is as the restore left it
            name, aside, sha256 = entry.get("name"), entry.get("aside"), entry.get("sha256")
            if entry["event"] != "restore-begin" or not isinstance(name, str):
                return None
            return BegunRestore(name, aside if isinstance(aside, str) else None,
                                 sha256 if isinstance(sha256, str) else None)
    return None


def kept_sidecar_of(root: Path, shot_id: str, stem: str, image: Path) -> str | None:
    """The name of the version of take ``stem`` kept as a sidecar alone whose image is ``image``: where a restore
    killed after moving that version's image back, before its sidecar, left it; else None. A commit moving such an
    image aside made it ``NAME.2``, away from its sidecar: two halves, neither restorable nor reused. Matched by the
    image sha256 the sidecar records, else by the one the pending restore's ``restore-begin`` line recorded: a version
    retouched by hand (kept by ``render --force``) has other bytes than its sidecar records, the render's."""
    lone = [(name, item) for (_folder, name), item in scan_kept(root, stem, shot_id).items()
            if ".json" in item and ".png" not in item]
    have = safeio.sha256_regular(image) if lone else None
    if have is None:
        return None
    for name, item in lone:
        if recorded_image_sha256(Path(root) / item[".json"]) == have:
            return name
    from .store import OutputStore

    take = stem[len(shot_id) + 2:]  # stem is SHOT_tN
    begun = begun_restore(OutputStore(root), shot_id, int(take)) if take.isdigit() else None
    if begun is not None and begun.sha256 == have and any(name == begun.name for name, _item in lone):
        return begun.name
    return None


def finish_interrupted_restore(root: Path, shot: str, stem: str) -> tuple[str, str] | None:
    """Rejoin a take a restore killed between two renames left split (its lock held), before choosing anew.

    ``("aside", name)``: the take being moved aside had its image moved, not its sidecar: the sidecar joins it, and
    its mask when left too. ``("back", name)``: the version being restored had its image moved back, not its sidecar:
    the sidecar follows, and its mask when still kept (``kept_sidecar_of``: a version retouched by hand by the sha256
    its ``restore-begin`` line recorded).
    Pairs are matched by the image's sha256 in the sidecar; None when nothing was split.
    """
    image, sidecar, kept = root / shot / f"{stem}.png", root / shot / f"{stem}.json", root / SUPERSEDED / shot
    mask = root / shot / f"{stem}.mask.png"
    has_image, has_sidecar = is_regular(image), is_regular(sidecar)
    if has_image == has_sidecar:
        return None
    versions = list_superseded(root, stem, order_among=each_alone)
    if has_sidecar:  # an image kept without its sidecar, whose bytes the sidecar at the final path describes
        want = recorded_image_sha256(sidecar)
        for v in versions:
            if want and v.image and not v.sidecar and safeio.sha256_regular(root / v.image) == want:
                mask_follows(mask, kept / f"{v.name}.mask.png")  # killed before the mask: left, it was overwritten
                move_file(sidecar, kept / f"{v.name}.json")
                return "aside", v.name
        return None
    back = kept_sidecar_of(root, shot, stem, image)  # by its sidecar's sha256, or a retouch's by the restore's line
    if back is not None:
        mask_follows(kept / f"{back}.mask.png", mask)  # killed before the mask: it stayed kept alone for good
        move_file(kept / f"{back}.json", sidecar)
        return "back", back
    return None


def mask_follows(source: Path, target: Path) -> None:
    """Move a dual-line take's ``.mask.png`` to ``target`` beside its image, when a command killed between moving the
    image and the mask left it behind (``source``); never over a file already there (nothing is overwritten)."""
    if is_regular(source) and not os.path.lexists(target):
        move_file(source, target)


def rejoin_put_back(store: Any, shot: str, take: int) -> str | None:
    """Finish a restore killed after moving a kept version's image back, before its sidecar, for a render that finds
    that image at the final path as its job's (the shot edited back to that version: ``recoverable``): the version's
    own sidecar, kept alone (with its mask, when the kill came before that), moved back beside it and the restore's
    ``restore`` line journalled, as the restore's rerun does (``finish_interrupted_restore``); the version's name,
    or None when no kept sidecar is that image's or no restore of it is pending (the journal's ``restore-begin`` line,
    not followed by another of the take). Rebuilt from the PNG instead, the sidecar lost the render's facts (timing,
    batch, QA) and the kept one stayed alone for good, a version with no image."""
    root, stem = Path(store.root), f"{shot}_t{take}"
    image, sidecar = root / shot / f"{stem}.png", root / shot / f"{stem}.json"
    if is_regular(sidecar) or not is_regular(image):
        return None
    name = kept_sidecar_of(root, shot, stem, image)
    begun = begun_restore(store, shot, take) if name is not None else None
    if name is None or begun is None or begun.name != name:
        return None  # no restore of that version pending (its kept files' PNGs deleted by hand, say): rebuilt
    displaced = begun.aside if begun.aside is not None and any(
        kept == begun.aside for _, kept in scan_kept(root, stem, shot)) else None
    mask_follows(root / SUPERSEDED / shot / f"{name}.mask.png", root / shot / f"{stem}.mask.png")
    move_file(root / SUPERSEDED / shot / f"{name}.json", sidecar)
    store.journal({"event": "restore", "shot_id": shot, "take": take, "from": name, "moved_aside": displaced,
                   "finished": True})
    return name


def is_put_back(root: Path, shot: str, stem: str, begun: BegunRestore) -> bool:
    """Whether the take at the final paths is the version ``begun`` was putting back, all its files moved back (a kill
    after its last rename): nothing is kept under its name any more, the take's files carry the key its name was
    given (the sidecar's, else the PNG's: ``take_key``) and its image has the bytes the line recorded (a line before
    2026-12-01 recorded none). A later command that moved the take or put another back wrote its own line after it,
    so ``begun`` would not be pending."""
    match = KEPT_NAME.match(f"{begun.name}.png")
    image, sidecar = root / shot / f"{stem}.png", root / shot / f"{stem}.json"
    if match is None or match["stem"] != stem or not is_regular(image):
        return False
    if any(name == begun.name for _, name in scan_kept(root, stem)):
        return False  # still kept (in part): the killed run had not moved it all back
    if key_label(take_key(image, sidecar)) != match["key"]:
        return False
    return begun.sha256 is None or safeio.sha256_regular(image) == begun.sha256
