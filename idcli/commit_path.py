"""The commit path: rendered batches, from either executor, to committed images (signed, hashed, QA-checked,
their sidecars completed) on the commit thread, and a recoverable image's sidecar rebuilt.

Split from run.py, which plans the session and chooses the executor; every image a run writes goes through here,
so resume and the store never know which executor rendered it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from .diagnostics import kind_of
from .errors import ExecutorUnavailableError, OutputError
from .models import ModelIdentity
from .plan import Job
from .run_report import JobOutcome, Progress, RenderReport
from .runtime import Runtime
from .store import OutputStore


def recover_sidecar(store: OutputStore, job: Job, record: dict[str, Any], image_sha256: str | None,
                    begun: dict[str, Any] | None = None) -> None:
    """Rebuild the sidecar of an image committed without one from what state() read: its record and the
    hash of the same file. A signed image's ``c2pa`` block is read back from its manifest (signing.block_read_back):
    the file is read again, never through a link, and only bytes of the hash state() read are believed. A reused
    image's (killed between its image and its sidecar) gets back from ``begun``, its ``reuse-begin`` journal line
    (``reuse.begun_reuses``), what its PNG does not hold: where it was reused from, the source's batch, timing and
    executor, QA's verdict, what fusion did."""
    from . import safeio
    from .hashing import sha256_bytes
    from .provenance import complete_sidecar
    from .reuse import add_begun_fields, reused_entry
    from .signing import block_read_back
    from .store import MAX_IMAGE_BYTES

    if image_sha256 is None:
        raise ValueError(f"job {job.key} has no image hash to recover from")
    sidecar = complete_sidecar(record, image_sha256, batch_index=None, batch_size=None, started=None,
                               finished=None, recovered=True)
    try:
        png = safeio.read_regular(store.path(job.image_relpath), MAX_IMAGE_BYTES, follow_links=False)
    except safeio.NotRegularFile:
        png = b""
    block = block_read_back(png) if sha256_bytes(png) == image_sha256 else None
    if block is not None:
        sidecar["c2pa"] = block
    if begun is not None:
        add_begun_fields(sidecar, begun)
    store.commit(job, b"", sidecar)
    if begun is not None:  # as after the commit the kill cut short
        store.journal(reused_entry(job, begun.get("from")))


def image_sidecar(image: Any, png: bytes, signed: dict[str, Any] | None, checked: Any, **run: Any) -> dict[str, Any]:
    """The sidecar of a committed image (an ``executors.output.EncodedImage`` whose bytes are ``png``, signed or
    not): its record with the hash of ``png`` and ``run``'s facts (``provenance.complete_sidecar``), its signature,
    what fusion and the plate engine did, and QA's verdict ``checked`` (in the sidecar, not the PNG)."""
    from .provenance import add_fusion_facts, add_plate_facts, complete_sidecar
    from .store import image_sha256

    # The hash is of the bytes committed here, wherever they were encoded.
    sidecar = complete_sidecar(image.record, image_sha256(png), **run)
    if signed:
        sidecar["c2pa"] = signed
    if image.fusion is not None:
        add_fusion_facts(sidecar, image.fusion)
    if image.plate is not None:
        add_plate_facts(sidecar, image.plate)
    if checked is not None:
        sidecar["qa"] = checked
    return sidecar


def with_decode_chunk(worker: dict[str, Any], image: Any) -> dict[str, Any]:
    """The sidecar's ``executor`` record with ``decode_chunk``, the images (plate crops) per VAE decode call of the
    image's batch, when the engine said it: ``image`` is the encoded result, the driver's own (local executor) or a
    Ray worker's reply, so both record it alike. A chunk of another size can move a decoded value by one 8-bit level
    (docs/provenance.md)."""
    chunk = getattr(image, "decode_chunk", None)
    return worker if chunk is None or not isinstance(worker, dict) else {**worker, "decode_chunk": chunk}


