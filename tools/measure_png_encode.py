"""Time a take's PNG encode under Pillow's zlib settings, and what each costs in bytes and in decoding.

Run from the repository root: PYTHONPATH=. OMP_NUM_THREADS=1 python tools/measure_png_encode.py [--repeats 5]
Images: the recipe plate upscaled (Lanczos) to 3840x2160 and 7680x4320 ("drawn": flat colours, as the plate trial's
plates), and the same with seeded Gaussian grain of sigma 3 levels added ("grain": a photograph's sensor noise, the
hard case for deflate). Settings: Pillow's ``compress_level`` and ``compress_type`` (the zlib strategy; Pillow's PNG
default is Z_FILTERED, and it always chooses each row's PNG filter itself: none, up, sub or Paeth, by the least sum
of absolute values). The settings run alternated, ``--repeats`` times each; medians of ``time.perf_counter``. Every
file is decoded and compared with the image (the pixels must be identical), and the decode is timed too. Last, at
7680x4320, the cost of a take's text chunks (a 20 kB record) and of a 3 kB colour profile.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

RECIPE = Path("recipes/plates/two_people.png")
# "before": takes until 2026-12-02 (LEGACY_PNG_ENCODING); "now": idcli.provenance.PNG_ENCODING. Levels 4 and 5 and
# Z_FIXED were tried (reproduce-chunk, 2026-12-02) for a drawn plate's size back at Z_RLE's speed. (Z_FILTERED is
# Pillow's default; this zlib-ng gave the default strategy's bytes with it.)
SETTINGS: dict[str, dict[str, int]] = {
    "level 6 (before)": {"compress_level": 6},
    "level 1": {"compress_level": 1},
    "level 3": {"compress_level": 3},
    "level 4": {"compress_level": 4},
    "level 5": {"compress_level": 5},
    "level 1, Z_RLE (now)": {"compress_level": 1, "compress_type": zlib.Z_RLE},
    "level 6, Z_RLE": {"compress_level": 6, "compress_type": zlib.Z_RLE},
    "level 1, Z_HUFFMAN_ONLY": {"compress_level": 1, "compress_type": zlib.Z_HUFFMAN_ONLY},
    "level 1, Z_FIXED": {"compress_level": 1, "compress_type": zlib.Z_FIXED},
}


def _encode(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return buffer.getvalue()


def _images(width: int, height: int) -> dict[str, np.ndarray]:
    drawn = np.asarray(Image.open(RECIPE).convert("RGB").resize((width, height), Image.Resampling.LANCZOS))
    grain = np.random.default_rng(0).normal(0.0, 3.0, drawn.shape).round()
    return {"drawn": drawn, "grain": np.clip(drawn + grain, 0, 255).astype(np.uint8)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print("| image | setting | encode | size | decode |")
    print("|---|---|---|---|---|")
    for width, height in ((3840, 2160), (7680, 4320)):
        for kind, pixels in _images(width, height).items():
            image = Image.fromarray(pixels)
            encode: dict[str, list[float]] = {name: [] for name in SETTINGS}
            decode: dict[str, list[float]] = {name: [] for name in SETTINGS}
            sizes: dict[str, int] = {}
            for _ in range(args.repeats):
                for name, options in SETTINGS.items():
                    start = time.perf_counter()
                    data = _encode(image, **options)
                    encode[name].append(time.perf_counter() - start)
                    start = time.perf_counter()
                    with Image.open(io.BytesIO(data)) as read:
                        back = np.asarray(read.convert("RGB"))
                    decode[name].append(time.perf_counter() - start)
                    if not np.array_equal(back, pixels):
                        raise SystemExit(f"{kind} {width}x{height}, {name}: the decoded pixels differ")
                    sizes[name] = len(data)
            for name in SETTINGS:
                print(f"| {width}x{height} {kind} | {name} | {statistics.median(encode[name]):.2f} s | "
                      f"{sizes[name]:,} bytes | {statistics.median(decode[name]):.2f} s |", flush=True)
    image = Image.fromarray(_images(7680, 4320)["grain"])
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a prompt, Negative prompt: ..., Steps: 30, Sampler: DPM++ 2M" * 4)
    info.add_itxt("idcli", "{" + '"k": "v", ' * 2000 + "}")
    profile = bytes(3144)  # the size of a Display P3 profile; its content does not change the cost
    chunks = {"pixels alone": {}, "with text chunks and a profile": {"pnginfo": info, "icc_profile": profile}}
    times: dict[str, list[float]] = {name: [] for name in chunks}
    for _ in range(args.repeats):
        for name, extra in chunks.items():
            start = time.perf_counter()
            _encode(image, compress_level=6, **extra)
            times[name].append(time.perf_counter() - start)
    print("7680x4320 grain, level 6: " + "; ".join(f"{name} {statistics.median(t):.2f} s" for name, t in times.items()))


if __name__ == "__main__":
    main()
