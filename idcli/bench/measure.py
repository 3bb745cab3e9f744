"""The bench's instruments: forward timers, a FLOP count, a matrix-product ceiling, memory, the machine.

Imports torch; only ``idcli bench`` loads this module.
"""

from __future__ import annotations

import functools
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


def synchronizer(device: Any) -> Callable[[], None]:
    """A function that waits for the device's queued work (a no-op on the CPU, which runs eagerly)."""
    import torch

    if torch.device(device).type == "cuda":
        return functools.partial(torch.cuda.synchronize, device)
    return lambda: None


@dataclass
class ForwardTime:
    seconds: dict[str, float] = field(default_factory=lambda: {"unet": 0.0, "vae": 0.0, "text": 0.0})
    calls: dict[str, int] = field(default_factory=lambda: {"unet": 0, "vae": 0, "text": 0})
    unet_rows: int = 0  # batch rows over all UNet calls (CFG doubles them)

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    def as_dict(self) -> dict[str, Any]:
        return {"seconds": {k: round(v, 4) for k, v in self.seconds.items()}, "total_seconds": round(self.total, 4),
                "calls": dict(self.calls), "unet_rows": self.unet_rows}


class ForwardTimers:
    """Wall time inside a pipeline's model forwards, by component, while the context is open.

    Wraps ``forward`` of the UNet and text encoders and ``decode`` of the VAE on the instances (the
    classes are untouched; leaving the context removes the wrappers). On a GPU each timed call is
    bracketed by synchronisations, so its time is its kernels' time rather than their launch; that
    removes the overlap of one call's launches with the previous call's kernels, a small cost per
    call that the figures then include. The FaceID projection runs inside the UNet's forward.
    """

    def __init__(self, pipe: Any, sync: Callable[[], None]) -> None:
        self.pipe = pipe
        self.sync = sync
        self.time = ForwardTime()
        self.last_unet_call: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self._installed: list[tuple[Any, str, Any]] = []  # (module, method, its own attribute or None)

    def reset(self) -> None:
        self.time = ForwardTime()
        self.last_unet_call = None

    def __enter__(self) -> ForwardTimers:
        self._wrap("unet", self.pipe.unet, "forward")
        self._wrap("vae", self.pipe.vae, "decode")
        for name in ("text_encoder", "text_encoder_2"):
            module = getattr(self.pipe, name, None)
            if module is not None:
                self._wrap("text", module, "forward")
        return self

    def __exit__(self, *exc: object) -> None:
        for module, method, own in reversed(self._installed):
            if own is None:
                delattr(module, method)  # the class's method shows again
            else:
                setattr(module, method, own)  # e.g. the engine's torch.compile'd forward
        self._installed.clear()

    def _wrap(self, component: str, module: Any, method: str) -> None:
        own = module.__dict__.get(method)  # an instance attribute already there (a compiled forward)
        original = getattr(module, method)

        @functools.wraps(original)  # keeps the signature, which diffusers sometimes inspects
        def timed(*args: Any, **kwargs: Any) -> Any:
            self.sync()
            start = time.perf_counter()
            out = original(*args, **kwargs)
            self.sync()
            self.time.seconds[component] += time.perf_counter() - start
            self.time.calls[component] += 1
            if component == "unet":
                sample = args[0] if args else kwargs["sample"]
                self.time.unet_rows += int(sample.shape[0])
                self.last_unet_call = (args, kwargs)  # replayed under the FLOP counter afterwards
            return out

        setattr(module, method, timed)
        self._installed.append((module, method, own))


