"""Model presets: what each name means, its defaults, and the random-weight configs (tiny and bench).

Plain data, no torch: the planner needs a preset's identity and defaults without loading anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

# The tiny presets are built from these configs with this seed; both are part of the model identity.
TINY_INIT_SEED = 0
TINY_VOCAB_WORDS = 2048  # word-level BPE merges learnt from the bundled word list (see tokenizer.py)


@dataclass(frozen=True)
class Preset:
    name: str
    architecture: str  # "sd" or "sdxl"
    default_id: str | None  # hub repo id for real presets; None for built-in random weights
    size: tuple[int, int]
    steps: int
    guidance: float
    sampler: str
    random_weights: bool
    components: dict[str, Any] = field(default_factory=dict)  # random-weight presets only
    # IP-Adapter FaceID: (hub id, weight file) for real presets; None for tiny presets, which build a
    # random-weight adapter with the published key layout (see engine/faceid_layout.py).
    faceid: tuple[str, str] | None = None
    # IP-Adapter FaceID-Plus v2 (docs/identity.md): (hub id, weight file) of the adapter, and (hub id,
    # subfolder) of the CLIP ViT-H image encoder whose face-crop features it reads. Real presets only.
    faceid_plusv2: tuple[str, str] | None = None
    image_encoder: tuple[str, str] | None = None
    # How random weights are drawn: "torch" runs every module's own initialisation (the tiny presets);
    # "fan-in" creates parameters on the meta device and draws each once (see engine/build.py), which
    # builds a billion-parameter model in seconds. Part of the model identity when not "torch".
    weight_init: str = "torch"


_TINY_CLIP = {
    "hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
    "max_position_embeddings": 77, "layer_norm_eps": 1e-5, "hidden_act": "quick_gelu",
}
_TINY_VAE = {
    "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 1,
    "block_out_channels": [16, 32, 32, 32], "norm_num_groups": 8,
    "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
    "sample_size": 256,
}
_SCHEDULER = {
    "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "prediction_type": "epsilon", "steps_offset": 1,
    "clip_sample": False, "set_alpha_to_one": False, "timestep_spacing": "leading",
}



# CLIP image encoders of the random FaceID-Plus v2 adapters (transformers CLIPVisionConfig fields; docs/identity.md).
# The published ViT-H/14 geometry (224-px input, 14-px patches: 256 patch tokens and a class token) at a
# tiny width for the tiny presets; the published ViT-H/14 (laion2B, as h94/IP-Adapter ships it) for bench.
# Kept apart from ``components``, which name the model: FaceID runs of these presets keep their keys.
_TINY_IMAGE_ENCODER = {
    "hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
    "image_size": 224, "patch_size": 14, "projection_dim": 32, "hidden_act": "gelu", "layer_norm_eps": 1e-5,
}
_VIT_H_14 = {
    "hidden_size": 1280, "intermediate_size": 5120, "num_attention_heads": 16, "num_hidden_layers": 32,
    "image_size": 224, "patch_size": 14, "projection_dim": 1024, "hidden_act": "gelu", "layer_norm_eps": 1e-5,
}
RANDOM_IMAGE_ENCODERS: dict[str, dict[str, Any]] = {
    "tiny-sd": _TINY_IMAGE_ENCODER, "tiny-sdxl": _TINY_IMAGE_ENCODER,
    "bench-sd15": _VIT_H_14, "bench-sdxl": _VIT_H_14,
}


def published_architecture(name: str) -> dict[str, Any]:
    """The component configs of a published model, shipped as ``idcli/data/arch/NAME.json``.

    Keys starting with '_' are notes (sources, caveats) and are dropped, at every level.
    """
    data = json.loads(resources.files("idcli").joinpath("data", "arch", f"{name}.json").read_text("utf-8"))
    return {component: {k: v for k, v in config.items() if not k.startswith("_")}
            for component, config in data.items() if not component.startswith("_")}


PRESETS: dict[str, Preset] = {
    "tiny-sd": Preset(
        name="tiny-sd", architecture="sd", default_id=None, size=(256, 256), steps=12, guidance=5.0,
        sampler="dpmpp-2m", random_weights=True,
        components={
            "unet": {
                "sample_size": 32, "in_channels": 4, "out_channels": 4, "layers_per_block": 1,
                "block_out_channels": [32, 64], "norm_num_groups": 8, "cross_attention_dim": 32,
                "attention_head_dim": 8,
                "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
                "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
            },
            "vae": {**_TINY_VAE, "scaling_factor": 0.18215},
            "text_encoder": _TINY_CLIP,
            "scheduler": _SCHEDULER,
        },
    ),
    "tiny-sdxl": Preset(
        name="tiny-sdxl", architecture="sdxl", default_id=None, size=(256, 256), steps=12, guidance=5.0,
        sampler="dpmpp-2m", random_weights=True,
        components={
            "unet": {
                "sample_size": 32, "in_channels": 4, "out_channels": 4, "layers_per_block": 1,
                "block_out_channels": [32, 64], "norm_num_groups": 8,
                "attention_head_dim": [2, 4], "use_linear_projection": True,
                "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
                "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
                "transformer_layers_per_block": [1, 2],
                # SDXL conditioning: both encoders' hidden states concatenated (32 + 32) and the
                # pooled text embedding (32) plus six size/crop numbers (6 x 8) as added embeddings.
                "cross_attention_dim": 64, "addition_embed_type": "text_time",
                "addition_time_embed_dim": 8, "projection_class_embeddings_input_dim": 80,
            },
            "vae": {**_TINY_VAE, "scaling_factor": 0.13025},
            "text_encoder": _TINY_CLIP,
            "text_encoder_2": {**_TINY_CLIP, "projection_dim": 32},
            "scheduler": _SCHEDULER,
        },
    ),
    # Real-size architectures with random weights, for `idcli bench`: the published SD1.5 and SDXL
    # configs, FaceID adapter included (random, in the published layout), and no download.
    "bench-sd15": Preset(
        name="bench-sd15", architecture="sd", default_id=None, size=(512, 512), steps=25, guidance=7.0,
        sampler="dpmpp-2m", random_weights=True, components=published_architecture("sd15"), weight_init="fan-in",
    ),
    "bench-sdxl": Preset(
        name="bench-sdxl", architecture="sdxl", default_id=None, size=(1024, 1024), steps=30, guidance=6.0,
        sampler="dpmpp-2m", random_weights=True, components=published_architecture("sdxl"), weight_init="fan-in",
    ),
    "sd15": Preset(
        name="sd15", architecture="sd", default_id="stable-diffusion-v1-5/stable-diffusion-v1-5",
        size=(512, 512), steps=25, guidance=7.0, sampler="dpmpp-2m", random_weights=False,
        faceid=("h94/IP-Adapter-FaceID", "ip-adapter-faceid_sd15.bin"),
        faceid_plusv2=("h94/IP-Adapter-FaceID", "ip-adapter-faceid-plusv2_sd15.bin"),
        image_encoder=("h94/IP-Adapter", "models/image_encoder"),
    ),
    "sdxl": Preset(
        name="sdxl", architecture="sdxl", default_id="stabilityai/stable-diffusion-xl-base-1.0",
        size=(1024, 1024), steps=30, guidance=6.0, sampler="dpmpp-2m", random_weights=False,
        faceid=("h94/IP-Adapter-FaceID", "ip-adapter-faceid_sdxl.bin"),
        faceid_plusv2=("h94/IP-Adapter-FaceID", "ip-adapter-faceid-plusv2_sdxl.bin"),
        image_encoder=("h94/IP-Adapter", "models/image_encoder"),
    ),
}


def get_preset(name: str) -> Preset:
    from .errors import InputError
    from .option_words import Option
    from .suggest import did_you_mean

    try:
        return PRESETS[name]
    except KeyError:
        # A shot list's model.preset is checked where it is read: an unknown name here is the override's
        # (--preset, preset=), named as its caller gave it.
        from .arguments import EMPTY_VALUE

        hint = did_you_mean(name, PRESETS)
        what = f": {EMPTY_VALUE}; give a preset" if name == "" else ": no such preset"
        raise InputError(Option("preset", name), what + (f"; {hint}" if hint else "")
                         + f" (allowed: {', '.join(PRESETS)})", field="preset") from None
