"""Issue 18, part A: long prompts in full, and renders that are thread- and process-safe.

Each test is named after the bullet it guards ("Long prompts in full", "Thread- and process-safe").
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
from cli_helpers import cli_env, spawn_render

import idcli

SMALL = """\
version: 1
project: trust
model: {{preset: {preset}}}
defaults: {{size: 64x64, steps: 3, guidance: 4.0, takes: 1}}
characters:
  mara:
    selfies: [selfies/mara_1.jpg]
    description: a red-haired woman
shots:
  - id: a010
    prompt: "{{mara}} on a wet street at night"
  - id: a020
    prompt: "an empty harbour at dawn, fog"
"""


def _images(out: Path) -> dict[str, str]:
    """Each image's pixels, hashed (the PNG text also records paths, such as the identity pack's)."""
    import numpy as np
    from PIL import Image

    return {p.relative_to(out).as_posix(): hashlib.sha256(np.asarray(Image.open(p)).tobytes()).hexdigest()
            for p in sorted(out.glob("*/*.png"))}


def _render(shots: Path, out: Path) -> dict[str, str]:
    report = idcli.render(idcli.load_shotlist(shots), out, device="cpu", batch_size=1)
    assert report.failed == 0 and report.rendered == 2, report.as_dict()
    return _images(out)


# -- Thread- and process-safe ------------------------------------------------------------------------------


def test_thread_safe_two_renders_in_one_process_give_the_sequential_images(write_shotlist, tmp_path: Path) -> None:
    # Each render builds its own tiny-preset engine; before issue 18 both seeded torch's global generator,
    # so two builds at once drew each other's numbers and rendered wrong pixels under correct keys.
    shots = write_shotlist(SMALL.format(preset="tiny-sd"))
    sequential = _render(shots, tmp_path / "sequential")
    results: dict[str, dict[str, str]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def worker(name: str) -> None:
        try:
            barrier.wait()
            results[name] = _render(shots, tmp_path / name)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(name,)) for name in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not errors, errors
    assert results["one"] == sequential
    assert results["two"] == sequential


def test_process_safe_two_render_processes_give_the_sequential_images(write_shotlist, tmp_path: Path) -> None:
    shots = write_shotlist(SMALL.format(preset="tiny-sd"))
    sequential = _render(shots, tmp_path / "sequential")
    # A fresh IDCLI_HOME: both processes write the random adapter file at the same time.
    env = cli_env(tmp_path / "home")
    runs = [spawn_render(shots, tmp_path / name, env=env) for name in ("p1", "p2")]
    for run in runs:
        _stdout, stderr = run.communicate(timeout=600)
        assert run.returncode == 0, stderr
    assert _images(tmp_path / "p1") == sequential
    assert _images(tmp_path / "p2") == sequential


@pytest.mark.parametrize("preset", ["tiny-sd", "tiny-sdxl"])
def test_thread_safe_private_generator_gives_the_weights_of_the_seeded_global_one(preset: str) -> None:
    # The same weights as every earlier version (torch.manual_seed(TINY_INIT_SEED), then construction):
    # existing images keep their pixels.
    import torch

    from idcli.engine.build import _construct
    from idcli.engine.private_rng import private_generator
    from idcli.engine.tokenizer import build_tiny_tokenizer
    from idcli.presets import TINY_INIT_SEED

    tokenizer = build_tiny_tokenizer(77)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_INIT_SEED)
        seeded = _construct(preset, tokenizer)
    with private_generator(TINY_INIT_SEED):
        private = _construct(preset, tokenizer)
    for name, module in seeded.items():
        if module is None:
            continue
        theirs = private[name].state_dict()
        for key, value in module.state_dict().items():
            assert torch.equal(value, theirs[key]), f"{name}.{key}"
