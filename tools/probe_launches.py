"""Count the kernel launches the dual-line attention probe adds to one UNet forward, on the meta device.

The published SDXL (or SD1.5) UNet is built with its parameters on the meta device (nothing allocated, so
this runs anywhere in seconds), every attention processor is idcli's FaceID processor, and one forward
of a batch of dual-line jobs runs under a dispatch mode that counts each ATen operation that would launch
a kernel (views and metadata-only operations excluded), the probe's ``maps()`` after it included. Three
forwards are counted: without the probe, with the probe as idcli runs it (the semantic rows of a batch are
consecutive: a slice), and with the rows picked by ``index_select`` (a batch whose dual-line jobs are not
consecutive).

    python tools/probe_launches.py --arch sdxl --jobs 4 --dtype bfloat16

Prints one JSON document. On the meta device no kernel runs: the counts are what a GPU would launch
without CUDA graphs, not a time.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from idcli.engine.build import empty_components
from idcli.engine.faceid import FaceIDState, RowScaledIPAdapterProcessor
from idcli.engine.fusion import AttentionProbe, probe_levels

# Operations that only change metadata (no kernel): views are recognised by their schema, these by name.
NO_KERNEL = {"aten.detach.default", "aten.alias.default", "aten.lift_fresh.default", "aten.empty.memory_format",
             "aten.empty_strided.default", "prim.device.default", "aten.sym_size.int", "aten.sym_stride.int",
             "aten.sym_numel.default", "aten.sym_storage_offset.default", "aten.is_contiguous.default"}


class LaunchCounter(TorchDispatchMode):
    """Counts the ATen operations dispatched while it is active that would launch a kernel."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if not func.is_view and str(func) not in NO_KERNEL:
            self.count += 1
        return func(*args, **(kwargs or {}))


def count_forward(arch: str, jobs: int, dtype: torch.dtype, probe_kind: str) -> dict[str, int]:
    preset = {"sdxl": "bench-sdxl", "sd15": "bench-sd15"}[arch]
    unet = empty_components(preset)["unet"].to(dtype)
    state = FaceIDState(0.0)
    unet.set_attn_processor({name: RowScaledIPAdapterProcessor(state=state) for name in unet.attn_processors})
    size = 1024 if arch == "sdxl" else 512
    latent_hw = (size // 8, size // 8)
    rows = 2 * jobs + jobs  # unconditional, semantic and identity rows of dual-line jobs in their window
    device = torch.device("meta")
    sample = torch.empty(rows, unet.config.in_channels, *latent_hw, device=device, dtype=dtype)
    text = torch.empty(rows, 77, unet.config.cross_attention_dim, device=device, dtype=dtype)
    added = None
    if arch == "sdxl":
        added = {"text_embeds": torch.empty(rows, 1280, device=device, dtype=dtype),
                 "time_ids": torch.empty(rows, 6, device=device, dtype=dtype)}
    probed = 0
    if probe_kind != "none":
        weights = torch.zeros(jobs, 77, device=device)
        probe = AttentionProbe(list(range(jobs, 2 * jobs)), weights, latent_hw, probe_levels(unet.config))
        if probe_kind == "index_select":
            probe._slice = None
        state.probe = probe
    counter = LaunchCounter()
    with torch.inference_mode(), counter:
        unet(sample, torch.tensor(500.0, device=device), encoder_hidden_states=text, added_cond_kwargs=added)
        if probe_kind != "none":
            probe.maps()  # the maps resampled to the latent grid and averaged, as the engine asks after a forward
    if probe_kind != "none":
        probed = len(probe._parts)
    return {"launches": counter.count, "probed_layers": probed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=["sdxl", "sd15"], default="sdxl")
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--dtype", choices=["bfloat16", "float16", "float32"], default="bfloat16")
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    counts = {kind: count_forward(args.arch, args.jobs, dtype, kind) for kind in ("none", "slice", "index_select")}
    base = counts["none"]["launches"]
    result = {"arch": args.arch, "jobs": args.jobs, "dtype": args.dtype, "torch": torch.__version__,
              "unet_launches": base, "probed_layers": counts["slice"]["probed_layers"],
              "probe_launches": {kind: counts[kind]["launches"] - base for kind in ("slice", "index_select")}}
    result["probe_share"] = {kind: round(v / base, 4) for kind, v in result["probe_launches"].items()}
    result["per_layer"] = {kind: round(v / max(1, result["probed_layers"]), 2)
                           for kind, v in result["probe_launches"].items()}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
