"""Identity encoding through insightface's real FaceAnalysis on the synthetic model pack."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("insightface", exc_type=ImportError)
pytest.importorskip("onnxruntime")

from PIL import Image
from typer.testing import CliRunner

from idcli.cli import app
from idcli.errors import ModelUnavailableError
from idcli.identity import ImageError, InconsistentSelfiesError, PackError, SelfieError, read_pack
from idcli.identity.build import build_identity
from idcli.identity.encode import encode_selfie
from idcli.identity.faces import FaceAnalyzer, resolve_face_models
from idcli.identity.images import load_rgb
from idcli.identity.pack import PACK_FORMAT, embedding_sha256

ROOT = Path(__file__).resolve().parents[1]
SELFIES = ROOT / "recipes" / "selfies"
runner = CliRunner()


@pytest.fixture(scope="session")
def face_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from idcli.synthetic_faces import build_synthetic_face_pack

    return build_synthetic_face_pack(tmp_path_factory.mktemp("faces"))


@pytest.fixture(scope="session")
def analyzer(face_models_dir: Path) -> FaceAnalyzer:
    return FaceAnalyzer(resolve_face_models(face_models_dir))


def _side_by_side(tmp_path: Path, left: str, right: str, right_scale: float = 1.0) -> Path:
    a = Image.open(SELFIES / left)
    b: Image.Image = Image.open(SELFIES / right)
    b = b.resize((int(b.width * right_scale), int(b.height * right_scale)))
    canvas = Image.new("RGB", (a.width + b.width, max(a.height, b.height)), (90, 120, 160))
    canvas.paste(a, (0, 0))
    canvas.paste(b, (a.width, 0))
    path = tmp_path / "pair.jpg"
    canvas.save(path, quality=92)
    return path


def test_one_selfie_to_pack(analyzer, tmp_path: Path) -> None:
    result = build_identity("mara", [SELFIES / "mara_1.jpg"], analyzer, tmp_path / "mara.idpack")
    pack = read_pack(tmp_path / "mara.idpack")
    assert pack.name == "mara" and pack.meta["schema"] == 1 and pack.meta["random_weights"] is True
    assert abs(float(np.linalg.norm(pack.embedding)) - 1.0) < 1e-5
    assert pack.meta["embedding_sha256"] == embedding_sha256(pack.embedding) == result.pack.embedding_sha256
    assert pack.tensors["crops_112"].shape == (1, 112, 112, 3) and pack.tensors["crops_224"].shape == (1, 224, 224, 3)
    assert pack.tensors["crops_head"].shape == (1, 384, 384, 3)
    selfie = pack.meta["selfies"][0]
    assert selfie["used"] and len(selfie["sha256"]) == 64 and selfie["quality"]["passed"]
    assert set(pack.meta["face_models"]["files"]) == {p.name for p in resolve_face_models(
        analyzer.models.folder).folder.glob("*.onnx")}


def test_embedding_depends_on_the_image(analyzer) -> None:
    mara = encode_selfie(analyzer, SELFIES / "mara_1.jpg").embedding
    mara2 = encode_selfie(analyzer, SELFIES / "mara_2.jpg").embedding
    theo = encode_selfie(analyzer, SELFIES / "theo_1.jpg").embedding
    assert float(mara @ theo) < float(mara @ mara2)
    assert not np.allclose(mara, theo)


def test_several_selfies_aggregate_and_an_outlier_is_rejected(analyzer, tmp_path: Path) -> None:
    selfies = [SELFIES / "mara_1.jpg", SELFIES / "mara_2.jpg", SELFIES / "theo_1.jpg"]
    result = build_identity("mara", selfies, analyzer, tmp_path / "m.idpack")
    agg = result.aggregate.record()
    assert agg["kept"] == [0, 1] and [r["index"] for r in agg["rejected"]] == [2]
    assert "another person" in agg["rejected"][0]["reason"]
    assert [s["used"] for s in result.pack.meta["selfies"]] == [True, True, False]
    # The aggregate lies between the two kept embeddings and is unit length.
    e0, e1 = result.selfies[0].embedding, result.selfies[1].embedding
    emb = result.pack.embedding
    assert float(emb @ e0) >= float(e0 @ e1) - 1e-6 and float(emb @ e1) >= float(e0 @ e1) - 1e-6


def test_two_selfies_of_different_people_are_refused(analyzer, tmp_path: Path) -> None:
    with pytest.raises(InconsistentSelfiesError, match="different people"):
        build_identity("x", [SELFIES / "mara_1.jpg", SELFIES / "theo_1.jpg"], analyzer, tmp_path / "x.idpack")
    assert not (tmp_path / "x.idpack").exists()


def test_several_faces_largest_by_default_and_face_option(analyzer, tmp_path: Path) -> None:
    pair = _side_by_side(tmp_path, "theo_1.jpg", "mara_1.jpg", right_scale=0.7)
    default = encode_selfie(analyzer, pair)
    assert len(default.faces) == 2 and default.face_index == 0
    other = encode_selfie(analyzer, pair, face_index=1)
    theo = encode_selfie(analyzer, SELFIES / "theo_1.jpg").embedding
    assert float(default.embedding @ theo) > float(other.embedding @ theo)
    with pytest.raises(SelfieError, match="2 face"):
        encode_selfie(analyzer, pair, face_index=5)


def _over_the_pixel_budget(path: Path) -> None:
    """A valid PNG of 81 million pixels (1-bit, so small on disk) under the selfie's name."""
    Image.new("1", (9000, 9000)).save(path.with_suffix(".png"))
    path.with_suffix(".png").rename(path)


