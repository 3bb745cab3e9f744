"""A sampler accuracy harness where the truth is known: data from a Gaussian mixture.

For data x0 from a mixture of diagonal Gaussians the noisy marginal at noise level sigma (x = x0 + sigma n,
that is x_t / alpha_t) is again a mixture, so the posterior mean D(x, sigma) = E[x0 | x] has a closed
form. That gives an exact epsilon-prediction "model" at any timestep a scheduler passes, so every idcli
sampler can be run exactly as the engine runs it (its loop, the SD scheduler config, make_scheduler) and
compared with a very fine solution of the probability-flow ODE from the same start. Pure float64 torch;
no network, no download. docs/samplers.md explains the choices; tools/sampler_accuracy.py writes the table.

Conventions:

* timestep -> noise level: log sigma linear in t between the entries of the discrete training table,
  the mapping diffusers' ``_sigma_to_t`` inverts (integer timesteps give the table itself);
* start: each run's first noise level, where its initial latent is exactly the noise in x_t terms
  (checked for every run: a mis-scaled start fails loudly);
* end ("common", the default): the ODE down to sigma(t_end) (t_end = 1, the lowest level SD's 'leading'
  schedules evaluate), then the denoised estimate there, which is the final "Euler step to 0" the
  samplers take. A scheduler that stops at a noise level instead (DDIM with set_alpha_to_one false stops
  at sigma(0)) is compared with the ODE solution at that level, in the x_t scaling it returns. With
  end="own" each truth ends at the run's own last level instead, which isolates the integrator from
  where a schedule stops;
* error: RMS over all samples and coordinates of the final latent.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from ..presets import PRESETS

# The SD 1.5 / SDXL scheduler config the tiny presets use; the published configs agree on every field the
# samplers read (scaled_linear betas, epsilon prediction, leading spacing, steps_offset 1).
SD_CONFIG: dict[str, Any] = dict(PRESETS["tiny-sd"].components["scheduler"])
KNOWN_ORDERS: dict[str, int] = {"ddim": 1, "euler": 1, "heun": 2, "dpmpp-2m": 2, "midpoint": 2}
NFE_TARGETS = (5, 10, 20, 50)
F64 = torch.float64


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Small tensors and many calls: torch's thread pool only costs here (10x on a busy 2-core box)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# -- the data ------------------------------------------------------------------------------------


class Denoiser(Protocol):
    @property
    def dim(self) -> int: ...

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor: ...


@dataclass(frozen=True)
class GaussianMixture:
    weights: torch.Tensor  # (K,), sums to 1
    means: torch.Tensor  # (K, d)
    variances: torch.Tensor  # (K, d), diagonal covariances

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """E[x0 | x0 + sigma n = x] for x of shape (n, d); sigma a number or one per row."""
        sigma = torch.as_tensor(sigma, dtype=F64).reshape(-1, 1, 1)
        var = self.variances[None] + sigma**2  # (n, K, d): each component's variance of x
        diff = x[:, None, :] - self.means[None]
        log_p = self.weights.log()[None] - 0.5 * (diff**2 / var + var.log()).sum(-1)
        resp = torch.softmax(log_p, dim=1)  # (n, K) posterior component probabilities
        post = self.means[None] + self.variances[None] / var * diff  # each component's posterior mean
        return (resp[..., None] * post).sum(1)


def default_mixture(dim: int = 8, seed: int = 0) -> GaussianMixture:
    """Four components with unequal weights, spread means and per-coordinate standard deviations from 0.15
    to 0.8: about unit variance per coordinate, like SD's scaled latents, with narrow components whose
    posterior changes quickly at low noise, where samplers make their largest relative errors."""
    g = torch.Generator().manual_seed(seed)
    weights = torch.tensor([0.35, 0.3, 0.2, 0.15], dtype=F64)
    means = 0.8 * torch.randn(4, dim, generator=g, dtype=F64)
    stds = 0.15 + 0.65 * torch.rand(4, dim, generator=g, dtype=F64)
    return GaussianMixture(weights, means, stds**2)


@dataclass(frozen=True)
class Guided:
    """Classifier-free guidance on exact denoisers: D = D_u + w (D_c - D_u), as the engine combines eps."""

    unconditional: Denoiser
    conditional: Denoiser
    guidance: float

    @property
    def dim(self) -> int:
        return self.unconditional.dim

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        d_u = self.unconditional.denoise(x, sigma)
        return d_u + self.guidance * (self.conditional.denoise(x, sigma) - d_u)


def guided_mixture(guidance: float, mixture: GaussianMixture | None = None, component: int = 2) -> Guided:
    """The mixture guided towards one of its components (the "prompt"), at CFG scale `guidance`."""
    mixture = mixture or default_mixture()
    k = slice(component, component + 1)
    cond = GaussianMixture(torch.ones(1, dtype=F64), mixture.means[k], mixture.variances[k])
    return Guided(mixture, cond, guidance)


# -- the noise schedule and the exact model -------------------------------------------------------


class NoiseTable:
    """timestep <-> noise level for a diffusers scheduler config, in float64.

    Written independently of the midpoint sampler's own mapping on purpose: the harness checks the
    samplers, so it does not share their arithmetic."""

    def __init__(self, config: dict[str, Any]) -> None:
        from .midpoint import train_alphas_cumprod

        abar = train_alphas_cumprod(config["num_train_timesteps"], config["beta_start"], config["beta_end"],
                                    config["beta_schedule"], config.get("trained_betas")).to(F64)
        self.alphas_cumprod = abar
        self.log_sigmas = 0.5 * torch.log((1 - abar) / abar)

    def sigma(self, t: torch.Tensor | float) -> torch.Tensor:
        """Noise level at a (possibly fractional) timestep: log sigma linear in t between table entries."""
        t = torch.as_tensor(t, dtype=F64).clamp(0, len(self.log_sigmas) - 1)
        lo = t.floor().long().clamp(max=len(self.log_sigmas) - 2)
        w = t - lo
        return torch.exp((1 - w) * self.log_sigmas[lo] + w * self.log_sigmas[lo + 1])

    def timestep(self, sigma: float) -> float:
        """The inverse of sigma(), as diffusers' ``_sigma_to_t`` computes it."""
        return float(np.interp(math.log(sigma), self.log_sigmas.numpy(), np.arange(len(self.log_sigmas))))


