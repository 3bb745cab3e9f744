"""The denoising loop's span, for tests that watch what runs inside it: from each UNet forward to the loop's last
scheduler step (what follows, the facts and the decode, runs once per batch and is not the loop)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from idcli.engine import samplers


def watch_the_loop(engine: Any, monkeypatch: pytest.MonkeyPatch, on_forward: Callable[[], None],
                   on_last_step: Callable[[], None]) -> Any:
    """Call ``on_forward`` before every UNet forward of ``engine`` and ``on_last_step`` after the last step of every
    scheduler the engine makes from now on; returns the forward hook's handle (``.remove()`` it when done)."""
    make_scheduler = samplers.make_scheduler

    def watched_scheduler(*args: Any, **kwargs: Any) -> Any:
        scheduler = make_scheduler(*args, **kwargs)
        step = scheduler.step

        def stepped(*step_args: Any, **step_kwargs: Any) -> Any:
            out = step(*step_args, **step_kwargs)
            if scheduler.step_index is not None and scheduler.step_index >= len(scheduler.timesteps):
                on_last_step()
            return out

        scheduler.step = stepped
        return scheduler

    monkeypatch.setattr(samplers, "make_scheduler", watched_scheduler)
    return engine.pipe.unet.register_forward_pre_hook(lambda module, args: on_forward())
