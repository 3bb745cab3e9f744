"""What an outside check of a signed render folder found (the provenance trial of 2026-12-02): a studio's legal
reviewer running ``idcli verify`` on a folder copied from the render machine, after the previs supervisor re-saved,
cropped, renamed or swapped some of its images (docs/provenance.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cli_helpers import render_on_cpu

from idcli.verify import verify_folder

pytest.importorskip("c2pa")

SHOTS = """\
version: 1
project: provenance-trial
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 5.0, sampler: dpmpp-2m, takes: 2}
shots:
  - {id: street, prompt: "an empty street at night, rain", seeds: [42, 43]}
"""
NOT_A_DELIVERED = ("not a delivered copy (a copy is SHOT_takeN.png beside its sidecar, listed in delivery.json), so "
                   "nothing checks where it came from: added, renamed or edited outside idcli?")
NOT_A_TAKE = ("not a take of this render (a take is SHOT/SHOT_tN.png beside its sidecar), so nothing checks where it "
              "came from: added, renamed or edited outside idcli?")


@pytest.fixture
def received(write_shotlist, tmp_path: Path, engine_factory, signing_env) -> Path:
    """A signed render's folder, copied elsewhere as a reviewer receives it; it passes verify as it is."""
    render_on_cpu(write_shotlist(SHOTS), tmp_path / "out", engine_factory, sign=True)
    copy = tmp_path / "received"
    shutil.copytree(tmp_path / "out", copy)
    assert verify_folder(copy).failed == 0
    return copy


def _problems(out: Path) -> dict[str, list[str]]:
    return {check.image["path"]: check.problems for check in verify_folder(out).images if not check.ok}


def test_an_image_added_beside_the_takes_fails_verify_naming_it(received: Path) -> None:
    # Before: verify checked only the files named as takes (SHOT/SHOT_tN.png), so a retouched crop saved beside them
    # (street_final.png) or a frame dropped into the folder passed unseen: "2 images checked, 0 failed", exit 0, and
    # the reviewer signed off a folder holding images nothing had checked.
    from PIL import Image

    with Image.open(received / "street" / "street_t1.png") as take:
        take.crop((0, 0, 32, 32)).save(received / "street" / "street_final.png")  # Pillow keeps no text chunk
        take.convert("RGB").save(received / "poster.jpg")
    (received / "street" / "notes.txt").write_text("approved", "utf-8")  # not an image: not verify's to judge

    report = verify_folder(received)
    assert report.exit_code == 6 and len(report.images) == 4
    assert _problems(received) == {
        "poster.jpg": [NOT_A_TAKE], "street/street_final.png": [NOT_A_TAKE]}


def test_idclis_own_files_beside_the_takes_are_no_stray_images(received: Path) -> None:
    # What idcli itself writes into an output folder besides takes: masks (--save-masks, and a killed render's
    # uncommitted one), the review page's contact sheet and thumbnails, and its own .idcli folder.
    shutil.copy(received / "street" / "street_t1.png", received / "street" / "street_t1.mask.png")
    shutil.copy(received / "street" / "street_t1.png", received / "street" / "street_t2.uncommitted.2.mask.png")
    (received / "review" / "thumbs").mkdir(parents=True)
    shutil.copy(received / "street" / "street_t1.png", received / "review" / "contact-sheet.png")
    shutil.copy(received / "street" / "street_t1.png", received / "review" / "thumbs" / "street_t1.jpg")
    shutil.copy(received / "street" / "street_t1.png", received / ".idcli" / "x.png")
    assert verify_folder(received).failed == 0


def test_a_take_renamed_out_of_its_name_is_named_where_it_went(received: Path) -> None:
    # The renamed file was not checked, and only "image missing" said anything: where the take went was left to
    # whoever read the report.
    (received / "street" / "street_t1.png").rename(received / "street" / "street_t1_v2.png")
    assert _problems(received) == {
        "street/street_t1.png": ["image missing: street/street_t1.png"],
        "street/street_t1_v2.png": [
            f"{NOT_A_TAKE} Its own record (its idcli chunk) is street take 1's (street/street_t1.png)"]}


