"""Faults: kill -9 at random moments and at every step of the commit protocol, SIGTERM/SIGINT, a full
disk, out of memory, two runs on one folder, unusable output folders.

Already covered elsewhere (and not repeated here; docs/reliability.md lists them):
test_cli.py::test_sigkill_midway_then_resume_completes_without_duplicates,
test_cli.py::test_sigterm_and_sigint_exit_with_their_codes, test_cli.py::test_busy_output_folder_exits_3,
test_render.py::test_out_of_memory_backs_off_and_matches_batch_one,
test_render.py::test_disk_full_loses_nothing_and_a_later_run_completes (ENOSPC at fsync of a sidecar),
test_render.py::test_second_writer_is_refused_while_a_run_holds_the_folder,
test_render.py::test_output_path_that_is_a_file_is_refused,
test_render.py::test_leftover_temporaries_are_removed_at_start.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_helpers import (
    ROOT,
    assert_no_temporaries,
    assert_nothing_partial,
    cli_env,
    journal_commits,
    plan_jobs,
    render_argv,
    spawn_render,
)
from PIL import Image
from typer.testing import CliRunner

import idcli
from idcli.cli import app
from idcli.store import TMP_SUFFIX, OutputStore

runner = CliRunner()


def _load_kill_loop() -> Any:
    spec = importlib.util.spec_from_file_location("idcli_kill_loop", ROOT / "tests" / "stress" / "kill_loop.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


kill_loop = _load_kill_loop()

SHOTS = """\
version: 1
project: faults
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: euler, takes: 2}
shots:
  - {id: s1, prompt: "a lighthouse in a storm"}
  - {id: s2, prompt: "a bar at night"}
  - {id: s3, prompt: "a beach at dawn"}
"""


@pytest.fixture
def cached_engine(monkeypatch: pytest.MonkeyPatch, tiny_engines) -> list[int]:
    """Make the CLI reuse the session's tiny engines (building one costs seconds); counts rendered jobs."""
    import idcli.run as run_module

    rendered: list[int] = []

    class Counting:
        def __init__(self, engine: Any) -> None:
            self.engine, self.adapter_record = engine, engine.adapter_record

        def render(self, requests: list[Any]) -> list[Any]:
            results = self.engine.render(requests)
            rendered.append(len(requests))
            return results

        def suggest_batch_size(self, request: Any) -> int:
            return 2

    monkeypatch.setattr(run_module, "default_engine", lambda model, runtime, adapter: Counting(
        tiny_engines(model.preset, adapter)))
    return rendered


# -- kill -9 -------------------------------------------------------------------------------------------


# Not marked slow (conftest skips slow tests without -m slow): the 20-kill loop belongs to the normal suite.
def test_kill_9_at_random_moments_loses_nothing_and_commits_each_job_once(tmp_path: Path) -> None:
    """20 runs of ``python -m idcli render`` killed with SIGKILL at seeded random moments (and 2 stopped with
    SIGTERM/SIGINT once rendering has begun), then a resume; the invariants are checked after every stop."""
    summary = kill_loop.run_kill_loop(seed=2026_11_21, workdir=tmp_path, shots=12, takes=4,
                                      schedule=["KILL"] * 20 + ["TERM", "INT"])
    print(summary.table())
    assert summary.violations == []
    assert summary.signals["KILL"] == 20 and summary.signals["TERM"] == summary.signals["INT"] == 1
    assert summary.jobs >= 48 and summary.done_at_end == summary.jobs
    # Counted renders: one committed image per job, never replaced, at most one journal commit per job.
    assert summary.renders == summary.jobs and summary.max_commits_per_job == 1
    assert summary.journal_commits + summary.journal_recovered + summary.journal_gaps == summary.jobs
    assert summary.lost == summary.duplicates == summary.partial == summary.mismatched == summary.tracebacks == 0
    assert summary.temporaries_survived_start == 0 and summary.temporaries_at_end == 0
    assert summary.slowest_exit < 15.0, "SIGTERM/SIGINT must stop a run promptly"


