"""Seconds per plate face against seconds per text-to-image job at the same working size (docs/performance.md).

One engine renders, batch after batch, jobs of four kinds at the same working size, steps and guidance:
text-only, dual-line with one character, plates with one face and plates with two faces (the recipe
plate, recipes/plates/two_people.png, with its two faces). Each kind is one batch of ``--jobs`` images
(``--jobs`` faces for the plates); the kinds are interleaved round by round so that load from other work
on a shared machine falls on all alike; the median of ``--repeats`` rounds after a warm-up is reported per
job (per face for plates), with the UNet rows counted by wrapping its forward.

    PYTHONPATH=. OMP_NUM_THREADS=1 python tools/bench_plates.py [--preset tiny-sd] [--size 256] [--steps 12]
                                                              [--jobs 4] [--repeats 5] [--strength 0.6]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLATE = ROOT / "recipes" / "plates" / "two_people.png"
FACES = ((92, 204, 146, 186), (509, 216, 154, 174))  # the recipe plate's two faces (x, y, w, h)
SCENE = "two people before a window, film still"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="tiny-sd")
    parser.add_argument("--size", type=int, default=256, help="the working side (square)")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--jobs", type=int, default=4, help="images per batch (faces, for plates); even")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--strength", type=float, default=0.6)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()
    os.environ.setdefault("IDCLI_HOME", tempfile.mkdtemp(prefix="idcli-bench-plates-"))

    import diffusers
    import numpy as np
    import torch

    from idcli.adapters import resolve_adapter
    from idcli.engine import Engine
    from idcli.engine.plates import crop_box, start_index
    from idcli.method import FusionParams
    from idcli.models import resolve_model
    from idcli.plate_files import read_plate
    from idcli.render_request import IdentityLine, PlateFaceRequest, PlateRequest, RenderRequest
    from idcli.runtime import Runtime
    from idcli.shotlist import ModelSpec

    spec = ModelSpec(preset=args.preset)
    model = resolve_model(spec, Path("."), args.dtype)
    engine = Engine(model, Runtime(args.device, args.dtype), resolve_adapter(spec, model, Path(".")))
    rng = np.random.default_rng(0)

    def embedding() -> np.ndarray:
        v = rng.standard_normal(512).astype(np.float32)
        return v / np.linalg.norm(v)

    common = {"negative_prompt": "blurry", "width": args.size, "height": args.size, "steps": args.steps,
              "guidance": 5.0, "sampler": "dpmpp-2m"}
    lines = (IdentityLine("mara", f"{SCENE}, a red-haired woman, smiling", 0.8, (), embedding()),
             IdentityLine("theo", f"{SCENE}, a young man, frowning", 0.8, (), embedding()))
    plate = read_plate(PLATE)
    boxes = tuple(PlateFaceRequest(line.name, box, crop_box(box, plate.size)) for line, box in zip(lines, FACES,
                                                                                                   strict=True))

    def plate_request(seed: int, faces: int) -> RenderRequest:
        request = PlateRequest(plate.pixels, plate.sha256, boxes[:faces], args.strength)
        return RenderRequest(SCENE, seed=seed, identity_embedding=lines[0].embedding, identity_strength=0.8,
                             method="plate", fusion=FusionParams(), semantic_prompt=SCENE, lines=lines[:faces],
                             subject="mara", plate=request, **common)

    span = (SCENE.index("two people"), SCENE.index("two people") + len("two people"))
    kinds = {
        "text-to-image": [RenderRequest(SCENE, seed=s, **common) for s in range(args.jobs)],
        "dual-line, 1 character": [
            RenderRequest(f"{SCENE}, a red-haired woman", seed=s, identity_embedding=lines[0].embedding,
                          identity_strength=0.8, method="dual-line", fusion=FusionParams(), semantic_prompt=SCENE,
                          subject_spans=(span,), subject="mara", **common) for s in range(args.jobs)],
        "plate, 1 face": [plate_request(s, 1) for s in range(args.jobs)],
        "plate, 2 faces": [plate_request(s, 2) for s in range(args.jobs // 2)],
    }
    faces = {"text-to-image": 1, "dual-line, 1 character": 1, "plate, 1 face": 1, "plate, 2 faces": 2}
    rows = {"count": 0}
    forward = engine.pipe.unet.forward

    def counting(sample, *a, **k):
        rows["count"] += sample.shape[0]
        return forward(sample, *a, **k)

    engine.pipe.unet.forward = counting
    # The plate-only work, timed where it runs: the crops' VAE encode and the composite into the plate.
    from idcli.engine import plate_render

    spent = {"encode": 0.0, "composite": 0.0}

    def timed(name: str, function):
        def run(*a, **k):
            t0 = time.perf_counter()
            try:
                return function(*a, **k)
            finally:
                spent[name] += time.perf_counter() - t0
        return run

    engine.codec.encode = timed("encode", engine.codec.encode)  # type: ignore[method-assign]
    plate_render.composite = timed("composite", plate_render.composite)
    for requests in kinds.values():
        engine.render(requests)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in kinds}
    counted: dict[str, int] = {}
    pieces: dict[str, dict[str, float]] = {name: {"encode": 0.0, "composite": 0.0} for name in kinds}
    for _ in range(args.repeats):
        for name, requests in kinds.items():
            rows["count"] = 0
            spent.update(encode=0.0, composite=0.0)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            engine.render(requests)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - t0)
            counted[name] = rows["count"]
            for piece, seconds in spent.items():
                pieces[name][piece] += seconds / args.repeats
    text = statistics.median(times["text-to-image"]) / args.jobs
    results = {}
    for name, requests in kinds.items():
        images = len(requests) * faces[name]
        per = statistics.median(times[name]) / images
        results[name] = {"images": images, "median_batch_s": round(statistics.median(times[name]), 3),
                         "seconds_per_image": round(per, 4), "unet_rows_per_image": counted[name] / images,
                         "against_text": round(per / text, 3)}
        if name.startswith("plate"):
            results[name].update({f"{piece}_s_per_face": round(seconds / images, 4)
                                  for piece, seconds in pieces[name].items()})
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
        "device": args.device, "dtype": args.dtype, "torch": torch.__version__, "diffusers": diffusers.__version__,
        "python": platform.python_version(),
        "command": " ".join(["python", f"tools/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
        "preset": args.preset, "size": args.size, "steps": args.steps, "strength": args.strength,
        "plate_evaluations": args.steps - start_index(args.steps, args.strength), "repeats": args.repeats,
        "results": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
