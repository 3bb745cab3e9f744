"""Selects, the OTIO animatic (read back with opentimelineio and opened by its own tools), evaluation
tables, and the shot field `duration` (which changes no job key)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

import pytest
from review_helpers import SHOTS, cli

import idcli

otio = pytest.importorskip("opentimelineio")
pytest.importorskip("insightface", exc_type=ImportError)
if TYPE_CHECKING:  # importorskip's module is a value, not a name an annotation can use
    import opentimelineio
pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")
BIN = Path(sys.executable).parent


@pytest.fixture
def out(review_run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "renders" / "out"
    shutil.copytree(review_run, target)
    return target



def test_select_records_picks_checked_against_the_committed_takes(out: Path) -> None:
    result = cli("select", out, "sh010=2", "sh030=t1")
    assert result.exit_code == 0, result.output
    assert "idcli review" not in result.output  # no page yet, nothing to refresh
    data = json.loads((out / "selects.json").read_text("utf-8"))
    keys = {(r["shot_id"], r["take"]): r["job_key"] for r in idcli.read_results(out)}
    assert {s: p["take"] for s, p in data["selects"].items()} == {"sh010": 2, "sh030": 1}
    assert data["selects"]["sh010"]["job_key"] == keys[("sh010", 2)]
    before = (out / "selects.json").read_bytes()
    unknown_shot = cli("select", out, "sh02=1")
    assert unknown_shot.exit_code == 2 and "sh02: no rendered shot" in unknown_shot.stderr
    assert "did you mean" in unknown_shot.stderr
    unknown_take = cli("select", out, "sh020=1", "sh010=5")
    assert unknown_take.exit_code == 2
    assert "sh010=5: no take 5 is rendered (rendered takes: 1, 2)" in unknown_take.stderr
    not_rendered = cli("select", out, "sh040=1")  # in the shot list, never rendered
    assert not_rendered.exit_code == 2
    assert cli("select", out, "sh010").exit_code == 2  # not SHOT=TAKE
    assert (out / "selects.json").read_bytes() == before  # nothing changed by the refused picks
    assert cli("select", out, "sh010=none").exit_code == 0
    assert set(json.loads((out / "selects.json").read_text("utf-8"))["selects"]) == {"sh030"}



@pytest.mark.parametrize("code", ["EROFS", "EACCES"])
def test_select_into_a_folder_it_cannot_write_says_so_as_render_does(out: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     code: str) -> None:
    """A read-only output folder (a mounted delivery, a share) gave `OUT/.idcli/selects.lock: Read-only file
    system`; every other command says the output folder is not writable. Exit 5 either way, selects.json untouched."""
    import errno
    import os

    from idcli.review import selects

    real_open = os.open

    def refuse_the_lock(path, *args, **kwargs):
        if str(path).endswith("selects.lock"):
            raise OSError(getattr(errno, code), os.strerror(getattr(errno, code)), str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(selects.os, "open", refuse_the_lock)
    result = cli("select", out, "sh010=2")
    assert result.exit_code == 5, result.output
    assert f"output folder {out} is not writable" in result.stderr, result.stderr
    assert not (out / "selects.json").exists()

def test_select_refuses_an_orphan_take(out: Path) -> None:
    """A take of a shot no longer in the shot list, or beyond its `takes:`, is kept on disk but is no part of
    the shot list any more (docs/review.md): picking it is refused, saying why and what to do."""
    manifest_path = out / ".idcli" / "shotlist.jsonl"
    manifest = json.loads(manifest_path.read_text("utf-8"))
    assert ["sh010", 2] in manifest["takes"] and ["sh030", 1] in manifest["takes"]
    # As a render of the edited shot list records it: sh010 lowered to `takes: 1`, sh030 removed.
    manifest["takes"] = [t for t in manifest["takes"] if t != ["sh010", 2] and t[0] != "sh030"]
    manifest_path.write_text(json.dumps(manifest) + "\n", "utf-8")
    beyond = cli("select", out, "sh010=2")
    assert beyond.exit_code == 2, beyond.output
    assert "sh010=2: take 2 is an orphan" in beyond.stderr and "takes of sh010 there: 1" in beyond.stderr
    assert "raise" in beyond.stderr, beyond.stderr
    removed = cli("select", out, "sh030=1")
    assert removed.exit_code == 2, removed.output
    assert "sh030=1: an orphan: shot sh030 is no longer in the shot list" in removed.stderr, removed.stderr
    assert not (out / "selects.json").exists()  # nothing written
    assert cli("select", out, "sh010=1").exit_code == 0  # a live take still can be picked


def test_a_select_of_a_shot_taken_out_of_the_shot_list_says_on_the_page_it_is_left_out(out: Path,
                                                                                        tmp_path: Path) -> None:
    """sh030 picked, then taken out of the shot list: export leaves it out of the animatic, and the page showed its
    take "selected" (and ✓ in the index) as if it were in the cut."""
    assert cli("select", out, "sh030=2", "sh010=1").exit_code == 0
    manifest_path = out / ".idcli" / "shotlist.jsonl"
    manifest = json.loads(manifest_path.read_text("utf-8"))
    manifest["shots"] = [s for s in manifest["shots"] if s["id"] != "sh030"]
    manifest["takes"] = [t for t in manifest["takes"] if t[0] != "sh030"]
    manifest_path.write_text(json.dumps(manifest) + "\n", "utf-8")
    assert cli("review", out).exit_code == 0
    page = (out / "review" / "index.html").read_text("utf-8")
    removed = page[page.index('id="shot-sh030"'):]
    removed = removed[:removed.index("</section>")]
    kept = page[page.index('id="shot-sh010"'):]
    kept = kept[:kept.index("</section>")]
    assert "selected</span>" in removed and "not in the shot list: left out of the animatic" in removed
    assert "selected</span>" in kept and "left out of the animatic" not in kept
    index = page[page.index('<nav aria-label="Shots"'):page.index("</nav>")]
    links = {item.split('href="#shot-', 1)[1].split('"', 1)[0]: item for item in index.split("<li>")[1:]}
    assert "<span class=navpick>✓t1</span>" in links["sh010"]
    assert "✓" not in links["sh030"] and '"picked take 2, but not in the shot list: left out of the animatic">out<' \
        in links["sh030"], links["sh030"]
    timeline = tmp_path / "cut.otio"
    assert cli("export", out, "--otio", timeline).exit_code == 0
    names = [clip.name for clip in otio.adapters.read_from_file(str(timeline)).find_clips()]
    assert any("sh010" in name for name in names) and not any("sh030" in name for name in names), names


def test_select_json_reports_the_picks_the_changes_and_the_notes(out: Path) -> None:
    """`select --json`: one document on stdout holding the picks as selects.json holds them after the command, what
    the picks given changed and the notes (a dropped junk pick), nothing else there; a refused pick and a damaged
    selects.json are the contract's error document with exit 2, and change nothing."""
    assert cli("select", out, "sh030=2").exit_code == 0
    data = json.loads((out / "selects.json").read_text("utf-8"))
    data["selects"]["sh020"] = {"take": 9, "job_key": "idcli-job-v2:" + "0" * 64, "selected": "2026-11-30T06:00:00"}
    (out / "selects.json").write_text(json.dumps(data), "utf-8")
    result = cli("select", out, "sh010=2", "sh030=t1", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)  # the one document, nothing else on stdout
    assert list(document)[:3] == ["ok", "exit_code", "error"]
    assert document["ok"] is True and document["exit_code"] == 0 and document["error"] is None
    assert document["out_dir"] == str(out.absolute())
    assert document["selects_file"] == {"path": "selects.json", "abs_path": str((out / "selects.json").absolute())}
    assert document["selects"] == json.loads((out / "selects.json").read_text("utf-8"))["selects"]
    keys = {(r["shot_id"], r["take"]): r["job_key"] for r in idcli.read_results(out)}
    assert {s: (p["take"], p["job_key"]) for s, p in document["selects"].items()} == {
        "sh010": (2, keys[("sh010", 2)]), "sh030": (1, keys[("sh030", 1)])}
    assert all(p["selected"] for p in document["selects"].values())
    assert document["changed"] == ["sh010=t2 (new)", "sh030=t1 (was t2)"]
    assert len(document["notes"]) == 1 and document["notes"][0].startswith("selects.json: dropped sh020=t9")
    assert "dropped sh020=t9" in result.stderr  # the note is on stderr too, as without --json
    again = json.loads(cli("select", out, "sh010=2", "--json").stdout)
    assert again["changed"] == [] and again["notes"] == [] and again["selects"] == document["selects"]
    before = (out / "selects.json").read_bytes()
    refused = cli("select", out, "sh010=5", "--json")
    error = json.loads(refused.stdout)
    assert refused.exit_code == 2 and error["ok"] is False and error["exit_code"] == 2
    assert error["error"]["type"] == "InputError" and "no take 5 is rendered" in error["error"]["message"]
    (out / "selects.json").write_text("[1, 2", "utf-8")
    damaged = cli("select", out, "sh010=1", "--json")
    error = json.loads(damaged.stdout)
    assert damaged.exit_code == 2 and error["exit_code"] == 2 and "selects.json: damaged" in error["error"]["message"]
    (out / "selects.json").write_bytes(before)
    assert cli("select", out, "sh010=none", "--json").exit_code == 0
    assert set(json.loads((out / "selects.json").read_text("utf-8"))["selects"]) == {"sh030"}


