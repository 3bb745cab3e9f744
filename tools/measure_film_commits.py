"""Does committing image N of a film cost more than image 1? Times every commit of a whole-film render.

python tools/measure_film_commits.py SHOTLIST OUT [--qa]

Renders SHOTLIST (e.g. one written by tools/make_film_shotlist.py) into OUT (emptied first) through
idcli.render's real commit path (PNG encoding, sidecar, atomic writes, journal; identity QA with --qa) with
an engine that returns seeded noise instead of running a model, and prints the median time of
OutputStore.commit per tenth of the run (docs/performance.md, "At film scale").
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path

import numpy as np

import idcli
from idcli import store as store_module


class NoiseEngine:
    """Seeded noise at each request's size: the commit path sees images like a random-weight model's."""

    adapter_record = None

    def render(self, requests, **kwargs):
        from idcli.engine.core import RenderResult

        return [RenderResult(np.random.default_rng(r.seed).random((r.height, r.width, 3), dtype=np.float32))
                for r in requests]

    def suggest_batch_size(self, request) -> int:
        return 16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shotlist", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--qa", action="store_true", help="run identity QA on the commit thread, as render does")
    args = parser.parse_args()
    times: list[float] = []
    commit = store_module.OutputStore.commit

    def timed(self, job, png, sidecar, **kwargs):  # kwargs: what render passes besides (the --save-masks mask)
        start = time.perf_counter()
        try:
            return commit(self, job, png, sidecar, **kwargs)
        finally:
            times.append(time.perf_counter() - start)

    store_module.OutputStore.commit = timed
    shutil.rmtree(args.out, ignore_errors=True)
    start = time.perf_counter()
    report = idcli.render(args.shotlist, args.out, device="cpu", engine_factory=lambda *a: NoiseEngine(),
                          qa=args.qa)
    print(f"rendered {report.rendered} in {time.perf_counter() - start:.1f} s; commit thread busy "
          f"{report.commit_seconds:.1f} s")
    tenth = max(1, len(times) // 10)
    for i in range(0, len(times), tenth):
        chunk = times[i:i + tenth]
        print(f"commits {i + 1}-{i + len(chunk)}: median {statistics.median(chunk) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
