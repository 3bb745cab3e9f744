"""IP-Adapter FaceID: random test checkpoints, loading through diffusers, and per-row identity strength.

Three pieces, kept apart from the denoising loop so the engine can wire them in:

* ``write_random_faceid_adapter`` writes a random-weight checkpoint with the published
  h94/IP-Adapter-FaceID key layout, so tests exercise the same loading path as the real file;
* ``load_faceid_adapter`` loads a checkpoint through ``pipe.load_ip_adapter`` (local folder or hub id)
  and swaps diffusers' IP-Adapter processors for ``RowScaledIPAdapterProcessor``;
* the checkpoint's LoRA (keys ``ip_adapter.{k}.to_q_lora.down.weight`` ... ``to_out_lora.up.weight``, k
  numbering every attention processor) is read by us, not by diffusers: ``load_faceid_adapter`` hands
  ``load_ip_adapter`` the state dict without it and gives each attention processor its LoRA, added
  per row with that row's identity strength (diffusers would merge it into the whole UNet through
  ``peft``, text-only rows included);
* ``faceid_unet_kwargs`` gives the UNet one identity embedding per batch row. The stock
  ``prepare_ip_adapter_image_embeds`` repeats the embeddings over the batch, so with several
  identities in one call every image attends to every face (diffusers issue 9813).

The processor adds the identity tokens' attention multiplied by a strength held in a
``FaceIDState`` shared by all processors of one UNet; the engine sets ``state.row_scale`` before each
UNet forward. A row with strength 0 gets exactly the text-only attention, so its output equals the
UNet's output without the adapter.

Key numbering (diffusers 0.42, loaders/unet.py ``_convert_ip_adapter_attn_to_diffusers``): the
cross-attention processors, taken in ``unet.attn_processors`` order, read ``ip_adapter.{k}.to_k_ip`` /
``.to_v_ip`` with k = 1, 3, 5, ... (``key_id = 1``, ``key_id += 2`` per cross-attention layer), which is
each attn2's position in the full processor list when every block has attn1 then attn2.
"""

from __future__ import annotations

import json
import math
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelUnavailableError

FACEID_EMBED_DIM = 512  # insightface ArcFace ``normed_embedding``
FACEID_HIDDEN_DIM = 1024  # the projection MLP's inner width in the published checkpoints (mult 2)
FACEID_NUM_TOKENS = 4  # identity tokens per face
RANDOM_INIT_STD = 0.02  # small: random adapters must keep bf16/fp16 activations finite
RANDOM_LORA_RANK = 4  # the published LoRA has rank 128; the key layout, not the rank, is what tests need
LORA_PROJECTIONS = ("to_q", "to_k", "to_v", "to_out")  # the published ``{k}.{proj}_lora.{down,up}.weight``


# -- checkpoint layout --------------------------------------------------------------------------------


def _is_ip_layer(name: str) -> bool:
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
        if not _is_ip_layer(name):
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


def _lora_target(module: Any, projection: str) -> nn.Linear:
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
            linear = _lora_target(module, projection)
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
    data = _canonical_safetensors(save(tensors, metadata=metadata))
    path.parent.mkdir(parents=True, exist_ok=True)
    from ..safeio import atomic_write, remove_dead_temporaries

    remove_dead_temporaries(path.parent)  # a first use killed mid-write left its temporary beside the adapter
    atomic_write(path, data)
    return path


def _canonical_safetensors(data: bytes) -> bytes:
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


# -- per-row strength ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedScale:
    """One ``row_scale`` and the multipliers made from it (``FaceIDState.prepare``)."""

    value: float | torch.Tensor
    active: bool  # some row has a non-zero strength
    scale: float | torch.Tensor  # the identity attention's multiplier (not a spatial mask)
    lora: float | torch.Tensor  # the LoRA's, per row
    grids: dict[int, torch.Tensor]  # a spatial mask's, per layer token count