def test_select_says_what_it_drops_from_an_edited_selects_json_and_keeps_every_real_pick(out: Path) -> None:
    """Junk in a hand-edited selects.json (a take never rendered, a shot never rendered) was carried forward silently
    by every select, and ignored by review with a message each time. select now drops it, saying what; a pick of a
    take that is not rendered now but whose image is kept in .idcli/superseded is kept, saying how to put it back."""
    from idcli.superseded import key_label

    keys = {(r["shot_id"], r["take"]): r["job_key"] for r in idcli.read_results(out)}
    aside = out / ".idcli" / "superseded" / "sh030"  # sh030's picked take, moved aside (a failed re-render)
    aside.mkdir(parents=True)
    label = key_label(keys[("sh030", 1)])
    for ext in ("png", "json"):
        (out / "sh030" / f"sh030_t1.{ext}").rename(aside / f"sh030_t1.{label}.{ext}")
    (out / "selects.json").write_text(json.dumps({"schema": 1, "selects": {
        "sh010": {"take": 2, "job_key": keys[("sh010", 2)], "selected": "2026-11-30T06:00:00+00:00"},
        "sh020": {"take": 7},
        "sh999": {"take": 1, "job_key": "idcli-job-v2:" + "0" * 64},
        "sh030": {"take": 1, "job_key": keys[("sh030", 1)], "selected": "2026-11-30T06:01:00+00:00"}}}), "utf-8")
    result = cli("select", out, "sh010=1")
    assert result.exit_code == 0, result.output
    picks = json.loads((out / "selects.json").read_text("utf-8"))["selects"]
    assert {shot: pick["take"] for shot, pick in picks.items()} == {"sh010": 1, "sh030": 1}
    assert picks["sh030"]["job_key"] == keys[("sh030", 1)]  # kept as it was
    notes = result.stderr
    assert "idcli: note: selects.json: dropped sh020=t7: no take 7 of sh020 is rendered, none kept aside" in notes
    assert "idcli: note: selects.json: dropped sh999=t1: no take 1 of sh999 is rendered, none kept aside" in notes
    assert ("idcli: note: selects.json: kept sh030=t1, not rendered now: the picked image is kept aside; "
            f"idcli restore {out} sh030_t1 --key {label} puts it back") in notes, notes
    again = cli("select", out, "sh010=2")  # nothing left to say
    assert again.exit_code == 0 and "dropped" not in again.stderr and "kept sh030=t1" in again.stderr


