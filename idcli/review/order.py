"""The shot list as the output folder remembers it: shot order, takes and durations.

Sidecars describe one image each; the order of the shots and their durations belong to the shot
list, and editing them must not re-render anything. Every render records the shot list it ran from in
the folder's run manifest, ``OUT/.idcli/shotlist.jsonl`` (store.py); its ``shots`` entry,
``[{id, takes, duration}]`` in shot-list order, is what the review commands read (or a shot list given
with ``--shots``). A manifest from before ``shots`` existed gives the order of its ``takes``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..option_words import Option


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
    # Where the shot list is now, when known (``--shots``, or the manifest's ``file_relpath``): ``source`` is
    # the text the render was given, relative to the render's cwd.
    path: Path | None = None
    # The (shot, take) pairs of a shot list given with ``--shots`` (with the takes retake rounds added for it, as
    # render would plan them): the takes that stand in review and export. None: the run manifest's (export.py,
    # ``standing_takes``), as for the order itself.
    takes: frozenset[tuple[str, int]] | None = None

    def index(self) -> dict[str, int]:
        return {shot.id: i for i, shot in enumerate(self.shots)}

    def get(self, shot_id: str) -> ShotEntry | None:
        return self._by_id.get(shot_id)

    @cached_property
    def _by_id(self) -> dict[str, ShotEntry]:
        # Built once: review looks every shot of a film up, and a scan per shot was quadratic in the shots.
        by_id: dict[str, ShotEntry] = {}
        for shot in self.shots:
            by_id.setdefault(shot.id, shot)  # the first of a repeated id, as the scan found it
        return by_id


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


def manifest_shots(loaded: Any) -> list[dict[str, Any]]:
    """The manifest's ``shots`` entry for a shot list."""
    return [{"id": s.id, "takes": s.takes, "duration": s.duration} for s in order_of(loaded).shots]


def read_order(out_dir: Path, shots_file: Path | None = None) -> ShotOrder | None:
    """The shot order of an output folder: from ``shots_file`` when given, else the run manifest the
    last render wrote; None when there is neither (the review then orders shots by id)."""
    from ..store import OutputStore

    manifest = OutputStore(Path(out_dir)).read_manifest()
    if shots_file is not None:
        from ..errors import ProjectMismatchError
        from ..shotlist import load_shotlist

        # Only the order, takes and durations are read: the selfies, packs and plates it names may well be
        # elsewhere (the editor's laptop has the renders and the shot list, not the cast's photos).
        loaded = load_shotlist(shots_file, check_files=False)
        order = order_of(loaded)
        rendered = manifest.get("project") if manifest else None
        if isinstance(rendered, str) and rendered and rendered != order.project:
            # as render refuses another project's folder: every shot would show as not rendered
            raise ProjectMismatchError(Option("shots_file", shots_file, flag="--shots"),
                                       f": project '{order.project}', but {out_dir} holds renders of project "
                                       f"'{rendered}'; give that project's shot list")
        from ..results import live_takes

        # Its takes stand, not the last render's: a shot it has that the folder's last shot list renamed keeps its
        # takes and select (kept on disk), where the manifest's takes made it a gap.
        takes = live_takes(Path(out_dir), loaded) or set()
        return replace(order, path=Path(shots_file).absolute(), takes=frozenset(takes))
    from ..recorded_paths import shotlist_file
    from ..shotlist import DEFAULT_DURATION, MAX_DURATION, check_safe_id

    if manifest is None:
        return None
    project, source = str(manifest.get("project") or ""), str(manifest.get("file") or "")
    try:
        if "shots" in manifest:
            shots = tuple(ShotEntry(str(s["id"]), int(s["takes"]), float(s["duration"])) for s in manifest["shots"])
        else:  # an older manifest: the order of its takes, default durations
            counts: dict[str, int] = {}
            for shot_id, _take in manifest.get("takes") or []:
                counts[str(shot_id)] = counts.get(str(shot_id), 0) + 1
            shots = tuple(ShotEntry(shot_id, n, DEFAULT_DURATION) for shot_id, n in counts.items())
        if not all(math.isfinite(s.duration) and 0 < s.duration <= MAX_DURATION for s in shots):
            raise ValueError("a duration no shot list can give")  # 1e308 s was an overflow in export
        # Names a shot list can give only: the project is an EDL's TITLE line and a newline in it wrote the
        # sender's events into the EDL; shot ids reach notes, slates and the terminal.
        for name in ([project] if project else []) + [s.id for s in shots]:
            check_safe_id(name)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InputError(f"{Path(out_dir) / '.idcli' / 'shotlist.jsonl'}: the shot list record is damaged; pass ",
                         Option("shots_file", "FILE", flag="--shots"),
                         " (or re-run idcli render, which rewrites it)") from None
    return ShotOrder(project, source, shots, shotlist_file(Path(out_dir), manifest))
