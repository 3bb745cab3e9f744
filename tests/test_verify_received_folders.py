"""``idcli verify`` on what an outside party receives and what a user keeps beside the takes (docs/provenance.md,
"C2PA content credentials"): a flat folder of PNG + sidecar pairs or of signed PNGs alone (copied out of a render or a
delivery), a render's plate and selfies kept inside its output folder, and ``--json``'s C2PA failures of a good
image."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import render_on_cpu
from typer.testing import CliRunner

from idcli.cli import app
from idcli.errors import InputError
from idcli.verify import verify_folder

pytest.importorskip("c2pa")
runner = CliRunner()

SHOTS = """\
version: 1
project: received
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 5.0, sampler: dpmpp-2m, takes: 2}
shots:
  - {id: street, prompt: "an empty street at night, rain", seeds: [42, 43]}
"""
FLAT_NOTE = ("a flat folder of images (no render's output folder, no delivery.json): each PNG was checked against "
             "its sidecar beside it and its C2PA signature; not checked: which images the render or delivery made "
             "(one missing or left out is not seen)")


@pytest.fixture
def rendered(write_shotlist, tmp_path: Path, engine_factory, signing_env) -> Path:
    out = tmp_path / "out"
    render_on_cpu(write_shotlist(SHOTS), out, engine_factory, sign=True)
    return out


def _flat(out: Path, folder: Path, *suffixes: str) -> Path:
    """The takes' files copied out of their shot folders into one folder, as a legal team or a festival gets them."""
    folder.mkdir()
    for path in sorted(out.glob("street/street_t*")):
        if path.suffix in suffixes and ".mask" not in path.name:
            shutil.copy(path, folder / path.name)
    return folder


@pytest.mark.parametrize("trust", [False, True], ids=["valid", "trusted"])
def test_a_flat_folder_of_signed_pairs_is_checked_as_images(rendered: Path, tmp_path: Path, signing_env,
                                                            trust: bool) -> None:
    # Before: "received: no committed renders to check; give a render's output folder", exit 2: the outside party
    # could not check the frames it was sent at all.
    flat = _flat(rendered, tmp_path / "received", ".png", ".json")
    report = verify_folder(flat, signing_env.root if trust else None)
    state = "Trusted" if trust else "Valid"
    assert [(c.image["path"], c.sidecar["path"], c.ok, c.problems, (c.c2pa or {}).get("state"))
            for c in report.images] == [(f"street_t{n}.png", f"street_t{n}.json", True, [], state) for n in (1, 2)]
    document = report.as_dict()
    assert document["exit_code"] == 0
    assert document["counts"] == {"checked": 2, "failed": 0, "signed": 2, "folder_problems": 0}
    assert document["folder"] == {"kind": "images", "not_checked": FLAT_NOTE}

    # What a check of a pair still finds: a byte changed, a sidecar edited by hand, a sidecar swapped.
    one = bytearray((flat / "street_t1.png").read_bytes())
    one[-30] ^= 1
    (flat / "street_t1.png").write_bytes(bytes(one))
    sidecar = json.loads((flat / "street_t2.json").read_text("utf-8"))
    sidecar["seed"] = 7
    (flat / "street_t2.json").write_text(json.dumps(sidecar), "utf-8")
    problems = {c.image["path"]: c.problems for c in verify_folder(flat).images}
    assert problems["street_t1.png"][0] == ("the image does not match its sidecar's sha256 (changed after it was "
                                            "committed)")
    assert problems["street_t1.png"][1].startswith("C2PA validation state Invalid: its bytes changed after it was "
                                                   "signed")
    assert problems["street_t2.png"] == ["its sidecar says seed 7, the image's own record (its idcli chunk) 43: "
                                         "edited after the render?"]