@pytest.mark.parametrize("make,match", [
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_text("hello, I am not a picture"), "not an image"),
    (lambda p: p.write_bytes((SELFIES / "mara_1.jpg").read_bytes()[:3000]), "damaged or truncated"),
    (_over_the_pixel_budget, "pixel budget"),
    (lambda p: Image.new("RGB", (20, 20)).save(p, format="PNG"), "too small"),
])
def test_bad_image_files(tmp_path: Path, make, match: str) -> None:
    path = tmp_path / "selfie.jpg"
    make(path)
    with pytest.raises(ImageError, match=match):
        load_rgb(path)


def test_reading_a_selfie_leaves_another_threads_catch_warnings_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host thread records its warnings with ``warnings.catch_warnings`` while idcli reads a selfie in another:
    the selfie is read and the host still records its own warning after idcli's read ended. idcli's reading used
    to swap the process-wide filters and ``showwarning`` in a block of its own, whose end put back what it found
    at its start: the host's recorder, set up meanwhile, was undone and the host's warning went elsewhere."""
    import threading
    import warnings

    from PIL import JpegImagePlugin

    reading, host_recording, read = threading.Event(), threading.Event(), threading.Event()
    real_open = JpegImagePlugin.JpegImageFile._open

    def open_once_the_host_records(self):  # the JPEG plugin reading its header: inside any block around opening
        reading.set()
        host_recording.wait(60)
        return real_open(self)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "_open", open_once_the_host_records)
    shapes: list[tuple[int, ...]] = []
    recorded: list[str] = []

    def idcli_reads() -> None:
        shapes.append(load_rgb(SELFIES / "mara_1.jpg").shape)
        read.set()

    def host_records() -> None:
        reading.wait(60)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            host_recording.set()
            read.wait(60)
            warnings.warn("the host's own warning", UserWarning, stacklevel=1)
        recorded.extend(str(each.message) for each in caught)

    threads = [threading.Thread(target=run) for run in (idcli_reads, host_records)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert read.is_set() and len(shapes) == 1 and shapes[0][2] == 3
    assert reading.is_set()  # the two interleaved: idcli was opening the selfie while the host began recording
    assert recorded == ["the host's own warning"]


def png_header(width: int, height: int) -> bytes:
    """A PNG declaring ``width`` x ``height`` pixels, with a few bytes of them (read no further than its header)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + rows + chunk(b"IEND", b"")


