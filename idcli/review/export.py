"""The animatic for editorial: an OpenTimelineIO timeline of the selected takes.

One video track; one clip per shot of the shot list, in its order, showing the shot's selected take
(the first take when none is selected) for the shot's ``duration`` (seconds, default 3, in whole frames
at ``fps``, at least one frame: ``shot_frame_counts``); a shot with no render yet is a gap of its duration,
so the cut keeps its timing. Each clip's media is the take's PNG as a still held for the clip: an
``ExternalReference`` (OTIO's form for a held still) whose URL is relative to the .otio file and whose
available range is the clip's, so ``otiotool --verify-ranges`` says IN BOUNDS. Not an
``ImageSequenceReference``: OTIO's bundlers (otioz, otiod) skip those and its FCP XML adapter cannot
write them, and a tool scanning ``<shot>_t%d.png`` would play the other takes as frames. The clip's
metadata ``idcli`` holds the job key, prompt, seed, take, whether it was selected, the QA flags, and whether
random-weight test models made the image.

``export_animatic`` writes that one timeline in each format asked for: the .otio here, a CMX 3600 EDL and an
FCP 7 XML through OTIO's adapter plugins (editorial_formats.py), a playable movie through PyAV
(animatic_movie.py); every request is checked before the first file is written, and the files land together
(export_files.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..errors import InputError, OutputError
from ..option_words import Option
from ..shared_files import make_folders
from .media_urls import absolute_url, ascii_media_url, relative_media_url, relative_url
from .runs import Run, Shot, Take, default_take

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
    format: str = "otio"  # otio, edl, fcp_xml or movie
    notes: list[str] = field(default_factory=list)  # what the format could not hold
    start: str | None = None  # the record timecode of the first frame (None at a rate without timecode)


def timeline_rate(fps: float) -> float:
    """The frame rate as editorial means it: ``23.976`` is NTSC film rate 24000/1001 (likewise 29.97,
    47.952, 59.94), the rate SMPTE timecode and OTIO's adapters know; other rates are kept as given."""
    import opentimelineio as otio

    RationalTime = otio.opentime.RationalTime
    if RationalTime.is_valid_timecode_rate(fps):
        return fps
    nearest = RationalTime.nearest_valid_timecode_rate(fps)
    return nearest if abs(nearest - fps) < 0.005 else fps


def rate_ratio(rate: float) -> Fraction:
    """``rate`` (``timeline_rate``'s) as a ratio of whole numbers, as ffprobe writes it and the movie holds it:
    23.976... is 24000/1001, 25 is 25/1."""
    return Fraction(rate).limit_denominator(1001)


def shot_frame_counts(durations: list[float], fps: float) -> list[int]:
    """Each shot's length in whole frames at ``fps`` (``timeline_rate``'s), at least one: every shot starts at the
    frame nearest its start time in the shot list (a half frame rounds up), so the cut runs the list's running time
    to the nearest frame and each cut lands where a scratch track timed to the list has it. Rounding each duration
    on its own (until 2026-12-01) let the half frames add up: twelve 2.5 s shots at 25 fps, a 30 s spot, ran 744
    frames, not 750. Shots of one duration may differ by a frame (63, 62, 63... at 2.5 s and 25 fps).

    No shot is cut to less than its own whole frames (at least one): a shot under a frame (0.01 s) is shown for one,
    and the shots after it start that much later, the cut running longer than the list by those frames until later
    shots' rounding takes them back. Catching up at once (until 2026-12-01) took the frames from the next shots: after
    a hundred 0.01 s shots at 24 fps a 3 s shot lasted one frame. So each shot is within a frame of its own length.

    Exact arithmetic: a duration as written (``repr``: 0.7 is 7/10, whose 17.5 frames at 25 fps round up, not the
    float just below it, whose 17.4999... would round down), the rate as a ratio (24000/1001, as the movie's)."""
    rate = Fraction(fps).limit_denominator(1001)
    counts, elapsed, start = [], Fraction(0), 0
    for duration in durations:
        seconds = Fraction(repr(duration))
        elapsed += seconds
        end = max(start + max(1, math.floor(seconds * rate)), math.floor(elapsed * rate + Fraction(1, 2)))
        counts.append(end - start)
        start = end
    return counts