class FaceIDState:
    """Identity strength shared by the FaceID processors of one UNet; set before each UNet forward.

    ``row_scale`` is one of:

    * a number: the same strength for every row (0 skips the identity attention altogether);
    * a tensor ``[batch]`` or ``[batch, 1, 1]``: one strength per row;
    * a tensor ``[batch, seq_len, 1]``: per row and token, for layers with exactly ``seq_len`` tokens;
    * a tensor ``[batch, 1, H, W]`` on the latent grid: a spatial mask, averaged down to each layer's grid.

    Rows of a tensor strength that are 0 get exactly the text-only attention output.

    The checkpoint's LoRA is scaled per row by ``lora_scale_for``: the row's strength, its largest
    value when the strength varies over tokens or pixels (the LoRA adapts whole projections, not
    regions), so a row at strength 0 everywhere stays text-only there too.

    Every multiplier the processors read is made when ``row_scale`` is set, on the device and in the dtype
    given to ``place`` (the engine's): nothing is computed, copied or cached while the UNet runs, so a
    ``torch.compile``'d UNet sees tensors whose values change from batch to batch, never Python state
    (idcli/engine/compiled.py).
    """

    def __init__(self, row_scale: float | torch.Tensor = 1.0) -> None:
        self._device: torch.device | None = None
        self._dtype: torch.dtype | None = None
        self.row_scale = row_scale
        # An AttentionProbe (engine/fusion.py) set for a forward whose text attention dual-line needs.
        self.probe: Any = None

    def place(self, device: Any, dtype: torch.dtype) -> None:
        """Make the multipliers on ``device`` in ``dtype`` (the UNet's) from now on, the current ones too."""
        self._device, self._dtype = torch.device(device), dtype
        self.row_scale = self._row_scale

    @property
    def row_scale(self) -> float | torch.Tensor:
        return self._row_scale

    @row_scale.setter
    def row_scale(self, value: float | torch.Tensor | PreparedScale) -> None:
        self.use(value if isinstance(value, PreparedScale) else self.prepare(value))

    def prepare(self, value: float | torch.Tensor) -> PreparedScale:
        """``value`` checked, with every multiplier the processors read made on the UNet's device and dtype.

        The engine prepares each set of rows its loop meets before the loop (``use`` then only assigns),
        so no strength is copied to the device between evaluations."""
        if isinstance(value, torch.Tensor):
            if value.ndim == 0:
                value = float(value)
            elif value.ndim == 1:
                value = value.reshape(-1, 1, 1)
            elif value.ndim == 4:
                if value.shape[1] != 1:
                    raise ValueError(f"a spatial strength mask must be [batch, 1, H, W], got {list(value.shape)}")
            elif value.ndim != 3 or value.shape[2] != 1:
                raise ValueError("row_scale must be a number or a tensor [batch], [batch, 1, 1], "
                                 f"[batch, seq_len, 1] or [batch, 1, H, W]; got {list(value.shape)}")
        if not isinstance(value, torch.Tensor):
            value = float(value)
            return PreparedScale(value, value != 0.0, value, value, {})
        # The engine's strengths live on the CPU and are read there (no device round trip); a device
        # tensor costs one synchronisation here, when the rows are prepared, never per layer.
        on_cpu = value.device.type == "cpu"
        active = bool(value.detach().numpy().any()) if on_cpu else bool(torch.count_nonzero(value))
        lora = self._placed(value.flatten(1).amax(dim=1).reshape(-1, 1, 1))
        grids: dict[int, torch.Tensor] = {}  # a spatial mask's multiplier per layer token count
        scale: float | torch.Tensor = value
        if value.ndim == 4:
            height, width = value.shape[2], value.shape[3]
            for level in range(_GRID_LEVELS):
                grid = _ceil_grid(height, width, level)
                if grid[0] * grid[1] not in grids:  # the first level of a token count, as _layer_grid
                    area = F.interpolate(value.float(), size=grid, mode="area").flatten(2).transpose(1, 2)
                    grids[grid[0] * grid[1]] = self._placed(area)
        else:
            scale = self._placed(value)
        return PreparedScale(value, active, scale, lora, grids)

    def use(self, prepared: PreparedScale) -> None:
        """Make ``prepared`` (from ``prepare``) the strengths of the next forwards: assignments only."""
        self._row_scale = prepared.value
        self.active = prepared.active
        self._scale: float | torch.Tensor = prepared.scale
        self._lora: float | torch.Tensor = prepared.lora
        self._grids: dict[int, torch.Tensor] = prepared.grids

    def _placed(self, value: torch.Tensor) -> torch.Tensor:
        return value if self._device is None else value.to(device=self._device, dtype=self._dtype)

    def _check_rows(self, value: torch.Tensor, batch: int) -> None:
        # Eager only: traced, the rows are symbolic sizes, and multiplying by the strengths fails the same way.
        if not torch.compiler.is_compiling() and value.shape[0] not in (1, batch):
            raise ValueError(f"row_scale has {value.shape[0]} rows but the UNet batch has {batch}")

    def scale_for(self, batch: int, seq_len: int, like: torch.Tensor) -> float | torch.Tensor | None:
        """The multiplier for one layer's identity attention output ``[batch, seq_len, dim]``; None: skip.

        Eager, a batch in which no row has an identity skips the identity attention (None). Traced by
        ``torch.compile`` it never skips: the zero multipliers give the same values, and one graph serves
        text-only, single-line and dual-line batches alike.
        """
        if not torch.compiler.is_compiling() and not self.active:
            return None
        value = self._row_scale
        if not isinstance(value, torch.Tensor):
            return value
        self._check_rows(value, batch)
        if value.ndim == 4:
            scale = self._grids.get(seq_len)
            if scale is None:
                raise ValueError(f"a {value.shape[2]}x{value.shape[3]} strength mask does not match a layer with "
                                 f"{seq_len} tokens")
        elif value.shape[1] == 1 or value.shape[1] == seq_len:
            scale = self._scale
        else:
            raise ValueError(f"row_scale has {value.shape[1]} tokens per row; this layer has {seq_len}")
        return scale.to(device=like.device, dtype=like.dtype)  # already there once placed: no copy

    def lora_scale_for(self, batch: int, like: torch.Tensor) -> float | torch.Tensor | None:
        """The LoRA multiplier per row: a number or ``[batch, 1, 1]``; None (eager only): no row uses the
        identity."""
        if not torch.compiler.is_compiling() and not self.active:
            return None
        value = self._lora
        if not isinstance(value, torch.Tensor):
            return value
        self._check_rows(value, batch)
        return value.to(device=like.device, dtype=like.dtype)


