"""The sizes of a component's ``config.json`` plan will build to check its weights: the number of blocks, layers per
block, transformer layers per block and text-encoder layers, each bounded a little above what the published SD1.5, SD2
and SDXL models (and their fine-tunes and distillations, which keep or shrink the architecture) hold.

Plan builds each weighted component from its config on torch's meta device (model_weight_keys.py): no memory, but a
Python object for each module, so the time grows with the layer count: the tiny test UNet's config given
``layers_per_block: 300`` took plan's check 6.4-9.5 s, the SDXL UNet's with 50 6.5 s, where the published SDXL UNet
takes 0.2-0.4 s (2 shared cores); and the render would build it for real. The bounds below keep the largest UNet plan
builds near 3 s (docs/performance.md). Values that are not whole numbers are left to the libraries, which say what
is wrong.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import ModelUnavailableError

# field: (the most plan builds, the published values in words). Each entry of a list (or a list of lists) counts.
BOUNDS: dict[str, tuple[int, str]] = {
    "layers_per_block": (3, "2 (the SD1.5, SD2 and SDXL UNets and VAEs)"),
    "transformer_layers_per_block": (12, "1 to 10 (SD1.5 1, SDXL [1, 2, 10], the SDXL refiner 4)"),
    "reverse_transformer_layers_per_block": (12, "1 to 10 (SDXL distillations such as SSD-1B)"),
    "num_hidden_layers": (48, "12 to 32 (CLIP ViT-L 12, SD2's OpenCLIP ViT-H 23, SDXL's OpenCLIP ViT-bigG 32)"),
}
# fields whose length is the number of blocks
BLOCK_LISTS = ("down_block_types", "up_block_types", "block_out_channels")
MOST_BLOCKS = 5
PUBLISHED_BLOCKS = "3 or 4 (the SDXL UNet 3; the SD1.5 UNet, the SDXL refiner's and every VAE 4)"


def oversized_field(config: dict[str, Any]) -> str | None:
    """What in ``config`` is past the sizes plan builds, in words naming the field, its value, the published values
    and the bound; None when nothing is."""
    for field in BLOCK_LISTS:
        value = config.get(field)
        if isinstance(value, list) and len(value) > MOST_BLOCKS:
            return (f"{field} lists {len(value)} blocks, where the published models have {PUBLISHED_BLOCKS}; plan "
                    f"builds at most {MOST_BLOCKS}")
    for field, (most, published) in BOUNDS.items():
        largest = max(_whole_numbers(config.get(field)), default=0)
        if largest > most:
            return (f"{field} is {largest:,}, where the published models have {published}; plan builds at most "
                    f"{most}")
    return None


def refuse_oversized_config(folder: Path | str, part: Path) -> None:
    """Refuse (exit 4) a component whose ``config.json`` asks for more blocks or layers than plan builds, naming the
    file, the field, its value and the published values; a config that cannot be read is left to the libraries."""
    file = part / "config.json"
    try:
        # Read whole, whatever its size: the libraries read it whole next, and build what it asks for.
        config = json.loads(file.read_text("utf-8"))
    except (OSError, ValueError, RecursionError):
        return
    if not isinstance(config, dict):
        return
    try:
        problem = oversized_field(config)
    except RecursionError:  # lists nested past Python's depth: the libraries refuse such a config themselves
        return
    if problem is not None:
        raise ModelUnavailableError(
            f"cannot load model '{folder}': its '{file}' asks for more layers than any SD1.5 or SDXL model has: "
            f"{problem}. To fix: use the config.json the model was published with")


def _whole_numbers(value: Any) -> list[int]:
    """The whole numbers in ``value``: itself, or the entries of a list (of lists); nothing else counts."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, list):
        return [number for entry in value for number in _whole_numbers(entry)]
    return []


__all__ = ["oversized_field", "refuse_oversized_config"]
