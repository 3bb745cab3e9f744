"""Time the colour conversion a review of N tagged takes does: each take's 384-pixel thumbnail to sRGB.

Run from the repository root: PYTHONPATH=. OMP_NUM_THREADS=1 python tools/measure_review_colour.py [--takes 200]
Each take is a seeded random 384x216 RGB image carrying tests/colour_profiles.py's Display P3 profile (a plate
take of a P3 plate), converted as review's thumbnail() converts it (``image_to_srgb``); a fresh process, so the
first take builds the transform. Prints the seconds of the N conversions, per repeat and their median.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from colour_profiles import DISPLAY_P3

from idcli import display_colour


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--takes", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    thumbs = [Image.fromarray(rng.integers(0, 256, (216, 384, 3), dtype=np.uint8), "RGB") for _ in range(args.takes)]
    totals = []
    for _ in range(args.repeats):
        clear = getattr(display_colour, "clear_transform_cache", None)  # None in a tree from before the cache
        if clear is not None:
            clear()  # each repeat is a review in a fresh process: its first take builds the transform
        start = time.perf_counter()
        for thumb in thumbs:
            display_colour.image_to_srgb(thumb, DISPLAY_P3)
        totals.append(time.perf_counter() - start)
    print(f"{args.takes} takes: " + ", ".join(f"{t:.3f}" for t in totals)
          + f" s; median {statistics.median(totals):.3f} s")


if __name__ == "__main__":
    main()
