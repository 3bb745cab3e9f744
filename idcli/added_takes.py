"""Takes added by ``render --retake-flagged`` stay part of their shot's plan in that output folder.

A retake of a shot is take n+1 with the seed ``takes: n+1`` would give it (docs/review.md). The run
manifest (``OUT/.idcli/shotlist.jsonl``) records it without a field of its own: ``takes`` lists every
take the run planned, ``shots[].takes`` the shot list's own count, so a shot whose planned takes go past
its count carries added takes. Every later render, ``plan`` and ``read_results(shotlist=...)`` of the
folder plans them again (done ones are skipped; an interrupted retake round is finished), so a plain
render never turns a re-rolled take — perhaps the director's pick — into an orphan. They end when the
shot leaves the shot list or its ``takes`` drops below the count they were added to; raising it keeps them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def recorded_added_takes(manifest: dict[str, Any] | None) -> dict[str, tuple[int, int]]:
    """Shot id -> (the shot list's take count, the takes planned) for shots the manifest planned more of."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("shots"), list):
        return {}  # a manifest from before ``shots`` existed cannot tell added takes from the shot list's
    counts: dict[str, int] = {}
    for entry in manifest["shots"]:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str) and type(entry.get("takes")) is int:
            counts[entry["id"]] = entry["takes"]
    planned: dict[str, int] = {}
    for take in manifest.get("takes") or []:
        if isinstance(take, list) and len(take) == 2 and isinstance(take[0], str) and type(take[1]) is int:
            planned[take[0]] = max(planned.get(take[0], 0), take[1])
    return {shot: (counts[shot], n) for shot, n in planned.items() if shot in counts and n > counts[shot]}


def added_takes(out_dir: str | Path, loaded: Any) -> dict[str, int]:
    """Shot id -> take count for the shots of ``loaded`` that keep takes added in ``out_dir`` (for
    ``plan_shotlist(takes=...)``); empty when the folder has none, or holds another project's renders."""
    from .plan import take_count
    from .store import OutputStore

    root = Path(out_dir)
    manifest = OutputStore(root).read_manifest() if root.is_dir() else None
    doc = loaded.shotlist
    if manifest is None or manifest.get("project") != doc.project:
        return {}
    recorded = recorded_added_takes(manifest)
    kept = {}
    for shot in doc.shots:
        if shot.id in recorded:
            added_to, planned = recorded[shot.id]
            count = take_count(shot, doc.defaults)
            if added_to <= count < planned:
                kept[shot.id] = planned
    return kept


def merge_takes(*overrides: dict[str, int] | None) -> dict[str, int]:
    """Take-count overrides combined: each shot's largest."""
    merged: dict[str, int] = {}
    for override in overrides:
        for shot, count in (override or {}).items():
            merged[shot] = max(merged.get(shot, 0), count)
    return merged
