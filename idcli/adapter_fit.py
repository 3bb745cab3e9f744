"""Whether an adapter file was made for the base model a shot list renders with, told before any work.

An IP-Adapter FaceID or FaceID-Plus file is made for one UNet width: its ``image_proj.norm.weight`` is as long as
the UNet's ``cross_attention_dim`` (768 for SD1.5, 2048 for SDXL). h94 publishes an ``_sd15`` and an ``_sdxl`` file
of each, side by side, and a user switching ``preset: sd15`` to ``sdxl`` keeps the old file name. The engine refuses
the pair once it has loaded the base model (engine/faceid_loading.check_base_model), which is after ``plan`` and
``validate`` said the shot list was fine and after every selfie was encoded. Here the same refusal, in the same
words, is made from the adapter's safetensors header and the base model's ``unet/config.json`` (a local folder, or a
hub snapshot already in the Hugging Face cache): nothing is loaded, hashed or downloaded. A pickle's shapes are not
read here (that would mean unpickling it): adapter_pickle.py reads those of one the shot list allows. No torch here.
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


def model_cross_attention_dim(model: ModelIdentity) -> int | None:
    """The base model's UNet ``cross_attention_dim`` from its ``unet/config.json``: a local folder's, or a hub
    snapshot's already in the Hugging Face cache (never downloaded); None when it is not at hand or says none (the
    render checks the loaded UNet)."""
    config: Path | None = None
    if model.source == "local" and model.id is not None:
        config = Path(model.id) / "unet" / "config.json"
    elif model.source == "hub" and model.id is not None:
        from .model_setup import cached_file

        config = cached_file(model.id, "unet/config.json", None, None if model.revision == "main" else model.revision)
    if config is None:
        return None
    try:
        value = json.loads(config.read_text("utf-8")).get("cross_attention_dim")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def check_adapter_fits(file: Path, model: ModelIdentity) -> None:
    """Refuse a ``.safetensors`` adapter made for another base model than ``model`` (an ``_sd15`` file with an SDXL
    base, or the reverse), naming both widths, as the render would after loading the base model."""
    made = adapter_made_for(file)
    if made is not None:
        check_width(made, file, model)


def check_shapes_fit(file: Path, shapes: Mapping[str, Sequence[int]], model: ModelIdentity) -> None:
    """``check_adapter_fits`` for an adapter's flat keys and shapes (an allowed pickle's, adapter_pickle.py)."""
    norm = shapes.get("image_proj.norm.weight")
    if norm is not None and len(norm) == 1:
        check_width(int(norm[0]), file, model)


def check_width(made: int, file: Path, model: ModelIdentity) -> None:
    wanted = model_cross_attention_dim(model)
    if wanted is not None and wanted != made:
        raise ModelUnavailableError(base_model_mismatch(made, wanted, file))
