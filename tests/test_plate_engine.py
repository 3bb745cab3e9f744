"""Plate jobs in the engine (issue 12, engine/plate_render.py): each face re-generated image-to-image from
the plate's own latents with its character's identity line, and composited back so that every 8-bit pixel
outside the union of the feathered face masks is the plate's. Tiny presets, CPU float32."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from idcli.engine import plate_render
from idcli.engine.plates import crop_box, face_mask, plate_mask, start_index
from idcli.executors.output import png_pixels
from idcli.method import FusionParams
from idcli.render_request import IdentityLine, PlateFaceRequest, PlateRequest, RenderRequest

SCENE = "two people by a rainy window, film still"


def _adapter_engine(tiny_engines, preset: str = "tiny-sd"):
    from idcli.adapters import resolve_adapter
    from idcli.models import resolve_model
    from idcli.shotlist import ModelSpec

    spec = ModelSpec(preset=preset)
    return tiny_engines(preset, resolve_adapter(spec, resolve_model(spec, Path("."), "float32"), Path(".")))


def _embedding(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(512).astype(np.float32)
    return v / np.linalg.norm(v)


def _line(name: str, seed: int, expression: str = "smiling") -> IdentityLine:
    return IdentityLine(name, f"{SCENE}, {name} {expression}", 0.8, (), _embedding(seed))


def _plate(width: int, height: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)


def _request(pixels: np.ndarray, faces: list[tuple[str, tuple[int, int, int, int]]], *, seed: int = 3,
             side: int = 64, strength: float = 0.6, sampler: str = "dpmpp-2m", steps: int = 6,
             lines: tuple[IdentityLine, ...] | None = None) -> RenderRequest:
    size = (pixels.shape[1], pixels.shape[0])
    plate = PlateRequest(pixels, f"sha-{pixels.sum()}", tuple(PlateFaceRequest(name, box, crop_box(box, size))
                                                              for name, box in faces), strength)
    if lines is None:
        lines = tuple(_line(name, 10 + i) for i, name in enumerate(dict.fromkeys(n for n, _ in faces)))
    return RenderRequest(SCENE, "blurry", seed, side, side, steps, 4.0, sampler, identity_embedding=lines[0].embedding,
                         identity_strength=lines[0].strength, method="plate", fusion=FusionParams(),
                         semantic_prompt=SCENE, lines=lines, subject=lines[0].name, plate=plate)


def _plate_of(request: RenderRequest) -> PlateRequest:
    """The plate of a request ``_request`` made (it always sets one)."""
    assert request.plate is not None
    return request.plate


def _union(request: RenderRequest) -> np.ndarray:
    plate = _plate_of(request)
    return plate_mask(plate.size, [(face_mask(f.box, f.crop_box, plate.size), f.crop_box) for f in plate.faces])


def _face_region(request: RenderRequest, index: int) -> np.ndarray:
    plate = _plate_of(request)
    face = plate.faces[index]
    return plate_mask(plate.size, [(face_mask(face.box, face.crop_box, plate.size), face.crop_box)]) > 0


def _png_round_trip(pixels: np.ndarray) -> np.ndarray:
    """The pixels as the PNG writer writes them (RGB) and png_pixels reads them back."""
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")
    return png_pixels(buffer.getvalue())


CASES = {
    "one face": ((203, 150), 3, [("mara", (60, 40, 40, 50))]),
    "two faces": ((240, 120), 3, [("mara", (30, 30, 40, 44)), ("theo", (160, 36, 36, 40))]),
    "face at the edge": ((160, 112), 3, [("mara", (0, 70, 40, 42))]),
    "sides not multiples of 8": ((101, 77), 3, [("mara", (30, 20, 30, 30))]),
    "rgba": ((144, 104), 4, [("mara", (50, 30, 36, 40))]),
}


def two_plates() -> list[RenderRequest]:
    """Two plate jobs, three faces in all, for one batch: what the loop watchers render (tests/test_gpu_ready.py,
    tests/test_device_placement.py)."""
    return [_request(_plate(240, 120), CASES["two faces"][2]), _request(_plate(203, 150), CASES["one face"][2])]


@pytest.mark.parametrize("case", list(CASES))
def test_every_pixel_outside_the_face_masks_is_the_plates_own(tiny_engines, case: str) -> None:
    (width, height), channels, faces = CASES[case]
    pixels = _plate(width, height, channels)
    if channels == 4:
        pixels[:, : width // 3, 3] = 0  # a transparent band: the colour channels still come back exactly
    request = _request(pixels, faces)
    result = _adapter_engine(tiny_engines).render([request], capture_masks=True)[0]
    out = _png_round_trip(result.pixels)
    union = result.facts["plate_mask"]
    assert out.shape == (height, width, 3) and union.shape == (height, width)
    assert np.array_equal(union, _union(request))
    outside = union == 0
    assert outside.any() and (~outside).any()
    # RGB out; an RGBA plate's colour channels are its pixels (the writer writes RGB: alpha is not kept).
    assert np.array_equal(out[outside], pixels[:, :, :3][outside])
    assert (out[~outside] != pixels[:, :, :3][~outside]).any()  # the faces were re-generated
    facts = result.facts["plate"]
    assert [f["character"] for f in facts["faces"]] == [name for name, _ in faces]
    assert [tuple(f["box"]) for f in facts["faces"]] == [box for _, box in faces]
    assert facts["start_step"] == start_index(6, 0.6) and facts["strength"] == 0.6
    assert all(0 < f["mask_coverage"] < 1 for f in facts["faces"])
    assert "fusion" not in result.facts  # the plate's facts are its own (no attention mask, no probe)


def test_tiny_sdxl_keeps_the_plate_outside_two_faces(tiny_engines) -> None:
    (width, height), _channels, faces = CASES["two faces"]
    pixels = _plate(width, height)
    result = _adapter_engine(tiny_engines, "tiny-sdxl").render([_request(pixels, faces)], capture_masks=True)[0]
    outside = result.facts["plate_mask"] == 0
    assert np.array_equal(result.pixels[outside], pixels[outside])
    assert (result.pixels[~outside] != pixels[~outside]).any()


@pytest.mark.parametrize("preset", ["tiny-sd", "tiny-sdxl"])
def test_a_characters_identity_changes_pixels_only_inside_its_face(tiny_engines, preset: str) -> None:
    engine = _adapter_engine(tiny_engines, preset)
    pixels = _plate(240, 120)
    faces = CASES["two faces"][2]
    request = _request(pixels, faces)
    mara, theo = request.lines
    changed = dataclasses.replace(request, lines=(dataclasses.replace(mara, embedding=_embedding(99)), theo),
                                  identity_embedding=_embedding(99))
    a, b = (engine.render([r])[0].pixels for r in (request, changed))
    differs = (a != b).any(axis=2)
    assert differs[_face_region(request, 0)].mean() > 0.05  # mara's face took the new identity
    assert not differs[~_face_region(request, 0)].any()  # nothing else moved, theo's face included


def test_each_face_takes_its_own_characters_identity(tiny_engines) -> None:
    engine = _adapter_engine(tiny_engines)
    pixels = _plate(240, 120)
    request = _request(pixels, CASES["two faces"][2])
    mara, theo = request.lines
    units = plate_render.PlateBatch.prepare([request], engine.codec.encode, engine.latent_channels, engine.vae_scale,
                                            engine.device, engine.torch_dtype).units
    assert [u.request.lines[0].name for u in units] == ["mara", "theo"]
    assert [u.request.lines[0].embedding is line.embedding for u, line in zip(units, (mara, theo), strict=True)] \
        == [True, True]
    assert all(u.request.prompt == SCENE and u.request.plate is None for u in units)  # the semantic row
    base = engine.render([request])[0].pixels
    # Faces are matched to lines by the character's name, not by the lines' order ...
    reordered = dataclasses.replace(request, lines=(theo, mara))
    assert np.array_equal(engine.render([reordered])[0].pixels, base)
    # ... and giving each face the other character changes both faces.
    swapped = dataclasses.replace(request, lines=(dataclasses.replace(mara, embedding=theo.embedding),
                                                  dataclasses.replace(theo, embedding=mara.embedding)))
    differs = (engine.render([swapped])[0].pixels != base).any(axis=2)
    assert differs[_face_region(request, 0)].any() and differs[_face_region(request, 1)].any()


@pytest.mark.parametrize("preset", ["tiny-sd", "tiny-sdxl"])
def test_batch_composition_never_changes_a_plate_image(tiny_engines, preset: str) -> None:
    engine = _adapter_engine(tiny_engines, preset)
    one = _request(_plate(203, 150), CASES["one face"][2], seed=5)
    two = _request(_plate(240, 120, seed=1), CASES["two faces"][2], seed=6)
    text = RenderRequest("an empty harbour at dawn", "blurry", 7, 64, 64, 6, 4.0, "dpmpp-2m")
    alone = [engine.render([r])[0].pixels for r in (one, two, text)]
    together = engine.render([two, one])
    assert together[0].facts["batch_members"] == [0, 1]
    # With text-to-image jobs in the same call: they run as their own forward (their schedule starts at
    # the top, the crops' part-way), and nobody's pixels change.
    mixed = engine.render([text, one, two])
    assert mixed[0].facts["batch_members"] == [0] and mixed[1].facts["batch_members"] == [1, 2]
    # The text job ran as its own forward (batch_members [0]): the shape it had alone, so the same bytes.
    assert np.array_equal(mixed[0].pixels, alone[2])
    # The crops ran beside another job's: another batch shape, whose CPU kernels sum in another order, so the same
    # image up to the one-level rounding docs/architecture.md ("Batch composition") promises and every other
    # batch-composition test allows (tests/test_plate_engine.py's text windows, 06f69b2). tiny-sd was compared to
    # the byte here, and held on this machine's kernels as that test had until CI's moved a value; a bug that
    # mixes jobs (another job's windows, its noise) moves values by far more than one level.
    for result, expected in ((together[0], alone[1]), (together[1], alone[0]), (mixed[1], alone[0]),
                             (mixed[2], alone[1])):
        differs = np.abs(result.pixels.astype(int) - expected.astype(int))
        assert differs.max() <= 1 and (differs > 0).mean() < 1e-3, (preset, differs.max(), (differs > 0).sum())


def test_strength_sets_how_much_of_the_face_is_re_generated(tiny_engines) -> None:
    engine = _adapter_engine(tiny_engines)
    pixels = _plate(203, 150)
    low, high = (engine.render([_request(pixels, CASES["one face"][2], strength=s)], capture_masks=True)[0]
                 for s in (0.3, 0.9))
    assert low.facts["plate"]["start_step"] == start_index(6, 0.3) > high.facts["plate"]["start_step"]
    assert low.facts["plate"]["evaluations"] == 6 - start_index(6, 0.3)
    inside = low.facts["plate_mask"] > 0
    assert (low.pixels[inside] != high.pixels[inside]).mean() > 0.2
    assert np.array_equal(low.pixels[~inside], high.pixels[~inside])


@pytest.mark.parametrize("sampler", ["ddim", "euler", "heun", "dpmpp-2m", "midpoint"])
def test_a_fully_masked_crop_is_diffusers_img2img(tiny_engines, monkeypatch: pytest.MonkeyPatch, sampler) -> None:
    """With the whole crop re-generated (masks of ones) and no identity, a plate crop is exactly diffusers'
    StableDiffusionImg2ImgPipeline from the same latents and seed: the schedule starts where img2img starts
    it, for multistep and second-order samplers too (and idcli's midpoint sampler, which diffusers' pipeline
    drives through the same set_begin_index), and the blend leaves re-generated latents alone."""
    import torch
    from diffusers import StableDiffusionImg2ImgPipeline

    from idcli.engine.samplers import make_scheduler

    engine = tiny_engines("tiny-sd")  # no adapter: the crop's rows are the scene prompt's
    monkeypatch.setattr(plate_render, "face_mask", lambda box, crop, size: np.ones((crop[2], crop[2]), np.float32))
    monkeypatch.setattr(plate_render, "latent_mask", lambda mask, side: torch.ones(1, 1, side, side))
    pixels = _plate(64, 64, seed=4)
    request = _request(pixels, [("mara", (16, 16, 32, 32))], sampler=sampler, strength=0.5, seed=11)
    assert _plate_of(request).faces[0].crop_box == (0, 0, 64, 64)
    ours = engine.render([request])[0].pixels
    pipe = engine.pipe
    stock = StableDiffusionImg2ImgPipeline(vae=pipe.vae, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer,
                                           unet=pipe.unet, scheduler=make_scheduler(sampler, pipe.scheduler.config),
                                           safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    stock.set_progress_bar_config(disable=True)
    with torch.inference_mode():
        z0 = engine.codec.encode([pixels])  # 4 channels: img2img takes them as the image's latents
        image = stock(prompt=SCENE, negative_prompt="blurry", image=z0, strength=0.5, num_inference_steps=6,
                      guidance_scale=4.0, generator=torch.Generator("cpu").manual_seed(11), output_type="np").images[0]
    expected = (image * 255).round().astype(np.uint8)
    assert np.abs(ours.astype(int) - expected.astype(int)).max() <= 1


def test_plate_requests_the_engine_cannot_render_are_refused(tiny_engines) -> None:
    engine = _adapter_engine(tiny_engines)
    pixels = _plate(203, 150)
    with pytest.raises(ValueError, match="square"):
        engine.render([dataclasses.replace(_request(pixels, CASES["one face"][2]), width=64, height=72)])
    request = _request(pixels, CASES["one face"][2])
    outside = PlateFaceRequest("mara", (60, 40, 40, 50), (150, 100, 80, 80))
    with pytest.raises(ValueError, match="crop box"):
        engine.render([dataclasses.replace(request, plate=dataclasses.replace(_plate_of(request), faces=(outside,)))])
    with pytest.raises(ValueError, match="strength"):
        engine.render([dataclasses.replace(request, plate=dataclasses.replace(_plate_of(request), strength=0.0))])


def test_batch_size_counts_crops_not_plates(tiny_engines, monkeypatch: pytest.MonkeyPatch) -> None:
    from idcli.engine import memory

    engine = _adapter_engine(tiny_engines)
    per_crop = memory.cpu_image_bytes(engine.pipe, 64, 64, 3, 4)  # CFG's two rows and one identity line
    monkeypatch.setattr(memory, "available_bytes", lambda: int(12 * per_crop / memory.SHARE) + 1)
    one = _request(_plate(203, 150), CASES["one face"][2])
    two = _request(_plate(240, 120), CASES["two faces"][2])
    assert engine.suggest_batch_size(one) == 12
    assert engine.suggest_batch_size(two) == 6


def test_a_plate_jobs_crops_keep_its_text_windows_in_any_batch(tiny_engines) -> None:
    """Rows of one forward share a CLIP window count; a plate job's crops are encoded in its own count (of
    all its texts) whatever the batch holds, so a longer neighbour never changes them."""
    engine = _adapter_engine(tiny_engines)
    long = ", ".join(["a rainy window"] * 30)  # past one CLIP window
    a = dataclasses.replace(_request(_plate(203, 150), CASES["one face"][2], seed=5), prompt=f"{SCENE}, {long}")
    b = dataclasses.replace(_request(_plate(203, 150, seed=2), CASES["one face"][2], seed=6),
                            semantic_prompt=f"{SCENE}, {long}")
    assert engine.text.request_windows(a) == engine.text.request_windows(b) > 1
    alone = engine.render([a])[0].pixels
    together = engine.render([a, b])
    assert together[0].facts["batch_members"] == [0, 1]
    # The same image up to a batch shape's one-level rounding (docs/architecture.md, "Batch composition"): this
    # build machine's kernels moved 2 of 91,350 values by one level beside the neighbour; a crop encoded in another
    # window count than its job's (its crop's texts' own: one window alone, two beside the neighbour) moved them by
    # up to 29 levels.
    off = np.abs(together[0].pixels.astype(int) - alone.astype(int))
    assert off.max() <= 1 and (off > 0).mean() < 1e-3


def test_each_crop_runs_three_rows_per_evaluation_over_the_end_of_the_schedule(tiny_engines) -> None:
    """What a batch holds: per face, the unconditional, the semantic and the identity row, at every one of the
    evaluations from the start step on; step progress counts those evaluations."""
    engine = _adapter_engine(tiny_engines)
    two = _request(_plate(240, 120), CASES["two faces"][2])
    one = _request(_plate(203, 150), CASES["one face"][2])
    rows: list[int] = []
    handle = engine.pipe.unet.register_forward_pre_hook(lambda _module, args: rows.append(args[0].shape[0]))
    progress: list[tuple[int, int]] = []
    engine.on_step = lambda done, total: progress.append((done, total))
    try:
        engine.render([two, one])
    finally:
        handle.remove()
        engine.on_step = None
    evaluations = 6 - start_index(6, 0.6)
    assert rows == [3 * 3] * evaluations
    assert progress[-1] == (evaluations, evaluations) and len(progress) == evaluations


def test_out_of_memory_on_one_plate_job_halves_its_crops(tiny_engines, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run halves batches of several jobs; a single plate job that does not fit runs its crops in halves,
    with the same images. Simulated: any forward of more than one crop runs out of memory."""
    engine = _adapter_engine(tiny_engines)
    request = _request(_plate(240, 120), CASES["two faces"][2])
    other = _request(_plate(203, 150), CASES["one face"][2])
    expected = engine.render([request])[0]
    denoise = engine._denoise
    sizes: list[int] = []

    def crowded(requests, *args, **kwargs):
        sizes.append(len(requests))
        if len(requests) > 1:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        return denoise(requests, *args, **kwargs)

    monkeypatch.setattr(engine, "_denoise", crowded)
    halved = engine.render([request])[0]
    # The same image up to a batch shape's rounding (docs/architecture.md, "Batch composition"): a plate's
    # image is composited in 8 bits, and on some CPUs (an Intel Xeon's AVX-512 kernels) that rounding moves
    # a few values by one level.
    off = np.abs(halved.pixels.astype(int) - expected.pixels.astype(int))
    assert off.max() <= 1 and (off > 0).mean() < 0.001
    assert sizes == [2, 1, 1]
    with pytest.raises(RuntimeError, match="out of memory"):  # several jobs: the run's back-off halves them
        engine.render([request, other])