@pytest.mark.parametrize("trust", [False, True], ids=["valid", "trusted"])
def test_two_takes_swapped_are_named_as_each_others(received: Path, signing_env, trust: bool) -> None:
    # Before: each swapped take failed with three lines an engineer reads (its sha256, "the manifest's org.idcli.render
    # assertion names another job key", "its sidecar's c2pa.unsigned_sha256 is not the image's without its
    # manifest"), none saying that the image is the other take's, untouched and validly signed: put back, both pass.
    one, two = received / "street" / "street_t1.png", received / "street" / "street_t2.png"
    swap = received / "street" / "swap"
    one.rename(swap), two.rename(one), swap.rename(two)
    report = verify_folder(received, signing_env.root if trust else None)
    state = "Trusted" if trust else "Valid"
    assert [(c.image["path"], c.c2pa["state"] if c.c2pa else None, c.problems) for c in report.images] == [
        ("street/street_t1.png", state, [_swapped("street take 2's (street/street_t2.png)", "street take 1's")]),
        ("street/street_t2.png", state, [_swapped("street take 1's (street/street_t1.png)", "street take 2's")])]


def _swapped(image: str, sidecar: str) -> str:
    return (f"this image is {image}, as its own record (its idcli chunk) says, not {sidecar} that its sidecar records: "
            "swapped with another take, or copied over this one?")


def test_another_render_of_the_take_copied_over_it_is_named_as_such(received: Path, write_shotlist, tmp_path: Path,
                                                                    engine_factory) -> None:
    # The supervisor re-delivers street take 1 from another version of the shot list (another prompt: another job):
    # it said only that the image does not match its sidecar, as for a retouched one.
    other = write_shotlist(SHOTS.replace("rain", "snow"), "other.yaml")
    render_on_cpu(other, tmp_path / "other", engine_factory, sign=True)
    shutil.copy(tmp_path / "other" / "street" / "street_t1.png", received / "street" / "street_t1.png")
    [problem] = _problems(received)["street/street_t1.png"]
    assert problem.startswith("this image is another render of street take 1 than its sidecar records (its own "
                              "record, its idcli chunk, names job ")
    assert problem.endswith(": an earlier version copied back, or the take of another output folder?")

def test_an_image_resaved_by_another_program_says_so(received: Path) -> None:
    # Pillow (as most editors) keeps no C2PA manifest: the two lines said what was found, not what happened.
    from PIL import Image

    with Image.open(received / "street" / "street_t1.png") as take:
        take.load()
        take.save(received / "street" / "street_t1.png")
    assert _problems(received) == {"street/street_t1.png": [
        "the image does not match its sidecar's sha256 (changed after it was committed)",
        "the sidecar says the image was signed, but it carries no C2PA manifest: re-saved or edited by a program "
        "that drops content credentials?"]}


def test_a_take_whose_signer_certificate_expired_is_said_to_be_unchanged(write_shotlist, tmp_path: Path,
                                                                         engine_factory) -> None:
    # A manifest without a time stamp lapses with its signer's certificate: every image it signed turns Invalid.
    # verify said "C2PA validation state Invalid: signingCredential.expired: certificate expired", which a reviewer
    # reads as a forged or altered image, though its bytes are the ones signed; and nothing said what to do.
    import datetime
    import json
    import time

    from c2pa_helpers import make_test_ca

    from idcli.hashing import sha256_bytes
    from idcli.provenance import read_png_record
    from idcli.signing import Signer, load_credentials

    out = tmp_path / "out"
    render_on_cpu(write_shotlist(SHOTS), out, engine_factory)
    ca = make_test_ca(tmp_path / "ca", name="brief", lifetime=datetime.timedelta(seconds=5))
    signer = Signer(load_credentials(ca.cert, ca.key))
    image, sidecar_path = out / "street" / "street_t1.png", out / "street" / "street_t1.json"
    signed, block = signer.sign(image.read_bytes(), read_png_record(image.read_bytes()) or {})
    image.write_bytes(signed)  # as a signing run commits it: the signed bytes, their sha256 and the c2pa block
    sidecar = json.loads(sidecar_path.read_text("utf-8"))
    sidecar["image"]["sha256"], sidecar["c2pa"] = sha256_bytes(signed), block
    sidecar_path.write_text(json.dumps(sidecar), "utf-8")
    ended = datetime.datetime.fromisoformat(block["not_after"])
    while datetime.datetime.now(datetime.timezone.utc) <= ended + datetime.timedelta(seconds=1):  # noqa: UP017
        time.sleep(0.2)

    said = (f"C2PA validation state Invalid: its signer's certificate expired on {ended:%Y-%m-%d %H:%M:%S} UTC, and "
            "a manifest without a time stamp lapses with it; the image itself is as signed (its bytes are its "
            "sidecar's): sign it again with a current certificate (idcli render FILE --force --sign) (")
    assert _problems(out) == {"street/street_t1.png": [f"{said}signingCredential.expired: certificate expired)"]}
    # Under its own root the expired chain is untrusted too (the reader's codes say both): the expiry is the why.
    [trusted] = [c.problems for c in verify_folder(out, ca.root).images if c.image["path"] == "street/street_t1.png"]
    assert len(trusted) == 1 and trusted[0].startswith(said) and "signingCredential.expired" in trusted[0]


