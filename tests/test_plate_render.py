"""Plate shots from plan to committed image (issue 12, docs/plates.md): plate jobs in the plan (request,
key, listing), the sidecar's ``plate`` block, and renders on the tiny preset, CPU float32 (every pixel
outside the recorded feathered face masks is the plate's own, identity only in the face, batch
invariance, mixing with text-to-image jobs, edits, kill -9 then resume, bad plates through render)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import plan_on_cpu
from PIL import Image
from typer.testing import CliRunner

import idcli
from idcli.cli import app
from idcli.engine import plates as P

pytest.importorskip("insightface", exc_type=ImportError)

ROOT = Path(__file__).resolve().parents[1]
RECIPE_PLATE = ROOT / "recipes" / "plates" / "two_people.png"
runner = CliRunner()

# Two plate shots sharing one plate, one text-to-image shot and one dual-line shot: small and fast.
SHOTS = """\
version: 1
project: plate-test
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 4, guidance: 4.0, sampler: ddim, takes: 1}
characters:
  mara: {selfies: [selfies/mara_1.jpg], description: a red-haired woman}
  theo: {selfies: [selfies/theo_1.jpg], description: a young man}
shots:
  - id: both
    prompt: "{mara} and {theo} before a window"
    plate: plate.png
    expressions: {mara: joy, theo: {label: surprise, intensity: 0.7}}
  - id: swapped
    prompt: "{theo} and {mara} before a window"
    plate: plate.png
    plate_faces: [0, 1]
    plate_strength: 0.8
  - id: street
    prompt: "an empty wet street at night"
  - id: bar
    prompt: "{mara} talks to {theo} in a bar"
