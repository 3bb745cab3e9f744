"""IP-Adapter FaceID-Plus v2: random test checkpoints and image encoders, loading, and CLIP face features.

FaceID-Plus v2 (h94/IP-Adapter-FaceID, ``ip-adapter-faceid-plusv2_sd15.bin`` / ``_sdxl.bin``) makes its four
identity tokens from the ArcFace embedding (an MLP, as FaceID) refined by a perceiver resampler that
reads the CLIP ViT-H image encoder's penultimate hidden states of the 224-px aligned face crop; v2 adds
the MLP tokens back as a shortcut: ``tokens = id + shortcut_scale * resampler(id, clip)``
(diffusers' ``IPAdapterFaceIDPlusImageProjection``). Everything after the projection is FaceID's: the
same decoupled cross-attention keys (``ip_adapter.{k}.to_k_ip`` / ``to_v_ip``), the same LoRA, so the
row-scaled processors and the per-row LoRA of engine/faceid.py serve both variants unchanged.

* ``write_random_plusv2_adapter`` / ``write_random_image_encoder``: random weights in the published
  layouts (the checkpoint's ``image_proj.perceiver_resampler.*`` keys as the original ``ProjPlusModel``
  names them; a transformers ``CLIPVisionModelWithProjection`` folder), so tests load them through the
  same code as the published files;
* ``load_plusv2_adapter``: the checkpoint read by us (its LoRA goes to our processors, as for FaceID),
  handed to diffusers' ``load_ip_adapter`` as a state dict, the projection switched to v2's shortcut;
* ``load_image_encoder`` and ``crop_features``: the CLIP features of face crops, as diffusers'
  ``encode_image(..., output_hidden_states=True)`` computes them (``hidden_states[-2]`` of the crops
  prepared by ``CLIPImageProcessor``), float32 on the CPU so the cached features are the same on any
  machine;
* ``set_clip_rows``: one row of CLIP features per UNet row, set on the projection before a forward;
  ``clip_tokens``: how many tokens a batch's features have (two zero tokens in a batch without identities).

Why the image encoder is not handed to ``load_ip_adapter(image_encoder_folder=...)`` in the engine:
diffusers refuses an image encoder folder when the checkpoint arrives as a state dict (which it must,
to keep the LoRA out of ``peft``), and the features are computed once per identity and cached
(idcli/identity/clip_features.py), so the 2.5 GB encoder never sits in GPU memory while rendering. It
is loaded with the same ``CLIPVisionModelWithProjection.from_pretrained(source, subfolder=...)`` call
``load_ip_adapter`` makes; the tests load the same files through ``load_ip_adapter`` with
``image_encoder_folder`` in diffusers' stock pipeline and get the same image.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..adapter_layout import RESAMPLER, plusv2_layout_problem
from ..errors import ModelUnavailableError
from ..library_quiet import quiet_model_loading
from ..render_request import RenderRequest
from ..torch_defaults import torch_defaults
from .faceid import FaceIDState
from .faceid_layout import RANDOM_INIT_STD, canonical_safetensors, faceid_adapter_shapes, faceid_lora_shapes
from .faceid_loading import describe_error, load_adapter_checkpoint

PLUS_DEPTH = 4  # perceiver blocks: the published checkpoints' and the depth diffusers' loader assumes
PLUS_DIM_HEAD = 64  # diffusers' loader derives the heads as to_q rows // 64
PLUS_FF_MULT = 4
CLIP_HIDDEN_LAYER = -2  # the penultimate hidden states, as diffusers' encode_image(output_hidden_states=True)


# -- checkpoint layout --------------------------------------------------------------------------------


def plus_heads(cross_attention_dim: int) -> int:
    """The resampler's attention heads: cad // 64 as published (12 on SD1.5, 32 on SDXL), at least one."""
    return max(1, cross_attention_dim // PLUS_DIM_HEAD)


def plusv2_adapter_shapes(unet: Any, clip_hidden: int) -> dict[str, tuple[int, ...]]:
    """Every key of a FaceID-Plus v2 checkpoint for this UNet and CLIP width, with its shape (published layout)."""
    cad = int(unet.config.cross_attention_dim)
    inner = PLUS_DIM_HEAD * plus_heads(cad)
    # FaceID's own keys (the ID projection and every layer's to_k_ip/to_v_ip), with the perceiver
    # resampler's between them, in the order the published checkpoints list them.
    faceid = faceid_adapter_shapes(unet)
    shapes = {key: shape for key, shape in faceid.items() if key.startswith("image_proj.")}
    r = f"image_proj.{RESAMPLER}"
    shapes.update({f"{r}proj_in.weight": (cad, clip_hidden), f"{r}proj_in.bias": (cad,),
                   f"{r}proj_out.weight": (cad, cad), f"{r}proj_out.bias": (cad,),
                   f"{r}norm_out.weight": (cad,), f"{r}norm_out.bias": (cad,)})
    for i in range(PLUS_DEPTH):
        layer = f"{r}layers.{i}."
        for norm in ("0.norm1", "0.norm2", "1.0"):  # PerceiverAttention's two norms, the FeedForward's first
            shapes[f"{layer}{norm}.weight"] = (cad,)
            shapes[f"{layer}{norm}.bias"] = (cad,)
        shapes[f"{layer}0.to_q.weight"] = (inner, cad)
        shapes[f"{layer}0.to_kv.weight"] = (2 * inner, cad)
        shapes[f"{layer}0.to_out.weight"] = (cad, inner)
        shapes[f"{layer}1.1.weight"] = (PLUS_FF_MULT * cad, cad)
        shapes[f"{layer}1.3.weight"] = (cad, PLUS_FF_MULT * cad)
    shapes.update((key, shape) for key, shape in faceid.items() if key.startswith("ip_adapter."))
    return shapes


def _is_norm_weight(key: str) -> bool:
    return key.endswith(("norm.weight", "norm1.weight", "norm2.weight", "norm_out.weight", ".1.0.weight"))


def write_random_plusv2_adapter(unet: Any, path: Path, clip_hidden: int, seed: int = 0, lora: bool = True) -> Path:
    """Write a random-weight FaceID-Plus v2 checkpoint (safetensors, published key layout) for ``unet``.

    Deterministic for a seed, from a private generator; written atomically. ``lora`` adds a LoRA in the
    published layout (engine/faceid_layout.py), drawn after the adapter weights.
    """
    from safetensors.torch import save

    from ..safeio import atomic_write, remove_dead_temporaries

    path = Path(path)
    generator = torch.Generator("cpu").manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    for key, shape in plusv2_adapter_shapes(unet, clip_hidden).items():
        # The resampler's matrices at unit gain (std fan_in^-1/2), so that the CLIP features visibly move the
        # identity tokens; its LayerNorms keep them bounded in half precision. The rest small, as FaceID's.
        resampler = RESAMPLER in key and len(shape) == 2
        std = shape[1] ** -0.5 if resampler else RANDOM_INIT_STD
        noise = torch.randn(shape, dtype=torch.float32, generator=generator) * std
        tensors[key] = (noise + 1.0 if _is_norm_weight(key) else noise).contiguous()
    if lora:
        for key, shape in faceid_lora_shapes(unet).items():
            std = shape[1] ** -0.5 if key.endswith(".down.weight") else RANDOM_INIT_STD
            tensors[key] = (torch.randn(shape, dtype=torch.float32, generator=generator) * std).contiguous()
    metadata = {"format": "pt", "idcli.kind": "ip-adapter-faceid-plusv2", "idcli.random_weights": "true",
                "idcli.seed": str(seed), "idcli.note": "random weights for tests, not a trained adapter",
                "idcli.cross_attention_dim": str(unet.config.cross_attention_dim),
                "idcli.clip_hidden_size": str(clip_hidden)}
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(path.parent)
    atomic_write(path, canonical_safetensors(save(tensors, metadata=metadata)))
    return path


@quiet_model_loading()
@torch_defaults
def write_random_image_encoder(folder: Path, config: dict[str, Any], seed: int = 0) -> Path:
    """A random-weight ``CLIPVisionModelWithProjection`` saved as a transformers folder (config.json and
    model.safetensors), built in a private RNG stream and moved into place whole."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from ..safeio import remove_dead_temporaries, temporary_path
    from .private_rng import private_generator

    folder = Path(folder)
    if (folder / "config.json").is_file():
        return folder
    with private_generator(seed):
        model = CLIPVisionModelWithProjection(CLIPVisionConfig(**config))
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(folder.parent, earlier_home_names=True)  # a first use killed mid-save left it here
    partial = temporary_path(folder)  # atomic_write's naming: the same liveness rule judges it
    try:
        model.save_pretrained(partial, safe_serialization=True)
        with contextlib.suppress(OSError):  # another process finished first: its folder is the same
            os.replace(partial, folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def random_image_encoder_folder(adapter: Any) -> Path:
    """Where a random-weight preset's image encoder lives (written on first use)."""
    from ..adapters import RANDOM_ADAPTER_SEED
    from ..paths import state_dir
    from ..presets import RANDOM_IMAGE_ENCODERS

    preset = adapter.id.removeprefix("builtin:")
    folder = state_dir() / "adapters" / preset / adapter.image_encoder.subfolder
    return write_random_image_encoder(folder, RANDOM_IMAGE_ENCODERS[preset], seed=RANDOM_ADAPTER_SEED)


# -- checkpoint checks and loading -------------------------------------------------------------------------


def check_plusv2_layout(state: dict[str, dict[str, torch.Tensor]], file: Path | str) -> None:
    """Refuse a checkpoint whose projection is not FaceID-Plus's, naming the file and what it holds."""
    problem = plusv2_layout_problem({key: tuple(value.shape) for key, value in state["image_proj"].items()}, file)
    if problem:
        raise ModelUnavailableError(problem)


def load_plusv2_adapter(pipe: Any, source: str, weight_name: str, subfolder: str = "", *,
                        allow_pickle: bool = False, shortcut_scale: float = 1.0, state: FaceIDState | None = None,
                        **load_kwargs: Any) -> tuple[FaceIDState, Any]:
    """Load a FaceID-Plus v2 checkpoint with its LoRA applied per row; returns the processors' shared state
    and the projection (``IPAdapterFaceIDPlusImageProjection``, shortcut on at ``shortcut_scale``).

    As ``load_faceid_adapter``: ``source`` is a folder or hub id, only ``.safetensors`` unless
    ``allow_pickle`` (then weights-only), the state dict goes to ``load_ip_adapter`` without its LoRA.
    """
    from diffusers.models.embeddings import IPAdapterFaceIDPlusImageProjection

    state, projection = load_adapter_checkpoint(
        pipe, source, weight_name, subfolder, allow_pickle=allow_pickle, state=state, label="FaceID-Plus v2",
        check_layout=check_plusv2_layout, projection_class=IPAdapterFaceIDPlusImageProjection,
        lookup_hint=". To fix: `idcli models fetch PRESET --variant faceid-plusv2`, or point model.adapter at a "
                    "folder holding the file", **load_kwargs)
    projection.shortcut = True  # v2 (diffusers' docs: "set to True if using IP-Adapter FaceID Plus v2")
    projection.shortcut_scale = float(shortcut_scale)
    return state, projection


# CLIP vision widths by name, for errors (h94/IP-Adapter: models/image_encoder is ViT-H, sdxl_models/ ViT-bigG).
CLIP_WIDTHS = {1024: "ViT-L", 1280: "ViT-H", 1664: "ViT-bigG"}


def check_encoder_width(projection: Any, encoder: Any, weight_name: str) -> None:
    """Refuse an image encoder whose features are not as wide as the adapter reads, before any job runs.

    h94/IP-Adapter holds two encoders; SDXL users take sdxl_models/image_encoder (ViT-bigG, 1664 wide) for the
    SDXL Plus v2 file, which was trained with ViT-H (1280) as the SD1.5 one was. Every job then failed on its own
    with "CLIP features [1, 257, 1664], the adapter reads [1, 257, 1280]". ``encoder`` is an
    ``adapters.ImageEncoderIdentity``; one whose config.json is not at hand here is left to that check."""
    from ..models import read_model_json

    config: Path | None = None
    if encoder.source == "local":
        config = Path(encoder.id) / "config.json"
    elif encoder.source == "hub":
        from huggingface_hub import try_to_load_from_cache

        name = f"{encoder.subfolder.strip('/')}/config.json" if encoder.subfolder.strip("/") else "config.json"
        found = try_to_load_from_cache(encoder.id, name, revision=encoder.revision)
        config = Path(found) if isinstance(found, str) else None
    try:
        hidden = read_model_json(config).get("hidden_size") if config is not None else None
    except (OSError, ValueError, AttributeError):
        return
    width = clip_width(projection)
    if not isinstance(hidden, int) or hidden == width:
        return

    def named(size: int) -> str:
        return f"{size} ({CLIP_WIDTHS[size]})" if size in CLIP_WIDTHS else str(size)

    where = encoder.id + (f" (subfolder {encoder.subfolder})" if encoder.subfolder else "")
    raise ModelUnavailableError(
        f"the CLIP image encoder '{where}' gives features {named(hidden)} wide, but the FaceID-Plus v2 adapter "
        f"'{weight_name}' reads {named(width)}: Plus v2 was trained with ViT-H, h94/IP-Adapter's "
        "models/image_encoder, for SD1.5 and SDXL alike (its sdxl_models/image_encoder is ViT-bigG, for other SDXL "
        "adapters). To fix: point model.adapter.image_encoder at that folder (image_encoder_subfolder: "
        "models/image_encoder), or leave image_encoder out to use the preset's")


def clip_width(projection: Any) -> int:
    """The CLIP hidden size a loaded Plus projection reads."""
    return int(projection.proj_in.in_features)


# CLIP tokens of the zero features a batch without any identity gets (its rows are at strength 0, so the count
# changes no value). Not 1: torch.compile makes a size of 1 a constant, so such batches would need a graph of
# their own (engine/compiled.py).
NO_CLIP_TOKENS = 2


def clip_tokens(requests: list[RenderRequest]) -> int:
    """CLIP tokens per face crop in a batch's identities (257 for ViT-H/14 at 224 px); NO_CLIP_TOKENS with none."""
    for request in requests:
        for clip in [request.identity_clip, *(line.clip for line in request.lines)]:
            if clip is not None:
                return int(clip.shape[1])
    return NO_CLIP_TOKENS


def set_clip_rows(projection: Any, clip_rows: torch.Tensor) -> None:
    """Give the projection one set of CLIP features per UNet row: ``[rows, n, tokens, hidden]``, in the
    same row order and count ``n`` as the ArcFace embeddings of ``faceid_unet_kwargs``."""
    if clip_rows.ndim != 4 or clip_rows.shape[-1] != clip_width(projection):
        raise ValueError(f"CLIP features must be [rows, n, tokens, {clip_width(projection)}], "
                         f"got {list(clip_rows.shape)}")
    projection.clip_embeds = clip_rows


# -- the image encoder and face-crop features --------------------------------------------------------------


@quiet_model_loading()
@torch_defaults
def load_image_encoder(source: str, subfolder: str = "", *, revision: str | None = None,
                       allow_pickle: bool = False, preset: str | None = None) -> Any:
    """The CLIP image encoder (float32, CPU, eval) as ``load_ip_adapter(image_encoder_folder=...)`` loads it;
    a missing or damaged one is a ``ModelUnavailableError`` saying how to get it (``preset``: the run's, named in
    the `idcli models fetch` that gets its own encoder)."""
    from transformers import CLIPVisionModelWithProjection

    kwargs: dict[str, Any] = {"dtype": torch.float32, "use_safetensors": None if allow_pickle else True}
    if subfolder:
        kwargs["subfolder"] = subfolder
    if revision:
        kwargs["revision"] = revision
    from ..hub_reach import ask_before_download, offline_now, problem_in_chain

    if offline_now():  # as the environment says now: huggingface_hub read it once, at import
        kwargs["local_files_only"] = True

    where = f"'{source}'" + (f" (subfolder '{subfolder}')" if subfolder else "")
    # A hub encoder the cache lacks: asked once before transformers' download retries (idcli/hub_reach.py).
    problem = ask_before_download(source, f"{subfolder}/config.json" if subfolder else "config.json", revision)
    if problem is not None:
        raise ModelUnavailableError(problem.refusal(f"cannot load the CLIP image encoder {where}", uncached=True))
    try:
        encoder = CLIPVisionModelWithProjection.from_pretrained(source, **kwargs)
    except (OSError, ValueError, RuntimeError) as exc:
        problem = problem_in_chain(exc, source, revision)  # transformers' "Can't load the configuration" hides it
        if problem is not None:
            raise ModelUnavailableError(problem.refusal(f"cannot load the CLIP image encoder {where}")) from None
        folder = Path(source) / subfolder
        if not allow_pickle and (folder / "pytorch_model.bin").is_file() \
                and not (folder / "model.safetensors").is_file():
            raise ModelUnavailableError(
                f"cannot load the CLIP image encoder {where}: it has only pickled weights (pytorch_model.bin), and "
                "pickles are refused by default. To fix: set model.allow_pickle: true to load it (weights-only), or "
                "add its model.safetensors (h94/IP-Adapter publishes both; `idcli models fetch PRESET --variant "
                "faceid-plusv2` fetches that one)") from None
        if offline_now() and not Path(source).is_dir():
            # transformers' words ("We couldn't connect to 'https://huggingface.co'") for a file not in the cache,
            # where offline mode tried no connection
            from ..adapters import encoder_not_cached_offline

            raise ModelUnavailableError(encoder_not_cached_offline(source, subfolder, preset)) from None
        raise ModelUnavailableError(
            f"cannot load the CLIP image encoder {where} that FaceID-Plus v2 reads face crops with: "
            f"{describe_error(exc)}. To fix: `idcli models fetch PRESET --variant faceid-plusv2` (it fetches "
            "h94/IP-Adapter models/image_encoder), point model.adapter.image_encoder at a local folder with "
            "config.json and model.safetensors, or set model.adapter.variant: faceid") from None
    return encoder.eval()


@torch_defaults
def crop_features(encoder: Any, crops: np.ndarray) -> np.ndarray:
    """CLIP features of aligned face crops ``(k, s, s, 3)`` uint8: ``(k, tokens, hidden)`` float32, the
    encoder's penultimate hidden states of the crops prepared as diffusers prepares an IP-Adapter image
    (``CLIPImageProcessor`` at the encoder's image size)."""
    from PIL import Image

    try:  # transformers 5: the PIL implementation by name (what CLIPImageProcessor is without torchvision)
        from transformers import CLIPImageProcessorPil as Processor
    except ImportError:  # older transformers: the one implementation, PIL-based
        from transformers import CLIPImageProcessor as Processor

    # The same preparation on every machine, torchvision or not (the cached features must not depend on it);
    # a 224-px crop at size 224 is neither resized nor cropped, only rescaled and normalised.
    size = int(encoder.config.image_size)
    processor = Processor(size=size, crop_size=size)
    pixels = processor([Image.fromarray(np.ascontiguousarray(c)) for c in crops], return_tensors="pt").pixel_values
    dtype = next(encoder.parameters()).dtype
    with torch.inference_mode():
        hidden = encoder(pixels.to(dtype), output_hidden_states=True).hidden_states[CLIP_HIDDEN_LAYER]
    return hidden.float().cpu().numpy()
