"""What the provenance trial of 2026-12-02 found: idcli's images checked as someone outside the team checks them,
with c2pa-python's Reader, Pillow and sd-parsers, beside ``idcli verify`` and ``idcli reproduce``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from idcli.provenance import encode_png, reproducible_record
from idcli.signing import ASSERTION_LABEL, load_credentials, manifest_for, sign_with_manifest
from idcli.verify import verify_folder

c2pa = pytest.importorskip("c2pa")

SHOTS = """\
version: 1
project: provenance-trial
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 5.0, sampler: dpmpp-2m, takes: 1}
characters:
  mara: {selfies: [selfies/mara_1.jpg], description: a red-haired woman}
shots:
  - {id: street, prompt: "an empty street at night, rain", seeds: [42]}
  - {id: bar, prompt: "{mara} waits at a bar, medium shot", framing: medium, expression: hope}
"""


def _tiny_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (40, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_real_models_manifest_says_its_identities_came_from_random_weight_face_models(shared_plan,
                                                                                         studio_ca) -> None:
    # A real preset given the synthetic face pack (the quickstart's `--face-models synthetic` kept after switching
    # presets, docs/identity.md) renders identities with no likeness: its sidecar says `random_face_models: true`, the
    # review page badges it "random weights: not for review" and `idcli deliver` lists it `random_weights: true`.
    # Its signed manifest, the one record an outsider's C2PA reader shows, said nothing of it: the model was real
    # (`random_weights: false`) and the identities' entries left the field out.
    plan = shared_plan(SHOTS)
    bar = next(j for j in plan.jobs if j.shot_id == "bar")
    record = reproducible_record(bar, plan.model, "cpu", {"source": "builtin"})
    assert record["identity"][0]["random_face_models"] is True  # the tiny preset's synthetic pack
    # As a real preset's record reads (docs/file-formats.md): a hub model, real weights, the synthetic face pack.
    record["model"].update(preset="sd15", source="hub", id="stable-diffusion-v1-5/stable-diffusion-v1-5",
                           revision="main", hash=None, random_weights=False)
    signed = sign_with_manifest(load_credentials(studio_ca.cert, studio_ca.key), _tiny_png(), manifest_for(record))

    with c2pa.Reader("image/png", io.BytesIO(signed)) as reader:  # what anyone's C2PA reader shows
        manifest = json.loads(reader.json())["manifests"][reader.get_active_manifest()["label"]]
    assertions = {a["label"]: a["data"] for a in manifest["assertions"]}
    assert assertions[ASSERTION_LABEL]["model"]["random_weights"] is False
    assert [i["random_face_models"] for i in assertions[ASSERTION_LABEL]["identities"]] == [True]
    created = next(a for a in assertions["c2pa.actions.v2"]["actions"] if a["action"] == "c2pa.created")
    assert created["description"] == (
        "rendered by idcli 0.1.0 with the model stable-diffusion-v1-5/stable-diffusion-v1-5; the identities of mara "
        "were made by random-weight test face models, so they carry no likeness")

    # Real face models: nothing added; a text-only shot has no identity to speak of.
    record["identity"][0]["random_face_models"] = False
    created = manifest_for(record)["assertions"][0]["data"]["actions"][0]
    assert created["description"] == ("rendered by idcli 0.1.0 with the model "
                                      "stable-diffusion-v1-5/stable-diffusion-v1-5")
    street = next(j for j in plan.jobs if j.shot_id == "street")
    text_only = manifest_for(reproducible_record(street, plan.model, "cpu", None))
    assert text_only["assertions"][0]["data"]["actions"][0]["description"] == (
        "rendered by idcli 0.1.0 with the model tiny-sd (random weights)")


def test_a_signature_checked_without_a_root_does_not_say_idcli_signed_the_image(shared_plan, tmp_path: Path) -> None:
    # Any certificate a CA issued validates (`Valid`), under whatever name its holder puts in it. Pixels idcli never
    # rendered, given a take's own record and signed by someone else's CA under the studio signer's very name, passed
    # alone in a folder of images saying "the image is as idcli signed it": what an outsider reads as the studio's
    # word. The note now says who signed it was not checked; under the root (`Trusted`) it is as before.
    from c2pa_helpers import make_test_ca

    plan = shared_plan(SHOTS)
    street = next(j for j in plan.jobs if j.shot_id == "street")
    record = reproducible_record(street, plan.model, "cpu", None)
    noise = np.random.default_rng(7).integers(0, 256, (64, 64, 3), dtype=np.uint8)  # not what idcli renders
    someone = make_test_ca(tmp_path / "someone", name="someone", signer_name="idcli test signer")
    png = encode_png(noise, street, plan.model, record)
    folder = tmp_path / "received"
    folder.mkdir()
    (folder / "frame_0001.png").write_bytes(
        sign_with_manifest(load_credentials(someone.cert, someone.key), png, manifest_for(record)))

    report = verify_folder(folder)
    [check] = report.images
    assert check.ok and report.exit_code == 0  # a good signature: what a C2PA reader calls Valid too
    assert check.notes == [
        "no sidecar beside it, so checked on its signature alone: its C2PA manifest is Valid, signed by 'idcli test "
        "signer' for its job: the image is as its signer signed it. No trust root was given, so who holds that "
        "certificate was not checked: any CA's certificate, under any name, validates"]
    trusted = verify_folder(folder, someone.root)
    assert trusted.images[0].notes == [
        "no sidecar beside it, so checked on its signature alone: its C2PA manifest is Trusted, signed by 'idcli test "
        "signer' for its job: the image is as idcli signed it"]


@pytest.mark.parametrize("made_by", ["model", "face models"])
def test_the_contact_sheet_marks_a_random_weight_take(made_by: str, tmp_path: Path) -> None:
    # The contact sheet is the review's one PNG for chat and e-mail (docs/review.md). The page, the printed boards and
    # the animatic mark a take random-weight test models made "random weights: not for review"; the sheet showed its
    # cell as any other, so a tiny preset's noise, or a real model's faces with no likeness, went out unmarked.
    from idcli.review.contact_sheet import SHEET_CELL, contact_sheet_png
    from idcli.review.runs import Run, Shot, Take, take_from_record

    thumbs = tmp_path / "review" / "thumbs"
    thumbs.mkdir(parents=True)
    Image.new("RGB", (256, 256), (128, 128, 128)).save(thumbs / "t.jpg")

    def sheet(random_weights: bool) -> Image.Image:
        take = Take("sh010", 1, "k", 1, "p", (), None, None, None, "sh010/sh010_t1.png", "sh010/sh010_t1.json", 256,
                    256, "0" * 64, None, random_weights=random_weights)
        png = contact_sheet_png(Run(tmp_path, [Shot("sh010", [take], None)], None), {take.image: "thumbs/t.jpg"})
        return Image.open(io.BytesIO(png)).convert("RGB")

    # What makes a take random weights is the review's reading of its sidecar (review/runs.py): a random-weight
    # model, or an identity encoded by the synthetic face pack.
    record = {"shot_id": "sh010", "take": 1, "job_key": "k", "image": {"path": "sh010/sh010_t1.png"},
              "sidecar": {"path": "sh010/sh010_t1.json"}, "model": {"random_weights": made_by == "model"},
              "identity": [{"conditions_image": True, "random_face_models": made_by == "face models"}]}
    assert take_from_record(record, tmp_path).random_weights

    pad = 8
    marked = np.asarray(sheet(True))[pad:pad + 20, pad:pad + SHEET_CELL].astype(int)
    plain = np.asarray(sheet(False))[pad:pad + 20, pad:pad + SHEET_CELL].astype(int)
    warn = np.array([255, 120, 90])
    assert (np.abs(plain - 128).max(axis=2) <= 3).all()  # the picture's top, as it is
    assert (np.abs(marked - warn).max(axis=2) <= 40).sum() > 50  # the mark's words, in the page's warning colour
    assert (marked.max(axis=2) == 0).sum() > 1000  # on a black band across the picture's top