def unet_flops_per_row(unet: Any, call: tuple[tuple[Any, ...], dict[str, Any]]) -> float:
    """FLOPs of one UNet row (one image, one branch of guidance), counted over a replay of ``call``.

    ``torch.utils.flop_counter`` counts matrix products, convolutions and attention (2 FLOPs per
    multiply-add); norms and activations are left out, as in every published FLOP figure. A UNet's
    FLOPs grow linearly with its batch rows, so FLOPs per row times rows gives any batch's.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def cpu_attention(query: Any, key: Any, value: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
        return sdpa_flop_count(query, key, value)

    # The CPU's fused attention kernel is not in the counter's table (torch 2.13); the GPU kernels are.
    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: cpu_attention}
    args, kwargs = call
    rows = int((args[0] if args else kwargs["sample"]).shape[0])
    with torch.inference_mode(), FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        type(unet).forward(unet, *args, **kwargs)  # the class's forward: not a torch.compile'd one
    return counter.get_total_flops() / rows


@dataclass
class MatmulCeiling:
    tflops: float  # median over the samples
    n: int  # square matrices n x n
    dtype: str
    samples_tflops: list[float]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "tflops": round(self.tflops, 4),
                "samples_tflops": [round(s, 4) for s in self.samples_tflops]}


def matmul_ceiling(device: Any, dtype: Any, sync: Callable[[], None]) -> MatmulCeiling:
    """What this device reaches on a large square matrix product in the run's dtype: the practical
    ceiling the model's achieved FLOP rate is compared with (median of several timed samples)."""
    import torch

    cuda = torch.device(device).type == "cuda"
    # Large enough to run at the device's matrix-product rate, small enough to take well under a second.
    n, per_sample, samples = (8192, 20, 7) if cuda else (1024, 3, 7)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device, dtype)
    b = torch.randn(n, n, generator=gen).to(device, dtype)
    out = torch.empty_like(a)
    for _ in range(2):
        torch.mm(a, b, out=out)
    rates = []
    for _ in range(samples):
        sync()
        start = time.perf_counter()
        for _ in range(per_sample):
            torch.mm(a, b, out=out)
        sync()
        rates.append(2 * n**3 * per_sample / (time.perf_counter() - start) / 1e12)
    del a, b, out
    return MatmulCeiling(statistics.median(rates), n, str(dtype).removeprefix("torch."), rates)


def reset_peak_memory(device: Any) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: Any) -> tuple[int, str]:
    """Peak memory in bytes and what the number is: GPU memory allocated since the last reset, or, on
    the CPU, the process's peak resident memory (which cannot be reset, so the model build counts)."""
    import torch

    if torch.device(device).type == "cuda":
        return int(torch.cuda.max_memory_allocated(device)), "torch.cuda.max_memory_allocated during the timed run"
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return int(peak), "ru_maxrss: the process's peak resident memory, model build included"


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: Any) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"platform": platform.platform(), "cpu": cpu_model(), "cpu_count": os.cpu_count(),
                            "torch_threads": torch.get_num_threads(), "device": str(device), "gpu": None}
    if torch.device(device).type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu"] = props.name
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
    return info


def versions() -> dict[str, Any]:
    import diffusers
    import torch
    import transformers

    from ..versions import TOOL_VERSION

    return {"idcli": TOOL_VERSION, "python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.version.cuda, "diffusers": diffusers.__version__, "transformers": transformers.__version__}


# torch's SDPBackend names, as the issue and docs say them.
_SDPA_NAMES = {"FLASH_ATTENTION": "flash", "EFFICIENT_ATTENTION": "efficient", "CUDNN_ATTENTION": "cudnn",
               "MATH": "math", "OVERRIDEABLE": "overrideable", "ERROR": "none"}


def sdpa_backends(unet: Any, call: tuple[tuple[Any, ...], dict[str, Any]], vae: Any,
                  latent_shape: tuple[int, ...]) -> list[dict[str, Any]]:
    """Which fused attention kernel torch picks for each distinct attention call of the model on this device and
    dtype: ``torch._fused_sdp_choice`` (the choice ``scaled_dot_product_attention`` dispatches on) asked with the
    very query, key, value and mask of each call, seen over a replay of the UNet ``call`` and a VAE decode of one
    latent of ``latent_shape`` (its mid-block attends over every latent position, with one wide head).
    """
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend
    from torch.overrides import TorchFunctionMode

    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    component = "unet"

    class Watch(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            if func is F.scaled_dot_product_attention:
                query, key, value = args[:3]
                mask = args[3] if len(args) > 3 else kwargs.get("attn_mask")
                shape = (component, tuple(query.shape), tuple(key.shape), str(query.dtype), mask is not None)
                if shape not in seen:
                    choice = torch._fused_sdp_choice(query, key, value, attn_mask=mask,
                                                     dropout_p=kwargs.get("dropout_p", 0.0),
                                                     is_causal=kwargs.get("is_causal", False))
                    seen[shape] = {"component": component, "query": list(query.shape), "key": list(key.shape),
                                   "dtype": str(query.dtype).removeprefix("torch."), "mask": mask is not None,
                                   "calls": 0, "backend": _SDPA_NAMES.get(SDPBackend(choice).name, str(choice))}
                seen[shape]["calls"] += 1
            return func(*args, **kwargs)

    args, kwargs = call
    with torch.inference_mode(), Watch():
        type(unet).forward(unet, *args, **kwargs)  # the class's forward: not a torch.compile'd one
        component = "vae"
        latent = torch.randn(latent_shape, generator=torch.Generator().manual_seed(0)).to(vae.device, vae.dtype)
        vae.decode(latent, return_dict=False)
    return list(seen.values())
