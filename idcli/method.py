"""How a shot's identity is applied: the method (single or dual-line), its parameters and framing rules.

Pure data and arithmetic, no torch: the planner resolves every parameter here so that the job key
holds the exact values the engine will use (docs/method.md explains each one).

Resolution order for each parameter, later wins: the built-in default, the framing's default, the
shot list's ``defaults.method_params``, the shot's own ``method_params``.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

METHODS = ("dual-line", "single")
DEFAULT_METHOD = "dual-line"
AGGREGATIONS = ("mean", "prepend")
MAX_PREPENDED_REFERENCES = 4  # per-selfie embeddings after the aggregate in 'prepend' (5 x 4 identity tokens)
# Characters one dual-line shot may name: each conditioning one adds a UNet row per evaluation in the
# fusion window (docs/method.md, "Several characters"); beyond six the rows cost more than the shot is worth.
MAX_CHARACTERS_PER_SHOT = 6
# Parameters that only act when several characters condition one image: a one-character job's key
# leaves them out, so adding them changed no existing key.
MULTI_CHARACTER_PARAMS = ("mask_exclusivity",)


@dataclass(frozen=True)
class FusionParams:
    """Every hyper-parameter of identity-adaptive fusion (and the aggregation switch)."""

    fusion_start: float = 0.3  # fraction of the denoising loop run on the semantic line alone
    fusion_end: float = 1.0  # fraction after which the semantic line alone runs again
    mask_threshold: float = 0.35  # centre of the soft threshold on the accumulated attention map
    mask_softness: float = 0.15  # half-width of that threshold's ramp
    mask_blur: float = 1.0  # Gaussian sigma in latent pixels, for a 64-pixel latent (scaled with size)
    head_only: bool = False  # restrict fusion to the top of the character's region (wide shots)
    head_fraction: float = 0.3  # the share of the region's height that counts as the head
    aggregation: str = "mean"  # 'mean' (one aggregate embedding) or 'prepend' (aggregate + references)
    # Several characters: the power gamma on each character's attention where masks overlap (0 shares
    # equally, larger gives the pixel more surely to the most attended character). Unused with one.
    mask_exclusivity: float = 4.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def window(self, evaluations: int) -> tuple[int, int]:
        """The first and one-past-last model evaluation (loop index) at which the identity line runs."""
        start = min(evaluations, math.floor(self.fusion_start * evaluations + 0.5))
        end = min(evaluations, math.floor(self.fusion_end * evaluations + 0.5))
        return start, max(start, end)


@dataclass(frozen=True)
class Framing:
    phrase: str  # appended to the prompt so the base model composes the shot as asked
    defaults: dict[str, Any]


# Wide and full-body shots keep the face small: fusing over the whole figure would let the identity
# adapter (trained on face crops) pull the composition towards a close-up, so only the head fuses.
# Close-ups start fusing earlier because the face is the layout.
FRAMINGS: dict[str, Framing] = {
    "close-up": Framing("close-up portrait, face filling the frame", {"fusion_start": 0.2}),
    "medium": Framing("medium shot, framed from the waist up", {}),
    "wide": Framing("wide shot, the figure small within the scene", {"head_only": True, "head_fraction": 0.35}),
    "full-body": Framing("full-body shot, head to toe", {"head_only": True, "head_fraction": 0.2}),
}


# Identity adapters copy the reference photo's expression; at full expression intensity the identity
# strength is lowered by this share so the prompt's expression can move the face (docs/method.md).
EXPRESSION_IDENTITY_TRADE = 0.3


def balanced_strength(character: float, shot: float | None, intensity: float) -> float:
    """The identity strength a shot renders with: the shot's own when it sets one, else the character's
    lowered in proportion to the expression's intensity (0 for none or neutral)."""
    if shot is not None:
        return float(shot)
    return round(float(character) * (1.0 - EXPRESSION_IDENTITY_TRADE * float(intensity)), 6)


def framing_phrase(framing: str | None) -> str:
    return FRAMINGS[framing].phrase if framing in FRAMINGS else ""


# How a prompt already says a framing in its own words; then the phrase is not added a second time
# ("medium shot, ... medium shot"). Whole words, any case, a hyphen or a space inside.
FRAMING_SAID = {
    "close-up": re.compile(r"\b(?:extreme\s+)?close[-\s]?up\b", re.IGNORECASE),
    "medium": re.compile(r"\bmedium[-\s]shot\b", re.IGNORECASE),
    "wide": re.compile(r"\bwide[-\s]shot\b", re.IGNORECASE),
    "full-body": re.compile(r"\bfull[-\s]body\b", re.IGNORECASE),
}


def says_framing(prompt: str, framing: str | None) -> bool:
    """Whether ``prompt`` already names ``framing`` (e.g. 'medium shot' for ``medium``)."""
    pattern = FRAMING_SAID.get(framing or "")
    return bool(pattern and pattern.search(prompt))


def framing_prefix(framing: str | None, prompt: str = "") -> str:
    """What goes before a prompt for a framing: first, so CLIP's 77-token window never cuts it off.
    Nothing when ``prompt`` already says the framing."""
    phrase = framing_phrase(framing)
    return f"{phrase}, " if phrase and not says_framing(prompt, framing) else ""


def with_framing(prompt: str, framing: str | None, said_in: str | None = None) -> str:
    """The prompt with the framing's phrase before it (unchanged when no framing is given, or when
    ``said_in`` — the shot's own prompt, by default ``prompt`` — already says it)."""
    return framing_prefix(framing, prompt if said_in is None else said_in) + prompt


PARAM_NAMES = tuple(f.name for f in fields(FusionParams))


def resolve_fusion(framing: str | None, *overrides: dict[str, Any] | None) -> FusionParams:
    """Built-in defaults, then the framing's, then each mapping of ``overrides`` (None values ignored)."""
    params = FusionParams()
    layers: list[dict[str, Any] | None] = [FRAMINGS[framing].defaults if framing in FRAMINGS else None, *overrides]
    for layer in layers:
        if layer:
            params = replace(params, **{k: v for k, v in layer.items() if v is not None and k in PARAM_NAMES})
    return params


def explicit_params(params: Any) -> dict[str, Any] | None:
    """The parameters a shot list sets explicitly in one ``method_params`` mapping (a pydantic model)."""
    return params.model_dump(exclude_none=True) if params is not None else None


def shot_fusion(shot: Any, defaults: Any) -> FusionParams:
    """A shot's fusion parameters: its framing's defaults, then ``defaults.method_params``, then its own."""
    return resolve_fusion(shot.framing or defaults.framing, explicit_params(defaults.method_params),
                          explicit_params(shot.method_params))


def check_fusion(params: FusionParams) -> str | None:
    """A rule that spans parameters, broken; None when the parameters are consistent."""
    if params.fusion_start >= params.fusion_end:
        return (f"fusion_start ({params.fusion_start}) must be below fusion_end ({params.fusion_end}); "
                "the identity line would never run")
    return None


def key_params(method: str, params: FusionParams, lines: int = 1) -> dict[str, Any]:
    """The parameters that can change a job's pixels under ``method`` with ``lines`` identity lines
    (only those enter the job key)."""
    if method in ("single", "plate"):
        # A plate face's mask is its face box's (engine/plates.py), not attention's: no window, threshold,
        # blur, head cut or exclusivity applies, only how the identity is aggregated.
        return {"aggregation": params.aggregation}
    values = params.as_dict()
    if lines <= 1:
        for name in MULTI_CHARACTER_PARAMS:
            values.pop(name)
    return values