def test_select_from_python_returns_what_it_dropped(out: Path) -> None:
    """A pipeline calling select without a ``notes`` list lost the word that junk picks were dropped: the picks it
    returns carry it (``.notes``), the same lines as ``notes`` gets and the command prints."""
    from idcli.review.selects import select

    (out / "selects.json").write_text(json.dumps({"schema": 1, "selects": {"sh020": {"take": 7}}}), "utf-8")
    picks = select(out, ["sh010=1"])
    assert dict(picks) == {"sh010": picks["sh010"]} and picks["sh010"]["take"] == 1
    assert picks.notes == ["selects.json: dropped sh020=t7: no take 7 of sh020 is rendered, none kept aside"]
    handed: list[str] = []
    assert select(out, ["sh010=2"], handed).notes == handed == []  # nothing left to say
    from idcli.review.selects import Selects

    assert Selects() == {} and Selects().notes == [] and Selects(picks).notes == []  # made as a dict is, empty


def test_select_from_python_takes_one_pick_as_a_string(out: Path) -> None:
    """``select(out, "sh010=2")`` read the string letter by letter ("'s': write SHOT=TAKE"); one pick is one pick,
    as ``render(only="sh010")`` takes one shot id."""
    from idcli.review.selects import select

    assert select(out, "sh010=2")["sh010"]["take"] == 2
    assert json.loads((out / "selects.json").read_text("utf-8"))["selects"]["sh010"]["take"] == 2


@pytest.mark.parametrize("call", [lambda out: (None, ["sh010=1"]), lambda out: (out, [1]),
                                  lambda out: (out, [("sh010", 1)]), lambda out: (out, 5)])
def test_select_from_python_refuses_arguments_of_the_wrong_type(out: Path, call) -> None:
    """``select(None, ...)`` was a TypeError, ``select(out, [1])`` an AttributeError: InputError (exit 2), as every
    public function (README, From Python), and selects.json untouched."""
    from idcli.review.selects import select

    before = (out / "selects.json").read_bytes() if (out / "selects.json").exists() else None
    with pytest.raises(idcli.InputError) as caught:
        select(*call(out))
    assert caught.value.exit_code == 2
    assert ((out / "selects.json").read_bytes() if (out / "selects.json").exists() else None) == before


def test_select_says_the_storyboard_page_shows_the_picks_once_rewritten(out: Path) -> None:
    # The page is static: a director who picks takes while it is open sees them after `idcli review`.
    assert cli("review", out).exit_code == 0
    page = (out / "review" / "index.html").read_text("utf-8")
    assert 'class="badge sel"' not in page
    result = cli("select", out, "sh010=2")
    assert result.exit_code == 0, result.output
    assert f"idcli review {out}" in result.output
    assert cli("review", out).exit_code == 0
    assert (out / "review" / "index.html").read_text("utf-8").count('class="badge sel"') == 1


