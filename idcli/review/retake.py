"""``idcli render --retake-flagged``: more takes for the shots where identity QA flagged every take.

After a render, a shot qualifies when every take of the plan is committed with QA and every one of
them carries a flag. It gets one more take — take n+1 with the seed ``takes: n+1`` would give it
(``plan.derived_seed``), so the added takes are deterministic and a later run finds them done — and
the round repeats until no shot qualifies or each has ``max_takes`` takes. Takes without QA (rendered
with ``--no-qa`` or failed) never count as flagged.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ExecutorUnavailableError, InputError, Interrupted
from ..option_words import EachSurface, Option

DEFAULT_MAX_TAKES = 6
# Committed with QA's verdict in its sidecar: reused is QA'd as a rendered image; restored (put back from
# .idcli/superseded) keeps the verdict of its render, as a skipped take does. Kept (edited by hand) is not judged.
_COMMITTED = ("rendered", "skipped", "recovered", "reused", "restored")


def flagged_shots(report: Any) -> dict[str, int]:
    """Shot id -> take count, for the shots of a render report whose every take is committed and flagged."""
    from ..store import MAX_SIDECAR_BYTES

    takes: dict[str, list[bool | None]] = {}
    for job in report.jobs:
        verdict: bool | None = None  # None: unknown (not committed, or no QA)
        if job.status in _COMMITTED:
            verdict = qa_flagged(Path(job.sidecar), job.job_key, MAX_SIDECAR_BYTES)
        takes.setdefault(job.shot_id, []).append(verdict)
    return {shot: len(v) for shot, v in takes.items() if v and all(x is True for x in v)}


def flagged_in_folder(root: Path, takes: list[tuple[str, int]], max_takes: int,
                      only: tuple[str, ...] | None = None, hashed: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The shots of ``takes`` (the folder's run manifest: (shot id, take)) a next retake round adds a take to, as
    :func:`flagged_shots` judges a render's report: every take committed (its image as its sidecar recorded it, not
    edited by hand) and flagged by QA, fewer than ``max_takes`` of them; ``only``: the shots the render was asked for.
    A ``--retake-flagged`` run stopped between two rounds leaves such shots and no take missing (the morning note).
    ``hashed``: images' sha256 by path (``os.path.normpath``) that the caller has just read (``verify``)."""
    from ..image_stamps import ImageStamps
    from ..store import STATE

    # An image's hash as a round's resume takes it: from its stamp when the file is unchanged since it was hashed
    # (image_stamps.py), else hashed now; read, never saved (the note holds no lock). verify's own hashes first: it
    # has just read every image, and hashing each flagged take again cost it a second pass (retake-cost).
    stamps = ImageStamps(root / STATE)

    def sha256_of(image: Path) -> str | None:
        known = hashed.get(os.path.normpath(image)) if hashed else None
        return known if known is not None else stamps.sha256(image.relative_to(root).as_posix(), image)

    by_shot: dict[str, list[int]] = {}
    for shot, take in takes:
        if only is None or shot in only:
            by_shot.setdefault(shot, []).append(take)
    return tuple(shot for shot, numbers in by_shot.items() if len(numbers) < max_takes
                 and all(_committed_flagged(root / shot / f"{shot}_t{take}", sha256_of) for take in numbers))


def _committed_flagged(stem: Path, sha256_of: Callable[[Path], str | None]) -> bool:
    """Whether the take at ``stem`` (``OUT/SHOT/SHOT_tN``) has its image as its sidecar records it and QA flagged
    it. Reads only regular files, no link (a received folder's FIFO must not block ``verify``)."""
    from ..safeio import NotRegularFile, read_regular
    from ..store import MAX_SIDECAR_BYTES

    try:
        record = json.loads(read_regular(stem.with_suffix(".json"), MAX_SIDECAR_BYTES, follow_links=False))
        if not isinstance(record, dict) or _verdict(record, record.get("job_key")) is not True:
            return False
        recorded = record.get("image")
        # edited by hand since (kept by the render, not judged): not flagged for the next round
        if not isinstance(recorded, dict):
            return False
        digest = sha256_of(stem.with_suffix(".png"))
        return digest is not None and digest == recorded.get("sha256")
    except (NotRegularFile, OSError, ValueError, UnicodeDecodeError, RecursionError):
        return False


def qa_flagged(sidecar: Path, key: str, limit: int) -> bool | None:
    """Whether the take of job ``key`` was flagged by QA; None when unknown (the sidecar unreadable or another
    job's, no QA recorded, or QA failed)."""
    from ..safeio import NotRegularFile, read_regular

    try:
        record = json.loads(read_regular(sidecar, limit, follow_links=False).decode("utf-8"))
    except (NotRegularFile, ValueError, UnicodeDecodeError, RecursionError):
        return None
    return _verdict(record, key)


