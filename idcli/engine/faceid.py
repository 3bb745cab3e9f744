"""IP-Adapter FaceID's per-row identity strength: the attention processor and the state it reads.

Kept apart from the denoising loop so the engine can wire it in; the checkpoint's key layout and random
test checkpoints are in ``faceid_layout``, loading through diffusers in ``faceid_loading``.

The processor adds the identity tokens' attention multiplied by a strength held in a
``FaceIDState`` shared by all processors of one UNet; the engine sets ``state.row_scale`` before each
UNet forward. A row with strength 0 gets exactly the text-only attention, so its output equals the
UNet's output without the adapter. The checkpoint's LoRA is added per row the same way (``FaceIDLoRA``).

``faceid_unet_kwargs`` gives the UNet one identity embedding per batch row. The stock
``prepare_ip_adapter_image_embeds`` repeats the embeddings over the batch, so with several identities in
one call every image attends to every face (diffusers issue 9813).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .faceid_layout import FACEID_EMBED_DIM, LORA_PROJECTIONS, lora_target

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
        # What loading the checkpoint has to say of it (a pickle without its LoRA: faceid_loading.py), for the engine
        # to hand the run once; None when nothing.
        self.load_note: str | None = None

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
                if grid[0] * grid[1] not in grids:  # the first level of a token count, as layer_grid
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
        # A tensor: row_scale is one here, so prepare made its multipliers tensors. Placed once: no copy.
        return scale.to(device=like.device, dtype=like.dtype)  # type: ignore[union-attr]

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


def layer_grid(height: int, width: int, seq_len: int) -> tuple[int, int]:
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
            target = lora_target(attn, projection)
            down = weights[f"{projection}_lora.down.weight"]
            up = weights[f"{projection}_lora.up.weight"]
            if down.ndim != 2 or up.ndim != 2 or down.shape[1] != target.in_features \
                    or up.shape[0] != target.out_features or up.shape[1] != down.shape[0]:
                raise ValueError(f"{projection}_lora has down {list(down.shape)} and up {list(up.shape)}; this layer "
                                 f"needs down [rank, {target.in_features}] and up [{target.out_features}, rank]")
            # skip_init: built without nn.Linear's random initialisation, which drew from torch's global
            # generator (the caller's seeded stream moved by every render) for weights overwritten just below.
            place = {"device": target.weight.device, "dtype": target.weight.dtype}
            pair = nn.Sequential(nn.utils.skip_init(nn.Linear, down.shape[1], down.shape[0], bias=False, **place),
                                 nn.utils.skip_init(nn.Linear, up.shape[1], up.shape[0], bias=False, **place))
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