_GRID_LEVELS = 8  # resolution levels a strength mask is made for (a UNet has at most 4 or 5)


def _ceil_grid(height: int, width: int, level: int) -> tuple[int, int]:
    """The token grid ``level`` stride-2 downsamplings make of height x width (each rounds up)."""
    return math.ceil(height / 2**level), math.ceil(width / 2**level)


def _layer_grid(height: int, width: int, seq_len: int) -> tuple[int, int]:
    """The token grid of a UNet layer with ``seq_len`` tokens for a latent of height x width."""
    for level in range(_GRID_LEVELS):
        h, w = _ceil_grid(height, width, level)
        if h * w == seq_len:
            return h, w
    raise ValueError(f"a {height}x{width} strength mask does not match a layer with {seq_len} tokens")


# -- attention processor ------------------------------------------------------------------------------


class RowScaledIPAdapterProcessor(nn.Module):
    """Text cross-attention plus the identity tokens' attention, scaled per row by ``state``.

    Takes the hidden states UNet2DConditionModel's transformer blocks pass: 3-dim (or 4-dim) hidden
    states, and ``encoder_hidden_states`` either a plain tensor (text only) or the tuple
    ``(text_embeds, [identity_tokens])`` the UNet builds when its ``encoder_hid_proj`` is an IP-Adapter
    projection. Built with no arguments it is plain attention (what ``unload_ip_adapter`` rebuilds).
    """

    def __init__(self, hidden_size: int | None = None, cross_attention_dim: int | None = None,
                 state: FaceIDState | None = None) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.cross_attention_dim = cross_attention_dim
        self.state = state if state is not None else FaceIDState()
        self.to_k_ip: nn.Linear | None = None
        self.to_v_ip: nn.Linear | None = None
        self.lora: FaceIDLoRA | None = None
        # The resolution level the layer runs at (0 = the latent's), set by engine/fusion.py's
        # ``mark_attention_levels``: the attention probe picks and places its maps by it. None: the probe
        # finds it from the layer's token count.
        self.level: int | None = None
        if hidden_size is not None and cross_attention_dim is not None:
            self.to_k_ip = nn.Linear(cross_attention_dim, hidden_size, bias=False)
            self.to_v_ip = nn.Linear(cross_attention_dim, hidden_size, bias=False)

    @classmethod
    def take_over(cls, stock: Any, state: FaceIDState) -> RowScaledIPAdapterProcessor:
        """A processor using the identity key/value projections of a diffusers IP-Adapter processor."""
        if len(stock.to_k_ip) != 1:
            raise ValueError(f"expected one IP-Adapter per layer, found {len(stock.to_k_ip)}")
        proc = cls(state=state)
        proc.hidden_size = stock.hidden_size
        proc.cross_attention_dim = stock.cross_attention_dim
        proc.to_k_ip = stock.to_k_ip[0]
        proc.to_v_ip = stock.to_v_ip[0]
        return proc

    @staticmethod
    def _heads(x: torch.Tensor, batch: int, heads: int) -> torch.Tensor:
        return x.reshape(batch, -1, heads, x.shape[-1] // heads).transpose(1, 2)

    @staticmethod
    def _merge(x: torch.Tensor, batch: int) -> torch.Tensor:
        return x.transpose(1, 2).reshape(batch, -1, x.shape[1] * x.shape[3])

    def __call__(self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: Any = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 **_ignored: Any) -> torch.Tensor:
        identity_tokens = None
        if isinstance(encoder_hidden_states, tuple):
            encoder_hidden_states, projected = encoder_hidden_states
            if len(projected) != 1:
                raise ValueError(f"expected identity tokens from one IP-Adapter, got {len(projected)}")
            identity_tokens = projected[0]

        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        spatial_shape = None
        if hidden_states.ndim == 4:
            spatial_shape = hidden_states.shape
            hidden_states = hidden_states.flatten(2).transpose(1, 2)
        batch = hidden_states.shape[0]
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states

        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, context.shape[1], batch)
            attention_mask = attention_mask.view(batch, attn.heads, -1, attention_mask.shape[-1])
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        if encoder_hidden_states is None:  # self-attention reads the normalised states, as diffusers' does
            context = hidden_states

        query = attn.to_q(hidden_states)
        if encoder_hidden_states is not None and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        key = attn.to_k(context)
        value = attn.to_v(context)
        lora = self.lora
        lora_scale = None if lora is None else self.state.lora_scale_for(batch, query)
        if lora is not None and lora_scale is not None:
            query = query + lora.delta("to_q", hidden_states) * lora_scale
            key = key + lora.delta("to_k", context) * lora_scale
            value = value + lora.delta("to_v", context) * lora_scale

        heads = attn.heads
        query = self._heads(query, batch, heads)
        key = self._heads(key, batch, heads)
        value = self._heads(value, batch, heads)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)

        out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, dropout_p=0.0,
                                             is_causal=False)
        out = self._merge(out, batch).to(query.dtype)
        probe = self.state.probe
        if probe is not None and encoder_hidden_states is not None:
            probe.record(query, key, attn.scale, self.level)

        if identity_tokens is not None and self.to_k_ip is not None and self.to_v_ip is not None:
            scale = self.state.scale_for(batch, out.shape[1], out)
            if scale is not None:
                if identity_tokens.ndim == 4:  # [batch, images, tokens, dim] from MultiIPAdapterImageProjection
                    identity_tokens = identity_tokens.flatten(1, 2)
                id_key = self._heads(self.to_k_ip(identity_tokens), batch, heads)
                id_value = self._heads(self.to_v_ip(identity_tokens), batch, heads)
                id_out = F.scaled_dot_product_attention(query, id_key, id_value, attn_mask=None, dropout_p=0.0,
                                                        is_causal=False)
                out = out + self._merge(id_out, batch).to(query.dtype) * scale

        projected_out = attn.to_out[0](out)
        if lora is not None and lora_scale is not None:
            projected_out = projected_out + lora.delta("to_out", out) * lora_scale
        out = attn.to_out[1](projected_out)
        if spatial_shape is not None:
            out = out.transpose(1, 2).reshape(spatial_shape)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