"""


@pytest.fixture
def shots(write_shotlist, tmp_path: Path) -> Path:
    shutil.copy(RECIPE_PLATE, tmp_path / "plate.png")
    return write_shotlist(SHOTS)


def _job(plan, shot_id: str):
    return next(j for j in plan.jobs if j.shot_id == shot_id)


# -- the plan: requests, keys, listing (no pixels) -----------------------------------------------------


def test_a_plate_shot_plans_a_plate_request_as_the_engine_expects(shots: Path) -> None:
    plan = plan_on_cpu(shots)
    job = _job(plan, "both")
    r = job.request
    assert r.method == "plate" and r.width == r.height == 64  # the working side: the shot's shorter side
    assert r.plate is not None and r.plate.size == (760, 420) and r.plate.pixels.dtype == np.uint8
    assert r.plate.strength == P.DEFAULT_STRENGTH
    assert [f.character for f in r.plate.faces] == ["mara", "theo"]  # detected faces left to right
    assert r.plate.faces[0].box[0] < r.plate.faces[1].box[0]
    for face in r.plate.faces:
        assert face.crop_box == P.crop_box(face.box, r.plate.size)
    # One identity line per face, in face order, each with its own expression in its prompt.
    assert [line.name for line in r.lines] == ["mara", "theo"]
    assert "red-haired woman" in r.lines[0].prompt and "young man" in r.lines[1].prompt
    assert r.lines[0].prompt != r.lines[1].prompt and r.semantic_prompt == r.prompt
    assert r.fusion is not None and r.identity_embedding is not None
    # Faces chosen explicitly: theo takes the left face.
    swapped = _job(plan, "swapped").request
    assert [f.character for f in swapped.plate.faces] == ["theo", "mara"]
    assert swapped.plate.faces[0].box == r.plate.faces[0].box and swapped.plate.strength == 0.8
    # The plate is in the batch signature: plate crops batch only with crops of the same start step.
    assert r.batch_signature()[-2:] == ("plate", P.start_index(r.steps, r.plate.strength))
    assert _job(plan, "street").request.plate is None and _job(plan, "street").plate is None


def test_a_plate_job_key_is_the_text_to_image_key_plus_the_plate(shots: Path, write_shotlist) -> None:
    from idcli.hashing import tagged_hash
    from idcli.job_keys import key_material
    from idcli.versions import JOB_KEY_TAG

    plan = plan_on_cpu(shots)
    job = _job(plan, "both")
    material = dict(job.key_material)
    plate = material.pop("plate")
    assert plate["sha256"] == job.request.plate.sha256 and plate["size"] == [760, 420]
    assert [f["box"] for f in plate["faces"]] == [list(f.box) for f in job.request.plate.faces]
    assert plate["strength"] == P.DEFAULT_STRENGTH
    identities = {i.name: i for i in job.identities}
    from idcli.shot_prompts import character_expression, shot_expression

    shot = idcli.load_shotlist(shots).shotlist.shots[0]
    expected = key_material(plan.model, job.request, identities["mara"], plan.adapter, shot_expression(shot),
                            cast=[(identities[n], character_expression(shot, n)) for n in ("mara", "theo")])
    assert material == expected and job.key == tagged_hash(JOB_KEY_TAG, job.key_material)
    # Text-to-image keys do not change because a shot list has plates in it.
    without = write_shotlist(SHOTS.split("  - id: both")[0] + "  - id: street" + SHOTS.split("  - id: street")[1],
                             "no_plates.yaml")
    plain = plan_on_cpu(without)
    for shot_id in ("street", "bar"):
        assert _job(plain, shot_id).key == _job(plan, shot_id).key


def test_dual_line_only_parameters_do_not_re_render_plate_shots(shots: Path) -> None:
    # A plate face's fusion mask is its face mask: the attention window and mask shaping do not touch it.
    before = plan_on_cpu(shots)
    text = shots.read_text()
    shots.write_text(text.replace("defaults: {size: 64x64,", "defaults: {method_params: {fusion_start: 0.5, "
                                  "mask_threshold: 0.2, mask_exclusivity: 2.0}, size: 64x64,"))
    after = plan_on_cpu(shots)
    assert _job(after, "both").key == _job(before, "both").key
    assert _job(after, "bar").key != _job(before, "bar").key  # dual-line: they change its pixels
    assert _job(after, "both").key_material["method"]["params"] == {"aggregation": "mean"}
    shots.write_text(text.replace("defaults: {size: 64x64,", "defaults: {method_params: {aggregation: prepend}, "
                                  "size: 64x64,"))
    assert _job(plan_on_cpu(shots), "both").key != _job(before, "both").key  # aggregation does


def test_a_plate_used_by_several_shots_is_read_once(shots: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import idcli.plates as plates

    reads: list[Path] = []
    real = plates.read_plate

    def counting(path: Path):
        reads.append(path)
        return real(path)

    monkeypatch.setattr(plates, "read_plate", counting)
    plan = plan_on_cpu(shots)
    assert len(reads) == 1 and sum(1 for j in plan.jobs if j.plate is not None) == 2
    # And the pixels are one array, shared by both requests (not copied per job).
    assert _job(plan, "both").request.plate.pixels is _job(plan, "swapped").request.plate.pixels


def test_plan_lists_plate_jobs_with_their_plate_and_faces(shots: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["plan", str(shots), "--device", "cpu", "--out", str(tmp_path / "o"), "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["shot_id"]: row for row in json.loads(result.stdout)["jobs"]}
    plate = rows["both"]["plate"]
    assert rows["both"]["method"] == "plate" and rows["street"]["plate"] is None
    assert plate["path"] == "plate.png" and plate["size"] == {"width": 760, "height": 420}
    assert plate["working_size"] == 64 and plate["strength"] == P.DEFAULT_STRENGTH
    assert [f["character"] for f in plate["faces"]] == ["mara", "theo"]
    assert all(len(f["box"]) == 4 and len(f["crop_box"]) == 4 and f["detected"] for f in plate["faces"])
    assert rows["swapped"]["plate"]["strength"] == 0.8
    table = runner.invoke(app, ["plan", str(shots), "--device", "cpu", "--out", str(tmp_path / "o")])
    assert table.exit_code == 0, table.output
    assert "760x420 plate" in table.output
    assert "plate both: plate.png (760x420, faces worked at 64px, strength 0.6): mara at [" in table.output
    assert "plate swapped: plate.png" in table.output and "theo at [" in table.output


@pytest.mark.parametrize(("old", "new", "line", "field"), [
    ("description: a young man}", "description: a young man, identity_strength: 0}", 11, "plate"),
    ("    plate: plate.png\n", "    plate: plate.png\n    identity_strength: 0\n", 12, "identity_strength"),
])
def test_a_plate_face_without_an_identity_is_exit_2_at_its_line(write_shotlist, tmp_path: Path, old: str, new: str,
                                                                 line: int, field: str) -> None:
    shutil.copy(RECIPE_PLATE, tmp_path / "plate.png")
    text = SHOTS.split("  - id: swapped")[0].replace(old, new, 1)
    path = write_shotlist(text)
    for command in (["validate", str(path)], ["render", str(path), "--device", "cpu", "--out", str(tmp_path / "o")]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        assert f"{path}:{line}:" in result.output and f"shots[0].{field}" in result.output
        assert "identity" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").rglob("*.png"))


def test_editing_the_plate_changes_exactly_the_keys_of_the_shots_using_it(shots: Path, tmp_path: Path) -> None:
    before = {j.shot_id: j.key for j in plan_on_cpu(shots).jobs}
    with Image.open(tmp_path / "plate.png") as image:
        edited = image.copy()
    edited.putpixel((0, 0), (1, 2, 3))  # one pixel, far from the faces: still two faces, other bytes
    edited.save(tmp_path / "plate.png")
    after = {j.shot_id: j.key for j in plan_on_cpu(shots).jobs}
    assert {s for s in before if before[s] != after[s]} == {"both", "swapped"}


def test_the_sidecar_record_of_a_plate_job_has_its_plate_block_and_size(shots: Path) -> None:
    """The record and PNG of a plate job, assembled from an engine result as the contract gives it."""
    from idcli.engine import RenderResult
    from idcli.executors.output import encode_result
    from idcli.provenance import add_plate_facts, complete_sidecar, read_png_record, record_of_sidecar

    plan = plan_on_cpu(shots)
    job = _job(plan, "both")
    plate = job.request.plate
    union = P.plate_mask(plate.size, [(P.face_mask(f.box, f.crop_box, plate.size), f.crop_box) for f in plate.faces])
    facts = {"plate": {"faces": [{"character": f.character, "box": list(f.box), "crop_box": list(f.crop_box),
                                  "mask_coverage": 0.25} for f in plate.faces], "start_step": 2, "strength": 0.6},
             "plate_mask": union}
    result = RenderResult(plate.pixels.astype(np.float32) / 255.0, facts)
    encoded = encode_result(job, result, plan.model, "cpu", None, "plate-test")
    record = encoded.record
    assert record["size"] == {"width": 760, "height": 420}
    assert (record["image"]["width"], record["image"]["height"]) == (760, 420)
    block = record["plate"]
    assert block["path"] == "plate.png" and block["sha256"] == plate.sha256 and block["size"] == [760, 420]
    assert block["working_size"] == 64 and block["start_step"] == P.start_index(4, 0.6)
    assert [f["character"] for f in block["faces"]] == ["mara", "theo"]
    assert block["faces"][0]["expression"]["label"] == "joy"
    assert block["faces"][1]["expression"]["label"] == "surprise"
    assert all(f["strength"] == 0.6 and f["detected"] for f in block["faces"])
    import io

    with Image.open(io.BytesIO(encoded.png)) as image:
        assert image.size == (760, 420) and np.array_equal(np.asarray(image), plate.pixels)
    assert read_png_record(encoded.png) == record
    # The engine's facts land in the sidecar, not in the record the PNG carries.
    sidecar = complete_sidecar(record, "0" * 64, batch_index=0, batch_size=1, started=None, finished=None)
    assert encoded.plate is not None and encoded.mask_png is not None  # a plate job's facts and face masks
    add_plate_facts(sidecar, encoded.plate)
    assert [f["mask_coverage"] for f in sidecar["plate"]["faces"]] == [0.25, 0.25]
    sidecar["plate"]["mask"] = job.mask_relpath
    assert record_of_sidecar(sidecar) == json.loads(json.dumps(record))
    # --save-masks: the face masks over the plate, at the plate's size.
    with Image.open(io.BytesIO(encoded.mask_png)) as mask:
        assert mask.size == (760, 420)
        overlay = np.asarray(mask.convert("RGB")).astype(int)
    face = plate.faces[0].box
    cy, cx = face[1] + face[3] // 2, face[0] + face[2] // 2
    assert overlay[cy, cx, 0] > plate.pixels[cy, cx, 0]  # tinted red where the mask is 1
    assert np.array_equal(overlay[5, 380], plate.pixels[5, 380])  # untouched far from the faces


# -- renders (tiny preset, CPU float32) ----------------------------------------------------------------


def _union_from_sidecar(sidecar: dict) -> np.ndarray:
    """The union of a plate image's feathered face masks, recomputed from its sidecar's recorded boxes."""
    block = sidecar["plate"]
    size = tuple(block["size"])
    return P.plate_mask(size, [(P.face_mask(tuple(f["box"]), tuple(f["crop_box"]), size), tuple(f["crop_box"]))
                               for f in block["faces"]])


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image).copy()


def _sidecars(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text("utf-8")) for p in sorted(out.glob("*/*.json"))}


def test_the_recipe_renders_offline_at_the_plates_size(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["render", str(ROOT / "recipes" / "plates.yaml"), "--out", str(out), "--device",
                                 "cpu", "--save-masks", "--quiet"])
    assert result.exit_code == 0, result.output
    plate = _pixels(RECIPE_PLATE)
    sidecars = _sidecars(out)
    assert len(sidecars) == 2
    for stem, sidecar in sidecars.items():
        image = _pixels(out / sidecar["image"]["path"])
        assert image.shape == plate.shape == (420, 760, 3), stem
        union = _union_from_sidecar(sidecar)
        assert np.array_equal(image[union == 0], plate[union == 0]), stem
        assert not np.array_equal(image[union > 0.5], plate[union > 0.5]), stem
        assert sidecar["plate"]["path"] == "plates/two_people.png" and sidecar["method"]["name"] == "plate"
        assert [f["expression"] is not None for f in sidecar["plate"]["faces"]] == [True, True]
        assert all(0 < f["mask_coverage"] <= 1 for f in sidecar["plate"]["faces"])
        # --save-masks: the face masks over the image, at the plate's size, named in the sidecar.
        assert sidecar["plate"]["mask"] == f"{sidecar['shot_id']}/{stem}.mask.png"
        assert _pixels(out / sidecar["plate"]["mask"]).shape[:2] == (420, 760)


ONE_SHOT = """\
version: 1
project: plate-pixels
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 4, guidance: 4.0, sampler: ddim}
characters:
  mara: {selfies: [selfies/mara_1.jpg], description: a red-haired woman}
  theo: {selfies: [selfies/theo_1.jpg], description: a young man}
