"""The animatic as Avid and Premiere import it: a CMX 3600 EDL and an FCP 7 XML, both written by OTIO's own
adapter plugins from the timeline ``export.build_timeline`` makes for the .otio.

OTIO moved its adapters out of core: ``otio-cmx3600-adapter`` (``cmx_3600``) and ``otio-fcp-adapter``
(``fcp_xml``), both in idcli's ``editorial`` extra. Each is looked up by name before anything is written, so a
missing one is one clear error naming the package, not a half-written set of files.

What each format can hold, and how the animatic is put into it (docs/review.md):

- **EDL** (CMX 3600): one event per rendered shot, named as an editor's bin names the still once the renders
  folder is imported into it: ``* FROM CLIP NAME:`` the PNG's file name (the clip name Resolve and Premiere give an
  imported file; Resolve conforms an EDL by clip name and source timecode while its reel-name assist is off, its
  default), source timecode from 00:00:00:00 (a still has none of its own), ``* FROM CLIP:`` the PNG's path relative
  to the EDL (OTIO's and Avid's media path; a relative path keeps the EDL valid wherever the project moves) in
  ASCII, as the .otio's URL with what is not ASCII percent-encoded (CMX 3600 is ASCII; ``media_urls.ascii_media_url``),
  ``* SOURCE FILE:`` the file name (Avid's remark for a file-based source, which pycmx reads) and ``* SHOT:`` the
  shot id. Reel ``AX`` (CMX 3600's auxiliary source, the convention for file-based media: an eight-character reel
  cannot name ``sc12_sh010_t2`` without truncating takes and shots onto one reel).
  Every shot of the cut is an event, in shot-list order: one not rendered yet is black (reel ``BL``, CMX 3600's
  black source) of its length with its shot id in a remark, so event N is the Nth shot whatever is rendered (a shot
  rendered later takes its own number, not the next shot's) and the EDL runs the cut's length. ``FCM:`` says drop
  or non-drop frame (the adapter does not write it). At most 999 events (three-digit event numbers).
- **FCP 7 XML** (Premiere, Resolve, FCP 7): one clip item per rendered shot named after the shot, its file
  named after the PNG with an absolute ``file://localhost/`` URL (the ``pathurl`` form of Apple's FCP 7 XML
  reference, and what FCP 7 and Premiere write themselves); a shot not rendered FCP 7's Slug generator (black) of
  its length, named ``sh040 (not rendered)``, so the track runs the whole cut as the EDL does. A file element says it
  holds video only: the adapter otherwise gives every file an audio channel, and a still has none; its timecode is
  drop frame or not as the sequence's (the adapter writes every file's NDF unless told). The
  sequence's format is the movie's frame size. Each clip item has one ``<rate>`` (the adapter writes it twice).

Both refuse a cut with no shot rendered, in the same words (``refuse_black_only``): each could hold it as black,
but an editor importing black alone has nothing to say why, and it is most likely the wrong folder or shot list.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..option_words import Option
from .export import ExportResult, build_timeline
from .media_urls import check_read_back
from .runs import Run
from .start_timecode import TIMECODE_RATES, drop_frame_option, rate_words

# Adapter name in OTIO's plugin manifest -> the PyPI package that provides it.
ADAPTER_PACKAGES = {"cmx_3600": "otio-cmx3600-adapter", "fcp_xml": "otio-fcp-adapter"}
EDL_MAX_EVENTS = 999  # CMX 3600 event numbers have three digits
# The NTSC rates with a drop-frame timecode (SMPTE 12M); at every other rate timecode counts frames plainly.
DROP_FRAME_RATES = (30000 / 1001, 60000 / 1001)


def require_adapter(name: str, option: Option) -> None:
    """Refuse ``option`` when OTIO has no adapter ``name`` installed, naming the package that provides it."""
    import opentimelineio as otio

    if name not in otio.adapters.available_adapter_names():
        package = ADAPTER_PACKAGES[name]
        raise InputError(option, f" needs OpenTimelineIO's {name} adapter, which is not installed: "
                         f"pip install 'idcli[editorial]' (or pip install {package})", field=option.name)



def drop_frame_rate(fps: float) -> bool:
    return any(abs(fps - rate) < 1e-6 for rate in DROP_FRAME_RATES)


def check_drop_frame(fps: float, drop_frame: bool | None) -> bool:
    """Whether the timecode of the EDL, the FCP 7 XML and the burn-in drops frames: as asked, else the broadcast
    convention (29.97 and 59.94 drop frame, which keeps timecode on the wall clock). Asking for it at another rate
    is refused."""
    if drop_frame and not drop_frame_rate(fps):
        raise InputError(drop_frame_option(True), f": drop-frame timecode exists only at 29.97 and 59.94 fps, not at "
                         f"{rate_words(fps)}", field="drop_frame")
    return drop_frame_rate(fps) if drop_frame is None else drop_frame


def require_timecode_rate(fps: float, *option: str | Option) -> None:
    """Refuse ``option`` (its words: text and ``Option``s) at a rate SMPTE timecode does not exist at (``fps`` as
    ``export.timeline_rate`` gives it): an EDL's and an FCP 7 XML's times and the movie's burn-in are timecode, and
    OTIO's timecode (which the adapters write with) knows only the broadcast and film rates; the .otio and a movie
    without burn-in take any rate."""
    import opentimelineio as otio

    if not otio.opentime.RationalTime.is_valid_timecode_rate(fps):
        raise InputError(*option, " at ", Option("fps", fps), f": timecode exists at {TIMECODE_RATES} only; give one "
                         "of them (", Option("otio"), ", and ", Option("movie"), " without ", Option("burn_in", True),
                         ", take any rate)", field="fps")


def edl_timeline(run: Run, edl_path: Path, fps: float, drop_frame: bool, start: int = 0
                 ) -> tuple[Any, ExportResult]:
    """The timeline the EDL is written from (``fps`` as ``export.timeline_rate`` gives it), built once per export
    and before any file of it is written: an EDL of no events, or of more than CMX 3600 numbers, is refused here.
    ``start``: the frame its record timecode starts at. ``edl_text`` writes it."""
    # Non-drop timecode at 29.97 labels frames as 30 fps timecode does: the same frame counts, labelled at the
    # nominal rate (the adapter's timecode would otherwise drop frames at every NTSC rate with a DF form).
    timecode_rate = float(round(fps)) if drop_frame_rate(fps) and not drop_frame else None
    timeline, result = build_timeline(run, edl_path, fps, ascii_media=True, timecode_rate=timecode_rate, start=start)
    result.format = "edl"
    _check_event_count(run, result, edl_path)
    _check_media_paths(timeline, edl_path)
    check_read_back(timeline, run.root, "edl", edl_path)  # OTIO's reader finds each still (media_urls.py)
    return timeline, result


def _check_media_paths(timeline: Any, edl_path: Path) -> None:
    """Refuse a still whose path from the EDL holds a line break or another unprintable character: the
    ``* FROM CLIP:`` line escapes only ``%``, ``#``, ``?`` and what is not ASCII (``media_urls.ascii_media_url``), so a
    newline in a folder's name (a received output folder is named by its sender) would end that line and start an
    event of the name's own. Checked on the path itself: U+2028, escaped there, is no folder name to pass on either."""
    from urllib.parse import unquote

    from ..errors import printable

    for clip in timeline.find_clips():
        path = unquote(clip.media_reference.target_url)
        if not path.isprintable():
            raise InputError(Option("edl", edl_path), f": the path from the EDL to {clip.media_reference.name}, "
                             f"{printable(path)}, holds a line break or control character, which an EDL line cannot "
                             "hold (the output folder's name?); rename the folder, or write ", Option("otio"), " or ",
                             Option("fcp_xml"), ", which escape it", field="edl")


