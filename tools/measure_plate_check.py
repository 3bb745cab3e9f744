"""Time what plates cost at plan time: reading a plate, detecting its faces, and a cached detection.

Run from the repository root: PYTHONPATH=. OMP_NUM_THREADS=1 python tools/measure_plate_check.py
Uses the synthetic face pack and a throw-away IDCLI_HOME; the 4K plate is the recipe plate upscaled.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

os.environ["IDCLI_HOME"] = tempfile.mkdtemp()

from PIL import Image

from idcli.identity.faces import FaceAnalyzer, resolve_face_models
from idcli.plate_files import read_plate
from idcli.plates import detect_plate_faces

RECIPE = Path("recipes/plates/two_people.png")


def main() -> None:
    models = resolve_face_models("synthetic")
    start = time.perf_counter()
    analyzer = FaceAnalyzer(models)
    print(f"face models loaded in {time.perf_counter() - start:.2f} s")
    big = Path(tempfile.mkdtemp()) / "plate_4k.png"
    Image.open(RECIPE).resize((3840, 2122), Image.Resampling.LANCZOS).save(big)
    for path in (RECIPE, big):
        start = time.perf_counter()
        plate = read_plate(path)
        read = time.perf_counter() - start
        start = time.perf_counter()
        boxes = detect_plate_faces(plate, lambda: analyzer, models.hash)
        detect = time.perf_counter() - start
        start = time.perf_counter()
        detect_plate_faces(plate, lambda: analyzer, models.hash)
        cached = time.perf_counter() - start
        print(f"{path.name} {plate.size[0]}x{plate.size[1]}: read {read:.3f} s, detect {detect:.3f} s "
              f"({len(boxes)} faces), cached {cached * 1000:.1f} ms")


if __name__ == "__main__":
    main()
