"""Whether an adapter file was made for the base model a shot list renders with, told before any work.

An IP-Adapter FaceID or FaceID-Plus file is made for one UNet width: its ``image_proj.norm.weight`` is as long as
the UNet's ``cross_attention_dim`` (768 for SD1.5, 2048 for SDXL). h94 publishes an ``_sd15`` and an ``_sdxl`` file
of each, side by side, and a user switching ``preset: sd15`` to ``sdxl`` keeps the old file name. The engine refuses
the pair once it has loaded the base model (engine/faceid_loading.check_base_model), which is after ``plan`` and
``validate`` said the shot list was fine and after every selfie was encoded. Here the same refusal, in the same
words, is made from the adapter's safetensors header and the base model's ``unet/config.json`` (a local folder, or a
hub snapshot already in the Hugging Face cache): nothing is loaded, hashed or downloaded. A pickle's shapes are not
read here (that would mean unpickling it): adapter_pickle.py reads those of one the shot list allows (an adapter's,
or a UNet's key names). No torch here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import ModelUnavailableError
from .models import ModelIdentity

# What the published adapters were made for, by the UNet's cross_attention_dim.
BASE_MODELS = {768: "SD1.5", 1024: "SD2", 2048: "SDXL"}


def base_model_mismatch(made: int, wanted: int, file: Path | str) -> str:
    """Why an adapter made for a UNet of width ``made`` does not fit one of width ``wanted``: the engine's words and
    plan's."""

    def named(dim: int) -> str:
        return f"{dim} ({BASE_MODELS[dim]})" if dim in BASE_MODELS else str(dim)

    return (f"'{file}' was made for a UNet with cross_attention_dim {named(made)}, but this model's is "
            f"{named(wanted)}: use the adapter made for this base model (ip-adapter-faceid…_sd15 files for SD1.5, "
            "…_sdxl files for SDXL)")


def adapter_made_for(file: Path) -> int | None:
    """The ``cross_attention_dim`` a ``.safetensors`` adapter was made for, from its header; None for a pickle, a file
    without ``image_proj.norm.weight`` or one that cannot be read (each refused elsewhere in its own words)."""
    if not file.name.endswith(".safetensors"):
        return None
    from .adapter_layout import safetensors_shapes

    try:
        norm = safetensors_shapes(file).get("image_proj.norm.weight")
    except (ValueError, OSError):
        return None
    return int(norm[0]) if norm is not None and len(norm) == 1 else None


def model_file(model: ModelIdentity, name: str) -> Path | None:
    """A file of the base model (``unet/config.json``): a local folder's, or a hub snapshot's already in the Hugging
    Face cache (never downloaded); None when it is not at hand."""
    if model.source == "local" and model.id is not None:
        return Path(model.id) / name
    if model.source == "hub" and model.id is not None:
        from .model_setup import cached_file

        return cached_file(model.id, name, None, None if model.revision == "main" else model.revision)
    return None


def model_cross_attention_dim(model: ModelIdentity) -> int | None:
    """The base model's UNet ``cross_attention_dim`` from its ``unet/config.json`` (model_file); None when it is not
    at hand or says none (the render checks the loaded UNet)."""
    config = model_file(model, "unet/config.json")
    if config is None:
        return None
    try:
        value = json.loads(config.read_text("utf-8")).get("cross_attention_dim")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def check_adapter_fits(file: Path, model: ModelIdentity, label: str = "FaceID") -> None:
    """Refuse a ``.safetensors`` adapter made for another base model than ``model`` (an ``_sd15`` file with an SDXL
    base, or the reverse), naming both widths, or lacking keys for some of its UNet's layers (a file cut short at
    its end), as the render would after loading the base model."""
    if not file.name.endswith(".safetensors"):
        return
    from .adapter_layout import safetensors_shapes

    try:
        shapes = safetensors_shapes(file)
    except (ValueError, OSError):
        return  # refused elsewhere in its own words
    check_shapes_fit(file, shapes, model, label)