# The commit protocol step by step: a hook kills the process (SIGKILL, no clean-up) right after the Nth
# matching file-system call; the hook patches os.fsync/os.replace and then runs the real CLI.
_CRASH_HOOK = """
import os, signal, sys
from idcli.store import TMP_SUFFIX
point, nth = sys.argv[1], int(sys.argv[2])
argv = sys.argv[3:]
out = os.path.abspath(argv[argv.index("--out") + 1]) + os.sep
counts = {}
real_fsync, real_replace = os.fsync, os.replace

def hit(kind):
    counts[kind] = counts.get(kind, 0) + 1
    if kind == point and counts[kind] == nth:
        os.kill(os.getpid(), signal.SIGKILL)

def fsync(fd):
    real_fsync(fd)
    try:
        name = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return
    # Only the commit protocol's files count (not the run's .idcli/shotlist.jsonl record).
    if name.startswith(out) and name.endswith(TMP_SUFFIX) and (".png." in name or ".json." in name):
        hit("image-written" if ".png." in name else "sidecar-written")

def replace(src, dst, *args, **kwargs):
    real_replace(src, dst, *args, **kwargs)
    dst = os.path.abspath(dst)
    if dst.startswith(out) and dst.endswith((".png", ".json")):
        hit("image-renamed" if dst.endswith(".png") else "sidecar-renamed")

os.fsync, os.replace = fsync, replace
sys.argv = ["idcli", *argv]
from idcli.cli import main
main()
"""


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="the hook names descriptors through /proc")
def test_kill_9_at_each_step_of_the_commit_protocol(write_shotlist, tmp_path: Path) -> None:
    path, out = write_shotlist(SHOTS), tmp_path / "out"
    jobs = plan_jobs(path)
    inodes: dict[str, int] = {}

    def run(point: str | None = None, nth: int = 0) -> int:
        cmd = [sys.executable, "-c", _CRASH_HOOK, point or "none", str(nth), *render_argv(path, out, "--quiet")]
        done = subprocess.run(cmd, capture_output=True, text=True, env=cli_env(), timeout=300)
        assert "Traceback" not in done.stderr, done.stderr
        for job in jobs:  # a committed image is never replaced: each job is rendered and committed once
            image = out / job.image_relpath
            if image.exists():
                assert inodes.setdefault(job.image_relpath, image.stat().st_ino) == image.stat().st_ino
        return done.returncode

    def state() -> tuple[int, int, list[str]]:
        done = sum((out / j.sidecar_relpath).exists() for j in jobs)
        png_only = sum((out / j.image_relpath).exists() and not (out / j.sidecar_relpath).exists() for j in jobs)
        tmp = sorted(p.name.split(".")[2] for p in out.rglob(f"*{TMP_SUFFIX}"))  # 'png' or 'json'
        return done, png_only, tmp

    # 1. killed with the second image written and fsynced but not yet renamed: a temporary, no image.
    assert run("image-written", 2) == -signal.SIGKILL
    assert state() == (1, 0, ["png"])
    # 2. the next start removes it; killed right after the next image's rename: an image without sidecar.
    assert run("image-renamed", 2) == -signal.SIGKILL
    assert state() == (2, 1, [])
    # 3. the next run adopts that image (no render); killed with the rebuilt sidecar written, not renamed.
    assert run("sidecar-written", 1) == -signal.SIGKILL
    assert state() == (2, 1, ["json"])
    # 4. adopted again; the next job is killed after its sidecar's rename, before its journal line.
    assert run("sidecar-renamed", 2) == -signal.SIGKILL
    assert state() == (4, 0, [])
    # 5. the resume renders only the two jobs left.
    assert run() == 0
    assert state() == (6, 0, [])
    assert_nothing_partial(out, jobs)
    entries = [e for e in OutputStore(out).journal_entries() if e.get("event") == "commit"]
    rendered = Counter(e["job_key"] for e in entries if not e["recovered"])
    recovered = Counter(e["job_key"] for e in entries if e["recovered"])
    # Jobs 1, 2, 5, 6 committed by their render; job 3 adopted from its PNG; job 4's line was cut by the kill.
    assert sorted(rendered.values()) == [1, 1, 1, 1] and list(recovered.values()) == [1]
    assert not set(rendered) & set(recovered) and len(set(rendered) | set(recovered)) == 5


