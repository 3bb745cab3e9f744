"""Issue 18, part A: CPU ``--batch-size auto`` and step progress, and claims kept or corrected (the batch an
image was rendered in, signal handlers that end with the run). Tests are named after the bullet."""

from __future__ import annotations

import io
import json
import signal
import types
from pathlib import Path

import pytest
from cli_helpers import render_on_cpu
from typer.testing import CliRunner

import idcli
from idcli import console
from idcli.cli import app
from idcli.run_report import JobOutcome, OutputFile

TEXT_ONLY = """\
version: 1
project: trust-run
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 3, guidance: 4.0, sampler: ddim, takes: 1}
shots:
  - {id: a010, prompt: "an empty harbour at dawn"}
  - {id: a020, prompt: "a wet street at night"}
  - {id: a030, prompt: "a small bar, warm light"}
"""


# -- CPU --batch-size auto, step progress and time left --------------------------------------------------


def test_cpu_batch_size_auto_follows_image_size_and_memory(tiny_engines, monkeypatch: pytest.MonkeyPatch) -> None:
    # Before issue 18 a CPU always got 4, whatever the size: a 4K tiny-preset batch took 6.8 GB.
    import idcli.engine.memory as memory
    from idcli.render_request import RenderRequest

    engine = tiny_engines("tiny-sd")

    def request(width: int, height: int) -> RenderRequest:
        return RenderRequest(prompt="a street", negative_prompt="", seed=1, width=width, height=height, steps=3,
                             guidance=4.0, sampler="ddim")

    gib = 1 << 30
    monkeypatch.setattr(memory, "available_bytes", lambda: 8 * gib)
    small, uhd = engine.suggest_batch_size(request(256, 256)), engine.suggest_batch_size(request(3840, 2160))
    assert small > uhd >= 1
    assert uhd * memory.cpu_image_bytes(engine.pipe, 3840, 2160, 2, 4) <= 4 * gib  # half of what is available
    assert uhd < 4
    monkeypatch.setattr(memory, "available_bytes", lambda: gib // 4)
    assert engine.suggest_batch_size(request(3840, 2160)) == 1  # never 0, even when nothing seems to fit
    assert engine.suggest_batch_size(request(256, 256)) < small
    monkeypatch.setattr(memory, "available_bytes", lambda: None)
    assert engine.suggest_batch_size(request(256, 256)) == 4  # unknown memory: the old default


class _StepRecorder:
    """A progress object with the optional ``batch_step`` method."""

    def __init__(self) -> None:
        self.steps: list[tuple[int, int, int]] = []
        self.advanced = 0

    def start(self, total: int, already_done: int) -> None: ...
    def advance(self, outcome) -> None:
        self.advanced += 1
    def note(self, text: str) -> None: ...
    def stop(self) -> None: ...

    def batch_step(self, step: int, steps: int, jobs: int) -> None:
        self.steps.append((step, steps, jobs))


class _OldProgress:
    """A progress object written against the protocol before ``batch_step`` existed."""

    def __init__(self) -> None:
        self.advanced = 0

    def start(self, total: int, already_done: int) -> None: ...
    def advance(self, outcome) -> None:
        self.advanced += 1
    def note(self, text: str) -> None: ...
    def stop(self) -> None: ...


def test_cpu_batch_progress_reports_each_step_and_old_progress_objects_still_work(write_shotlist, tmp_path) -> None:
    shots = write_shotlist(TEXT_ONLY)
    recorder = _StepRecorder()
    report = idcli.render(idcli.load_shotlist(shots), tmp_path / "a", device="cpu", batch_size=2, progress=recorder)
    assert report.rendered == 3 and recorder.advanced == 3
    # Batches of 2 and 1, three evaluations each (ddim, 3 steps).
    assert recorder.steps == [(1, 3, 2), (2, 3, 2), (3, 3, 2), (1, 3, 1), (2, 3, 1), (3, 3, 1)]
    old = _OldProgress()
    report = idcli.render(idcli.load_shotlist(shots), tmp_path / "b", device="cpu", batch_size=2, progress=old)
    assert report.rendered == 3 and old.advanced == 3


def console_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """idcli.console's clock made a list the test sets (``now[0] = 12.0``): time-left arithmetic without waiting."""
    now = [0.0]
    monkeypatch.setattr(console, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))
    return now


def test_cpu_batch_progress_plain_lines_show_the_step_and_time_left(monkeypatch: pytest.MonkeyPatch) -> None:
    now = console_clock(monkeypatch)
    stream = io.StringIO()
    progress = console.PlainProgress(stream)
    progress.start(total=6, already_done=0)
    now[0] = 10.0
    progress.batch_step(1, 4, 2)  # 10 s per evaluation of a batch of 2 images
    now[0] = 20.0
    progress.batch_step(2, 4, 2)
    lines = stream.getvalue().splitlines()
    # Time left after step 2: 2 evaluations of this batch (20 s), then 4 more images x 4 evaluations x 5 s.
    assert lines[-1] == "  batch of 2: step 2/4, about 1m40s left"


def test_time_left_is_not_thrown_off_by_a_slow_first_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    # Under --compile a batch's first evaluation builds the graph (minutes on a CPU): the estimate takes the
    # rate of the evaluations after it, and a later batch's first step uses the rate already seen.
    now = console_clock(monkeypatch)
    left = console.TimeLeft()
    left.start(total=4, already_done=0)
    now[0] = 300.0
    left.step(1, 4, 2)  # compiling
    now[0] = 304.0
    # After step 2: 2 evaluations of this batch at 4 s, then 2 more images x 4 evaluations x 2 s.
    assert left.step(2, 4, 2) == pytest.approx(2 * 4 + 2 * 4 * 2)
    now[0] = 312.0
    left.step(4, 4, 2)
    left.advanced()
    left.advanced()
    now[0] = 400.0  # the next batch's first step compiled a new graph
    assert left.step(1, 4, 2) == pytest.approx(3 * 4)


