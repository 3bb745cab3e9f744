"""Who renders the batches: this process on one device (``local``) or Ray actors on many (``ray``).

Both hand each rendered batch to one commit path (``idcli.commit_path``), through the same :class:`BatchSink`,
so resume, the store and the sidecars never depend on which executor ran. The driver, the process
that called ``idcli.render``, always plans, holds the output folder's lock and is the only writer.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ..plan import Job

EXECUTORS = ("local", "ray")


@dataclass
class RenderedBatch:
    """One batch as it reaches the commit path.

    ``outputs`` holds, per job, the engine's RenderResult (pixels: the commit thread encodes them, as
    the local executor does) or an :class:`~idcli.executors.output.EncodedImage` (a Ray worker encoded
    it). ``worker`` is the sidecar's ``executor`` record: which executor, host and device rendered it.
    """

    jobs: list[Job]
    outputs: list[Any]
    started: datetime
    finished: datetime
    worker: dict[str, Any]
    adapter_record: dict[str, Any] | None = None  # the engine's, for outputs still to be encoded
    # The job keys of the batch as rendered, in row order, and where each of ``jobs`` sat in it, when some
    # of its jobs are not here (a Ray reply whose other jobs were already settled); None: ``jobs`` is the
    # whole batch, in order.
    keys: list[str] | None = None
    positions: list[int] | None = None


class BatchSink(Protocol):
    """Where an executor hands its work (implemented by ``idcli.commit_path``)."""

    def rendered(self, batch: RenderedBatch) -> None:
        """A batch rendered: commit it (asynchronously; order kept)."""

    def failed(self, jobs: list[Job], error: str) -> None:
        """Jobs that failed with an ordinary error (reported, the run goes on)."""

    def note(self, text: str) -> None:
        """A line for the progress display."""


def executor_record(name: str, device: str, **extra: Any) -> dict[str, Any]:
    """The sidecar's ``executor`` field: who rendered an image, where, on what device; on a CPU, with how many torch
    threads (``threads``): float32 sums split between threads round differently, so a few 8-bit values can differ by
    one between thread counts, and a Ray CPU worker runs with Ray's ``OMP_NUM_THREADS`` (its CPUs, 1 by default) where
    a local run has one thread per core (docs/scale-out.md)."""
    record = {"name": name, "host": socket.gethostname(), "device": device, **extra}
    if device == "cpu":
        import torch

        record["threads"] = torch.get_num_threads()
    return record


def compile_fact(engine: Any) -> dict[str, Any]:
    """``{"compile": True}`` for an engine whose UNet runs through ``torch.compile`` (``--compile``), else
    nothing: inductor may move 8-bit values by one, and ``idcli reproduce`` (uncompiled) says why."""
    return {"compile": True} if getattr(engine, "compiled", None) is not None else {}


def check_executor(name: str) -> str:
    from ..errors import InputError
    from ..option_words import Option

    if name not in EXECUTORS:
        raise InputError(Option("executor", name), f": not an executor (allowed: {', '.join(EXECUTORS)})",
                         field="executor")
    return name
