"""`sampler: midpoint`: a second-order midpoint integrator of the probability-flow ODE.

Written in the noise-level form the Euler/Heun schedulers use, x = x_t / alpha_t and
sigma = sqrt((1 - abar) / abar), where the ODE reads dx/dsigma = eps(x, sigma). On noise levels
sigma_0 > ... > sigma_{n-1} (the model's own grid for the config's ``timestep_spacing``) one step is the
midpoint rule:

    x_{i+1/2} = x_i + (sigma_{i+1/2} - sigma_i) * s_i              s_i: a slope at (x_i, sigma_i)
    x_{i+1}   = x_i + (sigma_{i+1} - sigma_i) * eps(x_{i+1/2}, sigma_{i+1/2})
    sigma_{i+1/2} = (sigma_i + sigma_{i+1}) / 2

and after the last level the denoised estimate x - sigma * eps (an Euler step to sigma 0, as Euler and Heun
end).

The improvement (``predictor="extrapolated"``, the default): the textbook method evaluates the model at
(x_i, sigma_i) only to place the midpoint, and the midpoint needs only first-order accuracy there (an
O(h^2) error in x_{i+1/2} moves x_{i+1} by O(h^3)). So s_i is extrapolated linearly from the two latest
evaluations instead (the previous midpoint and the one before), which costs nothing: every evaluation
after the first lands on a midpoint and advances a whole step. The method stays second order and, for
the same number of model evaluations, takes twice the steps. ``predictor="fresh"`` is the textbook
midpoint and ``"previous"`` reuses the latest slope unextrapolated; with ``form="exponential"`` the step
is the data-prediction exponential integrator at the log-sigma midpoint. Those and ``noise_levels``
exist to measure the choice (docs/samplers.md, docs/sampler-accuracy.md), not for shot lists.

A shot's ``steps`` is its number of model evaluations: ``steps - 1`` noise levels, one evaluation at the
first level, one per midpoint, one at the last level (so NFE = steps; steps 1 and 2 both give a single
evaluation). With ``predictor="fresh"`` each step costs two: (steps + 1) // 2 levels, NFE = 2 * levels - 1.
The timesteps list every evaluation in order, like diffusers' Heun, so the ordinary loop
(scale_model_input, model, step) drives it with no special cases.

Every operation is elementwise with scalar coefficients: a row's result never depends on its batch.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import KarrasDiffusionSchedulers, SchedulerMixin, SchedulerOutput

PREDICTORS = ("extrapolated", "previous", "fresh")
FORMS = ("sigma", "exponential")
NOISE_LEVELS = ("model", "log-uniform", "karras")

_GRID, _MID, _FINAL = "grid", "mid", "final"  # what each model evaluation is for


def train_alphas_cumprod(num_train_timesteps: int, beta_start: float, beta_end: float, beta_schedule: str,
                         trained_betas: Any = None) -> torch.Tensor:
    """The discrete training table, computed exactly as diffusers' schedulers compute it (float32)."""
    if trained_betas is not None:
        betas = torch.tensor(trained_betas, dtype=torch.float32)
    elif beta_schedule == "linear":
        betas = torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float32)
    elif beta_schedule == "scaled_linear":
        betas = torch.linspace(beta_start**0.5, beta_end**0.5, num_train_timesteps, dtype=torch.float32) ** 2
    elif beta_schedule == "squaredcos_cap_v2":
        from diffusers.schedulers.scheduling_ddpm import betas_for_alpha_bar

        betas = betas_for_alpha_bar(num_train_timesteps)
    else:
        raise ValueError(f"beta_schedule {beta_schedule!r} is not supported by the midpoint sampler")
    return torch.cumprod(1.0 - betas, dim=0)


def grid_timesteps(levels: int, num_train_timesteps: int, spacing: str, steps_offset: int) -> np.ndarray:
    """Grid timesteps, high noise first, by the same rules as diffusers' Euler and Heun schedulers."""
    if spacing == "linspace":
        return np.linspace(0, num_train_timesteps - 1, levels, dtype=np.float64)[::-1].copy()
    if spacing == "leading":
        ratio: float = num_train_timesteps // levels
        return (np.arange(0, levels) * ratio).round()[::-1].astype(np.float64) + steps_offset
    if spacing == "trailing":
        ratio = num_train_timesteps / levels
        return np.arange(num_train_timesteps, 0, -ratio).round().astype(np.float64) - 1
    raise ValueError(f"timestep_spacing {spacing!r} is not supported; use 'leading', 'trailing' or 'linspace'")