def test_time_left_gives_no_estimate_from_the_runs_first_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    # The progress starts before the engine is built: the run's first evaluation also carries the model's loading
    # (seconds on a CPU, a minute for SDXL). Multiplied by every evaluation left, it said "about 14m14s left" for a
    # 35-second render. No rate is known yet, so no estimate; the next evaluation gives one.
    now = console_clock(monkeypatch)
    stream = io.StringIO()
    progress = console.PlainProgress(stream)
    progress.start(total=18, already_done=0)
    now[0] = 12.0  # 11.8 s of loading, 0.2 s of evaluation
    progress.batch_step(1, 4, 1)
    assert stream.getvalue().splitlines()[-1] == "  batch of 1: step 1/4"
    now[0] = 22.0
    progress.batch_step(2, 4, 1)  # 10 s for this evaluation: now there is a rate
    assert stream.getvalue().splitlines()[-1] == "  batch of 1: step 2/4, about 11m40s left"
    # A later batch's first evaluation takes the rate seen: one evaluation left, of 2 images at 10 s each.
    left = console.TimeLeft()
    left.start(total=3, already_done=0)
    now[0] = 40.0
    assert left.step(1, 2, 1) is None
    now[0] = 50.0
    left.step(2, 2, 1)
    left.advanced()
    now[0] = 71.0
    assert left.step(1, 2, 2) == pytest.approx(1 * 2 * 10)


def _rendered(shot_id: str, take: int) -> JobOutcome:
    return JobOutcome(f"idcli-job-v2:{shot_id}{take}", shot_id, take, 1, "g1", "rendered",
                      OutputFile(f"{shot_id}/{shot_id}_t{take}.png", f"/out/{shot_id}/{shot_id}_t{take}.png"),
                      OutputFile(f"{shot_id}/{shot_id}_t{take}.json", f"/out/{shot_id}/{shot_id}_t{take}.json"),
                      state="new")


def test_a_later_rounds_rate_counts_only_its_own_images(monkeypatch: pytest.MonkeyPatch) -> None:
    """``render --retake-flagged`` reports each round to the same progress: the second round's lines said
    ``[9/10] rendered s010 take 3 (35.94 images/s)`` on a CPU that renders 0.5 a second, the first round's images
    counted over the second round's seconds. Each round's rate is its own images over its own time."""
    now = console_clock(monkeypatch)
    stream = io.StringIO()
    plain = console.PlainProgress(stream)
    rich = console.RichProgress()
    rich.console.file = io.StringIO()  # the bar drawn into a buffer, not the test's stderr
    for progress in (plain, rich):
        now[0] = 0.0
        progress.start(total=8, already_done=0)
        for take in range(1, 9):
            now[0] = 2.0 * take  # 0.5 images/s
            progress.advance(_rendered("s010", take))
        now[0] = 100.0  # QA flagged every take: a round of one more take
        progress.start(total=9, already_done=8)
        now[0] = 102.0
        progress.advance(_rendered("s010", 9))
        progress.stop()
    assert stream.getvalue().splitlines()[-1] == "[9/9] rendered s010 take 9 (0.50 images/s)", stream.getvalue()
    assert rich.progress.tasks[-1].fields["rate"] == "0.50 img/s", rich.progress.tasks[-1].fields


# -- Claims kept or corrected ----------------------------------------------------------------------------


def test_claims_sidecar_records_each_images_batch(write_shotlist, tmp_path: Path, engine_factory) -> None:
    shots = write_shotlist(TEXT_ONLY)
    report = render_on_cpu(shots, tmp_path / "out", engine_factory, batch_size=2)
    keys = [o.job_key for o in report.jobs]
    sidecars = [json.loads(Path(o.sidecar.abs_path).read_text("utf-8")) for o in report.jobs]
    assert [s["batch"] for s in sidecars] == [
        {"index": 0, "size": 2, "job_keys": keys[:2]},
        {"index": 1, "size": 2, "job_keys": keys[:2]},
        {"index": 0, "size": 1, "job_keys": keys[2:]},
    ]


def test_claims_no_signal_handler_outlives_the_cli_render(write_shotlist, tmp_path: Path) -> None:
    # A SIGTERM handler left installed raised KeyboardInterrupt while the interpreter shut down (a traceback).
    shots = write_shotlist(TEXT_ONLY)
    before = signal.getsignal(signal.SIGTERM)
    result = CliRunner().invoke(app, ["render", str(shots), "--out", str(tmp_path / "out"), "--device", "cpu",
                                      "--dry-run", "--quiet"])
    assert result.exit_code == 0, result.output
    assert signal.getsignal(signal.SIGTERM) is before


def test_claims_sigterm_during_a_run_still_stops_it_and_the_handler_goes_after() -> None:
    import os
    import time

    from idcli.interrupts import interrupted, terminate_as_interrupt

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), terminate_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler's KeyboardInterrupt ends the wait
    assert signal.getsignal(signal.SIGTERM) is before
    after = interrupted()  # a later Ctrl-C is told as SIGINT again, not as the SIGTERM handled here
    assert after.exit_code == 130 and "SIGINT" in str(after)