class ExactModel:
    """The exact epsilon (or v) prediction for a denoiser, called like a UNet: model(x_t, t)."""

    def __init__(self, data: Denoiser, table: NoiseTable, prediction_type: str = "epsilon") -> None:
        self.data, self.table, self.prediction_type = data, table, prediction_type
        self.timesteps: list[float] = []

    @property
    def calls(self) -> int:
        return len(self.timesteps)

    def __call__(self, x_t: torch.Tensor, t: Any) -> torch.Tensor:
        self.timesteps.append(float(t))
        sigma = self.table.sigma(float(t))
        alpha = 1 / torch.sqrt(1 + sigma**2)
        x = x_t.to(F64) / alpha
        denoised = self.data.denoise(x, sigma)
        eps = (x - denoised) / sigma
        if self.prediction_type == "v_prediction":
            return alpha * eps - sigma * alpha * denoised  # v = alpha_t eps - sigma_t x0
        return eps


# -- the reference ------------------------------------------------------------------------------


def flow(data: Denoiser, x: torch.Tensor, sigma_from: torch.Tensor | float, sigma_to: torch.Tensor | float,
         steps: int = 400) -> torch.Tensor:
    """The probability-flow ODE dx/dlog(sigma) = x - D(x, sigma) by classical RK4 with `steps` equal steps in
    log sigma, each row from its own sigma_from to its own sigma_to (so many references run as one batch)."""
    n = x.shape[0]
    s = torch.log(torch.as_tensor(sigma_from, dtype=F64)).expand(n).clone()
    h = (torch.log(torch.as_tensor(sigma_to, dtype=F64)) - s).expand(n) / steps
    hc = h[:, None]

    def f(y: torch.Tensor, s_now: torch.Tensor) -> torch.Tensor:
        return y - data.denoise(y, s_now.exp())

    for _ in range(steps):
        k1 = f(x, s)
        k2 = f(x + 0.5 * hc * k1, s + 0.5 * h)
        k3 = f(x + 0.5 * hc * k2, s + 0.5 * h)
        k4 = f(x + hc * k3, s + h)
        x = x + hc / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        s = s + h
    return x


# -- running idcli's samplers -------------------------------------------------------------------


