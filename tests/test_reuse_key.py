"""A job whose exact key is already in the output folder, at another take's path or kept in ``.idcli/superseded``,
is not rendered again: its image is reused (``status: reused``), written at the job's path as a render of that job
would have written it (docs/file-formats.md, "Reused images"). Job keys exclude the shot id and the take, so
inserting a seed into ``seeds:`` (the takes shift) or renaming a shot re-rendered images whose pixels were there.

The decisive check of each case: the reused image's bytes equal those of a fresh render of the same job into an
empty folder (batch size 1 in every run: on a CPU the batch can move a pixel by one level).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import idcli
from idcli.cli import app
from idcli.provenance import RUN_FIELDS

pytest.importorskip("insightface", exc_type=ImportError)
pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")

SEEDS = """\
    version: 1
    project: reuse
    model: {preset: tiny-sd}
    defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: euler}
    characters:
      mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg]}
    shots:
      - {id: a010, prompt: "a lighthouse in a storm", seeds: [11, 22]}
      - {id: a020, prompt: "{mara} in a bar at night", seeds: [5]}
    """


def _render(shots: Path, out: Path, engine_factory: Any, **options: Any) -> idcli.RenderReport:
    return idcli.render(idcli.load_shotlist(shots), out, device="cpu", batch_size=1, engine_factory=engine_factory,
                        **options)


def _statuses(report: Any) -> dict[str, str]:
    return {f"{j.shot_id}_t{j.take}": j.status for j in report.jobs}


def _same_as_a_fresh_render(out: Path, fresh: Path, stem: str, source: str) -> None:
    """The reused take's bytes are a fresh render's; its sidecar too, but for run fields and where it came from."""
    shot = stem.rsplit("_t", 1)[0]
    image, sidecar = out / shot / f"{stem}.png", out / shot / f"{stem}.json"
    assert image.read_bytes() == (fresh / shot / f"{stem}.png").read_bytes(), stem
    ours, theirs = json.loads(sidecar.read_text()), json.loads((fresh / shot / f"{stem}.json").read_text())
    assert ours["reused"]["from"]["path"] == source, ours["reused"]
    run_fields = {*RUN_FIELDS, "reused"} - {"fusion", "qa"}  # what fusion did and QA's verdict: the pixels'
    for record in (ours, theirs):
        (record.get("qa") or {}).pop("seconds", None)  # how long QA took
    assert {k: v for k, v in ours.items() if k not in run_fields} == \
        {k: v for k, v in theirs.items() if k not in run_fields}, stem
    assert ours["batch"] == theirs["batch"]  # batch size 1 both times: the batch the pixels were made in


def test_inserting_a_seed_reuses_the_takes_that_shifted(write_shotlist, tmp_path: Path, engine_factory) -> None:
    shots, out, fresh = write_shotlist(SEEDS), tmp_path / "out", tmp_path / "fresh"
    assert _render(shots, out, engine_factory).rendered == 3
    old_t2 = (out / "a010" / "a010_t2.png").read_bytes()
    # 33 inserted first: the old take 1 (seed 11) is now take 2, the old take 2 (seed 22) take 3.
    shots.write_text(shots.read_text().replace("seeds: [11, 22]", "seeds: [33, 11, 22]"))
    calls = len(engine_factory.calls)
    report = _render(shots, out, engine_factory)
    assert _statuses(report) == {"a010_t1": "rendered", "a010_t2": "reused", "a010_t3": "reused",
                                 "a020_t1": "skipped"}
    assert report.count("reused") == 2 and report.as_dict()["counts"]["reused"] == 2
    assert sum(engine_factory.calls[calls:]) == 1  # only the new seed went through the engine
    # Nothing lost: each take replaced went to superseded as before (take 3's pixels came from there).
    kept = sorted(p.name for p in (out / ".idcli" / "superseded" / "a010").glob("*.png"))
    assert len(kept) == 2 and any((out / ".idcli" / "superseded" / "a010" / k).read_bytes() == old_t2 for k in kept)
    _render(shots, fresh, engine_factory)
    _same_as_a_fresh_render(out, fresh, "a010_t2", "a010/a010_t1.png")
    third = json.loads((out / "a010" / "a010_t3.json").read_text())["reused"]["from"]["path"]
    assert third.startswith(".idcli/superseded/a010/a010_t2.")
    _same_as_a_fresh_render(out, fresh, "a010_t3", third)
    again = _render(shots, out, engine_factory)  # and a reused take is done like any other
    assert set(_statuses(again).values()) == {"skipped"}


def test_renaming_a_shot_reuses_its_images(write_shotlist, tmp_path: Path, engine_factory) -> None:
    shots, out, fresh = write_shotlist(SEEDS), tmp_path / "out", tmp_path / "fresh"
    _render(shots, out, engine_factory)
    shots.write_text(shots.read_text().replace("id: a010", "id: b010").replace("id: a020", "id: b020"))
    calls = len(engine_factory.calls)
    report = _render(shots, out, engine_factory)
    assert _statuses(report) == {"b010_t1": "reused", "b010_t2": "reused", "b020_t1": "reused"}
    assert engine_factory.calls[calls:] == [] and report.rendered == 0
    assert {o["shot_id"] for o in report.orphans} == {"a010", "a020"}  # the old takes stay where they were
    _render(shots, fresh, engine_factory)
    for stem in ("b010_t1", "b010_t2", "b020_t1"):  # a text shot and a dual-line character shot (QA'd)
        _same_as_a_fresh_render(out, fresh, stem, f"a{stem[1:4]}/a{stem[1:]}.png")
    assert json.loads((out / "b020" / "b020_t1.json").read_text())["qa"]["cast"] == ["mara"]  # QA'd as rendered
    assert idcli.verify_folder(out).failed == 0


def test_an_image_that_no_longer_matches_its_sidecar_is_rendered(write_shotlist, tmp_path: Path,
                                                                  engine_factory) -> None:
    from PIL import Image

    shots, out = write_shotlist(SEEDS), tmp_path / "out"
    _render(shots, out, engine_factory)
    retouched = out / "a010" / "a010_t1.png"
    with Image.open(retouched) as im:
        edited = im.convert("RGB")
    edited.putpixel((3, 3), (255, 0, 0))
    edited.save(retouched)
    shots.write_text(shots.read_text().replace("id: a010", "id: b010"))
    report = _render(shots, out, engine_factory)
    assert _statuses(report) == {"b010_t1": "rendered", "b010_t2": "reused", "a020_t1": "skipped"}


def test_plan_and_dry_run_say_what_render_reuses(write_shotlist, tmp_path: Path, engine_factory) -> None:
    shots, out = write_shotlist(SEEDS), tmp_path / "out"
    _render(shots, out, engine_factory)
    shots.write_text(shots.read_text().replace("seeds: [11, 22]", "seeds: [33, 11, 22]"))
    result = CliRunner().invoke(app, ["plan", str(shots), "--out", str(out), "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    rows = {f"{r['shot_id']}_t{r['take']}": r for r in json.loads(result.stdout)["jobs"]}
    assert {stem: (r["state"], (r["reuses"] or {}).get("path")) for stem, r in rows.items()} == {
        "a010_t1": ("stale", None), "a010_t2": ("stale", "a010/a010_t1.png"), "a010_t3": ("new", "a010/a010_t2.png"),
        "a020_t1": ("done", None)}
    human = CliRunner().invoke(app, ["plan", str(shots), "--out", str(out), "--device", "cpu"])
    assert "2 take(s) reuse" in human.stdout, human.stdout
    said = CliRunner().invoke(app, ["render", str(shots), "--out", str(out), "--device", "cpu", "--dry-run"])
    assert "dry run: 1 to render, 1 done, 2 to reuse" in said.stdout, said.output
    dry = _render(shots, out, engine_factory, dry_run=True)
    assert _statuses(dry) == {"a010_t1": "pending", "a010_t2": "reused", "a010_t3": "reused", "a020_t1": "skipped"}
    assert _statuses(_render(shots, out, engine_factory)) == {**_statuses(dry), "a010_t1": "rendered"}


def test_the_summary_line_counts_reused_takes(write_shotlist, tmp_path: Path, monkeypatch, tiny_engines) -> None:
    import idcli.run as run_module

    monkeypatch.setattr(run_module, "default_engine", lambda model, runtime, adapter: tiny_engines(
        model.preset, adapter))
    shots, out = write_shotlist(SEEDS), tmp_path / "out"
    argv = ["render", str(shots), "--out", str(out), "--device", "cpu", "--batch-size", "1"]
    assert CliRunner().invoke(app, argv).exit_code == 0
    shots.write_text(shots.read_text().replace("seeds: [11, 22]", "seeds: [33, 11, 22]"))
    human = CliRunner().invoke(app, argv)
    assert human.exit_code == 0, human.output
    assert "1 rendered, 1 skipped, 2 reused, 0 recovered, 0 failed" in human.stdout, human.stdout
    assert "2 reused" in human.stderr, human.stderr  # the progress line's count of what it does not render


def test_masks_are_not_reused_a_save_masks_render_renders_the_dual_line_take(write_shotlist, tmp_path: Path,
                                                                             engine_factory) -> None:
    shots, out = write_shotlist(SEEDS), tmp_path / "out"
    _render(shots, out, engine_factory, save_masks=True)
    shots.write_text(shots.read_text().replace("id: a020", "id: b020"))
    report = _render(shots, out, engine_factory, save_masks=True)
    assert _statuses(report) == {"a010_t1": "skipped", "a010_t2": "skipped", "b020_t1": "rendered"}
    assert (out / "b020" / "b020_t1.mask.png").is_file()


def test_a_signing_run_signs_the_reused_image(write_shotlist, tmp_path: Path, engine_factory, signing_env) -> None:
    shots, out = write_shotlist(SEEDS), tmp_path / "out"
    _render(shots, out, engine_factory, sign=True)
    shots.write_text(shots.read_text().replace("id: a010", "id: b010"))
    report = _render(shots, out, engine_factory, sign=True)
    assert _statuses(report)["b010_t1"] == "reused"
    sidecar = json.loads((out / "b010" / "b010_t1.json").read_text())
    assert sidecar["c2pa"]["signed"] is True
    checked = idcli.verify_folder(out, signing_env.root)
    assert checked.failed == 0, checked.as_dict()
    assert {i.c2pa["present"] for i in checked.images if "b010" in i.image["path"]} == {True}


def test_several_characters_and_single_method_shots_are_reused_too(write_shotlist, tmp_path: Path,
                                                                    engine_factory) -> None:
    """Dual-line with two characters (one identity line each) and the single method: the facts the encoding takes
    from the render (the adapter, what fusion did per character) come from the source's sidecar."""
    cast = SEEDS.replace("      mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg]}\n",
                         "      mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg]}\n"
                         "      theo: {selfies: [selfies/theo_1.jpg, selfies/theo_2.jpg]}\n")
    cast = cast.replace('- {id: a010, prompt: "a lighthouse in a storm", seeds: [11, 22]}',
                        '- {id: a010, prompt: "{mara} and {theo} on a pier", seeds: [11]}\n'
                        '      - {id: a030, prompt: "{theo} in a harbour", method: single, seeds: [7]}')
    shots, out, fresh = write_shotlist(cast), tmp_path / "out", tmp_path / "fresh"
    _render(shots, out, engine_factory)
    shots.write_text(shots.read_text().replace("id: a010", "id: b010").replace("id: a030", "id: b030"))
    report = _render(shots, out, engine_factory)
    assert _statuses(report) == {"b010_t1": "reused", "b030_t1": "reused", "a020_t1": "skipped"}
    _render(shots, fresh, engine_factory)
    for stem in ("b010_t1", "b030_t1"):
        _same_as_a_fresh_render(out, fresh, stem, f"a{stem[1:4]}/a{stem[1:]}.png")
    assert len(json.loads((out / "b010" / "b010_t1.json").read_text())["fusion"]["characters"]) == 2


