"""How a take's pixels are deflated is in its record (`png`, docs/provenance.md "PNG encoding"): new takes are
deflated with zlib's Z_RLE strategy at level 1 (the same pixels, files of about level 6's size, a third to a half of
its time), and `idcli reproduce` encodes a take as its record says, so a take encoded before (level 6, no `png` entry)
still reproduces `identical`, byte for byte."""

from __future__ import annotations

import hashlib
import io
import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

import idcli
from idcli.provenance import PNG_CHUNK, PNG_ENCODING, png_chunk, png_chunks
from idcli.record_checks import record_problems
from idcli.reproduce import ReproduceError, reproduce

SHOTS = """\
version: 1
project: png-encoding
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 5.0, sampler: euler, takes: 1}
shots:
  - {id: harbour, prompt: "a harbour at night"}
"""


def _render(write_shotlist: Any, out: Path, engine_factory: Any) -> tuple[Path, Path]:
    report = idcli.render(idcli.load_shotlist(write_shotlist(SHOTS)), out, device="cpu", batch_size=1, qa=False,
                          engine_factory=engine_factory)
    assert report.rendered == 1
    return Path(report.jobs[0].image), Path(report.jobs[0].sidecar)


def _texts(png: bytes) -> list[tuple[bytes, bytes]]:
    return [(kind, payload) for kind, payload in png_chunks(png) if kind in (b"tEXt", b"iTXt")]


def test_a_take_is_deflated_as_its_record_says(write_shotlist: Any, tmp_path: Path, engine_factory: Any) -> None:
    image, sidecar_path = _render(write_shotlist, tmp_path / "out", engine_factory)
    png = image.read_bytes()
    sidecar = json.loads(sidecar_path.read_text("utf-8"))
    with Image.open(io.BytesIO(png)) as read:
        embedded = json.loads(read.info[PNG_CHUNK])
        pixels = np.asarray(read.convert("RGB"))
    assert sidecar["png"] == embedded["png"] == PNG_ENCODING == {"zlib_level": 1, "zlib_strategy": "rle"}
    # The pixel data is Pillow's Z_RLE deflate at level 1 of the same pixels: only the deflate changed.
    again = io.BytesIO()
    Image.fromarray(pixels).save(again, format="PNG", compress_level=1, compress_type=zlib.Z_RLE)
    idat = [payload for kind, payload in png_chunks(png) if kind == b"IDAT"]
    assert b"".join(idat) == b"".join(p for k, p in png_chunks(again.getvalue()) if k == b"IDAT")
    assert not record_problems(sidecar)
    assert record_problems({**sidecar, "png": {"zlib_level": 9, "zlib_strategy": "rle"}})[0].startswith("'png' is")


def test_a_take_encoded_before_the_record_said_how_still_reproduces_identical(
        write_shotlist: Any, tmp_path: Path, engine_factory: Any) -> None:
    image, sidecar_path = _render(write_shotlist, tmp_path / "out", engine_factory)
    png = image.read_bytes()
    # The take as an idcli of before 2026-12-02 wrote it: its record without `png`, deflated at level 6 with Pillow's
    # default strategy, its text chunks in the same order.
    info = PngImagePlugin.PngInfo()
    for kind, payload in _texts(png):
        key, _, value = payload.partition(b"\0")
        if kind == b"tEXt":
            info.add_text(key.decode("latin-1"), value.decode("latin-1"))
        else:
            record = json.loads(value[4:].decode("utf-8"))  # flag, method, empty language and translated keyword
            record.pop("png")
            info.add_itxt(key.decode("latin-1"), json.dumps(record, sort_keys=True, ensure_ascii=False))
    with Image.open(io.BytesIO(png)) as read:
        pixels = np.asarray(read.convert("RGB"))
    old = io.BytesIO()
    Image.fromarray(pixels).save(old, format="PNG", pnginfo=info, compress_level=6)
    assert old.getvalue() != png
    image.write_bytes(old.getvalue())
    sidecar = json.loads(sidecar_path.read_text("utf-8"))
    sidecar.pop("png")
    sidecar["image"]["sha256"] = hashlib.sha256(old.getvalue()).hexdigest()
    sidecar_path.write_text(json.dumps(sidecar), "utf-8")
    result = reproduce(sidecar_path, engine_factory=engine_factory)
    assert result.status == "identical", (result.status, result.notes)


def _with_record(png: bytes, edit: Any) -> bytes:
    """``png`` with its ``idcli`` record passed through ``edit``, the other chunks as they were."""
    out = [png[:8]]
    for kind, payload in png_chunks(png):
        key, _, value = payload.partition(b"\0")
        if kind == b"iTXt" and key == PNG_CHUNK.encode("latin-1"):
            record = edit(json.loads(value[4:].decode("utf-8")))
            payload = key + b"\0" + value[:4] + json.dumps(record, sort_keys=True).encode("utf-8")
        out.append(png_chunk(kind, payload))
    return b"".join(out)


@pytest.mark.parametrize("entry", [{"zlib_level": 99, "zlib_strategy": "rle"}, "rle"])
def test_a_png_entry_edited_in_the_image_alone_is_refused_in_words(write_shotlist: Any, tmp_path: Path,
                                                                   engine_factory: Any, entry: Any) -> None:
    """The encode follows the image's own record (reproduce's step 4), not the sidecar's: a `png` entry edited there,
    the sidecar left as it was, is a ReproduceError naming the file and the field, not Pillow's or a ValueError."""
    image, sidecar_path = _render(write_shotlist, tmp_path / "out", engine_factory)
    image.write_bytes(_with_record(image.read_bytes(), lambda record: {**record, "png": entry}))
    with pytest.raises(ReproduceError, match=r"'png' is .*expected") as refused:
        reproduce(sidecar_path, engine_factory=engine_factory)
    assert str(image) in str(refused.value)
