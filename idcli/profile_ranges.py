"""Named ranges around idcli's phases, seen by ``torch.profiler`` (``idcli bench --profile``) and free otherwise.

A range is a ``torch.profiler.record_function`` only while ``ranges_on()`` is open: the profiler then attributes
each operation (and on a GPU each kernel it launched) to the innermost range around it. Closed, ``phase`` returns
one shared ``nullcontext`` and ``ranged`` calls straight through: no torch call, no host sync, nothing a render
pays for (the no-sync tests of tests/test_gpu_ready.py and tests/test_device_placement.py watch the loop).

Ranges nest: the attention probe (``PROBE``) runs inside UNet forwards (``UNET``), and idcli/bench/profile.py
counts each operation in its innermost range only, so the phases add up to the profiled time.
No torch import here: planning code uses it too.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

UNET = "idcli.unet"  # a UNet forward of the denoising loop (every row of one evaluation)
PROBE = "idcli.probe"  # the dual-line attention probe: its record inside the forward, its maps after it
FUSION = "idcli.fusion"  # dual-line fusion after the forward: masks updated, made exclusive, lines fused
VAE_DECODE = "idcli.vae_decode"  # latents to pixels, the copy to the host included
TEXT = "idcli.text"  # the rows' prompts through the text encoders
IDENTITY = "idcli.identity"  # identities resolved (selfies encoded or packs read), the rows' identity inputs

# The phases a profile reports, each the ranges it sums; operations in none of them are "outside".
PHASES = {"unet": (UNET,), "probe_fusion": (PROBE, FUSION), "vae_decode": (VAE_DECODE,), "text_encode": (TEXT,),
          "identity": (IDENTITY,)}

_on = False
_NULL = contextlib.nullcontext()
F = TypeVar("F", bound=Callable[..., Any])


def enabled() -> bool:
    return _on


@contextlib.contextmanager
def ranges_on() -> Iterator[None]:
    """Ranges are recorded while the block runs (one profiled render at a time)."""
    global _on
    before, _on = _on, True
    try:
        yield
    finally:
        _on = before


def phase(name: str) -> contextlib.AbstractContextManager[Any]:
    """A ``record_function`` range called ``name`` while ranges are on, else a shared no-op context.

    Never inside a ``torch.compile``'d region: a range there would make the graph depend on this module's flag
    (a recompile when profiling starts), so the callers there (the probe's record) open it on the eager path only.
    """
    if not _on:
        return _NULL
    import torch

    return torch.profiler.record_function(name)


def ranged(name: str) -> Callable[[F], F]:
    """Decorator: the function runs inside ``phase(name)`` while ranges are on (else it is called directly)."""
    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not _on:
                return function(*args, **kwargs)
            with phase(name):
                return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
