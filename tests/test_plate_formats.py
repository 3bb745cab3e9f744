"""Plates as a VFX pipeline hands them over (docs/plates.md, "Fields" and "Colour"; the plate trial of 2026-12-02):
a plate with an embedded RGB colour profile (Display P3, Adobe RGB) renders to a PNG carrying that profile, so the
image looks as the plate does; a 16-bit TIFF stored per channel, which Pillow decodes into noise, is refused rather
than rendered; and OpenEXR, DPX, Cineon and floating-point TIFF plates are said by name with how to export them,
not as "not an image Pillow can read (JPEG, PNG, WebP, TIFF ...)". Selfies share the reader, so the refusals hold
for them too."""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from colour_profiles import ADOBE_RGB, DISPLAY_P3, ONE_PLATE_SHOT
from PIL import Image
from typer.testing import CliRunner

import idcli
from idcli.cli import app
from idcli.identity.images import ImageError, load_rgb
from idcli.plate_files import PlateError, read_plate

ROOT = Path(__file__).resolve().parents[1]
RECIPE_PLATE = ROOT / "recipes" / "plates" / "two_people.png"
runner = CliRunner()


def _tiff(planes: list[np.ndarray], *, planar: bool, sample_format: int = 1, deflate: bool = False) -> bytes:
    """A little-endian, uncompressed RGB TIFF of ``planes`` (one 2-D array per channel, all one dtype), stored
    interleaved (``planar=False``) or per channel (PlanarConfiguration 2, Photoshop's "Per Channel" order);
    ``sample_format`` 1 unsigned integers, 3 floating point; ``deflate``: each strip zlib-compressed (Compression 8).
    Written out here: Pillow writes neither layout."""
    height, width = planes[0].shape
    bits = planes[0].dtype.itemsize * 8
    pixels = np.stack(planes, axis=2).astype(planes[0].dtype.newbyteorder("<"))
    strips = [plane.astype(pixels.dtype).tobytes() for plane in planes] if planar else [pixels.tobytes()]
    if deflate:
        strips = [zlib.compress(strip) for strip in strips]
    count = len(planes)
    entries = 11
    ifd_at = 8
    extra_at = ifd_at + 2 + 12 * entries + 4
    bits_at, format_at = extra_at, extra_at + 2 * count
    offsets_at, counts_at = format_at + 2 * count, format_at + 2 * count + 4 * len(strips)
    data_at = counts_at + 4 * len(strips)
    offsets, at = [], data_at
    for strip in strips:
        offsets.append(at)
        at += len(strip)

    def entry(tag: int, kind: int, n: int, value: int) -> bytes:  # kind 3 SHORT, 4 LONG
        inline = struct.pack("<H2x", value) if kind == 3 and n == 1 else struct.pack("<I", value)
        return struct.pack("<HHI", tag, kind, n) + inline

    many = len(strips) > 1
    ifd = b"".join([
        entry(256, 4, 1, width), entry(257, 4, 1, height), entry(258, 3, count, bits_at),
        entry(259, 3, 1, 8 if deflate else 1), entry(262, 3, 1, 2),
        entry(273, 4, len(strips), offsets_at if many else offsets[0]), entry(277, 3, 1, count),
        entry(278, 4, 1, height), entry(279, 4, len(strips), counts_at if many else len(strips[0])),
        entry(284, 3, 1, 2 if planar else 1), entry(339, 3, count, format_at)])
    extra = (struct.pack(f"<{count}H", *[bits] * count) + struct.pack(f"<{count}H", *[sample_format] * count)
             + struct.pack(f"<{len(strips)}I", *offsets) + struct.pack(f"<{len(strips)}I", *[len(s) for s in strips]))
    head = b"II*\0" + struct.pack("<I", ifd_at) + struct.pack("<H", entries)
    return head + ifd + b"\0\0\0\0" + extra + b"".join(strips)


def _recipe_rgb() -> np.ndarray:
    return np.asarray(Image.open(RECIPE_PLATE).convert("RGB"))


# -- 16-bit TIFFs stored per channel: Pillow decodes them into noise ---------------------------------------------


