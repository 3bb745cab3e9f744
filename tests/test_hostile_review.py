"""Sidecars tampered with after a render, as they reach `review`, `export` and `select` from outside the
studio: each odd value is shown as unknown or its take skipped with the file named, never an internal
error, and the page never links to a file outside the output folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from review_helpers import cli, render_review_run

import idcli

pytest.importorskip("opentimelineio")
pytest.importorskip("insightface", exc_type=ImportError)
pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory, synthetic_face_models: Path) -> Path:
    return render_review_run(tmp_path_factory.mktemp("hostile-review-run"), synthetic_face_models, only=["sh020"])


@pytest.fixture
def out(rendered: Path, tmp_path: Path) -> Path:
    target = tmp_path / "out"
    shutil.copytree(rendered, target)
    return target



def tamper(out: Path, change: dict) -> dict:
    sidecar = out / "sh020" / "sh020_t1.json"
    record = json.loads(sidecar.read_text("utf-8"))
    for dotted, value in change.items():
        *parents, last = dotted.split(".")
        target = record
        for key in parents:
            target = target.setdefault(key, {})
        target[last] = value
    sidecar.write_text(json.dumps(record), "utf-8")
    return record


@pytest.mark.parametrize("change", [
    {"image.width": "abc"}, {"image.height": float("nan")}, {"image.height": 10**400}, {"image.width": -3},
    {"seed": 10**30}, {"take": 10**20}, {"take": 2},
], ids=["width-text", "height-nan", "height-huge", "width-negative", "seed-huge", "take-huge", "take-of-another-file"])
def test_odd_numbers_in_a_sidecar_are_no_internal_error(out: Path, tmp_path: Path, change: dict) -> None:
    tamper(out, change)
    results = {}
    for args in (["review", out], ["export", out, "--otio", tmp_path / "cut.otio"], ["evaluate", out]):
        result = results[args[0]] = cli(*args)
        assert result.exit_code in (0, 2), (args[0], result.output)
        assert "internal error" not in result.output
    page = (out / "review" / "index.html").read_text("utf-8")
    if "take" in change:  # the take number no longer names its file: skipped, said by path
        assert results["review"].exit_code == 2
        assert "sh020/sh020_t1.json: its take number" in results["review"].stderr
        assert 'id="take-sh020_t1"' not in page and 'id="take-sh020_t2"' in page
    else:  # the take is kept; the odd value is shown as unknown
        assert results["review"].exit_code == 0 and 'id="take-sh020_t1"' in page
        assert (tmp_path / "cut.otio").is_file()


@pytest.mark.parametrize("strip", ["../../../../etc/passwd", "/etc/passwd", "sh020/../../outside.png"])
def test_a_mask_strip_outside_the_output_folder_is_never_linked(out: Path, strip: str) -> None:
    (out.parent / "outside.png").write_bytes((out / "sh020" / "sh020_t1.png").read_bytes())
    tamper(out, {"fusion.mask_strip": strip})
    assert cli("review", out).exit_code == 0
    page = (out / "review" / "index.html").read_text("utf-8")
    assert 'class="strip"' not in page and "passwd" not in page and "outside.png" not in page


def test_a_deeply_nested_selects_file_is_damaged_not_a_crash(out: Path, tmp_path: Path) -> None:
    (out / "selects.json").write_text("[" * 100_000 + "]" * 100_000, "utf-8")
    for args in (["review", out], ["export", out, "--otio", tmp_path / "cut.otio"], ["evaluate", out]):
        result = cli(*args)
        assert result.exit_code == 2 and "selects.json: damaged" in result.stderr, (args[0], result.output)
    result = cli("select", out, "sh020=1")
    assert result.exit_code == 2 and "selects.json: damaged" in result.output


def _manifest(out: Path, **change) -> None:
    path = out / ".idcli" / "shotlist.jsonl"
    record = json.loads(path.read_text("utf-8").splitlines()[-1])
    path.write_text(json.dumps({**record, **change}) + "\n", "utf-8")


@pytest.mark.parametrize("duration", [1e308, -5.0, 0.0, float("nan"), float("inf")])
def test_a_run_manifest_with_an_impossible_duration_is_damaged(out: Path, tmp_path: Path, duration: float) -> None:
    _manifest(out, shots=[{"id": "sh020", "takes": 2, "duration": duration}])
    result = cli("export", out, "--otio", tmp_path / "cut.otio")
    assert result.exit_code == 2 and "shotlist.jsonl: the shot list record is damaged" in result.output, result.output
    assert not (tmp_path / "cut.otio").exists()


def test_a_run_manifest_with_odd_takes_entries_is_no_internal_error(out: Path) -> None:
    _manifest(out, takes=[[{"a": 1}, 1], [["x"], 2], "x", [None], ["sh020", 1], ["sh020", 2]])
    result = cli("select", out, "sh020=2")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "selects.json").read_text("utf-8"))["selects"]["sh020"]["take"] == 2


@pytest.mark.parametrize("change", [
    {"identity": "x"}, {"identity": ["x"]}, {"identity": [{"name": 5}]}, {"plate": {"faces": "x"}},
    {"plate": {"faces": [{"character": "mara", "box": "1234"}]}}, {"plate": {"faces": [{"character": "mara",
                                                                                       "box": [1, 2, 3]}]}},
], ids=["identity-text", "identity-item-text", "identity-name-number", "plate-faces-text", "plate-box-text",
        "plate-box-three"])
def test_qa_reports_a_tampered_identity_or_plate_block_and_leaves_the_sidecar(out: Path, change: dict) -> None:
    tamper(out, change)
    sidecar = out / "sh020" / "sh020_t1.json"
    before = sidecar.read_bytes()
    result = cli("qa", out)
    assert result.exit_code == 2, result.output
    assert "internal error" not in result.output
    assert "sh020/sh020_t1.png: the sidecar's" in result.stderr and "damaged" in result.stderr
    assert sidecar.read_bytes() == before  # left alone; the other take was checked
    assert "1 image checked" in result.stdout


def test_a_shot_folder_linked_outside_the_output_folder_is_not_read(out: Path, tmp_path: Path) -> None:
    # a shot folder replaced by a link to a folder elsewhere holding complete takes: render refuses such a
    # folder; the review commands must not show (nor export) what lies outside either
    from idcli.results import scan_results

    elsewhere = tmp_path / "elsewhere"
    shutil.move(out / "sh020", elsewhere)
    (out / "sh020").symlink_to(elsewhere, target_is_directory=True)
    scan = scan_results(out)
    assert scan.records == []
    assert "sh020/sh020_t1.json: its folder sh020 is a symbolic link; idcli reads no take through one" in scan.problems
    assert list(idcli.read_results(out)) == []
    for args in (["review", out], ["export", out, "--otio", tmp_path / "cut.otio"]):
        result = cli(*args)
        assert result.exit_code == 2 and "no committed renders" in result.output, result.output
    assert not (tmp_path / "cut.otio").exists()


def _png_bomb(side: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    rows = b"".join(packer.compress(b"\x00" * (side + 1)) for _ in range(side)) + packer.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


@pytest.mark.parametrize("planted", ["bomb", "truncated", "huge-jpeg"])
def test_a_planted_thumbnail_is_made_again_not_decoded(out: Path, planted: str) -> None:
    # thumbnails are named by the image's sha256, which anyone holding the folder can compute: a file planted
    # under that name was trusted as made, and the contact sheet decoded it (a 30000² bomb: internal error)
    import io

    from PIL import Image

    assert cli("review", out).exit_code == 0
    thumbs = sorted((out / "review" / "thumbs").iterdir())
    for thumb in thumbs:
        if planted == "bomb":
            thumb.write_bytes(_png_bomb(30_000))
        elif planted == "truncated":
            thumb.write_bytes(thumb.read_bytes()[:200])
        else:
            buffer = io.BytesIO()
            Image.new("RGB", (4000, 3000), (255, 0, 0)).save(buffer, format="JPEG")
            thumb.write_bytes(buffer.getvalue())
    result = cli("review", out)
    assert result.exit_code == 0 and "internal error" not in result.output, result.output
    assert f"({len(thumbs)} new thumbnails)" in result.stdout
    for thumb in thumbs:
        with Image.open(thumb) as image:
            assert image.format == "JPEG" and image.width <= 384