REUSED = """\
version: 1
project: faults
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: euler}
characters:
  mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg]}
shots:
  - {id: a010, prompt: "a lighthouse in a storm", seeds: [11]}
  - {id: a020, prompt: "{mara} in a bar at night", seeds: [5]}
"""


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="the hook names descriptors through /proc")
def test_kill_9_between_a_reused_image_and_its_sidecar_keeps_where_it_came_from(write_shotlist,
                                                                                 tmp_path: Path) -> None:
    """Reused takes (docs/file-formats.md, "Reused images") killed with the image renamed into place and no sidecar
    yet: the resume rebuilds each sidecar from its PNG (``recovered``), and it says what the reuse's own would have
    said: reused, from where, the batch, timing and executor of the render that made the pixels, QA's verdict and
    what fusion did (lost before 2026-12-01: it read as a render's whose batch was unknown)."""
    pytest.importorskip("insightface", exc_type=ImportError)
    path, out, uninterrupted = write_shotlist(REUSED), tmp_path / "out", tmp_path / "uninterrupted"

    def run(folder: Path, point: str | None = None, nth: int = 0) -> int:
        cmd = [sys.executable, "-c", _CRASH_HOOK, point or "none", str(nth), *render_argv(path, folder, "--quiet")]
        done = subprocess.run(cmd, capture_output=True, text=True, env=cli_env(), timeout=300)
        assert "Traceback" not in done.stderr, done.stderr
        return done.returncode

    assert run(out) == 0
    shutil.copytree(out, uninterrupted)
    path.write_text(path.read_text().replace("id: a0", "id: b0"))  # renamed: their takes are reused
    assert run(uninterrupted) == 0
    # A text shot's take, then (its sidecar rebuilt first) a dual-line character's, QA'd: each the run's first image.
    for stem in ("b010_t1", "b020_t1"):
        assert run(out, "image-renamed", 1) == -signal.SIGKILL
        shot = stem.rsplit("_t", 1)[0]
        assert (out / shot / f"{stem}.png").exists() and not (out / shot / f"{stem}.json").exists()
    assert run(out) == 0
    assert_nothing_partial(out)
    for stem in ("b010_t1", "b020_t1"):
        shot = stem.rsplit("_t", 1)[0]
        assert (out / shot / f"{stem}.png").read_bytes() == (uninterrupted / shot / f"{stem}.png").read_bytes()
        rebuilt = json.loads((out / shot / f"{stem}.json").read_text())
        written = json.loads((uninterrupted / shot / f"{stem}.json").read_text())
        assert rebuilt.pop("recovered") is True  # rebuilt after the kill
        for sidecar in (rebuilt, written):  # when it was reused, and how long QA took: the run's own
            sidecar["reused"].pop("at")
            (sidecar.get("qa") or {}).pop("seconds", None)
        assert rebuilt == written, stem
        assert rebuilt["reused"]["from"]["path"] == f"a{stem[1:4]}/a{stem[1:]}.png"
    assert written["qa"]["cast"] == ["mara"] and written["fusion"]  # the character take's verdict and facts too
    lines = [(e["event"], e.get("recovered")) for e in OutputStore(out).journal_entries()
             if e.get("shot_id") == "b010" and e.get("event") != "supersede"]
    assert lines == [("reuse-begin", None), ("commit", True), ("reuse", None)]


# -- disk full -----------------------------------------------------------------------------------------