@dataclass
class SamplerRun:
    sampler: str
    steps: int
    output: torch.Tensor  # the final latent, float64
    timesteps: list[float]  # as the model received them, one per evaluation
    first_input: torch.Tensor  # the model's first input (x_t at the start): must equal the noise
    final_alpha_cumprod: float | None  # set when the scheduler stops at a noise level (DDIM)

    @property
    def nfe(self) -> int:
        return len(self.timesteps)


def make_sampler(name: str, config: dict[str, Any] | None = None, **overrides: Any) -> Any:
    """idcli's scheduler for `name` from an SD-style config, made exactly as the engine makes it.
    `overrides` are for ablations only (e.g. the textbook midpoint); the engine never passes any."""
    from .samplers import make_scheduler

    scheduler = make_scheduler(name, dict(config or SD_CONFIG))
    if overrides:
        scheduler = type(scheduler).from_config(scheduler.config, **overrides)
    return scheduler


def run_sampler(name: str, steps: int, noise: torch.Tensor, data: Denoiser, config: dict[str, Any] | None = None,
                **overrides: Any) -> SamplerRun:
    """One run of the loop engine/core.py runs (scale input, predict, scheduler step; written out here,
    without CFG or fusion), the model being the exact one."""
    config = config or SD_CONFIG
    scheduler = make_sampler(name, config, **overrides)
    model = ExactModel(data, NoiseTable(config), config.get("prediction_type", "epsilon"))
    scheduler.set_timesteps(steps, device="cpu")
    latents = noise * scheduler.init_noise_sigma
    first_input = None
    for t in scheduler.timesteps:
        model_in = scheduler.scale_model_input(latents, t)
        if first_input is None:
            first_input = model_in
        eps = model(model_in, t)
        latents = scheduler.step(eps, t, latents, return_dict=False)[0]
    final_alpha = getattr(scheduler, "final_alpha_cumprod", None)
    return SamplerRun(name, steps, latents.to(F64), model.timesteps, first_input,
                      None if final_alpha is None else float(final_alpha))


def nfe_of(name: str, steps: int, config: dict[str, Any] | None = None, **overrides: Any) -> int:
    """Model evaluations the engine loop makes for `steps`: one per timestep the scheduler lists."""
    scheduler = make_sampler(name, config, **overrides)
    scheduler.set_timesteps(steps, device="cpu")
    return len(scheduler.timesteps)


def steps_for(name: str, nfe: int, config: dict[str, Any] | None = None, **overrides: Any) -> int:
    """The most steps whose NFE is at most `nfe` (NFE never falls as steps grow)."""
    steps = nfe
    while steps > 1 and nfe_of(name, steps, config, **overrides) > nfe:
        steps -= 1
    return steps


Key = tuple[float, float, bool]  # a truth: (first level, last level, denoise at the end?)


