"""Cost of dual-line against single line on the same jobs (docs/performance.md).

Renders the same jobs through one engine with ``method: single`` and ``method: dual-line`` and reports
UNet rows (a hardware-independent cost: rows x evaluations) and wall-time medians over repeats. With
``--characters N`` (N > 1) it also renders dual-line jobs naming 2 ... N characters in the same run
(``dual-line-2``, ...), and checks the counted rows against the formula ``rows_per_image``
(engine/rows.py): ``E * 2 + k * (end - start)`` per job with guidance, k identity lines, window [start, end).
Each run's peak memory is reported too: on a GPU torch's peak allocation, on a CPU the rise of the
process's resident high-water mark over its resident size before the render (Linux: the mark is reset
through ``/proc/self/clear_refs`` before each render; elsewhere ``null``).

    python tools/measure_dual_line.py [--preset tiny-sd] [--jobs 8] [--steps 20] [--size 256x256] [--repeats 3]
                                      [--characters 6]
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
# name: (selfie, description). The recipe holds three people's selfies; the last three characters reuse them
# under other descriptions (the cost does not depend on whose face a line carries; plan warns of the shared faces).
CAST = {
    "mara": ("mara", "a red-haired woman in a grey raincoat"),
    "theo": ("theo", "a young man with short black hair"),
    "ines": ("ines", "a blonde girl in a yellow jumper"),
    "ravi": ("theo", "a tall man in a brown suit"),
    "nadia": ("mara", "an old woman with a silver bun"),
    "ann": ("ines", "a boy in a striped shirt"),
}
SHOT_IDS = ("street", "two", "three", "four", "five", "six")


def shot_list(args: argparse.Namespace) -> str:
    """The measured shot list: shot k (1-based) names the first k characters of ``CAST``."""
    characters = "".join(
        f"  {name}: {{selfies: [\"{ROOT}/recipes/selfies/{face}_1.jpg\", \"{ROOT}/recipes/selfies/{face}_2.jpg\"],"
        f" description: {description}}}\n" for name, (face, description) in CAST.items())
    names = list(CAST)
    shots = "".join(
        f"  - {{id: {shot}, prompt: \"{', '.join('{' + n + '}' for n in names[:k])} walk along a wet neon street at "
        f"night, rain\", framing: medium}}\n" for k, shot in enumerate(SHOT_IDS, start=1))
    return f"""\
version: 1
project: dual-cost
model: {{preset: {args.preset}}}
defaults: {{size: {args.size}, steps: {args.steps}, guidance: 5.0, sampler: dpmpp-2m, takes: {args.jobs}}}
characters:
{characters}shots:
{shots}"""


def peak_memory_reset(device: str) -> int | None:
    """Start a peak-memory measurement; returns the baseline (bytes) it is measured from."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        return 0
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident size
    except OSError:
        return None
    return _proc_status_bytes("VmRSS")


def peak_memory_since(device: str, baseline: int | None) -> int | None:
    """Peak memory (bytes) above ``baseline`` since ``peak_memory_reset``; None where it cannot be read."""
    import torch

    if device.startswith("cuda"):
        return int(torch.cuda.max_memory_allocated())
    if baseline is None:
        return None
    peak = _proc_status_bytes("VmHWM")
    return None if peak is None else max(0, peak - baseline)


def _proc_status_bytes(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="tiny-sd")
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", default="256x256")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--characters", type=int, default=1, choices=range(1, len(CAST) + 1),
                        help=f"also measure dual-line jobs naming 2 .. N characters (at most {len(CAST)})")
    args = parser.parse_args()

    import torch

    import idcli
    from idcli.engine import Engine

    # The shot list only lives while it is planned (the selfies are read then); removed afterwards.
    with tempfile.TemporaryDirectory(prefix="idcli-dual-") as tmp:
        folder = Path(tmp)
        (folder / "shots.yaml").write_text(shot_list(args))
        plan, runtime = idcli.plan_shotlist(idcli.load_shotlist(folder / "shots.yaml"), device=args.device)
    engine = Engine(plan.model, runtime, plan.adapter)
    rows = {"count": 0}
    forward = engine.pipe.unet.forward

    def counting(sample, *a, **k):  # type: ignore[no-untyped-def]
        rows["count"] += sample.shape[0]
        return forward(sample, *a, **k)

    engine.pipe.unet.forward = counting
    from idcli.engine.rows import rows_per_image

    by_shot = {shot: [j.request for j in plan.jobs if j.shot_id == shot] for shot in SHOT_IDS}
    dual = by_shot["street"]
    single = [dataclasses.replace(r, method="single", semantic_prompt=None, subject_spans=()) for r in dual]
    runs = [("single", single), ("dual-line", dual)]
    runs += [(f"dual-line-{k}", by_shot[shot]) for k, shot in enumerate(SHOT_IDS, start=1)
             if 2 <= k <= args.characters]
    results: dict[str, dict[str, float]] = {}
    for _name, requests in runs:
        engine.render(requests)  # warm-up
    # Rounds interleave the methods, so that load from other work on a shared machine falls on all alike.
    times: dict[str, list[float]] = {name: [] for name, _requests in runs}
    counted: dict[str, int] = {name: 0 for name, _requests in runs}
    peaks: dict[str, list[int]] = {name: [] for name, _requests in runs}
    for _ in range(args.repeats):
        for name, requests in runs:
            rows["count"] = 0
            if runtime.device.startswith("cuda"):
                torch.cuda.synchronize()
            baseline = peak_memory_reset(runtime.device)
            t0 = time.perf_counter()
            engine.render(requests)
            if runtime.device.startswith("cuda"):
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - t0)
            peak = peak_memory_since(runtime.device, baseline)
            if peak is not None:
                peaks[name].append(peak)
            counted[name] += rows["count"]
    for name, requests in runs:
        evaluations = requests[0].steps  # every sampler here runs one evaluation per step
        formula = sum(rows_per_image(r, evaluations) for r in requests)
        results[name] = {"median_s": statistics.median(times[name]), "unet_rows": counted[name] / args.repeats,
                         "formula_rows": formula, "identity_lines": len(requests[0].identity_lines())
                         if requests[0].method == "dual-line" else 0,
                         "time_ratio": 0.0, "row_ratio": 0.0,
                         "peak_memory_mib": round(statistics.median(peaks[name]) / 2**20, 1) if peaks[name] else None}
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