def commit_reused(store: OutputStore, job: Job, found: Any, model: ModelIdentity, project: str | None,
                  signer: Any = None, qa: Callable[[Job, Any], Any] | None = None) -> bool:
    """Commit ``job``'s image made of the pixels of ``found`` (a ``reuse.Found``: an image of the same job key in the
    folder), encoded, QA-checked and signed as a rendered image of the job is (idcli/reuse.py); False, with nothing
    written, when those pixels cannot be used (it is rendered then)."""
    from .provenance import now
    from .reuse import begin_entry, reused_entry, reused_image, run_fields

    made = reused_image(job, found, model, project)
    if made is None:
        return False
    image, pixels = made
    checked = qa(job, pixels) if qa is not None else None
    png, signed = image.png, None
    if signer is not None:
        png, signed = signer.sign(png, image.record)
    sidecar = image_sidecar(image, png, signed, checked, batch_index=None, batch_size=None, started=None,
                            finished=None)
    sidecar.update(run_fields(found, now().isoformat()))  # the render that made the pixels, and where they were
    # Before the image: killed between it and its sidecar, the sidecar rebuilt from the PNG takes these back.
    store.journal(begin_entry(job, sidecar, found))
    store.commit(job, png, sidecar)
    store.journal(reused_entry(job, found.source.image))
    return True


def _take(job: Job) -> tuple[str, int]:
    """A job's place in the folder (SHOT_tN): unique in a plan, where a job key is not (two shots alike share it)."""
    return job.shot_id, job.take


