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

The pixel hashes hold on the CPU they were recorded on (a 2-core AMD EPYC, torch's AVX2 kernels), not on
every CPU: on an Intel Xeon with AVX-512 the same code gives the same keys and pixels that differ by one
8-bit level in a few of every 10,000 values (MKL and oneDNN pick kernels by CPU, and forcing
``ATEN_CPU_CAPABILITY``/``MKL_CBWR``/``ONEDNN_MAX_CPU_ISA`` to AVX2 does not give the EPYC's bytes back).
So the record also keeps each image's 4×4 block sums (``blocks.npz``, recorded with ``--blocks`` from
code whose hashes matched the record on the EPYC), and a CPU whose bytes differ is held to them:
see :func:`pixels_match`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).resolve().parent / "data" / "golden_one_character"
RECORD = FOLDER / "golden.json"
BLOCKS = FOLDER / "blocks.npz"
BLOCK = 4  # block sums over 4×4 pixels: 16 values a sum, so one level in one pixel moves a sum by 1
# A CPU whose bytes differ is held to the recorded block sums: none off by more than 2, at most 0.5 % off at
# all. Measured on one Intel Xeon (2026-11-30), torch's AVX-512 kernels against its AVX2 ones moved sums by 1
# in at most 0.12 % of them; a guidance 0.05 higher moved 32-56 % of them by up to 8, an identity strength
# 3 % lower 1.0-51 % by up to 6 (docs/testing.md, "Golden images on another CPU").
BLOCK_SUM_SLACK = 2
BLOCK_SUMS_OFF = 0.005
SHOT_LISTS = ("one_character.yaml", "quickstart_before.yaml")


def compute(engine_for: Any, shot_list: str, only: set[str] | None = None) -> dict[str, dict[str, str]]:
    """``{shot_take: {key, pixels_sha256}}`` of a golden shot list; ``engine_for(preset, adapter)``."""
    return {stem: {"key": key, "pixels_sha256": hashlib.sha256(pixels.tobytes()).hexdigest()}
            for stem, (key, pixels) in render_jobs(engine_for, shot_list, only).items()}


def render_jobs(engine_for: Any, shot_list: str, only: set[str] | None = None) -> dict[str, tuple[str, Any]]:
    """``{shot_take: (key, 8-bit pixels)}`` of a golden shot list, each job rendered alone."""
    import idcli

    plan, _runtime = idcli.plan_shotlist(idcli.load_shotlist(FOLDER / shot_list), device="cpu")
    engine = engine_for(plan.model.preset, plan.adapter)
    return {job.stem: (job.key, engine.render([job.request])[0].pixels)
            for job in plan.jobs if only is None or job.stem in only}


def block_sums(pixels: Any) -> Any:
    """The sums of each 4×4 block of 8-bit pixels, per channel (``uint16``)."""
    import numpy as np

    height, width, channels = pixels.shape
    blocks = pixels[:height - height % BLOCK, :width - width % BLOCK].astype(np.uint16)
    return blocks.reshape(height // BLOCK, BLOCK, width // BLOCK, BLOCK, channels).sum(axis=(1, 3), dtype=np.uint16)


def pixels_match(shot_list: str, stem: str, pixels: Any, recorded_sha256: str) -> str | None:
    """None when ``pixels`` are the recorded image: its bytes, or (another CPU's kernels) its block sums
    within the slack above; else what differs."""
    import numpy as np

    if hashlib.sha256(pixels.tobytes()).hexdigest() == recorded_sha256:
        return None
    with np.load(BLOCKS) as record:
        expected = record[f"{shot_list}/{stem}"]
    now = block_sums(pixels)
    if now.shape != expected.shape:
        return f"{stem}: size {now.shape} is not the recorded {expected.shape}"
    off = np.abs(now.astype(np.int32) - expected.astype(np.int32))
    share = float((off > 0).mean())
    if int(off.max()) > BLOCK_SUM_SLACK or share > BLOCK_SUMS_OFF:
        return (f"{stem}: bytes differ and {share:.2%} of its 4x4 block sums are off, by up to {int(off.max())} "
                f"(allowed: {BLOCK_SUMS_OFF:.1%}, by up to {BLOCK_SUM_SLACK})")
    return None


def main() -> None:
    """Record golden.json (no argument), or with ``--blocks`` only blocks.npz: the block sums of every job,
    from code whose pixel hashes match golden.json on the CPU it was recorded on."""
    import os
    import sys
    import tempfile

    import numpy as np
    import torch

    torch.set_num_threads(1)  # as the suite runs (tests/conftest.py)

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

        if sys.argv[1:] == ["--blocks"]:
            golden = json.loads(RECORD.read_text())
            blocks = {}
            for name in SHOT_LISTS:
                for stem, (key, pixels) in render_jobs(engine_for, name).items():
                    blocks[f"{name}/{stem}"] = block_sums(pixels)
                    same = hashlib.sha256(pixels.tobytes()).hexdigest() == golden[name][stem]["pixels_sha256"]
                    print(f"{name}/{stem}: key {'as' if key == golden[name][stem]['key'] else 'NOT as'} recorded, "
                          f"bytes {'as recorded' if same else 'differ from the record (another CPU?)'}")
            np.savez_compressed(BLOCKS, **blocks)
            return
        record = {name: compute(engine_for, name) for name in SHOT_LISTS}
    RECORD.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
