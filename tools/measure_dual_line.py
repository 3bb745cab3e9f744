"""Cost of dual-line against single line on the same jobs (docs/performance.md).

Renders the same jobs through one engine with ``method: single`` and ``method: dual-line`` and reports
UNet rows (a hardware-independent cost: rows x evaluations) and wall-time medians over repeats. With
``--characters N`` (N > 1) it also renders dual-line jobs naming 2 ... N characters in the same run
(``dual-line-2``, ...), and checks the counted rows against the formula ``rows_per_image``
(engine/rows.py): ``E * 2 + k * (end - start)`` per job with guidance, k identity lines, window [start, end).

    python tools/measure_dual_line.py [--preset tiny-sd] [--jobs 8] [--steps 20] [--size 256x256] [--repeats 3]
                                      [--characters 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
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
    parser.add_argument("--characters", type=int, default=1, choices=range(1, 4),
                        help="also measure dual-line jobs naming 2 .. N characters (at most 3)")
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
  theo: {{selfies: ["{ROOT}/recipes/selfies/theo_1.jpg", "{ROOT}/recipes/selfies/theo_2.jpg"],
          description: a young man with short black hair}}
  ines: {{selfies: ["{ROOT}/recipes/selfies/ines_1.jpg", "{ROOT}/recipes/selfies/ines_2.jpg"],
          description: a blonde girl in a yellow jumper}}
shots:
  - {{id: street, prompt: "{{mara}} walks along a wet neon street at night, rain", framing: medium}}
  - {{id: two, prompt: "{{mara}} and {{theo}} walk along a wet neon street at night, rain", framing: medium}}
  - {{id: three, prompt: "{{mara}}, {{theo}} and {{ines}} walk along a wet neon street at night, rain",
     framing: medium}}
""")
        plan, runtime = idcli.plan_shotlist(idcli.load_shotlist(folder / "shots.yaml"), device=args.device)
    engine = Engine(plan.model, runtime, plan.adapter)
    rows = {"count": 0}
    forward = engine.pipe.unet.forward

    def counting(sample, *a, **k):  # type: ignore[no-untyped-def]
        rows["count"] += sample.shape[0]
        return forward(sample, *a, **k)

    engine.pipe.unet.forward = counting
    from idcli.engine.rows import rows_per_image

    by_shot = {shot: [j.request for j in plan.jobs if j.shot_id == shot] for shot in ("street", "two", "three")}
    dual = by_shot["street"]
    single = [dataclasses.replace(r, method="single", semantic_prompt=None, subject_spans=()) for r in dual]
    runs = [("single", single), ("dual-line", dual)]
    runs += [(f"dual-line-{k}", by_shot[shot]) for k, shot in ((2, "two"), (3, "three")) if k <= args.characters]
    results: dict[str, dict[str, float]] = {}
    for _name, requests in runs:
        engine.render(requests)  # warm-up
    # Rounds interleave the methods, so that load from other work on a shared machine falls on all alike.
    times: dict[str, list[float]] = {name: [] for name, _requests in runs}
    counted: dict[str, int] = {name: 0 for name, _requests in runs}
    for _ in range(args.repeats):
        for name, requests in runs:
            rows["count"] = 0
            if runtime.device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            engine.render(requests)
            if runtime.device.startswith("cuda"):
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - t0)
            counted[name] += rows["count"]
    for name, requests in runs:
        evaluations = requests[0].steps  # every sampler here runs one evaluation per step
        formula = sum(rows_per_image(r, evaluations) for r in requests)
        results[name] = {"median_s": statistics.median(times[name]), "unet_rows": counted[name] / args.repeats,
                         "formula_rows": formula, "identity_lines": len(requests[0].identity_lines())
                         if requests[0].method == "dual-line" else 0,
                         "time_ratio": 0.0, "row_ratio": 0.0}
    report = {
        "date": time.strftime("%Y-%m-%d"), "machine": platform.processor() or platform.machine(),
        "device": runtime.device, "dtype": runtime.dtype, "torch": torch.__version__,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "jobs": args.jobs, "steps": args.steps,
        "size": args.size, "preset": args.preset, "load_average": [round(x, 2) for x in os.getloadavg()],
        "results": results,
        "time_ratio": results["dual-line"]["median_s"] / results["single"]["median_s"],
        "unet_row_ratio": results["dual-line"]["unet_rows"] / results["single"]["unet_rows"],
    }
    for result in results.values():
        result["time_ratio"] = round(result["median_s"] / results["single"]["median_s"], 3)
        result["row_ratio"] = round(result["unet_rows"] / results["single"]["unet_rows"], 3)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