@dataclass
class Harness:
    """Runs samplers from shared noise against exact references, cached by start and end."""

    data: Denoiser = field(default_factory=default_mixture)
    samples: int = 256
    seed: int = 1
    config: dict[str, Any] = field(default_factory=lambda: dict(SD_CONFIG))
    t_end: int = 1
    end: str = "common"  # or "own": each truth ends at the run's own last level
    reference_steps: int = 400
    _cache: dict[Key, torch.Tensor] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.end not in ("common", "own"):
            raise ValueError("end must be 'common' or 'own'")
        self.table = NoiseTable(self.config)
        g = torch.Generator().manual_seed(self.seed)
        self.noise = torch.randn(self.samples, self.data.dim, generator=g, dtype=F64)
        self.sigma_end = float(self.table.sigma(self.t_end))

    def key(self, run: SamplerRun) -> Key:
        sigma_start = float(self.table.sigma(run.timesteps[0]))
        if run.final_alpha_cumprod is not None:
            a = run.final_alpha_cumprod
            return sigma_start, math.sqrt((1 - a) / a), False
        if self.end == "own":
            return sigma_start, float(self.table.sigma(run.timesteps[-1])), True
        return sigma_start, self.sigma_end, True

    def references(self, keys: Iterable[Key], steps: int | None = None) -> dict[Key, torch.Tensor]:
        """Exact solutions for several truths at once (one batched RK4); cached unless `steps` is given."""
        keys = list(dict.fromkeys(keys))
        store: dict[Key, torch.Tensor] = {} if steps is not None else self._cache
        todo = [k for k in keys if k not in store]
        if todo:
            n = self.samples
            start = torch.tensor([k[0] for k in todo], dtype=F64).repeat_interleave(n)
            end = torch.tensor([k[1] for k in todo], dtype=F64).repeat_interleave(n)
            x_start = self.noise.repeat(len(todo), 1) * torch.sqrt(1 + start**2)[:, None]
            x = flow(self.data, x_start, start, end, steps or self.reference_steps)
            for i, (_, sigma, denoise) in enumerate(todo):
                xi = x[i * n:(i + 1) * n]
                store[todo[i]] = self.data.denoise(xi, sigma) if denoise else xi / math.sqrt(1 + sigma**2)
        return {k: store[k] for k in keys}

    def run(self, name: str, steps: int, **overrides: Any) -> SamplerRun:
        run = run_sampler(name, steps, self.noise, self.data, self.config, **overrides)
        if not torch.allclose(run.first_input.to(F64), self.noise, rtol=1e-5, atol=1e-6):
            raise AssertionError(f"{name}: the first model input is not the initial noise (mis-scaled start)")
        return run

    def errors(self, runs: Sequence[SamplerRun]) -> list[float]:
        refs = self.references(self.key(r) for r in runs)
        return [rms(r.output - refs[self.key(r)]) for r in runs]

    def sweep(self, name: str, nfes: Iterable[int], **overrides: Any) -> list[tuple[int, float]]:
        """(actual NFE, error) with the most steps that fit each NFE budget."""
        runs = [self.run(name, steps_for(name, n, self.config, **overrides), **overrides) for n in nfes]
        return list(zip((r.nfe for r in runs), self.errors(runs), strict=True))

    def closing_gap(self, sigma_start: float) -> float:
        """RMS distance from the common truth (denoised at sigma(t_end)) to the ODE's own limit at sigma -> 0:
        what no sampler can remove without evaluating the model below its lowest trained noise level."""
        key = (sigma_start, self.sigma_end, True)
        closed = self.references([key])[key]
        x_start = self.noise * math.sqrt(1 + sigma_start**2)
        limit = flow(self.data, x_start, sigma_start, 1e-6, 2 * self.reference_steps)
        return rms(closed - limit)


def rms(x: torch.Tensor) -> float:
    return float(x.pow(2).mean().sqrt())


def observed_order(points: Sequence[tuple[int, float]]) -> float:
    """Least-squares slope of -log(error) against log(NFE)."""
    nfe = np.log([p[0] for p in points])
    err = np.log([p[1] for p in points])
    return float(-np.polyfit(nfe, err, 1)[0])


Table = dict[str, list[tuple[int, float]]]


def error_table(harness: Harness | None = None, samplers: Sequence[str] = tuple(KNOWN_ORDERS),
                nfes: Sequence[int] = NFE_TARGETS, variants: dict[str, dict[str, Any]] | None = None) -> Table:
    """sampler -> [(actual NFE, RMS error)] per NFE budget; `variants` adds ablations, each
    label -> {"sampler": name, **scheduler overrides}."""
    harness = harness or Harness()
    table = {name: harness.sweep(name, nfes) for name in samplers}
    for label, spec in (variants or {}).items():
        overrides = dict(spec)
        table[label] = harness.sweep(overrides.pop("sampler"), nfes, **overrides)
    return table


def format_table(table: Table, nfes: Sequence[int] = NFE_TARGETS, fit_from: int = 10,
                 fmt: Callable[[float], str] = lambda e: f"{e:.2e}") -> str:
    """Markdown: one row per sampler, `error (actual NFE)` per budget, and the order fitted from `fit_from`."""
    head = "| sampler | " + " | ".join(f"NFE ≤ {n}" for n in nfes) + f" | order (fit, NFE {fit_from}…{nfes[-1]}) |"
    lines = [head, "|---" * (len(nfes) + 2) + "|"]
    for name, points in table.items():
        cells = [f"{fmt(e)} ({n})" for n, e in points]
        fit = [p for budget, p in zip(nfes, points, strict=True) if budget >= fit_from]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {observed_order(fit):.2f} |")
    return "\n".join(lines)
