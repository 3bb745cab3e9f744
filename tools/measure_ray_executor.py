"""The Ray executor's overheads against the local executor, and how many GPUs one driver can feed.

RAY_AUTH_MODE=disabled OMP_NUM_THREADS=1 python tools/measure_ray_executor.py [--jobs 64] [--workers 2]

1. The tiny bench workload (``idcli bench --arch tiny-sd``'s shot list: one character, single line,
   256x256, 12 steps) rendered by the local executor and by ``--workers`` Ray CPU workers, in one run
   on one local cluster: wall time, the driver's cost per image (receiving a reply, and the commit
   thread's hash + image + sidecar + journal writes), the workers' time outside model forwards
   (PNG encoding, batching, the reply), and whether every image is byte-identical.
2. The driver's ceiling at real image sizes: the same path with workers whose engine makes noise
   pixels without a model (noise PNGs are the largest a real image's can be), at 512x512 (SD1.5) and
   1024x1024 (SDXL); ceiling = images / (driver receive + commit seconds).
Prints a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


class NoModelEngine:
    """Noise pixels of each request's size at once: everything of a Ray run but the model (shipped by value)."""

    adapter_record = None

    def __init__(self, model: Any, runtime: Any, adapter: Any) -> None:
        pass

    def suggest_batch_size(self, request: Any) -> int:
        return 4

    def render(self, requests: list[Any], **kwargs: Any) -> list[Any]:
        import numpy as np

        from idcli.engine.core import RenderResult

        return [RenderResult(np.random.default_rng(r.seed).random((r.height, r.width, 3), dtype=np.float32))
                for r in requests]


def _figures(report: Any, images: int) -> dict[str, float]:
    ex = report.executor
    figures = {"seconds": report.seconds, "images_per_second": images / report.seconds,
               "commit_ms": 1000 * report.commit_seconds / images}
    if ex.get("name") == "ray":
        figures.update(receive_ms=1000 * ex["receive_seconds"] / images,
                       worker_outside_ms=1000 * (ex["worker_seconds"] - ex["forward_seconds"]) / images,
                       encode_ms=1000 * ex["encode_seconds"] / images,
                       forward_ms=1000 * ex["forward_seconds"] / images)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    sys.path.insert(0, str(ROOT))
    import ray

    import idcli
    from idcli.bench.workload import make_workload, write_shotlist
    from idcli.executors.ray import RayBackend

    with tempfile.TemporaryDirectory(prefix="idcli-ray-measure-") as tmp:
        folder = Path(tmp)
        os.environ.setdefault("IDCLI_HOME", str(folder / "home"))
        started = time.perf_counter()
        ray.init(address="local", num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
        init_s = time.perf_counter() - started
        workload = make_workload("tiny-sd", args.jobs)
        loaded = idcli.load_shotlist(write_shotlist(workload, folder))
        idcli.plan_shotlist(loaded, device="cpu")  # identities encoded and cached before timing
        rows = []
        local = idcli.render(loaded, folder / "local", device="cpu", batch_size=4)
        remote = idcli.render(loaded, folder / "ray", device="cpu", batch_size=4,
                              executor=RayBackend(workers=args.workers))
        same = sum((folder / "local" / rel).read_bytes() == (folder / "ray" / rel).read_bytes()
                   for rel in (Path(o.image).relative_to(folder / "local") for o in local.jobs))
        rows.append(("local, tiny-sd 256x256", _figures(local, args.jobs)))
        rows.append((f"ray {args.workers} CPU workers, tiny-sd 256x256", _figures(remote, args.jobs)))
        print(rows, f"identical {same}", file=sys.stderr, flush=True)
        for side in (512, 1024):
            sized = make_workload("tiny-sd", args.jobs, steps=1, size=(side, side))
            shots = write_shotlist(sized, folder, name=f"noise{side}.yaml")
            report = idcli.render(idcli.load_shotlist(shots), folder / f"noise{side}", device="cpu", batch_size=4,
                                  executor=RayBackend(workers=args.workers, engine_factory=NoModelEngine))
            png = (folder / f"noise{side}" / Path(report.jobs[0].image).relative_to(folder / f"noise{side}"))
            figures = _figures(report, args.jobs)
            figures["png_kb"] = png.stat().st_size / 1024
            rows.append((f"ray {args.workers} no-model workers, {side}x{side} noise", figures))
        ray.shutdown()

    import torch

    print(f"date {time.strftime('%Y-%m-%d')}, {platform.node()}, {os.cpu_count()} CPUs, python "
          f"{platform.python_version()}, torch {torch.__version__}, ray {ray.__version__}; "
          f"ray.init {init_s:.1f} s; byte-identical images: {same}/{args.jobs}")
    print("| run | wall s | images/s | driver receive ms/img | driver commit ms/img | worker outside "
          "forwards ms/img (PNG encode) | driver ceiling img/s |")
    print("|---|---|---|---|---|---|---|")
    for name, f in rows:
        driver = f.get("receive_ms", 0.0) + f["commit_ms"]
        ceiling = f"{1000 / driver:.0f}" if "receive_ms" in f else "–"
        outside = f"{f['worker_outside_ms']:.1f} ({f['encode_ms']:.1f})" if "receive_ms" in f else "–"
        receive = f"{f['receive_ms']:.2f}" if "receive_ms" in f else "–"
        size = f" ({f['png_kb']:.0f} kB PNG)" if "png_kb" in f else ""
        print(f"| {name}{size} | {f['seconds']:.1f} | {f['images_per_second']:.2f} | {receive} | "
              f"{f['commit_ms']:.2f} | {outside} | {ceiling} |")


if __name__ == "__main__":
    main()