def test_a_plate_shot_renamed_is_rendered_not_reused(write_shotlist, tmp_path: Path, engine_factory) -> None:
    """A plate job's image keeps the plate's alpha and the engine's facts about each face: it is rendered."""
    import shutil

    shutil.copy(Path(__file__).resolve().parents[1] / "recipes" / "plates" / "two_people.png", tmp_path / "plate.png")
    plate = SEEDS.replace(
        '- {id: a010, prompt: "a lighthouse in a storm", seeds: [11, 22]}',
        '- {id: a010, prompt: "{mara} before a window", plate: plate.png, plate_faces: [0], seeds: [11]}')
    shots, out = write_shotlist(plate), tmp_path / "out"
    _render(shots, out, engine_factory)
    shots.write_text(shots.read_text().replace("id: a010", "id: b010"))
    plan = CliRunner().invoke(app, ["plan", str(shots), "--out", str(out), "--device", "cpu", "--json"])
    assert [(row["state"], row["reuses"]) for row in json.loads(plan.stdout)["jobs"]] == [("new", None),
                                                                                          ("done", None)]
    report = _render(shots, out, engine_factory)
    assert _statuses(report) == {"b010_t1": "rendered", "a020_t1": "skipped"}


def test_a_source_whose_sidecar_was_edited_into_what_idcli_never_writes_is_rendered(write_shotlist, tmp_path: Path,
                                                                                    engine_factory) -> None:
    """A received folder's sidecar still matching its image may hold anything: NaN in a run field copied over, fusion
    facts not in the engine's form. That source is not used (the take renders), never a crash."""
    shots, out = write_shotlist(SEEDS), tmp_path / "out"
    _render(shots, out, engine_factory)
    first, character = out / "a010" / "a010_t1.json", out / "a020" / "a020_t1.json"
    first.write_text(first.read_text().replace('"timing": {', '"timing": {"odd": NaN, '))
    edited = json.loads(character.read_text())
    edited["fusion"]["characters"] = "mara"
    character.write_text(json.dumps(edited))
    shots.write_text(shots.read_text().replace("id: a010", "id: b010").replace("id: a020", "id: b020"))
    report = _render(shots, out, engine_factory)
    assert _statuses(report) == {"b010_t1": "rendered", "b010_t2": "reused", "b020_t1": "rendered"}


