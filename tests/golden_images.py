"""Golden data for one-character jobs: the job key and the sha256 of the 8-bit pixels of every job.

Recorded by running this module (``python tests/golden_images.py``, with the synthetic face pack the
tests use) with the code as it was without several-characters support: first on the branch before it
was added, then again on main each time main itself changed one-character keys or pixels (issue 15:
identities keyed by what made them, framing hygiene; issue 18a: long prompts, CPU batch sizes; issue 17:
the FaceID LoRA applied per row, which changed every identity job's key and pixels and left the
text-only job's byte-identical — re-recorded on the issue-17 branch after merging main, with
OMP_NUM_THREADS=1 as the suite runs: a tiny UNet forward differs by ~1e-6 between 1 and 2 CPU threads,
with or without the LoRA, and some identity jobs' 8-bit pixels now do too), main
exported with ``git archive`` and this module run against it: the branch then matched main exactly.
tests/test_multi_character.py recomputes the same values and compares. The quickstart's ``sc01_sh040``
is recorded too but not compared: it names two characters and is a two-character shot now. Every job
is rendered alone on the CPU in float32, so no batch neighbour can change a rounding.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).resolve().parent / "data" / "golden_one_character"
RECORD = FOLDER / "golden.json"
SHOT_LISTS = ("one_character.yaml", "quickstart_before.yaml")


def compute(engine_for: Any, shot_list: str, only: set[str] | None = None) -> dict[str, dict[str, str]]:
    """``{shot_take: {key, pixels_sha256}}`` of a golden shot list; ``engine_for(preset, adapter)``."""
    import idcli

    plan, _runtime = idcli.plan_shotlist(idcli.load_shotlist(FOLDER / shot_list), device="cpu")
    engine = engine_for(plan.model.preset, plan.adapter)
    out: dict[str, dict[str, str]] = {}
    for job in plan.jobs:
        if only is not None and job.stem not in only:
            continue
        pixels = engine.render([job.request])[0].pixels
        out[job.stem] = {"key": job.key, "pixels_sha256": hashlib.sha256(pixels.tobytes()).hexdigest()}
    return out


def main() -> None:
    import os
    import tempfile

    from idcli.engine import Engine
    from idcli.models import resolve_model
    from idcli.runtime import Runtime
    from idcli.shotlist import ModelSpec
    from idcli.synthetic_faces import build_synthetic_face_pack

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["IDCLI_HOME"] = str(Path(tmp) / "home")
        os.environ["IDCLI_FACE_MODELS"] = str(build_synthetic_face_pack(Path(tmp) / "faces"))
        engines: dict[tuple[str, bool], Engine] = {}

        def engine_for(preset: str, adapter: Any) -> Engine:
            key = (preset, adapter is not None)
            if key not in engines:
                engines[key] = Engine(resolve_model(ModelSpec(preset=preset), Path("."), "float32"),
                                      Runtime("cpu", "float32"), adapter)
            return engines[key]

        record = {name: compute(engine_for, name) for name in SHOT_LISTS}
    RECORD.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