def test_a_16_bit_tiff_stored_per_channel_is_refused_not_read_as_noise(tmp_path: Path) -> None:
    """Pillow opens an uncompressed 16-bit RGB TIFF stored per channel (PlanarConfiguration 2) and reads each 16-bit
    sample as two 8-bit ones: a plate of noise, rendered without a word until 2026-12-02 (its faces not found, or,
    given as boxes, put into noise). Stored interleaved, the same pixels read as the docs say (each channel's high
    byte)."""
    rgb = _recipe_rgb()
    planes16 = [rgb[:, :, c].astype(np.uint16) * 257 for c in range(3)]
    (tmp_path / "interleaved.tif").write_bytes(_tiff(planes16, planar=False))
    assert np.array_equal(read_plate(tmp_path / "interleaved.tif").pixels, rgb)
    per_channel = tmp_path / "per_channel.tif"
    per_channel.write_bytes(_tiff(planes16, planar=True))
    with pytest.raises(PlateError) as caught:
        read_plate(per_channel)
    message = str(caught.value)
    assert message.startswith(f"{per_channel}: is a 16-bit TIFF stored per channel")
    assert "interleaved" in message and "PNG" in message
    with pytest.raises(ImageError, match="16-bit TIFF stored per channel"):  # a selfie: the same reader
        load_rgb(per_channel)
    # Compressed, Pillow reads it through libtiff, right: read as the interleaved file is.
    (tmp_path / "per_channel_deflate.tif").write_bytes(_tiff(planes16, planar=True, deflate=True))
    assert np.array_equal(read_plate(tmp_path / "per_channel_deflate.tif").pixels, rgb)
    # 8 bits per channel stored per channel is read right, and stays read.
    (tmp_path / "per_channel_8.tif").write_bytes(_tiff([rgb[:, :, c] for c in range(3)], planar=True))
    assert np.array_equal(read_plate(tmp_path / "per_channel_8.tif").pixels, rgb)


# -- formats of a VFX pipeline that Pillow cannot read: said by name -------------------------------------------------