def test_a_flat_folder_of_signed_pngs_alone_passes_on_their_signatures(rendered: Path, tmp_path: Path, write_shotlist,
                                                                       engine_factory, monkeypatch) -> None:
    flat = _flat(rendered, tmp_path / "received", ".png")
    report = verify_folder(flat)
    assert [(c.image["path"], c.ok, c.problems, (c.c2pa or {}).get("state")) for c in report.images] == [
        (f"street_t{n}.png", True, [], "Valid") for n in (1, 2)]
    assert report.images[0].notes == ["no sidecar beside it, so checked on its signature alone: its C2PA manifest is "
                                      "Valid, signed by 'idcli test signer' for its job: the image is as its signer "
                                      "signed it. No trust root was given, so who holds that certificate was not "
                                      "checked: any CA's certificate, under any name, validates"]
    assert report.as_dict()["counts"] == {"checked": 2, "failed": 0, "signed": 2, "folder_problems": 0}

    # An unsigned PNG alone: nothing here says what it should be. A signed one changed: its signature says so.
    monkeypatch.delenv("IDCLI_C2PA_CERT")
    monkeypatch.delenv("IDCLI_C2PA_KEY")
    render_on_cpu(write_shotlist(SHOTS, "unsigned.yaml"), tmp_path / "unsigned", engine_factory, sign=False)
    shutil.copy(tmp_path / "unsigned" / "street" / "street_t1.png", flat / "plain.png")
    # Take 2's A1111 parameters edited by a metadata tool (a whole PNG still, its chunks' CRCs right).
    from idcli.provenance import PNG_SIGNATURE, png_chunk, png_chunks

    two = flat / "street_t2.png"
    chunks = [(kind, payload.replace(b"Seed: 43", b"Seed: 44") if kind == b"tEXt" else payload)
              for kind, payload in png_chunks(two.read_bytes())]
    two.write_bytes(PNG_SIGNATURE + b"".join(png_chunk(kind, payload) for kind, payload in chunks))
    problems = {c.image["path"]: c.problems for c in verify_folder(flat).images}
    assert problems["plain.png"] == ["not signed, and no sidecar beside it (plain.json): nothing here says what "
                                     "the image should be"]
    assert problems["street_t1.png"] == []
    assert len(problems["street_t2.png"]) == 1 and problems["street_t2.png"][0].startswith(
        "C2PA validation state Invalid: its bytes changed after it was signed")


def test_delivered_copies_copied_out_of_their_delivery_are_checked(rendered: Path, tmp_path: Path) -> None:
    # A festival gets the copies without delivery.json (their listing): pairs, or the signed PNGs alone.
    from idcli.delivery import deliver

    dest = tmp_path / "dest"
    deliver(rendered, dest, all_takes=True)
    pairs, alone = tmp_path / "pairs", tmp_path / "alone"
    pairs.mkdir()
    alone.mkdir()
    for path in dest.glob("street_take*"):
        shutil.copy(path, pairs / path.name)
        if path.suffix == ".png":
            shutil.copy(path, alone / path.name)
    for folder in (pairs, alone):
        report = verify_folder(folder)
        assert [(c.image["path"], c.ok, c.problems, (c.c2pa or {}).get("state")) for c in report.images] == [
            (f"street_take{n}.png", True, [], "Valid") for n in (1, 2)], folder.name
    assert report.images[0].notes == ["no sidecar beside it, so checked on its signature alone: its C2PA manifest is "
                                      "Valid, a delivered copy of its take as idcli signed it. No trust root was "
                                      "given, so who holds that certificate was not checked: any CA's certificate, "
                                      "under any name, validates"]
    # A copy whose own record was edited (its manifest covers it) fails alone too.
    from idcli.provenance import PNG_SIGNATURE, png_chunk, png_chunks

    one = alone / "street_take1.png"
    chunks = [(kind, payload.replace(b"Seed: 42", b"Seed: 41") if kind == b"tEXt" else payload)
              for kind, payload in png_chunks(one.read_bytes())]
    one.write_bytes(PNG_SIGNATURE + b"".join(png_chunk(kind, payload) for kind, payload in chunks))
    (problem,) = {c.image["path"]: c.problems for c in verify_folder(alone).images}["street_take1.png"]
    assert problem.startswith("C2PA validation state Invalid: its bytes changed after it was signed")


def test_the_cli_says_what_kind_of_folder_it_checked(rendered: Path, tmp_path: Path) -> None:
    flat = _flat(rendered, tmp_path / "received", ".png", ".json")
    (flat / "poster.jpg").write_bytes((flat / "street_t1.png").read_bytes())  # no PNG: nothing checks it
    # A take's --save-masks strip copied out beside it is idcli's own, as in an output folder: not checked, not failed.
    shutil.copy(flat / "street_t1.png", flat / "street_t1.mask.png")
    result = runner.invoke(app, ["verify", str(flat)])
    assert result.exit_code == 6, result.output
    assert result.stdout.splitlines()[-2:] == [FLAT_NOTE, "3 images checked, 2 signed, 1 failed"]
    assert ("FAILED poster.jpg\n       not a PNG of this folder of images (each PNG is checked against its sidecar "
            "beside it, or its signature), so nothing checks where it came from: added, renamed or edited outside "
            "idcli?") in result.stdout
    document = json.loads(runner.invoke(app, ["verify", str(flat), "--json"]).stdout)
    assert document["exit_code"] == 6 and document["folder"] == {"kind": "images", "not_checked": FLAT_NOTE}
    # A render's output folder and a shot folder inside it are what they were.
    assert json.loads(runner.invoke(app, ["verify", str(rendered), "--json"]).stdout)["folder"] == {
        "kind": "output", "not_checked": None}
    inside = runner.invoke(app, ["verify", str(rendered / "street")])
    assert inside.exit_code == 2 and "it is inside the output folder" in inside.output


