"""Time the plate composite against the one it replaced, which resized the decoded face to its whole crop square.

Run from the repository root: PYTHONPATH=. OMP_NUM_THREADS=1 python tools/measure_plate_composite.py [--repeats 7]
The old function is the one tests/test_plate_composite_window.py keeps to compare bytes with; both run in one
process, alternated, on a seeded random 3840x2160 and 7680x4320 plate with the recipe plate's two faces scaled to it
(one face, then two), decoded faces of 128, 512 and 1024 pixels (tiny-sd's test size, sd15's, sdxl's). Prints the
medians, and checks that each pair of results is the same bytes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_plate_composite_window import reference_composite

from idcli.engine import plates as P

BOXES_8K = ((937, 2106, 1466, 1913), (5134, 2215, 1559, 1802))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print("| plate | faces | decoded face | before | after |")
    print("|---|---|---|---|---|")
    for width, height in ((3840, 2160), (7680, 4320)):
        scale = width / 7680
        boxes: list[P.Box] = [(round(x * scale), round(y * scale), round(w * scale), round(h * scale))
                              for x, y, w, h in BOXES_8K]
        size = (width, height)
        plate = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        for count in (1, 2):
            crops = [P.crop_box(b, size) for b in boxes[:count]]
            masks = [P.face_mask(b, c, size) for b, c in zip(boxes, crops, strict=False)]
            for working in (128, 512, 1024):
                faces = [(rng.integers(0, 256, (working, working, 3), dtype=np.uint8), m, c)
                         for m, c in zip(masks, crops, strict=True)]
                if P.composite(plate, faces).tobytes() != reference_composite(plate, faces).tobytes():
                    raise SystemExit(f"{width}x{height}, {count} face(s), {working}: the bytes differ")
                times: dict[str, list[float]] = {"before": [], "after": []}
                for _ in range(args.repeats):
                    for name, step in (("before", reference_composite), ("after", P.composite)):
                        start = time.perf_counter()
                        step(plate, faces)
                        times[name].append(time.perf_counter() - start)
                print(f"| {width}x{height} | {count} | {working} | {statistics.median(times['before']):.3f} s | "
                      f"{statistics.median(times['after']):.3f} s |", flush=True)


if __name__ == "__main__":
    main()