class FaceIDLoRA(nn.Module):
    """One attention layer's FaceID LoRA: ``up(down(x))`` for to_q, to_k, to_v and to_out[0].

    The published checkpoints were trained with ``LoRAAttnProcessor`` at ``lora_scale`` 1 and no
    ``network_alpha``, so the update is exactly ``up @ down``, times the row's strength here.
    """

    def __init__(self, weights: dict[str, torch.Tensor], attn: Any) -> None:
        super().__init__()
        self.layers = nn.ModuleDict()
        for projection in LORA_PROJECTIONS:
            target = _lora_target(attn, projection)
            down = weights[f"{projection}_lora.down.weight"]
            up = weights[f"{projection}_lora.up.weight"]
            if down.ndim != 2 or up.ndim != 2 or down.shape[1] != target.in_features \
                    or up.shape[0] != target.out_features or up.shape[1] != down.shape[0]:
                raise ValueError(f"{projection}_lora has down {list(down.shape)} and up {list(up.shape)}; this layer "
                                 f"needs down [rank, {target.in_features}] and up [{target.out_features}, rank]")
            pair = nn.Sequential(nn.Linear(down.shape[1], down.shape[0], bias=False),
                                 nn.Linear(up.shape[1], up.shape[0], bias=False))
            pair.to(device=target.weight.device, dtype=target.weight.dtype)
            with torch.no_grad():
                pair[0].weight.copy_(down)
                pair[1].weight.copy_(up)
            self.layers[projection] = pair

    def delta(self, projection: str, x: torch.Tensor) -> torch.Tensor:
        return self.layers[projection](x)