@pytest.mark.parametrize(("name", "head", "said"), [
    ("plate.exr", b"\x76\x2f\x31\x01\x02\x00\x00\x00channels\0chlist\0", "is an OpenEXR image"),
    ("plate.dpx", b"SDPX" + b"\0" * 60, "is a DPX image"),
    ("plate_le.dpx", b"XPDS" + b"\0" * 60, "is a DPX image"),
    ("plate.cin", b"\x80\x2a\x5f\xd7" + b"\0" * 60, "is a Cineon image"),
])
def test_an_exr_dpx_or_cineon_plate_is_said_by_name(name: str, head: bytes, said: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(head + b"\0" * 4000)
    with pytest.raises(PlateError) as caught:
        read_plate(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {said}") and "idcli cannot read" in message
    assert "PNG" in message and "sRGB" in message  # what to export it as
    assert "not an image Pillow can read" not in message


@pytest.mark.parametrize(("dtype", "sample_format", "said"), [
    (np.float32, 3, "is a TIFF of 32-bit floating-point samples"),
    (np.float16, 3, "is a TIFF of 16-bit floating-point samples"),
    (np.uint32, 1, "is a TIFF of 32-bit integer samples"),
])
def test_a_tiff_pillow_cannot_read_says_what_its_samples_are(dtype, sample_format: int, said: str,
                                                             tmp_path: Path) -> None:
    """Until 2026-12-02 a float TIFF was 'not an image Pillow can read (JPEG, PNG, WebP, TIFF, BMP ...)', naming TIFF
    among what it reads."""
    rgb = _recipe_rgb()
    path = tmp_path / "plate.tif"
    path.write_bytes(_tiff([(rgb[:, :, c] / 255).astype(dtype) if sample_format == 3 else
                            rgb[:, :, c].astype(dtype) * 16843009 for c in range(3)], planar=False,
                           sample_format=sample_format))
    with pytest.raises(PlateError) as caught:
        read_plate(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {said}"), message
    assert "8- or 16-bit" in message and "not an image Pillow can read" not in message


def _bigtiff(width: int, height: int, bits: int, sample_format: int, endian: str) -> bytes:
    """A BigTIFF (version 43, 64-bit offsets: what libtiff, GDAL and tifffile write past 4 GB, or when asked) of one
    uncompressed RGB strip of zeros, ``bits`` a sample, in ``endian`` ('<' or '>') byte order, written out here."""
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, bits), (259, 3, 1, 1), (262, 3, 1, 2),
               (273, 16, 1, 0), (277, 3, 1, 3), (278, 4, 1, height), (279, 16, 1, width * height * 3 * bits // 8),
               (339, 3, 1, sample_format)]
    data_at = 16 + 8 + 20 * len(entries) + 8
    entries[5] = (273, 16, 1, data_at)
    kinds = {3: "H", 4: "I", 16: "Q"}
    ifd = b"".join(struct.pack(f"{endian}HHQ", tag, kind, n)
                   + struct.pack(f"{endian}{kinds[kind]}", value).ljust(8, b"\0") for tag, kind, n, value in entries)
    head = (b"II" if endian == "<" else b"MM") + struct.pack(f"{endian}HHHQ", 43, 8, 0, 16)
    return (head + struct.pack(f"{endian}Q", len(entries)) + ifd + struct.pack(f"{endian}Q", 0)
            + bytes(width * height * 3 * bits // 8))


def test_a_bigtiff_pillow_cannot_read_is_said_by_name_too(tmp_path: Path) -> None:
    """A BigTIFF begins 'II+' or 'MM\\0+', not 'II*'; until 2026-12-02 one of float samples was 'not an image Pillow
    can read (JPEG, PNG, WebP, TIFF, BMP ...)' while the same samples in a classic TIFF were said by name. Pillow 13
    reads a little-endian 8-bit BigTIFF, which stays read, and no big-endian BigTIFF at all (it takes the version
    from the wrong byte), which is said so."""
    path = tmp_path / "plate.tif"
    path.write_bytes(_bigtiff(96, 64, 32, 3, "<"))
    with pytest.raises(PlateError, match=r"is a TIFF of 32-bit floating-point samples, which Pillow cannot read"):
        read_plate(path)
    with pytest.raises(ImageError, match=r"is a TIFF of 32-bit floating-point samples"):  # a selfie: the same reader
        load_rgb(path)
    path.write_bytes(_bigtiff(96, 64, 8, 1, "<"))
    assert read_plate(path).size == (96, 64)
    for bits, sample_format in ((8, 1), (32, 3)):
        path.write_bytes(_bigtiff(96, 64, bits, sample_format, ">"))
        with pytest.raises(PlateError) as caught:
            read_plate(path)
        assert str(caught.value).startswith(f"{path}: is a big-endian BigTIFF, which Pillow cannot read; export it")


def test_a_plate_of_a_vfx_format_is_exit_2_at_its_line_with_its_name(tmp_path: Path, write_shotlist) -> None:
    (tmp_path / "plate.exr").write_bytes(b"\x76\x2f\x31\x01\x02\x00\x00\x00" + b"\0" * 4000)
    path = write_shotlist(ONE_PLATE_SHOT.replace("PLATE", "plate.exr"))
    result = runner.invoke(app, ["validate", str(path), "--face-models", "synthetic"])
    assert result.exit_code == 2
    assert "shots[0].plate: plate 'plate.exr' cannot be used: plate.exr: is an OpenEXR image" in result.output


# -- an embedded colour profile travels to the image -----------------------------------------------------------------



def test_a_plates_rgb_profile_is_read_with_it_and_other_profiles_are_not(tmp_path: Path) -> None:
    rgb = Image.open(RECIPE_PLATE).convert("RGB")
    rgb.save(tmp_path / "p3.png", icc_profile=DISPLAY_P3)
    rgb.save(tmp_path / "adobe.jpg", icc_profile=ADOBE_RGB, quality=95)
    rgb.save(tmp_path / "plain.png")
    assert read_plate(tmp_path / "p3.png").icc_profile == DISPLAY_P3
    assert read_plate(tmp_path / "adobe.jpg").icc_profile == ADOBE_RGB
    assert read_plate(tmp_path / "plain.png").icc_profile is None
    # A profile of another colour space (a CMYK JPEG's, a greyscale PNG's) describes pixels the reader converted to
    # RGB; given to an RGB image it would be wrong, so it is not kept.
    grey = DISPLAY_P3[:16] + b"GRAY" + DISPLAY_P3[20:]
    rgb.convert("L").save(tmp_path / "grey.png", icc_profile=grey)
    assert read_plate(tmp_path / "grey.png").icc_profile is None
    rgb.convert("CMYK").save(tmp_path / "cmyk.jpg", icc_profile=DISPLAY_P3[:16] + b"CMYK" + DISPLAY_P3[20:])
    assert read_plate(tmp_path / "cmyk.jpg").icc_profile is None


@pytest.mark.parametrize("profile", [DISPLAY_P3, ADOBE_RGB], ids=["display-p3", "adobe-rgb"])
def test_a_plate_with_a_colour_profile_renders_an_image_with_that_profile(profile: bytes, write_shotlist,
                                                                          tmp_path: Path, engine_factory) -> None:
    """The plate's pixel values are kept exactly outside the faces; until 2026-12-02 its profile was dropped, so the
    image showed those values as sRGB: the whole frame's colours shifted against the plate's (a saturated red of a
    Display P3 plate viewed 30 levels off in a channel). The PNG now carries the plate's profile (iCCP), as written."""
    source = Image.open(RECIPE_PLATE).convert("RGB")
    source.save(tmp_path / "plate.png", icc_profile=profile)
    shutil.copy(RECIPE_PLATE, tmp_path / "plain.png")
    text = ONE_PLATE_SHOT.replace("PLATE", "plate.png") + (
        '  - id: plain\n    prompt: "{mara} and {theo} before a window"\n    plate: plain.png\n')
    path = write_shotlist(text)
    out = tmp_path / "out"
    report = idcli.render(idcli.load_shotlist(path), out, device="cpu", engine_factory=engine_factory)
    assert (report.rendered, report.failed) == (2, 0)
    with Image.open(out / "shot" / "shot_t1.png") as image:
        assert image.info.get("icc_profile") == profile
        pixels = np.asarray(image)
    assert pixels[5, 5].tolist() == np.asarray(source)[5, 5].tolist()  # the values, as the file holds them
    with Image.open(out / "plain" / "plain_t1.png") as image:
        assert "icc_profile" not in image.info  # a plate without a profile: the image as before
    record = json.loads((out / "shot" / "shot_t1.json").read_text("utf-8"))
    assert record["plate"]["path"] == "plate.png"



def test_the_profile_is_written_again_by_reproduce_only_where_the_record_says_the_image_carried_it(
        write_shotlist, tmp_path: Path, engine_factory) -> None:
    """The sidecar's plate block records the profile the PNG carries (`icc_profile_sha256`), and `reproduce` writes it
    again only then: a take rendered before images carried the plate's profile (its record names none) re-rendered
    with it came out `pixels-identical` (exit 6), where before that day it was `identical` (found by running a take
    of 2026-12-01's code through `idcli reproduce` after the plate trial's merge)."""
    from idcli.hashing import sha256_bytes
    from idcli.reproduce import recorded_plate, reproduce

    source = Image.open(RECIPE_PLATE).convert("RGB")
    source.save(tmp_path / "plate.png", icc_profile=DISPLAY_P3)
    out = tmp_path / "out"
    report = idcli.render(idcli.load_shotlist(write_shotlist(ONE_PLATE_SHOT.replace("PLATE", "plate.png"))), out,
                          device="cpu", engine_factory=engine_factory)
    assert (report.rendered, report.failed) == (1, 0)
    record = json.loads((out / "shot" / "shot_t1.json").read_text("utf-8"))
    assert record["plate"]["icc_profile_sha256"] == sha256_bytes(DISPLAY_P3)
    assert recorded_plate(record, out).icc_profile == DISPLAY_P3
    before = {**record, "plate": {k: v for k, v in record["plate"].items() if k != "icc_profile_sha256"}}
    assert recorded_plate(before, out).icc_profile is None  # a record of the days before: the PNG as it was then
    assert reproduce(out / "shot" / "shot_t1.png", device="cpu", engine_factory=engine_factory).status == "identical"


def test_a_profile_too_large_for_a_png_is_not_carried_and_the_plan_says_so(write_shotlist, tmp_path: Path,
                                                                           engine_factory) -> None:
    """A JPEG carries a colour profile of up to about 16 MB (APP2 chunks), and Pillow reads it whole; a PNG's iCCP
    chunk that inflates past 1 MiB Pillow refuses to read (PngImagePlugin.MAX_TEXT_CHUNK). Carried as read (until
    2026-12-02), such a plate's profile made a take that neither idcli (its storyboard, qa, a take used as a plate)
    nor any Pillow could open: `Decompressed data too large`. The image carries none, as for a plate without one,
    and plan says so at the plate's line."""
    from idcli.plate_files import MAX_CARRIED_PROFILE

    large = DISPLAY_P3 + bytes(MAX_CARRIED_PROFILE + 1 - len(DISPLAY_P3))
    large = struct.pack(">I", len(large)) + large[4:]  # an RGB profile (its header's size said) just over the limit
    Image.open(RECIPE_PLATE).convert("RGB").save(tmp_path / "plate.jpg", icc_profile=large, quality=95)
    assert read_plate(tmp_path / "plate.jpg").icc_profile is None
    at_limit = DISPLAY_P3 + bytes(MAX_CARRIED_PROFILE - len(DISPLAY_P3))
    Image.open(RECIPE_PLATE).convert("RGB").save(tmp_path / "at_limit.jpg", icc_profile=at_limit, quality=95)
    assert read_plate(tmp_path / "at_limit.jpg").icc_profile == at_limit  # the largest a PNG carries readably
    shots = write_shotlist(ONE_PLATE_SHOT.replace("PLATE", "plate.jpg"))
    plan, _ = idcli.plan_shotlist(shots, device="cpu", face_models="synthetic")
    said = [warning for warning in plan.warnings if "colour profile" in warning]
    assert len(said) == 1 and "shots[0].plate" in said[0], plan.warnings
    assert f"{len(large):,} bytes" in said[0] and "carries none" in said[0]
    out = tmp_path / "out"
    report = idcli.render(idcli.load_shotlist(shots), out, device="cpu", engine_factory=engine_factory)
    assert (report.rendered, report.failed) == (1, 0)
    with Image.open(out / "shot" / "shot_t1.png") as image:
        image.load()  # readable: no profile Pillow refuses
        assert "icc_profile" not in image.info
    assert "icc_profile_sha256" not in json.loads((out / "shot" / "shot_t1.json").read_text("utf-8"))["plate"]


@pytest.mark.parametrize(("mode", "said"), [("F", "is a TIFF of 32-bit floating-point samples"),
                                            ("I", "is a TIFF of 32-bit integer samples")])
def test_a_greyscale_tiff_of_float_or_32_bit_samples_is_refused_as_a_plate(mode: str, said: str,
                                                                           tmp_path: Path) -> None:
    """Pillow reads a one-channel TIFF of floating-point or 32-bit samples (mode F or I), which the RGB ones it cannot
    read are refused for; read, the reader stretches its range to 8 bits (fine for finding a selfie's face), so a
    scene-linear plate's tones changed everywhere, without a word, while the docs said such TIFFs were refused
    (until 2026-12-02). A plate is refused with what the file is; a selfie is still read."""
    grey = np.asarray(Image.open(RECIPE_PLATE).convert("L"), dtype=np.float64)
    values = grey / 255 * 0.18 if mode == "F" else grey * 16843009 // 2  # scene-linear; 32-bit integers
    path = tmp_path / "plate.tif"
    Image.fromarray(values.astype(np.float32 if mode == "F" else np.int32), mode).save(path)
    with Image.open(path) as image:
        assert image.mode == mode  # Pillow reads it
    with pytest.raises(PlateError) as caught:
        read_plate(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {said}, which idcli cannot use as a plate"), message
    assert "8- or 16-bit" in message
    assert load_rgb(path).shape == (*grey.shape, 3)  # a selfie: its range stretched, as before


def test_a_tiff_of_many_damaged_tags_is_one_error_not_a_warning_for_each(tmp_path: Path) -> None:
    """Pillow's TIFF directory reader warns once per tag it skips (`UserWarning: Tag data larger than file. Skipping
    tag N`, two lines on stderr each naming Pillow's source): a 1.8 MB TIFF of 65,535 such tags made `idcli validate`
    print 129,072 lines before its one error (2026-12-02). Those warnings are quieted while the reader opens a file,
    for plates and selfies alike, and put back after; its error says what is wrong."""
    import warnings

    count = 2000
    entries = b"".join(struct.pack("<HHII", 1000 + i, 1, 10**6, 8) for i in range(count))
    path = tmp_path / "plate.tif"
    path.write_bytes(b"II*\0" + struct.pack("<IH", 8, count) + entries + b"\0" * 4 + bytes(10**6))
    filters = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(PlateError, match="not an image Pillow can read"):
            read_plate(path)
        with pytest.raises(ImageError, match="not an image Pillow can read"):
            load_rgb(path)
        warnings.warn("a host's own warning", UserWarning, stacklevel=1)  # not quieted outside the reader
    assert [str(w.message) for w in caught] == ["a host's own warning"]
    assert warnings.filters == filters
