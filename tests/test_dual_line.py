"""Dual-line inference with identity-adaptive fusion (docs/method.md), on random weights.

The properties hold whatever the weights: the fusion is exact at mask 0 and 1, per-sample, and
local to the mask.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import plan_on_cpu
from typer.testing import CliRunner

import idcli
from idcli.cli import app
from idcli.errors import ShotListError
from idcli.method import FusionParams, key_params, resolve_fusion, with_framing

pytest.importorskip("insightface", exc_type=ImportError)

SHOTS = """\
version: 1
project: dual-line-test
model: {preset: tiny-sd}
defaults: {size: 128x128, steps: 6, guidance: 4.0, sampler: ddim, takes: 1}
characters:
  mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg], description: a red-haired woman}
  theo: {selfies: [selfies/theo_1.jpg, selfies/theo_2.jpg], description: a young man}
shots:
  - {id: m_dual, prompt: "{mara} walks along a wet street at night, neon signs"}
  - {id: m_single, prompt: "{mara} walks along a wet street at night, neon signs", method: single}
  - {id: t_dual, prompt: "{theo} waits in a bar", framing: wide, method_params: {fusion_start: 0.5}}
  - {id: text, prompt: "an empty wet street at night"}
"""


@pytest.fixture
def planned(shared_plan):
    """SHOTS planned once for the module's tests, which read it (conftest.shared_plan)."""
    return shared_plan(SHOTS)


@pytest.fixture
def engine(planned, tiny_engines):
    engine = tiny_engines("tiny-sd", planned.adapter)
    yield engine
    engine.mask_override = None


def _job(plan, shot_id: str):
    return next(j for j in plan.jobs if j.shot_id == shot_id)


def _render_one(engine, request, **kwargs):
    return engine.render([request], **kwargs)[0]


def test_plan_resolves_methods_params_and_framing(planned) -> None:
    dual, single, wide, text = (_job(planned, s) for s in ("m_dual", "m_single", "t_dual", "text"))
    assert (dual.request.method, single.request.method, text.request.method) == ("dual-line", "single", "text")
    assert dual.key_material["method"]["params"] == key_params("dual-line", FusionParams())  # built-in defaults
    assert "mask_exclusivity" not in dual.key_material["method"]["params"]  # several characters only
    assert single.key_material["method"]["params"] == {"aggregation": "mean"}  # only what single uses
    params = wide.key_material["method"]["params"]
    assert params["fusion_start"] == 0.5 and params["head_only"] is True and params["head_fraction"] == 0.35
    assert wide.request.prompt.startswith("wide shot, the figure small within the scene, ")
    assert dual.request.semantic_prompt == dual.request.prompt  # no expression: both lines read the same
    start, end = wide.request.subject_spans[0]
    assert wide.request.semantic_prompt[start:end] == "a young man"
    start, end = dual.request.subject_spans[0]
    assert dual.request.prompt[start:end] == "a red-haired woman"
    assert dual.key != single.key and text.key_material["method"] == {"name": "text"}


def test_method_params_resolve_in_order_and_are_validated(write_shotlist) -> None:
    assert resolve_fusion("full-body").head_fraction == 0.2
    assert resolve_fusion("full-body", {"head_fraction": 0.5}, {"mask_blur": 0.0}).head_fraction == 0.5
    assert resolve_fusion(None, {"fusion_start": 0.1}, {"fusion_start": 0.6}).fusion_start == 0.6
    assert with_framing("a street", "close-up") == "close-up portrait, face filling the frame, a street"
    bad = SHOTS.replace("method_params: {fusion_start: 0.5}", "method_params: {fusion_start: 0.5, fusion_end: 0.4}")
    with pytest.raises(ShotListError) as info:
        idcli.load_shotlist(write_shotlist(bad))
    text = info.value.render()
    assert "shots[2].method_params" in text and "must be below fusion_end" in text
    typo = SHOTS.replace("method: single", "method: singel")
    with pytest.raises(ShotListError, match="did you mean 'single'"):
        idcli.load_shotlist(write_shotlist(typo))