def check_shapes_fit(file: Path, shapes: Mapping[str, Sequence[int]], model: ModelIdentity,
                     label: str = "FaceID") -> None:
    """``check_adapter_fits`` for an adapter's flat keys and shapes (a safetensors header's, or an allowed pickle's,
    adapter_pickle.py), keys in the training script's names (``adapter_modules.…``) read as the loader's."""
    from .adapter_layout import loader_shapes

    shapes = loader_shapes(shapes)
    norm = shapes.get("image_proj.norm.weight")
    if norm is not None and len(norm) == 1:
        check_width(int(norm[0]), file, model)
    layers = unet_attention_layers(model)
    if layers is not None:
        from .adapter_keys import incomplete_adapter

        problem = incomplete_adapter(file, shapes, label, attention_layers=layers[0], cross_layers=layers[1])
        if problem:
            raise ModelUnavailableError(problem)


# The base model's UNet weights as diffusers saves them: their key names tell its attention layers. A variant's
# sharded index is named as diffusers' _add_variant names it, the variant before the last suffix
# (``save_pretrained(variant="fp16")`` with shards: ``….safetensors.index.fp16.json``). The pickles
# (``save_pretrained(safe_serialization=False)``) only where the shot list allows them, after the safetensors files,
# as diffusers prefers those.
UNET_WEIGHTS = ("unet/diffusion_pytorch_model.safetensors.index.json", "unet/diffusion_pytorch_model.safetensors",
                "unet/diffusion_pytorch_model.fp16.safetensors",
                "unet/diffusion_pytorch_model.safetensors.index.fp16.json")
UNET_PICKLES = ("unet/diffusion_pytorch_model.bin.index.json", "unet/diffusion_pytorch_model.bin",
                "unet/diffusion_pytorch_model.fp16.bin", "unet/diffusion_pytorch_model.bin.index.fp16.json")


def unet_attention_layers(model: ModelIdentity) -> tuple[int, list[int]] | None:
    """How many attention layers the base model's UNet has, and the numbers of the adapter keys its cross-attention
    layers read (diffusers numbers them 1, 3, 5, …), counted from its weights' key names (a ``.safetensors`` header
    or a sharded file's index, an fp16 variant's too; with ``model.allow_pickle`` a pickle's record, memory-mapped:
    adapter_pickle.py; no weight read): each attention layer has one ``to_q.weight``, and diffusers gives adapter
    weights to every one but self-attention (``attn1``). None when no such file is at hand or readable."""
    names = _unet_weight_names(model)
    if names is None:
        return None
    attention = [name.removesuffix(".to_q.weight") for name in names if name.endswith(".to_q.weight")]
    if not attention:
        return None
    cross = [name for name in attention if not name.endswith("attn1") and "motion_modules" not in name]
    return len(attention), [1 + 2 * index for index in range(len(cross))]


def _unet_weight_names(model: ModelIdentity) -> list[str] | None:
    from .adapter_layout import safetensors_shapes

    for name in UNET_WEIGHTS + (UNET_PICKLES if model.allow_pickle else ()):
        path = model_file(model, name)
        if path is None or not path.is_file():
            continue
        try:
            if name.endswith(".json"):
                weight_map = json.loads(path.read_text("utf-8")).get("weight_map")
                return [str(key) for key in weight_map] if isinstance(weight_map, dict) else None
            if name.endswith(".bin"):
                from .adapter_pickle import pickled_weight_names

                return pickled_weight_names(path)
            return list(safetensors_shapes(path))
        except (OSError, ValueError, AttributeError, RecursionError):  # unreadable, too deep: the render counts
            return None
    return None


def check_width(made: int, file: Path, model: ModelIdentity) -> None:
    wanted = model_cross_attention_dim(model)
    if wanted is not None and wanted != made:
        raise ModelUnavailableError(base_model_mismatch(made, wanted, file))