class _FullDisk:
    """A file object whose write stores half the bytes, then fails with ENOSPC (as a full disk does)."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def write(self, data: bytes) -> int:
        self.handle.write(data[: len(data) // 2])
        self.handle.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.handle.close()


def _disk_fills_at_the_third(monkeypatch: pytest.MonkeyPatch, out: Path, kind: str) -> Any:
    """Fill the disk at the third image (``png``) or sidecar (``json``) written into ``out``; returns the real
    ``os.fdopen``, to put back."""
    real_fdopen = os.fdopen
    writes: Counter[str] = Counter()

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        handle = real_fdopen(fd, *args, **kwargs)
        try:
            name = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return handle
        if name.startswith(str(out)) and name.endswith(TMP_SUFFIX) and f".{kind}." in name:
            writes[kind] += 1
            if writes[kind] >= 3:
                return _FullDisk(handle)
        return handle

    monkeypatch.setattr(os, "fdopen", fdopen)
    return real_fdopen


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="the fault names descriptors through /proc")
@pytest.mark.parametrize("kind", ["png", "json"])
def test_disk_full_mid_write_of_an_image_or_sidecar(write_shotlist, tmp_path: Path, cached_engine: list[int],
                                                    monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    path, out = write_shotlist(SHOTS), tmp_path / "out"
    jobs = plan_jobs(path)
    real_fdopen = _disk_fills_at_the_third(monkeypatch, out, kind)
    result = runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu"])
    monkeypatch.setattr(os, "fdopen", real_fdopen)
    assert result.exit_code == 5, result.output
    assert "Traceback" not in result.output
    third = out / jobs[2].image_relpath if kind == "png" else out / jobs[2].sidecar_relpath
    assert f"disk full while writing {third}" in result.stderr and "nothing partial was kept" in result.stderr
    # the takes the full disk stopped the run before are said as such, not as failed (broken) shots
    assert " 0 failed in " in result.stdout, result.stdout
    assert f"; {len(jobs) - 2} not rendered: the disk filled while writing {third}\n" in result.stdout
    assert_nothing_partial(out)  # the half-written temporary was removed; every file at a final path is whole
    assert (out / jobs[2].image_relpath).exists() == (kind == "json")  # the image went in before its sidecar
    assert not (out / jobs[2].sidecar_relpath).exists() and not (out / jobs[3].image_relpath).exists()

    again = runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "--json", "-q"])
    assert again.exit_code == 0, again.output
    summary = json.loads(again.stdout)["counts"]
    assert (summary["rendered"], summary["recovered"]) == ((4, 0) if kind == "png" else (3, 1))
    assert_nothing_partial(out, jobs)
    assert set(journal_commits(out).values()) == {1} and len(journal_commits(out)) == len(jobs)
    # Renders in all: each job once, plus work in flight when the disk filled, which is lost, never committed
    # twice: the rest of the failing batch (batches of 2; for a failed sidecar its image is adopted instead)
    # and whatever the render thread finished while the commit thread wrote (at most two queued batches).
    lost_in_flight = sum(cached_engine) - len(jobs)
    assert 1 <= lost_in_flight <= 1 + 2 * 2 + (kind == "png"), cached_engine


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="the fault names descriptors through /proc")
def test_a_disk_full_mid_run_is_the_reports_error_from_python(write_shotlist, tmp_path: Path,
                                                                cached_engine: list[int],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """As README, "From Python", says: no raise once rendering began; the report says why, exit code 5."""
    import idcli

    path, out = write_shotlist(SHOTS), tmp_path / "out"
    jobs = plan_jobs(path)
    real_fdopen = _disk_fills_at_the_third(monkeypatch, out, "png")
    report = idcli.render(idcli.load_shotlist(path), out, device="cpu")
    monkeypatch.setattr(os, "fdopen", real_fdopen)
    assert report.exit_code == 5 and "disk full while writing" in (report.error or ""), report.error
    assert report.rendered == 2 and report.not_rendered == len(jobs) - 2 and report.failed == 0
    assert_nothing_partial(out)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="the fault names descriptors through /proc")
def test_a_disk_full_mid_run_names_its_file_in_the_json_error(write_shotlist, tmp_path: Path,
                                                              cached_engine: list[int],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """``render --json``'s error said "disk full while writing OUT/…/a030_t1.png" with ``file: null``: the document
    was built from the message alone, where every other OutputError's document names its file in ``error.file``."""
    path, out = write_shotlist(SHOTS), tmp_path / "out"
    third = out / plan_jobs(path)[2].image_relpath
    real_fdopen = _disk_fills_at_the_third(monkeypatch, out, "png")
    result = runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "--json", "-q"])
    monkeypatch.setattr(os, "fdopen", real_fdopen)
    document = json.loads(result.stdout)
    error = document["error"]
    assert result.exit_code == 5 and error["type"] == "OutputError", result.output
    # failed: takes that failed; not_rendered (a field added 2026-12-02): the takes the full disk left unreached
    assert (document["counts"]["failed"], document["counts"]["not_rendered"]) == (0, len(plan_jobs(path)) - 2)
    assert error["file"] == str(third) and error["message"].startswith(f"disk full while writing {third}"), error


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="the fault names descriptors through /proc")
def test_disk_full_at_the_lock_and_journal_is_not_fatal(write_shotlist, tmp_path: Path, cached_engine: list[int],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The lock's owner text and the journal are records, not commit markers: a full disk there is ignored."""
    path, out = write_shotlist(SHOTS), tmp_path / "out"
    real_pwrite, real_write = os.pwrite, os.write

    def full_pwrite(*args: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def full_journal(fd: int, data: bytes) -> int:
        try:
            name = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            name = ""
        if name.endswith("journal.jsonl"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "pwrite", full_pwrite)
    monkeypatch.setattr(os, "write", full_journal)
    result = runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "-q"])
    monkeypatch.setattr(os, "pwrite", real_pwrite)
    monkeypatch.setattr(os, "write", real_write)
    assert result.exit_code == 0, result.output
    assert_nothing_partial(out, plan_jobs(path))
    assert not (out / ".idcli" / "journal.jsonl").exists() or not OutputStore(out).journal_entries()