def test_a_source_image_claiming_a_huge_size_is_rendered_over_not_decoded(write_shotlist, tmp_path: Path,
                                                                          engine_factory) -> None:
    """A PNG whose header claims 40,000 x 40,000 pixels (a decompression bomb), its sidecar's sha256 set to match:
    not a source (PIL refuses to open it), and no crash."""
    import struct
    import zlib

    from idcli.hashing import sha256_bytes
    from idcli.provenance import PNG_SIGNATURE, png_chunk

    shots, out = write_shotlist(SEEDS), tmp_path / "out"
    _render(shots, out, engine_factory)
    bomb = PNG_SIGNATURE + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)) + \
        png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b"")
    (out / "a010" / "a010_t1.png").write_bytes(bomb)
    sidecar = json.loads((out / "a010" / "a010_t1.json").read_text())
    sidecar["image"]["sha256"] = sha256_bytes(bomb)
    (out / "a010" / "a010_t1.json").write_text(json.dumps(sidecar))
    shots.write_text(shots.read_text().replace("id: a010", "id: b010"))
    report = _render(shots, out, engine_factory)
    assert _statuses(report) == {"b010_t1": "rendered", "b010_t2": "reused", "a020_t1": "skipped"}


def test_the_take_a_restore_moves_aside_is_reused_as_the_dry_run_said(write_shotlist, tmp_path: Path,
                                                                      engine_factory) -> None:
    """Take 1 restored from superseded displaces the image another take's job is: that image, moved aside by the
    restore, is reused (the dry run said so); it was rendered again, the dry run and the render disagreeing."""
    shots, out, fresh = write_shotlist(SEEDS.replace("[11, 22]", "[11]")), tmp_path / "out", tmp_path / "fresh"
    _render(shots, out, engine_factory)
    shots.write_text(shots.read_text().replace("seeds: [11]", "seeds: [22]"))  # take 1: seed 11's kept aside
    _render(shots, out, engine_factory)
    shots.write_text(shots.read_text().replace("seeds: [22]", "seeds: [11, 22]"))
    dry = _render(shots, out, engine_factory, dry_run=True)
    assert _statuses(dry) == {"a010_t1": "restored", "a010_t2": "reused", "a020_t1": "skipped"}
    calls = len(engine_factory.calls)
    report = _render(shots, out, engine_factory)
    assert _statuses(report) == _statuses(dry) and engine_factory.calls[calls:] == []
    _render(shots, fresh, engine_factory)
    source = json.loads((out / "a010" / "a010_t2.json").read_text())["reused"]["from"]["path"]
    assert source.startswith(".idcli/superseded/a010/a010_t1."), source
    _same_as_a_fresh_render(out, fresh, "a010_t2", source)


