"""``idcli reproduce`` of a plate take larger than a shot list's ``size:`` allows (docs/plates.md, docs/provenance.md).

A plate take's image, and so its sidecar's ``size``, is the plate's, which may be 8192 pixels a side and 50,000,000
pixels (the plate reader's limits), where a text-to-image size stops at 4096 a side and 4,194,304 pixels. Until
2026-12-02 reproduce checked every record's size against the text-to-image limits, so a 4K (3840x2160) or 8K plate
take, rendered and committed, could never be reproduced: exit 2, ``'size.width' is 7680; expected a whole number
64..4096``.

The plate rendered here is 4100x64: the smallest kind of plate past a side limit (4097 or more wide, and the plate
reader's 64 pixels high), since the model works on the 64-pixel face crop only and the rest of the cost is the PNG.
It is a 16-bit RGB PNG carrying a Display P3 profile, and its two takes are rendered in one batch, so the same
re-render checks that a large plate keeps its profile, its 16-bit reading and its batch. The pixel-budget side of the
check (a plate under 4096 a side but over 4,194,304 pixels) is the same comparison, checked on the record alone.
"""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from colour_profiles import DISPLAY_P3
from PIL import Image
from typer.testing import CliRunner

import idcli
from idcli.cli import app
from idcli.record_checks import record_problems

pytest.importorskip("insightface", exc_type=ImportError)

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 4100, 64  # past the text-to-image 4096 a side; the plate reader's smallest height
SHOTS = """\
version: 1
project: large-plate
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: ddim, takes: 2}
characters:
  mara: {selfies: [selfies/mara_1.jpg], description: a red-haired woman}
shots:
  - id: wide
    prompt: "{mara} before a window"
    plate: plate.png
    plate_faces: [[16, 16, 32, 32]]
"""
runner = CliRunner()


def _png16(rgb16: np.ndarray, profile: bytes) -> bytes:
    """A 16-bit RGB PNG of ``rgb16`` (uint16, height x width x 3) carrying ``profile`` (iCCP): written out here, as
    Pillow writes no 16-bit RGB PNG."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    height, width = rgb16.shape[:2]
    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in rgb16)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
            + chunk(b"iCCP", b"display p3\0\0" + zlib.compress(profile)) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, synthetic_face_models: Path, tiny_engines) -> Path:
    """A project folder (shot list, selfie, plate) and its output folder ``out``: two takes of the 4100x64 plate
    shot, rendered in one batch."""
    folder = tmp_path_factory.mktemp("large-plate") / "project"
    (folder / "selfies").mkdir(parents=True)
    shutil.copy(ROOT / "recipes" / "selfies" / "mara_1.jpg", folder / "selfies")
    # Smooth ramps (cheap to encode) in 16 bits: red and blue across, green down.
    across = np.broadcast_to(np.linspace(0, 65535, WIDTH), (HEIGHT, WIDTH))
    down = np.broadcast_to(np.linspace(0, 30000, HEIGHT)[:, None], (HEIGHT, WIDTH))
    rgb16 = np.stack([across, down, across[:, ::-1]], axis=2).astype(np.uint16)
    (folder / "plate.png").write_bytes(_png16(rgb16, DISPLAY_P3))
    (folder / "shots.yaml").write_text(SHOTS, "utf-8")

    def engines(model: Any, runtime: Any, adapter: Any = None) -> Any:  # the session's tiny engine, built once
        return tiny_engines(model.preset, adapter)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IDCLI_HOME", str(folder.parent / "home"))
        patch.setenv("IDCLI_FACE_MODELS", str(synthetic_face_models))
        patch.setenv("HF_HUB_OFFLINE", "1")
        report = idcli.render(idcli.load_shotlist(folder / "shots.yaml"), folder / "out", device="cpu", batch_size=2,
                              qa=False, engine_factory=engines)
    assert (report.rendered, report.failed) == (2, 0)
    return folder


@pytest.fixture
def home(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The render's IDCLI_HOME: its identity cache, so reproduce need not encode the selfie again."""
    monkeypatch.setenv("IDCLI_HOME", str(project.parent / "home"))


def _sidecar(project: Path, take: int = 1) -> dict:
    return json.loads((project / "out" / "wide" / f"wide_t{take}.json").read_text("utf-8"))