def test_mask_of_zeros_is_the_text_only_image(planned, engine) -> None:
    request = dataclasses.replace(_job(planned, "m_dual").request, fusion=FusionParams(fusion_start=0.0))
    text_only = dataclasses.replace(request, method="text", identity_embedding=None, identity_strength=0.0)
    engine.mask_override = lambda step, r: 0.0
    fused = _render_one(engine, request).image
    engine.mask_override = None
    plain = _render_one(engine, text_only).image
    assert np.abs(fused - plain).max() <= 1e-5  # float32 rounding of a 3-row against a 2-row batch


def test_mask_of_ones_over_all_steps_is_the_single_line_image(planned, engine) -> None:
    request = dataclasses.replace(_job(planned, "m_dual").request, fusion=FusionParams(fusion_start=0.0))
    single = _job(planned, "m_single").request
    assert single.prompt == request.prompt and single.seed != request.seed  # seeds derive from shot ids
    single = dataclasses.replace(single, seed=request.seed)
    engine.mask_override = lambda step, r: 1.0
    fused = _render_one(engine, request).image
    engine.mask_override = None
    assert np.abs(fused - _render_one(engine, single).image).max() <= 1e-5
    # ...and the computed mask is neither: the identity line really is fused, not copied.
    computed = _render_one(engine, request).image
    assert np.abs(computed - fused).max() > 1e-3


def test_batch_composition_does_not_change_a_dual_line_image(planned, engine) -> None:
    requests = [j.request for j in planned.jobs]  # dual mara, single mara, dual theo (wide), text
    alone = [_render_one(engine, r).image for r in requests]
    together = engine.render(requests)
    shuffled = engine.render([requests[2], requests[0]])
    for a, b in zip(alone, together, strict=True):
        assert np.abs(a - b.image).max() <= 1e-5
    assert np.abs(alone[2] - shuffled[0].image).max() <= 1e-5
    assert np.abs(alone[0] - shuffled[1].image).max() <= 1e-5
    assert together[0].facts["fusion"] == _render_one(engine, requests[0]).facts["fusion"]


# Changing only the identity moves pixels inside the final mask at least this many times more (mean
# absolute change per pixel) than outside it. Outside the mask the identity line never enters the
# noise prediction directly; it leaks only through the UNet's receptive field on later steps and
# the VAE's, so the ratio stays well above 1 (measured 4.8 to 7 on the tiny presets' random weights).
INSIDE_OUTSIDE_MIN_RATIO = 3.0


def test_changing_the_identity_changes_pixels_mostly_inside_the_mask(planned, engine) -> None:
    request = _job(planned, "m_dual").request
    # Random weights attend diffusely, so the default threshold covers most of the frame; a higher one
    # gives a partial mask, as trained weights do for a figure in a scene.
    request = dataclasses.replace(request, fusion=dataclasses.replace(request.fusion, mask_threshold=0.7))
    theo = _job(planned, "t_dual").request
    other = dataclasses.replace(request, identity_embedding=theo.identity_embedding)
    first = _render_one(engine, request, capture_masks=True)
    second = _render_one(engine, other)
    mask = torch.tensor(first.facts["mask_frames"][-1]["mask"])[None, None]
    mask = torch.nn.functional.interpolate(mask, size=first.image.shape[:2], mode="bilinear")[0, 0].numpy()
    change = np.abs(first.image - second.image).mean(axis=-1)
    inside, outside = change[mask > 0.5], change[mask < 0.05]
    assert inside.size > 0.05 * change.size and outside.size > 0.05 * change.size  # a real partial mask
    ratio = inside.mean() / outside.mean()
    assert ratio >= INSIDE_OUTSIDE_MIN_RATIO, f"inside/outside change ratio {ratio:.2f}"


def test_masks_are_finite_bounded_and_follow_the_placeholder(planned, engine) -> None:
    request = _job(planned, "m_dual").request
    moved_prompt = "a wet street at night, neon signs, and walking along it, a red-haired woman"
    start = moved_prompt.index("a red-haired woman")
    moved = dataclasses.replace(request, prompt=moved_prompt, semantic_prompt=moved_prompt,
                                subject_spans=((start, len(moved_prompt)),))
    masks = []
    for r in (request, moved):
        result = _render_one(engine, r, capture_masks=True)
        frames = result.facts["mask_frames"]
        assert len(frames) == 6 and [f["fused"] for f in frames] == [False, False, True, True, True, True]
        for frame in frames:
            assert np.isfinite(frame["mask"]).all() and frame["mask"].min() >= 0 and frame["mask"].max() <= 1
            assert frame["preview"].shape == (128, 128, 3)
        assert result.facts["fusion"]["subject_tokens"] > 0
        masks.append(frames[-1]["mask"])
    assert np.abs(masks[0] - masks[1]).mean() > 0.05


