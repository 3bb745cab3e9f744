"""Hostile inputs outside the shot list's text: images, paths and links, model and adapter files.

Each class answers with one clear error (exit 2 for input, 1 for the output folder, 4 for models) or
works; never a traceback, a hang, an unbounded read, a write outside the output folder or code run
from a model folder. Covered elsewhere, not repeated: zero-byte, text-as-JPEG, truncated JPEG, a 81 MP
bomb and 20x20 images (test_identity.py::test_bad_image_files), RGBA/L/CMYK-TIFF/P/I;16/PA modes
(::test_any_image_mode_is_read), EXIF rotation and GIF animation (::test_exif_orientation_and_animation),
folders and /dev/null (::test_folders_and_devices_are_not_selfies), unsafe shot ids and character names
(test_shotlist.py::test_unsafe_shot_ids, ::test_bad_character_names), a linked shot folder
(test_render.py::test_symlinked_shot_folder_pointing_outside_is_refused), links in .idcli
(test_hardening.py), pickles refused unless allowed (test_engine.py::test_pickle_checkpoints_are_refused_unless_allowed,
test_faceid.py::test_pickles_are_refused_unless_allowed).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_helpers import assert_no_temporaries, cli_env, render_argv
from hang_watchdog import no_hang
from PIL import Image
from typer.testing import CliRunner

import idcli
from idcli.cli import app
from idcli.errors import ModelUnavailableError, OutputError
from idcli.identity import ImageError, PackError, read_pack
from idcli.identity.images import load_rgb
from idcli.store import OutputStore

ROOT = Path(__file__).resolve().parents[1]
SELFIE = ROOT / "recipes" / "selfies" / "mara_1.jpg"
runner = CliRunner()


def _png(width: int, height: int, *, depth: int = 8, colour: int = 2, rows: bytes | None = None) -> bytes:
    """A PNG written by hand, so that headers can say what no encoder would write."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    if rows is None:
        rows = b"\x00" * 64  # far too little data for the declared size
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _rgb48(width: int, height: int) -> bytes:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 65535, (height, width, 3), dtype=np.uint16).astype(">u2")
    rows = b"".join(b"\x00" + pixels[y].tobytes() for y in range(height))
    return _png(width, height, depth=16, colour=2, rows=rows)


# -- images ----------------------------------------------------------------------------------------------

BAD_IMAGES = {
    # name: (bytes or a writer, the message expected)
    "png-bomb-100k-squared": (lambda: _png(100_000, 100_000), "pixel budget"),
    "png-bomb-just-over": (lambda: _png(10_000, 5_001), "pixel budget"),
    "png-bomb-max-header": (lambda: _png(2**31 - 1, 2**31 - 1), "pixel budget|damaged"),
    "gif-bomb": (lambda: b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\x00\x00\x00" + b"," + struct.pack(
        "<HHHH", 0, 0, 65535, 65535) + b"\x00\x02\x02\x44\x01\x00;", "pixel budget"),
    "html-named-png": (lambda: b"<!doctype html><html><body>hello</body></html>", "not an image"),
    "pdf": (lambda: b"%PDF-1.7\n1 0 obj << >> endobj\n%%EOF\n", "not an image"),
    "svg": (lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="9999999" height="9999999"/>', "not an image"),
    "elf-binary": (lambda: Path(sys.executable).resolve().read_bytes()[:4096], "not an image"),
    "png-signature-only": (lambda: b"\x89PNG\r\n\x1a\n", "not an image|damaged"),
    "png-ihdr-no-data": (lambda: _png(64, 64)[:33], "damaged|truncated|not an image"),
    "png-short-idat": (lambda: _png(64, 64), "damaged or truncated"),
    "1x1": (lambda: _png(1, 1, rows=b"\x00\x00\x00\x00"), "too small"),
    "40000x32": (lambda: _png(40000, 32, rows=b"".join(b"\x00" + b"\x80" * 120000 for _ in range(32))),
                 "too elongated"),
    "32x40000": (lambda: _png(32, 40000, rows=b"".join(b"\x00" + b"\x80" * 96 for _ in range(40000))),
                 "too elongated"),
}


