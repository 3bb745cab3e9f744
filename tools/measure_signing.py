"""What C2PA signing adds per image: time to sign and to read back, and bytes added.

python tools/measure_signing.py [--repeats 9]

Makes a throwaway test CA (as tests/c2pa_helpers.py does), then signs noise PNGs of 256x256 and
1024x1024 (random-weight renders are noise, so their PNGs are as large as real ones get) through
idcli.signing.Signer, exactly as the commit path does, and reads each back with c2pa-python.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from c2pa_helpers import make_test_ca

from idcli.signing import Signer, load_credentials, read_manifest


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        ca = make_test_ca(Path(folder))
        start = time.perf_counter()
        credentials = load_credentials(ca.cert, ca.key)
        print(f"credentials checked (with a trial signature) in {1000 * (time.perf_counter() - start):.1f} ms")
    signer = Signer(credentials)
    record = {"job_key": "idcli-job-v2:" + "0" * 64, "image": {"path": "sh/sh_t1.png"}, "model": {"preset": "x"}}
    print("| image | PNG bytes | bytes added | sign, median ms | read and validate, median ms |")
    print("|---|---|---|---|---|")
    for side in (256, 1024):
        pixels = np.random.default_rng(side).integers(0, 256, (side, side, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG", compress_level=6)
        png = buffer.getvalue()
        sign_ms, read_ms, signed = [], [], b""
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            signed, _sidecar = signer.sign(png, record)
            t1 = time.perf_counter()
            assert read_manifest(signed).state == "Valid"
            sign_ms.append(1000 * (t1 - t0))
            read_ms.append(1000 * (time.perf_counter() - t1))
        print(f"| {side}x{side} | {len(png):,} | {len(signed) - len(png):,} | {statistics.median(sign_ms):.1f} | "
              f"{statistics.median(read_ms):.1f} |")


if __name__ == "__main__":
    main()
