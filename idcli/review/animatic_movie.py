"""The animatic as a movie a director plays on a laptop: H.264, yuv420p, in MP4 (or QuickTime .mov), via PyAV.

It plays the timeline ``export.build_timeline`` makes for the .otio, item by item: a clip is its take's PNG
held for the clip's frames, a gap (a shot not rendered yet) a black slate naming the shot. Takes of different
sizes are letterboxed into one frame: the largest width and height among them, rounded up to even numbers
(yuv420p halves both for colour). The colour is converted and tagged BT.709, limited range, as QuickTime and
browsers expect of H.264. ``burn_in`` adds a band at the bottom with the shot id, take and timecode, and marks
a take made by random-weight test models (Pillow's default font: no font file shipped).

The movie starts at the cut's record timecode (``export --start``) as editors' tools read it: a QuickTime timecode
track (``tmcd``), which FFmpeg's mov/mp4 muxer writes from the video stream's ``timecode`` metadata (``;`` before the
frames sets its drop-frame flag). At a rate without SMPTE timecode (12 fps, say) the movie has none.

Deterministic: libx264 at a fixed thread count and fixed settings, no creation time in the file, so the same
output folder gives the same bytes. Each shot starts on a keyframe, so scrubbing lands on a shot's first
frame. The movie streams into a temporary beside the target, renamed with the export's other files once all are
complete (export_files.py); Ctrl-C or SIGTERM (``KeyboardInterrupt``, cli/output.py) removes it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..option_words import Option
from .export import ExportResult, build_timeline, rate_ratio
from .export_files import ExportFiles
from .runs import Run
from .start_timecode import timecode

CODEC_OPTIONS = {"crf": "18", "preset": "veryfast", "tune": "stillimage"}
ENCODER_THREADS = 4  # fixed: x264's output depends on its thread count, never on the machine's cores
SLATE_TEXT = (96, 96, 96)  # the slate's shot id: readable, the frame still reads as black
BURN_IN_TEXT = (235, 235, 235)
RANDOM_WEIGHTS_TEXT = (255, 200, 0)
MIN_FONT = 10  # pixels: the smallest the band's and the slate's text is drawn


def require_pyav() -> None:
    try:
        import av  # noqa: F401
    except ImportError:
        raise InputError(Option("movie"), " needs PyAV (its wheels bundle ffmpeg and libx264): "
                         "pip install 'idcli[movie]' (or pip install av)", field="movie") from None


def write_movie(run: Run, path: Path, fps: float, files: ExportFiles, *, burn_in: bool = False,
                drop_frame: bool = False, start: int = 0) -> ExportResult:
    """Encode the animatic for ``path`` (.mp4 or .mov) into a temporary of ``files``, which puts it in place with the
    export's other files (export_files.py); ``fps`` as ``export.timeline_rate`` gives it, ``drop_frame`` its
    timecode's (the timecode track's and the burn-in's, at 29.97 and 59.94; ``editorial_formats.check_drop_frame``),
    ``start`` the frame its first frame's timecode counts (start_timecode.py). An error writing it (PyAV's names no
    file) is the OutputError naming ``path``."""
    from opentimelineio.opentime import RationalTime

    from ..store import write_error

    timeline, result = build_timeline(run, path, fps)
    result.format = "movie"
    takes = {(take.shot_id, take.take): take for take in run.takes}
    shots = [_Shot.of(item, takes) for item in timeline.video_tracks()[0]]
    # No shot of the order rendered (an edited shot list): the slates take the size of the folder's takes.
    width, height = frame_size(run, [shot.take for shot in shots if shot.take is not None])
    start_label = timecode(start, fps, drop_frame) if RationalTime.is_valid_timecode_rate(fps) else None
    temporary = files.temporary(path)
    try:
        _encode(run, shots, temporary, path.suffix.lower().lstrip("."), fps, (width, height),
                drop_frame if burn_in else None, start, start_label)
    except OSError as exc:
        raise write_error(path, exc) from None
    return result


class _Shot:
    """One item of the timeline as the movie plays it: a take held for ``frames``, or a slate."""

    def __init__(self, shot_id: str, frames: int, take: Any = None) -> None:
        self.shot_id, self.frames, self.take = shot_id, frames, take

    @classmethod
    def of(cls, item: Any, takes: dict[tuple[str, int], Any]) -> _Shot:
        frames = item.duration().to_frames()
        meta = item.metadata.get("idcli")
        take = takes[(item.name, meta["take"])] if meta else None  # a Gap has no idcli metadata
        return cls(item.name, frames, take)


def _read_take(run: Run, take: Any) -> np.ndarray:
    """The take's pixels through the hardened reader (an unreadable file: ImageError, an InputError naming it), as
    sRGB: the movie is BT.709 (sRGB's primaries), so a take carrying a plate's profile is converted
    (idcli/display_colour.py); one without is used as it is."""
    from ..display_colour import file_rgb_profile, to_srgb
    from ..identity.images import load_take_rgb, read_image_file

    data = read_image_file(run.root / take.image)
    return to_srgb(load_take_rgb(run.root / take.image, data), file_rgb_profile(data))


def frame_size(run: Run, takes: list[Any]) -> tuple[int, int]:
    """The frame of the movie and of the FCP 7 XML's sequence: the largest width and height among ``takes`` (the
    cut's; none: the folder's, for a cut of slates alone), each rounded up to even (yuv420p); from the sidecars
    where they say it, else from the image."""
    sizes = []
    for take in takes or run.takes:
        if take.width and take.height:
            size = (take.width, take.height)
        else:
            rgb = _read_take(run, take)
            size = (rgb.shape[1], rgb.shape[0])
        check_take_size(run, take, size)
        sizes.append(size)
    width, height = max(s[0] for s in sizes), max(s[1] for s in sizes)
    return width + width % 2, height + height % 2


def check_take_size(run: Run, take: Any, size: tuple[int, int]) -> None:
    """Refuse a take larger than any idcli renders (InputError naming its sidecar). ``export_animatic`` runs it on
    the sizes the sidecars claim before the first file is written, ``frame_size`` on every size it takes."""
    from ..identity.images import MAX_IMAGE_PIXELS
    from ..plate_files import MAX_PLATE_SIDE

    # A sidecar edited to claim 16000x16000 (its image 256x256) had libx264 allocate for a 16000² movie: no
    # take is larger than a plate idcli reads (MAX_PLATE_SIDE a side, MAX_IMAGE_PIXELS in all).
    if max(size) > MAX_PLATE_SIDE or size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise InputError(f"{take.sidecar}: its image is {size[0]}x{size[1]}, larger than any take idcli renders "
                         f"(at most {MAX_PLATE_SIDE} pixels a side, {MAX_IMAGE_PIXELS:,} in all); the sidecar was "
                         "edited: render the take again or restore its sidecar", file=run.root / take.sidecar)


def letterbox(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``rgb`` scaled to fit ``size`` (width, height) keeping its aspect, centred on black."""
    from PIL import Image

    width, height = size
    h, w = rgb.shape[:2]
    if (w, h) != (width, height):
        scale = min(width / w, height / h)
        fitted = (max(1, round(w * scale)), max(1, round(h * scale)))
        if fitted != (w, h):
            rgb = np.asarray(Image.fromarray(rgb).resize(fitted, Image.Resampling.LANCZOS))
    canvas = np.zeros((height, width, 3), np.uint8)
    top, left = (height - rgb.shape[0]) // 2, (width - rgb.shape[1]) // 2
    canvas[top:top + rgb.shape[0], left:left + rgb.shape[1]] = rgb
    return canvas


