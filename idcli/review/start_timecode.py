"""The animatic's record timecode: where it starts (``export --start``, 01:00:00:00 unless told) and how a frame is
labelled.

An editor's sequence starts at 01:00:00:00 (Avid's and Resolve's default timeline start; the sample EDLs of the
Resolve and Final Cut Pro 7 manuals record from 01:00:00:00), leaving the hour before for bars, slate and countdown.
A cut recorded from 00:00:00:00 lands an hour early in such a sequence. Every format carries the same start: the
.otio's ``global_start_time``, the EDL's record timecode, the FCP 7 XML sequence's ``<timecode>``, the movie's
timecode track and its burn-in (docs/review.md).

The start is parsed by SMPTE 12M's own arithmetic (not OTIO's), at the export's rate and drop-frame choice: a
frame count, which each format labels as its timecode does. ``timecode`` is that label, the one the burn-in and the
export's report (``export --json``'s ``start``) show.

Timecode is a time of day: after 23:59:59:FF it wraps to 00:00:00:00. A cut that would end past that label (its
end: the frame after its last, the record out of its last EDL event) is refused (``check_cut_fits``), naming the
latest start that fits: an EDL event that wraps has its record out before its record in (OTIO's own EDL reader
refuses it) and the events after it go in at the start of the editor's sequence, before the first.
"""

from __future__ import annotations

import re

from ..errors import InputError, printable
from ..option_words import Option

DEFAULT_START = "01:00:00:00"
# The rates OTIO's RationalTime.is_valid_timecode_rate takes, as refusals name them.
TIMECODE_RATES = "23.976, 24, 25, 29.97, 30, 47.952, 48, 50, 59.94 and 60 fps"
_FORM = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})([:;])([0-9]{2})")  # ASCII digits: what timecode is


def rate_words(fps: float) -> str:
    """A rate as an editor writes it: 59.94, not 59.9401 (``export.timeline_rate``'s 60000/1001)."""
    return f"{round(fps, 3):g}"


def frames_words(count: int) -> str:
    return f"{count} frame{'' if count == 1 else 's'}"


def drop_frame_option(drop_frame: bool) -> Option:
    """``drop_frame`` as asked: ``drop_frame=False`` from Python, ``--non-drop-frame`` on the command line."""
    return Option("drop_frame", drop_frame, negated="--non-drop-frame")


def start_frame(given: str | None, fps: float, drop_frame: bool, *, timecode_rate: bool = True) -> int:
    """The frame the record timecode starts at: ``given`` (HH:MM:SS:FF; HH:MM:SS;FF when the export's timecode drops
    frames) at ``fps`` as ``export.timeline_rate`` gives it, else one hour in. ``timecode_rate``: whether SMPTE
    timecode exists at ``fps`` (an .otio at 12 fps has none to give: only the default, an hour of frames, applies)."""
    if given is None:
        if not timecode_rate:
            return round(3600 * fps)
        given = DEFAULT_START[:-3] + (";" if drop_frame else ":") + DEFAULT_START[-2:]
    if not isinstance(given, str):  # from Python: start=3600
        from ..arguments import shown

        raise InputError(f"start={shown(given)}: give the timecode as a string, e.g. {DEFAULT_START!r}",
                         field="start")
    if not timecode_rate:
        raise InputError(Option("start"), " at ", Option("fps", fps), f": timecode exists at {TIMECODE_RATES} only "
                         "(at another rate the timeline starts an hour in)", field="start")
    asked = Option("start", given)
    match = _FORM.fullmatch(given)
    if match is None:
        raise InputError(asked, f": give the timecode as HH:MM:SS:FF, e.g. {DEFAULT_START} "
                         "(HH:MM:SS;FF where the timecode drops frames, e.g. 01:00:00;00 at 29.97)", field="start")
    separator = match.group(4)
    hours, minutes, seconds, frames = (int(match.group(i)) for i in (1, 2, 3, 5))
    nominal = round(fps)
    if separator == ";" and not drop_frame:
        raise InputError(asked, f": the drop-frame form (;) at {rate_words(fps)} fps, whose timecode here does not "
                         "drop frames; give ", Option("start", given.replace(";", ":")), field="start")
    if separator == ":" and drop_frame:
        raise InputError(asked, f": at {rate_words(fps)} fps the export writes drop-frame timecode: give ",
                         Option("start", f"{given[:8]};{given[9:]}"), " (or ", drop_frame_option(False), ")",
                         field="start")
    if hours > 23:  # a timecode day: EDL and XML readers take no 24th hour
        raise InputError(asked, ": HH from 00 to 23", field="start")
    if not (minutes < 60 and seconds < 60):
        raise InputError(asked, ": MM and SS from 00 to 59", field="start")
    if frames >= nominal:
        raise InputError(asked, f": FF from 00 to {nominal - 1:02d} at {rate_words(fps)} fps", field="start")
    dropped = nominal // 15  # 2 labels a minute at 29.97, 4 at 59.94, but every tenth minute
    if drop_frame and seconds == 0 and frames < dropped and minutes % 10:
        raise InputError(asked, f": {printable(given)} does not exist in drop-frame timecode (it skips the first "
                         f"{dropped} frame labels of each minute but every tenth)", field="start")
    count = ((hours * 60 + minutes) * 60 + seconds) * nominal + frames
    if drop_frame:
        total_minutes = hours * 60 + minutes
        count -= dropped * (total_minutes - total_minutes // 10)
    return count


def timecode(frame_index: int, fps: float, drop_frame: bool) -> str:
    """The SMPTE timecode label of frame ``frame_index`` (``;`` before the frames when it drops frames), as OTIO's
    adapters label the EDL's and the XML's frames."""
    import opentimelineio as otio

    return otio.opentime.to_timecode(otio.opentime.RationalTime(frame_index, fps), fps, drop_frame)


def day_frames(fps: float, drop_frame: bool) -> int:
    """How many frames a timecode day labels, 00:00:00:00 to 23:59:59:FF, at ``fps`` (``export.timeline_rate``'s)."""
    nominal = round(fps)
    # drop frame skips nominal // 15 labels in 54 of an hour's 60 minutes (start_frame's arithmetic)
    return 24 * (3600 * nominal - (54 * (nominal // 15) if drop_frame else 0))


def check_cut_fits(first: int, frames: int, given: str | None, fps: float, drop_frame: bool) -> None:
    """Refuse a cut of ``frames`` starting at frame ``first`` (``given``: the --start asked, None for the default)
    whose end would be labelled past 23:59:59:FF (module doc), naming the latest start that fits. The end is the
    frame after the last, the record out of the cut's last EDL event: a cut whose last frame took the day's last
    label ended at the label after it, 00:00:00:00, an event ending before it starts."""
    day = day_frames(fps, drop_frame)
    if first + frames < day:
        return
    asked = ((Option("start", given),) if given is not None
             else (Option("start"), f" (default {timecode(first, fps, drop_frame)})"))
    last = timecode(day - 1, fps, drop_frame)
    length = f"{frames_words(frames)} ({frames / fps:.1f} s at {rate_words(fps)} fps)"
    if frames >= day:
        raise InputError(*asked, f": the cut runs {length}, longer than a timecode day (00:00:00:00 to {last}); "
                         "export a part of it (", Option("shots_file", "FILE", flag="--shots"), " with fewer shots)",
                         field="start")
    raise InputError(*asked, f": the cut runs {length} and would end past {last}, where timecode wraps to "
                     "00:00:00:00 (an EDL event would end before it starts, and the events after it go in before "
                     "the first); give ", Option("start", timecode(day - 1 - frames, fps, drop_frame)), " or earlier",
                     field="start")
