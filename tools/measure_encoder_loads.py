"""How often FaceID-Plus v2's CLIP image encoder is loaded in one process (docs/performance.md, "the image encoder
loaded once").

python tools/measure_encoder_loads.py [--renders growing|one] [--characters 4] [--preset tiny-sd]

``--renders growing`` (the default): ``--characters`` renders in this process, each of a shot list with one more
character than the last (a sequence's shot list as it grows, rendered after each change), each into its own folder;
``one``: a single render of the shot list with every character. Characters are the recipe selfies (mara, theo, ines,
then each one's second selfie alone as a character of its own, so that each has features to compute), rendered with
``--face-models synthetic`` at 64x64, 2 steps, one take. Counts ``CLIPVisionModelWithProjection.from_pretrained``
calls (every load of the encoder goes through it) and times them and each render. Prints one JSON line. Run it with
``PYTHONPATH`` at a checkout of the code to measure; ``IDCLI_HOME`` is a fresh folder per run, so every character's
features are computed once, as on a first render.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

SELFIES = Path(__file__).resolve().parents[1] / "recipes" / "selfies"
CHARACTERS = [("mara", "mara_1.jpg"), ("theo", "theo_1.jpg"), ("ines", "ines_1.jpg"), ("mara_b", "mara_2.jpg"),
              ("theo_b", "theo_2.jpg"), ("ines_b", "ines_2.jpg")]


def shotlist(characters: int, preset: str) -> str:
    """A shot list of the first ``characters`` characters, one shot each (FaceID-Plus v2)."""
    cast = CHARACTERS[:characters]
    lines = [f"version: 1\nproject: encoder-loads\nmodel: {{preset: {preset}, adapter: {{variant: faceid-plusv2}}}}\n"
             "defaults: {size: 64x64, steps: 2, takes: 1}\ncharacters:\n"]
    lines += [f"  {name}: {{selfies: [selfies/{selfie}]}}\n" for name, selfie in cast]
    lines.append("shots:\n")
    lines += [f'  - {{id: s{i:03d}, prompt: "{{{name}}} on a pier at dusk"}}\n' for i, (name, _) in enumerate(cast)]
    return "".join(lines)


def counted_loads() -> list[float]:
    """Wrap the encoder class's ``from_pretrained``; the seconds of each call."""
    from transformers import CLIPVisionModelWithProjection

    seconds: list[float] = []
    real = CLIPVisionModelWithProjection.from_pretrained.__func__  # type: ignore[attr-defined]

    def timed(cls: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return real(cls, *args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - started)

    CLIPVisionModelWithProjection.from_pretrained = classmethod(timed)  # type: ignore[method-assign, assignment]
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", default="growing", choices=["growing", "one"])
    parser.add_argument("--characters", type=int, default=4, choices=range(1, len(CHARACTERS) + 1))
    parser.add_argument("--preset", default="tiny-sd")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="encoder-loads-"))
    os.environ["IDCLI_HOME"] = str(work / "home")
    import torch

    torch.set_num_threads(1)
    import idcli

    shutil.copytree(SELFIES, work / "selfies")
    loads = counted_loads()
    sizes = range(1, options.characters + 1) if options.renders == "growing" else [options.characters]
    renders = []
    for size in sizes:
        shots = work / f"shots{size}.yaml"
        shots.write_text(shotlist(size, options.preset), "utf-8")
        started = time.perf_counter()
        report = idcli.render(shots, work / f"out{size}", device="cpu", face_models=Path("synthetic"), batch_size=1)
        renders.append(time.perf_counter() - started)
        assert report.exit_code == 0 and report.rendered == size, report.as_dict()
    print(json.dumps({"idcli": idcli.__file__, "renders": options.renders, "characters": options.characters,
                      "preset": options.preset, "encoder_loads": len(loads),
                      "load_seconds": [round(s, 3) for s in loads],
                      "render_seconds": [round(s, 3) for s in renders],
                      "render_median": round(statistics.median(renders), 3)}))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