def _verdict(record: Any, key: Any) -> bool | None:
    """A sidecar's QA verdict for job ``key``: flagged or not; None when unknown (another job's, no QA, QA failed)."""
    qa = record.get("qa") if isinstance(record, dict) and record.get("job_key") == key else None
    if not isinstance(qa, dict) or qa.get("error"):
        return None
    return bool(qa.get("flags"))


def render_with_retakes(loaded: Any, out_dir: str | Path, *, max_takes: int = DEFAULT_MAX_TAKES,
                        **render_options: Any) -> Any:
    """``run.render`` in rounds, adding a take to each all-flagged shot per round; one merged report."""
    if not 1 <= max_takes <= 100:
        raise InputError(Option("max_takes", max_takes), ": give 1..100")
    if render_options.get("qa") is False:
        raise InputError(EachSurface("render_with_retakes", "--retake-flagged"), " needs identity QA; remove ",
                         Option("qa", False, negated="--no-qa"))
    from ..unfinished import RETAKE_ROUNDS

    rounds = RETAKE_ROUNDS.set(max_takes)  # each round's run-start records it: the morning's command repeats it
    try:
        return _rounds(loaded, out_dir, max_takes, render_options)
    finally:
        RETAKE_ROUNDS.reset(rounds)


def _rounds(loaded: Any, out_dir: str | Path, max_takes: int, render_options: dict[str, Any]) -> Any:
    from ..run import render
    from ..run_report import RenderReport, SilentProgress

    progress = render_options.get("progress") or SilentProgress()
    takes: dict[str, int] = {}
    merged: RenderReport | None = None
    while True:
        try:
            report = render(loaded, out_dir, takes=dict(takes), **render_options)
        except (Interrupted, ExecutorUnavailableError) as stopped:
            # What the earlier rounds rendered is reported too (render --json), also when this round was stopped
            # while it still planned (no report of its own).
            stopped.report = merged if stopped.report is None else merge_rounds(merged, stopped.report)
            raise
        merged = merge_rounds(merged, report)
        if report.error or report.dry_run:
            return merged
        try:
            flagged = flagged_shots(report)
            more = {shot: count + 1 for shot, count in flagged.items() if count < max_takes}
            for shot, count in sorted(more.items()):
                progress.note(f"{shot}: every take flagged by identity QA; adding take {count}")
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM between rounds: stopped as within one, with its signal
            from ..interrupts import interrupted

            between = interrupted()
            between.report = merged
            raise between from None
        if not more:
            return merged
        takes.update(more)
        # --force renders the folder's takes again once, in the first round: with it, every later round rendered
        # every take again too, moving the round before's renders aside; the retake rounds render the added takes
        render_options["force"] = False


def merge_rounds(merged: Any, report: Any) -> Any:
    """Rounds as one report: each job's most telling status (rendered in any round beats skipped), and every
    earlier render any round moved to .idcli/superseded, in round order, and the other project whose folder it was."""
    if merged is None:
        return report
    # By take, not job key: two shots of the same content share a key (each its own take), a blocked take has none.
    outcomes = {(o.shot_id, o.take): o for o in merged.jobs}
    for outcome in report.jobs:
        if (outcome.shot_id, outcome.take) not in outcomes or outcome.status != "skipped":
            outcomes[outcome.shot_id, outcome.take] = outcome  # a skipped one keeps why round one rendered it
    order = {(o.shot_id, o.take): i for i, o in enumerate(report.jobs)}
    report.jobs = sorted(outcomes.values(), key=lambda o: order.get((o.shot_id, o.take), len(order)))
    report.stale_reasons = {**merged.stale_reasons, **report.stale_reasons}  # why round one rendered a take again
    report.stale_causes = {**merged.stale_causes, **report.stale_causes}
    report.superseded = merged.superseded + report.superseded  # superseded_total: the last round's counts all
    # the first round's run went into another project's folder (--force); the later ones find it this project's
    report.other_project = merged.other_project or report.other_project
    # A warning said once (the engine's, on its first batch) stays said: the rounds' warnings, each once, in order.
    report.warnings = list(dict.fromkeys(merged.warnings + report.warnings))
    report.seconds += merged.seconds
    report.batch_sizes = merged.batch_sizes + report.batch_sizes
    report.commits += merged.commits
    report.commit_seconds += merged.commit_seconds
    return report