def cut_durations(shots: list[tuple[Shot, Take | None]]) -> list[float]:
    """The seconds each shot of a cut (``cut(run)``) lasts: its ``duration``, else the default."""
    from ..shotlist import DEFAULT_DURATION

    return [shot.entry.duration if shot.entry else DEFAULT_DURATION for shot, _take in shots]


def _shot_list(run: Run, otio_path: Path) -> str | None:
    """The shot list, relative to the .otio file like ``output_folder`` (stable when the project moves);
    as the render was given it when idcli does not know where it is now (an older run manifest)."""
    if run.order is None:
        return None
    if run.order.path is not None:
        return relative_url(otio_path.parent, run.order.path)
    return run.order.source or None


def build_timeline(run: Run, otio_path: Path, fps: float = 24.0, *, absolute_media: bool = False,
                   ascii_media: bool = False, timecode_rate: float | None = None, start: int = 0,
                   drop_frame: bool = False) -> tuple[Any, ExportResult]:
    """The animatic as an OTIO timeline, for ``otio_path`` (media URLs are relative to its folder).

    Every format is written from this one timeline. ``absolute_media``: media as absolute file URLs (FCP 7
    XML). ``ascii_media``: media as relative URLs in ASCII (``media_urls.ascii_media_url``: the EDL's ``* FROM CLIP:``).
    ``timecode_rate``: the rate its times are labelled in when it is not ``fps`` — a
    non-drop-frame EDL at 29.97 counts the same frames as 30 fps timecode; the frame counts always come from ``fps``.
    ``start``: the frame its record timecode starts at, its ``global_start_time`` (start_timecode.py), counted as
    drop-frame timecode or not as ``drop_frame`` says, which its metadata records (OTIO has no field for it).
    """
    import opentimelineio as otio

    RationalTime, TimeRange = otio.opentime.RationalTime, otio.opentime.TimeRange
    rate = timecode_rate or fps
    result = ExportResult(otio_path, 0, problems=list(run.problems))
    timeline = otio.schema.Timeline(name=run.project, global_start_time=RationalTime(start, rate))
    timeline.metadata["idcli"] = {"output_folder": relative_url(otio_path.parent, run.root) + "/", "fps": fps,
                                  "shot_list": _shot_list(run, otio_path), "drop_frame": drop_frame}
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    live = standing_takes(run)
    shots = cut(run, live)
    durations = cut_durations(shots)
    for (shot, take), duration, frames in zip(shots, durations, shot_frame_counts(durations, fps), strict=True):
        span = TimeRange(RationalTime(0, rate), RationalTime(frames, rate))
        result.frames += frames
        if take is None:
            track.append(otio.schema.Gap(name=shot.id, source_range=span))
            result.gaps.append(shot.id)
            continue
        image = run.root / take.image
        url = (absolute_url(image) if absolute_media else ascii_media_url(otio_path.parent, image) if ascii_media
               else relative_media_url(otio_path.parent, image))
        reference = otio.schema.ExternalReference(target_url=url, available_range=span)  # a still, held
        reference.name = Path(take.image).name
        clip = otio.schema.Clip(name=shot.id, media_reference=reference, source_range=span)
        clip.metadata["idcli"] = _clip_metadata(take, shown_select(shot, live) is take, duration)
        track.append(clip)
        result.clips += 1
    return timeline, result


def cut(run: Run, live: set[tuple[str, int]] | None = None) -> list[tuple[Shot, Take | None]]:
    """The animatic's shots in order (those of the shot list, when the folder knows it), each with the take its
    clip shows (``shown_take``; None: a gap): what every format and the checks before them read. ``live``:
    ``standing_takes(run)``, when the caller has read it already."""
    live = standing_takes(run) if live is None else live
    shots = [s for s in run.shots if s.entry is not None] if run.order else run.shots
    return [(shot, shown_take(shot, live)) for shot in shots]


def unpassed_notes(run: Run) -> list[str]:
    """The note ``deliver`` gives too (``qa_findings.unpassed_note``) for the shots of the cut shown with a take
    identity QA flagged, none of their takes passing and none picked; empty when there are none."""
    from .qa_findings import unpassed_note

    live = standing_takes(run)
    unpassed = [take for shot, take in cut(run, live) if take is not None and shot.picked_take is None
                and all(t.flags for t in cut_takes(shot, live))]
    if not unpassed:
        return []
    return [unpassed_note(unpassed, run.root, "shown in the animatic", "export", run.render_command)]