def test_head_only_keeps_the_top_of_the_region(planned, engine) -> None:
    request = _job(planned, "m_dual").request
    head = dataclasses.replace(request, fusion=dataclasses.replace(request.fusion, head_only=True, head_fraction=0.25))
    full = _render_one(engine, request, capture_masks=True).facts["mask_frames"][-1]["mask"]
    cut = _render_one(engine, head, capture_masks=True).facts["mask_frames"][-1]["mask"]
    rows = np.nonzero((full > 0.5).any(axis=1))[0]
    kept = np.nonzero((cut > 0).any(axis=1))[0]
    assert kept.size and kept.max() < rows.max()
    assert kept.size <= int(np.ceil(0.25 * 16)) + 1  # about a quarter of the 16 latent rows


def test_fusion_mask_smooths_accumulates_thresholds_and_cuts_the_head() -> None:
    from idcli.engine.fusion import FusionMask

    blob = torch.zeros(1, 1, 16, 16)
    blob[..., 4:14, 6:10] = 1.0  # a standing figure
    mask = FusionMask(FusionParams(mask_blur=0.0), (16, 16))
    first = mask.update(blob)
    assert torch.equal(first, blob)  # a clean map passes the soft threshold unchanged
    noise = torch.zeros(1, 1, 16, 16)
    noise[..., 0, 0] = 1.0
    mask.update(blob)
    mask.update(blob)
    second = mask.update(noise)  # one stray step among four is averaged away by the accumulation
    assert second[..., 0, 0] < 0.5 and bool((second[..., 4:14, 6:10] > 0.5).all())
    head = FusionMask(FusionParams(mask_blur=0.0, head_only=True, head_fraction=0.3), (16, 16)).update(blob)
    assert head[..., 4:7, 6:10].min() == 1 and head[..., 7:, :].max() == 0
    smooth = FusionMask(FusionParams(mask_blur=2.0), (16, 16)).update(blob)
    assert smooth.mean() > 0 and smooth.max() <= 1 and torch.isfinite(smooth).all()
    assert torch.equal(FusionMask(FusionParams(), (16, 16)).update(None), torch.zeros(1, 1, 16, 16))
    assert torch.equal(FusionMask(FusionParams(), (16, 16)).update(torch.full((1, 1, 16, 16), 0.3)),
                       torch.zeros(1, 1, 16, 16))  # a flat map says nothing: no fusion


def test_subject_tokens_follow_the_placeholder(tiny_engines) -> None:
    from idcli.engine.fusion import subject_token_positions

    tokenizer = tiny_engines("tiny-sd").pipe.tokenizer
    prompt = "a wet street where a red-haired woman waits"
    start = prompt.index("a red-haired woman")
    positions = subject_token_positions(tokenizer, prompt, ((start, start + len("a red-haired woman")),))
    ids = tokenizer(prompt).input_ids
    phrase = tokenizer("a red-haired woman", add_special_tokens=False).input_ids
    assert [ids[p] for p in positions] == phrase
    assert subject_token_positions(tokenizer, "x " * 200 + "a woman", ((400, 407),)) == []  # truncated away


def test_prepend_aggregation_changes_the_image_and_the_key(write_shotlist, tiny_engines) -> None:
    prepend = SHOTS.replace("defaults: {", "defaults: {method_params: {aggregation: prepend}, ")
    plan_mean = plan_on_cpu(write_shotlist(SHOTS))
    plan_pre = plan_on_cpu(write_shotlist(prepend, "prepend.yaml"))
    mean_job, pre_job = _job(plan_mean, "m_dual"), _job(plan_pre, "m_dual")
    assert pre_job.key != mean_job.key and pre_job.request.identity_count() == 3  # aggregate + two selfies
    identity = pre_job.key_material["method"]["identity"]
    # From selfies, the identity key already covers the references (a pack adds their hash).
    assert identity["references"] == 2 and "references_sha256" not in identity
    engine = tiny_engines("tiny-sd", plan_pre.adapter)
    # Different identity-token counts never share a batch.
    assert pre_job.request.batch_signature() != _job(plan_pre, "text").request.batch_signature()
    a = _render_one(engine, mean_job.request).image
    b = _render_one(engine, pre_job.request).image
    # The synthetic recogniser gives one person's selfies the same embedding, and attention over
    # repeated identical tokens equals attention over one copy: prepend then changes nothing...
    assert np.abs(a - b).max() <= 1e-5
    # ...while references that differ from the aggregate (real selfies do) change the image.
    theo = _job(plan_pre, "t_dual").request.identity_embedding
    varied = dataclasses.replace(pre_job.request, identity_references=np.stack([theo, -theo]))
    assert np.abs(a - _render_one(engine, varied).image).max() > 1e-4