class MidpointScheduler(SchedulerMixin, ConfigMixin):
    """Second-order midpoint sampler for epsilon-, v- and sample-prediction models (see the module doc)."""

    # Listing the schedulers SD/SDXL configs come from lets from_config drop their own fields (clip_sample,
    # set_alpha_to_one, skip_prk_steps ...) quietly instead of warning on every render.
    _compatibles: ClassVar[list[str]] = [e.name for e in KarrasDiffusionSchedulers]
    order = 1  # one evaluation per step after the first (pipelines use this for progress bars only)

    @register_to_config
    def __init__(self, num_train_timesteps: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012,
                 beta_schedule: str = "scaled_linear", trained_betas: Any = None,
                 prediction_type: str = "epsilon", timestep_spacing: str = "leading", steps_offset: int = 0,
                 rescale_betas_zero_snr: bool = False, predictor: str = "extrapolated", form: str = "sigma",
                 noise_levels: str = "model") -> None:
        if prediction_type not in ("epsilon", "v_prediction", "sample"):
            raise ValueError(f"prediction_type {prediction_type!r} is not supported by the midpoint sampler")
        for name, value, allowed in (("predictor", predictor, PREDICTORS), ("form", form, FORMS),
                                     ("noise_levels", noise_levels, NOISE_LEVELS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, not {value!r}")
        if rescale_betas_zero_snr:
            # Zero terminal SNR puts the first level at sigma = infinity, where x = x_t / alpha_t is
            # undefined; failing loudly beats a silently wrong image.
            raise ValueError("the midpoint sampler does not support rescale_betas_zero_snr")
        self.alphas_cumprod = train_alphas_cumprod(num_train_timesteps, beta_start, beta_end, beta_schedule,
                                                   trained_betas)
        abar = self.alphas_cumprod.double().numpy()
        # log sigma per training timestep; a fractional timestep is the log-sigma interpolation of this
        # table, the mapping diffusers' _sigma_to_t inverts.
        self._log_sigmas = 0.5 * np.log((1.0 - abar) / abar)
        self.timesteps = torch.zeros(0)
        self.num_inference_steps: int | None = None
        self._sigmas: list[float] = []  # noise level of each model evaluation, in timestep order
        self._roles: list[str] = []
        self._levels: list[float] = []  # the grid levels sigma_0 > ... > sigma_{N-1}
        self._step_index: int | None = None
        self._begin_index: int | None = None
        self._reset_state()

    def _reset_state(self) -> None:
        self._level = 0  # the grid level the state is at
        self._x_level: torch.Tensor | None = None  # x at that level, kept between evaluations
        self._slopes: list[tuple[float, torch.Tensor]] = []  # the two latest (sigma, eps)

    # -- schedule -------------------------------------------------------------------------------

    def _sigma_of(self, t: np.ndarray | float) -> np.ndarray:
        return np.exp(np.interp(t, np.arange(len(self._log_sigmas)), self._log_sigmas))

    def _t_of(self, sigma: np.ndarray) -> np.ndarray:
        return np.interp(np.log(sigma), self._log_sigmas, np.arange(len(self._log_sigmas)))

    def levels_for(self, steps: int) -> int:
        """Noise levels for a budget of `steps` model evaluations."""
        if self.config.predictor == "fresh":
            return max(1, (steps + 1) // 2)
        return max(1, steps - 1)

    def set_timesteps(self, num_inference_steps: int, device: str | torch.device | None = None) -> None:
        if num_inference_steps < 1:
            raise ValueError("the midpoint sampler needs at least one step")
        cfg = self.config
        n = self.levels_for(num_inference_steps)
        grid_t = grid_timesteps(n, cfg.num_train_timesteps, cfg.timestep_spacing, cfg.steps_offset)
        grid = self._sigma_of(grid_t)
        if n > 2 and cfg.noise_levels != "model":
            # Same first and last level as the model's grid, spaced differently in between.
            if cfg.noise_levels == "log-uniform":
                grid = np.exp(np.linspace(np.log(grid[0]), np.log(grid[-1]), n))
            else:  # Karras et al. 2022, rho = 7
                ramp = np.linspace(0.0, 1.0, n)
                grid = (grid[0] ** (1 / 7) + ramp * (grid[-1] ** (1 / 7) - grid[0] ** (1 / 7))) ** 7
        mids = np.sqrt(grid[:-1] * grid[1:]) if cfg.form == "exponential" else 0.5 * (grid[:-1] + grid[1:])
        if n == 1:
            levels, roles = grid, [_FINAL]
        elif cfg.predictor == "fresh":
            levels = np.empty(2 * n - 1)
            levels[0::2], levels[1::2] = grid, mids
            roles = [_GRID, _MID] * (n - 1) + [_FINAL]
        else:
            levels = np.concatenate([grid[:1], mids, grid[-1:]])
            roles = [_GRID] + [_MID] * (n - 1) + [_FINAL]
        timesteps = self._t_of(levels).astype(np.float32)
        # The model sees float32 timesteps; the integrator uses the noise level of exactly that timestep,
        # so the two agree on where each evaluation is. Grid levels the model is not evaluated at (all but the
        # first and last, unless predictor="fresh") are only ever reached through the integrator.
        self._sigmas = [float(s) for s in self._sigma_of(timesteps.astype(np.float64))]
        self._levels = [float(s) for s in grid]
        level = 0
        for k, role in enumerate(roles):
            if role == _MID:
                level += 1
            else:
                self._levels[level] = self._sigmas[k]
        self._roles = roles
        self.timesteps = torch.from_numpy(timesteps).to(device=device)
        self.num_inference_steps = num_inference_steps
        self._step_index = None
        self._reset_state()

    @property
    def sigmas(self) -> torch.Tensor:
        """The noise level of each model evaluation, then 0 (where the last step lands)."""
        return torch.tensor([*self._sigmas, 0.0], dtype=torch.float64)

    @property
    def init_noise_sigma(self) -> float:
        # x = x_t / alpha_t with x_t = noise: exactly where DDIM and DPM-Solver start for the same level.
        return math.sqrt(self._sigmas[0] ** 2 + 1.0)

    @property
    def step_index(self) -> int | None:
        return self._step_index

    @property
    def begin_index(self) -> int | None:
        return self._begin_index

    def set_begin_index(self, begin_index: int = 0) -> None:
        """Begin at evaluation ``begin_index`` (image-to-image: a plate's face crops run the end of the schedule).

        The integrator needs a slope at a noise level of the grid before it can place a midpoint, so an
        evaluation that would be the midpoint between levels b - 1 and b becomes the evaluation at level b
        itself: its timestep is rewritten in place (a slice of ``timesteps`` taken before sees it, as
        diffusers' img2img takes one), and ``add_noise`` at that timestep puts the start sample there. The
        evaluations from there on are as many as before. The textbook predictor (``"fresh"``) pairs its
        evaluations, so it begins only at a grid level. Call after ``set_timesteps``.
        """
        self._begin_index = begin_index
        if not 0 < begin_index < len(self._roles) or self._roles[begin_index] != _MID:
            return
        if self.config.predictor == "fresh":
            raise ValueError("the midpoint sampler with predictor='fresh' begins only at a grid level")
        level = begin_index  # with one evaluation per step, evaluation k >= 1 is the midpoint of levels k-1, k
        timestep = np.float32(self._t_of(np.array([self._levels[level]]))[0])
        self.timesteps[begin_index] = float(timestep)
        self._sigmas[begin_index] = float(self._sigma_of(np.float64(timestep)))
        self._levels[level] = self._sigmas[begin_index]
        self._roles[begin_index] = _GRID

    def _index(self) -> int:
        if self._step_index is None:
            self._step_index = self._begin_index or 0
            # The level the first evaluation is at (0 without a begin index).
            self._level = self._step_index // 2 if self.config.predictor == "fresh" else self._step_index
        return self._step_index

    def add_noise(self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: Any) -> torch.Tensor:
        """``x = x_0 + sigma(t) * noise`` in this sampler's form x = x_t / alpha_t, sigma from the timestep's
        value as the evaluations' are (image-to-image starts, the known-region blend of plates)."""
        t = torch.as_tensor(timesteps).detach().to("cpu", torch.float64).numpy().reshape(-1)
        sigma = torch.from_numpy(self._sigma_of(t)).to(original_samples.device, original_samples.dtype)
        return original_samples + sigma.reshape(-1, *([1] * (original_samples.ndim - 1))) * noise

    def scale_model_input(self, sample: torch.Tensor, timestep: Any = None) -> torch.Tensor:
        """x -> x_t = x / sqrt(sigma^2 + 1), the input the network was trained on."""
        return sample / math.sqrt(self._sigmas[self._index()] ** 2 + 1.0)

    # -- integration ----------------------------------------------------------------------------

    def _eps(self, model_output: torch.Tensor, sample: torch.Tensor, sigma: float) -> torch.Tensor:
        kind = self.config.prediction_type
        if kind == "epsilon":
            return model_output
        if kind == "v_prediction":
            # eps = sigma_t x_t + alpha_t v, where alpha_t = 1 / sqrt(1 + sigma^2), sigma_t = sigma alpha_t and
            # x_t = alpha_t x.
            return (sigma * sample + math.sqrt(sigma**2 + 1.0) * model_output) / (sigma**2 + 1.0)
        return (sample - model_output) / sigma  # sample prediction: D = output

    def _predict_slope(self, sigma: float) -> torch.Tensor:
        """A slope at level sigma from the latest evaluations (the predictor only needs first order)."""
        (sigma_b, eps_b) = self._slopes[-1]
        if self.config.predictor == "previous" or len(self._slopes) < 2:
            return eps_b
        sigma_a, eps_a = self._slopes[-2]
        return eps_b + (sigma - sigma_b) / (sigma_b - sigma_a) * (eps_b - eps_a)

    def step(self, model_output: torch.Tensor, timestep: Any, sample: torch.Tensor,
             return_dict: bool = True, **_: Any) -> SchedulerOutput | tuple[torch.Tensor]:
        k = self._index()
        if k >= len(self._sigmas):
            raise IndexError("step() called more times than there are timesteps; call set_timesteps first")
        # float16/bfloat16 latents are integrated in float32 (the kept state too); float64 stays float64.
        work = torch.promote_types(sample.dtype, torch.float32)
        x = sample.to(work)
        sigma, role = self._sigmas[k], self._roles[k]
        if role != _MID and self._x_level is not None:
            # A grid or final evaluation sits at the level the state is at: integrate from the kept
            # float32 state, not from its bfloat16/float16 copy handed to the model.
            x = self._x_level
        eps = self._eps(model_output.to(work), x, sigma)
        if role == _FINAL:
            out = x - sigma * eps  # the denoised estimate: Euler from the last level to sigma 0
        else:
            if role == _GRID:
                self._x_level, slope = x, eps
            else:
                out = self._full_step(x, eps, sigma)
                self._level += 1
                self._x_level = out
                slope = None
            self._slopes = [*self._slopes[-1:], (sigma, eps)]
            if self._roles[k + 1] == _MID:  # place the next midpoint
                sigma_i, x_i = self._levels[self._level], self._x_level
                slope = slope if slope is not None else self._predict_slope(sigma_i)
                out = x_i + (self._sigmas[k + 1] - sigma_i) * slope
            elif role == _GRID:
                # Begun at the last midpoint (set_begin_index made it the last grid level): the final
                # evaluation is at this same level and integrates from the kept state.
                out = x
        self._step_index = k + 1
        prev = out.to(sample.dtype)
        if not return_dict:
            return (prev,)
        return SchedulerOutput(prev_sample=prev)

    def _full_step(self, x_mid: torch.Tensor, eps_mid: torch.Tensor, sigma_mid: float) -> torch.Tensor:
        """x_{i+1} from x_i with the midpoint's slope."""
        x_i, sigma_i, sigma_next = self._x_level, self._levels[self._level], self._levels[self._level + 1]
        assert x_i is not None
        if self.config.form == "exponential":
            # x_{i+1} = (s'/s) x_i + (1 - s'/s) D_mid: exact when D is constant across the step.
            ratio = sigma_next / sigma_i
            return ratio * x_i + (1.0 - ratio) * (x_mid - sigma_mid * eps_mid)
        return x_i + (sigma_next - sigma_i) * eps_mid

    def __len__(self) -> int:
        return self.config.num_train_timesteps