def cut_frames(shots: list[tuple[Shot, Take | None]], fps: float) -> int:
    """The length in frames at ``fps`` of a cut (``cut(run)``), gaps included, as ``build_timeline`` lays it out."""
    return sum(shot_frame_counts(cut_durations(shots), fps))


def standing_takes(run: Run) -> set[tuple[str, int]] | None:
    """The takes of the shot list the folder was last rendered from, as ``idcli select`` and ``deliver`` check them,
    or of the one given with ``--shots`` (ShotOrder.takes), whose order review and export follow: a take beyond its
    shot's ``takes:`` now (lowered since) is kept on disk, no part of the cut. None when the folder predates the run
    manifest's takes (every take counts)."""
    from ..results import live_takes

    if run.order is not None and run.order.takes is not None:
        return set(run.order.takes)
    return live_takes(run.root, None) if run.order is not None else None


def cut_takes(shot: Shot, live: set[tuple[str, int]] | None) -> list[Take]:
    """The shot's takes of the shot list (``live``: ``standing_takes``); all of them when it is unknown."""
    if live is None or shot.entry is None:
        return shot.takes
    return [t for t in shot.takes if (shot.id, t.take) in live]


def shown_select(shot: Shot, live: set[tuple[str, int]] | None) -> Take | None:
    """The take shown as the director's select (``pick_standing.select_shown``, as ``deliver`` sends it) among the
    shot list's takes: the take holding the image picked when the shot's takes shifted since the pick; None when
    the shot has no select among them."""
    from .pick_standing import select_shown

    return select_shown(shot, cut_takes(shot, live)).take


def shown_take(shot: Shot, live: set[tuple[str, int]] | None) -> Take | None:
    """The take a clip shows: the shot's select (``shown_select``) among the takes of the shot list, so that a select
    of a take beyond the shot's takes now (which the page marks "not pickable" and ``deliver`` refuses) never passes
    for the director's choice in the cut, nor a take re-rendered since the pick when another holds the picked image;
    then the shot's first take QA did not flag among them, as for no select (``default_take``)."""
    return shown_select(shot, live) or default_take(cut_takes(shot, live))


def _clip_metadata(take: Take, selected: bool, duration: float) -> dict[str, Any]:
    return {"shot_id": take.shot_id, "take": take.take, "selected": selected, "job_key": take.job_key,
            "prompt": take.prompt, "seed": take.seed, "duration": duration, "image": take.image,
            "sidecar": take.sidecar, "qa_flags": take.flags, "random_weights": take.random_weights,
            "image_sha256": take.image_sha256}


def export_otio(run: Run, otio_path: str | Path, fps: float = 24.0, start: str | None = None) -> ExportResult:
    """Write the animatic atomically to ``otio_path`` (a ``.otio`` file), making its folder if needed."""
    return export_animatic(run, otio=otio_path, fps=fps, start=start)[0]


# The formats in the order they are written, each with its option and the file name endings it takes.
FORMATS = {"otio": ("--otio", (".otio",)), "edl": ("--edl", (".edl",)), "fcp_xml": ("--fcp-xml", (".xml",)),
           "movie": ("--movie", (".mp4", ".mov"))}


def check_targets(*, otio: str | Path | None = None, edl: str | Path | None = None,
                  fcp_xml: str | Path | None = None, movie: str | Path | None = None, fps: float = 24.0
                  ) -> dict[str, Path]:
    """The files asked for, by format, checked without reading the run: at least one, each named as its format
    is, none a folder, no file named twice, a frame rate editorial uses (``export_animatic`` calls it; the CLI
    calls it first too, so a mistyped command is told before the output folder is read)."""
    given = {"otio": otio, "edl": edl, "fcp_xml": fcp_xml, "movie": movie}
    targets = {name: Path(value) for name, value in given.items() if value is not None}
    if not targets:
        raise InputError("give at least one file to write: ", Option("otio"), ", ", Option("edl"), ", ",
                         Option("fcp_xml"), " or ", Option("movie"))
    for name, path in targets.items():
        suffixes = FORMATS[name][1]
        if path.suffix.lower() not in suffixes:
            raise InputError(Option(name, path), f": give a file name ending in {' or '.join(suffixes)}", field=name)
        if path.is_dir():
            raise InputError(Option(name, path), ": is a folder", field=name)
    if len({p.resolve() for p in targets.values()}) < len(targets):
        raise InputError("the same file is named twice; give each format a file of its own")
    if isinstance(fps, bool) or not isinstance(fps, int | float):  # from Python: fps="24" failed in the comparison
        from ..arguments import shown

        raise InputError(f"fps={shown(fps)}: give the frame rate as a number", field="fps")
    if not (MIN_FPS <= fps <= MAX_FPS):  # NaN fails both comparisons
        raise InputError(Option("fps", fps), f": give a frame rate from {MIN_FPS:g} to {MAX_FPS:g} frames per second",
                         field="fps")
    return targets


