"""The engine's behaviour that matters most on a GPU, checked on the CPU: every exit path restores its
per-batch state, out-of-memory in decode never re-denoises, decode chunks are sized from memory."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import idcli
from idcli.engine import Engine
from idcli.engine.memory import decode_chunk_size

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"

MIXED = """\
version: 1
project: gpu-ready
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 4, guidance: 5.0, takes: 2}
characters:
  mara: {selfies: [selfies/mara_1.jpg]}
shots:
  - {id: a_text, prompt: "an empty lighthouse at dusk"}
  - {id: b_dual, prompt: "{mara} on a pier", method: dual-line, method_params: {fusion_start: 0.0}}
  - {id: c_text, prompt: "a harbour at night"}
"""


def _pixels(path: str | os.PathLike[str]) -> np.ndarray:
    return np.asarray(Image.open(path), dtype=int)


def test_out_of_memory_mid_forward_leaves_no_state_behind(write_shotlist, tmp_path, tiny_engines) -> None:
    """An out-of-memory error raised inside a UNet forward of a mixed dual-line batch: the halved retry
    (whose first half has no dual-line job, so it sets no probe of its own) and every later batch render
    the same images as an uninterrupted run."""
    path = write_shotlist(MIXED)
    raised: list[int] = []
    hooks: list[torch.utils.hooks.RemovableHandle] = []
    engines: list[Engine] = []

    def hook(module, args):
        if not raised and args[0].shape[0] >= 8:  # the first forward of the first 4-job batch
            raised.append(args[0].shape[0])
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")

    def factory(model, runtime, adapter):
        engine = tiny_engines("tiny-sd", adapter)
        # In the middle of the UNet: the probe and the rows' strengths are set by then.
        hooks.append(engine.pipe.unet.mid_block.register_forward_pre_hook(hook))
        engines.append(engine)
        return engine

    shots = idcli.load_shotlist(path)
    reference = idcli.render(shots, tmp_path / "reference", device="cpu", batch_size=1,
                             engine_factory=lambda m, r, a: tiny_engines("tiny-sd", a))
    try:
        report = idcli.render(shots, tmp_path / "oom", device="cpu", batch_size=4, engine_factory=factory)
    finally:
        for handle in hooks:
            handle.remove()
    assert raised and len(engines) == 1
    assert report.failed == 0 and report.rendered == 6, [o.error for o in report.jobs if o.error]
    assert report.batch_sizes[0] == 2  # halved once, then the run went on
    for a, b in zip(report.jobs, reference.jobs, strict=True):
        assert np.abs(_pixels(a.image) - _pixels(b.image)).max() <= 1
    assert engines[0].faceid.probe is None


def test_out_of_memory_in_decode_halves_the_chunk_and_never_re_denoises(tiny_engines) -> None:
    from idcli.render_request import RenderRequest

    engine = tiny_engines("tiny-sd")
    requests = [RenderRequest(prompt=f"a lighthouse {i}", negative_prompt="", seed=i, width=64, height=64, steps=2,
                              guidance=5.0, sampler="euler") for i in range(3)]
    expected = [r.pixels for r in engine.render(requests)]
    decode, forwards, sizes = engine.pipe.vae.decode, [], []

    def flaky_decode(latents, *args, **kwargs):
        sizes.append(len(latents))
        if len(latents) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return decode(latents, *args, **kwargs)

    handle = engine.pipe.unet.register_forward_pre_hook(lambda module, args: forwards.append(1))
    engine.pipe.vae.decode = flaky_decode
    try:
        results = engine.render(requests)
    finally:
        del engine.pipe.vae.decode
        handle.remove()
    assert sizes == [3, 2, 1, 1, 1]  # halved (rounding up) until a chunk fits, then the rest at that size
    assert len(forwards) == 2  # one UNet forward per step: nothing was denoised twice
    for got, want in zip(results, expected, strict=True):
        assert np.abs(got.pixels.astype(int) - want.astype(int)).max() <= 1


def test_decode_chunk_is_sized_from_resolution_dtype_and_free_memory() -> None:
    gib = 1024**3
    # SDXL 1024x1024: about 1.6 GB per image in bf16, twice that for the float32 (upcast) VAE.
    assert decode_chunk_size(64, 1024, 1024, 2, 80 * gib) == 42
    assert decode_chunk_size(64, 1024, 1024, 4, 80 * gib) == 21
    assert decode_chunk_size(64, 512, 512, 2, 80 * gib) == 64  # never more than the batch
    assert decode_chunk_size(8, 1024, 1024, 2, 1 * gib) == 1  # at least one image
    assert decode_chunk_size(8, 1024, 1024, 2, 8 * gib) == 4


def test_free_memory_counts_the_allocators_reusable_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    from idcli.engine import memory

    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (10, 100))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 50)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 20)
    assert memory.free_device_memory("cuda:0") == 10 + 50 - 20


def test_probe_stops_after_the_last_fusion_window_closes(tiny_engines, monkeypatch: pytest.MonkeyPatch) -> None:
    """The attention probe runs while a mask can still be used, and not after the last window closes."""
    from idcli.engine import fusion
    from idcli.planning import plan_shotlist

    shots = idcli.loads_shotlist(MIXED.replace("method_params: {fusion_start: 0.0}",
                                               "method_params: {fusion_start: 0.0, fusion_end: 0.5}"),
                                 base_dir=str(RECIPES))
    plan, _runtime = plan_shotlist(shots, device="cpu")
    requests = [j.request for j in plan.jobs if j.shot_id == "b_dual"]
    assert requests
    engine = tiny_engines("tiny-sd", plan.adapter)
    forwards_probed: list[int] = []
    record = fusion.AttentionProbe.record

    def counting_record(self, query, key, scale, level=None):
        forwards_probed.append(1)
        return record(self, query, key, scale, level)

    monkeypatch.setattr(fusion.AttentionProbe, "record", counting_record)
    calls_per_forward = len([name for name in engine.pipe.unet.attn_processors if name.endswith("attn2.processor")])
    engine.render(requests)
    # 4 steps, window [0, 2): two forwards probed, each through every cross-attention layer.
    assert len(forwards_probed) == 2 * calls_per_forward


def test_probe_launches_per_layer_on_the_meta_device() -> None:
    """The probe's kernel launches per probed layer, counted on the published SD1.5 UNet on the meta device:
    consecutive semantic rows are a slice (no gather), so 8 launches a layer instead of 10."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("probe_launches", ROOT / "tools" / "probe_launches.py")
    assert spec and spec.loader
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    plain = tool.count_forward("sd15", 2, torch.float16, "none")
    sliced = tool.count_forward("sd15", 2, torch.float16, "slice")
    gathered = tool.count_forward("sd15", 2, torch.float16, "index_select")
    assert sliced["probed_layers"] == gathered["probed_layers"] > 0
    assert sliced["launches"] - plain["launches"] <= 8 * sliced["probed_layers"]
    assert gathered["launches"] - sliced["launches"] == 2 * sliced["probed_layers"]