def slate(shot_id: str, size: tuple[int, int]) -> np.ndarray:
    """A black frame naming the shot not rendered yet, in dark grey (inside the frame: ``fitted``)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, (0, 0, 0))
    draw = ImageDraw.Draw(image)
    font = band_font(min(size))
    text, font = fitted(shot_id, ": not rendered", font, size[0] - 2 * max(4, font.size // 2))
    draw.text((size[0] // 2, size[1] // 2), text, fill=SLATE_TEXT, font=font, anchor="mm")
    return np.asarray(image).copy()


def band_font(frame_side: int) -> Any:
    """The burn-in band's (and the slate's) font for frames whose shorter side is ``frame_side`` pixels: sized by
    the shorter side, so that a portrait frame (576 x 1024) gets the text a landscape one of its width would."""
    return _font(max(MIN_FONT, frame_side // 28))


@lru_cache(maxsize=64)
def _font(size: int) -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def fitted(head: str, tail: str, font: Any, room: float) -> tuple[str, Any]:
    """``head + tail`` as drawn within ``room`` pixels, and the font to draw it in: ``font`` where it fits, else the
    largest smaller font it fits in down to MIN_FONT, else at MIN_FONT with ``head`` (a shot id) cut in its middle
    to an ellipsis (its start, the scene, and its end, the shot, tell shots apart), ``tail`` (the take and the
    timecode; a slate's "not rendered") whole. A label wider than the frame lost its end: the timecode."""
    text = head + tail
    if font.getlength(text) <= room:
        return text, font
    size = max(MIN_FONT, min(font.size - 1, int(font.size * room / font.getlength(text))))
    while size > MIN_FONT and _font(size).getlength(text) > room:
        size -= 1
    smaller = _font(size)
    if smaller.getlength(text) <= room:
        return text, smaller
    return _cut_middle(head, size, room - smaller.getlength(tail)) + tail, smaller


@lru_cache(maxsize=256)
def _cut_middle(text: str, size: int, room: float) -> str:
    """``text`` cut in its middle to an ellipsis, to at most ``room`` pixels at font size ``size`` (cached: a shot's
    label is cut the same for each of its frames)."""
    font = _font(size)
    for keep in range(len(text) - 1, 0, -1):
        head = (keep + 1) // 2
        cut = text[:head] + "…" + text[len(text) - (keep - head):]
        if font.getlength(cut) <= room:
            return cut
    return "…"


def burn_in_band(width: int, text: str, warning: str | None, font: Any) -> np.ndarray:
    """A black band ``width`` wide holding ``text`` (and ``warning`` on its right, in amber; on a second line where
    the two do not fit side by side, so that it never covers the timecode), an even number of rows high (yuv420p
    halves them). ``text`` is the shot id, two spaces, then the take and the timecode: each line is ``fitted`` to
    the band's width in a smaller font, or with the shot id cut, where it is wider."""
    from PIL import Image, ImageDraw

    line_height = max(14, int(font.size * 1.6))
    line_height += line_height % 2
    margin = max(4, line_height // 3)
    shot_id, space, rest = text.partition("  ")
    text, text_font = fitted(shot_id, space + rest, font, width - 2 * margin)
    warning, warning_font = fitted(warning, "", font, width - 2 * margin) if warning else (None, font)
    two_lines = bool(warning) and text_font.getlength(text) + warning_font.getlength(warning) + 3 * margin > width
    band = Image.new("RGB", (width, line_height * (2 if two_lines else 1)), (0, 0, 0))
    draw = ImageDraw.Draw(band)
    draw.text((margin, line_height // 2), text, fill=BURN_IN_TEXT, font=text_font, anchor="lm")
    if warning:
        row = line_height + line_height // 2 if two_lines else line_height // 2
        draw.text((width - margin, row), warning, fill=RANDOM_WEIGHTS_TEXT, font=warning_font, anchor="rm")
    return np.asarray(band)


def _encode(run: Run, shots: list[_Shot], target: Path, container_format: str, fps: float,
            size: tuple[int, int], burn_in_drop_frame: bool | None, start: int = 0,
            start_label: str | None = None) -> None:
    """Encode ``shots`` into ``target``; ``burn_in_drop_frame`` None for no burn-in, else its timecode's kind, which
    counts from frame ``start``; ``start_label`` that frame's timecode, for the timecode track (None: no track)."""
    import av
    from av.video.reformatter import ColorRange

    rate = rate_ratio(fps)  # 23.976... -> 24000/1001, as export --json's fps_ratio says it
    burn_in = burn_in_drop_frame is not None
    font = band_font(min(size)) if burn_in else None
    with av.open(str(target), "w", format=container_format,
                 container_options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=rate, options=dict(CODEC_OPTIONS))
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        if start_label is not None:  # the muxer writes the tmcd track from it (module docstring)
            stream.metadata["timecode"] = start_label
        context = stream.codec_context
        context.thread_count = ENCODER_THREADS
        context.colorspace = context.color_primaries = context.color_trc = 1  # BT.709
        context.color_range = ColorRange.MPEG
        index = 0
        for shot in shots:
            base = slate(shot.shot_id, size) if shot.take is None else letterbox(_read_take(run, shot.take), size)
            still = yuv_frame(base)  # a held still: converted once
            label = f"{shot.shot_id}  " + ("not rendered" if shot.take is None else f"t{shot.take.take}")
            warning = "random-weight test models: not for review" if shot.take and shot.take.random_weights \
                else None
            banded = _BandedStill(still) if burn_in else None
            for frame_in_shot in range(shot.frames):
                if banded is not None:  # only the band changes from frame to frame: convert and write just the band
                    stamp = timecode(start + index, fps, bool(burn_in_drop_frame))
                    band = burn_in_band(size[0], f"{label}  {stamp}", warning, font)
                    banded.show(yuv_frame(band).to_ndarray())
                still.pts = index
                still.pict_type = av.video.frame.PictureType.I if frame_in_shot == 0 else \
                    av.video.frame.PictureType.NONE
                container.mux(stream.encode(still))
                index += 1
        container.mux(stream.encode(None))


class _BandedStill:
    """A shot's still (a yuv420p ``av.VideoFrame``) whose bottom rows show the burn-in band of the frame being
    encoded: each frame writes only the band's rows into the one frame handed to the encoder. That is safe because
    ``stream.encode`` returns only once the encoder asks for more input, so it has taken the frame sent, and
    libx264 copies a frame's pixels into a picture of its own as it takes it. Rows a taller band covered before are
    put back from the still (the text's width, and so whether the amber mark needs a second line, may change with
    the timecode's digits)."""

    def __init__(self, still: Any) -> None:
        self.planes = [_writable_plane(plane) for plane in still.planes]
        self.still_rows = [plane.copy() for plane in self.planes]
        self.covered = [0, 0, 0]  # rows at the bottom of each plane the last band wrote

    def show(self, band: np.ndarray) -> None:
        """Write ``band`` (yuv420p as PyAV's ``to_ndarray`` packs it) over the still's bottom rows."""
        for i, (target, source) in enumerate(zip(self.planes, yuv_planes(band), strict=True)):
            height, rows = len(target), min(len(source), len(target))
            if self.covered[i] > rows:
                uncovered = slice(height - self.covered[i], height - rows)
                target[uncovered] = self.still_rows[i][uncovered]
            target[height - rows:] = source[len(source) - rows:]
            self.covered[i] = rows


def _writable_plane(plane: Any) -> np.ndarray:
    """A writable view of one plane of a PyAV frame (its rows are ``line_size`` bytes apart, padding included)."""
    flat = np.frombuffer(plane, np.uint8)[:plane.height * plane.line_size]
    return flat.reshape(plane.height, plane.line_size)[:, :plane.width]


def yuv_planes(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y, U and V planes of a yuv420p frame as PyAV's ``to_ndarray`` packs it: an array of 3/2 × height
    rows, the Y plane's rows first, then the U and the V plane (each half as wide and half as high), flat."""
    rows, width = packed.shape
    height = rows * 2 // 3
    flat = packed.reshape(-1)
    luma, chroma = height * width, height * width // 4
    return (flat[:luma].reshape(height, width), flat[luma:luma + chroma].reshape(height // 2, width // 2),
            flat[luma + chroma:luma + 2 * chroma].reshape(height // 2, width // 2))


def yuv_frame(rgb: np.ndarray) -> Any:
    """RGB (full range) to BT.709 limited-range yuv420p, bit-exact (swscale's SIMD paths differ by CPU)."""
    import av
    from av.video.reformatter import ColorRange, Colorspace, Interpolation

    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    return frame.reformat(format="yuv420p", src_colorspace=Colorspace.ITU709, dst_colorspace=Colorspace.ITU709,
                          src_color_range=ColorRange.JPEG, dst_color_range=ColorRange.MPEG,
                          interpolation=Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.BITEXACT,
                          threads=1)
