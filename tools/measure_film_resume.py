"""What resume, restore and ``render --sign`` cost on a film-sized output folder (docs/performance.md,
"At film scale: resume, restore, sign").

python tools/measure_film_resume.py make DIR [--shots 2000] [--size 512]
    writes DIR/film.yaml (SHOTS one-take shots) and renders it into DIR/out through idcli.render's real
    commit path with an engine that returns seeded noise (a noise PNG of 512x512 is 0.79 MB, more than a real
    512x512 render compresses to and about half a real 1024x1024 one), so resume has real bytes to hash.
python tools/measure_film_resume.py states DIR
    times deciding every job's state of the rendered folder in process (what a resume does before it
    renders: one sidecar read and the image check per job), three times; prints each.
python tools/measure_film_resume.py journal DIR [--lines 200000]
    appends LINES commit entries (as render writes them, for the film's takes in turn: a film re-rendered
    many times) to DIR/out/.idcli/journal.jsonl, and supersedes sc001_sh0010 once so it can be restored.
python tools/measure_film_resume.py adopt-scan DIR
    times what adopting images left without their sidecars reads of the journal to tell reused ones
    (reuse.begun_reuses): for sc001_sh0010, whose take only the journal's first lines name (the worst case: every
    line is read), then for every take at once (sidecars deleted), three times each; run after ``journal``.
python tools/measure_film_resume.py unsigned-note DIR
    times the signing run's "already done and unsigned" check over every job (run_signing.note_unsigned).
python tools/measure_film_resume.py reuse-scan DIR
    times listing the folder's images by job key (reuse.renders_by_key, what a run with a job to render does to
    find images it can reuse) from the keys the run's states read, and, for comparison, listing the folder again
    (orphans.images_in) and reading every take's sidecar.

Whole commands are timed with ``time`` around ``python -m idcli ...`` (the commands are printed by each step).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from measure_film_commits import NoiseEngine  # the same seeded noise (this folder is on sys.path)

import idcli


def film_text(shots: int, size: int) -> str:
    lines = ["version: 1", "project: film", "model: {preset: tiny-sd}",
             f"defaults: {{size: {size}x{size}, steps: 1, guidance: 1.0}}", "shots:"]
    lines += [f'  - {{id: sc{i // 20 + 1:03d}_sh{i % 20 * 10 + 10:04d}, prompt: "a lighthouse at dusk, shot {i}"}}'
              for i in range(shots)]
    return "\n".join(lines) + "\n"


def make(folder: Path, shots: int, size: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shotlist = folder / "film.yaml"
    shotlist.write_text(film_text(shots, size), "utf-8")
    start = time.perf_counter()
    report = idcli.render(shotlist, folder / "out", device="cpu", engine_factory=lambda *a, **k: NoiseEngine(),
                          qa=False)
    took = time.perf_counter() - start
    images = sorted((folder / "out").glob("[!.]*/*.png"))
    size_mb = sum(p.stat().st_size for p in images) / 1e6
    print(f"rendered {report.rendered} (failed {report.failed}) in {took:.0f} s; "
          f"{len(images)} images, {size_mb:.0f} MB")
    print(f"resume: time python -m idcli render {shotlist} --out {folder / 'out'}")


def states(folder: Path) -> None:
    from idcli.store import OutputStore

    plan, _ = idcli.plan_shotlist(folder / "film.yaml", device="cpu")
    store = OutputStore(folder / "out")
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        counted: dict[str, int] = {}
        for job in plan.jobs:
            status = store.state(job).status
            counted[status] = counted.get(status, 0) + 1
        runs.append(time.perf_counter() - start)
        print(f"{len(plan.jobs)} states {counted}: {runs[-1]:.2f} s")
    print(f"median {statistics.median(runs):.2f} s")


def journal(folder: Path, lines: int) -> None:
    from idcli.store import OutputStore

    plan, _ = idcli.plan_shotlist(folder / "film.yaml", device="cpu")
    out = folder / "out"
    store = OutputStore(out)
    with store.session():
        # One real supersede, so there is a kept version to restore.
        job = plan.jobs[0]
        from idcli.superseded import move_aside

        moved = move_aside(out, job.shot_id, job.stem, job.image_relpath, job.sidecar_relpath, job.mask_relpath)
        store.journal({"event": "supersede", "shot_id": job.shot_id, "take": job.take, "as": moved})
    path = out / ".idcli" / "journal.jsonl"
    with open(path, "a", encoding="utf-8") as handle:
        for i in range(lines):
            job = plan.jobs[1 + i % (len(plan.jobs) - 1)]  # every take but the one restored
            handle.write(json.dumps({"time": "2026-11-30T12:00:00+00:00", "pid": 4242, "event": "commit",
                                     "job_key": job.key, "shot_id": job.shot_id, "take": job.take,
                                     "recovered": False}) + "\n")
    print(f"{path}: {os.path.getsize(path) / 1e6:.1f} MB; "
          f"restore: time python -m idcli restore {out} {plan.jobs[0].stem}")


def adopt_scan(folder: Path) -> None:
    from idcli.reuse import begun_reuses
    from idcli.store import OutputStore

    plan, _ = idcli.plan_shotlist(folder / "film.yaml", device="cpu")
    store = OutputStore(folder / "out")
    for label, jobs in ((plan.jobs[0].stem, plan.jobs[:1]), (f"all {len(plan.jobs)} takes", plan.jobs)):
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            found = begun_reuses(store, [(job, "0" * 64) for job in jobs])
            runs.append(time.perf_counter() - start)
        print(f"{label}: {len(found)} reuse-begin lines; {', '.join(f'{r:.3f}' for r in runs)} s; "
              f"median {statistics.median(runs):.3f} s")


def unsigned_note(folder: Path) -> None:
    from types import SimpleNamespace

    from idcli.run_signing import note_unsigned
    from idcli.store import OutputStore

    plan, _ = idcli.plan_shotlist(folder / "film.yaml", device="cpu")
    store = OutputStore(folder / "out")

    class Quiet:
        def note(self, text: str) -> None:
            self.text = text

    runs = []
    for _ in range(3):
        report = SimpleNamespace(jobs=[SimpleNamespace(job_key=job.key, status="skipped") for job in plan.jobs])
        start = time.perf_counter()
        progress = Quiet()
        note_unsigned(store, plan.jobs, report, progress)  # type: ignore[arg-type]
        runs.append(time.perf_counter() - start)
        print(f"{len(plan.jobs)} jobs checked: {runs[-1]:.2f} s ({getattr(progress, 'text', 'no note')[:60]})")
    print(f"median {statistics.median(runs):.2f} s")


def reuse_scan(folder: Path) -> None:
    from idcli.orphans import images_in
    from idcli.reuse import recorded_key, renders_by_key
    from idcli.store import OutputStore

    plan, _ = idcli.plan_shotlist(folder / "film.yaml", device="cpu")
    out = folder / "out"
    store = OutputStore(out)
    known = {job.image_relpath: recorded_key(job, store.state(job)) for job in plan.jobs}
    ways = (("keys from the states", lambda: renders_by_key(out, [], known)),
            ("listed again, every sidecar read", lambda: renders_by_key(out, [], {}, (i for *_, i in images_in(out)))))
    for label, way in ways:
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            found = way()
            runs.append(time.perf_counter() - start)
        print(f"{label}: {len(found)} keys; {', '.join(f'{r:.3f}' for r in runs)} s; "
              f"median {statistics.median(runs):.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["make", "states", "journal", "adopt-scan", "unsigned-note",
                                                   "reuse-scan"])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--shots", type=int, default=2000)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--lines", type=int, default=200_000)
    args = parser.parse_args()
    if args.step == "make":
        make(args.folder, args.shots, args.size)
    elif args.step == "states":
        states(args.folder)
    elif args.step == "journal":
        journal(args.folder, args.lines)
    elif args.step == "adopt-scan":
        adopt_scan(args.folder)
    elif args.step == "reuse-scan":
        reuse_scan(args.folder)
    else:
        unsigned_note(args.folder)


if __name__ == "__main__":
    main()
