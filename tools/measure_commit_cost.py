"""What the commit path (idcli/commit_path.py) does per image besides rendering, step by step, for the tiny
bench's workload.

python tools/measure_commit_cost.py [--jobs 64]

Plans the shot list `idcli bench --arch tiny-sd` renders, then runs the commit steps of commit_path.py
(record, PNG encoding, hash, sidecar, atomic writes) on 256x256 noise images (random-weight models
render noise, so the PNG sizes match), timing each step. Writes into a temporary folder.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from idcli.bench.workload import make_workload, write_shotlist
from idcli.engine.core import RenderResult
from idcli.planning import plan_shotlist
from idcli.provenance import complete_sidecar, encode_png, now, reproducible_record
from idcli.shotlist import load_shotlist
from idcli.store import OutputStore, image_sha256


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=64)
    args = parser.parse_args()
    workload = make_workload("tiny-sd", args.jobs)
    with tempfile.TemporaryDirectory(prefix="idcli-commit-cost-") as tmp:
        folder = Path(tmp)
        shots = write_shotlist(workload, folder)
        start = time.perf_counter()
        loaded = load_shotlist(shots)
        load_s = time.perf_counter() - start
        plan_shotlist(loaded, preset=workload.preset, device="cpu", face_models="synthetic")  # identity cache
        start = time.perf_counter()
        plan, _ = plan_shotlist(loaded, preset=workload.preset, device="cpu", face_models="synthetic")
        plan_s = time.perf_counter() - start
        store = OutputStore(folder / "out")
        rng = np.random.default_rng(0)
        cost: dict[str, float] = defaultdict(float)
        adapter = {"source": "builtin", "weight_sha256": "0" * 64}
        with store.session():
            start = time.perf_counter()
            for job in plan.jobs:
                store.state(job)
            scan_s = time.perf_counter() - start
            for job in plan.jobs:
                result = RenderResult(rng.random((workload.height, workload.width, 3), dtype=np.float32))
                marks = [time.perf_counter()]
                pixels = result.pixels
                marks.append(time.perf_counter())
                record = reproducible_record(job, plan.model, "cpu", adapter)
                marks.append(time.perf_counter())
                png = encode_png(pixels, job, plan.model, record)
                marks.append(time.perf_counter())
                digest = image_sha256(png)
                sidecar = complete_sidecar(record, digest, batch_index=0, batch_size=4, started=now(), finished=now())
                marks.append(time.perf_counter())
                store.commit(job, png, sidecar)
                marks.append(time.perf_counter())
                names = ("float -> uint8", "reproducible record", "PNG encoding (zlib level 6)",
                         "sha256 + sidecar", "store.commit (image, sidecar: temp file, fsync, rename)")
                for name, a, b in zip(names, marks, marks[1:], strict=False):
                    cost[name] += b - a
    print(f"{args.jobs} jobs: load_shotlist {load_s * 1e3:.1f} ms, plan_shotlist (identities cached) "
          f"{plan_s * 1e3:.1f} ms, output-folder scan {scan_s * 1e3:.1f} ms")
    for name, seconds in cost.items():
        print(f"  {name:58s} {seconds:7.3f} s  {seconds / args.jobs * 1e3:6.2f} ms/image")
    print(f"  commit work in all {sum(cost.values()):.3f} s (on the commit thread during a render); "
          f"last PNG {len(png)} bytes")


if __name__ == "__main__":
    main()
