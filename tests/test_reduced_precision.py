"""Every engine path in bfloat16 and float16, on the CPU with the tiny presets: what an H200 run (bf16 by default,
fp16 on request) would meet first. Text-only, single-line, dual-line, two characters in one image (masks and their
exclusivity), a plate (crops, the known-region blend, the composite), FaceID (with its LoRA) and FaceID-Plus v2,
each sampler; ``--compile`` through torch's eager and aot_eager backends.

Each image must be finite and close to the float32 image of the same job, and no matrix product or convolution
inside a UNet forward may run in float32 (a silent upcast) but the attention probe's, which computes its maps in
float32 on purpose (engine/fusion.py). The CPU runs every operation these paths use in float16 and bfloat16 with
torch 2.13; CUDA has kernels for all of them too (docs/performance.md, "Rehearsing the H200 run").
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import idcli
from idcli.engine import Engine
from idcli.planning import plan_shotlist
from idcli.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"

SHOTS = """\
version: 1
project: reduced-precision
model: {{preset: {preset}{adapter}}}
defaults: {{size: 64x64, steps: 3, guidance: 4.0, sampler: {sampler}, takes: 1}}
characters:
  mara: {{selfies: [selfies/mara_1.jpg], description: a red-haired woman}}
  theo: {{selfies: [selfies/theo_1.jpg], description: a young man}}
shots:
  - {{id: text, prompt: "an empty street at night"}}
  - {{id: single, prompt: "{{mara}} on a pier", method: single}}
  - {{id: dual, prompt: "{{mara}} on a pier", method: dual-line, method_params: {{fusion_start: 0.0}}}}
  - {{id: two, prompt: "{{mara}} and {{theo}} at a table", method: dual-line, method_params: {{fusion_start: 0.0}}}}
  - {{id: plate, prompt: "{{mara}} and {{theo}} before a window", plate: plate.png}}
"""
ADAPTERS = {"faceid": "", "faceid-plusv2": ", adapter: {variant: faceid-plusv2}"}
# Matrix products and convolutions: where a float32 operand would mean a silent upcast of the UNet's work.
HEAVY = {"aten.linear.default", "aten.conv2d.default", "aten.matmul.default",
         "aten.scaled_dot_product_attention.default",
         "aten.mm.default", "aten.bmm.default", "aten.addmm.default", "aten.convolution.default",
         "aten._scaled_dot_product_flash_attention_for_cpu.default", "aten.baddbmm.default"}
FUSION = str(ROOT / "idcli" / "engine" / "fusion.py")

# (preset, adapter, sampler): the first runs in every test run; the rest with -m slow (each ~10 s a dtype).
PATHS = [pytest.param("tiny-sd", "faceid", "midpoint", id="sd-faceid-midpoint"),
         pytest.param("tiny-sd", "faceid-plusv2", "ddim", id="sd-plusv2-ddim", marks=pytest.mark.slow),
         pytest.param("tiny-sd", "faceid", "heun", id="sd-faceid-heun", marks=pytest.mark.slow),
         pytest.param("tiny-sdxl", "faceid", "euler", id="sdxl-faceid-euler", marks=pytest.mark.slow),
         pytest.param("tiny-sdxl", "faceid-plusv2", "dpmpp-2m", id="sdxl-plusv2-dpmpp", marks=pytest.mark.slow)]


class UpcastCounter(TorchDispatchMode):
    """Heavy operations with a float32 result inside UNet forwards, by the innermost non-torch frame."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.heavy = 0
        self.upcast: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if self.inside and str(func) in HEAVY:
            self.heavy += 1
            if isinstance(out, torch.Tensor) and out.dtype == torch.float32:
                frame = sys._getframe(1)
                while frame is not None and "/torch/" in frame.f_code.co_filename:
                    frame = frame.f_back
                where = "?" if frame is None else f"{frame.f_code.co_filename}:{frame.f_lineno}"
                if not where.startswith(FUSION):
                    self.upcast.append(f"{func} at {where}")
        return out


