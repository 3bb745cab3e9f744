"""The animatic as editors open it: a CMX 3600 EDL and an FCP 7 XML written by OTIO's adapter plugins (read
back with the same adapters), and a playable H.264 movie (decoded back with PyAV)."""

from __future__ import annotations

import io
import json
import math
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse
from xml.etree import ElementTree

import numpy as np
import pytest
from review_helpers import SHOTS, cli
from text_search import search

otio = pytest.importorskip("opentimelineio")
pytest.importorskip("insightface", exc_type=ImportError)
pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")

# CMX 3600: event number, reel (up to 8), channel, transition, source in/out, record in/out
EVENT = re.compile(r"^(\d{3})  (\S{1,8}) +V +C {8}(\d\d:\d\d:\d\d[:;]\d\d) (\d\d:\d\d:\d\d[:;]\d\d) "
                   r"(\d\d:\d\d:\d\d[:;]\d\d) (\d\d:\d\d:\d\d[:;]\d\d)$")


@pytest.fixture
def out(review_run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "renders" / "out"
    shutil.copytree(review_run, target)
    return target



def images(out: Path) -> dict[str, Path]:
    """The take each shot shows (take 1: nothing is selected in these tests), by shot id."""
    return {shot: (out / shot / f"{shot}_t1.png").resolve() for shot in ("sh010", "sh020", "sh030")}


def stills(track: object) -> list:
    """The clips of an EDL read back with OTIO's adapter that show a still: not the black of a shot not rendered
    (reel BL, which the adapter reads as a clip of a black generator)."""
    return [clip for clip in track.find_clips()  # type: ignore[attr-defined]
            if isinstance(clip.media_reference, otio.schema.ExternalReference)]


MEDIA = {"still": "ExternalReference", "black": "GeneratorReference"}
MEDIA_OF = {reference: kind for kind, reference in MEDIA.items()}


def shot_list(tmp_path: Path, *, gap_second: bool = False, first_duration: float | None = None) -> Path:
    """The test shot list, edited: sh040 (never rendered) moved between sh010 and sh020, sh010 made longer."""
    text = SHOTS
    if first_duration is not None:
        text = text.replace("duration: 2.0", f"duration: {first_duration}")
    if gap_second:
        head, *blocks = text.split("  - id: ")
        blocks.insert(1, blocks.pop())
        text = head + "".join("  - id: " + block for block in blocks)
    path = tmp_path / "edited.yaml"
    path.write_text(text, "utf-8")
    return path


# -- EDL -----------------------------------------------------------------------------------------


def test_edl_reads_back_with_the_cmx_3600_adapter(out: Path, tmp_path: Path) -> None:
    target = tmp_path / "editorial" / "animatic.edl"
    result = cli("export", out, "--edl", target, "--fps", "25", "--shots", shot_list(tmp_path, gap_second=True))
    assert result.exit_code == 0, result.output
    timeline = otio.adapters.read_from_file(str(target), rate=25)
    (track,) = timeline.video_tracks()
    # sh040 is not rendered: an event of black of its 3 s, which the adapter reads back as a black generator's clip
    assert [type(item.media_reference).__name__ for item in track] == [MEDIA[kind] for kind in (
        "still", "black", "still", "still")]
    # each clip named after its still, as the editor's bin names it; the shot id in a remark
    assert [item.name for item in stills(track)] == ["sh010_t1.png", "sh020_t1.png", "sh030_t1.png"]
    assert [item.duration().to_frames() for item in track] == [50, 75, 38, 75]
    expected = images(out)
    for clip in stills(track):
        assert clip.metadata.get("cmx_3600", {}).get("reel") is None  # AX: the adapter keeps no AX reel
        url = clip.media_reference.target_url
        assert not url.startswith(("/", "file:"))  # relative to the EDL's folder
        shot = clip.metadata["cmx_3600"]["comments"][-1].removeprefix("SHOT: ")
        assert (target.parent / unquote(url)).resolve() == expected[shot]
    assert timeline.name == "review"


def edit_manifest_shots(out: Path, shots: list[dict]) -> None:
    """The shot list record as a render of an edited shot list leaves it (order, takes, durations)."""
    path = out / ".idcli" / "shotlist.jsonl"
    manifest = json.loads(path.read_text("utf-8"))
    manifest["shots"] = shots
    path.write_text(json.dumps(manifest) + "\n", "utf-8")


def test_each_shot_is_the_event_of_its_place_a_shot_not_rendered_black(out: Path, tmp_path: Path) -> None:
    """Editor's tour: a shot not rendered was a jump in record timecode and no event, so the events after it took its
    number: sh020 was event 002 while sh040 waited and 003 once sh040 was rendered, the re-exported EDL's numbers no
    longer those of the editor's notes and change list; and the shots after the last rendered one were left out, the
    EDL ending before the cut (a note said so) while the .otio, the XML and the movie ran it whole. Every shot of the
    cut is now an event, in shot-list order: one not rendered is black (reel BL, CMX 3600's black source) of its
    length, its shot id in a remark, so event N is the Nth shot whatever is rendered and the EDL runs the cut."""
    pycmx = pytest.importorskip("pycmx")
    shots = {shot["id"]: shot for shot in json.loads((out / ".idcli" / "shotlist.jsonl").read_text("utf-8"))["shots"]}
    # sh040 (3 s, never rendered) second, sh050 (1 s, not rendered) last
    edit_manifest_shots(out, [shots["sh010"], shots["sh040"], shots["sh020"], shots["sh030"],
                              {"id": "sh050", "takes": 1, "duration": 1.0}])
    target = tmp_path / "animatic.edl"
    result = cli("export", out, "--edl", target, "--fps", "24", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["notes"] == [] and "no event" not in result.stderr, result.output
    lines = target.read_text("ascii").splitlines()
    matched = [EVENT.match(line) for line in lines if line[:3].isdigit()]
    events = [e for e in matched if e]
    assert len(events) == len(matched) and [e.group(1) for e in events] == ["001", "002", "003", "004", "005"], lines
    assert [e.group(2) for e in events] == ["AX", "BL", "AX", "AX", "BL"]
    # record contiguous from 01:00:00:00 to the cut's end (2 + 3 + 1.5 + 3 + 1 s at 24 fps), sources from 0
    assert [(e.group(5), e.group(6)) for e in events] == [
        ("01:00:00:00", "01:00:02:00"), ("01:00:02:00", "01:00:05:00"), ("01:00:05:00", "01:00:06:12"),
        ("01:00:06:12", "01:00:09:12"), ("01:00:09:12", "01:00:10:12")]
    assert [(e.group(3), e.group(4)) for e in events][1::3] == [("00:00:00:00", "00:00:03:00"),
                                                               ("00:00:00:00", "00:00:01:00")]
    black = lines.index(next(line for line in lines if line.startswith("002")))
    assert lines[black + 1:black + 4] == ["* SHOT: sh040", "* NOT RENDERED", lines[black + 3]]
    assert lines[black + 3].startswith("003")  # no clip name or path: black is no file in the bin
    edits = [event.edits[0] for event in pycmx.parse_cmx3600(io.StringIO("\n".join(lines))).events]
    assert [(e.black, e.source) for e in edits] == [(False, "AX"), (True, "BL"), (False, "AX"), (False, "AX"),
                                                    (True, "BL")]
    (track,) = otio.adapters.read_from_file(str(target), rate=24).video_tracks()
    assert [type(item.media_reference).__name__ for item in track] == [
        "ExternalReference", "GeneratorReference", "ExternalReference", "ExternalReference", "GeneratorReference"]
    assert [item.duration().to_frames() for item in track] == [48, 72, 36, 72, 24]
    assert track.duration().to_frames() == 252  # the cut's length, as the .otio's


def test_an_edl_of_no_rendered_shot_is_refused_and_nothing_is_written(out: Path, tmp_path: Path) -> None:
    """Every rendered shot taken out of the shot list: the EDL would be a title and no event (an empty sequence
    in the editor, nothing to say why). Refused before any file of the export is written."""
    edit_manifest_shots(out, [{"id": "sh040", "takes": 1, "duration": 3.0}])
    edl, timeline = tmp_path / "animatic.edl", tmp_path / "animatic.otio"
    result = cli("export", out, "--otio", timeline, "--edl", edl, "--json")
    assert result.exit_code == 2, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is False and document["error"]["type"] == "InputError"
    assert "none of the shot list's 1 shot(s) is rendered (3 rendered shots are no longer in the shot list)" in \
        document["error"]["message"]  # why: the editor took them out, not "render some shots"
    assert "no event" in result.stderr
    assert not edl.exists() and not timeline.exists() and list(tmp_path.iterdir()) == [out.parent]
    assert cli("export", out, "--otio", timeline).exit_code == 0  # the .otio alone keeps the gap


def test_an_fcp_xml_of_no_rendered_shot_is_refused_as_the_edl_is(out: Path, tmp_path: Path) -> None:
    """Editor's tour: every rendered shot out of the shot list (the wrong --shots, the wrong folder) and `--edl`
    refused while `--fcp-xml` wrote a sequence of slugs alone and exited 0, which Premiere imports as a cut of black
    with nothing to say why. Both formats can hold black (CMX 3600's BL reel, FCP 7's Slug); a cut of nothing else is
    most likely a mistake, so both refuse it, in the same words, before any file of the export is written."""
    edit_manifest_shots(out, [{"id": "sh040", "takes": 1, "duration": 3.0}])
    xml, timeline = tmp_path / "animatic.xml", tmp_path / "animatic.otio"
    result = cli("export", out, "--otio", timeline, "--fcp-xml", xml, "--json")
    assert result.exit_code == 2, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is False and document["error"]["type"] == "InputError"
    message = document["error"]["message"]
    assert message.startswith(f"--fcp-xml {xml}: none of the shot list's 1 shot(s) is rendered (3 rendered shots are "
                              "no longer in the shot list)"), message
    # what it would have held, and what keeps the gaps: --otio alone, as it was in this very call
    assert "slug" in message and "(or write --otio alone, which keeps the gaps)" in message, message
    assert not xml.exists() and not timeline.exists() and list(tmp_path.iterdir()) == [out.parent]
    edl = cli("export", out, "--edl", tmp_path / "animatic.edl", "--json")
    edl_message = json.loads(edl.stdout)["error"]["message"]
    # one answer: the same refusal but for the option and what the format would have held
    assert edl.exit_code == 2 and edl_message.split(", so ")[0].split(": ", 1)[1] == \
        message.split(", so ")[0].split(": ", 1)[1], (edl_message, message)
    assert cli("export", out, "--otio", timeline).exit_code == 0  # the .otio alone keeps the gap


def test_the_edl_follows_the_cmx_3600_event_format(out: Path, tmp_path: Path) -> None:
    target = tmp_path / "animatic.edl"
    result = cli("export", out, "--edl", target, "--fps", "24")
    assert result.exit_code == 0, result.output
    # sh040, the last shot, is not rendered: black of its 3 s ends the EDL, which runs the whole cut
    assert "no event" not in result.stderr, result.stderr
    lines = target.read_text("utf-8").splitlines()
    assert lines[:3] == ["TITLE: review", "FCM: NON-DROP FRAME", ""]
    matched = [EVENT.match(line) for line in lines if line[:3].isdigit()]
    events = [e for e in matched if e]
    assert len(events) == len(matched) and [e.group(1) for e in events] == ["001", "002", "003", "004"], lines
    assert [e.group(2) for e in events] == ["AX", "AX", "AX", "BL"]
    # source held from 0 for the shot's frames; record contiguous from 01:00:00:00, the sequence start editors use
    # (2 s, 1.5 s, 3 s, and sh040's 3 s of black, at 24 fps)
    assert [(e.group(3), e.group(4)) for e in events] == [
        ("00:00:00:00", "00:00:02:00"), ("00:00:00:00", "00:00:01:12"), ("00:00:00:00", "00:00:03:00"),
        ("00:00:00:00", "00:00:03:00")]
    assert [(e.group(5), e.group(6)) for e in events] == [
        ("01:00:00:00", "01:00:02:00"), ("01:00:02:00", "01:00:03:12"), ("01:00:03:12", "01:00:06:12"),
        ("01:00:06:12", "01:00:09:12")]
    comments = [line for line in lines if line.startswith("*")]
    assert comments[:4] == ["* FROM CLIP NAME:  sh010_t1.png", "* FROM CLIP: renders/out/sh010/sh010_t1.png",
                            "* SOURCE FILE: sh010_t1.png", "* SHOT: sh010"]


def test_each_edl_event_names_the_still_an_editor_imports(out: Path, tmp_path: Path) -> None:
    """An editor imports the renders folder's PNGs into a bin (Resolve's media pool, Premiere's project): each becomes
    a clip named after its file, source timecode from 00:00:00:00. The EDL's events name the same: the clip name is
    the PNG's file name (Resolve matches clip names and source timecode when reel names are off, its default), a
    ``* SOURCE FILE:`` remark names the file as Avid writes it, ``* FROM CLIP:`` keeps its path for OTIO and Avid,
    and the shot id stays in a ``* SHOT:`` remark. Read back with pycmx and OTIO's adapter."""
    pycmx = pytest.importorskip("pycmx")
    target = tmp_path / "animatic.edl"
    assert cli("export", out, "--edl", target, "--fps", "24").exit_code == 0
    raw = target.read_bytes()
    assert raw.isascii() and max(len(line) for line in raw.splitlines()) <= 80
    expected = images(out)
    edits = [event.edits[0] for event in pycmx.parse_cmx3600(io.StringIO(raw.decode("ascii"))).events]
    assert [e.black for e in edits] == [False, False, False, True]  # sh040, not rendered: black
    edits = edits[:3]
    assert [(e.clip_name, e.source_file, e.source) for e in edits] == [
        (expected[shot].name, expected[shot].name, "AX") for shot in ("sh010", "sh020", "sh030")]
    assert {e.source_in for e in edits} == {"00:00:00:00"}  # a still's source timecode as a bin gives it
    lines = target.read_text("ascii").splitlines()
    event = lines[lines.index(next(line for line in lines if line.startswith("001"))):][:5]
    assert event[1:] == ["* FROM CLIP NAME:  sh010_t1.png", "* FROM CLIP: renders/out/sh010/sh010_t1.png",
                         "* SOURCE FILE: sh010_t1.png", "* SHOT: sh010"]
    (track,) = otio.adapters.read_from_file(str(target), rate=24).video_tracks()
    clips = stills(track)
    assert [clip.name for clip in clips] == [expected[shot].name for shot in ("sh010", "sh020", "sh030")]
    assert [list(clip.metadata["cmx_3600"]["comments"]) for clip in clips] == [
        [f"SOURCE FILE: {shot}_t1.png", f"SHOT: {shot}"] for shot in ("sh010", "sh020", "sh030")]
    assert [(target.parent / unquote(clip.media_reference.target_url)).resolve() for clip in clips] == [
        expected[shot] for shot in ("sh010", "sh020", "sh030")]


@pytest.mark.parametrize("folder", ["Renée", "Rene\u0301e"], ids=["composed", "decomposed"])
def test_the_edl_is_ascii_under_a_folder_with_accents_and_the_otio_and_xml_keep_the_name(
        out: Path, tmp_path: Path, folder: str) -> None:
    """CMX 3600 is ASCII, and EDL readers differ on anything else (Latin-1, a Windows code page, UTF-8). The EDL's
    ``* FROM CLIP:`` path held a folder's accented name as UTF-8 (``Renée/shot 1/…``; macOS spells it decomposed, an
    ``e`` and a combining accent), and a ``#`` or ``%`` unescaped. It now holds the path as the .otio's URL does,
    each non-ASCII character percent-encoded (its UTF-8 bytes, as RFC 3987 maps a name into a URI), which OTIO's
    adapter reads back as the media's URL and ``url_utils`` turns into the real path; the .otio and the FCP 7 XML
    keep the name itself."""
    pycmx = pytest.importorskip("pycmx")
    from opentimelineio import url_utils

    renders = tmp_path / folder / "shot #1"  # a '#' starts a URL's fragment: escaped, as in the .otio
    renders.parent.mkdir()
    out.rename(renders)
    edit = tmp_path / "editorial"
    edl, timeline_file, xml = edit / "cut.edl", edit / "cut.otio", edit / "cut.xml"
    result = cli("export", renders, "--edl", edl, "--otio", timeline_file, "--fcp-xml", xml, "--fps", "24")
    assert result.exit_code == 0, result.output
    raw = edl.read_bytes()
    assert raw.isascii(), [line for line in raw.splitlines() if not line.isascii()]
    escaped = "".join(c if c.isascii() else "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in folder)
    lines = raw.decode("ascii").splitlines()
    assert f"* FROM CLIP: ../{escaped}/shot %231/sh010/sh010_t1.png" in lines, lines
    expected = images(renders)
    shots = ("sh010", "sh020", "sh030")
    edits = [event.edits[0] for event in pycmx.parse_cmx3600(io.StringIO(raw.decode("ascii"))).events][:3]
    assert [(e.clip_name, e.source_file) for e in edits] == [(expected[s].name, expected[s].name) for s in shots]
    (track,) = otio.adapters.read_from_file(str(edl), rate=24).video_tracks()
    assert [(edit / url_utils.filepath_from_url(clip.media_reference.target_url)).resolve()
            for clip in stills(track)] == [expected[s] for s in shots]
    # The .otio (JSON, UTF-8) and the FCP 7 XML (a percent-encoded file URL) hold the name as it is.
    timeline = otio.adapters.read_from_file(str(timeline_file))
    urls = [clip.media_reference.target_url for clip in timeline.find_clips()]
    assert all(f"../{folder}/shot %231/" in url for url in urls), urls
    assert [(edit / url_utils.filepath_from_url(url)).resolve() for url in urls] == [expected[s] for s in shots]
    (xml_track,) = otio.adapters.read_from_file(str(xml)).video_tracks()
    assert [Path(unquote(urlparse(clip.media_reference.target_url).path)) for clip in stills(xml_track)] == [
        expected[s] for s in shots]


def test_a_path_longer_than_80_columns_is_written_whole_and_read_back_whole(out: Path, tmp_path: Path) -> None:
    """Renders three folders deep under long names: the ``* FROM CLIP:`` line runs past 80 columns. Written whole,
    neither cut (the path lost) nor wrapped (OTIO's reader takes the path from that one line: a continuation would
    be a remark of its own), as the readers at hand read it: OTIO's adapter gives the media's URL, pycmx the remark,
    each whole (docs/review.md, "A long path is written whole")."""
    pycmx = pytest.importorskip("pycmx")
    from opentimelineio import url_utils

    renders = tmp_path / "previs_sequence_0420_the_lighthouse" / "layout_pass_v012_approved" / "renders_out"
    renders.parent.mkdir(parents=True)
    out.rename(renders)
    edl = tmp_path / "editorial" / "cut.edl"
    assert cli("export", renders, "--edl", edl, "--fps", "24").exit_code == 0
    text = edl.read_text("ascii")
    long_lines = [line for line in text.splitlines() if len(line) > 80]
    assert long_lines and all(line.startswith("* FROM CLIP: ../") for line in long_lines), long_lines
    paths = [line.removeprefix("* FROM CLIP: ") for line in long_lines]
    (track,) = otio.adapters.read_from_string(text, "cmx_3600", rate=24).video_tracks()
    assert [clip.media_reference.target_url for clip in stills(track)] == paths
    assert [(edl.parent / url_utils.filepath_from_url(path)).resolve() for path in paths] == list(
        images(renders).values())
    remarks = [s.text for event in pycmx.parse_cmx3600(io.StringIO(text)).events for s in event.statements
               if type(s).__name__ == "StmtRemark" and s.text.startswith("FROM CLIP: ")]
    assert [remark.removeprefix("FROM CLIP: ") for remark in remarks] == paths


@pytest.mark.parametrize(("folder", "said"), [
    ("q 50%41", "(its url_utils decodes a media URL's escapes twice, so '%41' in a folder's name is read as 'A')"),
    ("c:x", "(its url_utils takes a name starting with a letter and ':', 'c:', for a Windows drive)")],
    ids=["percent-hex", "drive-like"])
def test_a_folder_name_otio_reads_as_another_path_is_refused_for_the_otio_and_the_edl(
        out: Path, tmp_path: Path, folder: str, said: str) -> None:
    """OTIO's ``url_utils.filepath_from_url`` (its bundlers', otiotool's) decodes a media URL's escapes twice, so
    ``q 50%41``, written ``q 50%2541``, was read ``q 50A`` (and unescaped it reads so too), and it takes ``c:x`` for a
    Windows drive, dropping the ``..`` before it: the .otio and the EDL were written exit 0 and pointed at no still,
    or at another folder's. No URL of such a name reads back, so both are refused before anything is written, naming
    the folder; the FCP 7 XML, an absolute file URL read once by the editing applications it is for, is written."""
    from opentimelineio import url_utils

    renders = tmp_path / folder / "sc01"
    renders.parent.mkdir()
    out.rename(renders)
    (tmp_path / "q 50A" / "sc01" / "sh010").mkdir(parents=True)  # where OTIO would look: another folder's
    edit = tmp_path / "editorial"
    for option, name in (("--otio", "cut.otio"), ("--edl", "cut.edl")):
        result = cli("export", renders, option, edit / name, "--fps", "24")
        assert result.exit_code == 2, result.output
        assert f"{option} {edit / name}: OpenTimelineIO reads the path from it to sh010_t1.png, " in result.stderr
        assert said in result.stderr and f"rename the folder {folder!r}" in result.stderr, result.stderr
        assert "Traceback" not in result.output
    assert not edit.exists()  # nothing written, its folder not made
    result = cli("export", renders, "--fcp-xml", edit / "cut.xml", "--fps", "24")
    assert result.exit_code == 0, result.output
    (track,) = otio.adapters.read_from_file(str(edit / "cut.xml")).video_tracks()
    assert [Path(unquote(urlparse(clip.media_reference.target_url).path)) for clip in stills(track)] == list(
        images(renders).values())
    # Written beside the renders, the path does not pass through the folder: read back as it is.
    beside = renders.parent / "cut.otio"
    assert cli("export", renders, "--otio", beside, "--fps", "24").exit_code == 0
    timeline = otio.adapters.read_from_file(str(beside))
    assert [(beside.parent / url_utils.filepath_from_url(clip.media_reference.target_url)).resolve()
            for clip in timeline.find_clips()] == list(images(renders).values())


def test_files_named_as_long_as_the_file_system_allows_are_written_and_written_over(out: Path, tmp_path: Path
                                                                                      ) -> None:
    """A file name of up to 255 bytes is one the file system takes: 120 Cyrillic letters and underscores (220 bytes in
    UTF-8), 250 ASCII letters. Each file of an export is written to a temporary named after it plus idcli's tag
    (``.NAME.PID-START.HEX.idcli-tmp``, 35 bytes more), which the file system refused: exit 5, `File name too long`,
    for a name it takes. The temporary's NAME is cut to fit; the files land, and land again over themselves."""
    edit = tmp_path / "editorial"
    names = {"--otio": "a" * 245 + ".otio", "--edl": "Сцена_" * 20 + ".edl", "--fcp-xml": "Кадр_" * 24 + ".xml"}
    assert all(200 < len(name.encode()) <= 255 for name in names.values())
    args = [arg for option, name in names.items() for arg in (option, edit / name)]
    for _ in range(2):  # the second lands over the first, its earlier files kept under temporaries meanwhile
        result = cli("export", out, *args, "--fps", "24")
        assert result.exit_code == 0, result.output
        assert sorted(path.name for path in edit.iterdir()) == sorted(names.values())
    assert len(otio.adapters.read_from_file(str(edit / names["--otio"])).find_clips()) == 3
    (track,) = otio.adapters.read_from_file(str(edit / names["--edl"]), rate=24).video_tracks()
    assert len(stills(track)) == 3


def test_a_folder_whose_name_holds_a_colon_is_no_urls_scheme(out: Path, tmp_path: Path) -> None:
    """A renders folder ``renders:v2`` (what macOS's Finder shows as ``renders/v2``) with the .otio and the EDL beside
    it: their relative URL ``renders:v2/sh010/…`` is, to every URL reader, the scheme ``renders`` and the path
    ``v2/sh010/…``; OTIO's url_utils read it so and missed every still. It is written ``./renders:v2/…`` (RFC 3986,
    section 4.2), which OTIO reads back as the still's path."""
    from opentimelineio import url_utils

    renders = tmp_path / "renders:v2"
    out.rename(renders)
    timeline_file, edl = tmp_path / "cut.otio", tmp_path / "cut.edl"
    result = cli("export", renders, "--otio", timeline_file, "--edl", edl, "--fps", "24")
    assert result.exit_code == 0, result.output
    expected = list(images(renders).values())
    timeline = otio.adapters.read_from_file(str(timeline_file))
    urls = [clip.media_reference.target_url for clip in timeline.find_clips()]
    assert all(url.startswith("./renders:v2/") for url in urls), urls
    assert [(tmp_path / url_utils.filepath_from_url(url)).resolve() for url in urls] == expected
    (track,) = otio.adapters.read_from_file(str(edl), rate=24).video_tracks()
    assert [(tmp_path / url_utils.filepath_from_url(clip.media_reference.target_url)).resolve()
            for clip in stills(track)] == expected


def smpte_frames(timecode: str, nominal: int, drop_frame: bool) -> int:
    """A timecode's frame count, by SMPTE 12M's own arithmetic (not OTIO's): drop frame skips the first two labels
    (four at 59.94) of every minute but each tenth."""
    hours, minutes, seconds, frames = (int(part) for part in re.split("[:;]", timecode))
    count = ((hours * 60 + minutes) * 60 + seconds) * nominal + frames
    if drop_frame:
        total_minutes = hours * 60 + minutes
        count -= nominal // 15 * (total_minutes - total_minutes // 10)
    return count


def test_an_independent_cmx_3600_reader_finds_the_edl_well_formed(out: Path, tmp_path: Path) -> None:
    # pycmx (not OTIO) reads the EDL as an editor's tool does: numbered cuts on reel AX, no statement it does not
    # know, each event's source as long as its record, records contiguous, the shot not rendered an event of black.
    pycmx = pytest.importorskip("pycmx")
    target = tmp_path / "animatic.edl"
    edited = shot_list(tmp_path, gap_second=True, first_duration=70)  # sh010 70 s: past a drop-frame minute
    assert cli("export", out, "--edl", target, "--fps", "29.97", "--shots", edited).exit_code == 0
    raw = target.read_bytes()
    assert raw.isascii() and b"\r" not in raw and max(len(line) for line in raw.splitlines()) <= 80
    edl = pycmx.parse_cmx3600(io.StringIO(raw.decode("ascii")))
    # the one statement it does not know: the blank line after the header, as Avid writes it too
    assert edl.title == "review" and [s.content.strip() for s in edl.unrecognized_statements] == [""]
    assert raw.splitlines()[1] == b"FCM: DROP FRAME"
    events = list(edl.events)
    assert [event.number for event in events] == [1, 2, 3, 4]
    # 70 s, 3 s (sh040, not rendered: black), 1.5 s, 3 s at 30000/1001, to the nearest frame
    expected = {"sh010": 2098, "sh040": 90, "sh020": 45, "sh030": 90}
    record_out = smpte_frames("01:00:00;00", 30, True)  # the sequence starts an hour in: 107892 frames
    for event, (shot, frames) in zip(events, expected.items(), strict=True):
        (edit,) = event.edits
        assert (edit.source, edit.clip_name, edit.transition.kind, edit.channels.video) == (
            ("BL", None, "C", True) if shot == "sh040" else ("AX", f"{shot}_t1.png", "C", True))
        source_in, source_out, record_in, out_frame = (smpte_frames(tc, 30, True) for tc in (
            edit.source_in, edit.source_out, edit.record_in, edit.record_out))
        assert (source_in, source_out - source_in, out_frame - record_in) == (0, frames, frames)
        assert record_in == record_out  # contiguous: sh040's 3 s of black between sh010 and sh020
        record_out = out_frame
        for timecode in (edit.source_out, edit.record_in, edit.record_out):  # no label drop frame skips
            _, minutes, seconds, frame = (int(part) for part in re.split("[:;]", timecode))
            assert not (seconds == 0 and frame < 2 and minutes % 10), timecode


def test_the_cut_runs_the_shot_lists_running_time_to_the_frame(out: Path, tmp_path: Path) -> None:
    """A 30 s spot of twelve 2.5 s shots at 25 fps is 750 frames, as the broadcaster counts it: each shot starts at
    the frame nearest its start time in the list. Rounding each 62.5-frame shot on its own to the even 62 (Python's
    round) ran 744 frames, the cut ending 6 frames early and every shot drifting off a scratch track timed to the
    list. Read back from the .otio and, with pycmx and OTIO's adapter, from the EDL's record timecode."""
    pycmx = pytest.importorskip("pycmx")
    rendered = {0: "sh010", 5: "sh020", 11: "sh030"}  # the others not rendered: gaps, as a cut in progress has
    edit_manifest_shots(out, [{"id": rendered.get(i, f"sh{i:02d}5"), "takes": 2, "duration": 2.5}
                              for i in range(12)])
    edit = tmp_path / "edit"
    result = cli("export", out, "--otio", edit / "a.otio", "--edl", edit / "a.edl", "--fps", "25", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["frames"] == 750
    (track,) = otio.adapters.read_from_file(str(edit / "a.otio")).video_tracks()
    assert [item.duration().to_frames() for item in track] == [63, 62] * 6  # cuts at 63, 125, 188, 250, ... 750
    assert track.duration().to_frames() == 750
    events = [event.edits[0] for event in pycmx.parse_cmx3600(io.StringIO((edit / "a.edl").read_text("ascii"))).events]
    assert len(events) == 12 and [i for i, e in enumerate(events) if not e.black] == list(rendered)
    events = [e for e in events if not e.black]  # the others black, each of its shot's frames
    assert [(e.record_in, e.record_out) for e in events] == [
        ("01:00:00:00", "01:00:02:13"), ("01:00:12:13", "01:00:15:00"), ("01:00:27:13", "01:00:30:00")]
    (edl_track,) = otio.adapters.read_from_file(str(edit / "a.edl"), rate=25).video_tracks()
    assert edl_track.range_of_child_at_index(len(edl_track) - 1).end_time_exclusive().to_frames() == 750


def test_shot_frames_add_up_to_the_running_time_over_a_long_list() -> None:
    """40 shots of 1.3 s at 24 fps (31.2 frames each) run 52 s, 1248 frames; rounded one by one they ran 1240. Each
    shot is within a frame of its own length. A duration is taken as written: 0.7 s at 25 fps is 17.5 frames, a tie
    (rounded up), not the float 0.7's 17.4999..."""
    from idcli.review.export import shot_frame_counts

    counts = shot_frame_counts([1.3] * 40, 24.0)
    assert sum(counts) == 1248 and set(counts) == {31, 32}
    assert shot_frame_counts([0.7], 25.0) == [18]
    assert shot_frame_counts([3.0] * 3, 24000 / 1001) == [72, 72, 72]  # 9 s at 23.976: 215.784 frames


def test_a_shot_shorter_than_a_frame_never_shortens_the_shots_after_it() -> None:
    """A shot under a frame (``duration: 0.01``) is shown for one frame, later than the list has it: the shots after
    it start that much later. Catching up at once took the frames from them: after a hundred 0.01 s shots at 24 fps
    (100 frames for a list's 24), a 3 s shot was one frame, a shot the director sees vanish from the cut. Each shot
    keeps at least its own whole frames; the cut runs longer than the list by the frames the short shots add, less
    what later shots' rounding takes back (a frame at most each, as any shot)."""
    from idcli.review.export import shot_frame_counts

    assert shot_frame_counts([0.01] * 100 + [3.0, 3.0], 24.0)[-2:] == [72, 72]
    assert shot_frame_counts([0.01, 0.01, 1.0], 24.0) == [1, 1, 24]
    assert shot_frame_counts([0.01, 2.5, 2.5, 2.5], 25.0) == [1, 62, 62, 63]  # back on the list's frames
    for durations, fps in (([0.01] * 7 + [1.3] * 9, 24.0), ([0.02, 0.7, 0.03, 2.5] * 5, 25.0),
                           ([0.001, 1.001] * 6, 24000 / 1001)):
        for seconds, frames in zip(durations, shot_frame_counts(durations, fps), strict=True):
            assert max(1, math.floor(seconds * fps)) <= frames <= math.ceil(seconds * fps), (seconds, frames)


@pytest.mark.parametrize(("fps", "flag", "fcm", "second_in"), [
    # sh010 lasts 70 s, past the first minute after the 01:00:00:00 start: drop-frame timecode skips labels there
    # and keeps to the clock
    ("23.976", None, "NON-DROP FRAME", "01:01:09:22"),  # 1678 frames counted 24 a second; no drop-frame form
    ("29.97", None, "DROP FRAME", "01:01:10;00"),  # 2098 frames: drop frame by default at 29.97
    ("29.97", "--non-drop-frame", "NON-DROP FRAME", "01:01:09:28"),  # the same 2098 frames, counted 30 a second
    ("59.94", "--drop-frame", "DROP FRAME", "01:01:10;00"),  # 4196 frames
])
def test_edl_timecode_at_ntsc_rates(out: Path, tmp_path: Path, fps: str, flag: str | None, fcm: str,
                                    second_in: str) -> None:
    target = tmp_path / "ntsc.edl"
    args = ["export", out, "--edl", target, "--fps", fps, "--shots", shot_list(tmp_path, first_duration=70)]
    result = cli(*args, *([flag] if flag else []))
    assert result.exit_code == 0, result.output
    text = target.read_text("utf-8")
    assert f"\nFCM: {fcm}\n" in text
    events = [EVENT.match(line) for line in text.splitlines() if line[:3].isdigit()]
    second = events[1]
    assert second and second.group(5) == second_in, text  # sh020's record in
    rate = {"23.976": 24000 / 1001, "29.97": 30000 / 1001, "59.94": 60000 / 1001}[fps]
    (track,) = otio.adapters.read_from_file(str(target), rate=rate).video_tracks()
    frames = [round(70 * rate), round(1.5 * rate), round(3 * rate)]
    assert [clip.duration().to_frames() for clip in stills(track)] == frames


def test_an_edl_longer_than_cmx_3600_allows_is_refused(out: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import idcli.review.editorial_formats as formats

    monkeypatch.setattr(formats, "EDL_MAX_EVENTS", 2)  # 999 in CMX 3600; three clips here
    result = cli("export", out, "--edl", tmp_path / "a.edl")
    assert result.exit_code == 2 and "at most 2 events" in result.stderr and "--fcp-xml" in result.stderr
    assert not (tmp_path / "a.edl").exists()
    # checked before the first file is written, as every request is: the .otio (written first) is not left alone
    both = cli("export", out, "--otio", tmp_path / "a.otio", "--edl", tmp_path / "a.edl")
    assert both.exit_code == 2 and "at most 2 events" in both.stderr, both.output
    assert not (tmp_path / "a.otio").exists() and not (tmp_path / "a.edl").exists()


def test_drop_frame_is_refused_where_timecode_has_none(out: Path, tmp_path: Path) -> None:
    result = cli("export", out, "--edl", tmp_path / "a.edl", "--fps", "24", "--drop-frame")
    assert result.exit_code == 2 and "only at 29.97 and 59.94" in result.stderr, result.output
    assert not (tmp_path / "a.edl").exists()


@pytest.mark.parametrize("request_args", [("--edl", "a.edl"), ("--fcp-xml", "a.xml"),
                                          ("--movie", "a.mp4", "--burn-in")])
def test_timecode_at_a_rate_it_does_not_exist_is_refused(out: Path, tmp_path: Path,
                                                         request_args: tuple[str, ...]) -> None:
    """SMPTE timecode exists at 23.976, 24, 25, 29.97, 30, 47.952, 48, 50, 59.94 and 60 fps; at 12 (a common
    animatic rate, inside --fps's 1 to 240) the adapters' timecode raised ValueError: a traceback, exit 1."""
    option, name, *more = request_args
    result = cli("export", out, option, tmp_path / name, *more, "--fps", "12")
    assert result.exit_code == 2, result.output
    assert "timecode" in result.stderr and "23.976" in result.stderr and "--otio" in result.stderr, result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert list(tmp_path.iterdir()) == [tmp_path / "renders"]  # nothing written
    assert cli("export", out, "--otio", tmp_path / "a.otio", "--fps", "12").exit_code == 0  # no timecode in it


# -- FCP 7 XML -----------------------------------------------------------------------------------


def test_fcp_xml_reads_back_with_the_fcp_adapter(out: Path, tmp_path: Path) -> None:
    target = tmp_path / "for premiere" / "animatic.xml"
    result = cli("export", out, "--fcp-xml", target, "--fps", "23.976",
                 "--shots", shot_list(tmp_path, gap_second=True))
    assert result.exit_code == 0, result.output
    timeline = otio.adapters.read_from_file(str(target))
    (track,) = timeline.video_tracks()
    assert [MEDIA_OF[type(item.media_reference).__name__] for item in track] == ["still", "black", "still", "still"]
    assert [item.name for item in stills(track)] == ["sh010", "sh020", "sh030"]
    rate = 24000 / 1001
    assert [item.duration().to_frames() for item in track] == [round(2 * rate), round(3 * rate),
                                                               round(1.5 * rate), round(3 * rate)]
    assert all(abs(item.duration().rate - rate) < 1e-9 for item in track)
    expected = images(out)
    for clip in stills(track):
        reference = clip.media_reference
        assert reference.name == expected[clip.name].name
        parsed = urlparse(reference.target_url)  # absolute, as Premiere links it
        assert (parsed.scheme, parsed.netloc) == ("file", "localhost")
        assert Path(unquote(parsed.path)) == expected[clip.name]
    text = target.read_text("utf-8")
    assert "<timebase>24</timebase>" in text and "<ntsc>TRUE</ntsc>" in text
    files = ElementTree.fromstring(text).findall(".//file[pathurl]")
    assert len(files) == 3
    assert all(f.find("media/audio") is None for f in files)  # a still has no sound: no file claims a channel
    assert [(f.findtext("media/video/samplecharacteristics/width"), f.findtext("media/video/samplecharacteristics/"
             "height")) for f in files] == [("512", "256"), ("256", "256"), ("256", "256")]
    sequence_format = ElementTree.fromstring(text).find(".//sequence/media/video/format/samplecharacteristics")
    assert sequence_format is not None, text
    assert (sequence_format.findtext("width"), sequence_format.findtext("height")) == ("512", "256")


@pytest.mark.parametrize("gap_second", [False, True], ids=["last-shot-not-rendered", "second-shot-not-rendered"])
def test_a_shot_not_rendered_is_a_slug_in_the_fcp_xml_so_the_cut_keeps_its_length(out: Path, tmp_path: Path,
                                                                                   gap_second: bool) -> None:
    """The FCP 7 XML left a shot not rendered out as empty track time: one between two clips kept its place, but one
    at the end was nothing at all, so the XML's track (read back with OTIO's adapter, as an importer reads it) ended
    at the last rendered still, 3 s short of the cut the .otio and the EDL run. Each shot not rendered is now FCP 7's
    Slug generator (black) of its length, named after the shot, as the EDL's black events are."""
    target = tmp_path / "cut.xml"
    result = cli("export", out, "--fcp-xml", target, "--otio", tmp_path / "cut.otio", "--fps", "25",
                 *(("--shots", shot_list(tmp_path, gap_second=True)) if gap_second else ()))
    assert result.exit_code == 0, result.output
    (track,) = otio.adapters.read_from_file(str(target)).video_tracks()
    (cut,) = otio.adapters.read_from_file(str(tmp_path / "cut.otio")).video_tracks()
    assert track.duration().to_frames() == cut.duration().to_frames() == 50 + 38 + 75 + 75
    kinds = [(item.name, type(item.media_reference).__name__) for item in track]
    slug = ("sh040 (not rendered)", "GeneratorReference")
    shown = [("sh010", "ExternalReference"), ("sh020", "ExternalReference"), ("sh030", "ExternalReference")]
    assert kinds == ([shown[0], slug, *shown[1:]] if gap_second else [*shown, slug])
    (black,) = [item for item in track if isinstance(item.media_reference, otio.schema.GeneratorReference)]
    assert black.media_reference.generator_kind == "slug" and black.duration().to_frames() == 75
    element = ElementTree.parse(target).getroot().find(".//generatoritem")
    assert element is not None and element.findtext("effect/effecttype") == "generator"
    assert len(element.findall("rate")) == 1  # one <rate>, as every clip item has


def test_all_formats_at_once_come_from_one_timeline(out: Path, tmp_path: Path) -> None:
    edit = tmp_path / "edit"
    result = cli("export", out, "--otio", edit / "a.otio", "--edl", edit / "a.edl", "--fcp-xml", edit / "a.xml",
                 "--fps", "25", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is True and document["exit_code"] == 0 and document["error"] is None
    assert [f["format"] for f in document["files"]] == ["otio", "edl", "fcp_xml"]
    assert (document["clips"], document["frames"], document["gaps"]) == (3, 50 + 38 + 75 + 75, ["sh040"])
    assert document["start"] == "01:00:00:00"  # the record timecode every format starts at, said back
    said = cli("export", out, "--otio", edit / "b.otio", "--fps", "29.97", "--start", "00:59:30;00")
    assert said.exit_code == 0 and f"{edit / 'b.otio'}: 3 clips, " in said.stdout
    assert "fps from 00:59:30;00, 1 gap(s)" in said.stdout, said.stdout
    read = [otio.adapters.read_from_file(str(edit / "a.otio")),
            otio.adapters.read_from_file(str(edit / "a.edl"), rate=25),
            otio.adapters.read_from_file(str(edit / "a.xml"))]
    cuts = [[(c.name, c.duration().to_frames()) for c in t.find_clips()
             if isinstance(c.media_reference, otio.schema.ExternalReference)] for t in read]  # the EDL's sh040: black
    assert cuts[0] == cuts[2] == [("sh010", 50), ("sh020", 38), ("sh030", 75)]
    assert cuts[1] == [(f"{shot}_t1.png", frames) for shot, frames in cuts[0]]  # the EDL's clips: the stills' names
    media = [[Path(unquote(urlparse(c.media_reference.target_url).path)).name for c in t.find_clips()
              if isinstance(c.media_reference, otio.schema.ExternalReference)] for t in read]
    assert media[0] == media[1] == media[2] == ["sh010_t1.png", "sh020_t1.png", "sh030_t1.png"]


@pytest.mark.parametrize("fps", ["23.976", "25", "29.97"])
def test_each_fcp_xml_element_has_one_rate(out: Path, tmp_path: Path, fps: str) -> None:
    """Apple's FCP 7 XML reference gives a clipitem one ``<rate>`` (as a sequence, a file and a timecode have one):
    OTIO's fcp_xml adapter wrote two, alike, into every clip item (once with its name, once with its timings). One
    each now, the same rate as the sequence's; the adapter reads it back as before."""
    target = tmp_path / "animatic.xml"
    assert cli("export", out, "--fcp-xml", target, "--fps", fps).exit_code == 0
    root = ElementTree.fromstring(target.read_text("utf-8"))
    owners = [(element.tag, len(element.findall("rate"))) for element in root.iter()
              if element.find("rate") is not None]
    assert {tag for tag, _count in owners} == {"sequence", "clipitem", "generatoritem", "file", "timecode"}
    assert {count for _tag, count in owners} == {1}, owners
    def rate_of(element: ElementTree.Element) -> tuple[str | None, str | None]:
        return element.findtext("rate/timebase"), element.findtext("rate/ntsc")

    sequence = root.find(".//sequence")
    assert sequence is not None
    assert {rate_of(item) for item in [*root.iter("clipitem"), *root.iter("generatoritem")]} == {rate_of(sequence)}
    (track,) = otio.adapters.read_from_file(str(target)).video_tracks()
    rate = {"23.976": 24000 / 1001, "25": 25.0, "29.97": 30000 / 1001}[fps]
    assert [item.duration().to_frames() for item in stills(track)] == [round(2 * rate), round(1.5 * rate),
                                                                       round(3 * rate)]
    assert all(abs(item.duration().rate - rate) < 1e-9 for item in track)


def test_the_fcp_xml_sequence_is_the_movies_frame_where_a_sidecar_omits_the_size(out: Path, tmp_path: Path
                                                                                 ) -> None:
    """The sequence's format and the movie's frame are one function's answer: a take whose sidecar does not say
    its size (an older or edited sidecar) is measured from its image for both (the XML used to leave it out)."""
    from idcli.review.animatic_movie import frame_size
    from idcli.review.runs import load_run

    sidecar = out / "sh010" / "sh010_t1.json"  # the 512 x 256 take; the others are 256 x 256
    record = json.loads(sidecar.read_text("utf-8"))
    del record["image"]["width"], record["image"]["height"]
    sidecar.write_text(json.dumps(record), "utf-8")
    target = tmp_path / "animatic.xml"
    result = cli("export", out, "--fcp-xml", target)
    assert result.exit_code == 0, result.output
    sequence = ElementTree.fromstring(target.read_text("utf-8")).find(".//sequence/media/video/format/"
                                                                       "samplecharacteristics")
    assert sequence is not None
    run = load_run(out)
    assert (sequence.findtext("width"), sequence.findtext("height")) == ("512", "256")
    assert frame_size(run, [shot.chosen for shot in run.shots if shot.chosen]) == (512, 256)


def test_each_format_builds_its_timeline_once(out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One export builds one timeline per file it writes: the EDL's events are counted on the timeline the EDL is
    then written from (it used to be built a second time for the check)."""
    import idcli.review.editorial_formats as formats
    import idcli.review.export as export

    built: list[str] = []
    real = export.build_timeline

    def counted(run, path, *args, **kwargs):
        built.append(Path(path).suffix)
        return real(run, path, *args, **kwargs)

    monkeypatch.setattr(export, "build_timeline", counted)
    monkeypatch.setattr(formats, "build_timeline", counted)
    edit = tmp_path / "edit"
    assert cli("export", out, "--edl", edit / "a.edl").exit_code == 0
    assert built == [".edl"]
    built.clear()
    result = cli("export", out, "--otio", edit / "a.otio", "--edl", edit / "b.edl", "--fcp-xml", edit / "a.xml",
                 "--fps", "29.97", "--non-drop-frame")
    assert result.exit_code == 0, result.output
    assert sorted(built) == [".edl", ".otio", ".xml"]
    assert "FCM: NON-DROP FRAME" in (edit / "b.edl").read_text("utf-8")


def test_a_missing_adapter_is_named_and_nothing_is_written(out: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    names = otio.adapters.available_adapter_names()
    monkeypatch.setattr(otio.adapters, "available_adapter_names", lambda: [n for n in names if n != "cmx_3600"])
    result = cli("export", out, "--otio", tmp_path / "a.otio", "--edl", tmp_path / "a.edl")
    assert result.exit_code == 2, result.output
    assert "pip install 'idcli[editorial]'" in result.stderr and "otio-cmx3600-adapter" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "a.otio").exists() and not (tmp_path / "a.edl").exists()


def test_export_refuses_unclear_requests(out: Path, tmp_path: Path) -> None:
    nothing = cli("export", out)
    assert nothing.exit_code == 2 and "--otio, --edl, --fcp-xml or --movie" in nothing.stderr
    document = json.loads(cli("export", out, "--json").stdout)  # the --json contract on failure too
    assert (document["ok"], document["exit_code"], document["error"]["type"]) == (False, 2, "InputError")
    suffix = cli("export", out, "--edl", tmp_path / "a.txt")
    assert suffix.exit_code == 2 and "ending in .edl" in suffix.stderr
    twice = cli("export", out, "--fcp-xml", tmp_path / "a.xml", "--movie", tmp_path / "a.xml")
    assert twice.exit_code == 2
    assert list(tmp_path.iterdir()) == [tmp_path / "renders"]


@pytest.mark.parametrize(("args", "said"), [
    (("--otio", "a.otio", "--burn-in"), "--burn-in goes with --movie"),
    (("--otio", "a.otio", "--fps", "24", "--drop-frame"), "--drop-frame: drop-frame timecode exists only at 29.97"),
])
def test_an_option_for_a_format_not_asked_for_is_refused(out: Path, tmp_path: Path, args: tuple[str, ...],
                                                         said: str) -> None:
    """--burn-in without --movie did nothing without a word; drop frame where no timecode drops frames neither."""
    result = cli("export", out, *(tmp_path / a if a.startswith("a.") else a for a in args))
    assert result.exit_code == 2 and said in result.stderr, result.output
    assert list(tmp_path.iterdir()) == [tmp_path / "renders"]


@pytest.mark.parametrize(("fps", "start", "flag", "frames"), [
    ("29.97", "01:00:00:00", "--non-drop-frame", 108000),  # 01:00:00;00, drop frame, is frame 107892
    ("59.94", "00:59:30:00", "--non-drop-frame", 214200),
    ("29.97", "01:00:00;00", "--drop-frame", 107892),
])
def test_the_otio_alone_counts_its_start_as_the_timecode_asked(out: Path, tmp_path: Path, fps: str, start: str,
                                                               flag: str, frames: int) -> None:
    """Editor's tour: ``export OUT --otio cut.otio --fps 29.97 --start 01:00:00:00`` said ``give --start 01:00:00;00
    (or --non-drop-frame)``, and with ``--non-drop-frame`` that it ``goes with --edl, --fcp-xml or --movie (... the
    .otio has none to choose)``: a loop with no way out. But the .otio's start is a frame count, counted from the
    timecode as it drops frames or not: 01:00:00;00 is frame 107892 at 29.97, which a timeline at 29.97 non-drop
    (Resolve's default) labels 00:59:56:12. The .otio alone takes the choice now, and records it."""
    target = tmp_path / "a.otio"
    if flag == "--non-drop-frame":
        refused = cli("export", out, "--otio", target, "--fps", fps, "--start", start)
        assert refused.exit_code == 2 and f"(or {flag})" in refused.stderr, refused.output
    result = cli("export", out, "--otio", target, "--fps", fps, "--start", start, flag)
    assert result.exit_code == 0, result.output
    assert f"fps from {start}, " in result.stdout, result.stdout
    timeline = otio.adapters.read_from_file(str(target))
    rate = {"29.97": 30000 / 1001, "59.94": 60000 / 1001}[fps]
    assert timeline.global_start_time.to_frames() == frames
    assert otio.opentime.to_timecode(timeline.global_start_time, rate, flag == "--drop-frame") == start
    assert timeline.metadata["idcli"]["drop_frame"] is (flag == "--drop-frame")
    default = cli("export", out, "--otio", tmp_path / "b.otio", "--fps", fps)  # drop frame unless told, as before
    assert default.exit_code == 0, default.output
    held = otio.adapters.read_from_file(str(tmp_path / "b.otio"))  # held: its metadata dies with it
    assert held.metadata["idcli"]["drop_frame"] is True


@pytest.mark.parametrize(("arguments", "named"), [({"fps": "24"}, "fps="), ({"fps": True}, "fps="),
                                                ({"burn_in": "no"}, "burn_in="), ({"drop_frame": 1}, "drop_frame=")])
def test_export_animatic_from_python_checks_its_arguments(out: Path, tmp_path: Path, arguments: dict,
                                                          named: str) -> None:
    """``export_animatic(run, fps="24")`` was a TypeError traceback from a comparison; ``burn_in="no"`` burnt in."""
    import idcli
    from idcli.review.export import export_animatic
    from idcli.review.runs import load_run

    with pytest.raises(idcli.InputError, match=named):
        export_animatic(load_run(out), otio=tmp_path / "a.otio", **arguments)
    with pytest.raises(idcli.InputError, match=r"run=.*: give .*load_run"):  # was an AttributeError
        export_animatic(str(out), otio=tmp_path / "a.otio")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == [tmp_path / "renders"]


# -- the start timecode ------------------------------------------------------------------------------


def burn_in_texts(monkeypatch: pytest.MonkeyPatch, export, count: int = 2) -> list[str]:
    """The first ``count`` burn-in texts ``export()`` draws (the encode is stopped there: exit 130, no file)."""
    import idcli.review.animatic_movie as movie

    drawn, texts = movie.burn_in_band, []

    def record(width, text, warning, font):
        texts.append(text)
        if len(texts) >= count:
            raise KeyboardInterrupt
        return drawn(width, text, warning, font)

    with monkeypatch.context() as patch:
        patch.setattr(movie, "burn_in_band", record)
        assert export().exit_code == 130
    return texts


@pytest.mark.parametrize(("fps", "extra", "start", "frames"), [
    ("25", (), "01:00:00:00", 90000),  # the default: the industry's sequence start, one hour in
    ("29.97", (), "01:00:00;00", 107892),  # drop frame by default at 29.97: 01:00:00;00 is 107892 frames
    ("29.97", ("--non-drop-frame", "--start", "00:59:50:00"), "00:59:50:00", 107700),
    ("24", ("--start", "10:00:00:00"), "10:00:00:00", 864000),
])
def test_every_format_starts_at_the_same_record_timecode(out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         fps: str, extra: tuple[str, ...], start: str,
                                                         frames: int) -> None:
    """The record timecode of the .otio, the EDL (read with OTIO's adapter and with pycmx), the FCP 7 XML (read with
    OTIO's adapter) and the movie's burn-in starts where asked, 01:00:00:00 unless told: an editor's sequence starts
    there, and a cut at 00:00:00:00 lands an hour off in a timeline that does."""
    pycmx = pytest.importorskip("pycmx")
    edit = tmp_path / "edit"
    result = cli("export", out, "--otio", edit / "a.otio", "--edl", edit / "a.edl", "--fcp-xml", edit / "a.xml",
                 "--fps", fps, *extra)
    assert result.exit_code == 0, result.output
    drop_frame = ";" in start
    rate = {"25": 25.0, "24": 24.0, "29.97": 30000 / 1001}[fps]
    first = otio.adapters.read_from_file(str(edit / "a.otio")).global_start_time
    assert first.to_frames() == frames
    assert otio.opentime.to_timecode(first, rate, drop_frame) == start
    edl = pycmx.parse_cmx3600(io.StringIO((edit / "a.edl").read_text("ascii")))
    events = list(edl.events)
    assert events[0].edits[0].record_in == start
    nominal = round(rate)
    assert smpte_frames(events[0].edits[0].record_in, nominal, drop_frame) == frames
    # sh020 goes in sh010's 2 s later: the cut keeps its timing after the offset
    assert smpte_frames(events[1].edits[0].record_in, nominal, drop_frame) - frames == round(2 * rate)
    edl_track = otio.adapters.read_from_file(str(edit / "a.edl"), rate=rate).video_tracks()[0]
    assert -edl_track.source_range.start_time.to_frames() == frames  # OTIO's reader: the track offset (#1385)
    xml = otio.adapters.read_from_file(str(edit / "a.xml"))
    assert xml.global_start_time.to_frames() == frames
    sequence_timecode = ElementTree.fromstring((edit / "a.xml").read_text("utf-8")).find(".//sequence/timecode")
    assert sequence_timecode is not None
    assert sequence_timecode.findtext("string") == start
    if av is not None:
        texts = burn_in_texts(monkeypatch, lambda: cli("export", out, "--movie", edit / "a.mp4", "--burn-in",
                                                        "--fps", fps, *extra))
        assert texts[0].endswith(f"  {start}") and texts[0].startswith("sh010  t1")
        assert texts[1].endswith(start[:-2] + "01")


@pytest.mark.parametrize(("fps", "given", "said"), [
    ("24", "1:00:00:00", "--start 1:00:00:00: give the timecode as HH:MM:SS:FF, e.g. 01:00:00:00"),
    ("24", "01:00:00;00", "drop-frame form (;) at 24 fps"),
    ("24", "01:00:00:24", "FF from 00 to 23 at 24 fps"),
    ("24", "01:60:00:00", "MM and SS from 00 to 59"),
    ("24", "24:00:00:00", "HH from 00 to 23"),
    ("24", "٠١:٠٠:٠٠:٠٠", "give the timecode as HH:MM:SS:FF"),  # Arabic-Indic digits: no editor's tool reads them
    ("29.97", "01:00:00:00", "drop-frame timecode: give --start 01:00:00;00 (or --non-drop-frame)"),
    ("29.97", "01:01:00;00", "01:01:00;00 does not exist in drop-frame timecode"),
    ("12", "01:00:00:00", "--start at --fps 12: timecode exists at 23.976"),
])
def test_a_start_timecode_editors_cannot_read_is_refused(out: Path, tmp_path: Path, fps: str, given: str,
                                                         said: str) -> None:
    result = cli("export", out, "--otio", tmp_path / "a.otio", "--fps", fps, "--start", given)
    assert result.exit_code == 2, result.output
    assert said in result.stderr, result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert list(tmp_path.iterdir()) == [tmp_path / "renders"]


def test_export_animatic_from_python_checks_its_start(out: Path, tmp_path: Path) -> None:
    import idcli
    from idcli.review.export import export_animatic
    from idcli.review.runs import load_run

    with pytest.raises(idcli.InputError, match=r"start=3600: give the timecode as a string"):
        export_animatic(load_run(out), otio=tmp_path / "a.otio", start=3600)  # type: ignore[arg-type]
    (result,) = export_animatic(load_run(out), otio=tmp_path / "a.otio", fps=12)  # no timecode rate: an hour in
    assert otio.adapters.read_from_file(str(result.path)).global_start_time.to_frames() == 12 * 3600


@pytest.mark.parametrize(("fps", "late", "last_label"), [("25", "23:59:58:00", "23:59:59:24"),
                                                          ("29.97", "23:59:58;00", "23:59:59;29")])
def test_a_start_whose_cut_runs_past_midnight_is_refused(out: Path, tmp_path: Path, fps: str, late: str,
                                                         last_label: str) -> None:
    """Timecode is a time of day: past 23:59:59:FF it wraps to 00:00:00:00. Before: a late --start gave an EDL whose
    first event ran from 23:59:58:00 to 00:00:00:00 and whose next events went in at 00:00:00:00, before it (OTIO's
    own reader refused it: "Source and record duration don't match"). Now refused, naming the latest start that
    fits; that start writes a cut every reader takes, one frame later is refused.

    Editorial tour: the cut here ends with a rendered shot (sh040, not rendered, is second), so its last event's
    record out is the cut's end. The latest start named let the last frame take the day's last label, and so that
    event's record out the label after it, which wraps: 23:59:59:24 to 00:00:00:00, refused by OTIO's reader."""
    edit = tmp_path / "edit"
    formats = ("--otio", edit / "a.otio", "--edl", edit / "a.edl", "--fcp-xml", edit / "a.xml",
               "--shots", shot_list(tmp_path, gap_second=True))
    result = cli("export", out, *formats, "--fps", fps, "--start", late)
    assert result.exit_code == 2, result.output
    assert f"would end past {last_label}" in result.stderr, result.stderr
    assert not edit.exists()
    latest = search(r"give --start (\S+) or earlier", result.stderr).group(1)
    rate = {"25": 25.0, "29.97": 30000 / 1001}[fps]
    drop_frame = ";" in late
    assert cli("export", out, *formats, "--fps", fps, "--start", latest).exit_code == 0
    edl_track = otio.adapters.read_from_file(str(edit / "a.edl"), rate=rate).video_tracks()[0]
    assert [type(item.media_reference).__name__ for item in edl_track] == [MEDIA[kind] for kind in (
        "still", "black", "still", "still")]
    first = otio.adapters.read_from_file(str(edit / "a.otio")).global_start_time
    last = otio.opentime.from_timecode("23:59:59" + last_label[8:], rate).to_frames()
    length = otio.adapters.read_from_file(str(edit / "a.otio")).duration().to_frames()
    assert first.to_frames() + length == last  # the cut's end, its last event's record out, the day's last label
    pycmx = pytest.importorskip("pycmx")
    (event,) = list(pycmx.parse_cmx3600(io.StringIO((edit / "a.edl").read_text("utf-8"))).events)[-1:]
    assert str(event.edits[0].record_out) == last_label
    one_later = otio.opentime.to_timecode(first + otio.opentime.RationalTime(1, rate), rate, drop_frame)
    shutil.rmtree(edit)
    result = cli("export", out, *formats[2:4], *formats[6:], "--fps", fps, "--start", one_later)
    assert result.exit_code == 2 and f"give --start {latest} or earlier" in result.stderr, result.output


def test_refusals_name_the_rate_as_an_editor_writes_it(out: Path, tmp_path: Path) -> None:
    """The export runs at 60000/1001 for --fps 59.94: its refusals said "at 59.9401 fps", and "1 frames"."""
    from idcli.review.start_timecode import frames_words, rate_words

    result = cli("export", out, "--edl", tmp_path / "edit" / "a.edl", "--fps", "59.94", "--start", "23:59:59;59")
    assert result.exit_code == 2, result.output
    assert "at 59.94 fps" in result.stderr and "59.9401" not in result.stderr, result.stderr
    result = cli("export", out, "--edl", tmp_path / "edit" / "a.edl", "--fps", "59.94", "--start", "01:00:00:00")
    assert result.exit_code == 2 and "at 59.94 fps the export writes drop-frame timecode" in result.stderr
    assert [rate_words(r) for r in (24000 / 1001, 30000 / 1001, 25.0, 60000 / 1001)] == ["23.976", "29.97", "25",
                                                                                        "59.94"]
    assert (frames_words(1), frames_words(2)) == ("1 frame", "2 frames")


@pytest.mark.parametrize(("given", "rate", "said"), [("30000/1001", 30000 / 1001, "29.97"),
                                                    ("24000/1001", 24000 / 1001, "23.976"),
                                                    ("23.98", 24000 / 1001, "23.976"), ("25/1", 25.0, "25")])
def test_the_rate_is_taken_and_said_as_editors_and_ffprobe_write_it(out: Path, tmp_path: Path, given: str,
                                                                    rate: float, said: str) -> None:
    """Editor's tour: ffprobe, FFmpeg and a QuickTime's metadata give NTSC rates as ratios (``r_frame_rate=
    30000/1001``); ``--fps 30000/1001`` said ``give a number``. A ratio is taken as the rate it is. And ``--fps 23.98``
    wrote every file at 24000/1001 while the summary said ``at 23.98 fps``: it says the rate the files hold."""
    edit = tmp_path / "edit"
    result = cli("export", out, "--otio", edit / "a.otio", "--edl", edit / "a.edl", "--fps", given)
    assert result.exit_code == 0, result.output
    assert result.stdout.count(f" frames at {said} fps from 01:00:00") == 2, result.stdout
    timeline = otio.adapters.read_from_file(str(edit / "a.otio"))
    assert abs(timeline.global_start_time.rate - rate) < 1e-9
    fcm = "DROP FRAME" if said == "29.97" else "NON-DROP FRAME"
    assert (edit / "a.edl").read_text("ascii").splitlines()[1] == f"FCM: {fcm}"


@pytest.mark.parametrize(("given", "ratio"), [("23.98", "24000/1001"), ("29.97", "30000/1001"),
                                            ("30000/1001", "30000/1001"), ("25", "25/1"), ("12.5", "25/2")])
def test_the_json_gives_the_rate_the_files_hold(out: Path, tmp_path: Path, given: str, ratio: str) -> None:
    """Editor's tour: ``--fps 23.98 --json`` gave ``"fps": 23.98`` while every file held 24000/1001 and the text line
    said 23.976, so a script that laid a sound track against the JSON's rate drifted a frame every four minutes.
    ``fps`` is the rate the files hold; ``fps_ratio`` writes it as ffprobe does (and ``--fps`` takes it back)."""
    target = tmp_path / "edit" / "a.otio"
    result = cli("export", out, "--otio", target, "--fps", given, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    numerator, denominator = (int(part) for part in ratio.split("/"))
    assert document["fps"] == numerator / denominator and document["fps_ratio"] == ratio, document
    assert otio.adapters.read_from_file(str(target)).global_start_time.rate == document["fps"]
    again = cli("export", out, "--otio", tmp_path / "b.otio", "--fps", document["fps_ratio"], "--json")
    assert json.loads(again.stdout)["fps"] == document["fps"], again.output


@pytest.mark.parametrize("given", ["30000/0", "0/1001", "-24000/1001", "24000/1001/2", "24000/", "30000/1001.0"])
def test_a_rate_that_is_no_ratio_of_whole_numbers_is_refused(out: Path, tmp_path: Path, given: str,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    from idcli.cli import main

    monkeypatch.setattr(sys, "argv", ["idcli", "export", str(out), "--otio", str(tmp_path / "a.otio"), "--fps", given])
    with pytest.raises(SystemExit) as ended:  # the command as typed: its usage error in idcli's words
        main()
    said = capsys.readouterr().err
    assert ended.value.code == 2 and said.count("\n") == 1 and "Traceback" not in said, said
    assert said.startswith(f"idcli: error: --fps {given}: give a number or a ratio of whole numbers ("), said
    assert "24000/1001" in said and not (tmp_path / "a.otio").exists()


# -- the movie -----------------------------------------------------------------------------------

try:
    import av
except ImportError:  # the movie extra is not installed: its tests skip, the EDL and XML tests still run
    av = None  # type: ignore[assignment]  # PyAV absent: needs_pyav skips every test that reads av
needs_pyav = pytest.mark.skipif(av is None, reason="PyAV (the movie extra) is not installed")


KEYFRAMES: list[int] = []  # the indices of the keyframes of the last movie decoded


def decode(path: Path) -> tuple[list[np.ndarray], object]:
    from av.video.reformatter import ColorRange, Colorspace

    frames = []
    KEYFRAMES.clear()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate
        for index, frame in enumerate(container.decode(stream)):
            frames.append(frame.reformat(format="rgb24", src_colorspace=Colorspace.ITU709,
                                         src_color_range=ColorRange.MPEG, dst_color_range=ColorRange.JPEG).to_ndarray())
            if frame.key_frame:
                KEYFRAMES.append(index)
        context = stream.codec_context
        assert context.name == "h264" and context.pix_fmt == "yuv420p"
        assert (context.colorspace, context.color_primaries, context.color_trc) == (1, 1, 1)  # tagged BT.709
    return frames, rate


@needs_pyav
def test_the_movie_plays_each_take_for_its_duration(out: Path, tmp_path: Path) -> None:
    from idcli.identity.images import load_rgb
    from idcli.review.animatic_movie import letterbox

    target = tmp_path / "animatic.mp4"
    result = cli("export", out, "--movie", target, "--fps", "25")
    assert result.exit_code == 0, result.output
    frames, rate = decode(target)
    assert rate == 25 and len(frames) == 50 + 38 + 75 + 75  # the gap plays too
    assert frames[0].shape == (256, 512, 3)  # sh010's 512x256; sh020 and sh030 (256x256) letterboxed into it
    expected = {shot: letterbox(load_rgb(path), (512, 256)) for shot, path in images(out).items()}
    starts = {"sh010": 0, "sh020": 50, "sh030": 88, "sh040": 163}
    for shot, start in list(starts.items())[:3]:
        for offset in (0, 20):  # the shot's first frame (a keyframe) and one held later
            frame = frames[start + offset].astype(np.int16)
            errors = {other: np.abs(frame - image).mean() for other, image in expected.items()}
            assert errors[shot] < 4, (shot, errors)  # within the codec's tolerance of its own take
            assert min(errors, key=errors.__getitem__) == shot
    assert expected["sh020"][:, :128].max() == 0  # letterboxed: black bars either side
    for frame in frames[starts["sh040"]:]:  # the slate of the shot not rendered: dark
        assert frame.mean() < 8
    assert list(starts.values()) == KEYFRAMES  # each shot starts on a keyframe (and nothing else is one)


def tmcd_flags(data: bytes) -> list[int]:
    """The flags of each ``tmcd`` sample description in a QuickTime/MP4 file (bit 0: drop frame), read from the atom
    itself: size, 'tmcd', 6 reserved bytes, data reference index 1, 4 reserved bytes, then the flags."""
    import struct

    found = []
    for match in re.finditer(rb"tmcd", data):
        at = match.start()
        if data[at + 4:at + 10] == bytes(6) and data[at + 10:at + 12] == b"\x00\x01":
            found.append(struct.unpack(">I", data[at + 16:at + 20])[0])
    return found


@needs_pyav
@pytest.mark.parametrize(("suffix", "fps", "extra", "start"), [
    ("mp4", "25", (), "01:00:00:00"),  # the default start, non-drop frame
    ("mov", "29.97", (), "01:00:00;00"),  # drop frame by default at 29.97
    ("mp4", "29.97", ("--drop-frame", "--start", "00:59:58;02"), "00:59:58;02"),
    ("mov", "29.97", ("--non-drop-frame", "--start", "10:00:00:00"), "10:00:00:00"),
])
def test_the_movie_carries_the_cuts_start_as_its_timecode_track(out: Path, tmp_path: Path, suffix: str, fps: str,
                                                                extra: tuple[str, ...], start: str) -> None:
    """An editor's tool reads a movie's start from its timecode (tmcd) track, not from the burn-in: the movie, burnt
    in or not, starts at the cut's record timecode, drop frame as the export's timecode is."""
    target = tmp_path / f"animatic.{suffix}"
    result = cli("export", out, "--movie", target, "--fps", fps, *extra)
    assert result.exit_code == 0, result.output
    with av.open(str(target)) as container:  # FFmpeg's reader: the label from the tmcd track's first sample
        (data,) = container.streams.data
        assert dict(data.metadata)["timecode"] == start
        assert dict(container.streams.video[0].metadata)["timecode"] == start
    assert [flags & 1 for flags in tmcd_flags(target.read_bytes())] == [int(";" in start)]


@needs_pyav
def test_a_movie_at_a_rate_without_timecode_has_no_timecode_track(out: Path, tmp_path: Path) -> None:
    target = tmp_path / "animatic.mp4"
    assert cli("export", out, "--movie", target, "--fps", "12").exit_code == 0
    with av.open(str(target)) as container:
        assert not container.streams.data and "timecode" not in container.streams.video[0].metadata
    assert tmcd_flags(target.read_bytes()) == []


@needs_pyav
def test_the_movie_is_deterministic_at_ntsc_rate(out: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a.mp4", tmp_path / "b.mov"
    assert cli("export", out, "--movie", first, "--fps", "23.976").exit_code == 0
    assert cli("export", out, "--movie", second, "--fps", "23.976").exit_code == 0
    frames, rate = decode(first)
    assert rate == pytest.approx(24000 / 1001) and len(frames) == sum(
        round(d * 24000 / 1001) for d in (2, 1.5, 3, 3))
    again = tmp_path / "again.mp4"
    assert cli("export", out, "--movie", again, "--fps", "23.976").exit_code == 0
    assert again.read_bytes() == first.read_bytes()
    assert len(decode(second)[0]) == len(frames)


# The sha256 of the test run's movies, by (PyAV, Pillow) version: x264, swscale and Pillow's text and resampling
# make the bytes, so they are compared where they were recorded. The plain movie recorded with the burn-in converting
# and copying whole frames (before the band alone was written per frame) and unchanged since: the same inputs, the
# same bytes. The burn-in's re-recorded when its timecode came to start at 01:00:00:00 (its text changed, by design).
# Both re-recorded when the movie gained its timecode track (a tmcd track and its references added; the video
# stream's packets, payload and timestamps, the same as before, byte for byte).
MOVIE_SHA256 = {("18.1.0", "13.0.0"): {
    "plain": "d0b1457d90ccac0e6682a789f3ed21a7d52e5901e82544422fe3c00f45f8481e",
    "burn-in": "1cbf7b113f58a372e7464fa2e66a7e09297b7dbfd8cc8dedef76c1cc0bc58c14",
}}


@needs_pyav
def test_the_movie_bytes_stay_as_recorded(out: Path, tmp_path: Path) -> None:
    import hashlib

    import PIL

    recorded = MOVIE_SHA256.get((av.__version__, PIL.__version__))
    if recorded is None:
        pytest.skip(f"movie hashes recorded with PyAV/Pillow {sorted(MOVIE_SHA256)}, not {av.__version__}/"
                    f"{PIL.__version__}")
    for name, extra in (("plain", ()), ("burn-in", ("--burn-in",))):
        target = tmp_path / f"{name}.mp4"
        assert cli("export", out, "--movie", target, "--fps", "25", *extra).exit_code == 0
        assert hashlib.sha256(target.read_bytes()).hexdigest() == recorded[name], name


class _RecordedStream:
    """A PyAV stream that keeps a copy of every frame handed to its encoder (as ``to_ndarray`` packs it)."""

    def __init__(self, stream, frames: list[np.ndarray]) -> None:
        object.__setattr__(self, "_stream", stream)
        object.__setattr__(self, "_frames", frames)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)

    def __setattr__(self, name: str, value) -> None:
        setattr(self._stream, name, value)

    def encode(self, frame=None):
        if frame is not None:
            self._frames.append(frame.to_ndarray().copy())
        return self._stream.encode(frame)


def encoded_frames(monkeypatch: pytest.MonkeyPatch, export) -> list[np.ndarray]:
    """The frames ``export()`` hands the encoder, each as it was when handed over."""
    frames: list[np.ndarray] = []
    real_open = av.open

    class Container:
        def __init__(self, *args, **kwargs) -> None:
            self.container = real_open(*args, **kwargs)

        def __enter__(self):
            self.container.__enter__()
            return self

        def __exit__(self, *exc):
            return self.container.__exit__(*exc)

        def add_stream(self, *args, **kwargs):
            return _RecordedStream(self.container.add_stream(*args, **kwargs), frames)

        def mux(self, packets) -> None:
            self.container.mux(packets)

    with monkeypatch.context() as patch:
        patch.setattr(av, "open", Container)
        export()
    return frames


@needs_pyav
def test_each_burnt_in_frame_is_the_still_with_only_its_band_replaced(out: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The encoder is handed one frame per shot whose bottom rows are rewritten for each frame: what it gets must
    be the shot's still with that frame's band over its bottom rows and nothing else, also where a two-line band
    is followed by a one-line one (the rows it covered are the still's again)."""
    import idcli.review.animatic_movie as movie

    plain = encoded_frames(monkeypatch, lambda: cli("export", out, "--movie", tmp_path / "a.mp4", "--fps", "24"))
    drawn = movie.burn_in_band
    bands: list[np.ndarray] = []

    def every_third_on_two_lines(width, text, warning, font):
        band = drawn(width, text, "x" * 400 if len(bands) % 3 == 1 else None, font)
        bands.append(movie.yuv_frame(band).to_ndarray())
        return band

    monkeypatch.setattr(movie, "burn_in_band", every_third_on_two_lines)
    burnt = encoded_frames(monkeypatch, lambda: cli("export", out, "--movie", tmp_path / "b.mp4", "--fps", "24",
                                                    "--burn-in"))
    assert len(burnt) == len(plain) == len(bands) > 3 and len({band.shape for band in bands}) == 2
    for still, frame, band in zip(plain, burnt, bands, strict=True):
        expected = still.copy()
        for target, source in zip(movie.yuv_planes(expected), movie.yuv_planes(band), strict=True):
            target[len(target) - len(source):] = source
        assert np.array_equal(frame, expected)


@needs_pyav
def test_the_burn_in_names_shot_take_and_timecode(out: Path, tmp_path: Path) -> None:
    plain, burnt = tmp_path / "plain.mp4", tmp_path / "burnt.mp4"
    assert cli("export", out, "--movie", plain, "--fps", "25").exit_code == 0
    assert cli("export", out, "--movie", burnt, "--fps", "25", "--burn-in").exit_code == 0
    a, b = decode(plain)[0], decode(burnt)[0]
    assert len(a) == len(b)
    band = slice(256 - 20, 256)
    assert np.abs(a[10][:100].astype(int) - b[10][:100]).mean() < 2  # the picture above the band is the same
    assert np.abs(a[10][band].astype(int) - b[10][band]).mean() > 10  # the band holds text
    assert not np.array_equal(b[10][band], b[11][band])  # the timecode moves each frame
    # random-weight test models made these takes: marked in amber on the band's right
    right = b[10][band, 256:].astype(int)
    amber = (right[..., 0] > 180) & (right[..., 1] > 120) & (right[..., 2] < 90)
    assert amber.sum() > 20


@pytest.mark.parametrize("size", [(256, 256), (512, 512), (1024, 1024), (768, 512)])
def test_the_random_weights_mark_never_covers_the_burnt_in_timecode(size: tuple[int, int]) -> None:
    """Shot id, take and timecode on the band's left, the amber random-weights mark on its right: on a square
    frame (512 x 512, 1024 x 1024: SD1.5's and SDXL's sizes) the two overlapped and the timecode could not be
    read. Where they do not fit side by side the mark goes on a second line."""
    from idcli.review.animatic_movie import band_font, burn_in_band

    width, height = size
    band = burn_in_band(width, "sc12_sh010  t12  00:00:01;09", "random-weight test models: not for review",
                        band_font(height)).astype(int)
    assert band.shape[0] % 2 == 0 and band.shape[1] == width
    amber = (band[..., 0] > 180) & (band[..., 1] > 120) & (band[..., 2] < 90)
    white = band.min(axis=2) > 180
    (amber_rows, amber_cols), (white_rows, white_cols) = np.nonzero(amber), np.nonzero(white)
    assert amber.sum() > 20 and white.sum() > 20
    side_by_side = white_cols.max() < amber_cols.min()
    one_above_the_other = white_rows.max() < amber_rows.min()
    assert side_by_side or one_above_the_other


@needs_pyav
@pytest.mark.parametrize(("size", "shot_ids"), [
    ("576x1024", ("sq010_sc012_sh0040", "sq010_sc012_sh0050")),  # SDXL's 9:16, ids as a studio names its shots
    ("576x1024", ("s" * 60 + "_sh1", "s" * 60 + "_sh2")),  # the longest ids a shot list takes: a smaller font
    ("256x144", ("s" * 60 + "_sh1", "s" * 60 + "_sh2")),  # too long at the smallest font: the id's start goes
])
def test_the_burn_in_and_the_slate_stay_inside_the_frame(tmp_path: Path, size: str, shot_ids: tuple[str, str]
                                                          ) -> None:
    """Editorial tour: a vertical animatic (576 x 1024). The band's font was sized by the frame's height alone, so
    on a portrait frame `sq010_sc012_sh0040  t1  01:00:00:00` was wider than the frame and the timecode, what an
    editor gives notes against, was cut off at its right edge (and the amber mark at its left); the slate of a
    shot not rendered likewise. Now the font is sized by the frame's shorter side and shrinks to fit a label that
    still does not (the longest shot ids); below its smallest size the label's start gives way, never the take or
    the timecode."""
    from test_film_scale import flat_engine_factory

    import idcli

    shots = tmp_path / "vertical.yaml"
    shots.write_text("version: 1\nproject: vertical\nmodel: {preset: tiny-sd}\n"
                     f"defaults: {{size: {size}, steps: 1, guidance: 1.0}}\nshots:\n"
                     + "".join(f"  - {{id: {shot}, prompt: a lighthouse, duration: 0.25}}\n" for shot in shot_ids),
                     "utf-8")
    out = tmp_path / "out"
    assert idcli.render(shots, out, device="cpu", engine_factory=flat_engine_factory, qa=False,
                        only=[shot_ids[0]]).rendered == 1
    movie = tmp_path / "vertical.mp4"
    result = cli("export", out, "--movie", movie, "--burn-in", "--fps", "24")
    assert result.exit_code == 0, result.output
    frames, _rate = decode(movie)
    assert len(frames) == 12 and frames[0].shape[:2] == tuple(reversed([int(n) for n in size.split("x")]))
    width, height = frames[0].shape[1], frames[0].shape[0]
    band = frames[0][[row for row in range(height // 2, height) if np.median(frames[0][row]) < 32]]  # black rows
    slate = frames[6][height // 2 - 12:height // 2 + 12]
    for picture, what in ((band, "the burn-in band"), (slate, "the slate")):
        ink = np.nonzero(picture.max(axis=(0, 2)) > 64)[0]  # the columns text was drawn in
        assert len(ink) > 20, what
        assert ink.min() >= 3 and ink.max() <= width - 4, (what, ink.min(), ink.max())  # nothing cut at the edges


@needs_pyav
def test_the_burn_in_timecode_drops_frames_as_the_edl_does(out: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import idcli.review.animatic_movie as movie

    ntsc = 30000 / 1001
    # frame 1800, one minute in at 29.97: drop frame skips the labels ;00 and ;01 there, and keeps to the clock
    assert (movie.timecode(1799, ntsc, True), movie.timecode(1800, ntsc, True)) == ("00:00:59;29", "00:01:00;02")
    assert movie.timecode(1800, ntsc, False) == "00:01:00:00"
    assert movie.timecode(1800, 24000 / 1001, False) == "00:01:15:00"  # 23.976 counts 24 to the second
    drawn = movie.burn_in_band
    texts: list[str] = []

    def record(width, text, warning, font):
        texts.append(text)
        if len(texts) > 3:  # the choice reached the burn-in: stop the encode
            raise KeyboardInterrupt
        return drawn(width, text, warning, font)

    monkeypatch.setattr(movie, "burn_in_band", record)
    for flag, separator in (("--drop-frame", ";"), ("--non-drop-frame", ":")):
        texts.clear()
        result = cli("export", out, "--movie", tmp_path / "a.mp4", "--burn-in", "--fps", "29.97", flag)
        assert result.exit_code == 130 and not (tmp_path / "a.mp4").exists()
        assert texts[3] == f"sh010  t1  01:00:00{separator}03"  # from the sequence start, an hour in


@needs_pyav
def test_an_interrupted_movie_leaves_no_file(out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import idcli.review.animatic_movie as movie

    encoded = movie.yuv_frame
    calls = []

    def interrupt_on_the_fifth(rgb):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt  # Ctrl-C, or SIGTERM as every command turns it
        return encoded(rgb)

    monkeypatch.setattr(movie, "yuv_frame", interrupt_on_the_fifth)
    target = tmp_path / "cut" / "animatic.mp4"
    result = cli("export", out, "--movie", target, "--burn-in")
    assert result.exit_code == 130, result.output
    assert list(target.parent.iterdir()) == []  # neither the movie nor its temporary


@needs_pyav
@pytest.mark.parametrize(("code", "said"), [
    ("ENOSPC", "disk full while writing {target}; nothing partial was kept"),
    ("EROFS", "permission denied while writing {target} (Read-only file system)"),
])
def test_a_movie_the_disk_refuses_is_named_and_leaves_no_file(out: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch, code: str,
                                                               said: str) -> None:
    # Artist tour: --movie into a read-only folder said only "idcli: error: Read-only file system" (PyAV's
    # error names no file), where --otio, --edl and --fcp-xml name theirs.
    import errno
    import os

    import idcli.review.animatic_movie as movie

    encoded = movie.yuv_frame
    calls = []

    def refuse_on_the_second(rgb):
        calls.append(1)
        if len(calls) == 2:  # the encoder's write, as PyAV raises it (an OSError with the errno)
            raise OSError(getattr(errno, code), os.strerror(getattr(errno, code)))
        return encoded(rgb)

    monkeypatch.setattr(movie, "yuv_frame", refuse_on_the_second)
    target = tmp_path / "cut" / "animatic.mp4"
    result = cli("export", out, "--movie", target)
    assert result.exit_code == 5, result.output
    assert said.format(target=target) in result.stderr, result.stderr
    assert list(target.parent.iterdir()) == []  # neither the movie nor its temporary


@needs_pyav
def test_a_take_the_movie_cannot_read_leaves_the_earlier_export_whole(out: Path, tmp_path: Path) -> None:
    """Editorial tour: a second export after a new select, one shot's PNG cut short (a sync stopped half way). The
    .otio, the EDL and the XML were replaced by the new cut before the movie reached the damaged still and stopped
    (exit 2): the editor's folder held the new cut's timelines beside the old cut's movie, nothing saying which."""
    edit = tmp_path / "edit"
    files = [edit / "a.otio", edit / "a.edl", edit / "a.xml", edit / "a.mp4"]
    args = ["--otio", files[0], "--edl", files[1], "--fcp-xml", files[2], "--movie", files[3]]
    assert cli("export", out, *args).exit_code == 0
    first = {path.name: path.read_bytes() for path in files}
    assert cli("select", out, "sh020=2").exit_code == 0
    damaged = out / "sh030" / "sh030_t1.png"
    damaged.write_bytes(damaged.read_bytes()[:300])
    result = cli("export", out, *args)
    assert result.exit_code == 2, result.output
    assert "sh030_t1.png: damaged or truncated image" in result.stderr, result.stderr
    assert {path.name: path.read_bytes() for path in edit.iterdir()} == first  # the first export, no temporary


@pytest.mark.parametrize("hard_links", [True, False], ids=["hard-links", "no-hard-links"])
def test_a_set_that_cannot_land_puts_back_what_was_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         hard_links: bool) -> None:
    """The files renamed before the one that fails get their earlier file back, or go where there was none; on a
    file system without hard links (FAT, some shares) the earlier file is kept as a copy instead."""
    import errno
    import os

    from idcli.errors import OutputError
    from idcli.review.export_files import ExportFiles

    earlier, fresh, last = tmp_path / "a.edl", tmp_path / "b.otio", tmp_path / "c.xml"
    earlier.write_bytes(b"the last cut")
    real_replace = os.replace

    def replace(source: object, target: object, **kwargs: object) -> None:
        if Path(str(target)) == last:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(source, target, **kwargs)  # type: ignore[arg-type]

    def no_link(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))

    with ExportFiles() as files:
        files.write(fresh, b"new")
        files.write(earlier, b"the new cut")
        files.write(last, b"new")
        monkeypatch.setattr(os, "replace", replace)
        if not hard_links:
            monkeypatch.setattr(os, "link", no_link)
        with pytest.raises(OutputError, match=f"disk full while writing {last}"):
            files.land()
    assert [path.name for path in tmp_path.iterdir()] == ["a.edl"] and earlier.read_bytes() == b"the last cut"


@pytest.mark.parametrize("hard_links", [True, False], ids=["hard-links", "no-hard-links"])
def test_a_set_that_cannot_land_puts_back_a_symlink_that_stood_at_a_target(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          hard_links: bool) -> None:
    """An editor's ``cut.edl`` a link to the versioned ``cut_v3.edl`` (the name the NLE's project points at): a set
    that could not land put back the XML but left the new cut's EDL where the link stood, a mixed set (the link was
    not kept, only a regular file was). The link is now kept as it was and put back, its file untouched."""
    import errno
    import os

    from idcli.errors import OutputError
    from idcli.review.export_files import ExportFiles

    versioned, edl, xml = tmp_path / "cut_v3.edl", tmp_path / "cut.edl", tmp_path / "cut.xml"
    versioned.write_bytes(b"the last cut's EDL")
    edl.symlink_to(versioned.name)
    xml.write_bytes(b"the last cut's XML")
    real_replace = os.replace

    def replace(source: object, target: object, **kwargs: object) -> None:
        if Path(str(target)) == xml:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(source, target, **kwargs)  # type: ignore[arg-type]

    def no_link(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))

    with ExportFiles() as files:
        files.write(edl, b"the new cut's EDL")
        files.write(xml, b"the new cut's XML")
        monkeypatch.setattr(os, "replace", replace)
        if not hard_links:
            monkeypatch.setattr(os, "link", no_link)
        with pytest.raises(OutputError, match=f"disk full while writing {xml}"):
            files.land()
    monkeypatch.undo()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cut.edl", "cut.xml", "cut_v3.edl"]
    assert edl.is_symlink() and os.readlink(edl) == versioned.name
    assert edl.read_bytes() == b"the last cut's EDL" and xml.read_bytes() == b"the last cut's XML"


@pytest.mark.parametrize("first", ["disk full", "Ctrl-C"])
@pytest.mark.parametrize("second", ["SIGINT", "SIGTERM"])
def test_a_second_interrupt_while_a_set_is_put_back_lets_it_finish(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  first: str, second: str) -> None:
    """Editor's tour: the XML's rename failed (or Ctrl-C came while the set landed) and, while the files renamed before
    it were put back, a second Ctrl-C (or SIGTERM) stopped the put-back at the EDL's rename: the folder held the new
    cut's .otio (and EDL) beside the last cut's XML, a mixed set with nothing to say so. The put-back now finishes
    with the signals held, then the export stops as interrupted, with the signal's own exit code. Real signals, sent
    to this process at the put-back's rename of the EDL (and, for "Ctrl-C", at the landing's)."""
    import errno
    import os
    import signal

    from idcli.errors import Interrupted
    from idcli.interrupts import interrupted, terminate_as_interrupt
    from idcli.review.export_files import ExportFiles

    names = ("a.otio", "b.edl", "c.xml")
    for name in names:
        (tmp_path / name).write_bytes(b"the last cut")
    real_replace = os.replace
    renames: list[str] = []

    def replace(source: object, target: object, **kwargs: object) -> None:
        renames.append(Path(str(target)).name)
        if len(renames) == 2 and first == "Ctrl-C":
            signal.raise_signal(signal.SIGINT)  # the first Ctrl-C, as the set lands
        if len(renames) == 3 and first == "disk full":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if renames[-1] == "b.edl" and renames.count("b.edl") == 2:  # the put-back's rename of the EDL
            signal.raise_signal(getattr(signal, second))
        real_replace(source, target, **kwargs)  # type: ignore[arg-type]

    stopped: BaseException | None = None
    with terminate_as_interrupt(), ExportFiles() as files:  # what `idcli export` runs inside
        for name in names:
            files.write(tmp_path / name, b"the new cut")
        monkeypatch.setattr(os, "replace", replace)
        try:
            files.land()
        except BaseException as exc:  # a bare KeyboardInterrupt too, which pytest would take as its own
            stopped = interrupted() if isinstance(exc, KeyboardInterrupt) else exc
        monkeypatch.undo()
    # every target put back, last first: the EDL, then the .otio
    assert renames[-2:] == ["b.edl", "a.otio"], renames
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == dict.fromkeys(names, b"the last cut")
    # stopped as interrupted, by the first signal when it stopped the landing, else by the one held
    signal_name = "SIGINT" if first == "Ctrl-C" else second
    assert isinstance(stopped, Interrupted), repr(stopped)
    assert signal_name in str(stopped) and stopped.exit_code == (143 if signal_name == "SIGTERM" else 130)


def test_an_export_interrupted_while_it_puts_its_files_back_exits_130_with_the_last_cut_whole(
        out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same through `idcli export`: the XML's disk full, Ctrl-C while the EDL is put back. The command stops as
    interrupted (130, its line on stderr), the folder holding the last export's three files as they were."""
    import errno
    import os
    import signal

    edit = tmp_path / "edit"
    args = ["--otio", edit / "a.otio", "--edl", edit / "a.edl", "--fcp-xml", edit / "a.xml"]
    assert cli("export", out, *args).exit_code == 0
    last = {path.name: path.read_bytes() for path in edit.iterdir()}
    assert cli("select", out, "sh020=2").exit_code == 0
    real_replace = os.replace
    renames: list[str] = []

    def replace(source: object, target: object, **kwargs: object) -> None:
        if Path(str(target)).parent == edit:
            renames.append(Path(str(target)).name)
            if renames == ["a.otio", "a.edl", "a.xml"]:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            if renames[3:] == ["a.xml", "a.edl"]:  # the put-back, last first: the XML, then the EDL
                signal.raise_signal(signal.SIGINT)
        real_replace(source, target, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", replace)
    result = cli("export", out, *args)
    monkeypatch.undo()
    assert result.exit_code == 130 and "interrupted" in result.stderr, result.output
    assert renames == ["a.otio", "a.edl", "a.xml", "a.xml", "a.edl", "a.otio"], renames
    assert {path.name: path.read_bytes() for path in edit.iterdir()} == last  # and no temporary


def test_a_copy_of_the_earlier_file_cut_short_by_a_full_disk_is_not_left(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the file system has no hard links the earlier file is kept as a copy, and a disk that filled while
    copying it stopped the export (the earlier set whole) but left the half-written copy, a hidden temporary the size
    of the last cut's movie, beside it until another export into that folder ran."""
    import errno
    import os
    import shutil

    from idcli.errors import OutputError
    from idcli.review.export_files import ExportFiles

    movie = tmp_path / "cut.mp4"
    movie.write_bytes(b"the last cut's movie")

    def no_link(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))

    def copy_until_full(source: object, target: object, **kwargs: object) -> None:
        Path(str(target)).write_bytes(b"the last")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with ExportFiles() as files:
        files.write(movie, b"the new cut's movie")
        monkeypatch.setattr(os, "link", no_link)
        monkeypatch.setattr(shutil, "copy2", copy_until_full)
        with pytest.raises(OutputError, match=f"disk full while writing {movie}"):
            files.land()
    monkeypatch.undo()
    assert [path.name for path in tmp_path.iterdir()] == ["cut.mp4"] and movie.read_bytes() == b"the last cut's movie"


def test_two_exports_landing_at_once_in_one_folder_leave_one_whole_set(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two exports into one editorial folder (two editors, a script run twice) each renamed its files in one after
    another with nothing between them, so the second's set could land between the first's renames: the second's EDL
    beside the first's XML, a mixed set that neither export made. Each now lands with its folders locked (an
    ``flock`` on the folder, no file left in it), so the sets land one after the other, whole."""
    import functools
    import os
    import threading

    from idcli import lock_wait
    from idcli.review import export_files
    from idcli.review.export_files import ExportFiles

    edl, xml = tmp_path / "cut.edl", tmp_path / "cut.xml"
    real_replace = os.replace
    started: list[threading.Thread] = []
    second_blocked_or_done = threading.Event()
    # The second export's wait for the lock, told at once (not after a second) so the test can go on when it blocks.
    monkeypatch.setattr(export_files, "lock_waiting", functools.partial(
        lock_wait.lock_waiting, say=lambda _said: second_blocked_or_done.set(), notice_after=0), raising=False)

    def second_export() -> None:
        with ExportFiles() as files:
            files.write(edl, b"second EDL")
            files.write(xml, b"second XML")
            files.land()
        second_blocked_or_done.set()

    def replace(source: object, target: object, **kwargs: object) -> None:
        real_replace(source, target, **kwargs)  # type: ignore[arg-type]
        if threading.current_thread() is threading.main_thread() and not started:  # between the first's renames
            started.append(threading.Thread(target=second_export))
            started[0].start()
            assert second_blocked_or_done.wait(60)

    with ExportFiles() as files:
        files.write(edl, b"first EDL")
        files.write(xml, b"first XML")
        monkeypatch.setattr(os, "replace", replace)
        files.land()
    started[0].join(60)
    monkeypatch.undo()
    assert (edl.read_bytes(), xml.read_bytes()) == (b"second EDL", b"second XML")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cut.edl", "cut.xml"]


@needs_pyav
@pytest.mark.parametrize("fault", ["disk full", "rename refused", "interrupt"])
def test_an_export_that_fails_at_its_last_file_leaves_the_earlier_set_whole(out: Path, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch,
                                                                            fault: str) -> None:
    """Editorial tour: an export of all four files after a new select. Each file was atomic on its own, put in place
    as soon as it was written, so a disk that filled while the last one was written (or a rename refused, or Ctrl-C
    between two renames) left the new cut's movie, .otio and EDL beside the last cut's XML, and an editor imported a
    mixed set. Every file is now written to a temporary beside it and renamed in only once all are complete; a
    rename that fails, or an interrupt between renames, puts back the files renamed before it."""
    import errno
    import os

    from idcli.safeio import TMP_SUFFIX

    edit = tmp_path / "edit"
    files = [edit / "a.otio", edit / "a.edl", edit / "a.xml", edit / "a.mp4"]
    args = ["--otio", files[0], "--edl", files[1], "--fcp-xml", files[2], "--movie", files[3]]
    assert cli("export", out, *args).exit_code == 0
    first = {path.name: path.read_bytes() for path in files}
    assert cli("select", out, "sh020=2").exit_code == 0  # the new cut shows another take of sh020
    real_fsync, real_replace, renamed, refused = os.fsync, os.replace, [], []

    def fsync(fd: int) -> None:  # the disk fills as the XML's temporary is flushed
        name = os.readlink(f"/proc/self/fd/{fd}")
        if name.endswith(TMP_SUFFIX) and ".a.xml." in name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    def replace(source: object, target: object, **kwargs: object) -> None:  # the last file's rename fails
        if Path(str(target)) in files:
            renamed.append(Path(str(target)))
            if len(renamed) == len(files):
                refused.append(target)
                if fault == "interrupt":
                    raise KeyboardInterrupt  # Ctrl-C, or SIGTERM as every command turns it
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(target))
        real_replace(source, target, **kwargs)  # type: ignore[arg-type]

    if fault == "disk full":
        monkeypatch.setattr(os, "fsync", fsync)
    else:
        monkeypatch.setattr(os, "replace", replace)
    result = cli("export", out, *args)
    monkeypatch.undo()
    if fault == "interrupt":
        assert result.exit_code == 130, result.output
    else:
        assert result.exit_code == 5, result.output
        said = (f"disk full while writing {files[2]}" if fault == "disk full"
                else f"permission denied while writing {refused[0]} (Read-only file system)")
        assert said in result.stderr, result.stderr
    assert {path.name: path.read_bytes() for path in edit.iterdir()} == first  # the earlier set, no temporary
    assert cli("export", out, *args).exit_code == 0  # the disk freed: the new set lands whole
    assert all(path.read_bytes() != first[path.name] for path in files[:3])


def test_a_missing_pyav_is_named(out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "av", None)
    result = cli("export", out, "--movie", tmp_path / "a.mp4", "--otio", tmp_path / "a.otio")
    assert result.exit_code == 2 and "pip install 'idcli[movie]'" in result.stderr, result.output
    assert not (tmp_path / "a.otio").exists()


@needs_pyav
@pytest.mark.parametrize("sig", ["KILL", "TERM"])
def test_a_movie_stopped_at_its_write_leaves_nothing_partial(out: Path, tmp_path: Path, sig: str) -> None:
    """A real process signalled right after the movie's temporary is fsynced, before its rename: SIGTERM
    removes the temporary (exit 143); kill -9 cannot, and the next export cleans it up."""
    import subprocess
    import sys

    from cli_helpers import SIGNAL_HOOK, TMP_SUFFIX, cli_env

    target = tmp_path / "edit room" / "cut.mp4"
    args = ["export", str(out), "--movie", str(target), "--fps", "12"]
    stopped = subprocess.run([sys.executable, "-c", SIGNAL_HOOK, "cut.mp4", "1", sig, *args], capture_output=True,
                             text=True, env=cli_env(), timeout=300)
    left = sorted(target.parent.glob(f"*{TMP_SUFFIX}"))
    assert not target.exists()
    if sig == "TERM":
        assert stopped.returncode == 143 and "interrupted" in stopped.stderr, stopped.stderr
        assert left == []
        return
    assert stopped.returncode == -9 and len(left) == 1
    again = subprocess.run([sys.executable, "-m", "idcli", *args], capture_output=True, text=True, env=cli_env(),
                           timeout=300)
    assert again.returncode == 0, again.stderr
    assert target.is_file() and sorted(target.parent.glob(f"*{TMP_SUFFIX}")) == []


@needs_pyav
def test_a_device_at_the_movie_path_is_never_replaced(out: Path, tmp_path: Path) -> None:
    import os
    import stat

    target = tmp_path / "null.mp4"
    try:
        os.mknod(target, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # /dev/null's numbers
    except PermissionError:
        pytest.skip("making a device node needs root")
    result = cli("export", out, "--movie", target)
    assert result.exit_code == 5 and "is a device" in result.stderr, result.output
    assert stat.S_ISCHR(os.lstat(target).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null.mp4", "renders"]


def test_takes_of_odd_sizes_make_an_even_frame(tmp_path: Path) -> None:
    """yuv420p halves both sides: the frame is the largest width and height, each rounded up to even; a take
    of another shape is scaled to fit it and centred on black."""
    from idcli.review.animatic_movie import frame_size, letterbox
    from idcli.review.runs import Run, Shot, Take

    takes = [Take("sh010", take, f"key{take}", take, "a prompt", (), None, None, None, f"sh010/sh010_t{take}.png",
                  f"sh010/sh010_t{take}.json", width, height, "0" * 64, None)
             for take, (width, height) in enumerate([(511, 200), (300, 287)], 1)]
    assert frame_size(Run(tmp_path, [], None), takes) == (512, 288)
    # a cut of slates alone: the folder's takes
    assert frame_size(Run(tmp_path, [Shot("sh010", takes, None)], None), []) == (512, 288)
    tall = np.full((100, 50, 3), 200, np.uint8)
    boxed = letterbox(tall, (512, 288))
    assert boxed.shape == (288, 512, 3)
    assert boxed[:, 256 - 72:256 + 72].min() == 200 and boxed[:, :256 - 73].max() == 0  # 144 wide, centred


@pytest.mark.parametrize(("flag", "label", "form"), [("--drop-frame", "01:00:00;00", "DF"),
                                                     ("--non-drop-frame", "01:00:00:00", "NDF")])
def test_the_fcp_xml_alone_takes_the_drop_frame_choice(out: Path, tmp_path: Path, flag: str, label: str,
                                                       form: str) -> None:
    """The XML's sequence <timecode> is written in the chosen form, so the choice is not refused with it alone."""
    target = tmp_path / "cut" / "a.xml"
    result = cli("export", out, "--fcp-xml", target, "--fps", "29.97", flag)
    assert result.exit_code == 0, result.output
    sequence_timecode = ElementTree.parse(target).getroot().find(".//sequence/timecode")
    assert sequence_timecode is not None
    assert (sequence_timecode.findtext("string"), sequence_timecode.findtext("displayformat")) == (label, form)


@pytest.mark.parametrize(("fps", "flag", "form"), [("29.97", None, "DF"), ("59.94", None, "DF"),
                                                   ("29.97", "--non-drop-frame", "NDF"),
                                                   ("59.94", "--non-drop-frame", "NDF")])
def test_every_fcp_xml_timecode_counts_as_the_sequence_does(out: Path, tmp_path: Path, fps: str, flag: str | None,
                                                             form: str) -> None:
    """An FCP 7 XML at 29.97 or 59.94 drop frame said so of its sequence's ``<timecode>`` only: each still's
    ``<file>`` timecode was ``00:00:00:00`` NDF (the adapter's default), so one file counted frames two ways and an
    importer that takes the media's timecode form from its file saw non-drop media in a drop-frame sequence. Every
    ``<timecode>`` now carries the export's choice, its label in that form; OTIO's adapter reads each back."""
    target = tmp_path / "cut.xml"
    result = cli("export", out, "--fcp-xml", target, "--fps", fps, *((flag,) if flag else ()))
    assert result.exit_code == 0, result.output
    root = ElementTree.parse(target).getroot()
    sequence = root.find(".//sequence")
    assert sequence is not None
    found = [(parent.tag, element.findtext("displayformat"), element.findtext("string"))
             for parent in root.iter() for element in parent.findall("timecode")]
    assert {tag for tag, _form, _label in found} == {"sequence", "file"}, found
    assert len([tag for tag, _form, _label in found if tag == "file"]) == 3  # one per still
    separator = ";" if form == "DF" else ":"
    assert all(shown == form for _tag, shown, _label in found), found
    assert all(label is not None and label[8] == separator for _tag, _form, label in found), found
    assert {label for tag, _form, label in found if tag == "file"} == {f"00:00:00{separator}00"}
    nominal = {"29.97": 30, "59.94": 60}[fps]
    sequence_label = next(label for tag, _form, label in found if tag == "sequence")
    assert sequence_label is not None
    assert smpte_frames(sequence_label, nominal, form == "DF") == smpte_frames(
        f"01:00:00{separator}00", nominal, form == "DF")
    timeline = otio.adapters.read_from_file(str(target))
    clips = stills(timeline.video_tracks()[0])
    assert len(clips) == 3 and all(clip.media_reference.available_range.start_time.to_frames() == 0
                                   for clip in clips)
    assert timeline.global_start_time.to_frames() == smpte_frames(f"01:00:00{separator}00", nominal, form == "DF")


_LIBRARY_EXPORT = """
import os, signal, sys
from pathlib import Path
from idcli.review.export_files import ExportFiles

folder = Path(sys.argv[1])
names = ("a.otio", "b.edl", "c.xml")
real_replace = os.replace
renames = []

def replace(source, target, **kwargs):
    renames.append(Path(str(target)).name)
    if len(renames) == 2:  # the pipeline's farm manager sends SIGTERM as the set lands
        os.kill(os.getpid(), signal.SIGTERM)
    real_replace(source, target, **kwargs)

assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # a library caller that set no handler
with ExportFiles() as files:
    for name in names:
        files.write(folder / name, b"the new cut")
    os.replace = replace
    files.land()
print("landed")
"""


def test_a_library_caller_terminated_while_a_set_lands_ends_with_the_last_cut_whole(tmp_path: Path) -> None:
    """A pipeline that exports from Python leaves SIGTERM to the system's default, which ended the process at once:
    sent while the set landed, it left the new cut's .otio beside the last cut's EDL and XML (until 2026-12-02). The
    signal is held as for the CLI: the files renamed are put back, and then the process ends by SIGTERM as it would
    have, the folder holding the last cut whole and no temporary."""
    import signal
    import subprocess
    import sys

    names = ("a.otio", "b.edl", "c.xml")
    for name in names:
        (tmp_path / name).write_bytes(b"the last cut")
    result = subprocess.run([sys.executable, "-c", _LIBRARY_EXPORT, str(tmp_path)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == -signal.SIGTERM, (result.returncode, result.stdout, result.stderr)
    assert "landed" not in result.stdout and "Traceback" not in result.stderr, result.stderr
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == dict.fromkeys(names, b"the last cut")


def test_a_library_caller_that_catches_ctrl_c_still_ends_by_a_sigterm_that_came_after_it(tmp_path: Path) -> None:
    """Ctrl-C, then SIGTERM left to the system's default (a notebook's kernel catches KeyboardInterrupt and goes on;
    its manager then ends it), both while a set lands: held, only the first was raised, "the same request again", and
    the process went on running (until 2026-12-02), where the SIGTERM would have ended it at once. The Ctrl-C stops the
    landing, the earlier set is put back whole, and then the process ends by SIGTERM."""
    import signal
    import subprocess
    import sys

    script = _LIBRARY_EXPORT.replace(
        "        os.kill(os.getpid(), signal.SIGTERM)",
        "        os.kill(os.getpid(), signal.SIGINT)\n        os.kill(os.getpid(), signal.SIGTERM)").replace(
        "    files.land()\n", "    try:\n        files.land()\n    except KeyboardInterrupt:\n"
        "        os.replace = real_replace\n        print('Ctrl-C caught, going on')\n")
    assert script.count("signal.SIGINT") == 1 and "Ctrl-C caught" in script
    names = ("a.otio", "b.edl", "c.xml")
    for name in names:
        (tmp_path / name).write_bytes(b"the last cut")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == -signal.SIGTERM, (result.returncode, result.stdout, result.stderr)
    assert "landed" not in result.stdout and "Traceback" not in result.stderr, result.stderr
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == dict.fromkeys(names, b"the last cut")


_SIGNAL_AFTER_THE_LAST_RENAME = """
import os, signal, sys
from pathlib import Path
from idcli import interrupts
from idcli.review.export_files import ExportFiles

folder, sent = Path(sys.argv[1]), getattr(signal, sys.argv[2])
names = ("a.otio", "b.edl", "c.xml")
real_check = interrupts.HeldInterrupts.check
checks = []

def check(self):
    real_check(self)
    checks.append(1)
    if len(checks) == len(names) + 1:  # the check after the last rename: the set is in place, the signal comes now
        os.kill(os.getpid(), sent)

interrupts.HeldInterrupts.check = check
try:
    with ExportFiles() as files:
        for name in names:
            files.write(folder / name, b"the new cut")
        files.land()
except KeyboardInterrupt:
    print("interrupted")
"""


@pytest.mark.parametrize("sent", ["SIGINT", "SIGTERM"])
def test_a_signal_just_after_the_last_rename_leaves_no_earlier_file_beside_the_set(tmp_path: Path, sent: str) -> None:
    """The set in place, a Ctrl-C (or a SIGTERM left to the system's default) right after the last rename was raised as
    the hold ended, before the earlier files' links were removed: the new cut landed whole, and beside it a hidden
    temporary for each earlier file, the earlier movie's disk space held, until the next export into the folder (until
    2026-12-02). The links are removed inside the hold now, before the signal acts."""
    import signal
    import subprocess
    import sys

    names = ("a.otio", "b.edl", "c.xml")
    for name in names:
        (tmp_path / name).write_bytes(b"the last cut")
    result = subprocess.run([sys.executable, "-c", _SIGNAL_AFTER_THE_LAST_RENAME, str(tmp_path), sent],
                            capture_output=True, text=True, timeout=120)
    if sent == "SIGINT":  # Python's own handler: the export stops as interrupted, after the set is in place
        assert (result.returncode, result.stdout) == (0, "interrupted\n"), (result.returncode, result.stderr)
    else:
        assert result.returncode == -signal.SIGTERM, (result.returncode, result.stdout, result.stderr)
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == dict.fromkeys(names, b"the new cut")


_GRACEFUL_CALLER = """
import os, signal, sys
from pathlib import Path
from idcli.review.export_files import ExportFiles

folder = Path(sys.argv[1])
names = ("a.otio", "b.edl", "c.xml")

def graceful(signum, frame):  # a pipeline's: the first SIGTERM winds down, a second one ends the process at once
    print("winding down", flush=True)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

signal.signal(signal.SIGTERM, graceful)
real_replace = os.replace
renames = []

def replace(source, target, **kwargs):
    renames.append(Path(str(target)).name)
    if len(renames) == 2:
        os.kill(os.getpid(), signal.SIGTERM)
    real_replace(source, target, **kwargs)

with ExportFiles() as files:
    for name in names:
        files.write(folder / name, b"the new cut")
    os.replace = replace
    files.land()
os.replace = real_replace
print("landed", flush=True)
os.kill(os.getpid(), signal.SIGTERM)  # the second: the operator means it
print("still running")
"""


def test_a_handler_the_held_signal_runs_may_set_another_and_it_stands(tmp_path: Path) -> None:
    """A pipeline's SIGTERM handler that winds down and leaves a second SIGTERM to the system's default (to end the
    process at once), run for a SIGTERM held while an export's files landed: the hold then put the pipeline's handler
    back over the default it had set, and the second SIGTERM only wound down again, the process going on (until
    2026-12-02). The handler's own change stands now: the set lands, and the second SIGTERM ends the process."""
    import signal
    import subprocess
    import sys

    names = ("a.otio", "b.edl", "c.xml")
    for name in names:
        (tmp_path / name).write_bytes(b"the last cut")
    result = subprocess.run([sys.executable, "-c", _GRACEFUL_CALLER, str(tmp_path)], capture_output=True, text=True,
                            timeout=120)
    assert (result.returncode, result.stdout) == (-signal.SIGTERM, "winding down\nlanded\n"), (
        result.returncode, result.stdout, result.stderr)
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == dict.fromkeys(names, b"the new cut")


_CTRL_C_AS_THE_HOLD_IS_UNDONE = """
import os, signal, sys
from pathlib import Path
from idcli.review.export_files import ExportFiles

folder = Path(sys.argv[1])
names = ("a.otio", "b.edl", "c.xml")
real_signal = signal.signal
armed = [True]

def spy(signum, handler):
    previous = real_signal(signum, handler)
    if armed and signum == signal.SIGINT and handler is signal.default_int_handler:
        armed.clear()
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C as the hold is undone: SIGINT's handler back, SIGTERM's not yet
    return previous

with ExportFiles() as files:
    for name in names:
        files.write(folder / name, b"the new cut")
    signal.signal = spy
    try:
        files.land()
    except KeyboardInterrupt:  # a pipeline that goes on after a Ctrl-C
        print("interrupted", flush=True)
    signal.signal = real_signal
os.kill(os.getpid(), signal.SIGTERM)  # left to the system's default: the process ends
print("still running")
"""


def test_a_ctrl_c_as_the_hold_is_undone_leaves_no_signal_held_for_ever(tmp_path: Path) -> None:
    """A Ctrl-C between the hold's putting back SIGINT's handler and SIGTERM's raised there, and SIGTERM stayed with the
    ended hold, which took every SIGTERM after it and did nothing: the process could no longer be terminated (until
    2026-12-02). Both are put back with the two blocked, and the Ctrl-C acts after."""
    import signal
    import subprocess
    import sys

    names = ("a.otio", "b.edl", "c.xml")
    result = subprocess.run([sys.executable, "-c", _CTRL_C_AS_THE_HOLD_IS_UNDONE, str(tmp_path)], capture_output=True,
                            text=True, timeout=120)
    assert (result.returncode, result.stdout) == (-signal.SIGTERM, "interrupted\n"), (
        result.returncode, result.stdout, result.stderr)
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == dict.fromkeys(names, b"the new cut")
