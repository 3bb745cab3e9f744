"""Where the engine's tensors live during the denoising loop, checked on a CPU-only machine (issue 16's H200 run).

On a CPU every tensor is on the one device, so a tensor made on the host by mistake cannot fail here as it
would on a GPU (a device mismatch, or a silent copy each step). So this watches the *calls* instead: under a
TorchFunctionMode, which sees each torch call as written, no code of idcli's own inside the loop (from the
first UNet forward to the last scheduler step) may make a tensor without naming its device (``torch.zeros``,
``torch.tensor``, ``torch.from_numpy``, ...) or bring one back to the host (``.cpu()``, ``.numpy()``,
``.item()``, ``.tolist()``, ``bool()``/``float()``/``int()`` of a tensor). tests/test_gpu_ready.py counts the
ATen operations that make the host wait; this one catches host-side tensors that would meet device latents.
Covered: text, single-line, dual-line with windows opening at different steps, a head-only cut, two characters
in one image, FaceID-Plus v2's CLIP rows, and plate crops (fixed masks, the known-region blend).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from loop_watch import own_frame, render_watched
from torch.overrides import TorchFunctionMode

import idcli
from idcli.engine import Engine
from idcli.planning import plan_shotlist
from idcli.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
PACKAGE = str(ROOT / "idcli")

FACTORIES = {torch.zeros, torch.ones, torch.empty, torch.full, torch.arange, torch.linspace, torch.tensor,
             torch.as_tensor, torch.randn, torch.rand, torch.eye, torch.scalar_tensor}
HOST = {torch.from_numpy, torch.Tensor.cpu, torch.Tensor.numpy, torch.Tensor.item, torch.Tensor.tolist,
        torch.Tensor.__bool__, torch.Tensor.__float__, torch.Tensor.__int__, torch.Tensor.__index__}

SHOTS = """\
version: 1
project: placement
model: {{preset: tiny-sd{adapter}}}
defaults: {{size: 64x64, steps: 6, guidance: 5.0, takes: 1}}
characters:
  mara: {{selfies: [selfies/mara_1.jpg]}}
  theo: {{selfies: [selfies/theo_1.jpg]}}
shots:
  - {{id: a, prompt: "an empty lighthouse at dusk"}}
  - {{id: b, prompt: "{{mara}} on a pier", method: dual-line, framing: wide}}
  - {{id: c, prompt: "{{theo}} in a harbour", method: single}}
  - {{id: d, prompt: "{{theo}} and {{mara}} by a boat", method: dual-line, method_params: {{fusion_start: 0.5}}}}
"""


class HostCalls(TorchFunctionMode):
    """Calls of idcli's own code, while ``counting``, that make a tensor on the host or read one back."""

    def __init__(self, roots: tuple[str, ...]) -> None:
        super().__init__()
        self.roots = roots  # files whose calls are judged: idcli's own
        self.counting = False
        self.forwards = 0
        self.hits: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.counting and (func in HOST or (func in FACTORIES and kwargs.get("device") is None)):
            frame = own_frame(self.roots)
            if frame is not None:
                self.hits.append(f"{getattr(func, '__name__', func)} at "
                                 f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}")
        return func(*args, **kwargs)


def _watch(engine: Engine, requests: list, monkeypatch: pytest.MonkeyPatch,
           roots: tuple[str, ...] = (PACKAGE,)) -> HostCalls:
    """Render ``requests`` in one batch under ``HostCalls``, counting from the first UNet forward to the loop's
    last scheduler step."""
    calls = HostCalls(roots)
    render_watched(engine, requests, monkeypatch, calls)
    return calls


@pytest.mark.parametrize("adapter", ["faceid", "faceid-plusv2"])
def test_no_host_tensor_inside_the_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, adapter: str) -> None:
    import shutil

    shutil.copytree(RECIPES / "selfies", tmp_path / "selfies")
    variant = "" if adapter == "faceid" else ", adapter: {variant: faceid-plusv2}"
    plan, _runtime = plan_shotlist(idcli.loads_shotlist(SHOTS.format(adapter=variant), base_dir=str(tmp_path)),
                                   device="cpu")
    engine = Engine(plan.model, Runtime("cpu", "float32"), plan.adapter)
    calls = _watch(engine, [job.request for job in plan.jobs], monkeypatch)
    assert calls.forwards == 6
    assert calls.hits == []
    if adapter != "faceid":
        return  # the plate requests below carry no CLIP features: plate crops are watched with FaceID

    from test_plate_engine import two_plates

    from idcli.engine.plates import start_index

    calls = _watch(engine, two_plates(), monkeypatch)
    assert calls.forwards == 6 - start_index(6, 0.6)
    assert calls.hits == []


def test_the_watch_sees_a_host_tensor_made_in_the_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check can fail: a fusion mask made without a device inside the loop is reported where it is made."""
    import shutil

    from idcli.engine import fusion

    shutil.copytree(RECIPES / "selfies", tmp_path / "selfies")
    plan, _runtime = plan_shotlist(idcli.loads_shotlist(SHOTS.format(adapter=""), base_dir=str(tmp_path)),
                                   device="cpu")
    engine = Engine(plan.model, Runtime("cpu", "float32"), plan.adapter)
    head_only = fusion.head_only_mask

    def host_made(mask, fraction):
        return head_only(mask, fraction) * torch.ones(1)  # a host tensor meeting the device mask

    monkeypatch.setattr(fusion, "head_only_mask", host_made)
    calls = _watch(engine, [job.request for job in plan.jobs if job.shot_id == "b"], monkeypatch,
                   roots=(PACKAGE, __file__))
    assert calls.hits and {hit.rsplit(":", 1)[0] for hit in calls.hits} == {"ones at test_device_placement.py"}
