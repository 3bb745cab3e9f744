"""Identity-adaptive fusion (dual-line inference): where the identity line's noise prediction is used.

Two pieces the engine wires into its denoising loop (docs/method.md has the equations):

* ``AttentionProbe`` records, during one UNet forward, how much chosen batch rows (the semantic
  line's conditional rows) attend to chosen prompt tokens (the conditioning character's phrase);
  the FaceID attention processors call it, so no extra forward is needed;
* ``FusionMask`` turns one job's attention maps, step after step, into the mask M_t in [0, 1]:
  smoothed, normalised, accumulated over the steps so far, soft-thresholded, optionally cut to the
  head. The engine then fuses ``eps = lerp(eps_sem, eps_id, M_t)``: exactly eps_sem where M_t = 0
  and exactly eps_id where M_t = 1;
* with several characters, ``exclusive_masks`` shares overlapping masks out by relative attention and
  ``fuse`` adds each character's identity line inside its own mask.

Everything is per row: no value of one job ever depends on another job in the batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

from ..method import FusionParams
from ..profile_ranges import FUSION, PROBE, phase, ranged


def subject_token_positions(tokenizer: Any, prompt: str, spans: tuple[tuple[int, int], ...],
                            max_length: int = 77) -> list[int]:
    """Sequence positions covered by the character offsets ``spans`` of ``prompt``, in the layout the
    engine encodes it in: CLIP windows of a start token, 75 prompt tokens and an end token, concatenated
    (idcli/prompt_tokens.py). ``max_length``: the encoded sequence's length (positions past it dropped).

    CLIP's tokenizer splits text into words before byte-pair merging, so the tokens of a prefix that
    ends at a word boundary are the first tokens of the whole prompt; placeholders always sit at one
    (a description is substituted whole).
    """
    from ..prompt_tokens import token_count, token_positions

    positions: list[int] = []
    for start, end in spans:
        before = token_count(tokenizer, prompt[:start])
        upto = token_count(tokenizer, prompt[:end])
        positions.extend(token_positions(tokenizer, i) for i in range(before, upto))
    return sorted({p for p in positions if p < max_length})


def attention_levels(unet_config: Any) -> set[int]:
    """Resolution levels (0 = the latent's, each further level half the size) with cross-attention."""
    down = list(unet_config.down_block_types)
    levels = {i for i, kind in enumerate(down) if "CrossAttn" in kind}
    if "CrossAttn" in str(getattr(unet_config, "mid_block_type", "") or ""):
        levels.add(len(down) - 1)
    return levels


def attention_level(name: str, unet_config: Any) -> int | None:
    """The resolution level of the attention layer (or processor) ``name`` of a UNet2DConditionModel: down
    block i runs at level i (each but the last halves the size at its end), up block i at level
    ``blocks - 1 - i`` (each but the last doubles it at its end), the middle block at the lowest."""
    blocks = len(unet_config.down_block_types)
    part = name.split(".")
    if part[0] == "down_blocks":
        return int(part[1])
    if part[0] == "up_blocks":
        return blocks - 1 - int(part[1])
    if part[0] == "mid_block":
        return blocks - 1
    return None


def mark_attention_levels(unet: Any) -> int:
    """Tell each processor that has a ``level`` (the FaceID processors) its layer's resolution level, for
    the attention probe of a ``torch.compile``'d UNet. Returns how many were marked."""
    marked = 0
    for name, proc in unet.attn_processors.items():
        if hasattr(proc, "level"):
            proc.level = attention_level(name, unet.config)
            marked += 1
    return marked


def probe_levels(unet_config: Any) -> set[int]:
    """Levels whose attention maps make the mask: 1 to 3 (the layout-forming resolutions, and cheap),
    or every level with cross-attention when a UNet has none there."""
    levels = attention_levels(unet_config)
    chosen = {level for level in levels if 1 <= level <= 3}
    return chosen or levels


class AttentionProbe:
    """Cross-attention of some UNet rows to some text tokens, gathered over one forward.

    ``rows``: indices into the forward's batch; ``token_weights``: ``[len(rows), tokens]`` with 1 at
    each row's subject tokens, on the UNet's device. Maps are averaged over heads and layers and
    resampled to the latent grid. One probe serves a whole batch: ``reset`` before each forward.

    Inside the forward (``record``, called by the FaceID processors of the layers at ``levels``) only
    each layer's attention to the subject tokens is computed; ``maps`` then resamples them to the latent
    grid, one interpolation per resolution level for all that level's layers together, and adds them in
    the order the layers ran. Interpolation works on each map alone, so this is the same arithmetic, bit
    for bit, as one interpolation per layer, at a launch per level instead of per layer. (Summing a
    level's maps before one interpolation would save the adds too, but changes the order of the float
    additions and so some pixels by one 8-bit level: docs/performance.md.)

    Cost per probed layer: the rows are a slice (a view, no kernel) when they are consecutive, as they
    are when a batch's dual-line jobs are; the token weights are cut by a view. Traced by ``torch.compile``
    the rows are gathered by an index tensor instead (same values): which rows, how many, and the latent
    size are then data of the graph, not constants it would be recompiled for.
    """

    def __init__(self, rows: list[int], token_weights: torch.Tensor, latent_hw: tuple[int, int],
                 levels: set[int]) -> None:
        self.rows = rows
        self.token_weights = token_weights
        self.latent_hw = latent_hw
        self.levels = levels
        # Several characters of one job read the same semantic row: its attention is computed once, on the
        # distinct rows, then repeated for each reader. Consecutive rows (a batch's dual-line jobs) are a
        # slice, a view with no kernel; others are gathered.
        unique = list(dict.fromkeys(rows))
        consecutive = bool(unique) and unique == list(range(unique[0], unique[0] + len(unique)))
        device = token_weights.device
        order = [unique.index(r) for r in rows]
        self._slice = slice(unique[0], unique[0] + len(unique)) if consecutive else None
        self._index = torch.tensor(unique, device=device, dtype=torch.long)
        self._order = None if len(unique) == len(rows) else torch.tensor(order, device=device, dtype=torch.long)
        self._weights = token_weights[:, None, None, :]  # [rows, 1, 1, tokens]: cut to a layer's tokens by a view
        # Traced, the same gathers always run, by index tensors of at least two entries (the last repeated;
        # maps() drops what that adds): torch compiles a size of 1 as a constant, so one line or one semantic
        # row would otherwise need graphs of their own.
        pad = (lambda xs: xs + xs[-1:] * (2 - len(xs))) if rows else list
        self._traced_index = torch.tensor(pad(unique), device=device, dtype=torch.long)
        self._traced_order = torch.tensor(pad(order), device=device, dtype=torch.long)
        self._traced_weights = token_weights[pad(list(range(len(rows))))][:, None, None, :]
        self._tokens_level = {math.prod(ceil_grid(latent_hw, level)): level for level in sorted(levels, reverse=True)}
        self._parts: list[tuple[int, torch.Tensor]] = []

    def reset(self) -> None:
        """Forget the maps gathered so far (before the next forward)."""
        self._parts = []

    def record(self, query: torch.Tensor, key: torch.Tensor, scale: float, level: int | None = None) -> None:
        """``query`` ``[batch, heads, seq, dim]`` and text ``key`` ``[batch, heads, tokens, dim]`` of one layer
        at resolution ``level``. Eager, the level is found from the layer's token count; traced, the level the
        layer was marked with is used (``mark_attention_levels``: the same level, without comparing the token
        count with this latent size's, which would make the graph hold only for this size)."""
        if torch.compiler.is_compiling():
            if level is None:
                level = self._tokens_level.get(query.shape[2])
            if level in self.levels:
                probs = _attention_probs(query.index_select(0, self._traced_index),
                                         key.index_select(0, self._traced_index), scale)
                self._parts.append((level, _subject_attention(probs.index_select(0, self._traced_order),
                                                              self._traced_weights)))
            return
        level = self._tokens_level.get(query.shape[2])
        if level is None or not self.rows:
            return
        with phase(PROBE):  # eager only: see profile_ranges.phase
            if self._slice is not None:
                probs = _attention_probs(query[self._slice], key[self._slice], scale)
            else:
                probs = _attention_probs(query.index_select(0, self._index), key.index_select(0, self._index),
                                         scale)
            if self._order is not None:
                probs = probs.index_select(0, self._order)
            self._parts.append((level, _subject_attention(probs, self._weights)))

    @ranged(PROBE)
    def maps(self) -> torch.Tensor | None:
        """``[rows, 1, H, W]``: the mean map of the layers seen, or None when no layer was probed."""
        if not self._parts:
            return None
        rows = len(self.rows)
        resampled: dict[int, Iterator[torch.Tensor]] = {}
        for level in dict.fromkeys(level for level, _ in self._parts):
            grid = ceil_grid(self.latent_hw, level)
            stacked = torch.stack([a[:rows] for lv, a in self._parts if lv == level], dim=1).reshape(rows, -1, *grid)
            if grid != self.latent_hw:
                stacked = F.interpolate(stacked, size=self.latent_hw, mode="bilinear", align_corners=False)
            resampled[level] = iter(stacked.unbind(1))
        total: torch.Tensor | None = None
        for level, _ in self._parts:
            layer = next(resampled[level]).unsqueeze(1)
            total = layer if total is None else total + layer
        assert total is not None
        return total / len(self._parts)


def _attention_probs(query: torch.Tensor, key: torch.Tensor, scale: float) -> torch.Tensor:
    """``[rows, heads, seq, tokens]``: each query position's attention over the text tokens, in float32."""
    return torch.softmax(query.float() @ key.float().transpose(-1, -2) * scale, dim=-1)


def _subject_attention(probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``[rows, seq]``: the attention each position gives the row's subject tokens, averaged over heads."""
    return (probs * weights[..., :probs.shape[-1]]).sum(-1).mean(1)


def ceil_grid(latent_hw: tuple[int, int], level: int) -> tuple[int, int]:
    """The token grid of a UNet level: each stride-2 downsampling rounds up."""
    return math.ceil(latent_hw[0] / 2**level), math.ceil(latent_hw[1] / 2**level)


def _gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``[1, 1, H, W]`` with reflected borders."""
    if sigma <= 0:
        return image
    h, w = image.shape[-2:]
    radius = min(math.ceil(3 * sigma), h - 1, w - 1)
    if radius < 1:
        return image
    x = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    out = F.pad(image, (radius, radius, 0, 0), mode="reflect")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1))
    out = F.pad(out, (0, 0, radius, radius), mode="reflect")
    return F.conv2d(out, kernel.view(1, 1, -1, 1))


def _unit_range(image: torch.Tensor) -> torch.Tensor:
    # torch.where rather than a Python test: no device-to-host sync per job and step on a GPU.
    low, high = image.min(), image.max()
    span = high - low
    flat = ~torch.isfinite(span) | (span <= 1e-12)
    return torch.where(flat, torch.zeros_like(image), (image - low) / span)


class FusionMask:
    """One job's fusion mask, updated once per model evaluation from its attention map."""

    def __init__(self, params: FusionParams, latent_hw: tuple[int, int]) -> None:
        self.params = params
        self.latent_hw = latent_hw
        self._sum: torch.Tensor | None = None
        self._count = 0
        self.mask = torch.zeros(1, 1, *latent_hw)
        # The accumulated attention, peak 1, before the threshold: A_c of the exclusivity rule.
        self.attention = torch.zeros(1, 1, *latent_hw)

    def update(self, attention: torch.Tensor | None) -> torch.Tensor:
        """Fold in this step's attention map ``[1, 1, H, W]`` (None: nothing seen) and return M_t."""
        p = self.params
        if attention is not None:
            sigma = p.mask_blur * max(self.latent_hw) / 64.0
            current = _unit_range(_gaussian_blur(attention.float(), sigma))
            self._sum = current if self._sum is None else self._sum + current
            self._count += 1
        if self._sum is None:
            return self.mask
        accumulated = self._sum / self._count
        peak = accumulated.max()
        accumulated = torch.where(peak > 0, accumulated / peak, accumulated)
        self.attention = accumulated
        low = p.mask_threshold - p.mask_softness
        ramp = ((accumulated - low) / (2 * p.mask_softness)).clamp(0.0, 1.0)
        mask = ramp * ramp * (3 - 2 * ramp)  # smoothstep: exactly 0 and 1 outside the ramp
        if p.head_only:
            mask = head_only_mask(mask, p.head_fraction)
        self.mask = mask
        return mask


# Added to each attention before the power, so that characters whose masks are on where every attention is
# 0 share the pixel equally instead of dividing 0 by 0.
_ATTENTION_FLOOR = 1e-6


def exclusive_masks(masks: list[torch.Tensor], attention: list[torch.Tensor], gamma: float) -> list[torch.Tensor]:
    """Several characters' masks made exclusive: ``M_c = m_c * w_c / sum(w_c')`` over the characters whose
    mask is on (``m_c' > 0``), with ``w_c = (A_c + floor)^gamma``, so ``sum_c M_c <= max_c m_c <= 1``.

    Where one mask alone is on, ``M_c = m_c``; with one character the masks are returned unchanged (the
    one-character arithmetic, exactly).
    """
    if len(masks) <= 1:
        return list(masks)
    weights = [torch.where(m > 0, (a.clamp_min(0) + _ATTENTION_FLOOR) ** gamma, torch.zeros_like(m))
               for m, a in zip(masks, attention, strict=True)]
    total = torch.stack(weights).sum(0)
    safe = torch.where(total > 0, total, torch.ones_like(total))
    return [m * w / safe for m, w in zip(masks, weights, strict=True)]


@ranged(FUSION)
def fuse(semantic: torch.Tensor, identity: list[torch.Tensor], masks: list[torch.Tensor]) -> torch.Tensor:
    """``eps = eps_sem + sum_c M_c (eps_id,c - eps_sem)`` for one image.

    Written as a lerp towards the mask-weighted mean of the identity predictions, by the total mask: exactly
    eps_sem where every mask is 0, exactly eps_id,c where M_c = 1 (the others 0). One character is the
    plain ``lerp(eps_sem, eps_id, M)`` of the one-character method.
    """
    if len(identity) == 1:
        return torch.lerp(semantic, identity[0], masks[0])
    total = torch.stack(masks).sum(0)
    weighted = sum(m * e for m, e in zip(masks, identity, strict=True))
    target = torch.where(total > 0, weighted / torch.where(total > 0, total, torch.ones_like(total)), semantic)
    return torch.lerp(semantic, target, total)


def head_only_mask(mask: torch.Tensor, fraction: float) -> torch.Tensor:
    """The mask cut below the top ``fraction`` of the rows where the character is (mask > 0.5).

    In tensor operations only, so a GPU never waits for the host: the first and last rows that hold
    the character come from argmax over a 0/1 column, and the cut row is computed in float64, as Python
    computes it, so the cut is the same row as ``top + max(1, ceil(fraction * height))``.
    """
    rows = (mask[0, 0] > 0.5).any(dim=1)  # [H]
    height = rows.shape[0]
    top = rows.to(torch.uint8).argmax()
    bottom = height - 1 - rows.flip(0).to(torch.uint8).argmax()
    span = (bottom - top + 1).to(torch.float64)
    cut = top + torch.clamp(torch.ceil(fraction * span), min=1).to(top.dtype)
    below = torch.arange(height, device=mask.device) >= cut
    keep = ~(below & rows.any())  # nothing is cut where the character is nowhere
    return mask * keep.to(mask.dtype)[:, None]


def preview_frames(evaluations: int, most: int = 8) -> list[int]:
    """Loop indices at which ``--save-masks`` keeps a frame: evenly spaced, always the last."""
    if evaluations <= 0:
        return []
    count = min(most, evaluations)
    return sorted({round(i * (evaluations - 1) / max(1, count - 1)) for i in range(count)})
