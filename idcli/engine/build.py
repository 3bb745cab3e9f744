"""Getting a diffusers pipeline: built from tiny random-weight configs, or loaded from the hub or disk.

The only place that constructs pipelines. Real presets go through ``from_pretrained`` exactly as a
user's own script would (hub id or local folder, safetensors only unless pickles are allowed),
so the code path tested on a saved tiny pipeline is the one that loads real weights.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import ModelUnavailableError
from ..models import ModelIdentity
from ..presets import PRESETS, TINY_INIT_SEED


def _quiet_transformers() -> None:
    # transformers warns at import about optional torchvision image processors we never use.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()


def build_tiny_pipeline(preset_name: str) -> Any:
    """Random-weight pipeline from the preset's configs; identical weights on every call."""
    _quiet_transformers()
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from .tokenizer import build_tiny_tokenizer

    preset = PRESETS[preset_name]
    cfg = preset.components
    tokenizer = build_tiny_tokenizer(cfg["text_encoder"]["max_position_embeddings"])
    special = {"vocab_size": len(tokenizer), "bos_token_id": tokenizer.bos_token_id,
               "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id}
    # A private RNG stream: building a preset must neither depend on nor disturb the caller's seeds.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_INIT_SEED)
        unet = UNet2DConditionModel(**cfg["unet"])
        vae = AutoencoderKL(**cfg["vae"])
        text_encoder = CLIPTextModel(CLIPTextConfig(**cfg["text_encoder"], **special))
        text_encoder_2 = None
        if preset.architecture == "sdxl":
            text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**cfg["text_encoder_2"], **special))
    scheduler = DDIMScheduler(**cfg["scheduler"])
    for module in (unet, vae, text_encoder, text_encoder_2):
        if module is not None:
            module.eval()
    if preset.architecture == "sdxl":
        return StableDiffusionXLPipeline(
            vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=tokenizer,
            tokenizer_2=build_tiny_tokenizer(cfg["text_encoder"]["max_position_embeddings"]),
            unet=unet, scheduler=scheduler, force_zeros_for_empty_prompt=True)
    return StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def _how_to_get(identity: ModelIdentity) -> str:
    if identity.source == "local":
        return (f"the folder '{identity.id}' is not a complete diffusers model (model_index.json, "
                "unet/, vae/, text_encoder/ ... with .safetensors weights)")
    return (f"download it once on a machine with network access (huggingface-cli download {identity.id}), "
            "then copy the Hugging Face cache here, or point model.id at a local diffusers folder; "
            "HF_HUB_OFFLINE=1 forbids network access")


def load_pretrained_pipeline(identity: ModelIdentity, torch_dtype: Any) -> Any:
    """``from_pretrained`` for the real presets, with errors that say how to get the model."""
    _quiet_transformers()
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    cls = StableDiffusionXLPipeline if identity.architecture == "sdxl" else StableDiffusionPipeline
    source = identity.id
    assert source is not None
    # With pickles allowed, None lets diffusers prefer .safetensors and fall back to weights-only torch.load.
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "use_safetensors": None if identity.allow_pickle else True}
    if identity.source == "hub":
        kwargs["revision"] = identity.revision
    if identity.architecture == "sd":
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    try:
        pipe = cls.from_pretrained(source, **kwargs)
    except (OSError, ValueError, EnvironmentError) as exc:  # noqa: UP024 - hub errors subclass OSError
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "safetensors" in text.lower() and not identity.allow_pickle:
            text += ("; only .safetensors weights are loaded by default — set model.allow_pickle: true "
                     "to load pickle checkpoints (weights only)")
        raise ModelUnavailableError(
            f"cannot load model '{source}' for preset '{identity.preset}': {text}. "
            f"To fix: {_how_to_get(identity)}") from None
    return pipe


def build_pipeline(identity: ModelIdentity, torch_dtype: Any) -> Any:
    if identity.source == "builtin":
        return build_tiny_pipeline(identity.preset)
    return load_pretrained_pipeline(identity, torch_dtype)