def install_row_scaled_processors(unet: Any, state: FaceIDState | None = None) -> FaceIDState:
    """Replace every diffusers IP-Adapter processor of ``unet`` with ``RowScaledIPAdapterProcessor``."""
    from diffusers.models.attention_processor import (
        IPAdapterAttnProcessor,
        IPAdapterAttnProcessor2_0,
        IPAdapterXFormersAttnProcessor,
    )

    state = state if state is not None else FaceIDState()
    stock_types = (IPAdapterAttnProcessor, IPAdapterAttnProcessor2_0, IPAdapterXFormersAttnProcessor)
    processors = dict(unet.attn_processors)
    replaced = 0
    for name, proc in processors.items():
        if isinstance(proc, stock_types):
            processors[name] = RowScaledIPAdapterProcessor.take_over(proc, state)
            replaced += 1
    if not replaced:
        raise ValueError("the UNet has no IP-Adapter attention processors; load an adapter first")
    unet.set_attn_processor(processors)
    return state


def faceid_state(unet: Any) -> FaceIDState | None:
    """The state shared by the UNet's FaceID processors, or None when none is installed."""
    for proc in unet.attn_processors.values():
        if isinstance(proc, RowScaledIPAdapterProcessor) and proc.to_k_ip is not None:
            return proc.state
    return None


# -- loading ------------------------------------------------------------------------------------------


FACEID_PROJECTION_KEYS = frozenset({"proj.0.weight", "proj.0.bias", "proj.2.weight", "proj.2.bias",
                                    "norm.weight", "norm.bias"})


def _describe(exc: Exception) -> str:
    """The first line of ``exc``'s message, without a closing full stop (callers go on with their own)."""
    return str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else type(exc).__name__


