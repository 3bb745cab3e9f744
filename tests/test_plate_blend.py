"""What a plate crop's model evaluations see outside the face mask, and what that is worth (docs/plates.md,
"What each evaluation sees"): the engine puts the plate's latents back at the level of the evaluation about to
run, so every evaluation -- the midpoint sampler's midpoints included -- sees ``z0 + σ(t) ε`` there; measured
against the alternatives where the truth is known (engine/gmm_plates.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from idcli.engine.gmm import NoiseTable, default_mixture, one_thread
from idcli.engine.gmm_plates import Conditioned, PlateHarness, face_mask
from idcli.engine.plates import crop_box, crop_pixels, latent_mask
from idcli.engine.plates import face_mask as plate_face_mask
from idcli.method import FusionParams
from idcli.render_request import PlateFaceRequest, PlateRequest, RenderRequest

SAMPLERS = ["ddim", "euler", "heun", "dpmpp-2m", "midpoint"]


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_evaluation_sees_the_plate_at_its_own_noise_level(tiny_engines, sampler: str) -> None:
    """A recording UNet: at every evaluation of a plate crop the latents outside the face mask are the plate's
    own, noised with the crop's noise to the level of that evaluation's timestep -- for the midpoint sampler at
    its fractional midpoint timesteps too (not the level its integrator's state is at, one level late)."""
    engine = tiny_engines("tiny-sd")
    pixels = np.random.default_rng(0).integers(0, 256, (150, 203, 3), dtype=np.uint8)
    box = (60, 40, 40, 50)
    square = crop_box(box, (203, 150))
    plate = PlateRequest(pixels, "sha-test", (PlateFaceRequest("mara", box, square),), 0.6)
    request = RenderRequest("a rainy window", "blurry", 3, 64, 64, 12, 4.0, sampler, method="plate",
                            fusion=FusionParams(), plate=plate)
    seen: list[tuple[torch.Tensor, float]] = []
    hook = engine.pipe.unet.register_forward_pre_hook(
        lambda _module, args: seen.append((args[0][:1].detach().clone(), float(args[1]))))
    try:
        engine.render([request])
    finally:
        hook.remove()
    # The crop's plate latents, noise and mask, made here as the engine makes them (engine/plate_render.py).
    with torch.inference_mode():
        z0 = engine.codec.encode([crop_pixels(pixels, square, 64)])
    noise = torch.randn((1, 4, 8, 8), generator=torch.Generator("cpu").manual_seed(3))
    outside = (latent_mask(plate_face_mask(box, square, (203, 150)), 8) == 0).expand(1, 4, 8, 8)
    assert outside.any() and not outside.all()
    table = NoiseTable(dict(engine.pipe.scheduler.config))  # the harness's own timestep -> noise level mapping
    for model_in, t in seen:
        sigma = float(table.sigma(t))
        expected = (z0 + sigma * noise) / math.sqrt(1 + sigma**2)  # x_t = alpha_t z0 + sigma_t eps
        assert torch.allclose(model_in[outside], expected[outside], atol=2e-6), (sampler, t)
    assert len(seen) == 7 * (2 if sampler == "heun" else 1) - (1 if sampler == "heun" else 0)
    if sampler == "midpoint":
        assert sum(t != round(t) for _, t in seen) >= 5  # the midpoint evaluations were among those checked


@pytest.fixture(scope="module")
def harness() -> PlateHarness:
    return PlateHarness(samples=64, reference_steps=200)


@pytest.mark.parametrize("strength", [0.6, 1.0])
def test_midpoints_that_see_their_own_level_integrate_the_replacement_flow(harness: PlateHarness,
                                                                            strength: float) -> None:
    """Where the truth is known: with the known region at each midpoint's own level (the engine) the midpoint
    sampler's error against the flow the blend discretises falls fast with the steps; with the known region one
    level late, or left where the integrator places it, it is at least four times larger at every step count
    (11 to 45 times at 50 steps in docs/plates.md's table, with 256 crops). Blending the integrator's kept state
    as well changes nothing inside."""
    steps = (12, 25, 50)
    with one_thread():
        mine = [harness.error(harness.run("midpoint", n, strength)) for n in steps]
        for blend in ("previous", "placed"):
            theirs = [harness.error(harness.run("midpoint", n, strength, blend)) for n in steps]
            assert all(a < b / 4 for a, b in zip(mine, theirs, strict=True)), (blend, mine, theirs)
        kept = harness.run("midpoint", 25, strength, "kept")
        own = harness.run("midpoint", 25, strength)
    assert mine[0] / mine[2] > 5, mine  # second order would be (50 / 12) ** 2 = 17, first order 4.2
    assert torch.equal(kept.inside, own.inside)


def test_the_known_region_ends_as_the_plate_for_every_sampler(harness: PlateHarness) -> None:
    """The harness checks every run's known region against the plate itself after the last step."""
    with one_thread():
        for sampler in ("euler", "heun", "dpmpp-2m", "midpoint"):
            run = harness.run(sampler, 12, 0.6)
            assert torch.equal(run.outside, harness.z0[:, harness.known])
            assert harness.error(run) < 0.12, sampler  # Euler, the least accurate: 0.07


def test_exact_inpainting_denoiser_is_the_mixtures_own_with_nothing_known() -> None:
    """The conditional mixture with no known coordinates is the mixture; with known ones it reweights components
    towards the one that explains them (a sample of a narrow component is recognised)."""
    data = default_mixture(dim=16)
    x = torch.randn(8, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    nothing = torch.zeros(16, dtype=torch.bool)
    assert torch.allclose(Conditioned(data, x, nothing).denoise(x, 0.7), data.denoise(x, 0.7), atol=1e-12)
    known = face_mask().reshape(-1) == 0
    z0 = data.means[2:3].repeat(8, 1)  # every known coordinate at component 2's mean
    conditioned = Conditioned(data, z0, known)
    assert torch.softmax(conditioned.log_weights, dim=1)[:, 2].min() > 0.99
    # Far from the data at high noise, the denoiser returns component 2's own mean over the unknown cells.
    assert torch.allclose(conditioned.denoise(torch.zeros(8, 4, dtype=torch.float64), 1e3),
                          data.means[2, ~known].expand(8, 4), atol=1e-3)