def test_a_signed_take_changed_after_signing_says_so_in_words(received: Path) -> None:
    data = bytearray((received / "street" / "street_t1.png").read_bytes())
    data[-30] ^= 1  # a byte of the pixel data (the last IDAT), under the manifest's hash
    (received / "street" / "street_t1.png").write_bytes(bytes(data))
    [sha, c2pa] = _problems(received)["street/street_t1.png"]
    assert sha == "the image does not match its sidecar's sha256 (changed after it was committed)"
    assert c2pa.startswith("C2PA validation state Invalid: its bytes changed after it was signed "
                           "(assertion.dataHash.mismatch: ")


def test_a_renamed_shot_folders_takes_are_still_checked(received: Path) -> None:
    # Before: "its sidecar … is the record of street/street_t1.png, not of this image (moved or swapped)", the image
    # not checked at all (its C2PA state not even read): an intact, validly signed take read as a swapped one.
    (received / "street").rename(received / "street_v2")
    report = verify_folder(received)
    assert [(c.image["path"], c.c2pa["state"] if c.c2pa else None, c.problems) for c in report.images] == [
        (f"street_v2/street_t{n}.png", "Valid", [
            f"its sidecar street_v2/street_t{n}.json records the image at street/street_t{n}.png: its shot folder was "
            "renamed, or the take moved out of it (the image is checked here as that take)"]) for n in (1, 2)]
    # A take changed as well says so too: the move is not all that is wrong with it.
    (received / "street_v2" / "street_t2.png").write_bytes((received / "street_v2" / "street_t2.png").read_bytes()[:-1])
    assert "the image does not match its sidecar's sha256 (changed after it was committed)" in _problems(received)[
        "street_v2/street_t2.png"]


def test_a_renamed_shot_folders_masks_are_its_takes_masks_not_stray_images(received: Path) -> None:
    # A --save-masks render's shot folder renamed: each take fails for where it is, and its mask beside it was failed
    # as an image added outside idcli ("not a take of this render … added, renamed or edited outside idcli?"), one
    # more failed image per take ("4 images checked, 4 failed") for a file idcli wrote beside that take.
    for n in (1, 2):
        shutil.copy(received / "street" / f"street_t{n}.png", received / "street" / f"street_t{n}.mask.png")
    (received / "street").rename(received / "street_v2")
    report = verify_folder(received)
    assert [check.image["path"] for check in report.images] == ["street_v2/street_t1.png", "street_v2/street_t2.png"]
    # A mask of no take checked there is still an image nothing checks.
    shutil.copy(received / "street_v2" / "street_t1.png", received / "street_v2" / "street_t7.mask.png")
    (problem,) = _problems(received)["street_v2/street_t7.mask.png"]
    assert problem.startswith(NOT_A_TAKE)


def test_an_image_added_to_a_delivery_folder_fails_verify(received: Path, tmp_path: Path) -> None:
    # verify DEST checked the PNGs at the delivery's top only: a JPEG beside them, or a take dropped into a folder
    # in it, passed unseen ("2 images checked, 0 failed").
    from idcli.delivery import deliver

    dest = tmp_path / "dest"
    deliver(received, dest)
    shutil.copy(dest / "street_take1.png", dest / "street_take1.jpg")
    (dest / "extra").mkdir()
    (dest / "street").mkdir()  # a delivery holds no masks: one named as a take's in its shot's folder is checked too
    shutil.copy(dest / "street_take1.jpg", dest / "street" / "street_t1.mask.png")
    shutil.copy(received / "street" / "street_t2.png", dest / "extra" / "street_t2.png")
    assert _problems(dest) == {
        "extra/street_t2.png": [f"{NOT_A_DELIVERED} Its own record (its idcli chunk) is street take 2's "
                                "(street/street_t2.png)"],
        "street/street_t1.mask.png": [f"{NOT_A_DELIVERED} Its own record (its idcli chunk) is street take 1's "
                                      "(street/street_t1.png)"],
        "street_take1.jpg": [NOT_A_DELIVERED]}