# What an EDL or an FCP 7 XML of a cut with no shot rendered would hold: each format can hold black (CMX 3600's BL
# reel, FCP 7's Slug), so it is refused for what an editor importing it would expect, not for what it can hold.
_BLACK_ONLY = {"edl": "the EDL would hold no event but black",
               "fcp_xml": "the XML would hold nothing but slugs (black)"}


def refuse_black_only(run: Run, rendered: int, shots: int, name: str, path: Path) -> None:
    """Refuse the EDL or FCP 7 XML (``name``, written to ``path``) of a cut of ``shots`` shots none of which is
    ``rendered``: a sequence of black alone that an editor imports with nothing to say why, most likely the wrong
    folder or shot list. Both formats refuse it in the same words (until 2026-12-02 the XML wrote slugs alone and
    exited 0 where the EDL refused), naming how many rendered shots are no longer in the shot list when that is why;
    the .otio, the pipeline's own, keeps the gaps."""
    if rendered:
        return
    left = sum(1 for shot in run.shots if shot.takes and shot.entry is None) if run.order else 0
    why = f" ({left} rendered shot{' is' if left == 1 else 's are'} no longer in the shot list)" if left else ""
    raise InputError(Option(name, path), f": none of the shot list's {shots} shot(s) is rendered{why}, so "
                     f"{_BLACK_ONLY[name]}; render some shots first (or write ", Option("otio"),
                     " alone, which keeps the gaps)", field=name)