# -- out of memory ---------------------------------------------------------------------------------------


def test_out_of_memory_at_random_points_renders_every_job_once(write_shotlist, tmp_path: Path, tiny_engines) -> None:
    """OOM strikes at seeded random batches, even at batch size 1 (that job fails, exit 1); a second run
    finishes; every job is rendered successfully exactly once and equals a batch-size-1 render."""
    import torch

    text = SHOTS.replace("takes: 2", "takes: 4")
    path = write_shotlist(text)
    rng = random.Random(7)
    succeeded: list[str] = []
    attempts: list[int] = []

    class Flaky:
        def __init__(self, adapter: Any) -> None:
            self.engine = tiny_engines("tiny-sd", adapter)
            self.adapter_record = self.engine.adapter_record

        def render(self, requests: list[Any]) -> list[Any]:
            attempts.append(len(requests))
            if rng.random() < (0.6 if len(requests) > 1 else 0.15):
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
            results = self.engine.render(requests)
            succeeded.extend(f"{r.prompt}|{r.seed}" for r in requests)
            return results

        def suggest_batch_size(self, request: Any) -> int:
            return 8

    loaded = idcli.load_shotlist(path)
    out = tmp_path / "oom"
    reports = []
    for _ in range(4):  # a failed job is retried by the next run, as a person would rerun
        reports.append(idcli.render(loaded, out, device="cpu", engine_factory=lambda m, r, a: Flaky(a)))
        if reports[-1].failed == 0:
            break
    assert reports[-1].failed == 0 and len(reports) >= 2, "the seed makes some batch-size-1 attempt fail"
    assert any(o.status == "failed" and "out of memory" in (o.error or "") for o in reports[0].jobs)
    assert min(attempts) == 1 and max(attempts) == 8
    jobs = plan_jobs(path)
    assert len(succeeded) == len(set(succeeded)) == len(jobs), "every job rendered successfully exactly once"
    assert set(journal_commits(out).values()) == {1} and len(journal_commits(out)) == len(jobs)
    reference = idcli.render(loaded, tmp_path / "one", device="cpu", batch_size=1,
                             engine_factory=lambda m, r, a: tiny_engines("tiny-sd", a))
    for job, ref in zip(jobs, reference.jobs, strict=True):
        a = np.asarray(Image.open(out / job.image_relpath), dtype=int)
        b = np.asarray(Image.open(ref.image), dtype=int)
        assert np.abs(a - b).max() <= 1  # float32 batches agree within 3e-6: at most one 8-bit level


# -- two runs, one folder --------------------------------------------------------------------------------