@pytest.mark.parametrize("trust", [False, True], ids=["valid", "trusted"])
def test_a_signed_take_without_its_sidecar_still_has_its_signature_checked(received: Path, signing_env,
                                                                           trust: bool) -> None:
    # PNGs sent on without their sidecars: each failed "no sidecar beside it", its signature never read ("0 signed"),
    # so the reviewer could not tell an intact, signed take from any other PNG.
    from idcli.provenance import PNG_SIGNATURE, png_chunk, png_chunks

    for sidecar in received.glob("street/*.json"):
        sidecar.unlink()
    # Take 2's A1111 parameters edited by a metadata tool (a whole PNG still, its chunks' CRCs right); take 1 cut short.
    two = received / "street" / "street_t2.png"
    chunks = [(kind, payload.replace(b"Seed: 43", b"Seed: 44") if kind == b"tEXt" else payload)
              for kind, payload in png_chunks(two.read_bytes())]
    two.write_bytes(PNG_SIGNATURE + b"".join(png_chunk(kind, payload) for kind, payload in chunks))
    shutil.copy(received / "street" / "street_t1.png", received / "street" / "street_t3.png")
    cut = received / "street" / "street_t3.png"
    cut.write_bytes(cut.read_bytes()[:-100])
    report = verify_folder(received, signing_env.root if trust else None)
    state = "Trusted" if trust else "Valid"
    missing = ("no sidecar beside it, so it cannot be checked (idcli render recovers the sidecar from the image's own "
               "record)")
    assert report.as_dict()["counts"]["signed"] == 2
    [first, second, third] = report.images
    assert (first.c2pa or {}).get("state") == state and first.problems == [
        missing, f"its C2PA manifest is {state}, signed by 'idcli test signer' for its job: " + (
            "the image is as idcli signed it" if trust else "the image is as its signer signed it. No trust root was "
            "given, so who holds that certificate was not checked: any CA's certificate, under any name, validates")]
    assert (second.c2pa or {}).get("state") == "Invalid" and second.problems[0] == missing
    assert second.problems[1].startswith("C2PA validation state Invalid: its bytes changed after it was signed")
    # A copy of take 1 at take 3's name: its own record is take 1's, from which render rebuilds no take 3 sidecar.
    assert third.c2pa is None and third.problems[0] == "no sidecar beside it, so it cannot be checked"
    assert len(third.problems) == 3
    assert third.problems[1] == "Its own record (its idcli chunk) is street take 1's (street/street_t1.png)"
    assert third.problems[2].startswith("the image is damaged: its IDAT chunk claims ")  # cut short


def test_a_take_copied_to_another_takes_name_without_a_sidecar_says_whose_it_is(received: Path) -> None:
    # Before: a stray PNG said whose take its own record names ("Its own record (its idcli chunk) is street take 1's
    # ..."), but the same file at another take's name with no sidecar said only "no sidecar beside it", and the
    # reviewer was left to guess it was take 1 copied there.
    shutil.copy(received / "street" / "street_t1.png", received / "street" / "street_t3.png")
    (received / "street" / "street_t2.json").unlink()
    shutil.copy(received / "street" / "street_t1.png", received / "street" / "street_t2.png")
    problems = _problems(received)
    whose = "Its own record (its idcli chunk) is street take 1's (street/street_t1.png)"
    for path in ("street/street_t2.png", "street/street_t3.png"):
        assert problems[path][:2] == ["no sidecar beside it, so it cannot be checked", whose], problems[path]
    # Its own take's record still gets the recovery hint, and no such line: it names the take it is at.
    (received / "street" / "street_t1.json").unlink()
    assert _problems(received)["street/street_t1.png"][0] == (
        "no sidecar beside it, so it cannot be checked (idcli render recovers the sidecar from the image's own record)")
    assert not any(line.startswith("Its own record") for line in _problems(received)["street/street_t1.png"])
