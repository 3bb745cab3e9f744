"""The plate blend where the truth is known: inpainting data from a Gaussian mixture (docs/plates.md).

A plate crop is inpainting: outside the face mask the latents are the plate's own, noised to the level of the
evaluation about to run (``PlateBatch.keep_known``), and the sampler integrates the rest. With data from a
mixture of diagonal Gaussians (engine/gmm.py) two things the result can be compared with have closed forms:

* the **replacement flow**, which the blend discretises: the known coordinates on their path ``z0 + σ ε`` at
  every noise level, the re-generated ones following ``dx/dσ = ε̂(x, σ)`` of the whole state. A sampler's
  distance from it is its integration error, which more steps remove;
* the **conditional flow**, exact inpainting: the probability-flow ODE of the data given its known coordinates.
  For a mixture of diagonal Gaussians that conditional is again one (per sample, each component reweighted by
  how well it explains the known coordinates), so its posterior mean is exact too. The replacement flow's own
  distance from it is what replacing the known region costs (RePaint's "harmonisation" gap); no step count
  removes it.

Each sampler runs the engine's own plate code (``PlateBatch.begin``, ``start_latents``, ``keep_known``) in the
engine's loop (scale the input, the exact model, step, blend), on a 16-dimensional mixture laid out as a 4 x 4
one-channel latent whose centre 2 x 2 cells are "the face" (re-generated) and whose other 12 are the plate's.
``BLENDS`` moves, for the midpoint sampler, what its midpoint evaluations see outside the mask, to measure
the engine's choice against the alternatives. Pure float64 torch; tools/sampler_accuracy.py writes the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..render_request import PlateRequest, RenderRequest
from .gmm import (
    F64,
    SD_CONFIG,
    ExactModel,
    GaussianMixture,
    NoiseTable,
    default_mixture,
    flow,
    make_sampler,
    observed_order,
    rms,
)
from .plate_render import CropUnit, PlateBatch
from .plates import blend_known

SIDE = 4  # the latent is SIDE x SIDE, one channel: the mixture's dimension is SIDE ** 2
FACE = (slice(1, 3), slice(1, 3))  # the re-generated cells (the "face mask"), a quarter of the crop
STEPS = (6, 12, 25, 50)  # the shot's `steps`; a plate crop runs the last `strength` of them
STRENGTHS = (0.6, 1.0)  # the default plate strength, and a crop re-generated from pure noise
SAMPLERS = ("euler", "heun", "dpmpp-2m", "midpoint")

# What the midpoint sampler's midpoint evaluations see outside the mask (every other evaluation, and every
# other sampler, always sees the engine's blend). Only "own" is what the engine does.
BLENDS = {
    "own": "z0 + σ(t) ε at the midpoint's own level (the engine: keep_known after every step)",
    "kept": "as own, and the integrator's kept level state blended at its level too",
    "previous": "z0 + σ_i ε, the level the integrator's state is at (one level late)",
    "placed": "the integrator's placement from the state blended at its level: z0 + σ_i ε + (σ_mid - σ_i) ŝ",
    "none": "nothing blended between the start and the end (image-to-image, then the plate put back)",
}


def face_mask() -> torch.Tensor:
    """(1, 1, SIDE, SIDE): 1 on the re-generated cells."""
    mask = torch.zeros(1, 1, SIDE, SIDE, dtype=F64)
    mask[(0, 0, *FACE)] = 1.0
    return mask


def sample_mixture(mixture: GaussianMixture, n: int, generator: torch.Generator) -> torch.Tensor:
    """n draws of the mixture's data, (n, d): the plates."""
    component = torch.multinomial(mixture.weights, n, replacement=True, generator=generator)
    draws = torch.randn(n, mixture.dim, generator=generator, dtype=F64)
    return mixture.means[component] + mixture.variances[component].sqrt() * draws


@dataclass(frozen=True)
class Replacement:
    """The mixture's denoiser with the known coordinates forced onto their path ``z0 + σ ε``: the flow it drives
    (engine/gmm.flow) is the replacement flow, whose re-generated coordinates the blend integrates."""

    data: GaussianMixture
    z0: torch.Tensor  # (n, d)
    noise: torch.Tensor  # (n, d)
    known: torch.Tensor  # (d,) bool

    @property
    def dim(self) -> int:
        return self.data.dim

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        s = torch.as_tensor(sigma, dtype=F64).reshape(-1, 1)
        return self.data.denoise(torch.where(self.known, self.z0 + s * self.noise, x), sigma)