def test_two_runs_on_one_folder_never_interleave(write_shotlist, tmp_path: Path) -> None:
    """Two real processes started together with --wait: one renders, the other queues and then skips
    everything; a third without --wait is refused with exit 3 while the folder is held."""
    path, out = write_shotlist(SHOTS), tmp_path / "out"
    args = ("-q", "--json")
    first = spawn_render(path, out, *args, "--wait", batch_size=None)
    second = spawn_render(path, out, *args, "--wait", batch_size=None)
    outputs = [p.communicate(timeout=300) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    summaries = sorted((json.loads(o[0])["counts"] for o in outputs), key=lambda s: -s["rendered"])
    assert [s["rendered"] for s in summaries] == [6, 0] and summaries[1]["skipped"] == 6
    entries = OutputStore(out).journal_entries()
    pids = [e["pid"] for e in entries]
    # Each run's entries form one block: run-start, its commits, run-end, then the other run's.
    blocks = [pid for i, pid in enumerate(pids) if i == 0 or pid != pids[i - 1]]
    assert len(blocks) == 2 and set(blocks) == {first.pid, second.pid}
    assert [e["event"] for e in entries if e["event"] != "commit"] == ["run-start", "run-end"] * 2
    assert set(journal_commits(out).values()) == {1}

    with OutputStore(out).session():  # the folder is held: a run without --wait is refused at once
        refused = spawn_render(path, out, *args, batch_size=None)
        _, refused_err = refused.communicate(timeout=120)
        waiting = spawn_render(path, out, *args, "--wait", batch_size=None)
        time.sleep(1.5)
        assert waiting.poll() is None, "--wait queues behind the holder"
    assert refused.returncode == 3
    assert f"another idcli run (pid {os.getpid()} " in refused_err and "--wait" in refused_err
    assert "Traceback" not in refused_err
    stdout, stderr = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, stderr
    assert json.loads(stdout)["counts"]["skipped"] == 6
    assert refused.pid not in {e["pid"] for e in OutputStore(out).journal_entries()}, "the refused run wrote nothing"


# -- output folders that cannot be used ---------------------------------------------------------------------


def _block(kind: str, tmp_path: Path) -> tuple[Path, str]:
    out = tmp_path / "out"
    if kind == "output is a file":
        out.write_text("x")
        return out, f"output path {out} exists and is not a folder"
    if kind == "a parent is a file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "out"
        return out, f"cannot create {out}: a file stands where a folder should be"
    if kind == "state folder is a file":
        out.mkdir()
        (out / ".idcli").write_text("x")
        return out, f"{out / '.idcli'} exists and is not a folder"
    if kind == "shot folder is a file":
        out.mkdir()
        (out / "s2").write_text("x")
        return out, f"cannot create {out / 's2'}: it exists and is not a folder"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["output is a file", "a parent is a file", "state folder is a file",
                                  "shot folder is a file"])
def test_a_file_where_a_folder_should_be(write_shotlist, tmp_path: Path, cached_engine: list[int], kind: str) -> None:
    path = write_shotlist(SHOTS)
    out, message = _block(kind, tmp_path)
    result = runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "-q"])
    assert result.exit_code == 5, result.output
    assert f"idcli: error: {message}" in result.stderr and "Traceback" not in result.output
    assert_no_temporaries(tmp_path)
    if kind == "shot folder is a file":  # what was committed before the failure is complete and kept
        jobs = plan_jobs(path)
        assert_nothing_partial(out, [j for j in jobs if j.shot_id == "s1"])