# Operations that make the host wait for the device (reading a value back, data-dependent shapes) or copy
# host data to it (a tensor made from Python values, indexing with a Python list).
SYNCING = {"aten._local_scalar_dense.default", "aten.is_nonzero.default", "aten.item.default",
           "aten.nonzero.default", "aten.masked_select.default", "aten.lift_fresh.default",
           "aten.index.Tensor", "aten.repeat_interleave.Tensor", "aten._unique2.default",
           "aten.unique_consecutive.default"}


def test_no_host_sync_inside_the_denoising_loop(tiny_engines, monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted under a dispatch mode on the CPU: no operation of idcli's own code inside the denoising loop
    (from the first UNet forward to the decode) reads a value back, has a data-dependent shape or copies
    host data to the device — for a batch mixing text, single-line and dual-line jobs whose fusion windows
    open and close at different steps, a wide framing (head-only cut) and two characters in one image.

    Attributed by the innermost non-torch frame, so diffusers' scheduler and UNet code is not judged here;
    the engine's loop, masks, fusion and FaceID processors are.
    """
    from loop_watch import own_frame, render_watched
    from torch.utils._python_dispatch import TorchDispatchMode

    import idcli as package
    from idcli.planning import plan_shotlist

    root = str(Path(package.__file__).resolve().parent)

    class SyncCounter(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.hits: list[tuple[int, str, str]] = []
            self.forwards = 0  # the evaluation being run
            self.counting = False

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if self.counting and str(func) in SYNCING:
                frame = own_frame((root,))
                if frame is not None:
                    where = f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}"
                    self.hits.append((self.forwards, str(func), where))
            return func(*args, **(kwargs or {}))

    text = """\
version: 1
project: syncs
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 6, guidance: 5.0, takes: 1}
characters:
  mara: {selfies: [selfies/mara_1.jpg]}
  theo: {selfies: [selfies/theo_1.jpg]}
shots:
  - {id: a, prompt: "an empty lighthouse at dusk"}
  - {id: b, prompt: "{mara} on a pier", method: dual-line, framing: wide}
  - {id: c, prompt: "{theo} in a harbour", method: single}
  - {id: d, prompt: "{theo} and {mara} by a boat", method: dual-line, method_params: {fusion_start: 0.5}}
"""
    plan, _runtime = plan_shotlist(idcli.loads_shotlist(text, base_dir=str(RECIPES)), device="cpu")
    engine = tiny_engines("tiny-sd", plan.adapter)
    counter = SyncCounter()
    # The loop ends with the last scheduler step: what follows (facts, decode) runs once per batch.
    results = render_watched(engine, [job.request for job in plan.jobs], monkeypatch, counter)
    assert counter.forwards == 6 and len(results) == 4
    assert results[3].facts["fusion"]["window"] == [3, 6]  # the windows open at different steps
    assert counter.hits == []

    # Plate crops (issue 12): two plates, three faces, fixed face masks and the known-region blend after
    # every step, in one batch.
    from test_plate_engine import two_plates

    from idcli.engine.plates import start_index

    counter.forwards = 0
    render_watched(engine, two_plates(), monkeypatch, counter)
    assert counter.forwards == 6 - start_index(6, 0.6)
    assert counter.hits == []
