"""Helpers for the review tests: images holding the recipe selfies' drawn faces, and an engine that
"renders" them, so identity QA runs on real detections through the real commit path.

The synthetic face pack (idcli/synthetic_faces.py) finds the drawn faces of recipes/selfies and
nothing in noise; random-weight models render noise. To test QA on images that *do* contain the cast,
the engine below pastes the selfies of the characters a prompt names (by their descriptions, left to
right in order of mention; swapped on odd seeds) into a grey canvas of the requested size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SELFIES = ROOT / "recipes" / "selfies"
# How the test shot lists describe each character; the engine finds them in the prompt by this text.
DESCRIPTIONS = {"mara": "a red-haired woman", "theo": "a young man"}


def face_canvas(selfies: list[str], width: int, height: int, background: tuple[int, int, int] = (90, 90, 100)
                ) -> np.ndarray:
    """An RGB uint8 image with the named recipe selfies (e.g. 'mara_1') pasted side by side, centred."""
    canvas = Image.new("RGB", (width, height), background)
    if selfies:
        cell = min(height, width // len(selfies))
        left = (width - cell * len(selfies)) // 2
        for i, name in enumerate(selfies):
            with Image.open(SELFIES / f"{name}.jpg") as selfie:
                canvas.paste(selfie.convert("RGB").resize((cell, cell)), (left + i * cell, (height - cell) // 2))
    return np.asarray(canvas).copy()


class DetectedFace:
    """A detected face as identity QA reads one (review.qa.assess): a box, a score and a unit-length embedding."""

    def __init__(self, box: list[float], vector: np.ndarray) -> None:
        self.bbox, self.det_score = np.array(box, np.float32), 0.9
        self.embedding = (vector / np.linalg.norm(vector)).astype(np.float32)


def characters_in(prompt: str) -> list[str]:
    found = [(prompt.find(text), name) for name, text in DESCRIPTIONS.items() if text in prompt]
    return [name for _, name in sorted(found)]


class FaceEngine:
    """Renders each request as a canvas of its characters' selfies (take 1 of each selfie pair)."""

    adapter_record = None

    def __init__(self) -> None:
        self.calls: list[int] = []

    def render(self, requests, **kwargs):
        from idcli.engine.core import RenderResult

        self.calls.append(len(requests))
        results = []
        for request in requests:
            names = [f"{name}_1" for name in characters_in(request.prompt)]
            if request.seed % 2:
                names.reverse()  # swapped positions
            pixels = face_canvas(names, request.width, request.height)
            results.append(RenderResult(pixels.astype(np.float32) / 255.0))
        return results

    def suggest_batch_size(self, request) -> int:
        return 4


def face_engine_factory():
    engine = FaceEngine()

    def factory(identity, runtime, adapter=None):
        return engine

    factory.engine = engine
    return factory


SHOTS = """\
version: 1
project: review
model: {preset: tiny-sd}
defaults: {size: 256x256, steps: 2, guidance: 2.0, takes: 2}
characters:
  mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg], description: a red-haired woman}
  theo: {selfies: [selfies/theo_1.jpg, selfies/theo_2.jpg], description: a young man}
shots:
  - id: sh010
    prompt: "{mara} and {theo} talk at a <b>table</b> & laugh"
    size: 512x256
    seeds: [10, 11]
    framing: medium
    duration: 2.0
  - id: sh020
    prompt: "close-up of {mara}, rain"
    framing: close-up
    duration: 1.5
  - id: sh030
    prompt: "an empty lighthouse at dusk"
  - id: sh040
    prompt: "{theo} alone on the pier"
    framing: wide
    takes: 1
"""


def render_review_run(folder: Path, face_models: Path, only: list[str] | None = None) -> Path:
    """Render SHOTS with the FaceEngine into ``folder / 'out'`` (isolated idcli state); the output folder.

    For module-scoped fixtures: the autouse per-test isolation is not active yet, so this sets it itself.
    """
    import os
    import shutil

    import pytest

    import idcli

    shutil.copytree(SELFIES, folder / "selfies")
    shots = folder / "shots.yaml"
    shots.write_text(SHOTS, "utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IDCLI_HOME", str(folder / "home"))
        patch.setenv("IDCLI_FACE_MODELS", str(face_models))
        patch.setenv("HF_HUB_OFFLINE", "1")
        report = idcli.render(idcli.load_shotlist(shots), folder / "out", device="cpu",
                              engine_factory=face_engine_factory(), only=only)
        assert report.failed == 0, os.environ.get("IDCLI_HOME")
    return folder / "out"


def cli(*args: object):
    """``idcli ARGS`` in this process (paths and numbers given as they are), for the review tests."""
    from typer.testing import CliRunner

    from idcli.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])