class Conditioned:
    """The data of each sample given its known coordinates ``z0[known]``: over the unknown coordinates a mixture
    with the same components, each weighted by ``π_k N(z0_known; μ_k, Σ_k)`` (diagonal covariances keep the
    coordinates of one component independent). Its denoiser is exact inpainting."""

    def __init__(self, data: GaussianMixture, z0: torch.Tensor, known: torch.Tensor) -> None:
        self.means = data.means[:, ~known]  # (K, u)
        self.variances = data.variances[:, ~known]
        diff = z0[:, None, known] - data.means[None, :, known]
        var = data.variances[None, :, known]
        self.log_weights = data.weights.log()[None] - 0.5 * (diff**2 / var + var.log()).sum(-1)  # (n, K)

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """E[x0_unknown | x, z0_known] for x of shape (n, u), row i the sample i."""
        sigma = torch.as_tensor(sigma, dtype=F64).reshape(-1, 1, 1)
        var = self.variances[None] + sigma**2
        diff = x[:, None, :] - self.means[None]
        resp = torch.softmax(self.log_weights - 0.5 * (diff**2 / var + var.log()).sum(-1), dim=1)
        return (resp[..., None] * (self.means[None] + self.variances[None] / var * diff)).sum(1)


@dataclass
class PlateRun:
    sampler: str
    steps: int
    strength: float
    blend: str
    inside: torch.Tensor  # (n, u): the re-generated coordinates of the final latent
    outside: torch.Tensor  # (n, d - u): the rest, which must be the plate's z0
    timesteps: list[float]  # as the model received them

    @property
    def evaluations(self) -> int:
        return len(self.timesteps)


def _plate_batch(n: int, steps: int, strength: float, sampler: str, z0: torch.Tensor, noise: torch.Tensor,
                 mask: torch.Tensor) -> PlateBatch:
    """The engine's PlateBatch for n crops of the mixture: what it reads of its requests is their steps and
    strength, of its units their latent masks."""
    plate = PlateRequest(np.zeros((SIDE, SIDE, 3), np.uint8), "gmm", (), strength)
    request = RenderRequest("", "", 0, SIDE, SIDE, steps, 1.0, sampler, method="plate", plate=plate)
    units = [CropUnit(0, k, request, mask[0, 0].numpy(), mask) for k in range(n)]
    shape = (n, 1, SIDE, SIDE)
    return PlateBatch([request], units, z0.reshape(shape), noise.reshape(shape), F64)


def _blend(batch: PlateBatch, scheduler: Any, latents: torch.Tensor, step: int, blend: str) -> torch.Tensor:
    """After loop step ``step``: the engine's blend, or for the midpoint sampler's midpoint evaluations an
    alternative (``BLENDS``). Reads the midpoint scheduler's state (its roles, level and kept state)."""
    last = step == batch.evaluations - 1
    if blend == "own" or last:
        return batch.keep_known(latents, step)
    if blend == "none":
        return latents
    if scheduler._roles[scheduler.step_index] != "mid":
        return batch.keep_known(latents, step)
    level = batch.z0 + scheduler._levels[scheduler._level] * batch.noise  # the known region at σ_i
    masks: Any = batch.masks  # set by begin
    if blend == "kept":
        scheduler._x_level = blend_known(scheduler._x_level, masks, level, None, None, add_noise=None)
        return batch.keep_known(latents, step)
    if blend == "previous":
        return blend_known(latents, masks, level, None, None, add_noise=None)
    if blend == "placed":
        # The placement x_i + (σ_mid - σ_i) ŝ is linear in x_i: blending x_i moves it by as much.
        shift = (1 - masks) * (level - scheduler._x_level)
        scheduler._x_level = scheduler._x_level + shift
        return latents + shift
    raise ValueError(f"blend must be one of {', '.join(BLENDS)}, not {blend!r}")


