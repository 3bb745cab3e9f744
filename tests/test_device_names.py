"""``--device`` names a CUDA device as torch does, ``cuda`` or ``cuda:N`` (N one of this machine's). On a machine with
CUDA, any name starting with ``cuda`` passed the check: ``--device cuda1`` (the colon forgotten), ``cuda:x`` or
``cuda:7`` on a one-GPU machine planned the render, then stopped with ``internal error: RuntimeError: Invalid device
string: 'cuda1'`` (torch's own words on the first use, a traceback under IDCLI_DEBUG), the run's jobs counted as
started. They are now refused before anything is planned, saying what is allowed. No GPU is needed: the machine's
CUDA devices are what ``torch.cuda`` says, one here."""

from __future__ import annotations

from pathlib import Path

import pytest
from review_helpers import cli

import idcli
from idcli.errors import InputError
from idcli.runtime import Runtime, resolve_runtime

SHOTS = """\
version: 1
project: devices
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2}
shots:
  - {id: s1, prompt: "a lighthouse in a storm"}
"""


@pytest.fixture
def one_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


@pytest.mark.parametrize("device", ["cuda1", "cuda:x", "cuda:", "cuda:-1", "cuda:0:1", "cudа"])
def test_a_name_that_is_no_cuda_device_is_refused(one_gpu: None, device: str) -> None:
    with pytest.raises(InputError) as caught:
        resolve_runtime(device)
    assert str(caught.value) == f"device={device!r}: no such device (allowed: auto, cpu, cuda, cuda:N)"
    assert caught.value.field == "device"


def test_a_cuda_device_this_machine_does_not_have_is_refused(one_gpu: None) -> None:
    with pytest.raises(InputError) as caught:
        resolve_runtime("cuda:1")
    assert str(caught.value) == "device='cuda:1': this machine has 1 CUDA device, cuda:0 (or cuda)"


@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_the_machines_cuda_devices_are_taken(one_gpu: None, device: str) -> None:
    assert resolve_runtime(device) == Runtime(device, "bfloat16")


def test_render_refuses_a_mistyped_cuda_device_before_planning(one_gpu: None, tmp_path: Path) -> None:
    shots = tmp_path / "shots.yaml"
    shots.write_text(SHOTS, "utf-8")
    with pytest.raises(InputError, match=r"^device='cuda1': no such device"):
        idcli.render(shots, tmp_path / "out", device="cuda1")
    result = cli("render", shots, "--out", tmp_path / "out", "--device", "cuda1")
    assert result.exit_code == 2, result.output
    assert "idcli: error: --device cuda1: no such device (allowed: auto, cpu, cuda, cuda:N)" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.mark.parametrize("device", ["cuda1", "cuda:x", "cudа"])
def test_a_mistyped_cuda_name_is_named_a_typo_on_a_machine_without_cuda(no_gpu: None, device: str) -> None:
    """On a laptop without CUDA (where a README reader first types it), ``--device cuda1`` said ``no CUDA device is
    available here (use --device cpu)``: the typo was never named, and the same line on the GPU box said ``no such
    device``. README ("From Python") promises ``no such device (allowed: …)`` for ``cuda1`` whatever the machine."""
    with pytest.raises(InputError) as caught:
        resolve_runtime(device)
    assert str(caught.value) == f"device={device!r}: no such device (allowed: auto, cpu, cuda, cuda:N)"


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:1"])
def test_a_well_formed_cuda_device_without_cuda_says_to_use_the_cpu(no_gpu: None, device: str) -> None:
    with pytest.raises(InputError) as caught:
        resolve_runtime(device)
    assert str(caught.value) == f"device={device!r}: no CUDA device is available here (use device='cpu')"
