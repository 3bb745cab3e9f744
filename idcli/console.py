"""What a person sees while a run goes: a rich progress bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from .run import JobOutcome, SilentProgress


class PlainProgress:
    """One line per finished job (logs, CI, pipes)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.total = 0
        self.done = 0
        self.started = 0.0
        self.rendered = 0

    def start(self, total: int, already_done: int) -> None:
        self.total, self.done, self.started = total, already_done, time.perf_counter()
        print(f"{total} jobs: {already_done} already done, {total - already_done} to render", file=self.stream)

    def advance(self, outcome: JobOutcome) -> None:
        self.done += 1
        self.rendered += outcome.status == "rendered"
        elapsed = time.perf_counter() - self.started
        rate = self.rendered / elapsed if elapsed > 0 else 0.0
        extra = f" error: {outcome.error}" if outcome.error else ""
        print(f"[{self.done}/{self.total}] {outcome.status} {outcome.shot_id} take {outcome.take} "
              f"({rate:.2f} images/s){extra}", file=self.stream, flush=True)

    def note(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def stop(self) -> None:
        pass


class RichProgress:
    """A progress bar with images/s and ETA for interactive terminals."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]rendering"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), TextColumn("{task.fields[last]}"),
            console=self.console, transient=False)
        self.task: Any = None
        self.started = 0.0
        self.rendered = 0

    def start(self, total: int, already_done: int) -> None:
        self.started = time.perf_counter()
        self.progress.start()
        self.task = self.progress.add_task("render", total=total, completed=already_done, rate="", last="")

    def advance(self, outcome: JobOutcome) -> None:
        self.rendered += outcome.status == "rendered"
        elapsed = time.perf_counter() - self.started
        rate = f"{self.rendered / elapsed:.2f} img/s" if elapsed > 0 else ""
        if outcome.error:
            from rich.markup import escape

            self.console.print(f"[red]failed[/] {outcome.shot_id} take {outcome.take}: {escape(outcome.error)}")
        self.progress.update(self.task, advance=1, rate=rate, last=f"{outcome.shot_id} t{outcome.take}")

    def note(self, text: str) -> None:
        self.console.print(text, markup=False)

    def stop(self) -> None:
        self.progress.stop()


def make_progress(quiet: bool) -> Any:
    if quiet:
        return SilentProgress()
    return RichProgress() if sys.stderr.isatty() else PlainProgress()