def test_an_image_pillow_warns_about_is_refused_without_a_warning(tmp_path: Path) -> None:
    """Between Pillow's own limit (89.5 MP) and twice it, Image.open warns (DecompressionBombWarning) where past
    twice it raises: both are over idcli's 50 MP and refused with the same errors as before, no warning shown."""
    import warnings

    cases = [((10_000, 10_000), "10000x10000 is over the 50,000,000-pixel budget"),
             ((20_000, 10_000), "image dimensions are over the 50,000,000-pixel budget \\(decompression bomb\\?\\)")]
    for (width, height), message in cases:
        path = tmp_path / f"{width}x{height}.png"
        path.write_bytes(png_header(width, height))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(ImageError, match=message):
                load_rgb(path)
        assert [str(each.message) for each in caught] == []


def test_the_first_image_a_process_reads_is_opened_without_pillows_bomb_check(tmp_path: Path) -> None:
    """Pillow's plugin registry is empty until an image is first opened, and the reader took the empty list for a
    Pillow without one: the first image a process read went to Image.open, its bomb check and warning included, so
    `idcli validate --selfies` with a 10000x10000 selfie printed DecompressionBombWarning before refusing it. In a
    fresh process, as the command line reads it (in this one, earlier tests have filled the registry)."""
    import subprocess
    import sys

    from cli_helpers import cli_env

    path = tmp_path / "big.png"
    path.write_bytes(png_header(10_000, 10_000))
    code = ("import sys, warnings; from pathlib import Path; from idcli.identity.images import ImageError, load_rgb\n"
            "warnings.simplefilter('always')\n"
            "try:\n    load_rgb(Path(sys.argv[1]))\nexcept ImageError as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=cli_env(),
                          timeout=120)
    assert done.returncode == 0 and done.stdout == f"{path}: 10000x10000 is over the 50,000,000-pixel budget\n"
    assert done.stderr == "", done.stderr


