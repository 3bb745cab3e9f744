"""`idcli reproduce` decodes with the take's recorded VAE decode chunk (`executor.decode_chunk`, docs/provenance.md).

A render's decode chunk follows the free memory on a GPU (halved on out of memory), and a chunk of another size moves
some decoded values by one 8-bit level (tests/test_decode_chunk_record.py). Reproduce decoded as its own device
allowed, so a take decoded image by image and reproduced with the whole batch in one call was reported `different`
by 1/255. Here the tiny VAE is made short of memory as a GPU would be (a decode of more than one image raises torch's
out-of-memory error), on a CPU, where the chunk otherwise is the whole batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

import idcli
from idcli.cli import app
from idcli.reproduce import ReproduceError, reproduce

# 128x128: each of the three takes decoded alone differs from its batch's decode by one level at some pixels
# (at 64x64 only the first did), so the test does not hang on one take's luck.
SHOTS = """\
version: 1
project: reproduce-chunk
model: {preset: tiny-sd}
defaults: {size: 128x128, steps: 2, guidance: 5.0, sampler: euler, takes: 3}
shots:
  - {id: harbour, prompt: "a harbour at night"}
"""


@contextmanager
def vae_room(engine: Any, room: Any, calls: list[int] | None = None) -> Iterator[None]:
    """The engine's VAE out of memory for a decode of more than ``room(calls made so far, this one included)``
    images, as a GPU with little free memory; ``calls`` gets the size of every call made."""
    decode = engine.pipe.vae.decode
    made = calls if calls is not None else []

    def short_of_memory(latents: Any, *args: Any, **kwargs: Any) -> Any:
        made.append(len(latents))
        if len(latents) > room(len(made)):
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return decode(latents, *args, **kwargs)

    engine.pipe.vae.decode = short_of_memory
    try:
        yield
    finally:
        del engine.pipe.vae.decode


def room_for_one_image(engine: Any) -> Any:
    """The engine's VAE out of memory for a decode of more than one image."""
    return vae_room(engine, lambda made: 1)


def _render(write_shotlist: Any, out: Path, engine: Any) -> list[Path]:
    result = idcli.render(idcli.load_shotlist(write_shotlist(SHOTS)), out, device="cpu", batch_size=3, qa=False,
                          engine_factory=lambda m, r, a: engine)
    assert result.rendered == 3
    return sorted(out.glob("harbour/harbour_t*.json"))


def test_a_take_decoded_image_by_image_reproduces_identical(write_shotlist: Any, tmp_path: Path,
                                                            tiny_engines: Any) -> None:
    """Failed before 2026-12-02 (reproduce-chunk): reproduce decoded the batch of three in one call, and every take
    was `different`, largest difference 1/255."""
    engine = tiny_engines("tiny-sd")
    with room_for_one_image(engine):
        sidecars = _render(write_shotlist, tmp_path / "out", engine)
    assert [json.loads(p.read_text("utf-8"))["executor"]["decode_chunk"] for p in sidecars] == [1, 1, 1]
    for sidecar in sidecars:
        report = reproduce(sidecar, engine_factory=lambda m, r, a: engine)
        assert report.status == "identical", (sidecar.name, report.max_pixel_difference, report.notes)
        assert report.decode_chunk == report.recorded_decode_chunk == 1
        assert report.as_dict()["decode_chunk"] == 1
    # The engine is as it was: a render after it decodes as the device allows again (the whole batch on a CPU).
    assert engine.codec.fixed_chunk is None
    cli = CliRunner().invoke(app, ["reproduce", str(sidecars[0])])
    assert cli.exit_code == 0, cli.output
    assert "harbour_t1.png: identical" in cli.output
    assert "VAE decode: 1 image per call (as recorded)" in cli.output


def memory_shrinking_after_one_call(engine: Any, calls: list[int]) -> Any:
    """The engine's VAE out of memory for the whole batch, then room for two images in one call, then (another
    process took memory mid-decode) for one: a GPU's free memory shrinking while a batch decodes."""
    return vae_room(engine, lambda made: 2 if made <= 2 else 1, calls)


