"""Issue 18, part A, "Tests that guard the claims": one fast test per deliberate bug that once broke a
stated property and still passed the whole suite. Each was checked to fail with its bug injected."""

from __future__ import annotations

import types

import numpy as np
import pytest
from cli_helpers import plan_on_cpu

pytest.importorskip("insightface", exc_type=ImportError)

SINGLE = """\
version: 1
project: guards
model: {{preset: tiny-sd}}
defaults: {{size: 64x64, steps: 3, guidance: 4.0, sampler: ddim, takes: 1, method: single}}
characters:
  mara: {{selfies: [selfies/mara_1.jpg], description: a red-haired woman}}
  theo: {{selfies: [{theo_selfie}], description: a young man}}
shots:
  - {{id: m, prompt: "{{mara}} on a wet street at night"}}
  - {{id: t, prompt: "{{theo}} waits in a bar"}}
  - {{id: mt, prompt: "{{mara}} and {{theo}} at a table"}}
  - {{id: plain, prompt: "an empty harbour"}}
"""


def test_guard_single_method_identity_rows_come_from_their_own_job(write_shotlist, tiny_engines) -> None:
    # Batch isolation for method: single (dual-line has its own test): each image of a batch carries its own
    # job's identity, so batched equals alone, whatever the order.
    plan = plan_on_cpu(write_shotlist(SINGLE.format(theo_selfie="selfies/theo_1.jpg")))
    engine = tiny_engines("tiny-sd", plan.adapter)
    jobs = {j.shot_id: j for j in plan.jobs}
    assert jobs["m"].request.method == jobs["t"].request.method == "single"
    requests = [jobs[s].request for s in ("plain", "t", "m")]
    together = engine.render(requests)
    for request, result in zip(requests, together, strict=True):
        alone = engine.render([request])[0]
        assert np.abs(result.image - alone.image).max() < 1e-5, request.prompt


def test_guard_key_ignores_a_non_conditioning_character(write_shotlist) -> None:
    # "A shot re-renders exactly when its inputs change": with method single only the first named character
    # conditions the image, so changing the second one's selfies leaves the shot's key alone.
    before = {j.shot_id: j.key for j in plan_on_cpu(write_shotlist(SINGLE.format(
        theo_selfie="selfies/theo_1.jpg"), "a.yaml")).jobs}
    after = {j.shot_id: j.key for j in plan_on_cpu(write_shotlist(SINGLE.format(
        theo_selfie="selfies/theo_2.jpg"), "b.yaml")).jobs}
    assert after["t"] != before["t"]  # theo conditions t: a new selfie, a new image
    assert after["mt"] == before["mt"]  # mara conditions mt; theo is only named there
    assert after["m"] == before["m"] and after["plain"] == before["plain"]


def test_guard_save_masks_strip_shows_the_mask_over_the_preview() -> None:
    from io import BytesIO

    from PIL import Image

    from idcli.masks import OVERLAY, mask_strip_png

    preview = np.full((32, 32, 3), 0.5, dtype=np.float32)
    mask = np.zeros((8, 8), dtype=np.float32)
    mask[:, 4:] = 1.0  # the right half is the character
    png = mask_strip_png([{"step": 0, "fused": True, "preview": preview, "mask": mask}], evaluations=4)
    strip = np.asarray(Image.open(BytesIO(png)).convert("RGB"), dtype=np.int16)
    inside, outside = strip[200:250, 200:250], strip[200:250, 10:60]  # below the caption
    assert np.abs(outside - 128).max() <= 1  # the preview as it is where the mask is 0
    expected = np.round(128 * 0.4 + np.array(OVERLAY) * 0.6)
    assert np.abs(inside - expected).max() <= 2  # red laid over it where the mask is 1


def _tiny_unet():
    from diffusers import UNet2DConditionModel

    from idcli.engine.private_rng import private_generator

    with private_generator(0):
        return UNet2DConditionModel(
            sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=12, attention_head_dim=4, norm_num_groups=4).eval()


def _independent_flops(unet, sample, t, text) -> int:
    """2 FLOPs per multiply-add of every convolution, linear layer and attention product, counted from
    their shapes by hooks (no flop_counter)."""
    import torch
    import torch.nn.functional as F

    total = 0

    def conv(module, inputs, output) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += 2 * output.numel() * (module.in_channels // module.groups) * kh * kw

    def linear(module, inputs, output) -> None:
        nonlocal total
        total += 2 * output.numel() * module.in_features

    original = F.scaled_dot_product_attention

    def attention(query, key, value, *args, **kwargs):
        nonlocal total
        b, h, s, d = query.shape
        total += 2 * b * h * s * key.shape[2] * d + 2 * b * h * s * key.shape[2] * value.shape[3]
        return original(query, key, value, *args, **kwargs)

    hooks = [m.register_forward_hook(conv if isinstance(m, torch.nn.Conv2d) else linear)
             for m in unet.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    F.scaled_dot_product_attention = attention
    try:
        with torch.inference_mode():
            unet(sample, t, encoder_hidden_states=text)
    finally:
        F.scaled_dot_product_attention = original
        for hook in hooks:
            hook.remove()
    return total


def test_guard_unet_flop_count_matches_an_independent_count() -> None:
    import torch

    from idcli.bench.measure import unet_flops_per_row

    unet = _tiny_unet()
    rows = 3
    sample = torch.randn(rows, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    text = torch.randn(rows, 5, 12, generator=torch.Generator().manual_seed(2))
    t = torch.tensor(10)
    counted = unet_flops_per_row(unet, ((sample, t), {"encoder_hidden_states": text}))
    expected = _independent_flops(unet, sample, t, text) / rows
    assert counted == pytest.approx(expected, rel=1e-9)


def test_guard_matmul_ceiling_counts_two_flops_per_multiply_add(monkeypatch: pytest.MonkeyPatch) -> None:
    # A clock that moves one second per reading: each timed sample lasts exactly one second, so its rate is
    # the FLOPs it counted: 2 n^3 per n x n product (the CPU's 3 products per sample).
    import idcli.bench.measure as measure

    ticks = iter(range(10**6))
    monkeypatch.setattr(measure, "time", types.SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    ceiling = measure.matmul_ceiling("cpu", __import__("torch").float32, lambda: None)
    assert ceiling.n == 1024
    assert ceiling.tflops == pytest.approx(2 * 1024**3 * 3 / 1e12)