shots:
  - id: shot
    prompt: "PROMPT"
    plate: PLATE
    expression: joy
"""


def _plate_file(kind: str, tmp_path: Path) -> tuple[str, str, str]:
    """(plate file name, prompt, plate_faces line) for each kind of plate the exactness must hold on."""
    source = Image.open(RECIPE_PLATE)
    if kind == "two-faces":
        shutil.copy(RECIPE_PLATE, tmp_path / "plate.png")
        return "plate.png", "{mara} and {theo} before a window", ""
    if kind == "one-face":
        source.crop((0, 0, 380, 420)).save(tmp_path / "plate.png")  # the left half: one face
        return "plate.png", "{mara} before a window", ""
    if kind == "edge-face":
        # A box touching the left and bottom edges: re-generated up to the edge.
        shutil.copy(RECIPE_PLATE, tmp_path / "plate.png")
        return "plate.png", "{mara} before a window", "    plate_faces: [[0, 300, 100, 120]]\n"
    if kind == "odd-size":
        source.crop((3, 5, 757, 418)).save(tmp_path / "plate.png")  # 754x413
        return "plate.png", "{mara} and {theo} before a window", ""
    if kind == "rgba":
        rgba = source.crop((3, 5, 757, 418)).convert("RGBA")
        alpha = np.full((413, 754), 200, np.uint8)
        alpha[:120] = np.linspace(0, 255, 754).astype(np.uint8)  # above the faces: every level of alpha
        rgba.putalpha(Image.fromarray(alpha))
        rgba.save(tmp_path / "plate.png")
        return "plate.png", "{mara} and {theo} before a window", ""
    assert kind == "exif-jpeg"
    exif = Image.Exif()
    exif[0x0112] = 8  # stored rotated: 90° counter-clockwise to view
    source.transpose(Image.Transpose.ROTATE_270).save(tmp_path / "plate.jpg", exif=exif.tobytes(), quality=95)
    return "plate.jpg", "{mara} and {theo} before a window", ""


@pytest.mark.parametrize("kind", ["one-face", "two-faces", "edge-face", "odd-size", "rgba", "exif-jpeg"])
def test_every_pixel_outside_the_recorded_masks_is_the_plates_own(kind: str, write_shotlist, tmp_path: Path,
                                                                   engine_factory) -> None:
    from idcli.plate_files import read_plate

    name, prompt, faces = _plate_file(kind, tmp_path)
    path = write_shotlist(ONE_SHOT.replace("PLATE", name).replace("PROMPT", prompt) + faces)
    out = tmp_path / "out"
    report = idcli.render(idcli.load_shotlist(path), out, device="cpu", engine_factory=engine_factory)
    assert (report.rendered, report.failed) == (1, 0)
    plate = read_plate(tmp_path / name).pixels  # upright per EXIF, RGBA kept
    (sidecar,) = _sidecars(out).values()
    image = _pixels(out / sidecar["image"]["path"])
    assert image.shape == plate.shape, kind
    assert (sidecar["image"]["width"], sidecar["image"]["height"]) == (plate.shape[1], plate.shape[0])
    union = _union_from_sidecar(sidecar)
    assert np.array_equal(image[union == 0], plate[union == 0]), kind
    assert not np.array_equal(image[union > 0.5][:, :3], plate[union > 0.5][:, :3]), kind
    if kind == "rgba":
        assert np.array_equal(image[:, :, 3], plate[:, :, 3])  # the plate's alpha, everywhere
    if kind == "edge-face":
        assert union[360, 0] == 1.0  # re-generated up to the plate's edge


def test_changing_a_characters_selfies_changes_pixels_in_its_face_only(write_shotlist, tmp_path: Path,
                                                                       engine_factory) -> None:
    shutil.copy(RECIPE_PLATE, tmp_path / "plate.png")
    text = ONE_SHOT.replace("PLATE", "plate.png").replace("PROMPT", "{mara} and {theo} before a window")
    images = []
    for n, selfie in enumerate(["mara_1.jpg", "ines_1.jpg"]):
        path = write_shotlist(text.replace("selfies/mara_1.jpg", f"selfies/{selfie}"), f"shots{n}.yaml")
        out = tmp_path / f"out{n}"
        report = idcli.render(idcli.load_shotlist(path), out, device="cpu", engine_factory=engine_factory)
        assert report.rendered == 1
        (sidecar,) = _sidecars(out).values()
        images.append(_pixels(out / sidecar["image"]["path"]))
    faces = sidecar["plate"]["faces"]
    size = tuple(sidecar["plate"]["size"])
    mara = P.plate_mask(size, [(P.face_mask(tuple(faces[0]["box"]), tuple(faces[0]["crop_box"]), size),
                                tuple(faces[0]["crop_box"]))])
    changed = (images[0] != images[1]).any(axis=2)
    assert changed.any() and (mara[changed] > 0).all()  # mara's face changed, and nothing outside it


def test_batch_composition_does_not_change_a_plate_image(shots: Path, tmp_path: Path, engine_factory) -> None:
    """Batch size 1 and 4 (plate crops of several jobs and shots in one forward): the same image, to the
    project's CPU batch guarantee (docs/architecture.md, "Batch composition": float results agree within
    1e-5, so 8-bit rounding may flip a rare value by one level, and only inside the face masks); the
    sidecars record the batch, so a reproduction renders the same jobs together, byte for byte."""
    text = shots.read_text().replace("takes: 1", "takes: 3")
    shots.write_text(text)
    one = idcli.render(idcli.load_shotlist(shots), tmp_path / "b1", device="cpu", engine_factory=engine_factory,
                       batch_size=1)
    four = idcli.render(idcli.load_shotlist(shots), tmp_path / "b4", device="cpu", engine_factory=engine_factory,
                        batch_size=4)
    assert one.failed == four.failed == 0 and one.rendered == four.rendered == 12
    assert max(four.batch_sizes) > 1
    plate_jobs = 0
    for a, b in zip(one.jobs, four.jobs, strict=True):
        record = json.loads(Path(a.sidecar).read_text("utf-8"))
        if record.get("plate") is None:
            continue
        plate_jobs += 1
        pa, pb = _pixels(Path(a.image)).astype(int), _pixels(Path(b.image)).astype(int)
        # One level in a few values (a batch shape's rounding, docs/architecture.md): 0.013 % of them on an Intel
        # Xeon's AVX-512 kernels, fewer on the AMD EPYC this bound was first set on.
        assert np.abs(pa - pb).max() <= 1 and (pa != pb).mean() < 0.001, a.shot_id
        union = _union_from_sidecar(record)
        assert np.array_equal(pa[union == 0], pb[union == 0])  # outside the faces: the plate, exactly
    assert plate_jobs == 6


def test_plate_jobs_mix_with_text_to_image_jobs(shots: Path, tmp_path: Path, engine_factory) -> None:
    report = idcli.render(idcli.load_shotlist(shots), tmp_path / "out", device="cpu", engine_factory=engine_factory,
                          batch_size=4)
    assert (report.rendered, report.failed) == (4, 0)
    sizes = {o.shot_id: Image.open(o.image).size for o in report.jobs}
    assert sizes == {"both": (760, 420), "swapped": (760, 420), "street": (64, 64), "bar": (64, 64)}
    methods = {s["shot_id"]: s["method"]["name"] for s in _sidecars(tmp_path / "out").values()}
    assert methods == {"both": "plate", "swapped": "plate", "street": "text", "bar": "dual-line"}


def test_editing_the_plate_rerenders_exactly_the_shots_that_use_it(shots: Path, tmp_path: Path,
                                                                   engine_factory) -> None:
    out = tmp_path / "out"
    assert idcli.render(idcli.load_shotlist(shots), out, device="cpu", engine_factory=engine_factory).rendered == 4
    with Image.open(tmp_path / "plate.png") as image:
        edited = image.copy()
    edited.putpixel((0, 0), (1, 2, 3))
    edited.save(tmp_path / "plate.png")
    result = runner.invoke(app, ["plan", str(shots), "--device", "cpu", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    states = {row["shot_id"]: row["state"] for row in json.loads(result.stdout)["jobs"]}
    assert states == {"both": "stale", "swapped": "stale", "street": "done", "bar": "done"}
    again = idcli.render(idcli.load_shotlist(shots), out, device="cpu", engine_factory=engine_factory)
    assert {o.shot_id: o.status for o in again.jobs} == {"both": "rendered", "swapped": "rendered",
                                                          "street": "skipped", "bar": "skipped"}
    both = _pixels(out / "both" / "both_t1.png")
    assert tuple(both[0, 0]) == (1, 2, 3)  # the edited plate's own pixel


def test_a_plate_shot_edited_between_renders_is_said_to_render_again_for_that_edit(shots: Path, tmp_path: Path,
                                                                                  engine_factory) -> None:
    # Faces swapped, the strength or the working size changed: the note named no cause ("the shot's prompt or
    # settings, or ..."), though the sidecar's plate block records each face's character and box, the strength
    # and the working size.
    out = tmp_path / "out"
    idcli.render(idcli.load_shotlist(shots), out, device="cpu", engine_factory=engine_factory, only=["both", "swapped"])

    def causes(text: str) -> dict[str, str]:
        shots.write_text(text, "utf-8")
        result = runner.invoke(app, ["plan", str(shots), "--device", "cpu", "--out", str(out), "--json"])
        assert result.exit_code == 0, result.output
        return {row["shot_id"]: row["cause"] for row in json.loads(result.stdout)["jobs"] if row["state"] == "stale"}

    edited = SHOTS.replace("plate_faces: [0, 1]", "plate_faces: [1, 0]").replace(
        "plate: plate.png\n    expressions", "plate: plate.png\n    plate_strength: 0.5\n    expressions")
    assert causes(edited) == {"swapped": "plate faces changed", "both": "plate strength changed (0.6 -> 0.5)"}
    assert causes(SHOTS.replace("size: 64x64", "size: 96x96")) == {"both": "size changed", "swapped": "size changed"}


KILL_SHOTS = """\
version: 1
project: plate-kill
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 6, guidance: 4.0, sampler: dpmpp-2m, takes: 3}
characters:
  mara: {selfies: [selfies/mara_1.jpg], description: a red-haired woman}
  theo: {selfies: [selfies/theo_1.jpg], description: a young man}
