"""Cost of dual-line against single line on the same jobs (docs/performance.md).

Renders the same jobs through one engine with ``method: single`` and ``method: dual-line`` and reports
UNet rows (a hardware-independent cost: rows x evaluations) and wall-time medians over repeats.

    python tools/measure_dual_line.py [--preset tiny-sd] [--jobs 8] [--steps 20] [--size 256x256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="tiny-sd")
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", default="256x256")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    import torch

    import idcli
    from idcli.engine import Engine

    # The shot list only lives while it is planned (the selfies are read then); removed afterwards.
    with tempfile.TemporaryDirectory(prefix="idcli-dual-") as tmp:
        folder = Path(tmp)
        (folder / "shots.yaml").write_text(f"""\
version: 1
project: dual-cost
model: {{preset: {args.preset}}}
defaults: {{size: {args.size}, steps: {args.steps}, guidance: 5.0, sampler: dpmpp-2m, takes: {args.jobs}}}
characters:
  mara: {{selfies: ["{ROOT}/recipes/selfies/mara_1.jpg", "{ROOT}/recipes/selfies/mara_2.jpg"],
          description: a red-haired woman in a grey raincoat}}
shots:
  - {{id: street, prompt: "{{mara}} walks along a wet neon street at night, rain", framing: medium}}
""")
        plan, runtime = idcli.plan_shotlist(idcli.load_shotlist(folder / "shots.yaml"), device=args.device)
    engine = Engine(plan.model, runtime, plan.adapter)
    rows = {"count": 0}
    forward = engine.pipe.unet.forward

    def counting(sample, *a, **k):  # type: ignore[no-untyped-def]
        rows["count"] += sample.shape[0]
        return forward(sample, *a, **k)

    engine.pipe.unet.forward = counting
    dual = [j.request for j in plan.jobs]
    single = [dataclasses.replace(r, method="single", semantic_prompt=None, subject_spans=()) for r in dual]
    results: dict[str, dict[str, float]] = {}
    for name, requests in (("single", single), ("dual-line", dual)):
        engine.render(requests)  # warm-up
        rows["count"] = 0
        times = []
        for _ in range(args.repeats):
            if runtime.device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            engine.render(requests)
            if runtime.device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        results[name] = {"median_s": statistics.median(times), "unet_rows": rows["count"] / args.repeats}
    report = {
        "date": time.strftime("%Y-%m-%d"), "machine": platform.processor() or platform.machine(),
        "device": runtime.device, "dtype": runtime.dtype, "torch": torch.__version__,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "jobs": args.jobs, "steps": args.steps,
        "size": args.size, "preset": args.preset, "results": results,
        "time_ratio": results["dual-line"]["median_s"] / results["single"]["median_s"],
        "unet_row_ratio": results["dual-line"]["unet_rows"] / results["single"]["unet_rows"],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
