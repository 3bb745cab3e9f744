"""What changed in the cut since the .otio an export replaces: the editor's change list for a re-export.

An editor who imported the last export needs to know what to refresh. A pick changed or a shot rendered since shows in
a diff of the EDL; a take re-rendered since (its prompt changed) does not: its still keeps its file name, so every
format names the same file and the editor's bin keeps showing the picture it imported. The .otio an export replaces
holds, per clip, the take, its job key and (since 2026-12-02) its image's sha256, so ``change_note`` compares the
earlier cut with the new one before the files land and says, shot by shot, what changed: a take that is another take
now, one re-rendered (a new image under the same file name), a shot rendered or no longer rendered, a shot's length,
shots new in the cut or gone from it, the order, the rate and the start. A file that is no idcli animatic (or cannot
be read) gives no note: nothing is known of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import printable

MAX_EARLIER = 64 * 1024 * 1024  # an idcli .otio of 999 shots is about 3 MB; a larger file is no idcli animatic
SHOWN = 10  # shots said by name, then a count


@dataclass(frozen=True)
class ShotCut:
    """One shot of a cut as the .otio holds it: the take shown (None: black), its job key and image hash, its length."""

    take: int | None
    job_key: str | None
    image_sha256: str | None
    frames: int
    selected: bool = False  # the director's pick, not the shot's default take


@dataclass(frozen=True)
class Cut:
    fps: float
    start: int  # the frame its record timecode starts at
    drop_frame: bool
    shots: dict[str, ShotCut]  # in the cut's order


def timeline_cut(timeline: Any) -> Cut | None:
    """The cut an idcli timeline holds (``export.build_timeline``'s, or one read back); None when it is no idcli
    animatic (no ``idcli`` metadata, a track that is not one of clips and gaps)."""
    import opentimelineio as otio

    meta = timeline.metadata.get("idcli")
    tracks = timeline.video_tracks()
    fps = meta.get("fps") if meta else None
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not fps > 0 or len(tracks) != 1:
        return None  # no idcli animatic, or one whose rate is damaged: nothing to compare against
    shots: dict[str, ShotCut] = {}
    for item in tracks[0]:
        frames = item.duration().to_frames()
        if isinstance(item, otio.schema.Gap):
            shots[item.name] = ShotCut(None, None, None, frames)
            continue
        clip = item.metadata.get("idcli") if isinstance(item, otio.schema.Clip) else None
        if not clip or not isinstance(clip.get("shot_id"), str):
            return None
        take = clip.get("take")
        shots[clip["shot_id"]] = ShotCut(take if isinstance(take, int) else None, _text(clip.get("job_key")),
                                         _text(clip.get("image_sha256")), frames, clip.get("selected") is True)
    start = timeline.global_start_time
    return Cut(float(fps), start.to_frames() if start is not None else 0,
               meta.get("drop_frame") is True, shots)


def earlier_cut(path: Path) -> Cut | None:
    """The cut of the .otio at ``path`` before this export replaces it; None when there is none or it is no idcli
    animatic (unreadable, damaged, another tool's)."""
    import opentimelineio as otio

    from ..safeio import NotRegularFile, read_regular

    try:
        data = read_regular(path, MAX_EARLIER)
    except NotRegularFile:  # none there (a first export), a folder, a device, too large: nothing to compare
        return None
    try:
        text = data.decode("utf-8")
        # Python's parser first, as a guard: OTIO's (rapidjson's, recursive) ran out of stack on 100,000 nested
        # brackets, a 200 KB file, and killed the export with a segmentation fault; Python's refuses such nesting
        # with RecursionError. An idcli animatic nests about a dozen deep.
        json.loads(text)
        timeline = otio.adapters.read_from_string(text, "otio_json")
        return timeline_cut(timeline) if isinstance(timeline, otio.schema.Timeline) else None
    except Exception:  # any file may stand there (damaged, another tool's): whatever OTIO's parser raises of it,
        return None  # it holds no cut of idcli's, and the export replaces it as before


def change_note(path: Path, earlier: Cut | None, timeline: Any) -> str | None:
    """The note of what changed between ``earlier`` (the cut of the file at ``path`` before the export) and the cut of
    ``timeline``; None when there was no earlier idcli cut there."""
    now = timeline_cut(timeline)
    if earlier is None or now is None:
        return None
    # escaped: a shot id read from the earlier file is anyone's words (the file may be a received folder's or a hand
    # edit), and a line break in one printed a line of its own, a forged ``idcli: error: …`` among them
    changes = [printable(change) for change in cut_changes(earlier, now)]
    if not changes:
        return f"{path}: the cut is as it was when this file was last written (no shot changed)"
    listed = "; ".join(changes[:SHOWN]) + (f"; and {len(changes) - SHOWN} more" if len(changes) > SHOWN else "")
    refresh = (" (a take re-rendered keeps its file name: refresh its still where the last export was imported)"
               if any("re-rendered" in change for change in changes) else "")
    return f"{path}: changed since this file was last written: {listed}{refresh}"


def cut_changes(earlier: Cut, now: Cut) -> list[str]:
    """What changed from ``earlier`` to ``now``, in words: the rate and start first, then shot by shot in the new
    cut's order, then the shots gone from it."""
    from .start_timecode import rate_words

    changes = []
    same_rate = abs(earlier.fps - now.fps) < 1e-9
    if not same_rate:
        changes.append(f"the rate is {rate_words(now.fps)} fps (was {rate_words(earlier.fps)}): every shot's frames "
                       "and timecode moved")
    elif earlier.start != now.start or earlier.drop_frame != now.drop_frame:
        changes.append(f"the cut starts at {_label(now)} (was {_label(earlier)}): every record timecode moved")
    kept = [shot for shot in now.shots if shot in earlier.shots]
    if kept != [shot for shot in earlier.shots if shot in now.shots]:
        changes.append("the shots' order changed")
    for shot_id, shot in now.shots.items():
        before = earlier.shots.get(shot_id)
        if before is None:
            changes.append(f"{shot_id} new in the cut" + (f" (take {shot.take})" if shot.take is not None
                                                          else " (not rendered: black)"))
            continue
        said = _shot_change(shot_id, before, shot)
        if said is not None:
            changes.append(said)
        if same_rate and before.frames != shot.frames:
            changes.append(f"{shot_id} {before.frames} → {shot.frames} frames")
    changes.extend(f"{shot_id} no longer in the cut" for shot_id in earlier.shots if shot_id not in now.shots)
    return changes


def _shot_change(shot_id: str, before: ShotCut, now: ShotCut) -> str | None:
    if before.take is None and now.take is None:
        return None
    if before.take is None:
        return f"{shot_id} rendered (was black): take {now.take}"
    if now.take is None:
        return f"{shot_id} no longer rendered (was take {before.take}): black"
    if before.take != now.take:
        why = " (picked)" if now.selected else " (its pick cleared)" if before.selected else ""
        return f"{shot_id} take {before.take} → take {now.take}{why}"
    new_image = (before.job_key != now.job_key
                 or (before.image_sha256 is not None and before.image_sha256 != now.image_sha256))
    return f"{shot_id} take {now.take} re-rendered (a new image under the same file name)" if new_image else None


def _label(cut: Cut) -> str:
    """Where ``cut`` starts, as its timecode labels it (a frame count at a rate without timecode)."""
    from opentimelineio.opentime import RationalTime

    from .start_timecode import timecode

    if RationalTime.is_valid_timecode_rate(cut.fps):
        try:
            return timecode(cut.start, cut.fps, cut.drop_frame)
        except ValueError:  # an earlier file edited by hand: a start before 00:00:00:00, drop frame at 24 fps
            pass  # (OTIO's to_timecode raised, a traceback in place of the export): its frame said instead
    return f"frame {cut.start}"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