@dataclass
class PlateHarness:
    """Plate crops of a Gaussian mixture's samples, run by the engine's plate code, against both truths."""

    data: GaussianMixture = field(default_factory=lambda: default_mixture(dim=SIDE**2))
    samples: int = 256
    seed: int = 1
    reference_steps: int = 400
    _cache: dict[tuple[str, float, float], torch.Tensor] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.data.dim != SIDE**2:
            raise ValueError(f"the plate harness lays the data out as {SIDE}x{SIDE}: it needs {SIDE**2} dimensions")
        self.table = NoiseTable(SD_CONFIG)
        g = torch.Generator().manual_seed(self.seed)
        self.z0 = sample_mixture(self.data, self.samples, g)
        self.noise = torch.randn(self.samples, self.data.dim, generator=g, dtype=F64)
        self.mask = face_mask()
        self.known = self.mask.reshape(-1) == 0

    def run(self, sampler: str, steps: int, strength: float, blend: str = "own") -> PlateRun:
        """One batch of crops through the engine's loop with the exact model."""
        if blend != "own" and blend != "none" and sampler != "midpoint":
            raise ValueError(f"blend {blend!r} moves the midpoint sampler's midpoint evaluations only")
        n = self.samples
        scheduler = make_sampler(sampler)
        scheduler.set_timesteps(steps, device="cpu")
        batch = _plate_batch(n, steps, strength, sampler, self.z0, self.noise, self.mask)
        timesteps = batch.begin(scheduler)
        model = ExactModel(self.data, self.table)
        latents = batch.start_latents()
        for step, t in enumerate(timesteps):
            model_in = scheduler.scale_model_input(latents, t)
            eps = model(model_in.reshape(n, -1), t).reshape(model_in.shape)
            latents = scheduler.step(eps, t, latents, return_dict=False)[0]
            latents = _blend(batch, scheduler, latents, step, blend)
        flat = latents.reshape(n, -1).to(F64)
        return PlateRun(sampler, steps, strength, blend, flat[:, ~self.known], flat[:, self.known],
                        model.timesteps)

    def truth(self, kind: str, sigma_start: float, sigma_end: float) -> torch.Tensor:
        """(n, u): the re-generated coordinates by the ``"replacement"`` or ``"conditional"`` flow from the crops'
        start at ``sigma_start`` down to ``sigma_end``, then denoised there as the samplers end."""
        key = (kind, sigma_start, sigma_end)
        if key not in self._cache:
            x = self.z0 + sigma_start * self.noise
            if kind == "replacement":
                data: Any = Replacement(self.data, self.z0, self.noise, self.known)
                end = flow(data, x, sigma_start, sigma_end, self.reference_steps)
                self._cache[key] = data.denoise(end, sigma_end)[:, ~self.known]
            elif kind == "conditional":
                data = Conditioned(self.data, self.z0, self.known)
                end = flow(data, x[:, ~self.known], sigma_start, sigma_end, self.reference_steps)
                self._cache[key] = data.denoise(end, sigma_end)
            else:
                raise ValueError(f"truth must be 'replacement' or 'conditional', not {kind!r}")
        return self._cache[key]

    def levels(self, run: PlateRun) -> tuple[float, float]:
        """The run's first and last noise level (where its truths start and end)."""
        return float(self.table.sigma(run.timesteps[0])), float(self.table.sigma(run.timesteps[-1]))

    def error(self, run: PlateRun, kind: str = "replacement") -> float:
        """RMS over samples and re-generated coordinates of the run against a truth."""
        if not torch.equal(run.outside, self.z0[:, self.known]):
            raise AssertionError(f"{run.sampler}: the known region is not the plate's after the last step")
        return rms(run.inside - self.truth(kind, *self.levels(run)))

    def replacement_gap(self, run: PlateRun) -> float:
        """RMS distance of the replacement flow from exact inpainting over the run's levels: the blend's own
        cost, which no step count removes."""
        levels = self.levels(run)
        return rms(self.truth("replacement", *levels) - self.truth("conditional", *levels))


Row = list[tuple[int, float]]  # per step count: (evaluations, error)


def blend_table(harness: PlateHarness, strength: float, steps: Sequence[int] = STEPS,
                samplers: Sequence[str] = SAMPLERS, blends: Sequence[str] = tuple(BLENDS),
                kind: str = "replacement") -> dict[str, Row]:
    """label -> [(evaluations, error against ``kind``)]: every sampler with the engine's blend, then the midpoint
    sampler with each blend of ``blends`` other than the engine's."""
    table: dict[str, Row] = {}
    for sampler in samplers:
        runs = [harness.run(sampler, n, strength) for n in steps]
        table[sampler] = [(r.evaluations, harness.error(r, kind)) for r in runs]
    for blend in blends:
        if blend != "own":
            runs = [harness.run("midpoint", n, strength, blend) for n in steps]
            table[f"midpoint, {blend}"] = [(r.evaluations, harness.error(r, kind)) for r in runs]
    return table


def format_blend_table(table: dict[str, Row], steps: Sequence[int] = STEPS, order: bool = True) -> str:
    """Markdown: one row per label, `error (evaluations)` per step count, and (``order``) the fitted order."""
    tail = " order (fit) |" if order else ""
    lines = ["| sampler, blend | " + " | ".join(f"steps {n}" for n in steps) + " |" + tail,
             "|---" * (len(steps) + 1 + order) + "|"]
    for label, row in table.items():
        cells = " | ".join(f"{e:.2e} ({n})" for n, e in row)
        lines.append(f"| {label} | {cells} |" + (f" {observed_order(row):.2f} |" if order else ""))
    return "\n".join(lines)