def render_pending(executor: Any, model: ModelIdentity, runtime: Runtime, store: OutputStore,
                   pending: list[Job], batch_size: int | str, report: RenderReport,
                   outcome: Callable[..., JobOutcome], progress: Progress, save_masks: bool = False,
                   signer: Any = None, project: str | None = None,
                   qa: Callable[[Job, Any], Any] | None = None) -> None:
    """Render ``pending`` on ``executor`` and commit each finished batch on the commit thread (PNG encoding,
    signing, hashing, QA, the atomic write), recording every job's outcome in ``report``."""
    from .executors import RenderedBatch
    from .executors.output import EncodedImage, encode_result, png_pixels
    from .writer import CommitQueue

    # The takes committed by this run, touched only on the commit thread (no signal lands there): a batch handed over
    # again after a signal cut its hand-over short (the Ray executor's stop path) commits nothing twice. By take, not
    # by job key: two shots of the same content share a key, and each is its own job to commit and report.
    committed_takes: set[tuple[str, int]] = set()

    def commit_batch(rendered: RenderedBatch) -> tuple[list[Job], Exception | None]:
        # On the commit thread: PNG encoding (local executor), hashing and writes overlap the next batch's
        # rendering. Returns the jobs committed, and the error that stopped the rest (disk full, permissions).
        done: list[Job] = []
        keys = rendered.keys or [job.key for job in rendered.jobs]
        positions = rendered.positions or list(range(len(rendered.jobs)))
        for position, job, output in zip(positions, rendered.jobs, rendered.outputs, strict=True):
            if _take(job) in committed_takes:
                continue
            image = output if isinstance(output, EncodedImage) else encode_result(
                job, output, model, runtime.device, rendered.adapter_record, project)
            # The jobs that went through the UNet together (the engine runs jobs of different CLIP window
            # counts as separate forwards, so that can be fewer than the batch).
            members = image.members if image.members is not None else list(range(len(keys)))
            index = members.index(position)
            png, signed = image.png, None
            # Identity QA (docs/review.md) looks at the pixels: the engine's, or the PNG a Ray worker encoded.
            checked = qa(job, output.pixels if not isinstance(output, EncodedImage) else png_pixels(png)) \
                if qa is not None else None
            try:
                if signer is not None:  # signed last, in memory, by the driver: nothing re-encodes it after this
                    png, signed = signer.sign(png, image.record)
            except OutputError as exc:
                return done, exc
            sidecar = image_sidecar(image, png, signed, checked, batch_index=index, batch_size=len(members),
                                    started=rendered.started, finished=rendered.finished,
                                    batch_keys=[keys[m] for m in members],
                                    executor=with_decode_chunk(rendered.worker, image))
            try:
                if image.mask_png is not None:
                    # The --save-masks strip, written by the commit before the image (a committed job has its strip).
                    if job.plate is not None:
                        sidecar["plate"]["mask"] = job.mask_relpath  # the face masks over the plate
                    else:
                        sidecar["fusion"]["mask_strip"] = job.mask_relpath
                store.commit(job, png, sidecar, mask=image.mask_png)
            except OutputError as exc:
                return done, exc
            committed_takes.add(_take(job))
            done.append(job)
        return done, None

    # The result ``committed`` last began to report. A signal landing in ``committed`` (a farm wrapper's SIGTERM on
    # the first progress line) leaves that result to be handed over again (writer.CommitQueue): the jobs it had
    # reported are then found in the whole report, by key, not among its last entries (the Ray executor, stopped,
    # reports the failed parts that had arrived before the result is handed over again).
    began: list[Any] = [None]

    def committed(result: tuple[list[Job], Exception | None]) -> None:
        done, error = result
        again = began[0] is result
        began[0] = result
        reported = {(o.shot_id, o.take) for o in report.jobs if o.status == "rendered"} if again else set()
        for job in done:
            if _take(job) in reported:
                continue
            report.jobs.append(outcome(job, "rendered", "new"))
            progress.advance(report.jobs[-1])
        if error is not None:
            raise error

    class Sink:
        """Where the executor hands rendered batches (to the commit queue) and failed jobs (to the report)."""

        # The progress display's optional per-evaluation callback (the local executor hands it to the engine).
        batch_step = getattr(progress, "batch_step", None)

        def rendered(self, batch: RenderedBatch) -> None:
            takes = [_take(job) for job in batch.jobs]
            if queued_takes.issuperset(takes):
                return  # handed over again after a signal, once the queue already held it

            def queued() -> None:
                queued_takes.update(takes)
                report.batch_sizes.append(len(batch.keys or batch.jobs))

            commits.submit(commit_batch, batch, on_queued=queued)

        def failed(self, jobs: list[Job], error: str) -> None:
            # Handed over again after a signal: each take reported once.
            reported = {(o.shot_id, o.take) for o in report.jobs}
            for job in jobs:
                if _take(job) in reported:
                    continue
                report.jobs.append(outcome(job, "failed", "new", error))
                progress.advance(report.jobs[-1])

        def note(self, text: str) -> None:
            # Every executor line is a note or a warning for the person at the terminal (``idcli: note: …``),
            # not a progress line: "out of memory; batch size lowered to 4" printed bare before.
            kind, said = kind_of(text)
            progress.note(f"{kind}: {said}")
            if kind == "warning" and said not in report.warnings:
                # What the engine finds only while rendering (a pickled adapter without its LoRA, --compile giving
                # up) is a warning of the run, as the plan's are: --quiet prints it, --json and Python list it.
                report.warnings.append(said)

    commits = CommitQueue(committed, stops=lambda result: result[1] is not None)  # (done, error)
    queued_takes: set[tuple[str, int]] = set()  # of every batch the commit queue holds or held (the main thread's)
    try:
        try:
            executor.run(pending, batch_size, save_masks, Sink())
        except (KeyboardInterrupt, ExecutorUnavailableError):
            # Ctrl-C or SIGTERM, or the Ray cluster gone: the batches already rendered are committed first
            # (milliseconds each).
            with contextlib.suppress(Exception, KeyboardInterrupt):
                commits.drain()
            raise
        commits.drain()
    finally:
        # Stopped by an error: a commit already running finishes and its jobs are reported; queued ones
        # are dropped (their jobs stay pending for the next run).
        commits.cancel()
        commits.close()
        report.commits, report.commit_seconds = commits.commits, commits.busy_seconds
        report.executor.update(getattr(executor, "stats", {}))