def test_a_plate_take_wider_than_4096_reproduces_identical(project: Path, home: None, engine_factory,
                                                           tmp_path: Path) -> None:
    from idcli.reproduce import reproduce

    record = _sidecar(project)
    assert record["size"] == {"width": WIDTH, "height": HEIGHT} and record["plate"]["working_size"] == 64
    assert record["batch"]["size"] == 2 and "icc_profile_sha256" in record["plate"]
    image = project / "out" / "wide" / "wide_t1.png"
    report = reproduce(image, device="cpu", engine_factory=engine_factory, out_dir=tmp_path / "again")
    # In its batch of two, its 16-bit plate read as the render read it, its profile written again: byte-identical.
    assert report.status == "identical", report
    assert not [note for note in report.notes if "rendered alone" in note], report.notes
    with Image.open(tmp_path / "again" / "wide_t1.png") as again:
        assert again.size == (WIDTH, HEIGHT) and again.info.get("icc_profile") == DISPLAY_P3
    # The command: exit 0, where it was exit 2 ("'size.width' is 4100; expected a whole number 64..4096").
    result = runner.invoke(app, ["reproduce", str(image), "--device", "cpu"])
    assert result.exit_code == 0 and "identical" in result.output, result.output


def test_a_delivered_copy_of_a_large_plate_take_reproduces_from_the_studio_folder(project: Path, home: None,
                                                                                  engine_factory,
                                                                                  tmp_path: Path) -> None:
    from idcli.reproduce import reproduce

    dest = tmp_path / "delivery"
    result = runner.invoke(app, ["deliver", str(project / "out"), str(dest)])
    assert result.exit_code == 0, result.output
    frame = dest / "wide_take1.png"
    report = reproduce(frame, delivered_from=project / "out", device="cpu", engine_factory=engine_factory)
    assert report.status == "identical", report
    assert any("delivery copy of" in note for note in report.notes), report.notes
    # verify takes the take and its delivered copy as they are (their sizes were never checked against size:).
    for folder in (project / "out", dest):
        result = runner.invoke(app, ["verify", str(folder)])
        assert result.exit_code == 0, result.output


def test_a_moved_large_plate_project_finds_its_plate_and_says_where_it_looked_when_gone(
        project: Path, home: None, engine_factory) -> None:
    """The project moved (its plate's recorded abs_path gone): the plate is found beside the shot list; the plate
    gone too, exit 2 naming each place looked in."""
    from idcli.reproduce import reproduce

    moved = project.with_name("moved")
    project.rename(moved)
    try:
        image = moved / "out" / "wide" / "wide_t2.png"
        assert not Path(_sidecar(moved, 2)["plate"]["abs_path"]).exists()
        assert reproduce(image, device="cpu", engine_factory=engine_factory).status == "identical"
        (moved / "plate.png").rename(moved / "plate.kept")
        try:
            result = runner.invoke(app, ["reproduce", str(image), "--device", "cpu"])
        finally:
            (moved / "plate.kept").rename(moved / "plate.png")
    finally:
        moved.rename(project)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "size" not in result.stderr, result.stderr
    assert (f"plate 'plate.png' is missing (looked for {project / 'plate.png'}, {moved / 'plate.png'}, plate.png); "
            "put the plate the image was made from back there") in result.stderr, result.stderr


@pytest.mark.parametrize(("size", "allowed"), [
    ((3840, 2160), True),  # 4K UHD: 8,294,400 pixels, over the text-to-image budget of 4,194,304
    ((7680, 4320), True),  # 8K UHD
    ((2100, 2100), True),  # under 4096 a side, over 4,194,304 pixels
    ((8192, 6103), True),  # the plate reader's largest: 8192 a side, 49,995,776 pixels
    ((8193, 64), False),  # past the plate reader's 8192 a side
    ((8192, 6104), False),  # past its 50,000,000 pixels
    ((63, 64), False),  # under its 64 a side
])
def test_a_plate_takes_size_is_bounded_by_the_plate_reader(project: Path, size: tuple[int, int],
                                                           allowed: bool) -> None:
    record = _sidecar(project)
    record["size"] = {"width": size[0], "height": size[1]}
    problems = [p for p in record_problems(record) if p.startswith("'size")]
    assert (problems == []) is allowed, problems
    if not allowed:
        assert "(a plate take has its plate's size)" in problems[0], problems
        assert "8192" in problems[0] or "50,000,000" in problems[0], problems


def test_a_text_to_image_takes_size_keeps_the_shot_lists_limits(project: Path) -> None:
    record = {k: v for k, v in _sidecar(project).items() if k != "plate"}
    record["size"] = {"width": WIDTH, "height": HEIGHT}
    assert "'size.width' is 4100; expected a whole number 64..4096" in record_problems(record)
    record["size"] = {"width": 2100, "height": 2100}
    assert "expected at most 4,194,304 pixels" in " ".join(record_problems(record))