def _check_event_count(run: Run, result: ExportResult, edl_path: Path) -> None:
    events = result.clips + len(result.gaps)  # each shot of the cut, rendered or black (edl_text)
    refuse_black_only(run, result.clips, events, "edl", edl_path)
    if events > EDL_MAX_EVENTS:
        raise InputError(Option("edl", edl_path), f": {events} shots; a CMX 3600 EDL holds at most {EDL_MAX_EVENTS} "
                         "events. Write ", Option("fcp_xml"), " or ", Option("otio"), " for a cut this long",
                         field="edl")


def edl_text(timeline: Any, result: ExportResult, drop_frame: bool) -> str:
    """The animatic as CMX 3600 text, from the timeline ``edl_timeline`` built: a rendered shot an event of its still,
    one not rendered an event of black (module doc)."""
    import opentimelineio as otio

    for clip in timeline.find_clips():  # named as the editor's bin names the still imported into it (module doc)
        still, shot = clip.media_reference.name, clip.name
        clip.name = still
        clip.metadata["cmx_3600"] = {"reel": "AX", "comments": [f"SOURCE FILE: {still}", f"SHOT: {shot}"]}
    (track,) = timeline.video_tracks()
    # A gap would be a jump in record timecode and no event (OTIO's writer): the events after it would take its number,
    # renumbered when it is rendered, and a gap at the end would be left out. Black keeps the shot's place.
    for index, item in enumerate(list(track)):
        if isinstance(item, otio.schema.Gap):
            span = item.source_range
            black = otio.schema.Clip(name="", source_range=span, media_reference=otio.schema.GeneratorReference(
                generator_kind="black", available_range=span))  # no name: black is no clip in the editor's bin
            black.metadata["cmx_3600"] = {"reel": "BL", "comments": [f"SHOT: {item.name}", "NOT RENDERED"]}
            track[index] = black
    # The adapter writes record timecode from the track, not from global_start_time (OTIO issue #1385): the track
    # starts ``start`` frames before its first clip, as the adapter's own reader gives an EDL recorded from there.
    start = timeline.global_start_time
    track.source_range = otio.opentime.TimeRange(-start, track.available_range().duration)
    text = otio.adapters.write_to_string(timeline, "cmx_3600", style="avid")
    fcm = "FCM: DROP FRAME" if drop_frame else "FCM: NON-DROP FRAME"
    title, _, events = text.partition("\n\n")
    return f"{title}\n{fcm}\n\n{events}"


