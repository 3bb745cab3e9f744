"""The VAE decode's chunk (images per decode call, engine/vae_codec.py: sized from free memory on a GPU, halved on out
of memory) is in each take's sidecar, `executor.decode_chunk` (docs/provenance.md, docs/file-formats.md), because it
is not neutral: decoding an image alone rather than with its batch can move a value by one 8-bit level."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

import idcli

TEXT_ONLY = """\
version: 1
project: decode-chunk
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 5.0, sampler: euler, takes: 3}
shots:
  - {id: harbour, prompt: "a harbour at night"}
"""


def _chunks(out: Path) -> list[Any]:
    return [json.loads(path.read_text("utf-8"))["executor"].get("decode_chunk")
            for path in sorted(out.glob("harbour/harbour_t*.json"))]


def test_each_sidecar_records_its_batchs_decode_chunk(write_shotlist: Any, tmp_path: Path, tiny_engines: Any) -> None:
    shots = idcli.load_shotlist(write_shotlist(TEXT_ONLY))
    engine = tiny_engines("tiny-sd")
    whole = idcli.render(shots, tmp_path / "whole", device="cpu", batch_size=3, qa=False,
                         engine_factory=lambda m, r, a: engine)
    assert whole.rendered == 3
    assert _chunks(tmp_path / "whole") == [3, 3, 3]  # on a CPU the whole batch is one decode call

    decode = engine.pipe.vae.decode

    def short_of_memory(latents: Any, *args: Any, **kwargs: Any) -> Any:  # as a GPU with room for one image
        if len(latents) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return decode(latents, *args, **kwargs)

    engine.pipe.vae.decode = short_of_memory
    try:
        halved = idcli.render(shots, tmp_path / "halved", device="cpu", batch_size=3, qa=False,
                              engine_factory=lambda m, r, a: engine)
    finally:
        del engine.pipe.vae.decode
    assert halved.rendered == 3
    assert _chunks(tmp_path / "halved") == [1, 1, 1]
    sidecar = json.loads((tmp_path / "halved" / "harbour" / "harbour_t1.json").read_text("utf-8"))
    assert sidecar["batch"]["size"] == 3  # the UNet batch is unchanged; only the decode ran image by image


def test_a_decode_chunk_moves_a_decoded_value_by_one_level_at_most(tiny_engines: Any) -> None:
    codec = tiny_engines("tiny-sd").codec
    generator = torch.Generator().manual_seed(7)
    for latent_side in (8, 16):
        latents = torch.randn((6, 4, latent_side, latent_side), generator=generator)
        with torch.inference_mode():
            whole = np.stack(codec.decode(latents))
            again = np.stack(codec.decode(latents))
            assert np.array_equal(whole, again)  # the same chunk: the same values
            for chunk in (1, 2, 4):
                parts = np.stack([image for start in range(0, 6, chunk)
                                  for image in codec.decode(latents[start:start + chunk])])
                levels = np.abs((parts * 255).round() - (whole * 255).round())
                assert levels.max() <= 1, (latent_side, chunk, levels.max())