def _plan(tmp_path: Path, preset: str, adapter: str, sampler: str, dtype: str):
    shutil.copytree(RECIPES / "selfies", tmp_path / "selfies", dirs_exist_ok=True)
    shutil.copy(RECIPES / "plates" / "two_people.png", tmp_path / "plate.png")
    text = SHOTS.format(preset=preset, adapter=ADAPTERS[adapter], sampler=sampler)
    plan, _runtime = plan_shotlist(idcli.loads_shotlist(text, base_dir=str(tmp_path)), device="cpu", dtype=dtype)
    return plan


@pytest.mark.parametrize(("preset", "adapter", "sampler"), PATHS)
def test_every_path_renders_in_reduced_precision(tmp_path: Path, preset: str, adapter: str, sampler: str) -> None:
    reference_plan = _plan(tmp_path, preset, adapter, sampler, "float32")
    reference = Engine(reference_plan.model, Runtime("cpu", "float32"), reference_plan.adapter)
    expected = {job.shot_id: reference.render([job.request])[0].image for job in reference_plan.jobs}
    for dtype in ("bfloat16", "float16"):
        plan = _plan(tmp_path, preset, adapter, sampler, dtype)
        engine = Engine(plan.model, Runtime("cpu", dtype), plan.adapter)
        assert engine.pipe.unet.dtype == getattr(torch, dtype)
        counter = UpcastCounter()

        def enter(module, args, counter=counter):
            counter.inside = True

        def leave(module, args, output, counter=counter):
            counter.inside = False

        hooks = [engine.pipe.unet.register_forward_pre_hook(enter), engine.pipe.unet.register_forward_hook(leave)]
        try:
            with counter:
                results = {job.shot_id: engine.render([job.request])[0] for job in plan.jobs}
        finally:
            for hook in hooks:
                hook.remove()
        assert set(results) == {"text", "single", "dual", "two", "plate"}
        assert results["two"].facts["fusion"]["characters"][1]["name"] == "theo"  # two masks, made exclusive
        assert len(results["plate"].facts["plate"]["faces"]) == 2
        for shot, result in results.items():
            image = result.image
            assert np.isfinite(image).all(), (dtype, shot)
            assert image.std() > 0.02, (dtype, shot)  # not a flat (black, grey) image
            # Half precision moves a tiny random model's image a little, not into another image.
            assert np.abs(image - expected[shot]).mean() < 0.03, (dtype, shot)
        assert counter.heavy > 0
        assert counter.upcast == [], (dtype, counter.upcast[:5])


@pytest.mark.slow  # tracing a UNet per dtype and backend: about a minute each (aot_eager three) on 2 cores
@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_compile_in_reduced_precision(tmp_path: Path, dtype: str, backend: str) -> None:
    """``--compile`` in half precision: every batch kind through one graph per probe state, the pixels of the
    uncompiled engine (the eager backend runs the traced ops as they are; aot_eager decomposes some, so its
    sums may round differently), and no fallback."""
    from idcli.engine.compiled import compile_unet

    plan = _plan(tmp_path, "tiny-sd", "faceid", "ddim", dtype)
    engine = Engine(plan.model, Runtime("cpu", dtype), plan.adapter)
    jobs = {job.shot_id: job.request for job in plan.jobs}
    expected = {shot: engine.render([r])[0].pixels for shot, r in jobs.items()}
    torch._dynamo.reset()
    engine.compiled = compile_unet(engine.pipe.unet, backend)
    try:
        got = {shot: engine.render([r])[0] for shot, r in jobs.items()}
        assert engine.compiled.fallback is None
    finally:
        del engine.pipe.unet.forward
        engine.compiled = None
        torch._dynamo.reset()
    for shot, result in got.items():
        assert "compile_fallback" not in result.facts
        difference = np.abs(result.pixels.astype(int) - expected[shot].astype(int))
        if backend == "eager":
            assert difference.max() == 0, shot
        else:
            assert difference.mean() < 1.0 and difference.max() <= 16, (shot, difference.mean(), difference.max())
