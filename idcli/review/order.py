"""The shot list as the output folder remembers it: shot order, takes and durations.

Sidecars describe one image each; the order of the shots and their durations belong to the shot
list, and editing them must not re-render anything. So every render run writes a snapshot,
``OUT/.idcli/shot-order`` (JSON), and the review commands read it (or a shot list given with ``--shots``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError

SNAPSHOT = ".idcli/shot-order"  # JSON; no .json suffix: OUT/*/*.json are the sidecars
SNAPSHOT_SCHEMA = 1
MAX_SNAPSHOT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ShotEntry:
    id: str
    takes: int
    duration: float  # seconds


@dataclass(frozen=True)
class ShotOrder:
    project: str
    source: str  # the shot list's path, or "" when unknown
    shots: tuple[ShotEntry, ...]

    def index(self) -> dict[str, int]:
        return {shot.id: i for i, shot in enumerate(self.shots)}

    def get(self, shot_id: str) -> ShotEntry | None:
        return next((s for s in self.shots if s.id == shot_id), None)


def order_of(loaded: Any) -> ShotOrder:
    """The order, takes and durations of a validated shot list (shotlist.LoadedShotList)."""
    from ..plan import take_count
    from ..shotlist import DEFAULT_DURATION

    doc = loaded.shotlist
    shots = []
    for shot in doc.shots:
        duration = shot.duration if shot.duration is not None else doc.defaults.duration
        shots.append(ShotEntry(shot.id, take_count(shot, doc.defaults),
                               float(duration if duration is not None else DEFAULT_DURATION)))
    return ShotOrder(doc.project, loaded.source, tuple(shots))


def snapshot_bytes(loaded: Any) -> bytes:
    order = order_of(loaded)
    data = {"schema": SNAPSHOT_SCHEMA, "project": order.project, "source": str(Path(order.source).resolve()),
            "sha256": loaded.raw_sha256,
            "shots": [{"id": s.id, "takes": s.takes, "duration": s.duration} for s in order.shots]}
    return (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def write_snapshot(store: Any, loaded: Any) -> None:
    """Write the snapshot into a store session's folder, unless it already holds exactly these bytes
    (most runs: no write, no fsync)."""
    from ..safeio import NotRegularFile, read_regular

    data = snapshot_bytes(loaded)
    try:
        if read_regular(store.path(SNAPSHOT), MAX_SNAPSHOT_BYTES, follow_links=False) == data:
            return
    except NotRegularFile:
        pass
    store.write(SNAPSHOT, data)


def read_order(out_dir: Path, shots_file: Path | None = None) -> ShotOrder | None:
    """The shot order of an output folder: from ``shots_file`` when given, else the snapshot the last
    render wrote; None when there is neither (the review then orders shots by id)."""
    if shots_file is not None:
        from ..shotlist import load_shotlist

        return order_of(load_shotlist(shots_file))
    from ..safeio import NotRegularFile, read_regular

    path = Path(out_dir) / SNAPSHOT
    try:
        raw = read_regular(path, MAX_SNAPSHOT_BYTES, follow_links=False)
    except NotRegularFile as exc:
        if exc.kind == "missing":
            return None
        raise InputError(f"{path}: cannot read the shot-order snapshot ({exc.kind}); pass --shots FILE") from None
    try:
        data = json.loads(raw.decode("utf-8"))
        shots = tuple(ShotEntry(str(s["id"]), int(s["takes"]), float(s["duration"])) for s in data["shots"])
        return ShotOrder(str(data.get("project", "")), str(data.get("source", "")), shots)
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        raise InputError(f"{path}: the shot-order snapshot is damaged; pass --shots FILE (or re-run "
                         "idcli render, which rewrites it)") from None