@pytest.mark.parametrize("name", sorted(BAD_IMAGES))
def test_hostile_image_files_are_one_clear_error(tmp_path: Path, name: str) -> None:
    make, expected = BAD_IMAGES[name]
    path = tmp_path / "selfie.png"
    path.write_bytes(make())
    tracemalloc.start()
    try:
        with no_hang(), pytest.raises(ImageError) as info:
            load_rgb(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert any(word in message for word in expected.split("|")), message
    assert peak < 200 * 1024 * 1024, f"{peak / 1e6:.0f} MB to refuse a {path.stat().st_size}-byte file"


@pytest.mark.parametrize("cut", [0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99])
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF", "GIF"])
def test_images_cut_anywhere(tmp_path: Path, fmt: str, cut: float) -> None:
    """A file cut at any point (a copy interrupted, a download stopped) is refused or read, never a crash."""
    source = Image.open(SELFIE)
    whole = tmp_path / f"whole.{fmt.lower()}"
    (source.convert("P") if fmt == "GIF" else source).save(whole, format=fmt)
    data = whole.read_bytes()
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: int(len(data) * cut)])
    try:
        with no_hang():
            rgb = load_rgb(path)
    except ImageError as exc:
        assert str(exc).startswith(f"{path}: ") and "\n" not in str(exc)
    else:
        assert rgb.dtype == np.uint8 and rgb.ndim == 3  # formats that decode what they have (GIF frames)


def _mode_image(mode: str) -> tuple[Image.Image, str]:
    source = Image.open(SELFIE)
    grey = np.asarray(source.convert("L"))
    if mode == "F-nan-inf":
        data = grey.astype(np.float32)
        data[0, 0], data[0, 1], data[1, 0] = np.nan, np.inf, -np.inf
        return Image.fromarray(data, mode="F"), "TIFF"
    if mode == "F":
        return Image.fromarray(grey.astype(np.float32) / 255.0, mode="F"), "TIFF"
    if mode == "I":
        return Image.fromarray(grey.astype(np.int32) * 1000, mode="I"), "TIFF"
    if mode == "I;16B":
        return Image.fromarray(grey.astype(">u2") * 257), "TIFF"
    if mode == "CMYK-JPEG":
        return source.convert("CMYK"), "JPEG"
    if mode == "LAB":
        return source.convert("LAB"), "TIFF"
    if mode == "1":
        return source.convert("1"), "PNG"
    if mode == "LA":
        return source.convert("LA"), "PNG"
    if mode == "YCbCr":
        return source.convert("YCbCr"), "JPEG"
    if mode == "P-transparent-GIF":
        return source.convert("P", palette=Image.Palette.ADAPTIVE), "GIF"
    if mode == "APNG":
        return source, "PNG"
    if mode == "WEBP-animated":
        return source, "WEBP"
    if mode == "TIFF-pages":
        return source, "TIFF"
    raise AssertionError(mode)


@pytest.mark.parametrize("mode", ["F-nan-inf", "F", "I", "I;16B", "CMYK-JPEG", "LAB", "1", "LA", "YCbCr",
                                  "P-transparent-GIF", "APNG", "WEBP-animated", "TIFF-pages", "RGB48-PNG"])
def test_every_mode_and_container_reads_as_8_bit_rgb(tmp_path: Path, mode: str) -> None:
    path = tmp_path / f"selfie-{mode}"
    if mode == "RGB48-PNG":
        path.write_bytes(_rgb48(96, 64))
        expected = (64, 96, 3)
    else:
        image, fmt = _mode_image(mode)
        extra: dict[str, Any] = {}
        if mode == "P-transparent-GIF":
            extra["transparency"] = 0
        if mode in ("APNG", "WEBP-animated", "TIFF-pages"):
            extra.update(save_all=True, append_images=[image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)])
        image.save(path, format=fmt, **extra)
        expected = (512, 512, 3)
    rgb = load_rgb(path)
    assert rgb.shape == expected and rgb.dtype == np.uint8
    if mode == "F-nan-inf":
        # Three non-finite pixels must not blank the picture (NaN used to make the whole range NaN).
        reference = load_rgb(SELFIE).astype(int).mean(axis=2)
        assert abs(rgb[..., 0].astype(int).mean() - reference.mean()) < 3 and rgb.std() > 20
    elif mode not in ("1",):
        assert rgb.std() > 20, "the picture survived the conversion"


