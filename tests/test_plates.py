"""Plates (issue 12): the shot fields, the hardened plate reader, face detection at plan time, and the
pixel arithmetic of idcli/engine/plates.py (crop, masks, latent blending, exact composite)."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from idcli.cli import app
from idcli.engine import plates as P
from idcli.errors import ShotListError
from idcli.plate_files import MAX_PLATE_SIDE, PlateError, read_plate
from idcli.shotlist import loads_shotlist

ROOT = Path(__file__).resolve().parents[1]
RECIPE_PLATE = ROOT / "recipes" / "plates" / "two_people.png"
runner = CliRunner()


# -- pixel arithmetic --------------------------------------------------------------------------------


def _random_plate(width: int, height: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)


def _composite(plate: np.ndarray, face_boxes: list[P.Box], working: int = 64, seed: int = 1):
    rng = np.random.default_rng(seed)
    size = (plate.shape[1], plate.shape[0])
    faces, masks = [], []
    for face_box in face_boxes:
        box = P.crop_box(face_box, size)
        mask = P.face_mask(face_box, box, size)
        crop = P.crop_pixels(plate, box, working)
        assert crop.shape == (working, working, 3)
        new_face = rng.integers(0, 256, crop.shape, dtype=np.uint8)  # stands in for the decoded face
        faces.append((new_face, mask, box))
        masks.append((mask, box))
    return P.composite(plate, faces), P.plate_mask(size, masks)


@pytest.mark.parametrize(("size", "channels", "boxes"), [
    ((760, 420), 3, [(100, 200, 140, 180)]),  # one face
    ((760, 420), 3, [(92, 204, 146, 186), (509, 216, 154, 174)]),  # two faces
    ((300, 200), 3, [(0, 150, 60, 50)]),  # touching the left and bottom edges
    ((101, 77), 3, [(30, 20, 30, 30)]),  # sides not multiples of 8
    ((200, 150), 4, [(60, 40, 50, 60)]),  # RGBA
])
def test_every_pixel_outside_the_masks_is_the_plates_own(size: tuple[int, int], channels: int,
                                                         boxes: list[P.Box]) -> None:
    plate = _random_plate(*size, channels)
    out, union = _composite(plate, boxes)
    assert out.shape == plate.shape and out.dtype == np.uint8
    outside = union == 0
    assert np.array_equal(out[outside], plate[outside])
    if channels == 4:
        assert np.array_equal(out[:, :, 3], plate[:, :, 3])  # alpha untouched everywhere
    if boxes[0][0] == 0:  # a face touching the plate's edge is re-generated up to the edge
        assert union[boxes[0][1] + boxes[0][3] // 2, 0] == 1.0
    inside = union > 0.5
    assert inside.any() and not np.array_equal(out[inside][:, :3], plate[inside][:, :3])


def test_crop_box_is_square_inside_the_plate_and_holds_the_face() -> None:
    for face_box, size in [((100, 200, 140, 180), (760, 420)), ((0, 0, 40, 30), (300, 200)),
                           ((260, 170, 40, 30), (300, 200)), ((10, 10, 180, 180), (200, 190))]:
        x0, y0, w, h = P.crop_box(face_box, size)
        assert w == h and x0 >= 0 and y0 >= 0 and x0 + w <= size[0] and y0 + h <= size[1]
        fx, fy, fw, fh = face_box
        if w >= max(fw, fh) * (1 + 2 * P.CROP_MARGIN):  # not shrunk by a small plate: the face fits
            assert x0 <= fx and y0 <= fy and fx + fw <= x0 + w and fy + fh <= y0 + h
    # A face at the edge keeps its full context on the inner side (the square slides, it does not shrink).
    assert P.crop_box((0, 0, 40, 30), (300, 200)) == (0, 0, 80, 80)


def test_face_mask_is_one_on_the_face_and_zero_at_the_crop_border() -> None:
    face_box = (100, 150, 140, 130)
    box = P.crop_box(face_box, (760, 420))
    assert box[1] > 0 and box[1] + box[3] < 420  # a crop inside the plate on every side
    mask = P.face_mask(face_box, box, (760, 420))
    side = box[2]
    assert mask.shape == (side, side)
    assert mask[0].max() == mask[-1].max() == mask[:, 0].max() == mask[:, -1].max() == 0.0
    cy, cx = face_box[1] + face_box[3] // 2 - box[1], face_box[0] + face_box[2] // 2 - box[0]
    assert mask[cy, cx] == 1.0
    assert 0.0 < mask.mean() < 1.0


def test_latent_mask_covers_every_pixel_that_may_change() -> None:
    face_box = (30, 20, 30, 30)
    box = P.crop_box(face_box, (101, 77))
    mask = P.resize_mask(P.face_mask(face_box, box), 64)
    latent = P.latent_mask(mask, 8).numpy()[0, 0]
    assert latent.shape == (8, 8)
    covered = np.kron(latent, np.ones((8, 8)))
    assert (covered[mask > 0] == 1).all() and latent.min() == 0.0


def test_blend_keeps_the_known_region_on_the_noised_plate_latents() -> None:
    import torch
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler()
    scheduler.set_timesteps(10)
    generator = torch.Generator().manual_seed(0)
    z0, noise, z_t = (torch.randn(1, 4, 8, 8, generator=generator) for _ in range(3))
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 2:6, 2:6] = 1
    t = scheduler.timesteps[3]
    out = P.blend_known(z_t, mask, z0, noise, t, scheduler.add_noise)
    known = scheduler.add_noise(z0, noise, t.reshape(1))
    assert torch.equal(out[..., 2:6, 2:6], z_t[..., 2:6, 2:6])
    assert torch.equal(out[..., 0, :], known[..., 0, :])
    assert torch.equal(P.blend_known(z_t, mask, z0, noise, None, scheduler.add_noise)[..., 0, :], z0[..., 0, :])


def test_start_index_counts_like_img2img() -> None:
    assert P.start_index(30, P.DEFAULT_STRENGTH) == 12
    assert P.start_index(30, 1.0) == 0
    assert P.start_index(4, 0.01) == 3  # any strength runs at least one step
    with pytest.raises(ValueError):
        P.start_index(30, 1.5)


# -- reading plates ----------------------------------------------------------------------------------


def test_recipe_plate_has_two_faces_the_synthetic_pack_detects(synthetic_face_models: Path) -> None:
    from idcli.identity.faces import FaceAnalyzer, resolve_face_models
    from idcli.plates import detect_plate_faces

    plate = read_plate(RECIPE_PLATE)
    models = resolve_face_models(str(synthetic_face_models))
    calls = []

    def analyzer():
        calls.append(1)
        return FaceAnalyzer(models)

    boxes = detect_plate_faces(plate, analyzer, models.hash)
    assert len(boxes) == 2 and boxes[0][0] < boxes[1][0] < plate.size[0]
    assert detect_plate_faces(plate, analyzer, models.hash) == boxes  # cached by content and models
    assert calls == [1]


def test_a_jpeg_plate_is_read_upright_per_exif(tmp_path: Path) -> None:
    image = Image.fromarray(_random_plate(120, 80))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif.tobytes(), quality=95)
    plate = read_plate(path)
    assert plate.size == (80, 120) and plate.pixels.shape == (120, 80, 3)


def test_an_rgba_plate_keeps_its_alpha(tmp_path: Path) -> None:
    path = tmp_path / "rgba.png"
    pixels = _random_plate(90, 70, 4)
    Image.fromarray(pixels, "RGBA").save(path)
    plate = read_plate(path)
    assert np.array_equal(plate.pixels, pixels)


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_a_plate_with_a_transparent_colour_keeps_its_transparency(tmp_path: Path, mode: str) -> None:
    """An RGB or greyscale PNG whose tRNS chunk names one colour transparent (what some compositors write for
    a keyed background) was read as opaque: the finished image lost the plate's transparent areas."""
    path = tmp_path / "keyed.png"
    pixels = _random_plate(90, 70)
    pixels[:10, :10] = (0, 255, 0)  # the keyed colour; no other pixel has it
    pixels[10:, :][np.all(pixels[10:, :] == (0, 255, 0), axis=2)] = (0, 254, 0)
    image = Image.fromarray(pixels).convert(mode)
    key = (0, 255, 0) if mode == "RGB" else int(np.asarray(image)[0, 0])
    image.save(path, transparency=key)
    plate = read_plate(path)
    assert plate.pixels.shape == (70, 90, 4)
    stored = np.asarray(image).reshape(70, 90, -1)
    keyed = np.all(stored == np.asarray(key).reshape(-1), axis=2)
    assert keyed[:10, :10].all()
    assert np.array_equal(plate.pixels[:, :, 3], np.where(keyed, 0, 255))
    assert np.array_equal(plate.pixels[:, :, :3], np.asarray(image.convert("RGB")))


