"""IP-Adapter FaceID checkpoints' key layout, and random-weight checkpoints in it for tests.

``write_random_faceid_adapter`` writes a random-weight checkpoint with the published
h94/IP-Adapter-FaceID key layout, so tests exercise the same loading path (``faceid_loading``) as the
real file.

Key numbering (diffusers 0.42, loaders/unet.py ``_convert_ip_adapter_attn_to_diffusers``): the
cross-attention processors, taken in ``unet.attn_processors`` order, read ``ip_adapter.{k}.to_k_ip`` /
``.to_v_ip`` with k = 1, 3, 5, ... (``key_id = 1``, ``key_id += 2`` per cross-attention layer), which is
each attn2's position in the full processor list when every block has attn1 then attn2. The LoRA's keys
number every processor (self- and cross-attention alike: k = 0, 1, 2, ...).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..adapter_keys import LORA_PROJECTIONS

FACEID_EMBED_DIM = 512  # insightface ArcFace ``normed_embedding``
FACEID_HIDDEN_DIM = 1024  # the projection MLP's inner width in the published checkpoints (mult 2)
FACEID_NUM_TOKENS = 4  # identity tokens per face
RANDOM_INIT_STD = 0.02  # small: random adapters must keep bf16/fp16 activations finite
RANDOM_LORA_RANK = 4  # the published LoRA has rank 128; the key layout, not the rank, is what tests need


# -- checkpoint layout --------------------------------------------------------------------------------


def is_ip_layer(name: str) -> bool:
    """The processors diffusers gives IP-Adapter weights: every one but self-attention (and motion modules)."""
    return not name.endswith("attn1.processor") and "motion_modules" not in name


def _diffusers_hidden_size(unet: Any, name: str) -> int:
    """The hidden size diffusers derives from the block name when it builds the IP processors."""
    channels = list(unet.config.block_out_channels)
    if name.startswith("mid_block"):
        return channels[-1]
    if name.startswith("up_blocks"):
        return list(reversed(channels))[int(name[len("up_blocks.")])]
    if name.startswith("down_blocks"):
        return channels[int(name[len("down_blocks.")])]
    raise ValueError(f"cannot place attention processor '{name}' in a UNet block")


def faceid_layer_keys(unet: Any) -> list[tuple[int, str, int]]:
    """(key number, processor name, hidden size) for each layer that reads ``ip_adapter.{k}.*`` weights."""
    layers = []
    key_id = 1
    for name in unet.attn_processors:
        if not is_ip_layer(name):
            continue
        hidden = _diffusers_hidden_size(unet, name)
        module = unet.get_submodule(name.removesuffix(".processor"))
        inner = module.to_k.out_features
        if inner != hidden:
            raise ValueError(f"{name}: attention width {inner} differs from the block width {hidden} that "
                             "diffusers' IP-Adapter loader assumes")
        layers.append((key_id, name, hidden))
        key_id += 2
    return layers


def faceid_adapter_shapes(unet: Any) -> dict[str, tuple[int, ...]]:
    """Every key of a FaceID checkpoint for this UNet, with its shape (the published layout)."""
    cad = int(unet.config.cross_attention_dim)
    shapes: dict[str, tuple[int, ...]] = {
        "image_proj.proj.0.weight": (FACEID_HIDDEN_DIM, FACEID_EMBED_DIM),
        "image_proj.proj.0.bias": (FACEID_HIDDEN_DIM,),
        "image_proj.proj.2.weight": (FACEID_NUM_TOKENS * cad, FACEID_HIDDEN_DIM),
        "image_proj.proj.2.bias": (FACEID_NUM_TOKENS * cad,),
        "image_proj.norm.weight": (cad,),
        "image_proj.norm.bias": (cad,),
    }
    for key_id, _name, hidden in faceid_layer_keys(unet):
        shapes[f"ip_adapter.{key_id}.to_k_ip.weight"] = (hidden, cad)
        shapes[f"ip_adapter.{key_id}.to_v_ip.weight"] = (hidden, cad)
    return shapes


def lora_target(module: Any, projection: str) -> nn.Linear:
    """The linear layer a ``{projection}_lora`` adapts: ``to_out_lora`` adapts ``to_out[0]``."""
    return module.to_out[0] if projection == "to_out" else getattr(module, projection)


def faceid_lora_shapes(unet: Any, rank: int = RANDOM_LORA_RANK) -> dict[str, tuple[int, ...]]:
    """The published FaceID LoRA keys for ``unet`` with their shapes.

    diffusers 0.42 (loaders/unet.py ``_load_ip_adapter_loras``) numbers them by each processor's
    position in ``unet.attn_processors`` (self- and cross-attention alike: k = 0, 1, 2, ...).
    """
    shapes: dict[str, tuple[int, ...]] = {}
    for key_id, name in enumerate(unet.attn_processors):
        module = unet.get_submodule(name.removesuffix(".processor"))
        for projection in LORA_PROJECTIONS:
            linear = lora_target(module, projection)
            shapes[f"ip_adapter.{key_id}.{projection}_lora.down.weight"] = (rank, linear.in_features)
            shapes[f"ip_adapter.{key_id}.{projection}_lora.up.weight"] = (linear.out_features, rank)
    return shapes


def write_random_faceid_adapter(unet: Any, path: Path, seed: int = 0, dtype: Any = None,
                                lora: bool = True) -> Path:
    """Write a random-weight FaceID checkpoint (safetensors, published key layout) for ``unet``.

    Deterministic for a seed, drawn from a private RNG stream (the caller's RNG is untouched), written
    to a temporary file and renamed into place. The metadata says the weights are random. With
    ``lora`` (the default) it carries a LoRA in the published key layout, drawn after the adapter
    weights so those stay the same draws as in a file without one.
    """
    from safetensors.torch import save

    path = Path(path)
    dtype = dtype or torch.float32
    shapes = faceid_adapter_shapes(unet)
    tensors: dict[str, torch.Tensor] = {}
    generator = torch.Generator("cpu").manual_seed(seed)  # private: threads never share a stream
    for key, shape in shapes.items():  # insertion order is fixed, so the draws are too
        noise = torch.randn(shape, dtype=torch.float32, generator=generator) * RANDOM_INIT_STD
        if key == "image_proj.norm.weight":
            noise = noise + 1.0
        tensors[key] = noise.to(dtype).contiguous()
    if lora:
        for key, shape in faceid_lora_shapes(unet).items():
            # down: about unit variance into the rank space; up: small, so the LoRA moves each
            # projection by a few percent — visible in every test, finite in half precision.
            std = shape[1] ** -0.5 if key.endswith(".down.weight") else RANDOM_INIT_STD
            noise = torch.randn(shape, dtype=torch.float32, generator=generator) * std
            tensors[key] = noise.to(dtype).contiguous()
    metadata = {
        "format": "pt",
        "idcli.kind": "ip-adapter-faceid",
        "idcli.random_weights": "true",
        "idcli.seed": str(seed),
        "idcli.note": "random weights for tests, not a trained adapter",
        "idcli.cross_attention_dim": str(unet.config.cross_attention_dim),
    }
    data = canonical_safetensors(save(tensors, metadata=metadata))
    path.parent.mkdir(parents=True, exist_ok=True)
    from ..safeio import atomic_write, remove_dead_temporaries

    remove_dead_temporaries(path.parent)  # a first use killed mid-write left its temporary beside the adapter
    atomic_write(path, data)
    return path


def canonical_safetensors(data: bytes) -> bytes:
    """The same file with its JSON header in a fixed order.

    safetensors keeps the metadata in a Rust HashMap, so its keys come out in a different order from
    call to call; the tensor data offsets are relative to the end of the header and do not change.
    """
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    ordered = {"__metadata__": dict(sorted(header.pop("__metadata__", {}).items()))}
    ordered.update(sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]))
    text = json.dumps(ordered, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # safetensors pads the header to 8 bytes
    return len(text).to_bytes(8, "little") + text + data[8 + size:]
