"""The animatic for editorial: an OpenTimelineIO timeline of the selected takes.

One video track; one clip per shot of the shot list, in its order, showing the shot's selected take
(the first take when none is selected) for the shot's ``duration`` (seconds, default 3, rounded to
whole frames at ``fps``, at least one frame); a shot with no render yet is a gap of its duration, so
the cut keeps its timing. Each clip's media is the take's PNG as a still held for the clip: an
``ExternalReference`` (OTIO's form for a held still) whose URL is relative to the .otio file and whose
available range is the clip's, so ``otiotool --verify-ranges`` says IN BOUNDS. Not an
``ImageSequenceReference``: OTIO's bundlers (otioz, otiod) skip those and its FCP XML adapter cannot
write them, and a tool scanning ``<shot>_t%d.png`` would play the other takes as frames. The clip's
metadata ``idcli`` holds the job key, prompt, seed, take, whether it was selected, the QA flags, and whether
random-weight test models made the image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, OutputError
from .runs import Run, Take

# The frame rates editorial works in: from 1 fps (a slide-show animatic) to 240 fps (high-speed capture).
# Outside them a clip's length is absurd: 1e-300 fps held each still for 1e300 seconds.
MIN_FPS, MAX_FPS = 1.0, 240.0


@dataclass
class ExportResult:
    path: Path
    clips: int
    gaps: list[str] = field(default_factory=list)  # shots without a render
    frames: int = 0
    problems: list[str] = field(default_factory=list)


def timeline_rate(fps: float) -> float:
    """The frame rate as editorial means it: ``23.976`` is NTSC film rate 24000/1001 (likewise 29.97,
    47.952, 59.94), the rate SMPTE timecode and OTIO's adapters know; other rates are kept as given."""
    import opentimelineio as otio

    RationalTime = otio.opentime.RationalTime
    if RationalTime.is_valid_timecode_rate(fps):
        return fps
    nearest = RationalTime.nearest_valid_timecode_rate(fps)
    return nearest if abs(nearest - fps) < 0.005 else fps


def shot_frames(duration: float, fps: float) -> int:
    """A duration in whole frames: rounded to the nearest frame, at least one."""
    return max(1, round(duration * fps))


def _relative_url(otio_dir: Path, target: Path) -> str:
    """``target`` as a URL relative to the folder of the .otio file, in OTIO's own form
    (``url_utils.url_from_filepath``: not percent-encoded, which ``otiotool --verify-media`` and the
    bundlers read as a path; ``url_utils.filepath_from_url`` reads both forms)."""
    from opentimelineio import url_utils

    return url_utils.url_from_filepath(Path(os.path.relpath(target.resolve(), otio_dir.resolve())).as_posix())


def _shot_list(run: Run, otio_path: Path) -> str | None:
    """The shot list, relative to the .otio file like ``output_folder`` (stable when the project moves);
    as the render was given it when idcli does not know where it is now (an older run manifest)."""
    if run.order is None:
        return None
    if run.order.path is not None:
        return _relative_url(otio_path.parent, run.order.path)
    return run.order.source or None


def build_timeline(run: Run, otio_path: Path, fps: float = 24.0) -> tuple[Any, ExportResult]:
    import opentimelineio as otio

    from ..shotlist import DEFAULT_DURATION

    RationalTime, TimeRange = otio.opentime.RationalTime, otio.opentime.TimeRange
    result = ExportResult(otio_path, 0, problems=list(run.problems))
    timeline = otio.schema.Timeline(name=run.project, global_start_time=RationalTime(0, fps))
    timeline.metadata["idcli"] = {"output_folder": _relative_url(otio_path.parent, run.root) + "/", "fps": fps,
                                  "shot_list": _shot_list(run, otio_path)}
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    shots = [s for s in run.shots if s.entry is not None] if run.order else run.shots
    for shot in shots:
        duration = shot.entry.duration if shot.entry else DEFAULT_DURATION
        frames = shot_frames(duration, fps)
        span = TimeRange(RationalTime(0, fps), RationalTime(frames, fps))
        take = shot.chosen
        result.frames += frames
        if take is None:
            track.append(otio.schema.Gap(name=shot.id, source_range=span))
            result.gaps.append(shot.id)
            continue
        reference = otio.schema.ExternalReference(  # a still, held for the whole clip
            target_url=_relative_url(otio_path.parent, run.root / take.image), available_range=span)
        reference.name = Path(take.image).name
        clip = otio.schema.Clip(name=shot.id, media_reference=reference, source_range=span)
        clip.metadata["idcli"] = _clip_metadata(take, shot.selected is take, duration)
        track.append(clip)
        result.clips += 1
    return timeline, result


def _clip_metadata(take: Take, selected: bool, duration: float) -> dict[str, Any]:
    return {"shot_id": take.shot_id, "take": take.take, "selected": selected, "job_key": take.job_key,
            "prompt": take.prompt, "seed": take.seed, "duration": duration, "image": take.image,
            "sidecar": take.sidecar, "qa_flags": take.flags, "random_weights": take.random_weights}


def export_otio(run: Run, otio_path: str | Path, fps: float = 24.0) -> ExportResult:
    """Write the animatic atomically to ``otio_path`` (a ``.otio`` file), making its folder if needed."""
    import opentimelineio as otio

    from ..store import atomic_write

    path = Path(otio_path)
    if path.suffix != ".otio":
        raise InputError(f"--otio {path}: give a file name ending in .otio")
    if not (MIN_FPS <= fps <= MAX_FPS):  # NaN fails both comparisons
        raise InputError(f"--fps {fps:g}: give a frame rate from {MIN_FPS:g} to {MAX_FPS:g} frames per second")
    if path.is_dir():
        raise InputError(f"--otio {path}: is a folder")
    if not run.takes:
        raise InputError(f"{run.root}: no committed renders to export")
    try:  # `--otio editorial/sc12.otio` into a folder not made yet, as `render --out` makes its own
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"--otio {path}: cannot make the folder {path.parent} ({exc.strerror or exc})") from None
    timeline, result = build_timeline(run, path, timeline_rate(fps))
    from ..safeio import remove_dead_temporaries

    remove_dead_temporaries(path.parent)  # an export killed mid-write left its temporary beside the .otio
    atomic_write(path, otio.adapters.write_to_string(timeline, "otio_json").encode("utf-8"))
    return result