shots:
  - id: p1
    prompt: "{mara} and {theo} before a window"
    plate: plate.png
  - id: p2
    prompt: "{theo} and {mara} before a window"
    plate: plate.png
    expression: grief
  - {id: t1, prompt: "a beach at dawn", takes: 1}
"""


def test_kill_9_during_a_plate_run_then_resume_equals_an_uninterrupted_run(write_shotlist, tmp_path: Path,
                                                                           engine_factory) -> None:
    """``idcli render`` killed with SIGKILL after its second commit, then run again: every image equals an
    uninterrupted run's (in this process, one thread and batch size 1 as the child runs), each committed once."""
    import signal

    from cli_helpers import assert_nothing_partial, journal_commits, spawn_render
    from test_cli import wait_for_sidecars

    shutil.copy(RECIPE_PLATE, tmp_path / "plate.png")
    path = write_shotlist(KILL_SHOTS)
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    proc = spawn_render(path, killed)
    wait_for_sidecars(killed, 2, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert_nothing_partial(killed, temporaries_allowed=True)
    final = spawn_render(path, killed, "--json", "--quiet")
    stdout, stderr = final.communicate(timeout=300)
    assert final.returncode == 0, stderr
    counts = json.loads(stdout)["counts"]
    assert counts["failed"] == 0 and counts["rendered"] < 7 and counts["skipped"] + counts["recovered"] >= 2
    report = idcli.render(idcli.load_shotlist(path), whole, device="cpu", engine_factory=engine_factory,
                          batch_size=1)
    assert report.rendered == 7
    assert_nothing_partial(killed, plan_on_cpu(path).jobs)
    assert max(journal_commits(killed).values()) == 1, "a job was committed twice"
    names = sorted(p.relative_to(whole) for p in whole.glob("*/*.png"))
    assert len(names) == 7 and names == sorted(p.relative_to(killed) for p in killed.glob("*/*.png"))
    for name in names:
        assert (killed / name).read_bytes() == (whole / name).read_bytes(), name


BAD_RENDER_CASES = ["missing", "empty", "not-an-image", "truncated", "bomb", "too-wide", "folder", "fifo",
                    "link-to-dev-zero", "link-loop"]


@pytest.mark.parametrize("kind", BAD_RENDER_CASES)
def test_a_bad_plate_stops_render_with_exit_2_and_renders_nothing(kind: str, write_shotlist, tmp_path: Path) -> None:
    from test_plates import bad_plate

    bad_plate(kind, tmp_path)
    path = write_shotlist(SHOTS)  # with a text-to-image shot too: nothing renders, not even that
    out = tmp_path / "out"
    result = runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"{path}:11:" in result.output and "plate.png" in result.output and "shots[0].plate" in result.output
    assert not out.exists() or not any(out.rglob("*.png"))


def test_a_box_outside_the_plate_stops_render_with_exit_2(shots: Path, tmp_path: Path) -> None:
    shots.write_text(shots.read_text().replace("plate_faces: [0, 1]", "plate_faces: [0, [700, 400, 100, 100]]"))
    out = tmp_path / "out"
    result = runner.invoke(app, ["render", str(shots), "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 2, result.output
    assert "box [700, 400, 100, 100] is outside the 760x420 plate" in result.output
    assert "Traceback" not in result.output and (not out.exists() or not any(out.rglob("*.png")))


def test_a_face_box_wider_than_the_plates_short_side_is_said_in_the_plan(shots: Path) -> None:
    # The crop is a square inside the 760x420 plate: a 500-px-wide box cannot fit in it.
    shots.write_text(shots.read_text().replace("plate_faces: [0, 1]", "plate_faces: [0, [200, 10, 500, 300]]"))
    plan = plan_on_cpu(shots)
    said = [w for w in plan.warnings if "does not fit" in w]
    # At the shot list's line of the box (plate_faces[1], line 16), as validate's notes are said.
    assert said == [f"{shots}:16:22: shots[1].plate_faces[1]: the face box [200, 10, 500, 300] of 'mara' does not "
                    "fit in its 420x420 crop (the plate's shorter side); only the part inside the crop is "
                    "re-generated"]
    # Faces that fit are not warned about.
    assert not any("'theo'" in w and "does not fit" in w for w in plan.warnings)


def _said_by_plan_and_validate(shots: Path, about: str, expected: str) -> None:
    """plan warns ``expected`` (its only warning ``about`` that) and validate notes it, exit 0."""
    assert [w for w in plan_on_cpu(shots).warnings if about in w] == [expected]
    result = runner.invoke(app, ["validate", str(shots)])
    assert result.exit_code == 0, result.output
    assert [line for line in result.output.splitlines() if about in line] == [f"idcli: note: {expected}"], \
        result.output


def test_method_single_on_a_plate_shot_is_said_at_its_line_by_validate_plan_and_render(shots: Path,
                                                                                         tmp_path: Path) -> None:
    # plan and render warned "shot swapped: method 'single' does not apply to a plate shot" with no file or line,
    # and validate said nothing of it: one function decides, each says it at the method's line (line 18).
    shots.write_text(shots.read_text().replace("    plate_strength: 0.8\n",
                                               "    plate_strength: 0.8\n    method: single\n"))
    expected = (f"{shots}:18:13: shots[1].method: method 'single' does not apply to a plate shot (each face takes "
                "its character's identity line inside its face mask; remove 'method')")
    _said_by_plan_and_validate(shots, "method 'single'", expected)
    result = runner.invoke(app, ["render", str(shots), "--out", str(tmp_path / "out"), "--device", "cpu",
                                 "--only", "swapped"])
    assert result.exit_code == 0, result.output
    assert f"idcli: warning: {expected}" in result.output, result.output
    # 'method: dual-line' is what a plate shot does anyway: nothing said.
    shots.write_text(shots.read_text().replace("method: single", "method: dual-line"))
    assert not [w for w in plan_on_cpu(shots).warnings if "does not apply" in w]


def test_every_sampler_can_start_a_plate_face_part_way(shots: Path, tmp_path: Path) -> None:
    # The engine begins every sampler part-way (midpoint at a grid level): a plate shot may choose any.
    shots.write_text(shots.read_text().replace("    plate_strength: 0.8\n", "    plate_strength: 0.8\n"
                                               "    sampler: midpoint\n"))
    result = runner.invoke(app, ["validate", str(shots)])
    assert result.exit_code == 0, result.output


def test_reproduce_re_renders_a_plate_image_from_its_plate_checked_by_sha256(write_shotlist, tmp_path: Path,
                                                                              engine_factory) -> None:
    from idcli.reproduce import reproduce

    name, prompt, _faces = _plate_file("rgba", tmp_path)  # RGBA: the alpha comes back from the plate file too
    path = write_shotlist(ONE_SHOT.replace("PLATE", name).replace("PROMPT", prompt))
    out = tmp_path / "out"
    assert idcli.render(idcli.load_shotlist(path), out, device="cpu", engine_factory=engine_factory).rendered == 1
    image = out / "shot" / "shot_t1.png"
    report = reproduce(image, device="cpu", engine_factory=engine_factory)
    assert report.status == "identical", report
    # The plate edited since: exit 2 with both hashes; gone: exit 2 saying where it was looked for.
    recorded = json.loads((out / "shot" / "shot_t1.json").read_text("utf-8"))["plate"]["sha256"]
    with Image.open(tmp_path / name) as plate:
        edited = plate.copy()
    edited.putpixel((0, 0), (1, 2, 3, 4))
    edited.save(tmp_path / name)
    result = runner.invoke(app, ["reproduce", str(image), "--device", "cpu"])
    assert result.exit_code == 2, result.output
    assert "changed since the render" in result.output and recorded in result.output
    assert "Traceback" not in result.output
    (tmp_path / name).unlink()
    result = runner.invoke(app, ["reproduce", str(image), "--device", "cpu"])
    assert result.exit_code == 2, result.output
    assert f"plate '{name}' is missing" in result.output and "Traceback" not in result.output


def test_reproduce_takes_the_plate_candidate_with_the_recorded_sha256(tmp_path: Path, monkeypatch) -> None:
    # The project was moved (say from the studio to a laptop) and the plate at the old absolute path has
    # been edited since: the plate beside here, with the recorded sha256, is the one the image was made from.
    from idcli.plate_files import read_plate
    from idcli.reproduce import ReproduceError, recorded_plate

    (tmp_path / "old" / "plates").mkdir(parents=True)
    (tmp_path / "new" / "plates").mkdir(parents=True)
    original = Image.new("RGB", (96, 80), (90, 100, 110))
    original.save(tmp_path / "new" / "plates" / "p.png")
    edited = original.copy()
    edited.putpixel((0, 0), (1, 2, 3))
    edited.save(tmp_path / "old" / "plates" / "p.png")
    sha256 = read_plate(tmp_path / "new" / "plates" / "p.png").sha256
    record = {"plate": {"path": "plates/p.png", "abs_path": str(tmp_path / "old" / "plates" / "p.png"),
                        "sha256": sha256, "faces": [{"character": "mara", "box": [30, 20, 20, 20],
                                                     "crop_box": [20, 10, 40, 40], "strength": 0.6}]}}
    monkeypatch.chdir(tmp_path / "new")
    assert recorded_plate(record, None).sha256 == sha256
    (tmp_path / "new" / "plates" / "p.png").unlink()  # only the edited one left: both hashes, once each
    with pytest.raises(ReproduceError, match="changed since the render") as caught:
        recorded_plate(record, None)
    assert sha256 in str(caught.value)


def test_save_masks_on_a_done_folder_says_why_no_mask_was_written(shots: Path, tmp_path: Path) -> None:
    # A user who rendered without --save-masks and asks for the masks afterwards got nothing and no word:
    # done jobs are skipped, not rendered again for their masks.
    out = tmp_path / "out"
    command = ["render", str(shots), "--out", str(out), "--device", "cpu", "--only", "both"]
    assert runner.invoke(app, command).exit_code == 0
    result = runner.invoke(app, [*command, "--save-masks"])
    assert result.exit_code == 0, result.output
    assert not list(out.rglob("*.mask.png"))
    assert "--save-masks" in result.output and "1 done image" in result.output, result.output
    assert "--force --only SHOT" in result.output


def test_save_masks_again_does_not_count_done_images_that_have_their_mask(shots: Path, tmp_path: Path) -> None:
    # The same --save-masks command run twice said every done image "got none" and to render it again with --force,
    # though each has the mask the first run wrote beside it: work the note asked to redo for nothing.
    out = tmp_path / "out"
    command = ["render", str(shots), "--out", str(out), "--device", "cpu", "--only", "both"]
    assert runner.invoke(app, [*command, "--save-masks"]).exit_code == 0
    assert (out / "both" / "both_t1.mask.png").is_file()
    again = runner.invoke(app, [*command, "--save-masks"])
    assert again.exit_code == 0, again.output
    assert "1 skipped" in again.output and "--save-masks" not in again.output, again.output
    # With one done image that has its mask and one that has none, only the one without is counted.
    assert runner.invoke(app, ["render", str(shots), "--out", str(out), "--device", "cpu", "--only", "street"]
                         ).exit_code == 0
    mixed = runner.invoke(app, ["render", str(shots), "--out", str(out), "--device", "cpu", "--only", "both",
                                "--only", "street", "--save-masks"])
    assert mixed.exit_code == 0, mixed.output
    assert "1 done image(s) were skipped and got none" in mixed.output, mixed.output


def test_faces_whose_masks_overlap_are_said_in_the_plan(shots: Path) -> None:
    # docs/plates.md says it: where two feathered masks overlap, the later face's blend is laid over the
    # earlier face. Boxes next to each other (the recipe's faces) are not warned about.
    assert not [w for w in plan_on_cpu(shots).warnings if "overlap" in w]
    shots.write_text(shots.read_text().replace("plate_faces: [0, 1]", "plate_faces: [0, [150, 210, 100, 150]]"))
    said = [w for w in plan_on_cpu(shots).warnings if "overlap" in w]
    # At the line of the face laid over the other (plate_faces[1], line 16).
    assert said == [f"{shots}:16:22: shots[1].plate_faces[1]: the face masks of 'theo' [93, 204, 145, 187] and "
                    "'mara' [150, 210, 100, 150] overlap; where they do, the face of 'mara' is laid over that of "
                    "'theo' (keep the boxes apart, or give one box holding both faces to one character)"]


@pytest.mark.parametrize("field", ["box", "crop_box"])
def test_reproduce_refuses_a_plate_face_box_without_four_numbers(write_shotlist, tmp_path: Path, engine_factory,
                                                                 field: str) -> None:
    # A face box is x, y, w, h: a record holding three numbers (edited by hand) was taken as complete, and the
    # re-render stopped on the box deep in the engine instead of naming the record's plate block.
    name, prompt, _faces = _plate_file("one-face", tmp_path)
    path = write_shotlist(ONE_SHOT.replace("PLATE", name).replace("PROMPT", prompt))
    out = tmp_path / "out"
    assert idcli.render(idcli.load_shotlist(path), out, device="cpu", engine_factory=engine_factory).rendered == 1
    sidecar = out / "shot" / "shot_t1.json"
    record = json.loads(sidecar.read_text("utf-8"))
    record["plate"]["faces"][0][field] = record["plate"]["faces"][0][field][:3]
    sidecar.write_text(json.dumps(record), "utf-8")
    result = runner.invoke(app, ["reproduce", str(sidecar), "--device", "cpu"])
    assert result.exit_code == 2, result.output
    assert "plate block is incomplete" in result.output and "Traceback" not in result.output


def test_a_detected_face_past_the_plates_edge_is_not_said_not_to_fit(shots: Path, tmp_path: Path) -> None:
    # A person cut by the frame's left edge: the face models give a box reaching past the edge (x < 0). Its
    # crop (a square of twice the face, slid inside the plate) holds every part of it that is in the plate,
    # and the mask reaches the plate's edge (docs/plates.md, "Mask"), so the plan must not say it does not fit.
    with Image.open(RECIPE_PLATE) as plate:
        shifted = Image.new("RGB", plate.size, plate.getpixel((0, 0)))
        shifted.paste(plate, (-100, 0))
    shifted.save(tmp_path / "plate.png")
    plan = plan_on_cpu(shots)
    box = _job(plan, "both").request.plate.faces[0].box
    assert box[0] < 0, box  # the detected box does reach past the edge
    assert not [w for w in plan.warnings if "does not fit" in w], plan.warnings


def test_defaults_method_single_applying_to_plate_shots_is_said_at_the_defaults_line(shots: Path) -> None:
    # Only a plate shot's own 'method' was said: 'defaults: {method: single}' applying to the plate shots was
    # neither noted by validate nor warned by plan. Now both say it at the defaults' method, naming those shots.
    shots.write_text(shots.read_text().replace("takes: 1}", "takes: 1, method: single}"))
    expected = (f"{shots}:4:83: defaults.method: the defaults' method 'single' does not apply to the plate shots "
                "'both', 'swapped' (each face takes its character's identity line inside its face mask; the other "
                "shots still take it)")
    _said_by_plan_and_validate(shots, "defaults' method", expected)
    # A plate shot with its own method is said at its own line, not in the defaults' list.
    shots.write_text(shots.read_text().replace("    plate_strength: 0.8\n",
                                               "    plate_strength: 0.8\n    method: dual-line\n"))
    said = [w for w in plan_on_cpu(shots).warnings if "defaults' method" in w]
    assert len(said) == 1 and "the plate shot 'both' (" in said[0], said
    # Many plate shots: a few named, then a count.
    many = "".join(f"  - id: p{n}\n    prompt: \"{{mara}} and {{theo}}\"\n    plate: plate.png\n" for n in range(6))
    shots.write_text(shots.read_text() + many)
    said = [w for w in plan_on_cpu(shots).warnings if "defaults' method" in w]
    assert len(said) == 1 and "the plate shots 'both', 'p0', 'p1' and 4 more (" in said[0], said