def export_animatic(run: Run, *, otio: str | Path | None = None, edl: str | Path | None = None,
                    fcp_xml: str | Path | None = None, movie: str | Path | None = None, fps: float = 24.0,
                    drop_frame: bool | None = None, burn_in: bool = False, start: str | None = None
                    ) -> list[ExportResult]:
    """Write the animatic in each format given a path, from one timeline: an OTIO file, a CMX 3600 EDL, an FCP
    7 XML and a playable movie (docs/review.md). Every request is checked (names, frame rate, the adapters and
    PyAV installed) before the first file is written; the files land as one set, or none of them
    (export_files.py), their folders made if needed. ``drop_frame``: the timecode of the EDL, the FCP 7 XML and
    the movie (its timecode track and burn-in) at 29.97/59.94, and how the .otio's start frame is counted from
    ``start`` (default: drop frame there). ``burn_in``: the movie shows shot id, take and timecode. ``start``: the
    record timecode of the first frame in every format (default 01:00:00:00; start_timecode.py). Returns one result
    per file written, in the order above."""
    from ..arguments import check_bool, shown
    from .editorial_formats import check_drop_frame, edl_timeline, require_adapter, require_timecode_rate
    from .start_timecode import start_frame

    if not isinstance(run, Run):
        raise InputError(f"run={shown(run)}: give the output folder as idcli.review.runs.load_run(OUT) reads it",
                         field="run")
    targets = check_targets(otio=otio, edl=edl, fcp_xml=fcp_xml, movie=movie, fps=fps)
    check_bool("burn_in", burn_in)
    if drop_frame is not None and not isinstance(drop_frame, bool):
        raise InputError(f"drop_frame={shown(drop_frame)}: give True, False or None (drop frame at 29.97 and 59.94)",
                         field="drop_frame")
    # An option for a file not asked for would do nothing: said, not ignored.
    if burn_in and "movie" not in targets:
        raise InputError(Option("burn_in", True), " goes with ", Option("movie"), " (it marks the movie's frames)",
                         field="burn_in")
    if not run.takes:
        raise InputError(f"{run.root}: no committed renders to export")
    rate = timeline_rate(fps)
    for name in ("edl", "fcp_xml", "movie"):
        if name in targets and (burn_in or name != "movie"):
            require_timecode_rate(rate, Option(name), *((" ", Option("burn_in", True)) if name == "movie" else ()))
    if "edl" in targets:
        require_adapter("cmx_3600", Option("edl"))
    # The timecode of every format: the EDL's, the XML's and the burn-in's drop frame or not as asked; the .otio's
    # start is a frame count at the rate, counted from --start as that timecode counts (01:00:00;00 is frame 107892 at
    # 29.97, 01:00:00:00 non-drop 108000), so the .otio alone takes the choice too.
    drop_frame = check_drop_frame(rate, drop_frame)
    from opentimelineio.opentime import RationalTime

    has_timecode = RationalTime.is_valid_timecode_rate(rate)
    first = start_frame(start, rate, drop_frame, timecode_rate=has_timecode)
    shots = cut(run)  # for the checks before any file; each format lays out the same cut
    # The cut's timecode ends by 23:59:59:FF, where it wraps (start_timecode.py): every format carries it.
    if has_timecode:
        from .start_timecode import check_cut_fits

        check_cut_fits(first, cut_frames(shots, rate), start, rate, drop_frame)
    # The EDL's timeline is built here, once: its events are counted before any file is written, then written.
    edl_built = edl_timeline(run, targets["edl"], rate, drop_frame, first) if "edl" in targets else None
    if "fcp_xml" in targets:
        from .editorial_formats import refuse_black_only

        require_adapter("fcp_xml", Option("fcp_xml"))
        refuse_black_only(run, sum(take is not None for _shot, take in shots), len(shots), "fcp_xml",
                          targets["fcp_xml"])
    if "movie" in targets:
        from .animatic_movie import require_pyav

        require_pyav()
    if "movie" in targets or "fcp_xml" in targets:  # their frame size: a sidecar's claim refused before any file
        _check_claimed_sizes(run, shots, with_fallback="movie" in targets)
    # The files land as one set (export_files.py): the texts are built in memory, the movie is encoded (it reads every
    # take's pixels: a still cut short or damaged stops it), every file is written to a temporary beside it, and only
    # then are they renamed in, the earlier set put back if one cannot be. So a failure anywhere leaves the last
    # export's files whole, never the new cut's .otio, EDL or XML beside the last cut's movie or XML.
    from .export_files import ExportFiles

    texts = {name: _text(name, run, path, rate, drop_frame, edl_built, first)
             for name, path in targets.items() if name != "movie"}
    written: dict[str, ExportResult] = {}
    swept: set[Path] = set()
    with ExportFiles() as files:
        if "movie" in targets:
            from .animatic_movie import write_movie

            _make_folder("movie", targets["movie"], swept)
            written["movie"] = write_movie(run, targets["movie"], rate, files, burn_in=burn_in, drop_frame=drop_frame,
                                           start=first)
        for name, (text, result) in texts.items():
            _make_folder(name, targets[name], swept)
            files.write(targets[name], text.encode("ascii" if name == "edl" else "utf-8"))  # CMX 3600 is ASCII
            written[name] = result
        files.land()
    results = [written[name] for name in targets]  # in the order of FORMATS, as asked
    if has_timecode:  # said back to the editor, as each format labels it
        from .start_timecode import timecode

        label = timecode(first, rate, drop_frame)
        for result in results:
            result.start = label
    return results


