"""Sampler names in shot lists mapped onto diffusers schedulers.

Only deterministic samplers are offered: an ancestral sampler draws fresh noise every step from a
shared generator, which would make an image depend on its batch neighbours.
"""

from __future__ import annotations

from typing import Any


def make_scheduler(name: str, base_config: Any) -> Any:
    """A fresh scheduler (schedulers hold per-run state, so one per batch) configured from the model's."""
    from diffusers import (
        DDIMScheduler,
        DPMSolverMultistepScheduler,
        EulerDiscreteScheduler,
        HeunDiscreteScheduler,
    )

    from .midpoint import MidpointScheduler

    table: dict[str, tuple[Any, dict[str, Any]]] = {  # diffusers' scheduler classes (and ours, from_config alike)
        "ddim": (DDIMScheduler, {}),
        "euler": (EulerDiscreteScheduler, {}),
        "heun": (HeunDiscreteScheduler, {}),
        "dpmpp-2m": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2}),
        "midpoint": (MidpointScheduler, {}),  # ours: see midpoint.py and docs/samplers.md
    }
    cls, overrides = table[name]
    return cls.from_config(base_config, **overrides)
