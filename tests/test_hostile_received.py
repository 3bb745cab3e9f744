"""An output folder received from outside (zipped by another studio, shared on a NAS), as the review, export
and provenance commands read it: names in it (shot folders, the run manifest's project and shot ids) reach an
EDL, a terminal and delivered file names, so only names a shot list can give are taken from it
(docs/reliability.md, "Hostile input on the newer surfaces", the security read of 2026-11-30)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from review_helpers import cli, render_review_run

pytest.importorskip("opentimelineio")
pytest.importorskip("insightface", exc_type=ImportError)
pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")

# A line an EDL reader takes for an event of its own: a clip anywhere the sender likes, from a file they name.
EVENT = "999  AX       V     C        01:00:00:00 01:00:10:00 01:00:00:00 01:00:10:00"
INJECTED = f"x\n\n{EVENT}\n* FROM CLIP: /etc/passwd"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory, synthetic_face_models: Path) -> Path:
    return render_review_run(tmp_path_factory.mktemp("received-run"), synthetic_face_models, only=["sh020"])


@pytest.fixture
def out(rendered: Path, tmp_path: Path) -> Path:
    target = tmp_path / "out"
    shutil.copytree(rendered, target)
    return target


def _manifest(out: Path, **change) -> None:
    path = out / ".idcli" / "shotlist.jsonl"
    record = json.loads(path.read_text("utf-8").splitlines()[-1])
    path.write_text(json.dumps({**record, **change}) + "\n", "utf-8")


def _plant_take(out: Path, shot_id: str) -> None:
    """A complete take of ``shot_id`` (a copy of sh020's take 1), its folder, sidecar and image named as a commit
    names them."""
    folder = out / shot_id
    folder.mkdir()
    record = json.loads((out / "sh020" / "sh020_t1.json").read_text("utf-8"))
    record["shot_id"] = shot_id
    record["image"]["path"] = f"{shot_id}/{shot_id}_t1.png"
    shutil.copy(out / "sh020" / "sh020_t1.png", folder / f"{shot_id}_t1.png")
    (folder / f"{shot_id}_t1.json").write_text(json.dumps(record), "utf-8")


@pytest.mark.parametrize("where", ["project", "shot-id"])
def test_a_run_manifest_naming_a_project_or_shot_no_shot_list_can_give_is_damaged(
        out: Path, tmp_path: Path, where: str) -> None:
    # Before: the project became the EDL's TITLE line, newlines and all, so the EDL an editor imported held
    # the sender's events (a clip from /etc/passwd); a shot id reached the notes and the movie's slates raw.
    if where == "project":
        _manifest(out, project=f"review{INJECTED}")
    else:
        _manifest(out, shots=[{"id": "sh020", "takes": 2, "duration": 1.5},
                              {"id": f"sh099{INJECTED}", "takes": 1, "duration": 2.0}])
    edl = tmp_path / "cut.edl"
    result = cli("export", out, "--edl", edl)
    assert result.exit_code == 2, result.output
    assert "shotlist.jsonl: the shot list record is damaged" in result.output
    assert not edl.exists()


def test_a_shot_folder_whose_name_is_no_shot_id_is_not_read(out: Path, tmp_path: Path) -> None:
    # A zipped output folder may hold any folder name; a take inside one named with a newline and an EDL event
    # became that event in the EDL (no manifest: every folder's takes are exported), an escape sequence in
    # one reached the terminal raw.
    from idcli.results import scan_results

    (out / ".idcli" / "shotlist.jsonl").unlink()
    evil = f"zz\n\n{EVENT}\n* FROM CLIP NAME: owned\x1b]0;owned\x07"  # a file name holds no '/'

    _plant_take(out, evil)
    scan = scan_results(out)
    assert [r["shot_id"] for r in scan.records] == ["sh020", "sh020"]
    (problem,) = scan.problems
    assert "\n" not in problem and "\x1b" not in problem and "its folder name is not a shot id" in problem
    edl = tmp_path / "cut.edl"
    result = cli("export", out, "--edl", edl)
    assert result.exit_code == 2, result.output  # the skipped take is said, the rest exported
    text = edl.read_text("utf-8")
    assert EVENT not in text and "owned" not in text and text.count("* FROM CLIP NAME:") == 1
    assert "\x1b" not in result.output and "\\x1b" in result.output



def test_a_sidecars_image_path_must_be_its_takes_own(out: Path, tmp_path: Path) -> None:
    # Before: any path of two parts to a file inside the folder was taken, so a sidecar could name a PNG in a folder
    # called with a newline and an EDL event: the EDL's FROM CLIP line (the take's image) wrote that event.
    from idcli.results import scan_results

    folder = out / f"z\n\n{EVENT}\n* FROM CLIP NAME: owned"
    folder.mkdir()
    shutil.copy(out / "sh020" / "sh020_t1.png", folder / "a\n* COMMENT: injected.png")
    record = json.loads((out / "sh020" / "sh020_t1.json").read_text("utf-8"))
    record["image"]["path"] = f"{folder.name}/a\n* COMMENT: injected.png"
    (out / "sh020" / "sh020_t1.json").write_text(json.dumps(record), "utf-8")
    scan = scan_results(out)
    assert [(r["shot_id"], r["take"]) for r in scan.records] == [("sh020", 2)]
    (problem,) = scan.problems
    assert problem.startswith("sh020/sh020_t1.json: its image path") and "\n" not in problem
    assert "not its take's own (a commit names it sh020/sh020_t1.png)" in problem
    edl = tmp_path / "cut.edl"
    result = cli("export", out, "--edl", edl)
    assert result.exit_code == 2, result.output
    text = edl.read_text("utf-8")
    assert EVENT not in text and "owned" not in text and "injected" not in text and "sh020_t2.png" in text

@pytest.mark.parametrize("name", [f"take\n\n{EVENT}\n* FROM CLIP: owned\nx", "take\u2028x", "take\x1b]0;x\x07"],
                         ids=["newline", "line-separator", "escape"])
def test_an_output_folder_named_with_a_line_break_writes_no_edl_line(out: Path, tmp_path: Path, name: str) -> None:
    # The folder a received zip unpacks to is named by its sender. Before: the EDL's `* FROM CLIP:` line is the
    # still's path from the EDL, that folder's name included, unescaped (an EDL holds a path, not a URL): a newline
    # in it wrote the sender's event 999, an escape reached the file raw. Refused before any file is written.
    received = tmp_path / "received" / name
    received.parent.mkdir()
    out.rename(received)
    edl, otio_file = tmp_path / "cut.edl", tmp_path / "cut.otio"
    result = cli("export", received, "--otio", otio_file, "--edl", edl)
    assert result.exit_code == 2, result.output
    assert "--edl" in result.stderr and "line break or control character" in result.stderr, result.stderr
    assert "\x1b" not in result.stderr and "\n999" not in result.stderr
    assert not edl.exists() and not otio_file.exists()
    # The FCP 7 XML (percent-encoded file URLs) holds such a path safely: still written. The .otio (JSON) too, unless
    # OpenTimelineIO reads the path back as another, as it does a newline's (refused: docs/review.md, media_urls).
    assert cli("export", received, "--fcp-xml", tmp_path / "cut.xml").exit_code == 0
    otio = cli("export", received, "--otio", otio_file)
    assert otio.exit_code == (2 if "\n" in name else 0), otio.output
    assert otio_file.exists() == ("\n" not in name)


ESCAPES = "\x1b]0;owned\x07\x1b[2J\x9b31m"  # retitle the terminal, clear it, a C1 control sequence


def test_names_from_a_received_folder_reach_the_terminal_escaped(out: Path) -> None:
    # Before: verify printed a sidecar's image path raw (a sidecar names it: any text), and review a damaged
    # sidecar's file name raw: the sender could retitle, clear or recolour the terminal of whoever checked it.
    record = json.loads((out / "sh020" / "sh020_t2.json").read_text("utf-8"))
    record["image"]["path"] = f"sh020/{ESCAPES}.png"
    (out / "sh020" / "sh020_t2.json").write_text(json.dumps(record), "utf-8")
    (out / "sh020" / f"{ESCAPES}.json").write_text("{", "utf-8")
    verify = cli("verify", out)
    review = cli("review", out)
    assert verify.exit_code == 6 and review.exit_code == 2, (verify.output, review.output)
    for result in (verify, review):
        assert "\x1b" not in result.output and "\x07" not in result.output and "\x9b" not in result.output
        assert "\\x1b]0;owned\\x07" in result.output  # still said, escaped as the shot list's problems are


def test_an_identity_packs_names_reach_the_terminal_escaped(tmp_path: Path) -> None:
    import numpy as np

    from idcli.identity.pack import REQUIRED_TENSORS, pack_bytes

    tensors = {name: np.ones((1, 4), np.float32) for name in REQUIRED_TENSORS}
    pack = tmp_path / "received.idpack"
    pack.write_bytes(pack_bytes({"name": f"mara{ESCAPES}", "selfies": [{"file": f"a{ESCAPES}.jpg"}]},
                                {**tensors, "embedding": np.ones(512, np.float32)}))
    result = cli("identity", "show", pack)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x9b" not in result.output
    assert "identity 'mara\\x1b]0;owned" in result.output and "[0] a\\x1b]0;owned" in result.output



@pytest.mark.parametrize("size", [(16000, 16000), (8194, 64), (64, 2**62)])
def test_a_sidecar_claiming_a_huge_take_cannot_size_the_movie(out: Path, tmp_path: Path, size: tuple) -> None:
    # Before: the movie's frame was the largest width and height the sidecars claimed; a sidecar edited to say
    # 16000x16000 (its image 256x256) had libx264 allocate for a 16000² movie: 36 s and 2 GB before it failed
    # as an internal error under a 6 GB cap, unbounded without one.
    pytest.importorskip("av")
    record = json.loads((out / "sh020" / "sh020_t1.json").read_text("utf-8"))
    record["image"]["width"], record["image"]["height"] = size
    (out / "sh020" / "sh020_t1.json").write_text(json.dumps(record), "utf-8")
    movie = tmp_path / "cut.mp4"
    result = cli("export", out, "--movie", movie)
    assert result.exit_code == 2, result.output
    assert f"sh020/sh020_t1.json: its image is {size[0]}x{size[1]}" in result.output
    assert "larger than any take idcli renders" in result.output and not movie.exists()



@pytest.mark.parametrize("where", ["pack", "adapter"])
def test_reproduce_never_reads_an_endless_file_a_record_names(out: Path, where: str) -> None:
    # Before: a sidecar naming its identity pack (or local adapter weights) as /proc/self/pagemap, a "regular"
    # file of size 0 whose reading never ends in practice (an entry for each page of the address space), kept
    # reproduce hashing it until killed.
    from hang_watchdog import no_hang

    record = json.loads((out / "sh020" / "sh020_t1.json").read_text("utf-8"))
    (character,) = record["identity"]
    if where == "pack":
        character.update(source="pack", pack_path="/proc/self/pagemap", pack_file="/proc/self/pagemap")
    else:
        character["adapter"] = {"source": "local", "id": "/proc/self", "subfolder": "", "weight_name": "pagemap",
                                "content_hash": "0" * 64, "variant": "faceid", "scale": 1.0, "allow_pickle": False}
    (out / "sh020" / "sh020_t1.json").write_text(json.dumps(record), "utf-8")
    with no_hang(30):
        result = cli("reproduce", out / "sh020" / "sh020_t1.png")
    assert result.exit_code == 2, result.output
    assert "/proc/self/pagemap" in result.output and "changed since the render" in result.output


def _film_of_copies(out: Path, shots: int) -> list[str]:
    """``out`` made a film of ``shots`` shots, each a copy of sh020's take 1 (select reads sidecars, not pixels)."""
    record = json.loads((out / "sh020" / "sh020_t1.json").read_text("utf-8"))
    ids = [f"sc{i // 20:02d}_sh{i % 20 * 10:03d}" for i in range(shots)]
    for shot_id in ids:
        (out / shot_id).mkdir()
        copy = {**record, "shot_id": shot_id, "image": {**record["image"], "path": f"{shot_id}/{shot_id}_t1.png"}}
        (out / shot_id / f"{shot_id}_t1.json").write_text(json.dumps(copy), "utf-8")
        shutil.copy(out / "sh020" / "sh020_t1.png", out / shot_id / f"{shot_id}_t1.png")
    _manifest(out, shots=[{"id": s, "takes": 1, "duration": 2.0} for s in ["sh020", *ids]])
    return ids


def test_a_picks_file_of_many_unknown_shots_is_refused_in_bounded_time_and_words(out: Path, tmp_path: Path) -> None:
    # Before: each unknown shot of a picks file was compared with every shot of the folder for a did-you-mean,
    # 166 ms a pick against 2,000 shots: 300 such picks took 32 s, the 200,000 a 4 MB picks.json holds ~9 hours,
    # and the refusal listed every one (14 MB on one line).
    from hang_watchdog import no_hang

    _film_of_copies(out, 2000)
    picks = {f"sc{i % 97:02d}_sh{i % 50:03d}x{i}": {"take": 1} for i in range(3000)}
    path = tmp_path / "picks.json"
    path.write_text(json.dumps({"schema": 1, "kind": "idcli-picks", "project": "review", "picks": picks}), "utf-8")
    with no_hang(60):
        result = cli("select", out, "--from", path)
    assert result.exit_code == 2, result.output
    assert result.output.count("no rendered shot of that id") == 20 and "and 2980 more" in result.output
    assert "(did you mean 'sc00_sh000'?)" in result.output  # the first ones still get their hint
    assert not (out / "selects.json").exists()



@pytest.mark.parametrize("planted", ["nested", "huge"])
def test_a_received_model_folders_model_index_is_read_bounded(tmp_path: Path, planted: str) -> None:
    # Before: model_index.json nested 100,000 deep was an internal error (RecursionError) in `plan`, `render` and
    # `models list --models-dir`; a 300 MB one (sparse: a zip of a few kB unpacks to it) was read whole, twice over
    # (bytes, then text) before being found not to be JSON.
    import tracemalloc

    model = tmp_path / "models" / "received"
    model.mkdir(parents=True)
    index = model / "model_index.json"
    if planted == "nested":
        index.write_text("[" * 100_000 + "]" * 100_000, "utf-8")
    else:
        with index.open("wb") as sparse:
            sparse.truncate(300 * 1024 * 1024)
    shots = tmp_path / "shots.yaml"
    shots.write_text("version: 1\nproject: p\nmodel: {preset: sd15, id: ./models/received}\n"
                     "shots:\n  - id: a\n    prompt: a lighthouse\n", "utf-8")
    tracemalloc.start()
    try:
        plan = cli("plan", shots)
        listing = cli("models", "list", "--models-dir", tmp_path / "models")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert plan.exit_code == 4, plan.output
    assert "model_index.json cannot be read as JSON" in plan.output and "internal error" not in plan.output
    assert listing.exit_code == 0 and "internal error" not in listing.output, listing.output
    assert "diffusers pipeline" in listing.output
    assert peak < 100 * 1024 * 1024, f"{peak:,} bytes traced"



@pytest.mark.parametrize("name", ["PACK.json", "idcli-fetch.json"])
@pytest.mark.parametrize("planted", ["nested", "huge"])
def test_a_received_face_model_folders_pack_json_is_read_bounded(tmp_path: Path, planted: str, name: str) -> None:
    # models/face-model folders' PACK.json was hardened in model_folders (--models-dir), but `models list
    # --face-models DIR` read the face-model folder's own PACK.json and fetch record (idcli-fetch.json) with
    # read_text + json.loads: nested 100,000 deep each was an internal error (RecursionError), and a 300 MB sparse
    # one was read whole.
    import tracemalloc

    faces = tmp_path / "faces"
    faces.mkdir()
    (faces / "det_10g.onnx").write_bytes(b"not a model: only its name is listed")
    pack = faces / name
    if planted == "nested":
        pack.write_text("[" * 100_000 + "]" * 100_000, "utf-8")
    else:
        with pack.open("wb") as sparse:
            sparse.truncate(300 * 1024 * 1024)
    tracemalloc.start()
    try:
        listing = cli("models", "list", "--face-models", faces, "--json")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert listing.exit_code == 0 and "internal error" not in listing.output, listing.output
    face_models = json.loads(listing.stdout)["face_models"]
    assert face_models["present"] is True and face_models["files"] == ["det_10g.onnx"]
    assert "synthetic" not in face_models["licence"] and face_models["fetched_by_idcli"] is False  # says nothing
    assert peak < 100 * 1024 * 1024, f"{peak:,} bytes traced"



def test_plan_with_a_received_face_model_folders_nested_pack_json_is_no_internal_error(
        tmp_path: Path, synthetic_face_models: Path) -> None:
    # resolve_face_models (plan, render, encode-identity, reproduce) read the face-model folder's PACK.json with
    # read_text + json.loads and caught no RecursionError: nested 100,000 deep, `plan` was an internal error.
    from review_helpers import SELFIES

    faces = tmp_path / "faces"
    shutil.copytree(synthetic_face_models, faces)
    (faces / "PACK.json").write_text("[" * 100_000 + "]" * 100_000, "utf-8")
    shutil.copytree(SELFIES, tmp_path / "selfies")
    shots = tmp_path / "shots.yaml"
    shots.write_text("version: 1\nproject: p\nmodel: {preset: tiny-sd}\ndefaults: {size: 64x64, steps: 1}\n"
                     "characters:\n  mara: {selfies: [selfies/mara_1.jpg]}\n"
                     "shots:\n  - id: a\n    prompt: \"{mara} on the pier\"\n", "utf-8")
    planned = cli("plan", shots, "--face-models", faces, "--json")
    assert "internal error" not in planned.output, planned.output
    assert planned.exit_code == 0, planned.output
    assert [job["state"] for job in json.loads(planned.stdout)["jobs"]] == ["new"]


@pytest.mark.parametrize("line", ["[]", "7", "[" * 100_000 + "]" * 100_000], ids=["list", "number", "nested"])
def test_a_received_journals_odd_lines_are_no_internal_error(out: Path, line: str) -> None:
    # Before: `restore` read every journal line as an object: a line `[]` was an AttributeError, one nested 100,000
    # deep a RecursionError, both internal errors.
    with (out / ".idcli" / "journal.jsonl").open("a", encoding="utf-8") as journal:
        journal.write(line + "\n")
    result = cli("restore", out, "sh020_t1")
    assert result.exit_code == 2 and "nothing is kept" in result.output, result.output


def test_a_fifo_planted_as_the_journal_blocks_nothing(out: Path) -> None:
    # Before: a FIFO at OUT/.idcli/journal.jsonl (in a zipped folder, or planted on a shared one) blocked `restore`
    # reading it and every command writing it (`render` hung at its run-start line) until killed.
    import os

    from hang_watchdog import no_hang

    from idcli.store import OutputStore

    journal = out / ".idcli" / "journal.jsonl"
    journal.unlink()
    os.mkfifo(journal)
    with no_hang(20):
        result = cli("restore", out, "sh020_t1")
        OutputStore(out).journal({"event": "test"})  # a record, never worth a hang: skipped
    assert result.exit_code == 2 and "nothing is kept" in result.output, result.output
    assert journal.is_fifo()


def _signed_by_a_stranger(tmp_path: Path, png: bytes, label: str) -> bytes:
    """``png`` signed with a C2PA manifest of the sender's own making (their own CA: a Valid, untrusted manifest)
    whose ``label`` assertion holds a list where idcli writes an object."""
    from c2pa_helpers import make_test_ca

    from idcli.signing import DIGITAL_SOURCE_TYPE, load_credentials, sign_with_manifest

    ca = make_test_ca(tmp_path / "stranger-ca", name="stranger")
    manifest = {"claim_generator_info": [{"name": "stranger", "version": "1"}], "title": "take.png",
                "format": "image/png", "assertions": [
                    {"label": "c2pa.actions", "data": {"actions": [
                        {"action": "c2pa.created", "digitalSourceType": DIGITAL_SOURCE_TYPE}]}},
                    {"label": label, "data": [1, 2]}]}
    return sign_with_manifest(load_credentials(ca.cert, ca.key), png, manifest)


def test_a_signed_take_whose_assertion_is_no_object_fails_verify(out: Path, tmp_path: Path) -> None:
    # Before: a take signed by the sender with `org.idcli.render` holding a list was an internal error of `verify`.
    import hashlib

    pytest.importorskip("c2pa")
    from idcli.signing import ASSERTION_LABEL

    image, sidecar = out / "sh020" / "sh020_t1.png", out / "sh020" / "sh020_t1.json"
    signed = _signed_by_a_stranger(tmp_path, image.read_bytes(), ASSERTION_LABEL)
    image.write_bytes(signed)
    record = json.loads(sidecar.read_text("utf-8"))
    record["image"]["sha256"], record["c2pa"] = hashlib.sha256(signed).hexdigest(), {"signed": True}
    sidecar.write_text(json.dumps(record), "utf-8")
    result = cli("verify", out)
    assert result.exit_code == 6 and "internal error" not in result.output, result.output
    assert "FAILED sh020/sh020_t1.png" in result.output


def test_a_delivered_copy_whose_assertion_is_no_object_fails_verify(tmp_path: Path) -> None:
    # Before: the same in a delivery folder (`org.idcli.delivery` holding a list) was an internal error of verify DEST.
    import hashlib
    import io

    pytest.importorskip("c2pa")
    from PIL import Image

    from idcli.delivery import DELIVERY_ASSERTION

    dest = tmp_path / "dest"
    dest.mkdir()
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    signed = _signed_by_a_stranger(tmp_path, buffer.getvalue(), DELIVERY_ASSERTION)
    sha256 = hashlib.sha256(signed).hexdigest()
    (dest / "sh010_take1.png").write_bytes(signed)
    (dest / "sh010_take1.json").write_text(json.dumps({
        "job_key": "k", "image": {"path": "sh010_take1.png", "sha256": sha256},
        "delivery": {"kind": "idcli-delivery-copy"}, "c2pa": {"signed": True}}), "utf-8")
    (dest / "delivery.json").write_text(json.dumps({"kind": "idcli-delivery", "images": [
        {"image": "sh010_take1.png", "sha256": sha256}]}), "utf-8")
    result = cli("verify", dest)
    assert result.exit_code == 6 and "internal error" not in result.output, result.output
    assert "FAILED sh010_take1.png" in result.output


def test_a_huge_take_is_refused_before_any_file_of_the_export_is_written(out: Path, tmp_path: Path) -> None:
    # export checks every request before the first file is written (export_animatic): the movie's refusal of a
    # sidecar claiming 16000x16000 came after --otio (written first) was already at its final path.
    pytest.importorskip("av")
    record = json.loads((out / "sh020" / "sh020_t1.json").read_text("utf-8"))
    record["image"]["width"], record["image"]["height"] = 16000, 16000
    (out / "sh020" / "sh020_t1.json").write_text(json.dumps(record), "utf-8")
    otio_file, movie = tmp_path / "cut.otio", tmp_path / "cut.mp4"
    result = cli("export", out, "--otio", otio_file, "--movie", movie)
    assert result.exit_code == 2, result.output
    assert "sh020/sh020_t1.json: its image is 16000x16000" in result.output
    assert not otio_file.exists() and not movie.exists()
