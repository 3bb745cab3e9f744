"""Orphans: images in an output folder of shots or takes that are no longer in the shot list.

A shot renamed from ``sc01_sh010`` to ``sc01_sh015``, or ``takes: 3`` lowered to 2, leaves images that
no render will touch again. They are kept (idcli deletes nothing), reported by ``plan`` and
``render``, and marked ``orphan: true`` — and left out by default — by ``read_results()``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .paths import absolute

Take = tuple[str, int]


def images_in(root: Path) -> list[tuple[str, int, str]]:
    """``(shot_id, take, image relpath)`` of every ``<shot>/<shot>_t<N>.png`` in the output folder.

    Folders starting with ``.`` (idcli's own state) and links are not entered.
    """
    found = []
    try:
        folders = [e for e in os.scandir(root) if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")]
    except OSError:
        return []
    for folder in sorted(folders, key=lambda e: e.name):
        pattern = re.compile(re.escape(folder.name) + r"_t([1-9]\d*)\.png")
        try:
            names = sorted(e.name for e in os.scandir(folder.path) if not e.name.startswith("."))
        except OSError:
            continue
        for name in names:
            match = pattern.fullmatch(name)
            if match:
                found.append((folder.name, int(match[1]), f"{folder.name}/{name}"))
    return found


def find_orphans(root: Path, live: Iterable[Take]) -> list[dict[str, Any]]:
    """Images of takes not in ``live`` (the shot list's ``(shot_id, take)`` pairs), in the contract's form."""
    root = Path(root)
    wanted = set(live)
    live_shots = {shot_id for shot_id, _take in wanted}  # one set: a scan of every take per orphan was quadratic
    orphans = []
    for shot_id, take, image in images_in(root):
        if (shot_id, take) in wanted:
            continue
        sidecar = image[: -len(".png")] + ".json"
        reason = "the shot is no longer in the shot list" if shot_id not in live_shots \
            else "the take is no longer in the shot list"
        orphans.append({"shot_id": shot_id, "take": take, "reason": reason,
                        "image": {"path": image, "abs_path": str(absolute(root) / image)},
                        "sidecar": {"path": sidecar, "abs_path": str(absolute(root) / sidecar)}
                        if (root / sidecar).is_file() else None})
    return orphans


def shotlist_takes(loaded: Any, added: dict[str, int] | None = None) -> list[Take]:
    """Every ``(shot_id, take)`` of a shot list (no planning: take counts come from the document, raised
    to ``added``'s count for shots that keep takes added by --retake-flagged, idcli/added_takes.py)."""
    from .plan import take_count

    doc = loaded.shotlist
    added = added or {}
    return [(shot.id, take) for shot in doc.shots
            for take in range(1, max(take_count(shot, doc.defaults), added.get(shot.id, 0)) + 1)]