def read_faceid_checkpoint(file: Path, *, allow_pickle: bool = False) -> dict[str, dict[str, torch.Tensor]]:
    """A FaceID checkpoint as ``{"image_proj": {...}, "ip_adapter": {...}}`` (the layout ``load_ip_adapter``
    takes as a state dict): safetensors with flat ``image_proj.``/``ip_adapter.`` keys, or, when
    ``allow_pickle``, the published ``.bin`` read with ``torch.load(weights_only=True)``."""
    from safetensors import SafetensorError, safe_open

    file = Path(file)
    try:
        if file.name.endswith(".safetensors"):
            state: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
            with safe_open(str(file), framework="pt", device="cpu") as handle:
                keys = list(handle.keys())
                for key in keys:
                    group, _, rest = key.partition(".")
                    if group in state:
                        state[group][rest] = handle.get_tensor(key)
            if not state["image_proj"] and not state["ip_adapter"]:
                raise ModelUnavailableError(_not_an_adapter(file, keys))
            return state
        if not allow_pickle:
            raise ModelUnavailableError(
                f"refusing to load the FaceID adapter '{file}': it is not a .safetensors file, and pickle "
                "checkpoints (.bin, .pt, .ckpt) are loaded only when allowed — set allow_pickle, or convert it "
                "once with `idcli models fetch`")
        loaded = torch.load(str(file), map_location="cpu", weights_only=True)
    except (OSError, SafetensorError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise ModelUnavailableError(f"cannot load the FaceID adapter '{file}' ({_describe(exc)}): the file is "
                                    "damaged, truncated or (a pickle) holds more than tensors, which the "
                                    "weights-only load refuses — download it again") from None
    if not isinstance(loaded, dict) or not isinstance(loaded.get("ip_adapter"), dict) \
            or not isinstance(loaded.get("image_proj"), dict):
        raise ModelUnavailableError(f"'{file}' is not an IP-Adapter checkpoint: it has no 'image_proj' and "
                                    "'ip_adapter' groups")
    return {"image_proj": dict(loaded["image_proj"]), "ip_adapter": dict(loaded["ip_adapter"])}


def _not_an_adapter(file: Path, keys: list[str]) -> str:
    """Why a safetensors file with no ``image_proj.*``/``ip_adapter.*`` key is not an adapter, and what to use."""
    sample = ", ".join(sorted(keys)[:3]) or "none"
    if any(key.startswith(("lora_unet_", "lora_te")) or ".lora_down." in key or ".lora_A." in key for key in keys):
        from ..adapters import adapter_carrying_lora

        adapter = adapter_carrying_lora(file.name) or "ip-adapter-faceid_sd15.bin / ip-adapter-faceid_sdxl.bin"
        return (f"'{file}' holds only a LoRA ({len(keys)} keys such as {sample}), not the adapter: the FaceID "
                f"adapter file ({adapter}, or its safetensors conversion by `idcli models fetch`) carries the "
                "adapter weights and this same LoRA, which idcli applies from there — point model.adapter."
                "weight_name at it")
    return (f"'{file}' is not an IP-Adapter checkpoint: it has no image_proj.* and ip_adapter.* keys (its keys "
            f"begin: {sample}) — point model.adapter at an ip-adapter-faceid file")


def check_faceid_layout(state: dict[str, dict[str, torch.Tensor]], file: Path | str) -> None:
    """Refuse a checkpoint whose projection is not the FaceID layout, naming the file and what it is."""
    found = set(state["image_proj"])
    if found == FACEID_PROJECTION_KEYS:
        return
    if any(key.startswith("perceiver_resampler.") for key in found):
        kind = ("IP-Adapter FaceID-Plus (a perceiver resampler over CLIP image features; to use it set "
                "model.adapter.variant: faceid-plusv2)")
    elif "proj.weight" in found or any(key.startswith("latents") for key in found):
        kind = "a CLIP-image IP-Adapter, not a FaceID one"
    else:
        kind = "an unknown layout (image_proj keys: " + ", ".join(sorted(found)[:6]) + ")"
    raise ModelUnavailableError(
        f"'{file}' holds {kind}; idcli's adapter is IP-Adapter FaceID, whose image_proj keys are "
        f"{', '.join(sorted(FACEID_PROJECTION_KEYS))} — point model.adapter at an ip-adapter-faceid_sd15 or "
        "ip-adapter-faceid_sdxl file")


# What the published adapters were made for, by the UNet's cross_attention_dim.
BASE_MODELS = {768: "SD1.5", 1024: "SD2", 2048: "SDXL"}


def check_base_model(state: dict[str, dict[str, torch.Tensor]], unet: Any, file: Path | str) -> None:
    """Refuse an adapter made for another base model (an SD1.5 file with SDXL, or the reverse), naming both:
    diffusers' own error is a bare "Error(s) in loading state_dict for IPAdapterAttnProcessor2_0"."""
    norm = state["image_proj"].get("norm.weight")  # [cross_attention_dim] in FaceID and FaceID-Plus alike
    wanted = int(unet.config.cross_attention_dim)
    if norm is None or norm.ndim != 1 or int(norm.shape[0]) == wanted:
        return
    made = int(norm.shape[0])

    def named(dim: int) -> str:
        return f"{dim} ({BASE_MODELS[dim]})" if dim in BASE_MODELS else str(dim)

    raise ModelUnavailableError(
        f"'{file}' was made for a UNet with cross_attention_dim {named(made)}, but this model's is {named(wanted)}: "
        "use the adapter made for this base model (ip-adapter-faceid…_sd15 files for SD1.5, …_sdxl files for SDXL)")


def split_faceid_lora(state: dict[str, dict[str, torch.Tensor]]
                      ) -> tuple[dict[str, dict[str, torch.Tensor]], dict[int, dict[str, torch.Tensor]]]:
    """The checkpoint without its LoRA (for ``load_ip_adapter``), and the LoRA by processor number."""
    adapter: dict[str, torch.Tensor] = {}
    lora: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in state["ip_adapter"].items():
        number, _, rest = key.partition(".")
        if "_lora." in rest and number.isdigit():
            lora.setdefault(int(number), {})[rest] = value
        else:
            adapter[key] = value
    return {"image_proj": state["image_proj"], "ip_adapter": adapter}, lora


def install_faceid_lora(unet: Any, lora: dict[int, dict[str, torch.Tensor]], state: FaceIDState,
                        file: Path | str) -> int:
    """Give each attention processor its LoRA (numbered as in ``unet.attn_processors``); returns how many.

    Layers without an IP-Adapter processor (self-attention) get a ``RowScaledIPAdapterProcessor`` with
    no identity projections, which is plain attention plus the per-row LoRA.
    """
    processors = dict(unet.attn_processors)
    names = list(processors)
    unknown = sorted(set(lora) - set(range(len(names))))
    if unknown:
        raise ModelUnavailableError(f"'{file}' has LoRA weights for attention layer {unknown[0]}, but this UNet "
                                    f"has {len(names)} attention layers: the adapter was made for another model")
    for key_id, weights in sorted(lora.items()):
        name = names[key_id]
        proc = processors[name]
        if not isinstance(proc, RowScaledIPAdapterProcessor):
            proc = RowScaledIPAdapterProcessor(state=state)
        attn = unet.get_submodule(name.removesuffix(".processor"))
        try:
            proc.lora = FaceIDLoRA(weights, attn)
        except (KeyError, ValueError) as exc:
            raise ModelUnavailableError(f"'{file}': the LoRA of attention layer {key_id} ({name}) does not fit "
                                        f"this UNet: {_describe(exc)}") from None
        processors[name] = proc
    if lora:
        unet.set_attn_processor(processors)
    return len(lora)


def load_faceid_adapter(pipe: Any, source: str, weight_name: str, subfolder: str = "", *,
                        allow_pickle: bool = False, state: FaceIDState | None = None,
                        **load_kwargs: Any) -> FaceIDState:
    """Load a FaceID checkpoint, its LoRA applied per row, and install the row-scaled processors.

    ``source`` is a local folder or a hub id (``subfolder``/``weight_name`` inside it); extra keyword
    arguments (``revision``, ``local_files_only``, ``cache_dir``, ...) go to the file lookup diffusers'
    ``load_ip_adapter`` uses. Only ``.safetensors`` files are loaded unless ``allow_pickle`` (then with
    ``torch.load(weights_only=True)``). We read the state dict ourselves: ``load_ip_adapter`` gets it
    without the LoRA (with ``peft`` installed it would otherwise wrap every attention linear of the UNet
    and apply the LoRA to every row), and the LoRA goes into our processors. Returns the
    ``FaceIDState`` the engine sets before each UNet forward.
    """
    from diffusers.models.embeddings import IPAdapterFaceIDImageProjection

    state, _projection = load_adapter_checkpoint(
        pipe, source, weight_name, subfolder, allow_pickle=allow_pickle, state=state, label="FaceID",
        check_layout=check_faceid_layout, projection_class=IPAdapterFaceIDImageProjection, **load_kwargs)
    return state


def load_adapter_checkpoint(pipe: Any, source: str, weight_name: str, subfolder: str, *, allow_pickle: bool,
                            state: FaceIDState | None, label: str, check_layout: Any, projection_class: type,
                            lookup_hint: str = "", **load_kwargs: Any) -> tuple[FaceIDState, Any]:
    """The loading both FaceID variants share: find the file as ``load_ip_adapter`` would, read it ourselves
    (safetensors, or a weights-only pickle when allowed), check its key layout with ``check_layout``, hand
    ``load_ip_adapter`` the state dict without its LoRA, check the projection it built is a
    ``projection_class``, then install the row-scaled processors and the LoRA. Returns the processors'
    state and the projection. ``label`` names the variant in errors; ``lookup_hint`` ends a failed lookup's."""
    from diffusers.utils import _get_model_file

    where = f"'{weight_name}' from '{source}'" + (f" (subfolder '{subfolder}')" if subfolder else "")
    if not weight_name.endswith(".safetensors") and not allow_pickle:
        raise ModelUnavailableError(
            f"refusing to load the {label} adapter {where}: it is not a .safetensors "
            "file, and pickle checkpoints (.bin, .pt, .ckpt) are loaded only when allowed — set allow_pickle "
            "(model.allow_pickle: true) to load it (read with torch.load(weights_only=True)), or convert it to "
            "safetensors once with `idcli models fetch`")
    try:
        file = Path(_get_model_file(source, weights_name=weight_name, subfolder=subfolder or None,
                                    user_agent={"file_type": "attn_procs_weights", "framework": "pytorch"},
                                    **load_kwargs))
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"cannot load the {label} adapter {where}: {_describe(exc)}{lookup_hint}") \
            from None
    checkpoint = read_faceid_checkpoint(file, allow_pickle=allow_pickle)
    check_layout(checkpoint, file)
    check_base_model(checkpoint, pipe.unet, file)
    without_lora, lora = split_faceid_lora(checkpoint)
    try:
        pipe.load_ip_adapter(without_lora, subfolder="", weight_name=weight_name, image_encoder_folder=None)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise ModelUnavailableError(f"cannot load the {label} adapter {where} ({file}): {_describe(exc)}") from None
    layers = pipe.unet.encoder_hid_proj.image_projection_layers
    if len(layers) != 1 or not isinstance(layers[0], projection_class):
        found = ", ".join(type(layer).__name__ for layer in layers)
        pipe.unload_ip_adapter()
        raise ModelUnavailableError(f"{where} is not an IP-Adapter {label} checkpoint "
                                    f"(its projection is {found}, not {projection_class.__name__})")
    state = install_row_scaled_processors(pipe.unet, state)
    try:
        install_faceid_lora(pipe.unet, lora, state, file)
    except ModelUnavailableError:
        unload_faceid_adapter(pipe)
        raise
    return state, layers[0]


