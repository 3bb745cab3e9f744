"""The tools the docs name still do what the docs say: `tools/make_recipe_plate.py` draws the shipped plate
(docs/plates.md), `tools/measure_film_commits.py` times a film's commits and `tools/measure_plate_steps.py` a plate
take's steps, its PNG encoded as idcli encodes a take (docs/performance.md).
(`tools/mutation_pass.py --check`, docs/testing.md, is kept true by tests/test_mutation_pass.py.)"""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from PIL import Image

import idcli
from idcli.provenance import png_chunks

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> ModuleType:
    """tools/NAME.py, loaded from its file (tools/ is no package), with tools/ on the path for its own imports."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(ROOT / "tools"))


def test_make_recipe_plate_draws_the_shipped_plate() -> None:
    """Broke when a third person (ines) joined make_recipe_selfies.PEOPLE: the two-person plate zipped every
    person with two positions (strict), a ValueError before anything was drawn."""
    drawn = np.asarray(_tool("make_recipe_plate").plate().convert("RGB"))
    with Image.open(ROOT / "recipes" / "plates" / "two_people.png") as shipped:
        assert np.array_equal(drawn, np.asarray(shipped.convert("RGB")))



def test_measure_film_commits_times_every_commit_of_a_small_film(tmp_path: Path) -> None:
    """docs/performance.md's "At film scale" commit figures come from tools/measure_film_commits.py; its timing
    wrapper of OutputStore.commit took (job, png, sidecar) only, so once render passed the --save-masks mask
    (``mask=``) every commit was a TypeError and the tool measured nothing."""
    (tmp_path / "film.yaml").write_text(_tool("measure_film_resume").film_text(3, 64), "utf-8")
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "measure_film_commits.py"), str(tmp_path / "film.yaml"),
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("rendered 3 in "), done.stdout
    assert "commits 1-1: median" in done.stdout and "commits 3-3: median" in done.stdout, done.stdout
    assert len(sorted((tmp_path / "out").glob("*/*.png"))) == 3


def test_measure_plate_steps_writes_a_take_as_idcli_does(write_shotlist: Any, tmp_path: Path,
                                                         tiny_engines: Any) -> None:
    """docs/performance.md's plate-side "write" figures come from tools/measure_plate_steps.py; it timed Pillow's
    default encode (zlib level 6) after takes were deflated with Z_RLE at level 1 (2026-12-02), so it timed an encode
    idcli no longer does. Its PNG of a take's pixels must hold the take's own pixel stream (IDAT) byte for byte."""
    shots = write_shotlist("""\
        version: 1
        project: tool-write
        model: {preset: tiny-sd}
        defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: euler, takes: 1}
        shots:
          - {id: dock, prompt: "a dock at dawn"}
        """)
    engine = tiny_engines("tiny-sd")
    idcli.render(idcli.load_shotlist(shots), tmp_path / "out", device="cpu", qa=False,
                 engine_factory=lambda m, r, a: engine)
    take = (tmp_path / "out" / "dock" / "dock_t1.png").read_bytes()
    with Image.open(io.BytesIO(take)) as image:
        pixels = np.asarray(image.convert("RGB"))

    def pixel_stream(data: bytes) -> bytes:
        return b"".join(payload for kind, payload in png_chunks(data) if kind == b"IDAT")

    assert pixel_stream(_tool("measure_plate_steps").take_png(pixels)) == pixel_stream(take)
