"""Device and precision resolution. Imports torch only when a question needs it."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError
from .option_words import Option

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Runtime:
    device: str  # "cpu" or "cuda" (or "cuda:N")
    dtype: str  # "float32", "float16" or "bfloat16"
    compile: bool = False  # torch.compile the UNet (render/bench --compile; docs/performance.md)


def resolve_runtime(device: str = "auto", dtype: str = "auto") -> Runtime:
    """``auto`` picks CUDA when present, and bfloat16 there (float32 on the CPU, where half is slow)."""
    if device != "auto":
        # The name first, whatever this machine has: a typo (``cuda1``) is named one on a laptop without CUDA too,
        # not answered with "no CUDA device is available here".
        check_device_name(device)
    if device == "auto" or device.startswith("cuda"):
        import torch

        has_cuda = torch.cuda.is_available()
        if device == "auto":
            device = "cuda" if has_cuda else "cpu"
        elif not has_cuda:
            raise InputError(Option("device", device), ": no CUDA device is available here (use ",
                             Option("device", "cpu"), ")", field="device")
        else:
            _check_cuda_device(device, torch.cuda.device_count())
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    return Runtime(device, dtype)


def _check_cuda_device(device: str, count: int) -> None:
    """``cuda`` or ``cuda:N`` (a name check_device_name passed) with N one of this machine's devices: a device this
    machine lacks is refused here, before anything is planned, not by torch at the engine's first use (an internal
    error: ``Invalid device string``, ``invalid device ordinal``)."""
    index = device.removeprefix("cuda:") if device != "cuda" else "0"
    if int(index) >= count:
        names = ", ".join(f"cuda:{n}" for n in range(count))
        raise InputError(Option("device", device), f": this machine has {count} CUDA device{'s' if count != 1 else ''}"
                         f", {names} (or cuda)", field="device")


def check_device_name(device: str) -> None:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` as a name, whatever this machine has: a Ray run checks it before it
    connects (its workers' GPUs are the cluster's, not this machine's), where ``cuda1`` had passed as ``cuda``."""
    index = device.removeprefix("cuda:") if device.startswith("cuda:") else None
    if device not in DEVICES and not (index is not None and index.isascii() and index.isdigit()):
        raise InputError(Option("device", device), f": no such device (allowed: {', '.join(DEVICES)}, cuda:N)",
                         field="device")