@pytest.mark.parametrize("command", [["plan"], ["render", "--dry-run"]])
def test_plan_and_dry_run_say_a_file_where_a_shot_folder_should_be(write_shotlist, tmp_path: Path,
                                                                   command: list[str]) -> None:
    """README's exit 5: "a file where a folder should be (`plan` and `render --dry-run` too, for a file in the way)".
    A file at a shot's folder (OUT/s2) stops the render at that shot's first commit (exit 5, above), yet `plan` listed
    every job as new and `render --dry-run` said "6 to render", exit 0: the check ahead of the render looked at the
    output folder, its parents and .idcli only. They now say what the render would, naming the file, and write
    nothing."""
    path = write_shotlist(SHOTS)
    out, message = _block("shot folder is a file", tmp_path)
    result = runner.invoke(app, [*command, str(path), "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 5, result.output
    assert f"idcli: error: {message}" in result.stderr and "Traceback" not in result.output
    assert sorted(p.name for p in out.iterdir()) == ["s2"]


@pytest.mark.parametrize("link", ["to a file", "dangling"])
def test_plan_and_dry_run_say_a_link_at_a_shot_folder_in_the_render_s_words(write_shotlist, tmp_path: Path,
                                                                            cached_engine: list[int],
                                                                            link: str) -> None:
    """A link at a shot's folder (to a file outside OUT, or to nothing) stops the render, which writes through no
    link, with "OUT/s2 is a symbolic link; ...". `plan` and `render --dry-run` said "cannot create OUT/s2: it exists
    and is not a folder" instead (of a dangling link, which does not exist): the user fixed a file that was not there
    (a hostile read, 2026-12-02). All three now give the render's words."""
    path = write_shotlist(SHOTS)
    out, target = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    if link == "to a file":
        target.write_text("x")
    (out / "s2").symlink_to(target)
    message = f"idcli: error: {out / 's2'} is a symbolic link; idcli never writes through links in the output folder"
    for command in (["plan"], ["render", "--dry-run"], ["render", "-q"]):
        result = runner.invoke(app, [*command, str(path), "--out", str(out), "--device", "cpu"])
        assert result.exit_code == 5, (command, result.output)
        assert message in result.stderr and "Traceback" not in result.output, (command, result.stderr)
    assert (out / "s2").is_symlink() and (target.read_text() == "x" if link == "to a file" else not target.exists())


def test_missing_output_folders_are_created(write_shotlist, tmp_path: Path, cached_engine: list[int]) -> None:
    path, out = write_shotlist(SHOTS), tmp_path / "does" / "not" / "exist"
    result = runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    assert_nothing_partial(out, plan_jobs(path))


def test_read_only_output_folder_simulated(write_shotlist, tmp_path: Path, cached_engine: list[int],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """EROFS on every file created in the output folder (the tests may run as root, where chmod does not bite)."""
    path, out = write_shotlist(SHOTS), tmp_path / "out"
    out.mkdir()
    real_open, real_mkdir = os.open, os.mkdir

    def ro_open(name: Any, flags: int, *args: Any, **kwargs: Any) -> Any:
        if flags & os.O_CREAT and str(name).startswith(str(out)):
            raise OSError(errno.EROFS, "Read-only file system", str(name))
        return real_open(name, flags, *args, **kwargs)

    def ro_mkdir(name: Any, *args: Any, **kwargs: Any) -> Any:
        if str(name).startswith(str(out)):
            raise OSError(errno.EROFS, "Read-only file system", str(name))
        return real_mkdir(name, *args, **kwargs)

    monkeypatch.setattr(os, "open", ro_open)
    monkeypatch.setattr(os, "mkdir", ro_mkdir)
    result = runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "-q"])
    monkeypatch.undo()
    assert result.exit_code == 5 and "Traceback" not in result.output
    assert f"idcli: error: permission denied while creating {out}" in result.stderr
    assert "Read-only file system" in result.stderr
    assert list(out.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through file permissions")
def test_read_only_output_folder(write_shotlist, tmp_path: Path, cached_engine: list[int]) -> None:
    path, out = write_shotlist(SHOTS), tmp_path / "out"
    (out / ".idcli").mkdir(parents=True)
    out.chmod(0o555)
    try:
        result = runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "-q"])
    finally:
        out.chmod(0o755)
    assert result.exit_code == 5 and f"output folder {out} is not writable" in result.stderr


class SignalAtFirstLine:
    """A progress display whose first reported line meets a SIGTERM: the handler's KeyboardInterrupt is raised
    inside the loop that reports a committed batch's jobs."""

    def start(self, total: int, done: int) -> None: ...
    def note(self, text: str) -> None: ...
    def stop(self) -> None: ...

    def advance(self, outcome: Any) -> None:
        if not hasattr(self, "signalled"):
            self.signalled = True
            raise KeyboardInterrupt


