"""Engine factories for the Ray executor's tests, imported by the Ray workers themselves.

A plain module like cli_helpers.py: the tests' cluster puts tests/ on its workers' PYTHONPATH, so an
``engine_factory`` from here reaches a worker by reference. Each wraps the real tiny engine (built by
idcli's default path in the worker) and adds one fault, so what the workers render is the real thing.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any


class _Wrapped:
    def __init__(self, model: Any, runtime: Any, adapter: Any) -> None:
        from idcli.run import default_engine

        self.engine = default_engine(model, runtime, adapter)
        self.adapter_record = self.engine.adapter_record
        self.suggested: int | None = None  # what ``auto`` is told, when not the tiny engine's own answer

    def suggest_batch_size(self, request: Any) -> int:
        return self.suggested or self.engine.suggest_batch_size(request)


class SlowEngine(_Wrapped):
    """Each batch takes at least a second: a test can kill the worker while a batch is surely in flight."""

    def render(self, requests: list[Any], **kwargs: Any) -> list[Any]:
        time.sleep(1.0)
        return self.engine.render(requests, **kwargs)


class FaultyEngine(_Wrapped):
    """Out of memory for batches larger than two; a ValueError for any prompt that says 'unlucky'."""

    def render(self, requests: list[Any], **kwargs: Any) -> list[Any]:
        import torch

        if len(requests) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        if any("unlucky" in r.prompt for r in requests):
            raise ValueError("this job's prompt is unlucky (simulated fault)")
        return self.engine.render(requests, **kwargs)


def slow_engine(model: Any, runtime: Any, adapter: Any) -> SlowEngine:
    return SlowEngine(model, runtime, adapter)


class ShortEngine(_Wrapped):
    """A pipeline's own engine with a bug: a batch of two or more gets one result fewer than it asked for, so the
    worker's own code (pairing jobs with results) raises, outside the engine's render."""

    def render(self, requests: list[Any], **kwargs: Any) -> list[Any]:
        results = self.engine.render(requests, **kwargs)
        return results[:-1] if len(requests) > 1 else results


def short_engine(model: Any, runtime: Any, adapter: Any) -> ShortEngine:
    return ShortEngine(model, runtime, adapter)


def faulty_engine(model: Any, runtime: Any, adapter: Any) -> FaultyEngine:
    return FaultyEngine(model, runtime, adapter)


class OneImageDecodes(_Wrapped):
    """The VAE out of memory for a decode of more than one image, as on a GPU with little free memory: the engine
    halves its decode chunk to one, so the takes record ``executor.decode_chunk`` 1 (the UNet batch is unchanged)."""

    def __init__(self, model: Any, runtime: Any, adapter: Any) -> None:
        super().__init__(model, runtime, adapter)
        import torch

        vae = self.engine.pipe.vae
        decode = vae.decode

        def short_of_memory(latents: Any, *args: Any, **kwargs: Any) -> Any:
            if len(latents) > 1:
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            return decode(latents, *args, **kwargs)

        vae.decode = short_of_memory

    def render(self, requests: list[Any], **kwargs: Any) -> list[Any]:
        return self.engine.render(requests, **kwargs)


def one_image_decodes(model: Any, runtime: Any, adapter: Any) -> OneImageDecodes:
    return OneImageDecodes(model, runtime, adapter)


def unloadable_engine(model: Any, runtime: Any, adapter: Any) -> Any:
    """A node whose cache lacks the model: building the engine fails in the worker's ``__init__``."""
    from idcli.errors import ModelUnavailableError

    missing = ModelUnavailableError("cannot load model 'studio/previs-xl' for preset 'sdxl': not in this node's "
                                    "cache (simulated)")
    missing.missing = True  # as idcli says of a hub model its cache lacks (engine/build.py)
    raise missing


class CutsItsWeightsFirst:
    """A worker that finds ``file`` (a weight file of the model folder the driver planned) cut to two thirds, as a copy
    overwritten after the plan would leave it, then builds the real engine: its real loading refuses the file. Cut
    once, by the first worker (``marker``, a file only one can create)."""

    def __init__(self, file: str, marker: str) -> None:
        self.file, self.marker = file, marker

    def __call__(self, model: Any, runtime: Any, adapter: Any) -> Any:
        from idcli.run import default_engine

        with contextlib.suppress(FileExistsError):
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            with open(self.file, "r+b") as handle:
                handle.truncate(os.path.getsize(self.file) * 2 // 3)
        return default_engine(model, runtime, adapter)


class MixedFarm:
    """An engine_factory for a pool whose workers differ, as a farm mixing an 80 GB and a 24 GB GPU, or a node
    without the model: the first worker to build its engine (it creates ``marker``, a file only one can create) is
    ``first``, every other one ``others``. Each is ``"fail"`` (its engine cannot be built) or the batch size its
    engine suggests for ``auto``; the engines are SlowEngines (the real tiny engine, a second per batch)."""

    def __init__(self, marker: str, first: int | str, others: int | str) -> None:
        self.marker, self.first, self.others = marker, first, others

    def __call__(self, model: Any, runtime: Any, adapter: Any) -> Any:
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            role = self.first
        except FileExistsError:
            role = self.others
        if role == "fail":
            return unloadable_engine(model, runtime, adapter)
        engine = SlowEngine(model, runtime, adapter)
        engine.suggested = int(role)
        return engine


def chatty_engine(model: Any, runtime: Any, adapter: Any) -> SlowEngine:
    """A worker that says something on its own stderr as it builds its engine (as a library's warning would)."""
    import sys

    print("chatty_engine: building the engine on this worker", file=sys.stderr, flush=True)
    return SlowEngine(model, runtime, adapter)


class SelfKilling:
    """An engine_factory whose engines kill their own process with ``signal`` as a batch begins, ``times`` times in
    the whole pool (each kill leaves a file named by the killed pid in ``folder``, created before the signal is sent),
    then render as the real tiny engine does: a worker process dying mid-batch, by a real signal."""

    def __init__(self, folder: str, signal: int, times: int) -> None:
        self.folder, self.signal, self.times = folder, signal, times

    def __call__(self, model: Any, runtime: Any, adapter: Any) -> Any:
        return _SelfKillingEngine(self, model, runtime, adapter)


class _SelfKillingEngine(_Wrapped):
    def __init__(self, plan: SelfKilling, model: Any, runtime: Any, adapter: Any) -> None:
        super().__init__(model, runtime, adapter)
        self.plan = plan

    def render(self, requests: list[Any], **kwargs: Any) -> list[Any]:
        if len(os.listdir(self.plan.folder)) < self.plan.times:
            open(os.path.join(self.plan.folder, str(os.getpid())), "w").close()
            os.kill(os.getpid(), self.plan.signal)
            time.sleep(30)  # the signal's handler (SIGTERM: Ray's) ends the process meanwhile
        return self.engine.render(requests, **kwargs)
