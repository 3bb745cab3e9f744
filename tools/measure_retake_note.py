"""What the morning note's retake check costs ``idcli verify`` on a film-sized folder (docs/performance.md, "The
retake note at film scale").

python tools/measure_retake_note.py make DIR [--shots 2000] [--takes 3] [--size 128]
    writes DIR/film.yaml and renders it into DIR/out through idcli.render's real commit path with seeded noise
    (tools/measure_film_commits.py's engine), then makes the folder a ``--retake-flagged`` render stopped between two
    rounds with every take flagged by QA (each sidecar given a QA verdict with a flag, the run-start line's request
    ``retake_flagged``): the worst case, every take's sidecar and image judged.
python tools/measure_retake_note.py time DIR [--runs 5]
    checks every image as verify does (verify.check_image, keeping each image's sha256), then times the note
    (unfinished.unfinished_takes) without those hashes and with them, in turn, RUNS times; prints each and medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from measure_film_commits import NoiseEngine  # the same seeded noise (this folder is on sys.path)

import idcli


def make(folder: Path, shots: int, takes: int, size: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["version: 1", "project: film", "model: {preset: tiny-sd}",
             f"defaults: {{size: {size}x{size}, steps: 1, guidance: 1.0, takes: {takes}}}", "shots:"]
    lines += [f'  - {{id: sc{i // 20 + 1:03d}_sh{i % 20 * 10 + 10:04d}, prompt: "a lighthouse at dusk, shot {i}"}}'
              for i in range(shots)]
    (folder / "film.yaml").write_text("\n".join(lines) + "\n", "utf-8")
    out = folder / "out"
    start = time.perf_counter()
    report = idcli.render(folder / "film.yaml", out, device="cpu", engine_factory=lambda *a, **k: NoiseEngine(),
                          qa=False)
    print(f"rendered {report.rendered} (failed {report.failed}) in {time.perf_counter() - start:.0f} s")
    for sidecar in sorted(out.glob("[!.]*/*.json")):
        record = json.loads(sidecar.read_text("utf-8"))
        record["qa"] = {"flags": ["no_face"], "faces": []}
        sidecar.write_text(json.dumps(record, indent=2) + "\n", "utf-8")
    journal = out / ".idcli" / "journal.jsonl"
    entries = [json.loads(line) for line in journal.read_text("utf-8").splitlines()]
    for entry in entries:
        if entry.get("event") == "run-start":
            entry["request"] = {**entry.get("request", {}), "retake_flagged": True, "max_takes": 6}
    journal.write_text("".join(json.dumps(entry) + "\n" for entry in entries), "utf-8")
    print(f"verify: time python -m idcli verify {out}")


def time_note(folder: Path, runs: int) -> None:
    from idcli.unfinished import unfinished_takes
    from idcli.verify import check_image

    out = folder / "out"
    hashed: dict[str, str] = {}
    start = time.perf_counter()
    for sidecar in sorted(out.glob("*/*.json")):
        check_image(out, sidecar, None, hashed)
    print(f"checking {len(hashed)} images as verify does: {time.perf_counter() - start:.2f} s")
    timed: dict[str, list[float]] = {"without verify's hashes": [], "with verify's hashes": []}
    for _ in range(runs):
        for label, given in (("without verify's hashes", None), ("with verify's hashes", hashed)):
            start = time.perf_counter()
            left = unfinished_takes(out, given)
            timed[label].append(time.perf_counter() - start)
            print(f"{label}: {len(left.retake_shots) if left else 0} shots to retake, {timed[label][-1]:.3f} s")
    for label, values in timed.items():
        print(f"{label}: median {statistics.median(values):.3f} s ({', '.join(f'{v:.3f}' for v in values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    steps = parser.add_subparsers(dest="step", required=True)
    made = steps.add_parser("make")
    made.add_argument("folder", type=Path)
    made.add_argument("--shots", type=int, default=2000)
    made.add_argument("--takes", type=int, default=3)
    made.add_argument("--size", type=int, default=128)
    timing = steps.add_parser("time")
    timing.add_argument("folder", type=Path)
    timing.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if args.step == "make":
        make(args.folder, args.shots, args.takes, args.size)
    else:
        time_note(args.folder, args.runs)


if __name__ == "__main__":
    main()