@pytest.mark.parametrize("strength", [0.3, 0.6, 1.0])
def test_a_schedule_begun_part_way_integrates_the_flow_from_there(strength: float) -> None:
    """Where the truth is known (data from a Gaussian mixture, engine/gmm.py): each sampler begun as plate
    crops begin it, from add_noise at its first timestep, lands where a fine solution of the probability-flow
    ODE from that start lands. The midpoint sampler, whose first evaluation is re-planned onto a grid level,
    stays the most accurate of them, as it is from the top of the schedule (docs/sampler-accuracy.md)."""
    import torch

    from idcli.engine.gmm import SD_CONFIG, ExactModel, NoiseTable, default_mixture, flow, make_sampler

    data, table = default_mixture(), NoiseTable(SD_CONFIG)
    generator = torch.Generator().manual_seed(0)
    z0, eps = (torch.randn(256, data.dim, generator=generator, dtype=torch.float64) for _ in range(2))
    errors = {}
    for sampler in ("euler", "heun", "dpmpp-2m", "midpoint"):
        scheduler = make_sampler(sampler)
        scheduler.set_timesteps(12, device="cpu")
        first = start_index(12, strength) * scheduler.order
        scheduler.set_begin_index(first)
        timesteps = scheduler.timesteps[first:]
        twin = make_sampler(sampler)  # as plate_render.begin reads the start level: no begin index
        twin.set_timesteps(12, device="cpu")
        latents = twin.add_noise(z0, eps, timesteps[:1])
        model = ExactModel(data, table)
        for t in timesteps:
            latents = scheduler.step(model(scheduler.scale_model_input(latents, t), t), t, latents,
                                     return_dict=False)[0]
        start, end = table.sigma(float(timesteps[0])), table.sigma(float(timesteps[-1]))
        truth = data.denoise(flow(data, z0 + start * eps, start, end), end)
        errors[sampler] = float(((latents - truth) ** 2).mean().sqrt())
    assert max(errors.values()) < 0.12, errors
    assert errors["midpoint"] < min(errors["euler"], errors["heun"], errors["dpmpp-2m"]), errors
