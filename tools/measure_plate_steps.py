"""Time the plate-side steps of a plate render, which grow with the plate and not with the model.

Run from the repository root: PYTHONPATH=. OMP_NUM_THREADS=1 python tools/measure_plate_steps.py [--repeats 5]
The plates are the recipe plate upscaled (Lanczos) to 3840x2160 and 7680x4320, with its two faces' boxes scaled
with it; one face (the left) and two. Per step, the median of ``--repeats`` runs, ``time.perf_counter``:
read (``read_plate``), detect (synthetic face pack, a fresh cache key each run), crop (``crop_pixels``, each face),
mask (``face_mask``, each face twice: plan's overlap check and the engine), composite (``composite`` of seeded
random 128-pixel faces, then the engine's float32 image of it) and write (the PNG encode of the result as idcli encodes
a take's pixels: ``take_png``, with the zlib settings of ``idcli.provenance.PNG_ENCODING``; until 2026-12-02 this tool
timed Pillow's default encode, level 6, which takes have not been written with since that day).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("IDCLI_HOME", tempfile.mkdtemp())

import numpy as np
from PIL import Image

from idcli.engine.plates import Box, composite, crop_box, crop_pixels, face_mask
from idcli.identity.faces import FaceAnalyzer, resolve_face_models
from idcli.plate_files import Plate, read_plate
from idcli.plates import detect_plate_faces, overlapping_faces
from idcli.provenance import PNG_ENCODING, png_save_options

RECIPE = Path("recipes/plates/two_people.png")
# The recipe plate's two faces as the synthetic pack finds them on its 7680x4320 upscale.
BOXES_8K = ((937, 2106, 1466, 1913), (5134, 2215, 1559, 1802))
WORKING = 128


def take_png(pixels: np.ndarray) -> bytes:
    """The PNG of a take's pixels as ``idcli.provenance.encode_png`` deflates them (the record's ``png`` settings of a
    new take). Its text chunks and a plate's colour profile are left out: a few kilobytes, nothing beside the pixels
    (docs/performance.md, "A take's PNG encode")."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", **png_save_options(PNG_ENCODING))
    return buffer.getvalue()


def _median(repeats: int, step: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _row(path: Path, plate: Plate, faces: list[tuple[Box, Box]], analyzer: Callable[[], object], models_hash: str,
         repeats: int) -> dict[str, float]:
    """The median seconds of each step for one plate and its faces."""
    rng = np.random.default_rng(0)
    decoded = [rng.integers(0, 256, (WORKING, WORKING, 3), dtype=np.uint8) for _ in faces]
    runs = iter(range(10 ** 6))
    masks = [face_mask(face, crop, plate.size) for face, crop in faces]
    parts = [(d, m, crop) for d, m, (_face, crop) in zip(decoded, masks, faces, strict=True)]

    def engine_image() -> object:  # as PlateBatch.reassemble makes it
        image = composite(plate.pixels, parts)[:, :, :3].astype(np.float32)
        image /= np.float32(255)
        return image

    out = composite(plate.pixels, parts)
    return {
        "read": _median(repeats, lambda: read_plate(path)),
        "detect": _median(repeats, lambda: detect_plate_faces(plate, analyzer, f"{models_hash}-{next(runs)}")),
        "crop": _median(repeats, lambda: [crop_pixels(plate.pixels, c, WORKING) for _f, c in faces]),
        "mask": _median(repeats, lambda: (overlapping_faces(faces, plate.size),
                                          [face_mask(f, c, plate.size) for f, c in faces])),
        "composite": _median(repeats, engine_image),
        "write": _median(repeats, lambda: take_png(out)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    models = resolve_face_models("synthetic")
    analyzer = FaceAnalyzer(models)
    folder = Path(tempfile.mkdtemp())
    print("| plate | faces | read | detect | crop | mask | composite | write |")
    print("|---|---|---|---|---|---|---|---|")
    for width, height in ((3840, 2160), (7680, 4320)):
        path = folder / f"plate_{width}x{height}.png"
        Image.open(RECIPE).convert("RGB").resize((width, height), Image.Resampling.LANCZOS).save(path)
        plate = read_plate(path)
        scale = width / 7680
        boxes: list[Box] = [(round(x * scale), round(y * scale), round(w * scale), round(h * scale))
                            for x, y, w, h in BOXES_8K]
        for count in (1, 2):
            faces = [(box, crop_box(box, plate.size)) for box in boxes[:count]]
            row = _row(path, plate, faces, lambda: analyzer, models.hash, args.repeats)
            print(f"| {width}x{height} | {count} | " + " | ".join(f"{v:.3f} s" for v in row.values()) + " |",
                  flush=True)


if __name__ == "__main__":
    main()