def test_a_disk_full_while_reusing_is_the_reports_error_not_a_raise(write_shotlist, tmp_path: Path, engine_factory,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """As a disk filling while rendering (README, "From Python"): the run keeps what it committed, counts the rest
    failed and says why in ``report.error``, exit code 5; the reused takes were lost from the report in a raise."""
    import errno
    import os

    from idcli.store import TMP_SUFFIX

    shots, out = write_shotlist(SEEDS), tmp_path / "out"
    _render(shots, out, engine_factory)
    shots.write_text(shots.read_text().replace("id: a010", "id: b010").replace("id: a020", "id: b020"))
    real_fdopen, images = os.fdopen, []

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:  # the second image written into the folder: disk full
        name = os.readlink(f"/proc/self/fd/{fd}")
        if name.startswith(str(out)) and name.endswith(TMP_SUFFIX) and ".png." in name:
            images.append(name)
            if len(images) == 2:
                os.close(fd)
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", fdopen)
    report = _render(shots, out, engine_factory)
    monkeypatch.setattr(os, "fdopen", real_fdopen)
    assert report.exit_code == 5 and "disk full while writing" in (report.error or ""), report.error
    assert report.error_file == str(out / "b010" / "b010_t2.png")
    assert _statuses(report) == {"b010_t1": "reused", "b010_t2": "not_rendered",
                                      "b020_t1": "not_rendered"}
    assert _statuses(_render(shots, out, engine_factory)) == {"b010_t1": "skipped", "b010_t2": "reused",
                                                              "b020_t1": "reused"}


def test_a_reused_image_names_the_library_versions_that_made_its_pixels(write_shotlist, tmp_path: Path,
                                                                         engine_factory,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Library versions are in no job key (as the device): a source rendered under another torch is reused. Its
    record names that torch, as its ``model.device`` names the device that made the pixels; it named the reusing
    run's (``reproduce`` lists what differs from the recorded versions when a re-render does not match)."""
    import idcli.provenance as provenance
    from idcli.provenance import read_png_record
    from idcli.reproduce import reproduce

    now = provenance.software_versions()
    then = {**now, "torch": "2.0.0+cpu", "diffusers": "0.30.0"}
    shots, out = write_shotlist(SEEDS), tmp_path / "out"
    monkeypatch.setattr(provenance, "software_versions", lambda: then)
    _render(shots, out, engine_factory)
    monkeypatch.undo()
    shots.write_text(shots.read_text().replace("id: a010", "id: b010"))
    assert _statuses(_render(shots, out, engine_factory))["b010_t1"] == "reused"
    sidecar = json.loads((out / "b010" / "b010_t1.json").read_text())
    assert sidecar["software"] == then
    assert read_png_record((out / "b010" / "b010_t1.png").read_bytes())["software"] == then
    assert idcli.verify_folder(out).failed == 0
    assert reproduce(out / "b010" / "b010_t1.json", engine_factory=engine_factory).identical


def test_a_shot_alike_a_done_one_is_new_and_reused_in_plan_and_render(write_shotlist, tmp_path: Path,
                                                                       engine_factory) -> None:
    """Two shots alike share a job key; each take has its own state. A copy of a done shot listed before it was
    read as the done one (states by job key, the later take's winning): ``plan`` called it done and named no source,
    and ``render`` reused it but gave it the state ``done``."""
    shots, out = write_shotlist(SEEDS), tmp_path / "out"
    _render(shots, out, engine_factory)
    shots.write_text(shots.read_text().replace(
        "shots:\n", 'shots:\n  - {id: a005, prompt: "a lighthouse in a storm", seeds: [22]}\n'))
    result = CliRunner().invoke(app, ["plan", str(shots), "--out", str(out), "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    rows = {f"{r['shot_id']}_t{r['take']}": (r["state"], (r["reuses"] or {}).get("path"))
            for r in json.loads(result.stdout)["jobs"]}
    assert rows == {"a005_t1": ("new", "a010/a010_t2.png"), "a010_t1": ("done", None), "a010_t2": ("done", None),
                    "a020_t1": ("done", None)}
    report = _render(shots, out, engine_factory)
    assert {f"{j.shot_id}_t{j.take}": (j.state, j.status) for j in report.jobs} == {
        "a005_t1": ("new", "reused"), "a010_t1": ("done", "skipped"), "a010_t2": ("done", "skipped"),
        "a020_t1": ("done", "skipped")}
TWINS = """\
    version: 1
    project: twins
    model: {preset: tiny-sd}
    defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: euler}
    shots:
      - {id: a010, prompt: "a lighthouse in a storm", seeds: [11]}
      - {id: a020, prompt: "a lighthouse in a storm", seeds: [11]}
    """


@pytest.mark.parametrize("missing", ["a010", "a020"])
def test_two_takes_of_one_job_key_each_have_their_own_state(write_shotlist, tmp_path: Path, engine_factory,
                                                            missing: str) -> None:
    """Two shots of the same content share a job key, but each is its own take with its own image: one done and the
    other's image missing, plan and render say each take's own state and reason, not the other's."""
    shots, out = write_shotlist(TWINS), tmp_path / "out"
    first = _render(shots, out, engine_factory)
    assert len({j.job_key for j in first.jobs}) == 1 and first.rendered == 2
    (out / missing / f"{missing}_t1.png").unlink()
    other = "a020" if missing == "a010" else "a010"
    want = {f"{missing}_t1": ("stale", "the image is missing"), f"{other}_t1": ("done", None)}
    planned = CliRunner().invoke(app, ["plan", str(shots), "--out", str(out), "--device", "cpu", "--json"])
    assert planned.exit_code == 0, planned.output
    rows = json.loads(planned.stdout)["jobs"]
    assert {f"{r['shot_id']}_t{r['take']}": (r["state"], r["reason"]) for r in rows} == want
    assert json.loads(planned.stdout)["counts"]["done"] == 1
    report = _render(shots, out, engine_factory).as_dict()
    assert {f"{j['shot_id']}_t{j['take']}": (j["state"], j["reason"]) for j in report["jobs"]} == want
    assert _statuses(_render(shots, out, engine_factory)) == {"a010_t1": "skipped", "a020_t1": "skipped"}


def test_a_disk_full_reports_every_take_of_two_shots_alike(write_shotlist, tmp_path: Path, engine_factory,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Two shots of the same content share a job key: when the disk filled after the first was committed, the rest
    were counted failed by job key, and the second, whose key the first's outcome held, was in no outcome at all."""
    import errno
    import os

    from idcli.store import TMP_SUFFIX

    shots = write_shotlist(SEEDS.replace("seeds: [11, 22]", "seeds: [11]").replace(
        '      - {id: a020, prompt: "{mara} in a bar at night", seeds: [5]}',
        '      - {id: a020, prompt: "a lighthouse in a storm", seeds: [11]}'))
    out, real_fdopen, images = tmp_path / "out", os.fdopen, []

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:  # the second image written into the folder: disk full
        name = os.readlink(f"/proc/self/fd/{fd}")
        if name.startswith(str(out)) and name.endswith(TMP_SUFFIX) and ".png." in name:
            images.append(name)
            if len(images) == 2:
                os.close(fd)
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", fdopen)
    report = _render(shots, out, engine_factory)
    assert report.exit_code == 5, report.error
    assert _statuses(report) == {"a010_t1": "rendered", "a020_t1": "not_rendered"}


# -- which source wins (docs/file-formats.md, "Reused images") ---------------------------------------------------

ALIKE = """\
version: 1
project: reuse
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: euler}
shots:
"""


def _alike(*shots: str) -> str:
    """A shot list of ``id:seed`` shots (``a010:22``) of one prompt: one seed is one job key."""
    return ALIKE + "".join(f'  - {{id: {shot.split(":")[0]}, prompt: "a lighthouse in a storm", '
                           f'seeds: [{shot.split(":")[1]}]}}\n' for shot in shots)


def _source(out: Path, stem: str) -> str:
    return json.loads((out / stem.rsplit("_t", 1)[0] / f"{stem}.json").read_text())["reused"]["from"]["path"]


@pytest.mark.parametrize("order", [("a010", "b010"), ("b010", "a010")])
def test_of_two_takes_holding_the_key_the_first_in_shot_list_order_is_the_source(write_shotlist, tmp_path: Path,
                                                                                  engine_factory, order) -> None:
    """Two shots alike share a job key: the one listed first is the source, whichever it is, in two runs alike."""
    for run in ("one", "two"):
        shots, out = write_shotlist(_alike(f"{order[0]}:22", f"{order[1]}:22"), f"{run}.yaml"), tmp_path / run
        _render(shots, out, engine_factory)
        shots.write_text(_alike(f"{order[0]}:22", f"{order[1]}:22", "c010:22"))
        assert _statuses(_render(shots, out, engine_factory))["c010_t1"] == "reused"
        assert _source(out, "c010_t1") == f"{order[0]}/{order[0]}_t1.png"


@pytest.mark.parametrize("listing", ["as the folder lists", "reversed"])
def test_of_two_orphans_holding_the_key_the_first_by_path_is_the_source(write_shotlist, tmp_path: Path,
                                                                         engine_factory, monkeypatch, listing) -> None:
    """b010 rendered before a010, both then taken out of the shot list: a010's orphan is the source, however the
    file system lists the folder."""
    import os
    from types import SimpleNamespace

    import idcli.orphans

    shots, out = write_shotlist(_alike("b010:22")), tmp_path / "out"
    _render(shots, out, engine_factory)
    shots.write_text(_alike("b010:22", "a010:22"))
    _render(shots, out, engine_factory)
    if listing == "reversed":
        monkeypatch.setattr(idcli.orphans, "os", SimpleNamespace(scandir=lambda p: list(os.scandir(p))[::-1]))
    shots.write_text(_alike("c010:22"))
    report = _render(shots, out, engine_factory)
    assert {o["shot_id"] for o in report.orphans} == {"a010", "b010"} and _statuses(report)["c010_t1"] == "reused"
    assert _source(out, "c010_t1") == "a010/a010_t1.png"


def test_an_orphan_is_the_source_before_a_kept_version_and_the_newest_kept_version_first(write_shotlist,
                                                                                        tmp_path: Path,
                                                                                        engine_factory) -> None:
    """Seed 22 kept in .idcli/superseded twice (a010's, then b010's take moved aside) and, in the first folder, left
    as z010's orphan: the orphan is the source; without it (the second folder), b010's version, the newer."""
    for folder, orphan in (("with-orphan", True), ("kept-only", False)):
        out = tmp_path / folder
        shots = write_shotlist(_alike("a010:22", "b010:22", *(["z010:22"] if orphan else [])), f"{folder}.yaml")
        _render(shots, out, engine_factory)
        shots.write_text(_alike("a010:33", "b010:22", *(["z010:22"] if orphan else [])))
        _render(shots, out, engine_factory)  # a010's seed 22 moved aside
        shots.write_text(_alike("a010:33", "b010:44", *(["z010:22"] if orphan else [])))
        _render(shots, out, engine_factory)  # then b010's
        shots.write_text(_alike("a010:33", "b010:44", "c010:22"))
        assert _statuses(_render(shots, out, engine_factory))["c010_t1"] == "reused"
        kept = _source(out, "c010_t1")
        if orphan:
            assert kept == "z010/z010_t1.png"
        else:
            assert kept.startswith(".idcli/superseded/b010/b010_t1."), kept


# -- a kill between a reused image and its sidecar (tests/test_faults.py kills one for real) ---------------------


@pytest.mark.parametrize("journal", ["as written", "another image's sha256", "NaN in its timing",
                                     "a render's commit since"])
def test_a_reused_image_left_without_its_sidecar_is_recovered_from_its_begun_line_only_when_it_holds(
        write_shotlist, tmp_path: Path, engine_factory, journal: str) -> None:
    """The folder a kill between b010_t1's reused image and its sidecar leaves (its sidecar, commit and reuse lines
    gone), a020_t1's sidecar deleted too (rendered: no reuse-begin line): the resume adopts both in one pass over
    the journal, and b010_t1's sidecar takes back what its ``reuse-begin`` line kept, only from a line that describes
    these bytes, holds what a sidecar may and is the take's last word (a received folder's journal may say anything):
    else, as a020_t1's, it is rebuilt from the PNG alone, as before, and the run goes on."""
    shots, out = write_shotlist(_alike("a010:22", "a020:33")), tmp_path / "out"
    _render(shots, out, engine_factory)
    shots.write_text(_alike("b010:22", "a020:33"))
    assert _statuses(_render(shots, out, engine_factory)) == {"b010_t1": "reused", "a020_t1": "skipped"}
    written = json.loads((out / "b010" / "b010_t1.json").read_text())
    (out / "b010" / "b010_t1.json").unlink()
    (out / "a020" / "a020_t1.json").unlink()
    path = out / ".idcli" / "journal.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    lines = [e for e in lines if not (e.get("shot_id") == "b010" and e["event"] in ("commit", "reuse"))]
    begun = next(e for e in lines if e["event"] == "reuse-begin")
    if journal == "another image's sha256":
        begun["sha256"] = "0" * 64
    elif journal == "NaN in its timing":
        begun["sidecar"]["timing"]["seconds"] = float("nan")
    elif journal == "a render's commit since":
        lines.append({"event": "commit", "job_key": begun["job_key"], "shot_id": "b010", "take": 1})
    path.write_text("".join(json.dumps(e) + "\n" for e in lines))  # json.dumps writes NaN as Python reads it
    assert _statuses(_render(shots, out, engine_factory)) == {"b010_t1": "recovered", "a020_t1": "recovered"}
    rebuilt = json.loads((out / "b010" / "b010_t1.json").read_text())
    assert rebuilt.pop("recovered") is True
    if journal == "as written":
        assert rebuilt == written
    else:
        assert "reused" not in rebuilt and rebuilt["batch"]["size"] is None and rebuilt["timing"] is None
    rendered = json.loads((out / "a020" / "a020_t1.json").read_text())
    assert "reused" not in rendered and rendered["batch"]["size"] is None and rendered["recovered"] is True
    assert idcli.verify_folder(out).failed == 0
