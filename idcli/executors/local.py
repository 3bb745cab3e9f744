"""The local executor: one engine in this process renders the pending jobs, batch after batch.

The batching rules live here and the Ray workers use the same ones (``group_jobs``,
``first_batch_size``, ``render_in_batches``): jobs are grouped by batch signature in plan order, each
group is cut into batches of the chosen size, and an out-of-memory error halves the batch and tries
the same jobs again. Same batches, same images, whichever executor ran them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..plan import Job
from . import BatchSink, RenderedBatch, compile_fact, executor_record


def group_jobs(pending: list[Job]) -> list[list[Job]]:
    """Pending jobs by batch group, groups in order of first appearance, jobs in plan order."""
    groups: dict[str, list[Job]] = {}
    for job in pending:
        groups.setdefault(job.group, []).append(job)
    return list(groups.values())


def widest_request(jobs: list[Job]) -> Any:
    """The request ``auto`` sizes a group's batches for: the job with the most identity lines (rows per image),
    since a group mixes casts."""
    return max((j.request for j in jobs), key=lambda r: len(r.identity_lines()))


def first_batch_size(engine: Any, batch_size: int | str, jobs: list[Job], oom_limits: dict[int, int]) -> int:
    """The batch size a group starts with: the one asked for, or the engine's suggestion for ``auto``,
    capped by sizes that ran out of memory on images at least as small."""
    size = batch_size if isinstance(batch_size, int) else engine.suggest_batch_size(widest_request(jobs))
    pixels = jobs[0].request.width * jobs[0].request.height
    return min([size, *(limit for px, limit in oom_limits.items() if px <= pixels)])


@dataclass
class BatchOutcome:
    jobs: list[Job]
    results: list[Any] | None  # the engine's RenderResults, or None when the batch failed
    error: str | None
    started: datetime
    finished: datetime
    forward_seconds: float = 0.0  # spent inside engine.render


def render_in_batches(engine: Any, jobs: list[Job], size: int, oom_limits: dict[int, int], save_masks: bool,
                      note: Callable[[str], None],
                      before_batch: Callable[[int], None] | None = None) -> Iterator[BatchOutcome]:
    """Render ``jobs`` (one batch group) in batches of ``size``, halving on out-of-memory.

    ``oom_limits`` (image pixels -> largest batch size that fitted) is updated, so a later group with
    images at least as large starts no higher instead of failing the same way again. A batch that
    fails with any other error is yielded as failed; the next batch goes on. ``before_batch`` is called
    with each batch's size just before it renders.
    """
    import time

    from ..engine import is_out_of_memory
    from ..provenance import now

    pixels = jobs[0].request.width * jobs[0].request.height
    i = 0
    while i < len(jobs):
        batch = jobs[i:i + size]
        t0 = now()
        if before_batch is not None:
            before_batch(len(batch))
        clock = time.perf_counter()
        try:
            requests = [j.request for j in batch]
            results = engine.render(requests, capture_masks=True) if save_masks else engine.render(requests)
        except Exception as exc:
            if is_out_of_memory(exc) and size > 1:
                # Nothing of this batch was committed: halve it and try the same jobs again.
                size = max(1, (min(size, len(batch)) + 1) // 2)
                oom_limits[pixels] = min(size, oom_limits.get(pixels, size))
                note(f"out of memory; batch size lowered to {size}")
                continue
            yield BatchOutcome(batch, None, f"{type(exc).__name__}: {exc}", t0, now())
            i += len(batch)
            continue
        forward = time.perf_counter() - clock
        note_compile_fallback(results, note)
        note_adapter(results, note)
        yield BatchOutcome(batch, results, None, t0, now(), forward)
        i += len(batch)


def note_compile_fallback(results: list[Any], note: Callable[[str], None]) -> None:
    """Say it when ``--compile`` gave up during this batch (the engine's ``compile_fallback`` fact): the run
    goes on uncompiled, slower than asked, and never silently (engine/compiled.py)."""
    for result in results:
        reason = getattr(result, "facts", {}).get("compile_fallback")
        if reason:
            from ..option_words import Option, words

            note(words(("warning: ", Option("compile", True), f" gave up; the UNet runs uncompiled from here on "
                        f"({reason})")))
            return


def note_adapter(results: list[Any], note: Callable[[str], None]) -> None:
    """Say what the engine found when it loaded the adapter (its ``adapter_note`` fact, on the first batch only): a
    pickled FaceID adapter without its LoRA, which plan cannot see (it reads no pickle) and which renders as it is."""
    for result in results:
        said = getattr(result, "facts", {}).get("adapter_note")
        if said:
            note(f"warning: {said}")
            return


class LocalExecutor:
    """Renders on ``engine`` in this process; rendered batches go to the sink as pixels, so PNG encoding
    happens on the commit thread, overlapping the next batch."""

    name = "local"

    def __init__(self, engine: Any, device: str) -> None:
        self.engine = engine
        self.worker = executor_record("local", device, **compile_fact(engine))

    def run(self, pending: list[Job], batch_size: int | str, save_masks: bool, sink: BatchSink) -> None:
        oom_limits: dict[int, int] = {}
        try:
            for jobs in group_jobs(pending):
                size = first_batch_size(self.engine, batch_size, jobs, oom_limits)
                for outcome in render_in_batches(self.engine, jobs, size, oom_limits, save_masks, sink.note,
                                                 self._report_steps(sink)):
                    if outcome.results is None:
                        sink.failed(outcome.jobs, outcome.error or "failed")
                        continue
                    sink.rendered(RenderedBatch(outcome.jobs, outcome.results, outcome.started, outcome.finished,
                                                self.worker, getattr(self.engine, "adapter_record", None)))
        finally:
            # An engine outlives the run (cached by the caller): it must not call this run's progress
            # display, whose stream may be closed by then, from a later render.
            if getattr(self.engine, "on_step", None) is not None:
                self.engine.on_step = None

    def _report_steps(self, sink: BatchSink) -> Callable[[int], None] | None:
        """Hand the engine a per-evaluation callback when both sides support it (an optional method of the
        progress display, an optional attribute of the engine: engines and displays from before it keep
        working)."""
        step = getattr(sink, "batch_step", None)
        if step is None or not hasattr(self.engine, "on_step"):
            return None

        def before_batch(jobs: int) -> None:
            self.engine.on_step = lambda done, total: step(done, total, jobs)

        return before_batch

    def close(self) -> None:
        pass
