"""What an outside check of our provenance found (the tour of 2026-11-30c): a compliance engineer checking a
render folder with ``idcli verify`` and the C2PA reader, and an artist reproducing an image from its record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import render_on_cpu

from idcli.verify import verify_folder

pytest.importorskip("c2pa")

SHOTS = """\
version: 1
project: provenance-tour
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 5.0, sampler: dpmpp-2m, takes: 1}
characters:
  mara: {selfies: [selfies/mara_1.jpg], description: a red-haired woman}
shots:
  - {id: street, prompt: "an empty street at night, rain", seeds: [42]}
  - {id: bar, prompt: "{mara} waits at a bar, medium shot", framing: medium, expression: hope}
"""


def _edit(sidecar_path: Path, edit) -> None:
    sidecar = json.loads(sidecar_path.read_text("utf-8"))
    edit(sidecar)
    sidecar_path.write_text(json.dumps(sidecar, indent=2), "utf-8")


@pytest.mark.parametrize("sign", [True, False], ids=["signed", "unsigned"])
def test_verify_fails_a_sidecar_field_edited_by_hand(sign, write_shotlist, tmp_path, engine_factory, request) -> None:
    # The image's sha256 and its signature stay good when only the sidecar is edited, so verify passed a sidecar
    # saying seed 1 (or another prompt) of an image rendered with seed 42: the record a reviewer reads was not the
    # image's. The image carries its own record (its idcli chunk, inside the signed bytes): the sidecar must say it.
    if sign:
        request.getfixturevalue("signing_env")
    out = tmp_path / "out"
    report = render_on_cpu(write_shotlist(SHOTS), out, engine_factory, sign=sign)
    street, bar = (Path(next(j for j in report.jobs if j.shot_id == s).sidecar) for s in ("street", "bar"))
    assert verify_folder(out).failed == 0

    _edit(street, lambda s: s.update(seed=1))
    _edit(bar, lambda s: s["identity"][0].update(strength=0.2))
    result = verify_folder(out)
    assert result.exit_code == 6 and result.failed == 2
    by_image = {check.image["path"]: check.problems for check in result.images}
    assert by_image["street/street_t1.png"] == [
        "its sidecar says seed 1, the image's own record (its idcli chunk) 42: edited after the render?"]
    assert by_image["bar/bar_t1.png"] == [
        "its sidecar says identity[0].strength 0.2, the image's own record (its idcli chunk) 1.0: edited after "
        "the render?"]

    # A field added by hand is not the image's either; run facts (batch, timing, qa) are the sidecar's own.
    _edit(street, lambda s: s.update(seed=42, note="approved"))
    _edit(bar, lambda s: (s["identity"][0].update(strength=1.0), s.update(qa={"checked": True})))
    result = verify_folder(out)
    assert [(c.image["path"], c.problems) for c in result.images if not c.ok] == [
        ("street/street_t1.png", ["its sidecar says note 'approved', which the image's own record (its idcli chunk) "
                                  "does not hold: edited after the render?"])]


def test_a_record_this_idcli_cannot_reproduce_is_refused_naming_its_file(write_shotlist, tmp_path,
                                                                         engine_factory) -> None:
    # A sidecar from a newer idcli (or another engine) was refused without naming it: `idcli: error: the record has
    # sidecar schema 99, ...` and `file: null` in --json, though a script reproducing a folder needs to know which.
    from idcli.reproduce import ReproduceError, reproduce
    from idcli.versions import ENGINE_ALGORITHM, TOOL_VERSION

    report = render_on_cpu(write_shotlist(SHOTS), tmp_path / "out", engine_factory)
    sidecar = json.loads(Path(next(j for j in report.jobs if j.shot_id == "street").sidecar).read_text("utf-8"))
    elsewhere = tmp_path / "received" / "street_t1.json"
    elsewhere.parent.mkdir()
    elsewhere.write_text(json.dumps({**sidecar, "schema": 99, "tool": {"name": "idcli", "version": "9.0"}}), "utf-8")
    with pytest.raises(ReproduceError) as refused:
        reproduce(elsewhere, engine_factory=engine_factory)
    assert refused.value.file == str(elsewhere)
    assert str(refused.value) == (f"{elsewhere}: the record has sidecar schema 99, made by idcli 9.0; this idcli "
                                  f"{TOOL_VERSION} reads schema 1 and earlier: upgrade idcli")
    # Another engine, claimed by this very idcli version: "use idcli 0.1.0 to reproduce it" sent the artist to the
    # version they run.
    elsewhere.write_text(json.dumps({**sidecar, "engine": "idcli-engine/99"}), "utf-8")
    with pytest.raises(ReproduceError) as refused:
        reproduce(elsewhere, engine_factory=engine_factory)
    assert refused.value.file == str(elsewhere)
    assert str(refused.value) == (f"{elsewhere}: the image was made by engine idcli-engine/99 (idcli {TOOL_VERSION}); "
                                  f"this idcli re-renders {ENGINE_ALGORITHM} only: an earlier build of idcli "
                                  f"{TOOL_VERSION} made it, or the record was edited")


def test_verify_fails_a_sidecar_naming_another_signer_or_unsigned_image_than_the_manifest(
        write_shotlist, tmp_path, engine_factory, signing_env) -> None:
    # The sidecar's c2pa block (who signed, the image's hash before its manifest) is read by people and by
    # `idcli reproduce`, but verify never compared it with the manifest: an image re-signed by someone else's
    # certificate, its sidecar's sha256 updated, passed without --trust while its sidecar still named the studio.
    from c2pa_helpers import make_test_ca

    from idcli.hashing import sha256_bytes
    from idcli.provenance import record_of_sidecar
    from idcli.signing import Signer, load_credentials, without_manifest

    out = tmp_path / "out"
    report = render_on_cpu(write_shotlist(SHOTS), out, engine_factory, sign=True)
    street = Path(next(j for j in report.jobs if j.shot_id == "street").sidecar)
    image = street.with_suffix(".png")
    assert verify_folder(out).failed == 0

    _edit(street, lambda s: s["c2pa"].update(unsigned_sha256="0" * 64))
    assert verify_folder(out).images[1].problems == [
        "its sidecar's c2pa.unsigned_sha256 is not the image's without its manifest (edited after the render?)"]
    unsigned = without_manifest(image.read_bytes())
    assert unsigned is not None  # rendered with sign=True
    _edit(street, lambda s: s["c2pa"].update(unsigned_sha256=sha256_bytes(unsigned)))
    assert verify_folder(out).failed == 0

    # Re-signed with a stranger's certificate: the manifest is Valid (no --trust), the sidecar names the studio.
    stranger = make_test_ca(tmp_path / "stranger", name="stranger", signer_name="someone else")
    sidecar = json.loads(street.read_text("utf-8"))
    signed = Signer(load_credentials(stranger.cert, stranger.key)).sign_png(unsigned, record_of_sidecar(sidecar))
    image.write_bytes(signed)
    _edit(street, lambda s: s["image"].update(sha256=sha256_bytes(signed)))
    check = verify_folder(out).images[1]
    assert check.c2pa is not None, check.problems
    assert check.c2pa["state"] == "Valid" and check.c2pa["signer"] == "someone else"
    # Named, then the certificate's serial and subject the sidecar records (recorded since 2026-11-30).
    assert check.problems[0] == ("the manifest is signed by 'someone else' (idcli test studio), its sidecar says "
                                 "'CN=idcli test signer,O=idcli test studio'")
    assert check.problems[1].startswith("the manifest is signed by the certificate with serial ")
    assert check.problems[2:] == ["the manifest is signed by 'someone else', its sidecar's subject_common_name says "
                                  "'idcli test signer'"]  # the stranger's CA has the studio's CA's name


def test_verify_of_a_delivery_fails_a_copys_sidecar_naming_another_signer(write_shotlist, tmp_path, engine_factory,
                                                                           signing_env) -> None:
    # The same check for a delivered copy (verify DEST): its sidecar's c2pa block is the client's record of who
    # signed; edited, it passed.
    import idcli

    out, dest = tmp_path / "out", tmp_path / "dest"
    render_on_cpu(write_shotlist(SHOTS), out, engine_factory, sign=True)
    idcli.deliver(out, dest)
    assert verify_folder(dest, signing_env.root).failed == 0
    copy = dest / "street_take1.json"
    _edit(copy, lambda s: s["c2pa"].update(subject="CN=Another Studio,O=Another Studio"))
    checks = {check.image["path"]: check.problems for check in verify_folder(dest, signing_env.root).images}
    assert checks == {"bar_take1.png": [], "street_take1.png": [
        "the manifest is signed by 'idcli test signer' (idcli test studio), its sidecar says "
        "'CN=Another Studio,O=Another Studio'"]}


def test_reproduce_of_an_edited_sidecar_says_the_sidecar_is_not_the_images_record(write_shotlist, tmp_path,
                                                                                   engine_factory) -> None:
    # The artist reproducing an image whose sidecar was edited (seed 1 for 42) got `different`, every pixel off,
    # and nothing saying why: the re-render follows the sidecar, which is not what the image records of itself.
    from idcli.reproduce import reproduce

    report = render_on_cpu(write_shotlist(SHOTS), tmp_path / "out", engine_factory)
    street = Path(next(j for j in report.jobs if j.shot_id == "street").sidecar)
    assert reproduce(street, engine_factory=engine_factory).identical
    _edit(street, lambda s: s.update(seed=1))
    again = reproduce(street, engine_factory=engine_factory)
    assert again.status == "different"
    assert ("its sidecar says seed 1, the image's own record (its idcli chunk) 42: edited after the render? "
            "re-rendered as the sidecar says") in again.notes


def test_verify_with_trust_fails_an_image_that_is_not_signed(write_shotlist, tmp_path, engine_factory,
                                                              studio_ca) -> None:
    # `idcli verify OUT --trust studio-root.pem` is the compliance check the docs give; a folder rendered without
    # --sign passed it (exit 0, "0 signed"), as did a signed image stripped of its manifest with its sidecar
    # rewritten. An image that carries no signature cannot be trusted: with --trust it fails, named.
    import idcli
    from idcli.option_words import options_as_flags
    from idcli.verify import not_signed

    NOT_SIGNED = not_signed()  # verify_folder from Python names trust as Python does
    assert NOT_SIGNED == "not signed, and trust asks that every image be signed by a certificate under its root"
    with options_as_flags():
        assert not_signed() == "not signed, and --trust asks that every image be signed by a certificate under its root"
    out, dest = tmp_path / "out", tmp_path / "dest"
    render_on_cpu(write_shotlist(SHOTS), out, engine_factory)
    assert verify_folder(out).failed == 0  # without --trust an unsigned take is checked against its sidecar only
    result = verify_folder(out, studio_ca.root)
    assert result.exit_code == 6 and result.as_dict()["counts"] == {"checked": 2, "failed": 2, "signed": 0,
                                                                    "folder_problems": 0}
    assert {c.image["path"]: c.problems for c in result.images}["street/street_t1.png"] == [
        NOT_SIGNED]
    idcli.deliver(out, dest, credentials=None)
    assert verify_folder(dest).failed == 0
    assert {c.image["path"]: c.problems for c in verify_folder(dest, studio_ca.root).images}["street_take1.png"] == [
        NOT_SIGNED]


def test_verify_fails_a_carried_manifest_it_cannot_check_even_when_the_sidecar_says_unsigned(
        write_shotlist, tmp_path, engine_factory, signing_env, monkeypatch) -> None:
    # On a machine without c2pa-python, a signed image whose sidecar lost its c2pa block (the block is a run fact,
    # not compared with the image's record) passed `verify --trust ROOT`: nothing had been checked against the root.
    # A manifest the image carries is checked or the image fails, as the sidecar's word `signed` already was and as
    # `verify DEST` does.
    import idcli.signing
    from idcli.signing import EXTRA_HINT

    out = tmp_path / "out"
    render_on_cpu(write_shotlist(SHOTS), out, engine_factory, sign=True)
    _edit(out / "street" / "street_t1.json", lambda s: s.pop("c2pa"))
    assert verify_folder(out, signing_env.root).failed == 0  # checked by the C2PA reader: trusted
    monkeypatch.setattr(idcli.signing, "available", lambda: False)
    for trust in (signing_env.root, None):
        problems = {c.image["path"]: c.problems for c in verify_folder(out, trust).images}
        assert problems["street/street_t1.png"] == [f"signed, but its C2PA manifest cannot be checked here: "
                                                    f"{EXTRA_HINT}"]


@pytest.mark.parametrize("same", [True, False], ids=["same-nesting", "one-leaf-differs"])
def test_verify_of_a_deeply_nested_record_reports_not_crashes(same, tmp_path) -> None:
    # A hostile pair, an image whose idcli chunk and its sidecar both hold a list nested 600 deep (each reads as
    # JSON): the sidecar-against-record comparison recursed once per level and verify ended in an internal error
    # (exit 70, RecursionError). It walks without recursion: equal records pass, a differing leaf is named.
    import hashlib
    import io

    from PIL import Image, PngImagePlugin

    def nested(leaf: int) -> list:
        value: list = [leaf]
        for _ in range(600):
            value = [value]
        return value

    record: dict[str, Any] = {"job_key": "idcli-job-v2:abc", "shot_id": "s", "take": 1, "x": nested(1),
              "image": {"path": "s/s_t1.png", "width": 64, "height": 64}}
    info = PngImagePlugin.PngInfo()
    info.add_itxt("idcli", json.dumps(record))
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buffer, format="PNG", pnginfo=info)
    out = tmp_path / "out"
    (out / "s").mkdir(parents=True)
    (out / "s" / "s_t1.png").write_bytes(buffer.getvalue())
    sidecar = {**record, "x": nested(1 if same else 2),
               "image": {**record["image"], "sha256": hashlib.sha256(buffer.getvalue()).hexdigest()}}
    (out / "s" / "s_t1.json").write_text(json.dumps(sidecar), "utf-8")
    problems = verify_folder(out).images[0].problems
    if same:
        assert problems == []
    else:
        assert len(problems) == 1 and problems[0].startswith("its sidecar says x[0][0][0]"), problems
        assert problems[0].endswith("2, the image's own record (its idcli chunk) 1: edited after the render?")