def bad_plate(kind: str, tmp_path: Path) -> Path:
    path = tmp_path / "plate.png"
    good = io.BytesIO()
    Image.fromarray(_random_plate(96, 96)).save(good, "PNG")
    if kind == "missing":
        return path
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "not-an-image":
        path.write_text("hello, I am text")
    elif kind == "truncated":
        path.write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    elif kind == "bomb":
        buffer = io.BytesIO()
        Image.new("1", (9000, 9000)).save(buffer, "PNG")  # 81 MP, a few kilobytes
        path.write_bytes(buffer.getvalue())
    elif kind == "too-wide":
        Image.new("RGB", (MAX_PLATE_SIDE + 8, 64)).save(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "link-to-dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "link-loop":
        path.symlink_to(path)
    return path


BAD_PLATES = ["missing", "empty", "not-an-image", "truncated", "bomb", "too-wide", "folder", "fifo",
              "link-to-dev-zero", "link-loop"]


@pytest.mark.parametrize("kind", BAD_PLATES)
def test_a_bad_plate_is_refused_by_the_reader(kind: str, tmp_path: Path) -> None:
    path = bad_plate(kind, tmp_path)
    with pytest.raises(PlateError) as caught:
        read_plate(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("kind", BAD_PLATES)
def test_a_bad_plate_is_exit_2_at_the_shots_line(kind: str, tmp_path: Path, write_shotlist) -> None:
    bad_plate(kind, tmp_path)
    shots = write_shotlist(PLATE_SHOTS.replace("PLATE", "plate.png"))
    result = runner.invoke(app, ["validate", str(shots)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"{shots}:9:" in result.output and "plate.png" in result.output and "shots[0].plate" in result.output


# -- shot fields, validation and plan ----------------------------------------------------------------

PLATE_SHOTS = """\
version: 1
project: plates
characters:
  mara: {selfies: [selfies/mara_1.jpg]}
  theo: {selfies: [selfies/theo_1.jpg]}
shots:
  - id: window
    prompt: "{mara} and {theo} before a window, film still"
    plate: PLATE
    expression: happy
"""


def _with_plate(tmp_path: Path, text: str, plate: Path = RECIPE_PLATE) -> str:
    shutil.copy(plate, tmp_path / "plate.png")
    return text.replace("PLATE", "plate.png")


def test_plate_fields_are_checked_at_their_line(tmp_path: Path, selfies: Path) -> None:
    text = _with_plate(tmp_path, PLATE_SHOTS) + """\
    plate_faces: [0, 0, [1, 2, 3, 4]]
  - {id: plain, prompt: "{mara} on a pier", plate_strength: 0.5}
"""
    with pytest.raises(ShotListError) as caught:
        loads_shotlist(text, tmp_path)
    messages = caught.value.render()
    assert ":11:" in messages and "3 plate faces given for 2 characters" in messages
    assert "the same plate face is given twice" in messages
    assert "shots[0].plate_faces[2]" in messages and "at least 8 pixels" in messages
    assert ":12:" in messages and "plate_strength is given but the shot has no plate" in messages


def test_plate_strength_must_be_a_fraction(tmp_path: Path, selfies: Path) -> None:
    with pytest.raises(ShotListError) as caught:
        loads_shotlist(_with_plate(tmp_path, PLATE_SHOTS) + "    plate_strength: 1.5\n", tmp_path)
    assert "shots[0].plate_strength" in caught.value.render()


def test_a_valid_plate_shot_validates_and_plans_as_plate_jobs(tmp_path: Path, selfies: Path) -> None:
    path = tmp_path / "shots.yaml"
    path.write_text(_with_plate(tmp_path, PLATE_SHOTS))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["plan", str(path), "--device", "cpu", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "760x420 plate" in result.output and "plate window: plate.png (760x420" in result.output
    assert "mara at [" in result.output and "theo at [" in result.output
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").rglob("*.png"))


def test_too_few_faces_are_reported_with_where_they_were_found(tmp_path: Path, selfies: Path) -> None:
    # Only the left half of the recipe plate: one face for two characters.
    half = tmp_path / "half.png"
    Image.open(RECIPE_PLATE).crop((0, 0, 380, 420)).save(half)
    path = tmp_path / "shots.yaml"
    path.write_text(PLATE_SHOTS.replace("PLATE", "half.png"))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "too few faces in the plate: 1 found (#0 at [" in result.output and f"{path}:9:" in result.output


def test_a_misspelt_plate_is_suggested_as_it_would_be_written(tmp_path: Path, selfies: Path) -> None:
    (tmp_path / "plates").mkdir()
    shutil.copy(RECIPE_PLATE, tmp_path / "plates" / "two_people.png")
    path = tmp_path / "shots.yaml"
    path.write_text(PLATE_SHOTS.replace("PLATE", "plates/two_peple.png"))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    # The suggestion keeps the folder: 'two_people.png' alone does not exist beside the shot list.
    assert "did you mean 'plates/two_people.png'?" in result.output, result.output


def test_an_index_or_box_beyond_the_plate_is_exit_2(tmp_path: Path, selfies: Path) -> None:
    path = tmp_path / "shots.yaml"
    path.write_text(_with_plate(tmp_path, PLATE_SHOTS) + "    plate_faces: [5, [700, 400, 100, 100]]\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "plate face 5 does not exist: 2 found" in result.output


def test_a_box_outside_the_plate_is_exit_2(tmp_path: Path, selfies: Path) -> None:
    path = tmp_path / "shots.yaml"
    path.write_text(_with_plate(tmp_path, PLATE_SHOTS) + "    plate_faces: [1, [700, 400, 100, 100]]\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "box [700, 400, 100, 100] is outside the 760x420 plate" in result.output
    assert "shots[0].plate_faces[1]" in result.output and f"{path}:11:" in result.output


def test_editing_the_plate_file_detects_its_faces_again(tmp_path: Path, synthetic_face_models: Path) -> None:
    from idcli.identity.faces import FaceAnalyzer, resolve_face_models
    from idcli.plates import detect_plate_faces

    models = resolve_face_models(str(synthetic_face_models))
    calls = []

    def analyzer():
        calls.append(1)
        return FaceAnalyzer(models)

    path = tmp_path / "plate.png"
    shutil.copy(RECIPE_PLATE, path)
    assert len(detect_plate_faces(read_plate(path), analyzer, models.hash)) == 2
    Image.open(RECIPE_PLATE).crop((0, 0, 380, 420)).save(path)  # the plate is edited: one face left
    assert len(detect_plate_faces(read_plate(path), analyzer, models.hash)) == 1
    assert calls == [1, 1]


@pytest.mark.parametrize("kind", ["recipe", "exif-jpeg", "rgba-odd-size"])
def test_a_real_vae_round_trip_of_the_face_crops_leaves_the_rest_of_the_plate_exact(
        kind: str, tmp_path: Path, tiny_engines, synthetic_face_models: Path) -> None:
    """The VAE round trip changes every pixel it touches; the composite puts back every one outside the masks."""
    import torch

    from idcli.identity.faces import FaceAnalyzer, resolve_face_models
    from idcli.plates import detect_plate_faces

    source = Image.open(RECIPE_PLATE)
    path = tmp_path / "plate.png"
    if kind == "recipe":
        shutil.copy(RECIPE_PLATE, path)
    elif kind == "exif-jpeg":
        path = tmp_path / "plate.jpg"
        exif = Image.Exif()
        exif[0x0112] = 8  # stored rotated: 90° counter-clockwise to view
        source.transpose(Image.Transpose.ROTATE_270).save(path, exif=exif.tobytes(), quality=95)
    else:
        rgba = source.crop((3, 5, 757, 418)).convert("RGBA")  # 754x413: no side a multiple of 8
        rgba.putalpha(200)
        rgba.save(path)
    plate = read_plate(path)
    assert plate.size == ((754, 413) if kind == "rgba-odd-size" else (760, 420))  # upright per EXIF
    models = resolve_face_models(str(synthetic_face_models))
    boxes = detect_plate_faces(plate, lambda: FaceAnalyzer(models), models.hash)
    assert len(boxes) == 2
    vae = tiny_engines("tiny-sd").pipe.vae
    working = 64
    faces, masks = [], []
    for face_box in boxes:
        box = P.crop_box(face_box, plate.size)
        crop = P.crop_pixels(plate.pixels, box, working)
        x = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 127.5 - 1
        with torch.no_grad():
            z0 = vae.encode(x).latent_dist.mean
            decoded = vae.decode(z0).sample
        face = ((decoded[0].permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().byte().numpy()
        mask = P.resize_mask(P.face_mask(face_box, box, plate.size), box[2])
        faces.append((face, mask, box))
        masks.append((mask, box))
    out = P.composite(plate.pixels, faces)
    union = P.plate_mask(plate.size, masks)
    assert out.shape == plate.pixels.shape
    assert np.array_equal(out[union == 0], plate.pixels[union == 0])
    assert not np.array_equal(out[union > 0.5], plate.pixels[union > 0.5])  # the random VAE changed the faces


def test_plate_key_material_names_the_plate_the_boxes_and_the_strength(tmp_path: Path, selfies: Path) -> None:
    from idcli.hashing import tagged_hash
    from idcli.plates import PlateFace, PlateShot, plate_key_material, plate_record

    plate = read_plate(RECIPE_PLATE)
    shot = PlateShot(plate, (PlateFace("mara", (93, 204, 145, 187), True), PlateFace("theo", (509, 216, 154, 174),
                                                                                         True)), 0.6)
    material = plate_key_material(shot)
    assert material["plate"]["sha256"] == plate.sha256 and material["plate"]["size"] == [760, 420]
    assert material["plate"]["faces"][0]["crop_box"] == list(P.crop_box((93, 204, 145, 187), plate.size))

    def key(s: PlateShot) -> str:
        return tagged_hash("test", plate_key_material(s))

    edited = P.composite(plate.pixels, [])
    edited[0, 0, 0] ^= 1
    other_plate = type(plate)(plate.path, "0" * 64, edited)
    moved = PlateShot(plate, (PlateFace("mara", (94, 204, 145, 187), True), shot.faces[1]), 0.6)
    keys = {key(shot), key(PlateShot(other_plate, shot.faces, 0.6)), key(moved), key(PlateShot(plate, shot.faces, 0.7))}
    assert len(keys) == 4
    record = plate_record(shot, "plates/two_people.png", {"mara": {"label": "happy"}})
    assert record["path"] == "plates/two_people.png" and record["size"] == [760, 420]
    assert [f["character"] for f in record["faces"]] == ["mara", "theo"]
    assert record["faces"][0]["expression"] == {"label": "happy"} and record["faces"][1]["expression"] is None
    assert all(f["strength"] == 0.6 and len(f["crop_box"]) == 4 for f in record["faces"])


def test_a_box_with_a_negative_corner_is_one_problem_at_the_coordinate(tmp_path: Path, selfies: Path) -> None:
    # pydantic tries both members of "index or box": the index member's tag ('constrained-int') and its
    # "should be a valid integer" are noise beside the box member's deeper error at the coordinate itself.
    with pytest.raises(ShotListError) as caught:
        loads_shotlist(_with_plate(tmp_path, PLATE_SHOTS) + "    plate_faces: [0, [-10, 0, 100, 100]]\n", tmp_path)
    messages = caught.value.render()
    assert "constrained-int" not in messages and "valid integer" not in messages, messages
    assert ("shots[0].plate_faces[1][0]: box [-10, 0, 100, 100] is outside the plate: its left edge x = -10 is left "
            "of 0") in messages, messages  # the edge named, as past the right or bottom edge (test_plate_messages.py)
    assert messages.count("is outside the plate") == 1, messages


def test_a_16_bit_greyscale_plate_keeps_its_tones(tmp_path: Path) -> None:
    # A plate is returned pixel for pixel: a 16-bit grey plate maps to 8 bits by value / 257, not stretched to
    # its own brightest pixel (the selfie reader's contrast stretch would brighten a dark plate's whole frame).
    grey = np.full((80, 96), 20000, dtype=np.uint16)
    grey[:, :48] = 30000
    path = tmp_path / "plate16.png"
    Image.fromarray(grey).save(path)
    assert Image.open(path).mode.startswith("I;16")
    pixels = read_plate(path).pixels
    assert pixels.shape == (80, 96, 3)
    assert pixels[0, 0].tolist() == [117, 117, 117] and pixels[0, -1].tolist() == [78, 78, 78]


def test_a_16_bit_rgb_plate_is_read_by_its_high_byte_as_the_docs_say(tmp_path: Path) -> None:
    # Pillow has no 16-bit RGB mode: it decodes such a PNG to 8 bits by each sample's high byte, one step below
    # the grey plate's rounding at most (0x12FF: 18, where / 257 gives 19). docs/plates.md says so; a Pillow that
    # changed it would change plates' tones, so this pins what the docs promise.
    import struct
    import zlib

    width, height = 64, 64  # a plate's smallest side
    rows = b"".join(b"\x00" + struct.pack(">" + "H" * 3 * width, *([0x12FF, 0x8000, 0xFFFF] * width))
                    for _ in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    path = tmp_path / "plate16rgb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    with Image.open(path) as image:
        assert image.mode == "RGB"  # already 8 bits a channel as Pillow opens it
    assert read_plate(path).pixels[0, 0].tolist() == [0x12, 0x80, 0xFF]


def test_validate_does_not_say_single_drops_identities_in_a_plate_shot(tmp_path: Path, selfies: Path) -> None:
    # In a plate shot every face takes its own character's identity whatever 'method' says (plan warns that
    # method does not apply); validate's note that only the first character is recognisable would be false.
    path = tmp_path / "shots.yaml"
    path.write_text(_with_plate(tmp_path, PLATE_SHOTS) + "    method: single\n"
                    "  - {id: text, prompt: \"{mara} and {theo} on a pier\", method: single}\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.count("conditions one identity per image") == 1, result.output
    assert "shots[1].prompt" in result.output


@pytest.mark.parametrize("other_problem", [
    '  - {id: other, prompt: "{mara} on a pier", expressions: {theo: joy}}\n',  # a check after the types
    '  - {id: other, prompt: "{mara} on a pier", steps: many}\n',               # a type error
])
def test_validate_lists_a_plates_problem_beside_another_shots_problem(
        tmp_path: Path, selfies: Path, other_problem: str) -> None:
    # README: `validate` lists every problem at once. The plate's own problem (too many faces) was left
    # out whenever another shot had a problem, and came only once that was fixed.
    path = tmp_path / "shots.yaml"
    path.write_text(_with_plate(tmp_path, PLATE_SHOTS).replace("{mara} and {theo}", "{mara}") + other_problem)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path}:11:" in result.output, result.output  # the other shot's problem
    assert "too many faces in the plate: 2 found" in result.output and f"{path}:9:" in result.output
    assert result.output.index(":9:") < result.output.index(":11:")  # in the file's order
    # plan and render list the same problems (they stopped at the first pass too), and render writes nothing.
    for command in (["plan", str(path), "--out", str(tmp_path / "out")],
                    ["render", str(path), "--out", str(tmp_path / "out")]):
        again = runner.invoke(app, command)
        assert again.exit_code == 2, again.output
        assert "too many faces in the plate: 2 found" in again.output and f"{path}:11:" in again.output
    assert not (tmp_path / "out").exists()


def _crowd_plate(tmp_path: Path, names: str, boxes: str) -> str:
    """A shot list whose one plate shot names each of ``names`` (one character a letter), faces given as ``boxes``."""
    cast = "".join(f"  {n}: {{selfies: [selfies/mara_1.jpg]}}\n" for n in names)
    return _with_plate(tmp_path, f"""\
version: 1
project: crowd
characters:
{cast}shots:
  - id: crowd
    prompt: "{', '.join('{' + n + '}' for n in names)} in a crowd"
    plate: PLATE
    plate_faces: [{boxes}]
""")


def test_a_plate_with_seven_faces_is_not_held_to_the_dual_line_limit(tmp_path: Path, selfies: Path) -> None:
    # The 6-character limit is dual-line's (one 77-token prompt's attention, a UNet row per character);
    # a plate face is its own crop. A crowd plate was refused with 'use method: single', which then drew
    # the warning that method does not apply to a plate shot.
    names = "abcdefg"
    boxes = ", ".join(f"[{10 + 100 * i}, 10, 40, 40]" for i in range(len(names)))
    text = _crowd_plate(tmp_path, names, boxes)
    assert len(loads_shotlist(text, tmp_path).shotlist.shots) == 1
    # A dual-line shot naming seven is still refused.
    with pytest.raises(ShotListError, match="names 7 characters; a dual-line shot may name at most 6"):
        loads_shotlist(text.replace("    plate: plate.png\n", "").replace("    plate_faces:", "    # "), tmp_path)


def test_a_crowd_plate_chooses_a_face_for_each_of_more_than_eight_characters(tmp_path: Path, selfies: Path) -> None:
    # A plate shot may name more characters than a dual-line shot (docs/plates.md), and plate_faces takes one
    # entry per character named; the list was capped at 8, so a crowd plate of 12 could not choose its faces
    # (its small faces, which the detector misses, given as boxes) and was refused with "at most 8 items".
    names = "abcdefghijkl"
    boxes = ", ".join(f"[{10 + 100 * (i % 6)}, {10 + 100 * (i // 6)}, 40, 40]" for i in range(len(names)))
    text = _crowd_plate(tmp_path, names, boxes)
    loaded = loads_shotlist(text, tmp_path)
    assert loaded.shotlist.shots[0].plate_faces is not None and len(loaded.shotlist.shots[0].plate_faces) == 12


def test_a_character_named_twice_in_a_plate_shot_is_said_to_take_one_face(tmp_path: Path, selfies: Path) -> None:
    # '{mara} looks at {mara} in a mirror' with a face for each mention said "2 plate faces given for 1
    # characters named in the prompt": neither why one, nor in English.
    text = _with_plate(tmp_path, PLATE_SHOTS).replace("{mara} and {theo}", "{mara} looks at {mara}")
    with pytest.raises(ShotListError) as caught:
        loads_shotlist(text + "    plate_faces: [0, 1]\n", tmp_path)
    message = caught.value.render()
    assert "2 plate faces given for 1 character named in the prompt" in message, message
    assert "'mara' is named twice and takes one face" in message, message
    with pytest.raises(ShotListError, match="1 plate face given for 2 characters named"):
        loads_shotlist(_with_plate(tmp_path, PLATE_SHOTS) + "    plate_faces: [0]\n", tmp_path)
