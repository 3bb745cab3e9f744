"""Time the quickstart render end to end on this machine (fresh output folder each run).

python tools/measure_quickstart.py [--runs 3] [--batch-size auto]
Prints the median wall time of the render call (model build included) and images/s.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import idcli


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-size", default="auto")
    parser.add_argument("--shotlist", default="recipes/quickstart.yaml")
    args = parser.parse_args()
    size = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
    shots = idcli.load_shotlist(args.shotlist)
    times, count = [], 0
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            report = idcli.render(shots, Path(out), device="cpu", batch_size=size)
            times.append(time.perf_counter() - t0)
            count = report.rendered
    import torch

    median = statistics.median(times)
    print(f"{args.shotlist}: {count} images, batch {args.batch_size}, median {median:.2f}s over {args.runs} runs "
          f"({count / median:.2f} images/s); runs {[round(t, 2) for t in times]}")
    print(f"python {platform.python_version()}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{platform.processor() or platform.machine()}")


if __name__ == "__main__":
    main()