def test_export_reads_back_with_opentimelineio(out: Path, tmp_path: Path) -> None:
    assert cli("select", out, "sh010=2").exit_code == 0
    edit = tmp_path / "editorial"
    edit.mkdir()
    target = edit / "animatic.otio"
    result = cli("export", out, "--otio", target, "--fps", "25")
    assert result.exit_code == 0, result.output
    timeline = otio.adapters.read_from_file(str(target))
    (track,) = timeline.video_tracks()
    clips = list(track.find_clips())
    assert [c.name for c in clips] == ["sh010", "sh020", "sh030"]
    assert [c.name for c in track] == ["sh010", "sh020", "sh030", "sh040"]  # sh040 not rendered: a gap
    assert isinstance(track[3], otio.schema.Gap)
    # durations at the given fps: 2.0 s, 1.5 s, the default 3 s, and the gap keeps sh040's 3 s
    assert [item.duration().to_frames() for item in track] == [50, 38, 75, 75]
    assert all(item.duration().rate == 25 for item in track)
    assert track.duration().to_seconds() == pytest.approx(50 / 25 + 38 / 25 + 3 + 3)
    # the selected take where one is selected, the first take elsewhere
    assert [c.metadata["idcli"]["take"] for c in clips] == [2, 1, 1]
    assert [c.metadata["idcli"]["selected"] for c in clips] == [True, False, False]
    records = {(r["shot_id"], r["take"]): r for r in idcli.read_results(out)}
    for clip in clips:
        meta = clip.metadata["idcli"]
        record = records[(clip.name, meta["take"])]
        assert (meta["job_key"], meta["seed"], meta["prompt"]) == (record["job_key"], record["seed"], record["prompt"])
        assert meta["random_weights"] is True  # the tiny preset's noise: editorial can tell it from real renders
        reference = clip.media_reference
        # a still held for the clip: an ExternalReference to the one PNG (what OTIO's adapters and its
        # bundlers read; an ImageSequenceReference is skipped by otioz/otiod and breaks FCP XML)
        assert isinstance(reference, otio.schema.ExternalReference)
        url = reference.target_url
        assert not url.startswith(("/", "file:"))  # relative to the .otio file
        media = (target.parent / unquote(url)).resolve()
        assert media == (out / record["image"]["path"]).resolve() and media.is_file()
        # the clip's range lies inside the media's available range
        assert reference.available_range.contains(clip.source_range) or \
            reference.available_range == clip.source_range


def test_a_shot_nobody_picked_stands_as_its_first_take_qa_did_not_flag(out: Path, tmp_path: Path) -> None:
    """Take 1 flagged by QA and a retake that passed: the animatic, the page's contact sheet, the printed boards
    and deliver all show the retake (one rule, ``default_take``); with no flags, take 1 as before."""
    from idcli.review.runs import load_run

    def set_flags(take: int, flags: list[str]) -> None:  # the verdict as `idcli qa` writes it into the sidecar
        sidecar = out / "sh010" / f"sh010_t{take}.json"
        record = json.loads(sidecar.read_text("utf-8"))
        record["qa"] = {**(record.get("qa") or {}), "flags": flags}
        sidecar.write_text(json.dumps(record), "utf-8")

    def exported() -> int:
        target = tmp_path / "animatic.otio"
        assert cli("export", out, "--otio", target).exit_code == 0
        (track,) = otio.adapters.read_from_file(str(target)).video_tracks()
        return next(c for c in track.find_clips() if c.name == "sh010").metadata["idcli"]["take"]

    def chosen_take() -> int | None:
        chosen = load_run(out).shots[0].chosen
        return None if chosen is None else chosen.take

    takes = sorted(r["take"] for r in idcli.read_results(out) if r["shot_id"] == "sh010")
    assert takes[:2] == [1, 2]
    for take in takes:
        set_flags(take, [])
    assert exported() == 1 and chosen_take() == 1
    set_flags(1, ["no_face"])
    assert exported() == 2 and chosen_take() == 2
    for take in takes:  # every take flagged: the first, as nothing passed
        set_flags(take, ["no_face"])
    assert exported() == 1
    assert cli("select", out, "sh010=2").exit_code == 0  # a pick outranks every flag
    assert exported() == 2