def fcp_xml_text(run: Run, xml_path: Path, fps: float, drop_frame: bool = False, start: int = 0
                 ) -> tuple[str, ExportResult]:
    """The animatic as FCP 7 XML (``xmeml``), media as absolute file URLs, the sequence's ``<timecode>`` from
    ``start`` (a frame count) labelled drop frame or not as ``drop_frame`` says."""
    import opentimelineio as otio

    from .animatic_movie import frame_size

    timeline, result = build_timeline(run, xml_path, fps, absolute_media=True, start=start)
    result.format = "fcp_xml"
    # The adapter writes the sequence's <timecode> from global_start_time, its label's form from this metadata.
    timeline.metadata["fcp_xml"] = {"timecode": {"displayformat": "DF" if drop_frame else "NDF"}}
    _slugs_for_gaps(timeline)
    takes = {(take.shot_id, take.take): take for take in run.takes}
    shown = []
    for clip in timeline.find_clips():
        if isinstance(clip.media_reference, otio.schema.GeneratorReference):
            continue  # a shot not rendered: its slug has no file
        take = takes[(clip.name, clip.metadata["idcli"]["take"])]
        clip.media_reference.metadata["fcp_xml"] = _still_file_metadata(take.width, take.height, drop_frame)
        shown.append(take)
    if shown:  # the sequence's frame: the movie's, not the importer's guess
        width, height = frame_size(run, shown)
        timeline.metadata["fcp_xml"]["media"] = {"video": {"format": {"samplecharacteristics": {
            "width": str(width), "height": str(height)}}}}
    return _one_rate_per_element(otio.adapters.write_to_string(timeline, "fcp_xml")), result


# FCP 7's Slug generator (black, no media), as Apple's FCP 7 XML names it; the adapter writes a generator item only
# when its effect's type, media type and category are given.
_SLUG_EFFECT = {"effecttype": "generator", "mediatype": "video", "effectcategory": "Matte"}


def _slugs_for_gaps(timeline: Any) -> None:
    """Each shot not rendered (a gap of the timeline) made FCP 7's Slug of its length, named after the shot: a gap
    is empty track time to the adapter, so one at the end was nothing at all and the track ended at the last rendered
    still, short of the cut the .otio and the EDL run (until 2026-12-02)."""
    import opentimelineio as otio

    (track,) = timeline.video_tracks()
    for index, item in enumerate(list(track)):
        if isinstance(item, otio.schema.Gap):
            span = item.source_range
            track[index] = otio.schema.Clip(
                name=f"{item.name} (not rendered)", source_range=span, media_reference=otio.schema.GeneratorReference(
                    name="Slug", generator_kind="slug", available_range=span,
                    metadata={"fcp_xml": dict(_SLUG_EFFECT)}))


# A <rate> block as the fcp_xml adapter pretty-prints it (minidom, four spaces a level), then the same block again.
_REPEATED_RATE = re.compile(r"(\n( *)<rate>\n\2    <timebase>[0-9]+</timebase>\n\2    <ntsc>(?:TRUE|FALSE)</ntsc>\n"
                            r"\2</rate>)\1")


def _one_rate_per_element(xml: str) -> str:
    """The adapter's FCP 7 XML with one ``<rate>`` per element: it writes each clip item's twice, alike (with the clip's
    name, and again with its timings; otio-fcp-adapter 1.0.0, its main branch too), where Apple's FCP 7 XML reference
    gives a clipitem one. The second, the same block at the same indent right after the first, is dropped."""
    return _REPEATED_RATE.sub(r"\1", xml)


def _still_file_metadata(width: int | None, height: int | None, drop_frame: bool) -> dict[str, Any]:
    """The ``<file>`` element's ``<media>``: video only, with the still's size where the sidecar has it; and its
    ``<timecode>`` (00:00:00:00, a still has none of its own) counted as the sequence's is: the adapter writes every
    file's NDF unless told, so a drop-frame sequence held files labelled non-drop (until 2026-12-02)."""
    video: dict[str, Any] = {}
    if width and height:
        video["samplecharacteristics"] = {"width": str(width), "height": str(height)}
    return {"media": {"video": video}, "timecode": {"displayformat": "DF" if drop_frame else "NDF"}}