def _check_claimed_sizes(run: Run, shots: list[tuple[Shot, Take | None]], *, with_fallback: bool) -> None:
    """The sizes the sidecars of the cut's takes (``shots``: ``cut(run)``) claim, checked as
    ``animatic_movie.frame_size`` checks them (the folder's takes for a movie of slates alone, ``with_fallback``), so
    that the refusal of an edited sidecar comes before the first file of the export is written."""
    from .animatic_movie import check_take_size

    takes = [take for _shot, take in shots if take is not None]
    for take in takes or (run.takes if with_fallback else []):
        if take.width and take.height:
            check_take_size(run, take, (take.width, take.height))


def _make_folder(name: str, path: Path, swept: set[Path]) -> None:
    """Make the folder of ``path`` (the file of format ``name``) when missing, and remove the temporaries an export
    killed mid-write left in it (once per folder: ``swept``)."""
    from ..safeio import remove_dead_temporaries

    try:  # `--otio editorial/sc12.otio` into a folder not made yet, as `render --out` makes its own
        make_folders(path.parent)  # group-writable in a folder a team shares (shared_files.py)
    except OSError as exc:
        raise OutputError(Option(name, path), f": cannot make the folder {path.parent} ({exc.strerror or exc})",
                          field=name) from None
    if path.parent not in swept:  # an export killed mid-write left its temporary beside the file
        remove_dead_temporaries(path.parent)
        swept.add(path.parent)


def _text(name: str, run: Run, path: Path, rate: float, drop_frame: bool,
          edl_built: tuple[Any, ExportResult] | None, start: int) -> tuple[str, ExportResult]:
    """The file of a text format (otio, edl or fcp_xml) for ``path``, built in memory; ``edl_built``: the EDL's
    timeline and result as ``editorial_formats.edl_timeline`` built them; ``start``: the first frame's record
    timecode as a frame count."""
    if name == "otio":
        import opentimelineio as otio

        from .export_changes import change_note, earlier_cut
        from .media_urls import check_read_back

        timeline, result = build_timeline(run, path, rate, start=start, drop_frame=drop_frame)
        check_read_back(timeline, run.root, "otio", path)  # OTIO's reader finds each still (media_urls.py)
        # The editor's change list: the cut the file holds now, before the export replaces it (export_changes.py).
        changes = change_note(path, earlier_cut(path), timeline)
        if changes is not None:
            result.notes.append(changes)
        return otio.adapters.write_to_string(timeline, "otio_json"), result
    if name == "edl":
        from .editorial_formats import edl_text

        assert edl_built is not None  # export_animatic built it with the checks
        timeline, result = edl_built
        return edl_text(timeline, result, drop_frame), result
    from .editorial_formats import fcp_xml_text

    return fcp_xml_text(run, path, rate, drop_frame, start)
