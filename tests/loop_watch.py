"""The denoising loop's span, for tests that watch what runs inside it: from each UNet forward to the loop's last
scheduler step (what follows, the facts and the decode, runs once per batch and is not the loop)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any, Protocol

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


class LoopWatcher(Protocol):
    """A torch mode that judges only while ``counting`` (set at each UNet forward, cleared at the loop's end) and
    counts the forwards it saw."""

    counting: bool
    forwards: int

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: object) -> Any: ...


def render_watched(engine: Any, requests: list[Any], monkeypatch: pytest.MonkeyPatch, watcher: LoopWatcher) -> list:
    """Render ``requests`` in one batch under ``watcher``, counting from each UNet forward to the loop's last
    scheduler step; fails unless the loop's end was seen."""

    def before_forward() -> None:
        watcher.counting = True
        watcher.forwards += 1

    handle = watch_the_loop(engine, monkeypatch, before_forward, lambda: setattr(watcher, "counting", False))
    try:
        with watcher:
            results = engine.render(requests)
    finally:
        handle.remove()
    assert len(results) == len(requests) and not watcher.counting  # the loop's end was seen
    return results


def own_frame(roots: tuple[str, ...]) -> FrameType | None:
    """Called from a torch mode's ``__torch_function__`` or ``__torch_dispatch__``: the innermost frame outside torch
    of the call it intercepts, when that frame's file lies under ``roots`` (so diffusers' scheduler and UNet code,
    say, is not judged), else None."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None and "/torch/" in frame.f_code.co_filename:
        frame = frame.f_back
    return frame if frame is not None and frame.f_code.co_filename.startswith(roots) else None