def unload_faceid_adapter(pipe: Any) -> None:
    """Remove the adapter: plain attention processors and no identity projection."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    processors = {name: AttnProcessor2_0() if isinstance(proc, RowScaledIPAdapterProcessor) else proc
                  for name, proc in pipe.unet.attn_processors.items()}
    pipe.unet.set_attn_processor(processors)
    pipe.unload_ip_adapter()


# -- UNet arguments -----------------------------------------------------------------------------------


def faceid_unet_kwargs(embeds: torch.Tensor, added_cond_kwargs: dict[str, Any] | None = None, *,
                       dtype: Any = None, device: Any = None) -> dict[str, Any]:
    """Extra UNet-call arguments giving each batch row its own identity embedding.

    ``embeds`` is ``[rows, 512]`` (one ArcFace embedding per UNet row, in the rows' order) or
    ``[rows, n, 512]`` (n embeddings per row, each projected to its own identity tokens, which the
    processors concatenate: 'prepend' aggregation). Returns ``{"added_cond_kwargs": {...,
    "image_embeds": [embeds as (rows, n, 512)]}}``, merged into ``added_cond_kwargs`` (SDXL's
    ``text_embeds``/``time_ids``). Never repeated over the batch, so identities cannot mix.
    """
    if embeds.ndim == 2:
        embeds = embeds.unsqueeze(1)
    if embeds.ndim != 3 or embeds.shape[2] != FACEID_EMBED_DIM:
        raise ValueError(f"identity embeddings must be [rows, {FACEID_EMBED_DIM}] or [rows, n, {FACEID_EMBED_DIM}], "
                         f"got {list(embeds.shape)}")
    added = dict(added_cond_kwargs or {})
    added["image_embeds"] = [embeds.to(device=device, dtype=dtype)]
    return {"added_cond_kwargs": added}