def test_a_folder_of_images_kept_in_subfolders_is_checked_as_one(rendered: Path, tmp_path: Path) -> None:
    """An outside party keeps a delivery by scene (``delivery/sc01/street_t1.png``): each PNG in a subfolder is checked
    as one at the top is, against its sidecar beside it or on its signature alone. Before: a pair one folder down was
    read as a take of an output folder whose shot folder was renamed (``its sidecar sc01/street_t1.json records the
    image at street/street_t1.png``) and a signed PNG alone there as an image added outside idcli; two folders down,
    beside PNGs at the top, each failed as ``not a PNG of this folder of images``."""
    delivery = tmp_path / "delivery"
    (delivery / "sc01").mkdir(parents=True)
    for suffix in (".png", ".json"):
        shutil.copy(rendered / "street" / f"street_t1{suffix}", delivery / "sc01")
    shutil.copy(rendered / "street" / "street_t2.png", delivery / "sc01")  # alone, signed
    report = verify_folder(delivery)
    assert report.kind == "images"
    assert [(c.image["path"], c.sidecar["path"], c.ok, c.problems) for c in report.images] == [
        ("sc01/street_t1.png", "sc01/street_t1.json", True, []),
        ("sc01/street_t2.png", "sc01/street_t2.json", True, [])]
    assert report.images[1].notes[0].startswith("no sidecar beside it, so checked on its signature alone: its C2PA "
                                                "manifest is Valid")

    # Deeper, beside PNGs at the top: the same checks, which still fail what they find.
    deeper = tmp_path / "festival"
    (deeper / "sc02" / "sh010").mkdir(parents=True)
    for suffix in (".png", ".json"):
        shutil.copy(rendered / "street" / f"street_t1{suffix}", deeper)
        shutil.copy(rendered / "street" / f"street_t2{suffix}", deeper / "sc02" / "sh010")
    one = bytearray((deeper / "sc02" / "sh010" / "street_t2.png").read_bytes())
    one[-30] ^= 1
    (deeper / "sc02" / "sh010" / "street_t2.png").write_bytes(bytes(one))
    problems = {c.image["path"]: c.problems for c in verify_folder(deeper).images}
    assert problems["street_t1.png"] == []
    assert problems["sc02/sh010/street_t2.png"][0] == ("the image does not match its sidecar's sha256 (changed after "
                                                       "it was committed)")

    # A render's output folder kept inside is not checked as images: said in one line, with the command that checks it.
    shutil.copytree(rendered, deeper / "renders")
    result = runner.invoke(app, ["verify", str(deeper)])
    assert result.exit_code == 6 and result.stdout.splitlines()[-2] == FLAT_NOTE, result.stdout
    assert (f"FAILED renders/street/street_t1.png\n       in renders/, a render's output folder inside this folder "
            f"of images, which is not checked as one of its images: idcli verify {deeper / 'renders'} checks it"
            ) in result.stdout
    # The parent of output folders alone is still no folder to check (exit 2), and an output folder is one.
    with pytest.raises(InputError, match="no committed renders to check"):
        verify_folder(_parent_of(rendered))
    assert verify_folder(rendered).kind == "output"


def test_a_subfolder_linked_out_of_a_folder_of_images_fails_as_a_link(rendered: Path, tmp_path: Path) -> None:
    """A received folder whose scene folder is a link to a folder elsewhere (a sync tool's, a shared store): the walk
    does not follow it, so its images were neither checked nor named, and the folder passed (``2 checked, 0 failed``)
    with an unsigned frame and a damaged one behind the link. The link now fails, saying where it leads and what to
    give verify; a link to a folder inside (``latest -> sc01``), or back to the folder itself, holds nothing the walk
    does not check already and is left alone."""
    received = tmp_path / "received"
    (received / "sc01").mkdir(parents=True)
    for suffix in (".png", ".json"):
        shutil.copy(rendered / "street" / f"street_t1{suffix}", received / "sc01")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "frame.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    os.symlink(elsewhere, received / "sc02")
    os.symlink("sc01", received / "latest")
    os.symlink(".", received / "again")
    report = verify_folder(received)
    assert report.kind == "images"
    linked = (f"sc02 is a link to a folder outside this folder of images (to {elsewhere}), which verify does not "
              "follow: the images there are not checked. Give that folder to idcli verify, or copy it in")
    # The link is a problem of the folder, not an image: before, --json listed it as an image whose image and sidecar
    # were both the link, and counted it "2 checked, 1 failed" beside the one image there is.
    assert [(c.image["path"], c.ok, c.problems) for c in report.images] == [("sc01/street_t1.png", True, [])]
    document = json.loads(runner.invoke(app, ["verify", str(received), "--json"]).stdout)
    assert document["exit_code"] == 6 and document["ok"] is False
    assert document["counts"] == {"checked": 1, "failed": 0, "signed": 1, "folder_problems": 1}
    assert [image["image"]["path"] for image in document["images"]] == ["sc01/street_t1.png"]
    assert document["error"]["message"] == "0 of 1 image(s) fail; 1 problem of the folder"
    assert document["error"]["problems"] == [{"file": "sc02", "line": None, "column": None, "field": None,
                                              "message": linked, "hint": None}]
    assert document["error"]["file"] == "sc02"
    result = runner.invoke(app, ["verify", str(received)])
    assert result.exit_code == 6
    assert f"FOLDER sc02\n       {linked}\n" in result.stdout, result.stdout
    assert result.stdout.splitlines()[-1] == "1 image checked, 1 signed, 0 failed; 1 problem of the folder"


