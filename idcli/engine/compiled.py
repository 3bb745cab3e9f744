"""``--compile``: the UNet's forward through ``torch.compile``, and a fallback that says so.

One compiled graph should serve every batch a run makes: text-only, single-line and dual-line jobs, one
or several characters, any batch size, any image size and prompt length. What makes that possible lives
with the code that runs inside the graph: the FaceID processors read per-row strength tensors made before
the forward (zero where a row has no identity) instead of skipping work by Python flags, and the
dual-line attention probe gathers its rows by index tensors and resamples its maps after the forward
(engine/faceid.py, engine/fusion.py); FaceID-Plus v2's CLIP rows are a tensor on its projection, two zero
tokens in a batch without identities (engine/faceid_plus.py, ``NO_CLIP_TOKENS``). Two graphs remain, by design:
with the probe attached and without it (a forward after the last fusion window closes does none of the
probe's work). A UNet batch of one row (no guidance, one job) gets its own graph, since torch compiles a
size of 1 as a constant; so, on a CPU only, does a batch of 16 rows or more (torch picks its CPU
convolution kernel by batch size).
``tests/test_compile.py`` counts the graphs of a mixed sequence of batches.

Shapes: ``dynamic=True``, every size symbolic from the first trace (rows, latent height and width, prompt
tokens), so batch composition, image size and prompt windows never recompile; without duck shaping, so
sizes that happen to be equal at the first trace (the rows and the probe's row count, say) stay
independent. Marking only the batch dimension dynamic was the other choice: static spatial sizes let
inductor specialise its generated (pointwise and normalisation) kernels, at one more compile per image
size; the convolutions, matmuls and attention are library kernels either way. Which is faster on a GPU is
still to be measured (docs/performance.md).

``fullgraph=True``: a graph break or torch's recompile limit raises instead of running parts of the
UNet uncompiled without a word. ``CompiledForward`` catches that (and any compiler failure), runs the
forward uncompiled from then on, and keeps the reason in ``fallback``; the engine puts it in the facts of
the batch where it happened, and the executors print it as a warning (executors/local.py).
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def _compile_failures() -> tuple[type[BaseException], ...]:
    """Errors that mean "the compiler could not", as opposed to an error of the forward itself."""
    from torch._dynamo import exc

    return (exc.TorchDynamoException, exc.FailOnRecompileLimitHit)


def _describe(error: BaseException) -> str:
    """One line: what kind of failure, and its first words (a graph break's kind, the backend's error)."""
    from torch._dynamo import config, exc

    if isinstance(error, exc.FailOnRecompileLimitHit):
        return (f"{type(error).__name__}: torch's recompile limit ({config.recompile_limit} graphs of one "
                "function) was reached")
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    text = " ".join(lines[:2])
    return f"{type(error).__name__}: {text[:300]}".rstrip(": ")


class CompiledForward:
    """``forward`` through ``torch.compile(fullgraph=True)``; uncompiled, and saying why, once that fails.

    ``backend``: torch.compile's (``"inductor"`` for speed; the tests use ``"eager"``, which traces and
    guards exactly as inductor does but runs the captured graph op by op, so its images equal uncompiled
    ones bit for bit).
    """

    def __init__(self, forward: Any, backend: Any = "inductor") -> None:
        import torch

        self.eager = forward
        self.backend = backend
        self.compiled = torch.compile(forward, backend=backend, fullgraph=True, dynamic=True)
        self.fallback: str | None = None  # why the forward runs uncompiled, once it does

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.fallback is None:
            from torch.fx.experimental import _config as shapes_config

            try:
                # No duck shaping: sizes that happen to be equal at the first trace (the rows and the probe's
                # index length, say) must not become one symbol that a later batch breaks.
                with shapes_config.patch(use_duck_shape=False):
                    return self.compiled(*args, **kwargs)
            except _compile_failures() as error:
                from .memory import is_out_of_memory

                if is_out_of_memory(error):
                    raise
                self.fallback = _describe(error)
                log.warning("torch.compile gave up on the UNet; it runs uncompiled from now on: %s", self.fallback)
        return self.eager(*args, **kwargs)


def cpu_compile_note(device: str) -> str | None:
    """Said once before a ``--compile`` run on the CPU builds its engine: compiling there is minutes of a start with
    no image (77 s against 8.8 s for a 4-image tiny-sd render, docs/performance.md; a real-size bench's warm-up far
    longer). A note only: nothing refused, nothing keyed; None on a GPU."""
    from ..option_words import Option, words

    if device != "cpu":
        return None
    return words((Option("compile", True), " on the CPU: compiling the UNet takes minutes before the first image (it "
                  "is meant for GPUs; uncompiled, the first image starts at once)"))


def compile_unet(unet: Any, backend: Any = "inductor") -> CompiledForward:
    """Route ``unet``'s calls through a ``CompiledForward`` of its own forward (undone by deleting the
    instance attribute ``unet.forward``)."""
    compiled = CompiledForward(unet.forward, backend)
    unet.forward = compiled
    return compiled