def test_a_gif_whose_first_frame_outgrows_its_screen_is_refused_without_a_warning(tmp_path: Path) -> None:
    """Pillow's GIF plugin widens the image to a first frame larger than its logical screen as it opens it, and
    checks that size itself: past Pillow's limit (89.5 MP) it warned, DecompressionBombWarning from inside the plugin,
    though idcli's reader opens images without Pillow's check. Refused by idcli's budget as before, without the
    warning; past twice Pillow's limit still as a bomb; a small GIF of that shape still reads, as Pillow reads it."""
    import io
    import struct
    import warnings

    def gif(screen: tuple[int, int], frame: tuple[int, int], dispose: int = 0) -> bytes:
        head = b"GIF89a" + struct.pack("<HHBBB", *screen, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"  # 2-colour palette
        loop = b"!\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
        comment = b"!\xfe\x05hello\x00"
        control = b"!\xf9\x04" + bytes([dispose << 2]) + b"\0\0\0\0"
        return (head + loop + comment + control + b"," + struct.pack("<HHHHB", 0, 0, *frame, 0)
                + b"\x02\x02\x4c\x01\x00;")  # image data never decoded: refused first

    cases = [(gif((64, 64), (10_000, 10_000)), "10000x10000 is over the 50,000,000-pixel budget"),
             (gif((64, 64), (10_000, 10_000), dispose=2), "10000x10000 is over the 50,000,000-pixel budget"),
             (gif((64, 64), (20_000, 10_000)),
              "image dimensions are over the 50,000,000-pixel budget \\(decompression bomb\\?\\)")]
    for number, (data, message) in enumerate(cases):
        path = tmp_path / f"bomb{number}.gif"
        path.write_bytes(data)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(ImageError, match=message):
                load_rgb(path)
        assert [str(each.message) for each in caught] == []
    # A real GIF whose logical screen (40x40) is smaller than its frame (64x64): read at the size Pillow gives it.
    saved = io.BytesIO()
    Image.effect_noise((64, 64), 60).convert("P").save(saved, "GIF", comment=b"mara", loop=0, duration=100)
    outgrown = bytearray(saved.getvalue())
    outgrown[6:10] = struct.pack("<HH", 40, 40)
    path = tmp_path / "outgrown.gif"
    path.write_bytes(bytes(outgrown))
    with Image.open(io.BytesIO(outgrown)) as pillow:
        expected = np.asarray(pillow.convert("RGB"))
    assert expected.shape == (64, 64, 3)
    assert np.array_equal(load_rgb(path), expected)


def test_folders_and_devices_are_not_selfies(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="folder"):
        load_rgb(tmp_path)
    with pytest.raises(ImageError, match="not a regular file"):
        load_rgb(Path("/dev/null"))
    with pytest.raises(ImageError, match="no such file"):
        load_rgb(tmp_path / "missing.jpg")
    (tmp_path / "linked.jpg").symlink_to(tmp_path / "gone.jpg")  # plan, validate --selfies read it here
    with pytest.raises(ImageError, match=r"linked\.jpg: a link to a missing file \(.*gone\.jpg\)"):
        load_rgb(tmp_path / "linked.jpg")


def test_no_face_and_face_too_small(analyzer, tmp_path: Path) -> None:
    grey = tmp_path / "grey.png"
    Image.new("RGB", (400, 400), (128, 128, 128)).save(grey)
    with pytest.raises(SelfieError, match="no face found"):
        encode_selfie(analyzer, grey)
    small = tmp_path / "small.png"
    canvas = Image.new("RGB", (640, 640), (90, 120, 160))
    canvas.paste(Image.open(SELFIES / "mara_1.jpg").resize((100, 100)), (320, 320))  # a ~58-pixel face
    canvas.save(small)
    with pytest.raises(SelfieError, match="px"):
        encode_selfie(analyzer, small)


@pytest.mark.parametrize("mode", ["RGBA", "L", "CMYK", "P", "I;16", "PA"])
def test_any_image_mode_is_read(analyzer, tmp_path: Path, mode: str) -> None:
    source = Image.open(SELFIES / "mara_1.jpg")
    if mode == "I;16":
        converted = Image.fromarray(np.asarray(source.convert("L"), dtype=np.uint16) * 257)
    elif mode == "PA":
        converted = source.convert("P")
        converted.info["transparency"] = 0
    else:
        converted = source.convert(mode)
    path = tmp_path / ("selfie.tiff" if mode in ("CMYK", "I;16") else "selfie.png")
    converted.save(path)
    rgb = load_rgb(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (512, 512, 3)
    if mode in ("RGBA", "CMYK"):  # colour survives: the synthetic detector looks for skin tones
        assert len(encode_selfie(analyzer, path).faces) == 1


def test_exif_orientation_and_animation(tmp_path: Path) -> None:
    source = Image.open(SELFIES / "mara_1.jpg").crop((0, 0, 512, 300))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    rotated = tmp_path / "rotated.jpg"
    source.save(rotated, exif=exif)
    assert load_rgb(rotated).shape == (512, 300, 3)
    animated = tmp_path / "anim.gif"
    frames = [Image.open(SELFIES / "mara_1.jpg").convert("P"), Image.new("P", (512, 512))]
    frames[0].save(animated, save_all=True, append_images=frames[1:])
    assert load_rgb(animated).shape == (512, 512, 3)


def test_corrupt_and_newer_packs(analyzer, tmp_path: Path) -> None:
    from safetensors.numpy import save

    good = tmp_path / "good.idpack"
    build_identity("mara", [SELFIES / "mara_1.jpg"], analyzer, good)
    truncated = tmp_path / "truncated.idpack"
    truncated.write_bytes(good.read_bytes()[:500])
    with pytest.raises(PackError, match="not an idcli identity pack"):
        read_pack(truncated)
    pack = read_pack(good)
    newer = tmp_path / "newer.idpack"
    newer.write_bytes(save(dict(pack.tensors), metadata={"format": PACK_FORMAT, "schema": "2",
                                                          "meta": json.dumps(pack.meta)}))
    with pytest.raises(PackError, match="newer idcli"):
        read_pack(newer)
    other = tmp_path / "other.idpack"
    other.write_bytes(save({"x": np.zeros(3, dtype=np.float32)}))
    with pytest.raises(PackError, match="not an idcli identity pack"):
        read_pack(other)
    tampered = dict(pack.tensors)
    tampered["embedding"] = -pack.embedding
    bad = tmp_path / "tampered.idpack"
    bad.write_bytes(save(tampered, metadata={"format": PACK_FORMAT, "schema": "1", "meta": json.dumps(pack.meta)}))
    with pytest.raises(PackError, match="does not match"):
        read_pack(bad)


def test_missing_face_models_say_where_and_the_licence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDCLI_FACE_MODELS", str(tmp_path / "nowhere"))
    with pytest.raises(ModelUnavailableError) as info:
        resolve_face_models(None)
    message = str(info.value)
    assert "nowhere" in message and "IDCLI_FACE_MODELS" in message and "non-commercial" in message
    assert "det_10g.onnx" in message


def test_a_pack_missing_a_model_names_what_is_missing_and_what_is_there(face_models_dir: Path, tmp_path: Path) -> None:
    """A pack without its detector failed with "could not be loaded: " and nothing after (insightface asserts);
    one without a recogniser, or whose files insightface does not recognise, now lists the files it found."""
    import shutil
    import warnings

    import torch

    no_detector, odd = tmp_path / "no-detector", tmp_path / "odd"
    no_detector.mkdir()
    odd.mkdir()
    shutil.copy(face_models_dir / "w600k_synthetic.onnx", no_detector)
    shutil.copy(face_models_dir / "det_synthetic.onnx", odd)

    class Mean(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=(2, 3))

    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notices (dynamo needs onnxscript)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(Mean(), torch.zeros(1, 3, 50, 70), str(odd / "genderage.onnx"), dynamo=False)
    with pytest.raises(ModelUnavailableError) as info:
        FaceAnalyzer(resolve_face_models(no_detector))
    message = str(info.value)
    assert "no SCRFD face detection model" in message and "det_10g.onnx" in message
    assert "found: w600k_synthetic.onnx (recognition)" in message
    with pytest.raises(ModelUnavailableError) as info:
        FaceAnalyzer(resolve_face_models(odd))
    message = str(info.value)
    assert "no ArcFace recognition model" in message
    assert "found: det_synthetic.onnx (detection), genderage.onnx (not recognised)" in message


def test_the_folder_above_a_pack_names_the_pack_inside(face_models_dir: Path, tmp_path: Path) -> None:
    """insightface's own FaceAnalysis(name='buffalo_l', root='~/.insightface') takes the folder above: given that
    (or ~/.insightface/models), the error names the pack folders below it to pass instead."""
    import shutil

    root = tmp_path / ".insightface"
    shutil.copytree(face_models_dir, root / "models" / "buffalo_l")
    for given in (root, root / "models"):
        with pytest.raises(ModelUnavailableError) as info:
            resolve_face_models(given)
        assert f"packs below it: {root / 'models' / 'buffalo_l'}" in str(info.value)


def test_a_folder_above_with_an_unreadable_subfolder_still_names_the_pack(face_models_dir: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Looking for packs below a folder with no .onnx files met a subfolder it may not list (another user's
    home under `--face-models /home`): the PermissionError replaced the face-model error (exit 5, "Permission
    denied"). Unreadable folders are passed over; the pack that can be read is still named."""
    import shutil

    root = tmp_path / "models"
    shutil.copytree(face_models_dir, root / "buffalo_l")
    (tmp_path / "private" / "inner").mkdir(parents=True)
    listing = Path.iterdir

    def guarded(self: Path):
        if self.name == "private":  # tests run as root, which chmod 000 does not stop
            raise PermissionError(13, "Permission denied", str(self))
        return listing(self)

    monkeypatch.setattr(Path, "iterdir", guarded)
    with pytest.raises(ModelUnavailableError) as info:
        resolve_face_models(tmp_path)
    assert f"packs below it: {root / 'buffalo_l'}" in str(info.value)


def test_cli_encode_identity_and_show(face_models_dir: Path, tmp_path: Path) -> None:
    pack = tmp_path / "theo.idpack"
    result = runner.invoke(app, ["encode-identity", str(SELFIES / "theo_1.jpg"), str(SELFIES / "theo_2.jpg"),
                                 "--name", "theo", "-o", str(pack), "--face-models", str(face_models_dir), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["name"] == "theo" and len(data["selfies"]) == 2 and data["aggregation"]["mean_cosine"] > 0.35
    sheet = tmp_path / "sheet.png"
    shown = runner.invoke(app, ["identity", "show", str(pack), "--contact-sheet", str(sheet)])
    assert shown.exit_code == 0 and "identity 'theo'" in shown.stdout and "SYNTHETIC" in shown.stdout
    with Image.open(sheet) as im:
        assert im.size[0] == 2 * 224
    as_json = runner.invoke(app, ["identity", "show", str(pack), "--json"])
    assert json.loads(as_json.stdout)["sha256"] == read_pack(pack).sha256


def test_cli_errors_exit_codes(face_models_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    result = runner.invoke(app, ["encode-identity", str(bad), "--name", "x", "-o", str(tmp_path / "x.idpack"),
                                 "--face-models", str(face_models_dir)])
    assert result.exit_code == 2 and "not an image" in result.stderr
    missing = runner.invoke(app, ["encode-identity", str(SELFIES / "mara_1.jpg"), "--name", "x",
                                  "--face-models", str(tmp_path / "none")])
    assert missing.exit_code == 4 and "non-commercial" in missing.stderr
    unsafe = runner.invoke(app, ["encode-identity", str(SELFIES / "mara_1.jpg"), "--name", "../x",
                                 "--face-models", str(face_models_dir)])
    assert unsafe.exit_code == 2
    corrupt = tmp_path / "c.idpack"
    shutil.copy(bad, corrupt)
    shown = runner.invoke(app, ["identity", "show", str(corrupt)])
    assert shown.exit_code == 2 and "not an idcli identity pack" in shown.stderr


def test_a_selfie_is_hashed_and_decoded_from_the_bytes_read(analyzer, tmp_path: Path) -> None:
    from idcli.hashing import sha256_bytes
    from idcli.identity.encode import SelfieFile

    data = (SELFIES / "mara_1.jpg").read_bytes()
    # The path only names the file: nothing is read from it again once its bytes are in hand.
    selfie = SelfieFile(tmp_path / "since-deleted.jpg", data, sha256_bytes(data))
    encoded = encode_selfie(analyzer, selfie)
    assert encoded.sha256 == sha256_bytes(data) and encoded.path == str(tmp_path / "since-deleted.jpg")
    assert np.allclose(encoded.embedding, encode_selfie(analyzer, SELFIES / "mara_1.jpg").embedding)


def test_build_returns_the_pack_it_wrote(analyzer, tmp_path: Path) -> None:
    out = tmp_path / "mara.idpack"
    built = build_identity("mara", [SELFIES / "mara_1.jpg"], analyzer, out).pack
    again = read_pack(out)
    assert built.sha256 == again.sha256 and built.meta == again.meta and built.path == again.path == str(out)
    assert np.array_equal(built.embedding, again.embedding)


def test_planning_reads_each_selfie_once(write_shotlist, monkeypatch: pytest.MonkeyPatch) -> None:
    import idcli
    import idcli.identity.images as images
    import idcli.identity.pack as pack

    reads: list[str] = []
    pack_reads: list[str] = []

    def counting(real, log):
        def read(path, *args, **kwargs):
            log.append(Path(path).name)
            return real(path, *args, **kwargs)
        return read

    monkeypatch.setattr(images, "read_regular", counting(images.read_regular, reads))
    monkeypatch.setattr(pack, "read_regular", counting(pack.read_regular, pack_reads))
    loaded = idcli.load_shotlist(write_shotlist("""\
        version: 1
        project: read-once
        model: {preset: tiny-sd}
        defaults: {size: 64x64, steps: 2}
        characters:
          mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg]}
        shots:
          - {id: a, prompt: "{mara} in the rain"}
        """))
    missed, _ = idcli.plan_shotlist(loaded, device="cpu")  # cache miss: read, hash, encode, write the pack
    assert sorted(reads) == ["mara_1.jpg", "mara_2.jpg"] and pack_reads == []
    hit, _ = idcli.plan_shotlist(loaded, device="cpu")  # cache hit: the selfies are hashed, the pack read
    assert sorted(reads) == ["mara_1.jpg", "mara_1.jpg", "mara_2.jpg", "mara_2.jpg"] and len(pack_reads) == 1
    assert [j.key for j in missed.jobs] == [j.key for j in hit.jobs]


def test_encode_identity_refuses_to_overwrite_a_pack_without_force(face_models_dir: Path, tmp_path: Path) -> None:
    """``-o PACK`` onto an existing pack (one that shot lists and job keys may name) silently replaced it.
    It exits 2 naming the file, before any selfie is read, and leaves the pack as it was; ``--force``
    replaces it atomically (no temporary left behind)."""
    pack = tmp_path / "packs" / "theo.idpack"
    argv = ["encode-identity", str(SELFIES / "theo_1.jpg"), "--name", "theo", "-o", str(pack),
            "--face-models", str(face_models_dir)]
    assert runner.invoke(app, argv).exit_code == 0
    before = pack.read_bytes()
    refused = runner.invoke(app, [*argv[:2], str(SELFIES / "theo_2.jpg"), *argv[2:], "--json"])
    assert refused.exit_code == 2, refused.output
    error = json.loads(refused.stdout)["error"]
    assert error["file"] == str(pack) and "already exists" in error["message"] and "--force" in error["message"]
    assert f"{pack}" in refused.stderr and pack.read_bytes() == before
    forced = runner.invoke(app, [*argv[:2], str(SELFIES / "theo_2.jpg"), *argv[2:], "--force"])
    assert forced.exit_code == 0, forced.output
    assert len(read_pack(pack).meta["selfies"]) == 2 and sorted(p.name for p in pack.parent.iterdir()) == [pack.name]


def test_a_pack_write_killed_midway_leaves_no_temporary_after_the_next_write(face_models_dir: Path,
                                                                               tmp_path: Path) -> None:
    """kill -9 while ``-o PACK`` is written leaves the hidden temporary ``.PACK.PID.HEX.idcli-tmp`` (nothing
    runs at a SIGKILL). The next pack written into that folder removes those of dead processes, and only
    those: a live process's temporary (another encode-identity writing now) is left alone."""
    import os
    import subprocess
    import sys

    folder = tmp_path / "packs"
    folder.mkdir()
    pack = folder / "theo.idpack"
    killed = subprocess.run(
        [sys.executable, "-c",
         "import os, signal, sys; from pathlib import Path; from idcli import safeio\n"
         "os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)  # killed after the bytes, before the rename\n"
         "safeio.atomic_write(Path(sys.argv[1]), b'half a pack')", str(pack)],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}, check=False)
    assert killed.returncode == -9
    (left,) = folder.iterdir()
    assert left.name.startswith(".theo.idpack.") and left.name.endswith(".idcli-tmp"), left
    live = folder / f".mara.idpack.{os.getpid()}.0123abcd.idcli-tmp"
    live.write_bytes(b"being written")
    result = runner.invoke(app, ["encode-identity", str(SELFIES / "theo_1.jpg"), "--name", "theo", "-o",
                                 str(pack), "--face-models", str(face_models_dir)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == sorted([live.name, pack.name])


def test_write_pack_without_overwrite_never_replaces_a_file_that_appeared(tmp_path: Path) -> None:
    """The check before encoding leaves a window (another encode-identity finishing first): the write
    itself refuses to replace a file when overwriting was not asked for."""
    from idcli.identity.pack import PackExistsError, write_pack

    pack = tmp_path / "x.idpack"
    tensors = {"embedding": np.ones(512, dtype=np.float32) / np.sqrt(512),
               "selfie_embeddings": np.ones((1, 512), dtype=np.float32) / np.sqrt(512),
               **{f"crops_{n}": np.zeros((1, size, size, 3), dtype=np.uint8)
                  for n, size in (("112", 112), ("224", 224), ("head", 384))}}
    write_pack(pack, {"name": "x"}, tensors, overwrite=False)
    first = pack.read_bytes()
    with pytest.raises(PackExistsError, match="already exists") as refused:
        write_pack(pack, {"name": "y"}, tensors, overwrite=False)
    assert refused.value.exit_code == 2 and refused.value.file == str(pack)
    assert pack.read_bytes() == first and [p.name for p in tmp_path.iterdir()] == ["x.idpack"]
    assert write_pack(pack, {"name": "y"}, tensors).name == "y"