def test_a_subfolder_verify_cannot_read_fails_as_unread(rendered: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A subfolder verify may not list (another user's, copied with its modes; a mount gone stale): the walk passed over
    it in silence, as os.walk did, so a received folder said ``1 image checked, 0 failed`` and exit 0 with a damaged
    frame in ``sc02``, and an output folder passed with an image nothing checked in ``street/extra``. The folder now
    fails, named with the reason, in a folder of images and an output folder alike."""
    received = tmp_path / "received"
    for folder in ("sc01", "sc02"):
        (received / folder).mkdir(parents=True)
    for suffix in (".png", ".json"):
        shutil.copy(rendered / "street" / f"street_t1{suffix}", received / "sc01")
    (received / "sc02" / "frame.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    (rendered / "street" / "extra").mkdir()
    (rendered / "street" / "extra" / "frame.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    scandir = os.scandir

    def refusing(path: Any = ".") -> Any:  # the tests may run as root, which chmod 000 does not stop
        name = os.path.basename(os.fspath(path))
        if name in ("sc02", "extra"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    unread = ("{} is a folder verify cannot read (Permission denied): the images there are not checked. Make it "
              "readable to this user (chmod -R u+rX), or run verify as a user who can read it")
    report = verify_folder(received)
    # no image: the folder's own problem, counted apart (as a subfolder linked out is), and the folder fails
    assert [(c.image["path"], c.ok, c.problems) for c in report.images] == [("sc01/street_t1.png", True, [])]
    assert [(p.path["path"], p.problem) for p in report.folder_problems] == [("sc02", unread.format("sc02"))]
    assert report.exit_code == 6
    result = runner.invoke(app, ["verify", str(rendered)])
    assert result.exit_code == 6, result.output
    assert f"FOLDER street/extra\n       {unread.format('street/extra')}" in result.output
    assert "street/extra" not in [c.image["path"] for c in verify_folder(rendered).images]
    (received / "delivery.json").write_text("{}")  # a delivery folder (its listing's own problems aside)
    delivered = verify_folder(received)
    assert delivered.kind == "delivery" and delivered.exit_code == 6
    assert [(p.path["path"], p.problem) for p in delivered.folder_problems] == [("sc02", unread.format("sc02"))]


def test_a_folder_nested_a_thousand_deep_is_walked_not_an_internal_error(rendered: Path, tmp_path: Path) -> None:
    """Folders nested 1,100 deep (a sync tool's runaway copy, a path built by a script): Python 3.11's os.walk
    recurses once a folder, so ``idcli verify`` stopped with ``internal error: RecursionError`` in a folder of images
    and in an output folder alike. The walk is a loop now, and the PNG at the bottom is checked as any other."""
    from PIL import Image

    received = tmp_path / "received"
    received.mkdir()
    for suffix in (".png", ".json"):
        shutil.copy(rendered / "street" / f"street_t1{suffix}", received)
    bottoms = []
    try:
        for folder in (received, rendered):
            bottom = folder
            for _ in range(1100):  # one at a time: Path.mkdir(parents=True) recurses too
                bottom /= "d"
                bottom.mkdir()
            bottoms.append(bottom)
            Image.new("RGB", (8, 8)).save(bottom / "frame.png")
        deep = "/".join(["d"] * 1100) + "/frame.png"
        flat = {c.image["path"]: (c.ok, c.problems) for c in verify_folder(received).images}
        assert flat == {"street_t1.png": (True, []), deep: (False, [
            "not signed, and no sidecar beside it (frame.json): nothing here says what the image should be"])}
        output = {c.image["path"]: c.problems for c in verify_folder(rendered).images if not c.ok}
        assert list(output) == [deep] and output[deep][0].startswith("not a take of this render"), output
    finally:  # removed here, bottom up: pytest's own clean-up of old temporary folders (shutil.rmtree) recurses too
        for bottom in bottoms:
            (bottom / "frame.png").unlink(missing_ok=True)
            for _ in range(1100):
                bottom.rmdir()
                bottom = bottom.parent


def _parent_of(out: Path) -> Path:
    """A folder holding an output folder and nothing else: ``idcli verify renders`` for ``renders/PROJECT``."""
    parent = out.parent / "renders_only"
    shutil.copytree(out, parent / out.name)
    return parent


def test_a_received_file_name_that_is_not_utf8_keeps_the_json_document(rendered: Path, tmp_path: Path) -> None:
    """A flat folder as received holds names written on another system: a PNG named in Latin-1 (``Ren\xe9e.png``, a
    byte that is no UTF-8) is a lone surrogate to Python, which the UTF-8 JSON could not encode: ``verify --json``
    ended with UnicodeEncodeError, exit 1 and no document, where the text report said exit 6. The name is now written
    as a JSON escape (``\\udce9``), which a script reads back as the file's own bytes (``os.fsencode``)."""
    import os

    flat = _flat(rendered, tmp_path / "received", ".png")
    raw = os.path.join(os.fsencode(flat), b"Ren\xe9e.png")
    os.rename(flat / "street_t1.png", raw)
    result = runner.invoke(app, ["verify", str(flat), "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    document = json.loads(result.stdout)
    assert document["exit_code"] == 0 and document["folder"]["kind"] == "images", document
    (named,) = [image["image"]["path"] for image in document["images"] if image["image"]["path"].startswith("Ren")]
    assert os.fsencode(named) == b"Ren\xe9e.png" and (flat / named).exists()


def test_a_good_images_untrusted_signer_without_trust_is_a_note_not_a_failure(rendered: Path, signing_env) -> None:
    # Before: verify --json without --trust listed "signingCredential.untrusted: ..." among the failures of an image
    # with ok: true (the C2PA reader lists every signer so when it is given no root); a script reading failures saw a
    # failure on a good image.
    document = json.loads(runner.invoke(app, ["verify", str(rendered), "--json"]).stdout)
    assert document["ok"] is True
    for image in document["images"]:
        assert image["c2pa"]["state"] == "Valid" and image["c2pa"]["failures"] == []
        [note] = image["c2pa"]["notes"]
        assert note.startswith("signingCredential.untrusted: ")
    # Under a root the signer does not chain to, it is the failure it says (and under its own, neither).
    from c2pa_helpers import make_test_ca

    other = make_test_ca(rendered.parent / "other-ca", name="other")
    failed = json.loads(runner.invoke(app, ["verify", str(rendered), "--trust", str(other.root), "--json"]).stdout)
    assert failed["exit_code"] == 6
    assert all(any(f.startswith("signingCredential.untrusted: ") for f in image["c2pa"]["failures"])
               and image["c2pa"]["notes"] == [] for image in failed["images"])
    trusted = json.loads(runner.invoke(app, ["verify", str(rendered), "--trust", str(signing_env.root),
                                             "--json"]).stdout)
    assert trusted["ok"] is True and all(image["c2pa"]["state"] == "Trusted" and image["c2pa"]["failures"] == []
                                         and image["c2pa"]["notes"] == [] for image in trusted["images"])


PLATE_SHOTS = """\
version: 1
project: inputs-inside
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: ddim, takes: 1}
characters:
  mara: {selfies: [OUT/selfies/mara_1.jpg], description: a red-haired woman}
  theo: {selfies: [OUT/selfies/theo_1.jpg], description: a young man}
shots:
  - {id: both, prompt: "{mara} and {theo} before a window", plate: OUT/plates/two_people.png}
  - {id: street, prompt: "an empty wet street at night"}
"""


def _render_with_inputs_inside(tmp_path: Path, selfies: Path, write_shotlist, engine_factory) -> Path:
    """OUT holding its own plates/ and selfies/ (the recipe's plate, two selfies), PLATE_SHOTS rendered into it."""
    out = tmp_path / "OUT"
    (out / "plates").mkdir(parents=True)
    shutil.copy(Path(__file__).resolve().parents[1] / "recipes" / "plates" / "two_people.png", out / "plates")
    (out / "selfies").mkdir()
    for name in ("mara_1.jpg", "theo_1.jpg"):
        shutil.copy(selfies / name, out / "selfies")
    render_on_cpu(write_shotlist(PLATE_SHOTS), out, engine_factory)
    return out


def test_plates_and_selfies_kept_inside_the_output_folder_are_inputs_not_strays(write_shotlist, tmp_path: Path,
                                                                                 selfies: Path, engine_factory) -> None:
    # Before: each failed "not a take of this render …: added, renamed or edited outside idcli?", so a folder whose
    # every take passed said "5 images checked, 3 failed", exit 6.
    pytest.importorskip("insightface", exc_type=ImportError)
    out = _render_with_inputs_inside(tmp_path, selfies, write_shotlist, engine_factory)
    report = verify_folder(out)
    assert {c.image["path"]: c.problems for c in report.images if not c.ok} == {}
    sidecar = "as its sidecar (both/both_t1.json) records it by its sha256"
    assert [(c.image["path"], c.notes) for c in report.images] == [
        ("both/both_t1.png", []),
        ("plates/two_people.png", [f"an input of this render, not a take: the plate for both take 1, {sidecar}"]),
        ("selfies/mara_1.jpg", [f"an input of this render, not a take: mara's selfie for both take 1, {sidecar}"]),
        ("selfies/theo_1.jpg", [f"an input of this render, not a take: theo's selfie for both take 1, {sidecar}"]),
        ("street/street_t1.png", [])]
    result = runner.invoke(app, ["verify", str(out)])
    assert result.exit_code == 0 and (f"ok     plates/two_people.png\n       an input of this render, not a take: the "
                                      f"plate for both take 1, {sidecar}") in result.stdout
    # A file that matches nothing recorded still fails: the plate retouched, an image no take was made from.
    from PIL import Image

    with Image.open(out / "plates" / "two_people.png") as plate:
        plate.crop((0, 0, 64, 64)).save(out / "plates" / "two_people_crop.png")
    (problem,) = {c.image["path"]: c.problems for c in verify_folder(out).images}["plates/two_people_crop.png"]
    assert problem.startswith("not a take of this render")
    # And an input only a failed take records is not vouched for by it (its sidecar may have been edited to name it).
    both = json.loads((out / "both" / "both_t1.json").read_text("utf-8"))
    both["seed"] += 1
    (out / "both" / "both_t1.json").write_text(json.dumps(both), "utf-8")
    failed = {c.image["path"]: c.ok for c in verify_folder(out).images}
    assert failed["plates/two_people.png"] is False and failed["selfies/mara_1.jpg"] is False


def test_a_plate_or_selfie_copied_to_a_takes_name_fails_as_a_take(write_shotlist, tmp_path: Path, selfies: Path,
                                                                   engine_factory) -> None:
    """A file at a take's place (``SHOT/SHOT_tN…``: a take number the render never made, or one whose sidecar is
    gone) is a take's image: its bytes equal to a recorded plate or selfie do not make it an input. Before: a selfie
    copied to ``both/both_t2.jpg`` or the plate to ``street/street_t1.PNG`` passed "an input of this render, not a
    take" and the folder said 0 failed."""
    pytest.importorskip("insightface", exc_type=ImportError)
    out = _render_with_inputs_inside(tmp_path, selfies, write_shotlist, engine_factory)
    plate, selfie = out / "plates" / "two_people.png", out / "selfies" / "mara_1.jpg"
    shutil.copy(plate, out / "street" / "street_t3.png")  # a take number the render never made
    shutil.copy(selfie, out / "both" / "both_t2.jpg")
    shutil.copy(plate, out / "both" / "both_t1.uncommitted.png")
    (out / "street" / "street_t1.json").unlink()  # a take whose sidecar is gone, its image replaced by the plate
    (out / "street" / "street_t1.png").unlink()
    shutil.copy(plate, out / "street" / "street_t1.PNG")
    checks = {c.image["path"]: c for c in verify_folder(out).images}
    at_takes = ("both/both_t1.uncommitted.png", "both/both_t2.jpg", "street/street_t1.PNG", "street/street_t3.png")
    assert {path: (checks[path].ok, checks[path].notes) for path in at_takes} == dict.fromkeys(at_takes, (False, []))
    # What it is and what to do, and only that: before, the plate at street_t3.png was first told "idcli render
    # recovers the sidecar from the image's own record" (a plate has no idcli record), and a file at a take's other
    # names "added, renamed or edited outside idcli?", before the line saying which input its bytes are.
    sidecar = "as its sidecar (both/both_t1.json) records it by its sha256"
    move = ("Move it out of the take's name (to plates/ or selfies/, say), where it is named as that input and passes, "
            "or delete it.")
    assert checks["street/street_t3.png"].problems == [
        "no sidecar beside it, so it cannot be checked",
        f"Its bytes are the plate for both take 1, {sidecar}: an input copied to a take's name? {move}"]
    not_a_take = "not a take of this render (a take is SHOT/SHOT_tN.png beside its sidecar)."
    assert [checks[path].problems for path in at_takes[:3]] == [
        [f"{not_a_take} Its bytes are the plate for both take 1, {sidecar}: an input copied to a take's name? {move}"],
        [f"{not_a_take} Its bytes are mara's selfie for both take 1, {sidecar}: an input copied to a take's name? "
         f"{move}"],
        [f"{not_a_take} Its bytes are the plate for both take 1, {sidecar}: an input copied to a take's name? {move}"]]
    # The same bytes outside the take naming pattern are still the inputs the takes record.
    assert checks["plates/two_people.png"].ok and checks["selfies/mara_1.jpg"].ok
    result = runner.invoke(app, ["verify", str(out)])
    assert result.exit_code == 6 and "4 failed" in result.stdout, result.stdout


@pytest.mark.parametrize("v2_name", ["two_people.png", "two_people_v2.png"], ids=["same-name", "another-name"])
def test_the_plate_of_a_restorable_superseded_take_is_an_input_not_a_stray(write_shotlist, tmp_path: Path,
                                                                             selfies: Path, engine_factory,
                                                                             v2_name: str) -> None:
    """A plate kept in the output folder, edited to v2 (in place, or saved under another name the shot list then
    names) and rendered again: the v1 take goes to .idcli/superseded (restorable), and v1's file kept in plates/
    failed "not a take of this render … added, renamed or edited outside idcli?", exit 6, though the kept version
    records it. It is an input of that kept take now, named with the command that restores it, while the kept take is
    intact; its sidecar vouches for nothing once its image is not the bytes it records."""
    pytest.importorskip("insightface", exc_type=ImportError)
    from PIL import Image

    out = _render_with_inputs_inside(tmp_path, selfies, write_shotlist, engine_factory)
    plate = out / "plates" / "two_people.png"
    v1 = plate
    if v2_name == plate.name:  # v1 kept under another name, v2 saved over it
        v1 = out / "plates" / "two_people_v1.png"
        shutil.copy(plate, v1)
    with Image.open(plate) as image:
        edited = image.convert("RGB")
    edited.putpixel((0, 0), (255, 0, 255))
    edited.save(out / "plates" / v2_name)
    shots = write_shotlist(PLATE_SHOTS.replace("OUT/plates/two_people.png", f"OUT/plates/{v2_name}"))
    render_on_cpu(shots, out, engine_factory)
    [kept] = list((out / ".idcli" / "superseded" / "both").glob("both_t1.*.json"))
    key = kept.name.split(".")[1]
    checks = {c.image["path"]: c for c in verify_folder(out).images}
    assert {path: c.problems for path, c in checks.items() if not c.ok} == {}
    restore = f"idcli restore {out} both_t1 --key {key}"
    v1_rel, v2_rel = v1.relative_to(out).as_posix(), f"plates/{v2_name}"
    assert checks[v1_rel].notes == [
        f"an input of this render, not a take: the plate of a superseded take of both (take 1, restorable with "
        f"{restore}), as its kept sidecar (.idcli/superseded/both/{kept.name}) records it by its sha256"]
    live = ("an input of this render, not a take: the plate for both take 1, as its sidecar (both/both_t1.json) "
            "records it by its sha256")
    assert checks[v2_rel].notes == [live]
    result = runner.invoke(app, ["verify", str(out)])
    assert result.exit_code == 0, result.stdout
    # The command the note gives brings that take back: v1's plate is then the current take's, v2's the kept one's.
    restored = runner.invoke(app, restore.split()[1:])
    assert restored.exit_code == 0, restored.output
    notes = {c.image["path"]: (c.ok, c.notes) for c in verify_folder(out).images}
    assert notes[v1_rel] == (True, [live])
    assert notes[v2_rel][0] and notes[v2_rel][1][0].startswith(
        "an input of this render, not a take: the plate of a superseded take of both (take 1, restorable with idcli "
        f"restore {out} both_t1 --key ")
    # A kept sidecar edited to record another file as its plate vouches for nothing: it no longer says what its
    # image's own record says (a sidecar is signed by nothing).
    edited.crop((0, 0, 64, 64)).save(out / "plates" / "crop.png")
    [kept_sidecar] = list((out / ".idcli" / "superseded" / "both").glob("both_t1.*.json"))
    record = json.loads(kept_sidecar.read_text("utf-8"))
    real_sha256 = record["plate"]["sha256"]
    record["plate"]["sha256"] = hashlib.sha256((out / "plates" / "crop.png").read_bytes()).hexdigest()
    kept_sidecar.write_text(json.dumps(record), "utf-8")
    assert {c.image["path"]: c.ok for c in verify_folder(out).images}["plates/crop.png"] is False
    (out / "plates" / "crop.png").unlink()
    record["plate"]["sha256"] = real_sha256
    kept_sidecar.write_text(json.dumps(record), "utf-8")
    assert {c.image["path"]: c.ok for c in verify_folder(out).images}[v2_rel] is True
    # A kept take whose image is not the bytes its sidecar records vouches for nothing: its plate fails again.
    [kept] = list((out / ".idcli" / "superseded" / "both").glob("both_t1.*.png"))
    data = bytearray(kept.read_bytes())
    data[-30] ^= 1
    kept.write_bytes(bytes(data))
    (problem,) = {c.image["path"]: c.problems for c in verify_folder(out).images}[v2_rel]
    assert problem.startswith("not a take of this render")


def test_the_restore_command_a_kept_input_names_is_one_to_paste_into_a_shell(write_shotlist, tmp_path: Path,
                                                                              selfies: Path, engine_factory,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The note on a kept plate names the command that restores its take. Only the folder was quoted: a folder given
    as `-kept v1` (a leading dash) made `idcli restore -kept v1 both_t1 …`, an unknown option to the shell's idcli,
    and a kept version's name, which verify reads from a received folder's files, went unquoted: `both $(touch
    pasted)_t1` ran `touch` when pasted. Each word is quoted now, and a relative folder that starts with a dash is
    spelt ./-kept v1."""
    pytest.importorskip("insightface", exc_type=ImportError)
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    name = "-kept v1"
    out = tmp_path / name
    (out / "plates").mkdir(parents=True)
    shutil.copy(Path(__file__).resolve().parents[1] / "recipes" / "plates" / "two_people.png", out / "plates")
    (out / "selfies").mkdir()
    for selfie in ("mara_1.jpg", "theo_1.jpg"):
        shutil.copy(selfies / selfie, out / "selfies")
    render_on_cpu(write_shotlist(PLATE_SHOTS.replace("OUT/", f"{name}/")), out, engine_factory)
    with Image.open(out / "plates" / "two_people.png") as image:
        edited = image.convert("RGB")
    edited.putpixel((0, 0), (255, 0, 255))
    edited.save(out / "plates" / "two_people_v2.png")
    shots = PLATE_SHOTS.replace("OUT/plates/two_people.png", "OUT/plates/two_people_v2.png").replace("OUT/", f"{name}/")
    render_on_cpu(write_shotlist(shots), out, engine_factory)
    [kept] = list((out / ".idcli" / "superseded" / "both").glob("both_t1.*.json"))
    key = kept.name.split(".")[1]

    def restore_words() -> list[str]:
        [note] = {c.image["path"]: c.notes for c in verify_folder(Path(name)).images}["plates/two_people.png"]
        command = note.split("restorable with ", 1)[1].split("), as its kept sidecar", 1)[0]
        return shlex.split(command)

    assert restore_words() == ["idcli", "restore", f"./{name}", "both_t1", "--key", key]
    hostile = "both $(touch pasted)'s_t1"
    for path in list((out / ".idcli" / "superseded" / "both").glob("both_t1.*")):
        path.rename(path.with_name(hostile + path.name[len("both_t1"):]))
    assert restore_words() == ["idcli", "restore", f"./{name}", hostile, "--key", key]
    for path in list((out / ".idcli" / "superseded" / "both").glob("both *")):
        path.rename(path.with_name("both_t1" + path.name[len(hostile):]))
    restored = runner.invoke(app, restore_words()[1:])  # the command as the shell gives it its words
    assert restored.exit_code == 0, restored.output


@pytest.mark.skipif(shutil.which("bash") is None, reason="the quoting is bash's")
def test_the_restore_command_a_kept_input_names_pastes_a_folder_not_named_in_utf8(write_shotlist, tmp_path: Path,
                                                                                    selfies: Path, engine_factory,
                                                                                    monkeypatch: pytest.MonkeyPatch
                                                                                    ) -> None:
    """The restore command of a kept plate's note quoted its words with shlex.quote: a folder named in Latin-1 (a
    received ``caf\\xe9``) came out as Python's escape ``\\udce9``, which names another folder pasted (and which
    UTF-8 cannot encode). It is quoted as every suggested path is (idcli/shell_words.py): bash given the command
    receives the folder's bytes."""
    import subprocess

    pytest.importorskip("insightface", exc_type=ImportError)
    from PIL import Image

    out = _render_with_inputs_inside(tmp_path, selfies, write_shotlist, engine_factory)
    with Image.open(out / "plates" / "two_people.png") as image:
        edited = image.convert("RGB")
    edited.putpixel((0, 0), (255, 0, 255))
    edited.save(out / "plates" / "two_people_v2.png")
    render_on_cpu(write_shotlist(PLATE_SHOTS.replace("OUT/plates/two_people.png", "OUT/plates/two_people_v2.png")),
                  out, engine_factory)
    [kept] = list((out / ".idcli" / "superseded" / "both").glob("both_t1.*.json"))
    key = kept.name.split(".")[1]
    received_name = b"caf\xe9 OUT"  # received from an old share under its Latin-1 name
    out.rename(tmp_path / os.fsdecode(received_name))
    monkeypatch.chdir(tmp_path)
    [note] = {c.image["path"]: c.notes for c in verify_folder(Path(os.fsdecode(received_name))).images}[
        "plates/two_people.png"]
    command = note.split("restorable with ", 1)[1].split("), as its kept sidecar", 1)[0]
    received = subprocess.run([b"bash", b"-c", b"printf '%s\\n' " + command.encode("utf-8")], capture_output=True,
                              check=True).stdout
    assert received.splitlines() == [b"idcli", b"restore", received_name, b"both_t1", b"--key", key.encode()], command
