"""What a person sees while a run goes: a rich progress bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from .count_words import counted
from .diagnostics import lenient, styled
from .errors import terminal_safe
from .run_report import JobOutcome, SilentProgress


class TimeLeft:
    """An estimate of a run's time left from the model evaluations seen so far (``batch_step``)."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0  # jobs reported by advance (rendered, skipped, failed)
        self.tick = time.perf_counter()
        self.batch_started = self.tick
        self.per_image_evaluation: float | None = None  # seconds, from the batches seen
        self.first_done = self.tick  # when the current batch's first evaluation ended
        self.evaluated = False  # an evaluation was seen since start()

    def start(self, total: int, already_done: int) -> None:
        self.total, self.done = total, already_done
        self.tick = self.batch_started = time.perf_counter()
        self.evaluated = False

    def step(self, step: int, steps: int, jobs: int) -> float | None:
        """Seconds left after evaluation ``step`` of ``steps`` of a batch of ``jobs`` images, or None."""
        now = time.perf_counter()
        if step <= 1:
            self.batch_started = self.tick  # the previous evaluation's end: the commit thread overlaps
            self.first_done = now
        self.tick = now
        if step >= 2:
            # A batch's first evaluation carries its warm-up (a --compile graph is built there, minutes on
            # a CPU), so the rate is taken from the evaluations after it.
            per_evaluation = (now - self.first_done) / (step - 1)
        elif self.per_image_evaluation is not None:
            per_evaluation = self.per_image_evaluation * max(1, jobs)  # the rate seen in earlier batches
        elif self.evaluated:
            per_evaluation = now - self.batch_started
        else:
            # The run's first evaluation: start() came before the engine was built, so this time holds the
            # model's loading too (a minute for SDXL), which no later evaluation repeats. No rate yet.
            self.evaluated = True
            return None
        self.evaluated = True
        self.per_image_evaluation = per_evaluation / max(1, jobs)
        later = max(0, self.total - self.done - jobs)  # jobs after this batch
        return (steps - step) * per_evaluation + later * steps * self.per_image_evaluation

    def advanced(self) -> None:
        self.done += 1


def format_seconds(seconds: float) -> str:
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


# The jobs not rendered, in the words of render's summary line and the numbers of --json's counts (run_report.py).
SETTLED_WORDS = {"skipped": "already done", "recovered": "recovered", "restored": "restored", "reused": "reused",
                 "kept": "edited by hand (kept)"}


def settled_words(already_done: int, counts: dict[str, int] | None) -> str:
    """``7 already done, 1 restored, 1 edited by hand (kept)``: the jobs a run does not render, each kind counted as
    ``render --json``'s ``counts`` counts it ("already done" is its ``skipped``; a kind none of them is, left out);
    ``N already done`` when the run said no more (a caller's own run loop)."""
    if counts is None:
        return f"{already_done} already done"
    rest = [f"{counts[status]} {words}" for status, words in SETTLED_WORDS.items()
            if status != "skipped" and counts.get(status)]
    return ", ".join([f"{counts.get('skipped', 0)} already done", *rest])


class PlainProgress:
    """One line per finished job (logs, CI, pipes), and during long batches a step line every 10 seconds."""

    STEP_LINE_SECONDS = 10.0

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = lenient(stream or sys.stderr)  # a closed log never stops the render
        self.total = 0
        self.done = 0
        self.started = 0.0
        self.rendered = 0
        self.left = TimeLeft()
        self.last_step_line = 0.0
        self.counts: dict[str, int] | None = None  # what the jobs not to render are (settled), when told

    def settled(self, counts: dict[str, int]) -> None:
        self.counts = dict(counts)

    def start(self, total: int, already_done: int) -> None:
        # A later round (--retake-flagged) starts again: its rate is its own images over its own time.
        self.total, self.done, self.started, self.rendered = total, already_done, time.perf_counter(), 0
        self.left.start(total, already_done)
        self.last_step_line = self.started
        print(f"{counted(total, 'job')}: {settled_words(already_done, self.counts)}, {total - already_done} to render",
              file=self.stream)
        self.counts = None  # a retake round tells its own

    def batch_step(self, step: int, steps: int, jobs: int) -> None:
        left = self.left.step(step, steps, jobs)
        now = time.perf_counter()
        if now - self.last_step_line >= self.STEP_LINE_SECONDS and step < steps:
            self.last_step_line = now
            eta = f", about {format_seconds(left)} left" if left is not None else ""
            print(f"  batch of {jobs}: step {step}/{steps}{eta}", file=self.stream, flush=True)

    def advance(self, outcome: JobOutcome) -> None:
        self.left.advanced()
        self.done += 1
        self.rendered += outcome.status == "rendered"
        elapsed = time.perf_counter() - self.started
        rate = self.rendered / elapsed if elapsed > 0 else 0.0
        # An exception's message may quote what a library was handed (a prompt, a file's name): escaped as every
        # received text is, so none of it retitles, clears or recolours the terminal.
        extra = f" error: {terminal_safe(outcome.error)}" if outcome.error else ""
        print(f"[{self.done}/{self.total}] {outcome.status} {outcome.shot_id} take {outcome.take} "
              f"({rate:.2f} images/s){extra}", file=self.stream, flush=True)

    def note(self, text: str) -> None:  # the library's "warning: …" in the commands' style
        print(styled(text), file=self.stream, flush=True)

    def stop(self) -> None:
        pass


class RichProgress:
    """A progress bar with images/s and ETA for interactive terminals."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.console = Console(stderr=True)
        # The time left comes from the model evaluations (batch_step), so it moves during long batches too.
        self.progress = Progress(
            TextColumn("[bold]rendering"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[step]}"), TextColumn("{task.fields[eta]}"),
            TextColumn("{task.fields[last]}"), console=self.console, transient=False)
        self.task: Any = None
        self.started = 0.0
        self.rendered = 0
        self.left = TimeLeft()

    def start(self, total: int, already_done: int) -> None:
        self.started, self.rendered = time.perf_counter(), 0  # a later round's rate: its own images and time
        self.left.start(total, already_done)
        self.progress.start()
        self.task = self.progress.add_task("render", total=total, completed=already_done, rate="", last="",
                                           step="", eta="")

    def batch_step(self, step: int, steps: int, jobs: int) -> None:
        left = self.left.step(step, steps, jobs)
        self.progress.update(self.task, step=f"step {step}/{steps} ×{jobs}",
                             eta="" if left is None else f"~{format_seconds(left)} left")

    def advance(self, outcome: JobOutcome) -> None:
        self.left.advanced()
        self.rendered += outcome.status == "rendered"
        elapsed = time.perf_counter() - self.started
        rate = f"{self.rendered / elapsed:.2f} img/s" if elapsed > 0 else ""
        if outcome.error:
            from rich.markup import escape

            self.console.print(f"[red]failed[/] {outcome.shot_id} take {outcome.take}: "
                               f"{escape(terminal_safe(outcome.error))}")  # as PlainProgress's line
        self.progress.update(self.task, advance=1, rate=rate, last=f"{outcome.shot_id} t{outcome.take}")

    def note(self, text: str) -> None:
        self.console.print(styled(text), markup=False)

    def stop(self) -> None:
        self.progress.stop()


def make_progress(quiet: bool) -> Any:
    if quiet:
        return SilentProgress()
    return RichProgress() if sys.stderr.isatty() else PlainProgress()