def test_a_run_mixes_methods_and_saves_masks(write_shotlist, tmp_path, engine_factory) -> None:
    path = write_shotlist(SHOTS)
    report = idcli.render(idcli.load_shotlist(path), tmp_path / "out", device="cpu", engine_factory=engine_factory,
                          save_masks=True)
    assert report.rendered == 4
    sidecars = {o.shot_id: json.loads(Path(o.sidecar.abs_path).read_text()) for o in report.jobs}
    assert sidecars["m_dual"]["method"]["name"] == "dual-line" and sidecars["m_single"]["method"]["name"] == "single"
    assert sidecars["text"]["method"] == {"name": "text"} and "fusion" not in sidecars["text"]
    fusion = sidecars["t_dual"]["fusion"]
    assert fusion["window"] == [3, 6] and 0 <= fusion["mask_coverage"] <= 1
    strip = tmp_path / "out" / fusion["mask_strip"]
    from PIL import Image

    with Image.open(strip) as image:
        assert image.height == 256 and image.width > 6 * 256
    assert not (tmp_path / "out" / "m_single" / "m_single_t1.mask.png").exists()
    # A run without --save-masks writes none; a resumed run renders nothing again.
    again = idcli.render(idcli.load_shotlist(path), tmp_path / "out", device="cpu", engine_factory=engine_factory)
    assert again.rendered == 0 and again.count("skipped") == 4


def test_cli_render_save_masks(write_shotlist, tmp_path) -> None:
    path = write_shotlist(SHOTS.replace("steps: 6", "steps: 2"))
    result = CliRunner().invoke(app, ["render", str(path), "--out", str(tmp_path / "o"), "--device", "cpu",
                                      "--only", "m_dual", "--save-masks", "--quiet"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "m_dual" / "m_dual_t1.mask.png").is_file()


def test_save_masks_on_a_rerender_keeps_the_new_strip_beside_the_new_image(write_shotlist, tmp_path,
                                                                         engine_factory) -> None:
    """A take rendered again (`--force`, or after an edit) with `--save-masks`: the new strip was written before the
    old take was moved aside, so it went to .idcli/superseded with the old image, and the new sidecar's
    `fusion.mask_strip` named a file that was not there."""
    loaded = idcli.load_shotlist(write_shotlist(SHOTS.replace("steps: 6", "steps: 2")))
    out = tmp_path / "out"
    idcli.render(loaded, out, device="cpu", engine_factory=engine_factory, only="m_dual")
    again = idcli.render(loaded, out, device="cpu", engine_factory=engine_factory, only="m_dual", force=True,
                         save_masks=True)
    assert again.rendered == 1 and len(again.superseded) == 1
    sidecar = json.loads(Path(again.jobs[0].sidecar.abs_path).read_text())
    assert (out / sidecar["fusion"]["mask_strip"]).is_file()
    assert not list((out / ".idcli" / "superseded").rglob("*.mask.png"))  # the earlier take had no strip


@pytest.mark.parametrize("preset", ["tiny-sd", "tiny-sdxl"])
def test_dual_line_with_the_midpoint_sampler_batches_exactly(write_shotlist, tiny_engines, preset) -> None:
    text = SHOTS.replace("sampler: ddim", "sampler: midpoint").replace("preset: tiny-sd", f"preset: {preset}")
    plan = plan_on_cpu(write_shotlist(text))
    engine = tiny_engines(preset, plan.adapter)
    requests = [j.request for j in plan.jobs]
    together = engine.render(requests)
    for request, result in zip(requests, together, strict=True):
        assert np.abs(_render_one(engine, request).image - result.image).max() <= 1e-5
    assert together[0].facts["fusion"]["evaluations"] == 6  # midpoint: steps = model evaluations
