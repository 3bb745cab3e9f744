"""Measure `idcli export` of a film's animatic: the movie (with and without burn-in) and the editorial files.

python tools/measure_animatic_movie.py DIR [--shots 200] [--size 1024x576] [--fps 24] [--runs 1]

Writes DIR/film.yaml with tools/make_film_shotlist.py (no plate shots; shot durations 3 s, one in seven 1.5–6 s)
and renders it into DIR/out once (kept for later runs) with an engine that stands in for the model: the recipe's
two-person plate scaled to the shot's size, shifted by the seed, with seeded grain (σ 8), so each take is a
detailed picture of its own rather than a flat one the encoder skips. No identity QA. Then times, as whole
commands (`python -m idcli export …`, wall seconds, min of --runs): `--movie`, `--movie --burn-in`, and
`--otio --edl --fcp-xml` together; prints frames, the movie's size in bytes and its frames encoded per second.
docs/performance.md ("The animatic as a movie") records its figures.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))


class PlateEngine:
    adapter_record = None

    def __init__(self) -> None:
        self.plate = Image.open(ROOT / "recipes" / "plates" / "two_people.png").convert("RGB")

    def render(self, requests, **kwargs):
        from idcli.engine.core import RenderResult

        results = []
        for request in requests:
            base = np.asarray(self.plate.resize((request.width, request.height)), np.float32)
            base = np.roll(base, (request.seed * 37) % request.width, axis=1)
            grain = np.random.default_rng(request.seed).normal(0, 8, base.shape)
            results.append(RenderResult(np.clip((base + grain) / 255.0, 0, 1).astype(np.float32)))
        return results

    def suggest_batch_size(self, request) -> int:
        return 8


def render(folder: Path, shots: int, size: str) -> Path:
    from make_film_shotlist import write_film

    import idcli

    out = folder / "out"
    if (out / ".idcli" / "shotlist.jsonl").is_file():
        return out
    film = write_film(folder, shots, 45, 0, size)
    report = idcli.render(idcli.load_shotlist(film), out, device="cpu",
                          engine_factory=lambda identity, runtime, adapter=None: PlateEngine(), qa=False)
    print(f"rendered {report.rendered} takes of {shots} shots at {size}", flush=True)
    return out


def timed(args: list[str], runs: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "idcli", "export", *args], env=env, capture_output=True,
                              text=True)
        best = min(best, time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(done.stderr)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--shots", type=int, default=200)
    parser.add_argument("--size", default="1024x576")
    parser.add_argument("--fps", default="24")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("IDCLI_HOME", str(args.folder / "home"))
    out = render(args.folder, args.shots, args.size)
    edit = args.folder / "edit"
    import av

    for label, extra in (("--movie", []), ("--movie --burn-in", ["--burn-in"])):
        movie = edit / "animatic.mp4"
        seconds = timed([str(out), "--movie", str(movie), "--fps", args.fps, *extra], args.runs)
        with av.open(str(movie)) as container:
            frames = container.streams.video[0].frames
        print(f"{label}: {seconds:.1f} s, {frames} frames, {frames / seconds:.0f} frames/s, "
              f"{movie.stat().st_size:,} bytes", flush=True)
    seconds = timed([str(out), "--otio", str(edit / "a.otio"), "--edl", str(edit / "a.edl"), "--fcp-xml",
                     str(edit / "a.xml"), "--fps", args.fps], args.runs)
    print(f"--otio --edl --fcp-xml: {seconds:.1f} s")


if __name__ == "__main__":
    main()
