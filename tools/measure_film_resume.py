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
python tools/measure_film_resume.py kept-order DIR
    times ordering the kept versions by the journal (superseded.list_superseded; docs/performance.md, "Kept
    versions' order"): keeps sc001_sh0010's version a second time (a copy under the next free name, which no journal
    line names: every line is read), then lists the kept versions as a render does (kept_versions_by_take: the
    journal is read for one job kept twice), as restore chooses (by_take), as restore --list shows them (every
    version), and without the journal (each_alone, what each listing cost before), three times each; then removes
    the copy and lists them as a render again (no job kept twice: no journal read). Then, the worst listing, with a
    version no line names kept for every shot (every line parsed). Run after ``journal``; leaves the folder as it was.
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
import contextlib
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

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


def kept_order(folder: Path) -> None:
    import shutil

    from idcli import superseded
    from idcli.superseded import by_take, each_alone, kept_versions_by_take, list_superseded

    out = folder / "out"
    plan, _ = idcli.plan_shotlist(folder / "film.yaml", device="cpu")
    stem = plan.jobs[0].stem
    kept = list_superseded(out, stem, order_among=each_alone)
    original = kept[0]
    copies = [out / superseded.SUPERSEDED / original.shot_id / f"{original.name}.2{ext}" for ext in (".png", ".json")]
    shutil.copyfile(out / str(original.image), copies[0])
    shutil.copyfile(out / str(original.sidecar), copies[1])
    assert (superseded.read_sidecar_file(copies[1]) or {}).get("job_key") == original.job_key
    ways = (("render's listing, one job kept twice", lambda: kept_versions_by_take(out)),
            (f"restore {stem}'s choice", lambda: list_superseded(out, stem, order_among=by_take)),
            ("restore --list, every version", lambda: list_superseded(out)),
            ("without the journal (each_alone)", lambda: list_superseded(out, order_among=each_alone)))
    try:
        for label, way in ways:
            _three_runs(label, way)
        # The worst listing: a version the journal does not name kept for every shot (each take's image copied in),
        # so every line of the journal is parsed.
        for job in plan.jobs[1:]:
            for rel in (job.image_relpath, job.sidecar_relpath):
                copies.append(out / superseded.SUPERSEDED / job.shot_id / f"{job.stem}.unkeyed{Path(rel).suffix}")
                copies[-1].parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(out / rel, copies[-1])
        _three_runs(f"restore --list, a version of each of the {len(plan.jobs)} shots", lambda: list_superseded(out))
    finally:
        for copy in copies:
            copy.unlink()
            with contextlib.suppress(OSError):
                copy.parent.rmdir()  # a shot folder the copies made (the first shot's keeps its version)
    _three_runs("render's listing, no job kept twice", lambda: kept_versions_by_take(out))


def _three_runs(label: str, way: Any) -> None:
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        found = way()
        runs.append(time.perf_counter() - start)
    listed = sum(map(len, found.values())) if isinstance(found, dict) else len(found)
    print(f"{label}: {listed} versions listed; {', '.join(f'{r:.3f}' for r in runs)} s; "
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
                                                   "reuse-scan", "kept-order"])
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
    elif args.step == "kept-order":
        kept_order(args.folder)
    else:
        unsigned_note(args.folder)


if __name__ == "__main__":
    main()