def test_a_batch_whose_memory_shrank_mid_decode_reproduces_every_take_identical(write_shotlist: Any, tmp_path: Path,
                                                                                tiny_engines: Any) -> None:
    """Failed before 2026-12-03: out of memory after a decode call had succeeded kept the images that call decoded (two
    per call) and recorded the smaller chunk that decoded the rest (one), so reproduce, decoding in the recorded chunk,
    decoded the first takes otherwise than their render: `different` by 1/255. The batch is now decoded again from its
    first image at the smaller chunk: every take decoded as its record says."""
    engine = tiny_engines("tiny-sd")
    calls: list[int] = []
    out = tmp_path / "out"
    with memory_shrinking_after_one_call(engine, calls):
        result = idcli.render(idcli.load_shotlist(write_shotlist(SHOTS.replace("takes: 3", "takes: 4"))), out,
                              device="cpu", batch_size=4, qa=False, engine_factory=lambda m, r, a: engine)
    assert result.rendered == 4
    # 4 refused; 2 decoded takes 1-2; 2 (takes 3-4) refused: memory shrank; then all four one by one
    assert calls == [4, 2, 2, 1, 1, 1, 1], calls
    sidecars = sorted(out.glob("harbour/harbour_t*.json"))
    assert [json.loads(p.read_text("utf-8"))["executor"]["decode_chunk"] for p in sidecars] == [1, 1, 1, 1]
    for sidecar in sidecars:
        report = reproduce(sidecar, engine_factory=lambda m, r, a: engine)
        assert report.status == "identical", (sidecar.name, report.max_pixel_difference, report.notes)


def test_out_of_memory_at_the_recorded_chunk_is_said_not_decoded_smaller(write_shotlist: Any, tmp_path: Path,
                                                                         tiny_engines: Any) -> None:
    """A machine with less free memory than the render's: the decode is not halved behind the verdict's back (before,
    it was, and the take came out `different` with nothing saying why); nothing is written to ``--out``."""
    engine = tiny_engines("tiny-sd")
    sidecars = _render(write_shotlist, tmp_path / "out", engine)
    assert json.loads(sidecars[0].read_text("utf-8"))["executor"]["decode_chunk"] == 3
    again = tmp_path / "again"
    with room_for_one_image(engine), pytest.raises(ReproduceError) as raised:
        reproduce(sidecars[0], out_dir=again, engine_factory=lambda m, r, a: engine)
    message = str(raised.value)
    assert raised.value.exit_code == 2 and "harbour_t1.png: out of memory on cpu decoding 3 images per VAE call" \
        in message, message
    assert "executor.decode_chunk is 3" in message and "Free the device's memory" in message
    assert not again.exists()
    assert engine.codec.fixed_chunk is None
    assert reproduce(sidecars[0], engine_factory=lambda m, r, a: engine).identical  # with the memory back


def test_a_record_without_a_decode_chunk_reproduces_as_before(write_shotlist: Any, tmp_path: Path,
                                                              tiny_engines: Any) -> None:
    """A take from before decode chunks were recorded: decoded as the device allows (on a CPU the whole batch, as its
    render did), and the report says which chunk it used."""
    engine = tiny_engines("tiny-sd")
    sidecars = _render(write_shotlist, tmp_path / "out", engine)
    for path in sidecars:
        record = json.loads(path.read_text("utf-8"))
        del record["executor"]["decode_chunk"]
        path.write_text(json.dumps(record), "utf-8")
    report = reproduce(sidecars[1], engine_factory=lambda m, r, a: engine)
    assert report.identical and report.decode_chunk == 3 and report.recorded_decode_chunk is None
    cli = CliRunner().invoke(app, ["reproduce", str(sidecars[1])])
    assert cli.exit_code == 0, cli.output
    assert "VAE decode: 3 images per call (as this device allows: the record names none)" in cli.output


@pytest.mark.parametrize("value", [0, -1, "3", 2.5, True, 10**7])
def test_a_decode_chunk_that_is_no_count_is_refused(write_shotlist: Any, tmp_path: Path, tiny_engines: Any,
                                                    value: Any) -> None:
    engine = tiny_engines("tiny-sd")
    out = tmp_path / "out"
    idcli.render(idcli.load_shotlist(write_shotlist(SHOTS.replace("128x128", "64x64").replace("takes: 3", "takes: 1"))),
                 out, device="cpu", qa=False, engine_factory=lambda m, r, a: engine)
    path = out / "harbour" / "harbour_t1.json"
    record = json.loads(path.read_text("utf-8"))
    record["executor"]["decode_chunk"] = value
    path.write_text(json.dumps(record), "utf-8")
    with pytest.raises(ReproduceError, match=r"'executor\.decode_chunk' is .*expected a whole number 1\.\.1000000"):
        reproduce(path, engine_factory=lambda m, r, a: engine)
