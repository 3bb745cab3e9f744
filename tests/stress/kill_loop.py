"""Kill ``idcli render`` at random moments and prove that nothing is lost, partial or done twice.

Standalone stress script (not collected by pytest: no ``test_`` prefix); ``tests/test_faults.py``
imports :func:`run_kill_loop` from here and runs a short loop of it in the test suite.

    python tests/stress/kill_loop.py                      # 200 kills, seed 1
    python tests/stress/kill_loop.py -n 60 --seed 7 --signals KILL,TERM,INT

Each iteration starts ``python -m idcli render`` (tiny-sd, 64x64, 2 steps, batch size 1) on an
output folder and stops it at a seeded random moment, anchored at one of

* ``start``      a delay after the process was started (imports, planning, engine build);
* ``run-start``  a short delay after the run logged ``run-start`` (lock held, leftovers cleaned);
* ``commit``     a short delay after the run's first commit (in the middle of rendering/committing).

After every stop the folder is checked:

* no partial file at a final path: every PNG decodes completely, every sidecar parses;
* every committed image's sha256 equals its sidecar's, and the sidecar names its job;
* a PNG without a sidecar carries its own job's record (the next run adopts it);
* a file once seen at a final path is never replaced (same inode and mtime): no job is rendered
  and committed twice — together with the journal's commit lines this counts the renders;
* temporaries left by a kill are gone once the next run has logged ``run-start``;
* no traceback on stderr.

A folder whose run completes is checked as finished and a new folder starts; at the end the last
folder is resumed to completion and checked the same way. Every job of every folder must end done,
committed exactly once.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if __name__ == "__main__":  # run as a script: this checkout's idcli
    sys.path.insert(0, str(ROOT))
if str(ROOT / "tests") not in sys.path:  # the tests' shared helpers (pytest has put tests/ there already)
    sys.path.append(str(ROOT / "tests"))

from cli_helpers import cli_env, commit_counts, plan_jobs, spawn_render  # noqa: E402

from idcli.store import TMP_SUFFIX  # noqa: E402

SIGNALS = {"KILL": signal.SIGKILL, "TERM": signal.SIGTERM, "INT": signal.SIGINT}
# Exit statuses a script sees after each signal (Python reports death by signal N as -N; a shell as 128+N).
EXPECTED_STATUS = {"KILL": {-9}, "TERM": {143, -15}, "INT": {130, -2}}


def shot_list(shots: int, takes: int) -> str:
    lines = [f'  - {{id: s{i:02d}, prompt: "a stress test view number {i}"}}' for i in range(shots)]
    return textwrap.dedent(f"""\
        version: 1
        project: kill-loop
        model: {{preset: tiny-sd}}
        defaults: {{size: 64x64, steps: 2, guidance: 4.0, sampler: euler, takes: {takes}}}
        shots:
        """) + "\n".join(lines) + "\n"


@dataclass
class Stop:
    """One stopped (or finished) run."""

    index: int
    folder: int
    signal: str
    anchor: str
    delay: float
    status: int | None = None
    finished_before_stop: bool = False
    exit_seconds: float = 0.0  # signal to exit
    committed: int = 0  # jobs done in the folder after this run
    png_without_sidecar: int = 0
    temporaries: int = 0
    reached_run_start: bool = False


@dataclass
class Summary:
    kills: int = 0
    runs: int = 0
    folders: int = 0
    jobs: int = 0
    done_at_end: int = 0
    renders: int = 0  # distinct images committed at final paths, over every observation
    journal_commits: int = 0
    journal_recovered: int = 0
    journal_gaps: int = 0  # jobs committed whose journal line a kill cut off
    max_commits_per_job: int = 0
    recovered_states: int = 0  # stops that left a PNG without its sidecar
    temporaries_seen: int = 0  # stops that left temporaries
    lost: int = 0
    duplicates: int = 0
    partial: int = 0
    mismatched: int = 0
    temporaries_survived_start: int = 0
    temporaries_at_end: int = 0
    tracebacks: int = 0
    wrong_status: int = 0
    slowest_exit: float = 0.0
    seconds: float = 0.0
    anchors: Counter = field(default_factory=Counter)
    signals: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    stops: list[Stop] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations and self.done_at_end == self.jobs

    def table(self) -> str:
        rows = [
            ("stops (kill -9 / SIGTERM / SIGINT)",
             f"{self.kills} ({self.signals['KILL']} / {self.signals['TERM']} / {self.signals['INT']})"),
            ("runs in all (stops + finishing runs)", self.runs),
            ("stop anchors start / run-start / commit",
             f"{self.anchors['start']} / {self.anchors['run-start']} / {self.anchors['commit']}"),
            ("exit statuses", ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))),
            ("output folders / jobs", f"{self.folders} / {self.jobs}"),
            ("jobs done at the end", self.done_at_end),
            ("images committed (distinct files at final paths)", self.renders),
            ("journal commits: rendered / recovered / cut by a kill",
             f"{self.journal_commits} / {self.journal_recovered} / {self.journal_gaps}"),
            ("most commits of one job", self.max_commits_per_job),
            ("stops leaving a PNG without sidecar (adopted later)", self.recovered_states),
            ("stops leaving temporaries (removed at next start)", self.temporaries_seen),
            ("lost outputs", self.lost),
            ("duplicate renders (a final file replaced)", self.duplicates),
            ("partial files at final paths", self.partial),
            ("sha256 mismatches image/sidecar", self.mismatched),
            ("temporaries surviving the next start", self.temporaries_survived_start),
            ("temporaries after the final run", self.temporaries_at_end),
            ("tracebacks on stderr", self.tracebacks),
            ("unexpected exit statuses", self.wrong_status),
            ("slowest exit after SIGTERM/SIGINT (s)", f"{self.slowest_exit:.2f}"),
            ("wall time (s)", f"{self.seconds:.0f}"),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"| {'measure'.ljust(width)} | value |", f"|{'-' * (width + 2)}|-------|"]
        lines += [f"| {name.ljust(width)} | {value} |" for name, value in rows]
        return "\n".join(lines)


def _journal(out: Path) -> tuple[list[dict[str, Any]], int]:
    """Journal entries and the number of lines that do not parse (a line cut by a kill)."""
    try:
        lines = (out / ".idcli" / "journal.jsonl").read_bytes().splitlines()
    except OSError:
        return [], 0
    entries, bad = [], 0
    for line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError:
            bad += 1
    return entries, bad


def _journal_has(out: Path, pid: int, event: str) -> bool:
    entries, _bad = _journal(out)
    return any(e.get("pid") == pid and e.get("event") == event for e in entries)


class Folder:
    """One output folder and everything observed in it."""

    def __init__(self, out: Path, jobs: list[Any]) -> None:
        self.out = out
        self.jobs = jobs
        self.seen: dict[str, tuple[int, int]] = {}  # final path -> (inode, mtime_ns) first seen
        self.images: dict[str, set[tuple[int, int]]] = {j.image_relpath: set() for j in jobs}
        self.done: set[str] = set()
        self.temporaries: set[str] = set()

    def check(self, summary: Summary, stop: Stop | None, final: bool = False) -> None:
        from PIL import Image

        from idcli.hashing import sha256_file
        from idcli.provenance import read_png_record

        def violation(text: str) -> None:
            summary.violations.append(f"{self.out.name}{f' after stop {stop.index}' if stop else ''}: {text}")

        done_now, png_only = set(), 0
        for job in self.jobs:
            image, sidecar = self.out / job.image_relpath, self.out / job.sidecar_relpath
            for rel, path in ((job.image_relpath, image), (job.sidecar_relpath, sidecar)):
                if not path.exists():
                    continue
                st = path.stat()
                ident = (st.st_ino, st.st_mtime_ns)
                if rel in self.seen and self.seen[rel] != ident:
                    summary.duplicates += 1
                    violation(f"{rel} was replaced: the job was committed again")
                self.seen.setdefault(rel, ident)
                if rel == job.image_relpath:
                    self.images[rel].add(ident)
            if image.exists():
                try:
                    with Image.open(image) as im:
                        im.load()  # a truncated PNG fails here
                except Exception as exc:  # any failure is a partial file
                    summary.partial += 1
                    violation(f"{job.image_relpath} is not a complete image ({exc})")
                    continue
            if sidecar.exists():
                try:
                    record = json.loads(sidecar.read_text("utf-8"))
                except ValueError:
                    summary.partial += 1
                    violation(f"{job.sidecar_relpath} is not complete JSON")
                    continue
                if record.get("job_key") != job.key or (record["shot_id"], record["take"]) != (job.shot_id, job.take):
                    violation(f"{job.sidecar_relpath} names another job")
                if not image.exists() or sha256_file(image) != record["image"]["sha256"]:
                    summary.mismatched += 1
                    violation(f"{job.image_relpath} does not match its sidecar's sha256")
                done_now.add(job.key)
            elif image.exists():
                png_only += 1
                chunk = read_png_record(image.read_bytes())
                if not chunk or chunk.get("job_key") != job.key:
                    violation(f"{job.image_relpath} has no sidecar and no record of its own job")
        lost = self.done - done_now
        if lost:
            summary.lost += len(lost)
            violation(f"{len(lost)} committed job(s) no longer done")
        self.done = done_now

        temporaries = {str(p.relative_to(self.out)) for p in self.out.rglob(f"*{TMP_SUFFIX}")}
        if stop is not None:
            stop.committed, stop.png_without_sidecar, stop.temporaries = len(done_now), png_only, len(temporaries)
            summary.recovered_states += bool(png_only)
            summary.temporaries_seen += bool(temporaries)
            if stop.reached_run_start:
                survived = self.temporaries & temporaries
                if survived:
                    summary.temporaries_survived_start += len(survived)
                    violation(f"temporaries survived a start: {sorted(survived)}")
        self.temporaries = temporaries
        if final:
            if temporaries:
                summary.temporaries_at_end += len(temporaries)
                violation(f"temporaries after the final run: {sorted(temporaries)}")
            summary.jobs += len(self.jobs)
            summary.done_at_end += len(done_now)
            if len(done_now) != len(self.jobs):
                violation(f"{len(self.jobs) - len(done_now)} job(s) not done after the final run")
            self._count(summary, violation)

    def _count(self, summary: Summary, violation: Any) -> None:
        entries, bad = _journal(self.out)
        if bad:
            violation(f"{bad} journal line(s) do not parse")
        commits = commit_counts(entries)
        recovered = sum(1 for e in entries if e.get("event") == "commit" and e.get("recovered"))
        summary.journal_commits += sum(commits.values()) - recovered
        summary.journal_recovered += recovered
        summary.journal_gaps += sum(1 for j in self.jobs if commits[j.key] == 0)
        summary.max_commits_per_job = max([summary.max_commits_per_job, *commits.values()])
        if commits and max(commits.values()) > 1:
            summary.duplicates += sum(n - 1 for n in commits.values() if n > 1)
            violation("the journal shows a job committed twice")
        for rel, idents in self.images.items():
            summary.renders += len(idents)
            if len(idents) != 1:
                violation(f"{rel} was committed {len(idents)} times")


def run_kill_loop(kills: int = 200, seed: int = 1, workdir: Path | None = None, *, shots: int = 12, takes: int = 4,
                  signals: tuple[str, ...] = ("KILL",), schedule: list[str] | None = None,
                  anchors: tuple[str, ...] = ("start", "start", "run-start", "commit", "commit"),
                  signal_anchors: tuple[str, ...] = ("commit",), start_span: float = 4.0, after_span: float = 0.6,
                  exit_limit: float = 30.0, log: Any = None) -> Summary:
    """Stop ``kills`` runs at seeded random moments; return what was observed (``summary.ok``).

    ``schedule`` lists the signal of each stop (shuffled); without it each stop draws from ``signals``.
    A ``start`` stop lands uniformly in [0, T + after_span], T the time the last ``commit``-anchored run
    took to its first commit (``start_span`` until one was measured): anywhere in a run's life.
    A stop that finds its run already finished is retried on the next run. SIGTERM/SIGINT stops are
    anchored only at ``signal_anchors`` (by default once rendering has begun).
    """
    rng = random.Random(seed)
    own_dir = workdir is None
    work = Path(tempfile.mkdtemp(prefix="idcli-kill-")) if workdir is None else Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"  # one IDCLI_HOME for every run
    env = cli_env(home)  # one thread per run, offline, this checkout's idcli
    shots_path = work / "shots.yaml"
    shots_path.write_text(shot_list(shots, takes), "utf-8")
    saved_home = os.environ.get("IDCLI_HOME")
    os.environ["IDCLI_HOME"] = str(home)
    try:
        jobs = plan_jobs(shots_path)
    finally:
        if saved_home is None:
            os.environ.pop("IDCLI_HOME", None)
        else:
            os.environ["IDCLI_HOME"] = saved_home
    summary = Summary()
    started = time.monotonic()
    folder = Folder(work / "out-000", jobs)
    summary.folders = 1

    def spawn(out: Path, stderr: Any) -> subprocess.Popen[str]:
        return spawn_render(shots_path, out, "--quiet", env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=stderr)

    def finish(current: Folder, stop: Stop | None) -> None:
        with (work / "final.stderr").open("w+") as err:
            proc = spawn(current.out, err)
            status = proc.wait(timeout=600)
            err.seek(0)
            text = err.read()
        summary.runs += 1
        if status != 0:
            summary.violations.append(f"{current.out.name}: the resuming run exited {status}: {text[-500:]}")
        if "Traceback" in text:
            summary.tracebacks += 1
            summary.violations.append(f"{current.out.name}: traceback in the resuming run")
        current.check(summary, stop, final=True)

    queue = list(schedule) if schedule else [rng.choice(signals) for _ in range(kills)]
    rng.shuffle(queue)
    index = 0
    limit = 3 * len(queue) + 10
    while queue and index < limit:
        name = queue[0]
        anchor = rng.choice(anchors if name == "KILL" else signal_anchors)
        delay = rng.uniform(0.0, start_span + after_span if anchor == "start" else after_span)
        stop = Stop(index, summary.folders - 1, name, anchor, round(delay, 3))
        with (work / "run.stderr").open("w+") as err:
            proc = spawn(folder.out, err)
            t0 = time.monotonic()
            if anchor != "start":
                event = "run-start" if anchor == "run-start" else "commit"
                while proc.poll() is None and not _journal_has(folder.out, proc.pid, event):
                    if time.monotonic() - t0 > 300:
                        break
                    time.sleep(0.005)
                if event == "commit" and proc.poll() is None:
                    start_span = time.monotonic() - t0
            time.sleep(delay)
            sent = time.monotonic()
            signalled = proc.poll() is None
            if signalled:
                proc.send_signal(SIGNALS[name])
            else:
                stop.finished_before_stop = True
            try:
                status = proc.wait(timeout=exit_limit)
            except subprocess.TimeoutExpired:
                summary.violations.append(f"stop {index}: no exit {exit_limit}s after SIG{name}")
                proc.kill()
                status = proc.wait()
            # SIGKILL cannot end a process with status 0: it reached a run that had already exited by itself (its
            # exit_group called, the kernel still tearing the process down, so poll() saw it running). That run was
            # not stopped: checked as one, and the stop is tried again on the next run.
            if signalled and name == "KILL" and status == 0:
                signalled, stop.finished_before_stop = False, True
            if signalled:
                queue.pop(0)
                summary.kills += 1
                summary.signals[name] += 1
                summary.anchors[anchor] += 1
            stop.exit_seconds = time.monotonic() - sent
            err.seek(0)
            text = err.read()
        summary.runs += 1
        stop.status = status
        stop.reached_run_start = _journal_has(folder.out, proc.pid, "run-start")
        summary.statuses[str(status)] += 1
        if "Traceback" in text:
            summary.tracebacks += 1
            summary.violations.append(f"stop {index}: traceback on stderr: {text[-400:]}")
        if stop.finished_before_stop:
            if status != 0:
                summary.wrong_status += 1
                summary.violations.append(f"stop {index}: a run that was not stopped exited {status}: {text[-300:]}")
        else:
            if status not in EXPECTED_STATUS[name] and not (name != "KILL" and status == 0):
                summary.wrong_status += 1
                summary.violations.append(f"stop {index}: SIG{name} gave exit status {status}: {text[-300:]}")
            if name != "KILL":
                summary.slowest_exit = max(summary.slowest_exit, stop.exit_seconds)
        summary.stops.append(stop)
        folder.check(summary, stop)
        if (name != "KILL" and status in EXPECTED_STATUS[name] and status > 0 and stop.reached_run_start
                and stop.temporaries):
            # SIGTERM/SIGINT after the handlers are installed: in-flight writes finish or are removed.
            summary.violations.append(f"stop {index}: SIG{name} left temporaries behind")
        if log:
            log(f"stop {index:3d}: SIG{name:<4} {anchor:9s} +{delay:5.2f}s -> status {status!s:>4}, "
                f"{stop.committed:3d}/{len(jobs)} done, {stop.png_without_sidecar} png w/o sidecar, "
                f"{stop.temporaries} tmp")
        if stop.finished_before_stop and len(folder.done) == len(jobs):
            folder.check(summary, None, final=True)
            folder = Folder(work / f"out-{summary.folders:03d}", jobs)
            summary.folders += 1
        index += 1
    if queue:
        summary.violations.append(f"{len(queue)} stop(s) never found a run to stop")
    finish(folder, None)
    summary.seconds = time.monotonic() - started
    if own_dir:
        shutil.rmtree(work, ignore_errors=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--kills", type=int, default=200, help="runs to stop (default 200)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--signals", default="KILL", help="comma-separated from KILL,TERM,INT (default KILL)")
    parser.add_argument("--signal-anchors", default="commit",
                        help="where SIGTERM/SIGINT may land: comma-separated from start,run-start,commit "
                             "(default commit: once rendering has begun)")
    parser.add_argument("--shots", type=int, default=12, help="shots per output folder (4 takes each)")
    parser.add_argument("--workdir", type=Path, help="keep the folders here instead of a removed temp folder")
    parser.add_argument("--quiet", action="store_true", help="only the summary")
    args = parser.parse_args(argv)
    names = tuple(s.strip().upper() for s in args.signals.split(","))
    if not set(names) <= set(SIGNALS):
        parser.error(f"--signals: choose from {', '.join(SIGNALS)}")
    signal_anchors = tuple(a.strip() for a in args.signal_anchors.split(","))
    if not set(signal_anchors) <= {"start", "run-start", "commit"}:
        parser.error("--signal-anchors: choose from start, run-start, commit")
    summary = run_kill_loop(args.kills, args.seed, args.workdir, shots=args.shots, signals=names,
                            signal_anchors=signal_anchors, log=None if args.quiet else print)
    print()
    print(f"kill loop: seed {args.seed}, {args.kills} stops, signals {','.join(names)}, "
          f"{args.shots} shots x 4 takes per folder, tiny-sd 64x64, 2 steps, batch size 1")
    print(summary.table())
    for line in summary.violations:
        print("VIOLATION:", line)
    print("result:", "PASS" if summary.ok else "FAIL")
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
