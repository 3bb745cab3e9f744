"""Time the plate's face mask and composite against the whole-square functions they replaced (2026-12-02).

Run from the repository root: PYTHONPATH=. OMP_NUM_THREADS=1 python tools/measure_plate_window.py
The old functions are the ones tests/test_plate_mask_window.py keeps to compare bytes with; both run in one
process, alternated, five times each, on a seeded random 3840x2160 and 7680x4320 plate with the recipe plate's two
faces scaled to it (one face, then two), 128-pixel decoded faces. Prints the medians.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_plate_mask_window import old_composite, old_face_mask

from idcli.engine import plates as P

BOXES_8K = ((937, 2106, 1466, 1913), (5134, 2215, 1559, 1802))


def _steps(plate: np.ndarray, boxes: list[P.Box], rng: np.random.Generator) -> dict[str, Callable[[], object]]:
    size = (plate.shape[1], plate.shape[0])
    crops = [P.crop_box(b, size) for b in boxes]
    masks = [P.face_mask(b, c, size) for b, c in zip(boxes, crops, strict=True)]
    faces = [(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8), m, c) for m, c in zip(masks, crops, strict=True)]
    return {
        "mask, before": lambda: [old_face_mask(b, c, size) for b, c in zip(boxes, crops, strict=True)],
        "mask, after": lambda: [P.face_mask(b, c, size) for b, c in zip(boxes, crops, strict=True)],
        "composite, before": lambda: old_composite(plate, faces),
        "composite, after": lambda: P.composite(plate, faces),
    }


def main() -> None:
    rng = np.random.default_rng(0)
    for width, height in ((3840, 2160), (7680, 4320)):
        scale = width / 7680
        boxes: list[P.Box] = [(round(x * scale), round(y * scale), round(w * scale), round(h * scale))
                              for x, y, w, h in BOXES_8K]
        plate = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        for count in (1, 2):
            steps = _steps(plate, boxes[:count], rng)
            times: dict[str, list[float]] = {name: [] for name in steps}
            for _ in range(5):
                for name, step in steps.items():
                    start = time.perf_counter()
                    step()
                    times[name].append(time.perf_counter() - start)
            print(f"{width}x{height}, {count} face(s): "
                  + "; ".join(f"{name} {statistics.median(t):.3f} s" for name, t in times.items()), flush=True)


if __name__ == "__main__":
    main()