@pytest.mark.parametrize("orientation", [0, 9, 255, 65535])
def test_nonsense_exif_orientation_is_ignored(tmp_path: Path, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "exif.jpg"
    Image.open(SELFIE).crop((0, 0, 512, 300)).save(path, exif=exif)
    assert load_rgb(path).shape == (300, 512, 3)


def test_an_oversized_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.jpg"
    with path.open("wb") as handle:  # sparse: 2 GB that take no disk
        handle.truncate(2 * 1024**3)
    tracemalloc.start()
    try:
        with no_hang(), pytest.raises(ImageError, match="byte limit"):
            load_rgb(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 * 1024 * 1024


def test_all_nan_float_image_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "nan.tiff"
    Image.fromarray(np.full((64, 64), np.nan, dtype=np.float32), mode="F").save(path)
    with pytest.raises(ImageError, match="no finite pixel values"):
        load_rgb(path)


# -- selfie and pack paths that are not files ---------------------------------------------------------------

SHOTS = """\
version: 1
project: hostile
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0}
characters:
  mara: {selfies: [SELFIE]}
shots:
  - {id: a, prompt: "{mara} in the rain"}
"""


def _special(kind: str, tmp_path: Path) -> Path:
    if kind == "fifo":
        path = tmp_path / "selfie.jpg"
        os.mkfifo(path)
        return path
    if kind == "dev-zero":
        return Path("/dev/zero")
    if kind == "link-to-dev-zero":
        path = tmp_path / "zero.jpg"
        path.symlink_to("/dev/zero")
        return path
    if kind == "link-loop":
        path = tmp_path / "loop.jpg"
        path.symlink_to(path)
        return path
    if kind == "folder":
        path = tmp_path / "folder.jpg"
        path.mkdir()
        return path
    raise AssertionError(kind)


SPECIAL = ["fifo", "dev-zero", "link-to-dev-zero", "link-loop", "folder"]


@pytest.mark.parametrize("kind", SPECIAL)
@pytest.mark.parametrize("field", ["selfies", "identity"])
def test_selfies_and_packs_that_are_not_files_fail_validation(tmp_path: Path, kind: str, field: str) -> None:
    special = _special(kind, tmp_path)
    text = SHOTS.replace("SELFIE", str(special))
    if field == "identity":
        text = text.replace(f"selfies: [{special}]", f"identity: {special}")
    path = tmp_path / "shots.yaml"
    path.write_text(text)
    with no_hang():
        result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith(f"idcli: error: {path}:6:") and f"characters.mara.{field}" in line
    assert "is not a regular file" in line or "does not exist" in line or (
        "loop" in kind and "is a symbolic link that leads to no file (broken, or a loop)" in line)


@pytest.mark.parametrize("kind", SPECIAL)
def test_encode_identity_and_read_pack_never_block_on_special_files(tmp_path: Path, kind: str) -> None:
    special = _special(kind, tmp_path)
    with no_hang():
        result = runner.invoke(app, ["encode-identity", str(special), "--name", "x", "-o", str(tmp_path / "x.idpack")])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"idcli: error: {special}") and "Traceback" not in result.output
        with pytest.raises(PackError):
            read_pack(special)


def test_a_huge_identity_pack_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.idpack"
    with path.open("wb") as handle:
        handle.truncate(3 * 1024**3)
    tracemalloc.start()
    try:
        with pytest.raises(PackError, match="too large for an identity pack"):
            read_pack(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 * 1024 * 1024


@pytest.mark.parametrize("name", ["truncated", "not-an-image"])
def test_a_bad_selfie_in_a_shot_list_is_reported_with_its_path(tmp_path: Path, name: str) -> None:
    selfie = tmp_path / "mara.jpg"
    data = SELFIE.read_bytes()
    selfie.write_bytes(data[: len(data) // 3] if name == "truncated" else b"GIF87a? no, a note about mara")
    path = tmp_path / "shots.yaml"
    path.write_text(SHOTS.replace("SELFIE", str(selfie)))
    result = runner.invoke(app, ["plan", str(path), "--out", str(tmp_path / "out"), "--device", "cpu"])
    assert result.exit_code == 0 and "Traceback" not in result.output  # only the shots naming mara fail
    assert f"character 'mara' cannot be used: {selfie}: " in result.stdout
    checked = runner.invoke(app, ["validate", str(path), "--selfies"])
    assert checked.exit_code == 2 and "Traceback" not in checked.output
    lines = checked.stderr.strip().splitlines()
    assert len(lines) == 1 and f"characters.mara.selfies[0]: character 'mara' cannot be used: {selfie}: " in lines[0]


@pytest.mark.parametrize("value", ["ѕh010", "sh０10", "sh010\u200b", "\u202esh010", "sh\u0430010", "sh010\u2028",
                                   "ｓｈ010", "sh010\\0", "sh010\\x85", "ǀǀ", "sh010\\ud800"])
def test_look_alike_and_invisible_ids_are_refused(tmp_path: Path, value: str) -> None:
    path = tmp_path / "shots.yaml"
    path.write_text(f'version: 1\nproject: p\nshots:\n  - {{id: "{value}", prompt: x}}\n', "utf-8")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"idcli: error: {path}:4:") and lines[0].isprintable()


# -- the output folder: links, devices, FIFOs and bombs planted in it --------------------------------------

TEXT_SHOTS = """\
version: 1
project: planted
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: euler}
shots:
  - {id: a, prompt: "a lighthouse"}
  - {id: b, prompt: "a beach"}
"""


def _plant(tmp_path: Path, kind: str) -> tuple[Path, Path, Path | None]:
    """An output folder with something planted at shot a's image or sidecar path; returns (out, planted, outside)."""
    out = tmp_path / "out"
    (out / "a").mkdir(parents=True)
    outside = tmp_path / "precious.png"
    outside.write_bytes(b"precious data")
    image, sidecar = out / "a" / "a_t1.png", out / "a" / "a_t1.json"
    fake_sidecar = json.dumps({"job_key": "PLACEHOLDER", "image": {"sha256": "0" * 64}})
    if kind == "image-link-outside":
        image.symlink_to(outside)
        return out, image, outside
    if kind == "image-link-dev-zero-with-sidecar":
        image.symlink_to("/dev/zero")
        sidecar.write_text(fake_sidecar)
        return out, image, None
    if kind == "image-fifo-with-sidecar":
        os.mkfifo(image)
        sidecar.write_text(fake_sidecar)
        return out, image, None
    if kind == "sidecar-fifo":
        os.mkfifo(sidecar)
        return out, sidecar, None
    if kind == "sidecar-link-outside":
        sidecar.symlink_to(outside)
        return out, sidecar, outside
    if kind == "image-is-a-folder":
        image.mkdir()
        return out, image, None
    if kind == "png-bomb-at-image":
        image.write_bytes(_png(100_000, 100_000))
        return out, image, None
    if kind == "huge-sparse-sidecar":
        with sidecar.open("wb") as handle:
            handle.truncate(2 * 1024**3)
        return out, sidecar, None
    raise AssertionError(kind)


# Expected: None = the run completes (the planted thing is replaced); text = exit 1 with this in the error.
PLANTED = {
    "image-link-outside": "symbolic link",
    "image-link-dev-zero-with-sidecar": "symbolic link",
    "image-fifo-with-sidecar": None,
    "sidecar-fifo": None,
    "sidecar-link-outside": "symbolic link",
    "image-is-a-folder": "Is a directory",
    "png-bomb-at-image": None,
    "huge-sparse-sidecar": None,
}


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_things_planted_in_the_output_folder(tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch,
                                             tiny_engines) -> None:
    import idcli.run as run_module

    monkeypatch.setattr(run_module, "default_engine", lambda m, r, a: tiny_engines(m.preset, a))
    shots = tmp_path / "shots.yaml"
    shots.write_text(TEXT_SHOTS)
    out, _planted, outside = _plant(tmp_path, kind)
    tracemalloc.start()  # reading what was planted (plan reads every job's state) stays small
    try:
        with no_hang(60):
            plan = runner.invoke(app, ["plan", str(shots), "--out", str(out), "--device", "cpu", "--json"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    with no_hang(60):
        result = runner.invoke(app, ["render", str(shots), "--out", str(out), "--device", "cpu", "-q"])
    assert "Traceback" not in plan.output + result.output
    assert peak < 50 * 1024 * 1024, f"{peak / 1e6:.0f} MB"
    expected = PLANTED[kind]
    if expected is None:
        assert plan.exit_code == 0 and json.loads(plan.stdout)["jobs"][0]["state"] in ("new", "stale")
        assert result.exit_code == 0, result.output
        record = json.loads((out / "a" / "a_t1.json").read_text())
        with Image.open(out / "a" / "a_t1.png") as im:
            im.load()
        assert record["shot_id"] == "a" and not (out / "a" / "a_t1.png").is_symlink()
    else:
        assert result.exit_code == 5 and expected in result.stderr, result.output
        assert result.stderr.startswith("idcli: error: ") and len(result.stderr.strip().splitlines()) <= 2
    if outside is not None:
        assert outside.read_bytes() == b"precious data", "a file outside the output folder was changed"
    assert_no_temporaries(out)


def test_temporaries_behind_a_link_are_not_deleted(tmp_path: Path) -> None:
    """Clean-up of killed runs' temporaries never follows a linked folder out of the output folder."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / ".notes.png.1.abcd.idcli-tmp"
    victim.write_text("someone else's file that happens to look like a temporary")
    out = tmp_path / "out"
    (out / "a").mkdir(parents=True)
    (out / "evil").symlink_to(elsewhere, target_is_directory=True)
    leftover = out / "a" / ".a_t1.png.1.abcd.idcli-tmp"
    leftover.write_text("a killed run's leftover")
    with OutputStore(out).session():
        pass
    assert victim.exists() and not leftover.exists()


def test_state_of_a_planted_bomb_is_stale_without_decoding_it(tmp_path: Path, write_shotlist) -> None:
    plan, _ = idcli.plan_shotlist(idcli.load_shotlist(write_shotlist(TEXT_SHOTS)), device="cpu")
    job = plan.jobs[0]
    out = tmp_path / "out"
    (out / job.shot_id).mkdir(parents=True)
    (out / job.image_relpath).write_bytes(_png(60_000, 60_000))
    tracemalloc.start()
    try:
        state = OutputStore(out).state(job)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert state.status == "stale" and peak < 10 * 1024 * 1024


def test_commit_refuses_a_linked_image_path(tmp_path: Path, write_shotlist) -> None:
    plan, _ = idcli.plan_shotlist(idcli.load_shotlist(write_shotlist(TEXT_SHOTS)), device="cpu")
    job = plan.jobs[0]
    out, outside = tmp_path / "out", tmp_path / "outside.png"
    outside.write_bytes(b"keep")
    (out / job.shot_id).mkdir(parents=True)
    (out / job.image_relpath).symlink_to(outside)
    store = OutputStore(out)
    assert store.state(job).status == "stale"
    with store.session(), pytest.raises(OutputError, match="is a symbolic link; idcli never writes through links"):
        store.commit(job, b"png", {"job_key": job.key})
    assert outside.read_bytes() == b"keep"


# -- models and adapters -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def saved_models(tmp_path_factory: pytest.TempPathFactory, tiny_engines) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    pipe = tiny_engines("tiny-sd").pipe
    pipe.save_pretrained(root / "safe", safe_serialization=True)
    pipe.save_pretrained(root / "pickled", safe_serialization=False)
    return {"safe": root / "safe", "pickled": root / "pickled"}


class _Evil:
    """Unpickling this runs code, as a malicious checkpoint would."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.marker, "code from a checkpoint ran"))


def _model_shots(tmp_path: Path, folder: Path, allow_pickle: bool = False) -> Path:
    path = tmp_path / "shots.yaml"
    path.write_text(f"version: 1\nproject: models\nmodel: {{preset: sd15, id: {json.dumps(str(folder))}, "
                    f"allow_pickle: {str(allow_pickle).lower()}}}\ndefaults: {{size: 64x64, steps: 2}}\n"
                    "shots:\n  - {id: a, prompt: x}\n")
    return path


def _render_exit(tmp_path: Path, shots: Path) -> Any:
    with no_hang(120):
        return runner.invoke(app, ["render", str(shots), "--out", str(tmp_path / "out"), "--device", "cpu", "-q"])


@pytest.mark.parametrize("damage", ["truncated", "garbage", "header-length", "empty"])
def test_a_corrupt_safetensors_file_in_a_local_model(tmp_path: Path, saved_models: dict[str, Path],
                                                     damage: str) -> None:
    folder = tmp_path / "model"
    shutil.copytree(saved_models["safe"], folder)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes({"truncated": data[: len(data) // 3], "garbage": os.urandom(4096),
                         "header-length": (10**15).to_bytes(8, "little") + data[8:], "empty": b""}[damage])
    result = _render_exit(tmp_path, _model_shots(tmp_path, folder))
    assert result.exit_code == 4, result.output
    assert "Traceback" not in result.output and str(weights) in result.stderr and "damaged" in result.stderr
    assert "allow_pickle" not in result.stderr, "a damaged safetensors file is not a reason to allow pickles"


@pytest.mark.parametrize("where", ["model", "adapter"])
def test_a_malicious_pickle_is_never_executed_even_when_pickles_are_allowed(tmp_path: Path, saved_models,
                                                                            where: str) -> None:
    marker = tmp_path / "PWNED"
    if where == "model":
        folder = tmp_path / "model"
        shutil.copytree(saved_models["pickled"], folder)
        with (folder / "unet" / "diffusion_pytorch_model.bin").open("wb") as handle:
            pickle.dump({"conv_in.weight": _Evil(marker)}, handle)
        # A real process: diffusers logs through a handler that CliRunner's swapped streams would break.
        argv = render_argv(_model_shots(tmp_path, folder, True), tmp_path / "out", "-q", batch_size=None)
        done = subprocess.run([sys.executable, "-m", "idcli", *argv], capture_output=True, text=True, env=cli_env(),
                              timeout=300)
        assert done.returncode == 4 and "Traceback" not in done.stderr, done.stderr
        assert "damaged" in done.stderr and "weights-only" in done.stderr
    else:
        from idcli.engine.build import build_tiny_pipeline
        from idcli.engine.faceid_loading import load_faceid_adapter

        with (tmp_path / "ip-adapter-faceid.bin").open("wb") as handle:
            pickle.dump({"image_proj": {"proj.weight": _Evil(marker)}, "ip_adapter": {}}, handle)
        with pytest.raises(ModelUnavailableError, match="cannot load the FaceID adapter"):
            load_faceid_adapter(build_tiny_pipeline("tiny-sd"), str(tmp_path), "ip-adapter-faceid.bin",
                                allow_pickle=True)
    assert not marker.exists(), "unpickling ran code: checkpoints must load weights-only"


def test_no_code_from_a_model_folder_runs(tmp_path: Path, saved_models: dict[str, Path]) -> None:
    marker = tmp_path / "RAN"
    folder = tmp_path / "model"
    shutil.copytree(saved_models["safe"], folder)
    index = json.loads((folder / "model_index.json").read_text())
    index["unet"] = ["my_unet", "MyUNet"]  # a component class from a module shipped in the folder
    (folder / "model_index.json").write_text(json.dumps(index))
    (folder / "unet" / "my_unet.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\nfrom diffusers import UNet2DConditionModel as MyUNet\n")
    (folder / "pipeline.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    result = _render_exit(tmp_path, _model_shots(tmp_path, folder))
    assert result.exit_code == 4 and "Traceback" not in result.output, result.output
    assert "custom code" in result.stderr
    assert not marker.exists(), "code shipped in a model folder ran"


def test_a_fifo_in_a_model_folder_does_not_block_hashing(tmp_path: Path, saved_models: dict[str, Path]) -> None:
    from idcli.models import resolve_model
    from idcli.shotlist import ModelSpec

    folder = tmp_path / "model"
    shutil.copytree(saved_models["safe"], folder)
    os.mkfifo(folder / "unet" / "extra.safetensors")
    with no_hang():
        identity = resolve_model(ModelSpec(preset="sd15", id=str(folder)), tmp_path, "float32")
    assert identity.source == "local"


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_corrupt_local_adapter_is_a_clear_error(tmp_path: Path, tiny_engines, damage: str) -> None:
    from idcli.engine.build import build_tiny_pipeline
    from idcli.engine.faceid_layout import write_random_faceid_adapter
    from idcli.engine.faceid_loading import load_faceid_adapter

    good = write_random_faceid_adapter(tiny_engines("tiny-sd").pipe.unet, tmp_path / "good.safetensors", seed=1)
    data = good.read_bytes()
    (tmp_path / "bad.safetensors").write_bytes({"truncated": data[:500], "garbage": os.urandom(4096),
                                                "empty": b""}[damage])
    try:
        load_faceid_adapter(build_tiny_pipeline("tiny-sd"), str(tmp_path), "bad.safetensors")
    except ModelUnavailableError as exc:
        assert "bad.safetensors" in str(exc)
        return
    except Exception as exc:
        raise AssertionError(f"{type(exc).__name__} escaped: {exc}") from None
    raise AssertionError("a damaged adapter loaded")
