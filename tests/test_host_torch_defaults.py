"""A pipeline that set torch's defaults for its own work (``set_default_dtype``, ``set_default_device``) before
calling ``idcli.render``: the render makes the images a process that set nothing makes, and the host's defaults are
its own again after (idcli/torch_defaults.py; the python-api trial, 2026-12-02)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

import idcli
from idcli import kept_engine

SHOTS = """\
version: 1
project: host-defaults
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: dpmpp-2m, takes: 1}
characters:
  mara: {selfies: [selfies/mara_1.jpg]}
shots:
  - {id: sh010, prompt: "a lighthouse in a storm"}
  - {id: sh020, prompt: "{mara} on the pier at dusk", framing: medium}
"""


def _images(out: Path) -> dict[str, bytes]:
    return {path.relative_to(out).as_posix(): path.read_bytes() for path in sorted(out.glob("*/*.png"))}


@pytest.fixture
def plain_images(write_shotlist, tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """The shot list rendered by a host that changed none of torch's defaults, then no engine kept: the next render
    builds its own under the host's defaults."""
    shots = write_shotlist(SHOTS)
    report = idcli.render(shots, tmp_path / "plain", device="cpu")
    assert report.rendered == 2 and report.failed == 0
    kept_engine.release()
    return shots, _images(tmp_path / "plain")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_a_host_default_dtype_renders_the_plain_images_and_is_the_hosts_again_after(
        plain_images: tuple[Path, dict[str, bytes]], tmp_path: Path, dtype: torch.dtype) -> None:
    shots, plain = plain_images
    torch.set_default_dtype(dtype)
    try:
        report = idcli.render(shots, tmp_path / "host", device="cpu")
        after = torch.get_default_dtype()
    finally:
        torch.set_default_dtype(torch.float32)
    # Before: every job failed, "RuntimeError: mat1 and mat2 must have the same dtype, but got Float and Double".
    assert [job.error for job in report.jobs] == [None, None] and report.rendered == 2
    assert _images(tmp_path / "host") == plain
    assert after == dtype


def test_a_host_default_device_renders_the_plain_images_and_is_the_hosts_again_after(
        plain_images: tuple[Path, dict[str, bytes]], tmp_path: Path) -> None:
    shots, plain = plain_images
    torch.set_default_device("meta")  # this thread's: a host that builds its own models on the meta device
    try:
        # Before: NotImplementedError "Cannot copy out of meta tensor; no data!" from building the engine.
        report = idcli.render(shots, tmp_path / "host", device="cpu")
        after = torch.get_default_device()
    finally:
        torch.set_default_device(None)
    assert report.rendered == 2 and report.failed == 0
    assert _images(tmp_path / "host") == plain
    assert after.type == "meta"


def test_a_dtype_the_host_sets_while_a_render_runs_stays_the_hosts(write_shotlist, tmp_path: Path) -> None:
    shots = write_shotlist(SHOTS)
    set_meanwhile = threading.Event()

    class SetsItsOwn:
        """A host thread's work, done while the render runs (its progress object is called mid-render)."""

        def start(self, total: int, already_done: int) -> None: ...

        def advance(self, outcome: object) -> None:
            if not set_meanwhile.is_set():
                torch.set_default_dtype(torch.float64)
                set_meanwhile.set()

        def note(self, text: str) -> None: ...

        def stop(self) -> None: ...

    torch.set_default_dtype(torch.float16)
    try:
        report = idcli.render(shots, tmp_path / "out", device="cpu", progress=SetsItsOwn(), batch_size=1)
        after = torch.get_default_dtype()
    finally:
        torch.set_default_dtype(torch.float32)
    assert report.rendered == 2 and set_meanwhile.is_set()
    assert after == torch.float64  # the host's newer setting, not the float16 found at the start


def test_a_render_begun_after_the_host_set_a_dtype_while_another_call_ran_renders_the_plain_images(
        plain_images: tuple[Path, dict[str, bytes]], tmp_path: Path) -> None:
    """Another of idcli's calls runs in a thread of the host (here one wrapped as the engine's are) when the host sets
    float64, and a render begins: it builds and runs its models in float32 as a render alone does, and the host's
    float64 is its default after both (found by hostile-read-33, 2026-12-02)."""
    from idcli.torch_defaults import torch_defaults

    shots, plain = plain_images
    inside, done = threading.Event(), threading.Event()

    @torch_defaults
    def another_call() -> None:
        inside.set()
        done.wait(300)

    other = threading.Thread(target=another_call)
    other.start()
    try:
        assert inside.wait(60)
        torch.set_default_dtype(torch.float64)  # the host's, set while the other call runs
        # Before: every job failed, "mat1 and mat2 must have the same dtype, but got Float and Double": the dtype was
        # pinned by the first call to begin only, and this render built its models in the host's float64.
        report = idcli.render(shots, tmp_path / "host", device="cpu")
    finally:
        done.set()
        other.join(60)
        after = torch.get_default_dtype()
        torch.set_default_dtype(torch.float32)
    assert [job.error for job in report.jobs] == [None, None] and report.rendered == 2
    assert _images(tmp_path / "host") == plain
    assert after == torch.float64


@pytest.mark.skipif(torch.cuda.is_available(), reason="a torch without CUDA: asking it for the CUDA device fails")
def test_a_host_default_device_cuda_on_a_torch_without_cuda_renders_the_plain_images(
        plain_images: tuple[Path, dict[str, bytes]], tmp_path: Path) -> None:
    """A pipeline written for a GPU (``set_default_device("cuda")``) run on a laptop's CPU torch, rendering on the CPU:
    (found by hostile-read-33, 2026-12-02)."""
    shots, plain = plain_images
    torch.set_default_device("cuda")
    try:
        # Before: AssertionError "Torch not compiled with CUDA enabled" from asking torch its default device, an
        # internal error before any job ran.
        report = idcli.render(shots, tmp_path / "host", device="cpu")
    finally:
        torch.set_default_device(None)
    assert [job.error for job in report.jobs] == [None, None] and report.rendered == 2
    assert _images(tmp_path / "host") == plain