def test_the_otio_tools_open_it_without_warnings(out: Path, tmp_path: Path) -> None:
    target = tmp_path / "animatic.otio"
    assert cli("export", out, "--otio", target).exit_code == 0
    otiocat, otiotool = BIN / "otiocat", BIN / "otiotool"
    if not (otiocat.exists() and otiotool.exists()):
        pytest.skip("otiocat/otiotool are not installed beside this Python")
    cat = subprocess.run([str(otiocat), str(target)], capture_output=True, text=True, timeout=120, check=False)
    assert cat.returncode == 0 and cat.stderr == "", cat.stderr
    assert json.loads(cat.stdout)["OTIO_SCHEMA"] == "Timeline.1"
    tool = subprocess.run([str(otiotool), "-i", str(target), "--list-clips", "--verify-ranges", "--stats"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert tool.returncode == 0 and tool.stderr == "", tool.stderr
    assert tool.stdout.count("IN BOUNDS") == 3 and "OUT OF BOUNDS" not in tool.stdout


def _bundled(edit: Path, unpacked: Path) -> opentimelineio.schema.Timeline:
    """``otioconvert -i animatic.otio -o animatic.otioz`` run in ``edit``, as editorial packs the animatic, and the
    bundle read back with its media extracted into ``unpacked``."""
    bundle = subprocess.run([str(BIN / "otioconvert"), "-i", "animatic.otio", "-o", "animatic.otioz"], cwd=edit,
                            capture_output=True, text=True, timeout=120, check=False)
    assert bundle.returncode == 0, bundle.stderr
    unpacked.mkdir()
    return otio.adapters.read_from_file(str(edit / "animatic.otioz"), extract_to_directory=str(unpacked))


def test_the_animatic_bundles_with_its_images_for_editorial(out: Path, tmp_path: Path) -> None:
    # What an editor does with an animatic from another department: check its media, then pack it with
    # its images into one .otioz. OTIO resolves relative URLs from the working folder, so from the
    # .otio file's own folder; a space in the render folder's path must not matter.
    assert cli("select", out, "sh010=2").exit_code == 0
    renders = out.rename(out.with_name("sc 12 renders"))
    edit = tmp_path / "editorial"
    edit.mkdir()
    assert cli("export", renders, "--otio", edit / "animatic.otio").exit_code == 0
    otiotool, otioconvert = BIN / "otiotool", BIN / "otioconvert"
    if not (otiotool.exists() and otioconvert.exists()):
        pytest.skip("otiotool/otioconvert are not installed beside this Python")
    media = subprocess.run([str(otiotool), "-i", "animatic.otio", "--verify-media"], cwd=edit,
                           capture_output=True, text=True, timeout=120, check=False)
    assert media.returncode == 0 and media.stdout.count("MEDIA EXISTS") == 3, media.stdout + media.stderr
    unpacked = tmp_path / "unpacked"
    timeline = _bundled(edit, unpacked)
    clips = list(timeline.find_clips())
    assert [(c.name, c.metadata["idcli"]["take"]) for c in clips] == [("sh010", 2), ("sh020", 1), ("sh030", 1)]
    for clip in clips:
        packed = unpacked / unquote(clip.media_reference.target_url)
        assert packed.is_file(), clip.media_reference
        assert packed.read_bytes() == (renders / clip.metadata["idcli"]["image"]).read_bytes()


def test_a_re_export_says_what_changed_in_the_cut_since_the_otio_it_replaces(out: Path, tmp_path: Path) -> None:
    """An editor who imported the last export needs to know what to refresh. A take re-rendered since (its prompt
    changed) keeps its file name, so the EDL and the XML name the same still and the re-export said nothing: the
    editor's bin kept the old picture. The .otio it replaces is compared with the new cut, shot by shot: a pick
    changed, a take re-rendered, a shot rendered since (black before), a shot's length; "as it was" when nothing
    changed (and nothing said for a first export)."""
    from review_helpers import SELFIES, face_engine_factory

    edit = tmp_path / "editorial"
    cut = edit / "cut.otio"
    first = cli("export", out, "--otio", cut, "--edl", edit / "cut.edl", "--fps", "24")
    assert first.exit_code == 0, first.output
    assert "last written" not in first.stderr
    again = cli("export", out, "--otio", cut, "--fps", "24", "--json")
    assert again.exit_code == 0, again.output
    unchanged = f"{cut}: the cut is as it was when this file was last written (no shot changed)"
    assert unchanged in again.stderr and unchanged in json.loads(again.stdout)["notes"]
    # The director picks another take of sh010; sh020's prompt changes and it is rendered again (the same file
    # names), sh040 is rendered for the first time, sh030 is made longer.
    project = tmp_path / "project"
    shutil.copytree(SELFIES, project / "selfies")
    shots = project / "shots.yaml"
    shots.write_text(SHOTS.replace("close-up of {mara}, rain", "close-up of {mara}, snow").replace(
        '"an empty lighthouse at dusk"', '"an empty lighthouse at dusk"\n    duration: 4'), "utf-8")
    report = idcli.render(idcli.load_shotlist(shots), out, device="cpu", engine_factory=face_engine_factory())
    assert report.failed == 0
    assert cli("select", out, "sh010=2").exit_code == 0
    changed = cli("export", out, "--otio", cut, "--fps", "24", "--json")
    assert changed.exit_code == 0, changed.output
    (note,) = [n for n in json.loads(changed.stdout)["notes"] if "last written" in n]
    assert note.startswith(f"{cut}: changed since this file was last written: "), note
    said = note.removeprefix(f"{cut}: changed since this file was last written: ").split("; ")
    assert said == ["sh010 take 1 → take 2 (picked)", "sh020 take 1 re-rendered (a new image under the same file name)",
                    "sh030 72 → 96 frames", "sh040 rendered (was black): take 1 (a take re-rendered keeps its file "
                    "name: refresh its still where the last export was imported)"], said
    timeline = otio.adapters.read_from_file(str(cut))  # each clip's image hash, which the next re-export reads
    assert [clip.metadata["idcli"]["image_sha256"] for clip in timeline.find_clips()] == [
        hashlib.sha256((out / shot / f"{shot}_t{take}.png").read_bytes()).hexdigest()
        for shot, take in (("sh010", 2), ("sh020", 1), ("sh030", 1), ("sh040", 1))]


def test_a_re_export_at_another_rate_or_over_a_file_not_idclis_says_so_or_nothing(out: Path, tmp_path: Path) -> None:
    """The rate changed: every shot's frames moved, said once, not shot by shot. A file at the target that is no
    idcli animatic (damaged, another tool's .otio) holds no cut to compare: replaced as before, nothing said of it."""
    cut = tmp_path / "cut.otio"
    assert cli("export", out, "--otio", cut, "--fps", "24").exit_code == 0
    faster = cli("export", out, "--otio", cut, "--fps", "25")
    assert faster.exit_code == 0, faster.output
    assert (f"{cut}: changed since this file was last written: the rate is 25 fps (was 24): every shot's frames and "
            "timecode moved\n") in faster.stderr, faster.stderr
    later = cli("export", out, "--otio", cut, "--fps", "25", "--start", "00:59:30:00")
    assert (f"{cut}: changed since this file was last written: the cut starts at 00:59:30:00 (was 01:00:00:00): every "
            "record timecode moved\n") in later.stderr, later.stderr
    damaged = otio.adapters.read_from_file(str(cut))
    damaged.metadata["idcli"]["fps"] = "24"  # an idcli animatic edited by hand: its rate no number
    for foreign in ('{"OTIO_SCHEMA": "Timeline.1", "name": "theirs"', "{}", otio.adapters.write_to_string(
            otio.schema.Timeline(name="theirs", tracks=otio.schema.Stack()), "otio_json"),
            otio.adapters.write_to_string(damaged, "otio_json")):
        cut.write_text(foreign, "utf-8")
        result = cli("export", out, "--otio", cut, "--fps", "24")
        assert result.exit_code == 0, result.output
        assert "last written" not in result.stderr and "Traceback" not in result.output
        written = otio.adapters.read_from_file(str(cut))
        assert written.metadata["idcli"]["fps"] == 24


def test_a_re_export_over_a_crafted_otio_neither_crashes_nor_lets_its_names_forge_lines(out: Path,
                                                                                        tmp_path: Path) -> None:
    """The .otio an export replaces may be anyone's (a received folder, a second user's, an editor's hand edit): the
    change list reads it, and must neither crash the export nor print what its names say as idcli's own lines.
    Found by hostile-read-34: 200 KB of nested brackets crashed OTIO's JSON reader with a segmentation fault (exit
    139, nothing said, the new cut never written); a start edited to before 00:00:00:00 raised ValueError from the
    timecode label (a traceback); a shot id holding a line break printed a line of its own, e.g. a forged
    ``idcli: error: …``."""
    cut = tmp_path / "cut.otio"
    assert cli("export", out, "--otio", cut, "--fps", "24").exit_code == 0
    mine = cut.read_text("utf-8")
    nested = '{"OTIO_SCHEMA": "Timeline.1", "metadata": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    cut.write_text(nested, "utf-8")
    crashed = subprocess.run([sys.executable, "-m", "idcli", "export", str(out), "--otio", str(cut), "--fps", "24"],
                             capture_output=True, text=True, timeout=600, check=False)
    assert crashed.returncode == 0, (crashed.returncode, crashed.stderr[-2000:])
    assert "last written" not in crashed.stderr
    replaced = otio.adapters.read_from_file(str(cut))
    assert replaced.metadata["idcli"]["fps"] == 24
    earlier = otio.adapters.read_from_string(mine, "otio_json")
    earlier.global_start_time = otio.opentime.RationalTime(-48, 24)  # edited to start before midnight
    earlier.metadata["idcli"]["drop_frame"] = True  # and to say drop frame, which 24 fps has not
    cut.write_text(otio.adapters.write_to_string(earlier, "otio_json"), "utf-8")
    before_midnight = cli("export", out, "--otio", cut, "--fps", "24")
    assert before_midnight.exit_code == 0, before_midnight.output
    assert "Traceback" not in before_midnight.output
    assert (f"{cut}: changed since this file was last written: the cut starts at 01:00:00:00 (was frame -48): "
            "every record timecode moved\n") in before_midnight.stderr, before_midnight.stderr
    forged = otio.adapters.read_from_string(mine, "otio_json")
    stranger = otio.schema.Gap(name="sh999\nidcli: error: \x1b[31mrun rm -rf ~/renders to repair\x1b[0m",
                               source_range=otio.opentime.TimeRange(duration=otio.opentime.RationalTime(24, 24)))
    forged.tracks[0].append(stranger)
    cut.write_text(otio.adapters.write_to_string(forged, "otio_json"), "utf-8")
    said = cli("export", out, "--otio", cut, "--fps", "24", "--json")
    assert said.exit_code == 0, said.output
    assert not [line for line in said.stderr.splitlines() if line.startswith("idcli: error")], said.stderr
    assert "\x1b" not in said.stderr
    (note,) = [n for n in json.loads(said.stdout)["notes"] if "last written" in n]
    assert note == (f"{cut}: changed since this file was last written: sh999\\nidcli: error: \\x1b[31mrun rm -rf "
                    "~/renders to repair\\x1b[0m no longer in the cut"), note


def test_media_urls_stay_urls_for_a_folder_with_a_hash_a_percent_and_unicode(out: Path, tmp_path: Path) -> None:
    # "take #2", "50% grey", "Szene ü": an unescaped '#' starts a URL's fragment and '%' an escape, so OTIO's
    # url_utils read "Szene ü #2" as "Szene ü " and the .otioz bundler stopped (NotAFileOnDisk).
    from opentimelineio import url_utils

    renders = out.rename(out.with_name("Szene ü #2 50% grau"))
    edit = tmp_path / "editorial"
    edit.mkdir()
    assert cli("export", renders, "--otio", edit / "animatic.otio").exit_code == 0
    timeline = otio.adapters.read_from_file(str(edit / "animatic.otio"))
    for clip in timeline.find_clips():
        url = clip.media_reference.target_url
        assert "#" not in url and "%25" in url and " " in url  # a delimiter escaped; OTIO's form otherwise
        path = edit / url_utils.filepath_from_url(url)
        assert path.resolve() == (renders / clip.metadata["idcli"]["image"]).resolve() and path.is_file()
    otioconvert = BIN / "otioconvert"
    if not otioconvert.exists():
        pytest.skip("otioconvert is not installed beside this Python")
    unpacked = tmp_path / "unpacked"
    bundled = _bundled(edit, unpacked)
    for clip in bundled.find_clips():
        packed = unpacked / url_utils.filepath_from_url(clip.media_reference.target_url)
        assert packed.read_bytes() == (renders / clip.metadata["idcli"]["image"]).read_bytes()


@pytest.mark.parametrize(("typed", "rate"), [("23.976", 24000 / 1001), ("29.97", 30000 / 1001), ("25", 25.0),
                                             ("12", 12.0)])
def test_export_writes_the_ntsc_rate_an_editor_means(out: Path, tmp_path: Path, typed: str, rate: float) -> None:
    # `--fps 23.976` means NTSC film rate, 24000/1001: the timeline must carry that rate exactly, or
    # every timecode tool (OTIO's own to_timecode, EDL and XML adapters) sees a rate that is no SMPTE rate.
    target = tmp_path / "a.otio"
    assert cli("export", out, "--otio", target, "--fps", typed).exit_code == 0
    timeline = otio.adapters.read_from_file(str(target))
    rates = {item.duration().rate for item in timeline.video_tracks()[0]}
    assert rates == {rate} and timeline.global_start_time.rate == rate
    assert timeline.metadata["idcli"]["fps"] == rate


def test_export_makes_the_folder_of_the_otio_file(out: Path, tmp_path: Path) -> None:
    # as docs/review.md writes it: `idcli export renders/sc12 --otio editorial/sc12.otio`
    target = tmp_path / "editorial" / "sc12" / "sc12.otio"
    result = cli("export", out, "--otio", target)
    assert result.exit_code == 0, result.output
    assert len(list(otio.adapters.read_from_file(str(target)).find_clips())) == 3
    (tmp_path / "a-file").write_text("", "utf-8")
    blocked = cli("export", out, "--otio", tmp_path / "a-file" / "x.otio")
    assert blocked.exit_code == 5 and "a-file" in blocked.stderr and "Traceback" not in blocked.output


def test_export_with_an_edited_shot_list_needs_none_of_its_files(out: Path, tmp_path: Path) -> None:
    # The editor's laptop: the render folder and the shot list with new durations, not the cast's
    # selfies. --shots reads the order and durations; the files it names are the render's business.
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    shots = laptop / "shots.yaml"
    shots.write_text(SHOTS.replace("duration: 2.0", "duration: 4.0"), "utf-8")
    assert not (laptop / "selfies").exists()
    target = laptop / "animatic.otio"
    result = cli("export", out, "--otio", target, "--fps", "25", "--shots", shots)
    assert result.exit_code == 0, result.output
    track = otio.adapters.read_from_file(str(target)).video_tracks()[0]
    assert [item.duration().to_frames() for item in track] == [100, 38, 75, 75]
    page = cli("review", out, "--shots", shots)
    assert page.exit_code == 0, page.output
    # what is wrong in the shot list itself is still said, with its line
    shots.write_text(SHOTS.replace("duration: 2.0", "duration: -1"), "utf-8")
    bad = cli("export", out, "--otio", target, "--shots", shots)
    assert bad.exit_code == 2 and "shots.yaml:14:15: shots[0].duration" in bad.stderr, bad.stderr


def test_another_projects_shot_list_is_refused(out: Path, tmp_path: Path) -> None:
    # `--shots sc13.yaml` given for the sc12 renders: every shot would be a gap, an animatic of nothing
    # that exits 0. Like `render` into another project's folder, it is refused, naming both projects.
    other = tmp_path / "other.yaml"
    other.write_text(SHOTS.replace("project: review", "project: sc13"), "utf-8")
    for command in (["export", out, "--otio", tmp_path / "a.otio"], ["review", out], ["evaluate", out]):
        result = cli(*command, "--shots", other)
        assert result.exit_code == 2, (command, result.output)
        assert "project 'sc13'" in result.stderr and "'review'" in result.stderr, result.stderr
    assert not (tmp_path / "a.otio").exists()


def test_export_refuses_bad_input(out: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    nothing = cli("export", tmp_path / "empty", "--otio", tmp_path / "a.otio")
    assert nothing.exit_code == 2 and "no committed renders" in nothing.stderr
    assert not (tmp_path / "a.otio").exists()
    assert cli("export", out, "--otio", tmp_path / "a.json").exit_code == 2
    assert cli("export", out, "--otio", tmp_path / "a.otio", "--fps", "0").exit_code == 2
    # a damaged sidecar among good ones: the animatic is written from the good ones, the damage reported
    (out / "sh020" / "sh020_t3.json").write_text("{not json", "utf-8")
    damaged = cli("export", out, "--otio", tmp_path / "b.otio")
    assert damaged.exit_code == 2 and "sh020/sh020_t3.json: not valid JSON" in damaged.stderr
    assert len(list(otio.adapters.read_from_file(str(tmp_path / "b.otio")).find_clips())) == 3


@pytest.mark.parametrize("fps", ["1e-300", "0.5", "0", "-24", "nan", "inf", "240.5", "1000"])
def test_export_refuses_a_frame_rate_editorial_does_not_use(out: Path, tmp_path: Path, fps: str) -> None:
    # 1e-300 fps held each still for 1e300 seconds: a timeline no editor can open.
    result = cli("export", out, "--otio", tmp_path / "a.otio", "--fps", fps)
    assert result.exit_code == 2, result.output
    assert "--fps" in result.stderr and "from 1 to 240" in result.stderr, result.stderr
    assert not (tmp_path / "a.otio").exists()


@pytest.mark.parametrize("fps", ["1", "240"])
def test_export_takes_the_ends_of_the_frame_rate_range(out: Path, tmp_path: Path, fps: str) -> None:
    assert cli("export", out, "--otio", tmp_path / "a.otio", "--fps", fps).exit_code == 0
    timeline = otio.adapters.read_from_file(str(tmp_path / "a.otio"))
    assert timeline.metadata["idcli"]["fps"] == float(fps)


def test_duration_changes_no_job_key(write_shotlist) -> None:
    from cli_helpers import plan_jobs

    with_durations = plan_jobs(write_shotlist(SHOTS, "a.yaml"))
    without = plan_jobs(write_shotlist(SHOTS.replace("    duration: 2.0\n", "").replace("    duration: 1.5\n", ""),
                                       "b.yaml"))
    assert [j.key for j in with_durations] == [j.key for j in without]


def test_evaluate_shows_runs_side_by_side(out: Path, tmp_path: Path) -> None:
    strict = tmp_path / "strict"
    shutil.copytree(out, strict)
    # any face off its match counts as leakage now: the two-shot's takes are flagged, the close-ups are not
    assert cli("qa", strict, "--qa-leakage", "-1").exit_code == 0
    result = cli("evaluate", out, strict, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is True and document["error"] is None
    first, second = document["runs"]
    assert first["out_dir"] == str(out.absolute())
    assert first["images"] == second["images"] == 6 and first["with_qa"] == 4
    assert first["flagged"] == 0 and first["flagged_share"] == 0
    assert second["flagged"] == 2 and second["flags"]["leakage"] == 2 and second["flagged_share"] == 0.5
    assert first["leakage"]["images"] == 2 and first["leakage"]["max"] < 0.35
    assert first["characters"]["mara"]["matched"] == 4 and first["characters"]["theo"]["matched"] == 2
    assert first["characters"]["mara"]["lowest_cosine"] > 0.8
    assert set(first["face_area_by_framing"]) == {"medium", "close-up"}
    # close-ups fill more of the frame than the two-shot's faces
    areas = first["face_area_by_framing"]
    assert areas["close-up"]["mean_area_share"] > areas["medium"]["mean_area_share"]
    table = cli("evaluate", out, strict)
    assert table.exit_code == 0 and "mara: mean cosine" in table.stdout and "leakage" in table.stdout
    # a damaged sidecar in one of two runs: the message says which run it is in
    (strict / "sh020" / "sh020_t1.json").write_text("{not json", "utf-8")
    damaged = cli("evaluate", out, strict)
    assert damaged.exit_code == 2
    assert f"skipped {strict.absolute()}/sh020/sh020_t1.json: not valid JSON" in damaged.stderr, damaged.stderr
    problems = json.loads(cli("evaluate", out, strict, "--json").stdout)["error"]["problems"]
    assert [p["file"] for p in problems] == [f"{strict.absolute()}/sh020/sh020_t1.json"]


def test_export_names_a_shot_shown_with_a_take_qa_flagged_as_deliver_does(out: Path, tmp_path: Path) -> None:
    """No take of sh010 passed identity QA and none was picked: the animatic shows its first take, as deliver sends
    it, and said nothing where deliver names it. Export says it in deliver's words (one helper), on stderr and in
    ``--json``'s notes; a pick is the director's, not said."""
    takes = sorted(r["take"] for r in idcli.read_results(out) if r["shot_id"] == "sh010")
    for take in takes:  # the verdict as `idcli qa` writes it into the sidecar
        sidecar = out / "sh010" / f"sh010_t{take}.json"
        record = json.loads(sidecar.read_text("utf-8"))
        record["qa"] = {**(record.get("qa") or {}), "flags": ["no_face"]}
        sidecar.write_text(json.dumps(record), "utf-8")
    note = ("1 shot(s) shown in the animatic with a take identity QA flagged, none of their takes passing and none "
            f"picked: sh010 take 1 (no face found for mara and theo); pick a take (idcli select {out} SHOT=N) or "
            f"re-roll them (idcli render {out.parent / 'shots.yaml'} --out {out} --retake-flagged), then export again")
    result = cli("export", out, "--otio", tmp_path / "cut.otio", "--json")
    assert result.exit_code == 0, result.output
    assert f"idcli: note: {note}" in result.stderr.splitlines(), result.stderr
    assert note in json.loads(result.stdout)["notes"]
    assert cli("select", out, "sh010=2").exit_code == 0
    again = cli("export", out, "--otio", tmp_path / "cut.otio")
    assert "QA flagged" not in again.stderr, again.stderr