def test_a_signal_while_a_batch_is_reported_still_reports_every_committed_image(write_shotlist, tmp_path: Path,
                                                                               engine_factory) -> None:
    """SIGTERM sent by a farm wrapper as soon as "[1/12] rendered" appeared: the whole batch was committed (12
    images and sidecars on disk) but ``render --json`` said ``rendered: 1``, the other 11 images in no count or
    job; the signal had landed in the loop that reports the batch's jobs (the progress display)."""
    shots = write_shotlist("""\
        version: 1
        project: report-all
        model: {preset: tiny-sd}
        defaults: {size: 64x64, steps: 1, guidance: 1.0, takes: 4}
        shots:
          - {id: land, prompt: "a lighthouse"}
        """)

    out = tmp_path / "out"
    with pytest.raises(idcli.Interrupted) as stopped:
        idcli.render(idcli.load_shotlist(shots), out, device="cpu", batch_size=4, engine_factory=engine_factory,
                     progress=SignalAtFirstLine())
    report = stopped.value.report
    committed = sorted(p.name for p in out.glob("land/*.json"))
    assert len(committed) == 4, committed  # one batch, committed before the hand-over
    assert report.rendered == 4 and report.as_dict()["counts"]["rendered"] == 4
    assert sorted((o.shot_id, o.take) for o in report.jobs) == [("land", t) for t in (1, 2, 3, 4)]
    assert idcli.render(idcli.load_shotlist(shots), out, device="cpu", engine_factory=engine_factory).count(
        "skipped") == 4


def test_a_failure_reported_between_an_interrupted_hand_over_and_its_retry_reports_no_job_twice(
        write_shotlist, tmp_path: Path, engine_factory) -> None:
    """The Ray executor, stopped by SIGTERM, still hands over what had arrived: failed batches go to the report
    (``sink.failed``) before a rendered one makes the commit queue hand over the interrupted batch again. The
    hand-over took as already reported only the report's last entries, so a failed batch of 4 in between pushed the
    first job out of sight and it was reported twice (5 rendered of 4 images)."""
    from idcli.executors import RenderedBatch
    from idcli.executors.local import LocalExecutor

    shots = write_shotlist("""\
        version: 1
        project: report-once
        model: {preset: tiny-sd}
        defaults: {size: 64x64, steps: 1, guidance: 1.0, takes: 4}
        shots:
          - {id: land, prompt: "a lighthouse"}
          - {id: sea, prompt: "a calm sea"}
          - {id: sky, prompt: "a grey sky"}
        """)
    out = tmp_path / "out"

    class RayLikeStop:
        """Renders locally; stopped, hands over as RayExecutor does: a failed part, then a rendered one."""

        def __init__(self, engine: Any) -> None:
            self.local = LocalExecutor(engine, "cpu")

        def run(self, pending: list, batch_size: Any, save_masks: bool, sink: Any) -> None:
            batches: list[RenderedBatch] = []

            class Keep:
                note = sink.note
                failed = sink.failed

                def rendered(self, batch: RenderedBatch) -> None:
                    batches.append(batch)

            self.local.run(pending, 4, save_masks, Keep())
            first, second, third = batches
            try:
                sink.rendered(first)
                # the first batch committed (its sidecars are written last, then the commit returns): handing the
                # second over hands the first over too, and the signal lands on its first line
                deadline = time.monotonic() + 60
                while len(list(out.glob("land/*.json"))) < 4 and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(1.0)
                sink.rendered(second)
            except KeyboardInterrupt:
                sink.failed(third.jobs, "failed on a Ray worker")  # an arrived part that had failed
                raise

    class Backend:
        name, address = "ray-like", None

        def runtime(self, device: str, dtype: str) -> Any:
            from idcli.runtime import Runtime

            return Runtime("cpu", "float32")

        def executor(self, model: Any, runtime: Any, adapter: Any, project: str) -> RayLikeStop:
            return RayLikeStop(engine_factory(model, runtime, adapter))

        def close(self) -> None: ...

    with pytest.raises(idcli.Interrupted) as stopped:
        # Backend stands in for a RayBackend: render takes any object with its methods (run._backend)
        idcli.render(idcli.load_shotlist(shots), out, device="cpu", executor=Backend(),  # type: ignore[arg-type]
                     progress=SignalAtFirstLine(), qa=False)
    report = stopped.value.report
    reported = sorted((o.shot_id, o.take, o.status) for o in report.jobs)
    assert len(reported) == len(set(reported)), reported  # no job twice
    committed = sorted(p.stem for p in out.glob("*/*.json"))
    assert report.rendered == len(committed) and {o.shot_id for o in report.jobs if o.status == "failed"} == {"sky"}
