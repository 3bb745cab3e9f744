"""What identity QA costs: per image on the commit thread, and whether it slows a render.

python tools/measure_qa_cost.py [--jobs 16] [--runs 3] [--face-models synthetic|DIR]

Part 1 renders one tiny-preset shot list (every shot has a character, so every image is checked) into
fresh folders, alternating QA off and on, with one engine built once, and reports the median wall time,
images/s, the commit thread's busy time and the QA seconds recorded in the sidecars. Random weights
render noise, so the detector finds no face there: this part is detection cost only.

Part 2 times ``IdentityQA.check`` on images that hold faces (the recipe selfies pasted into canvases of
several sizes, two characters in the cast), where recognition and matching run too.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import idcli


def shotlist(jobs: int) -> str:
    shots = []
    for i in range(jobs // 2):
        who = "{mara}" if i % 2 == 0 else "{theo}"
        shots.append(f'  - {{id: s{i:03d}, prompt: "{who} on a wet street at night", takes: 2}}')
    root = Path(__file__).resolve().parents[1] / "recipes" / "selfies"
    return "\n".join([
        "version: 1", "project: qa-cost", "model: {preset: tiny-sd}",
        "defaults: {size: 256x256, steps: 8, guidance: 5.0, sampler: dpmpp-2m}",
        "characters:",
        f"  mara: {{selfies: [{root}/mara_1.jpg, {root}/mara_2.jpg], description: a red-haired woman}}",
        f"  theo: {{selfies: [{root}/theo_1.jpg, {root}/theo_2.jpg], description: a young man}}",
        "shots:", *shots, ""])


def part_render(jobs: int, runs: int, face_models: str) -> None:
    import json

    engines: dict[str, object] = {}

    def factory(identity, runtime, adapter=None):
        if "engine" not in engines:
            from idcli.engine import Engine

            engines["engine"] = Engine(identity, runtime, adapter)
        return engines["engine"]

    with tempfile.TemporaryDirectory(prefix="idcli-qa-cost-") as tmp:
        folder = Path(tmp)
        (folder / "shots.yaml").write_text(shotlist(jobs), "utf-8")
        loaded = idcli.load_shotlist(folder / "shots.yaml")
        # warm-up: builds the engine, encodes the identities, loads the face models
        idcli.render(loaded, folder / "warm", device="cpu", face_models=face_models, engine_factory=factory)
        figures: dict[bool, list[tuple[float, float, float]]] = {False: [], True: []}
        for run in range(runs):
            for qa in (False, True) if run % 2 == 0 else (True, False):
                out = folder / f"run{run}-{'on' if qa else 'off'}"
                report = idcli.render(loaded, out, device="cpu", face_models=face_models, engine_factory=factory,
                                      qa=qa)
                assert report.rendered == jobs and report.failed == 0
                qa_seconds = [json.loads(p.read_text())["qa"]["seconds"] for p in out.glob("*/*.json")] if qa else [0]
                figures[qa].append((report.seconds, report.commit_seconds / jobs, statistics.median(qa_seconds)))
        for qa in (False, True):
            wall = statistics.median(f[0] for f in figures[qa])
            commit = statistics.median(f[1] for f in figures[qa])
            check = statistics.median(f[2] for f in figures[qa])
            print(f"QA {'on ' if qa else 'off'}: median wall {wall:.2f} s for {jobs} images "
                  f"({jobs / wall:.2f} images/s), commit thread {commit * 1000:.1f} ms/image, "
                  f"QA {check * 1000:.1f} ms/image (median of {runs} runs: {[round(f[0], 2) for f in figures[qa]]})")


def part_faces(face_models: str, repeats: int) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from review_helpers import face_canvas

    from idcli.identity.faces import resolve_face_models
    from idcli.review.qa import CastMember, IdentityQA

    qa = IdentityQA(resolve_face_models(face_models))
    cast = [CastMember(n, qa.analyzer.detect(face_canvas([f"{n}_2"], 512, 512))[0].embedding) for n in ("mara", "theo")]
    for width, height, people in [(256, 256, ["mara_1"]), (512, 256, ["mara_1", "theo_1"]),
                                  (1024, 576, ["mara_1", "theo_1"]), (1344, 768, ["mara_1", "theo_1"])]:
        image = face_canvas(people, width, height)
        noise = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
        for label, picture in (("faces", image), ("noise", noise)):
            qa.check(picture, cast)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                record = qa.check(picture, cast)
                times.append(time.perf_counter() - start)
            print(f"{width}x{height} {label}: {len(record['faces'])} faces, "
                  f"median {statistics.median(times) * 1000:.1f} ms (min {min(times) * 1000:.1f}) over {repeats}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--face-models", default="synthetic")
    args = parser.parse_args()
    part_faces(args.face_models, args.repeats)
    part_render(args.jobs, args.runs, args.face_models)


if __name__ == "__main__":
    main()
