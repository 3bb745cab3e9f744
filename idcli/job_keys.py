"""A job's key material: everything that can change its pixels and nothing that cannot (docs/file-formats.md).

Split from plan.py, which hashes this into each job's key; a change here changes keys, so existing images
render again.
"""

from __future__ import annotations

from typing import Any

from .expressions import ResolvedExpression, key_record
from .method import MAX_PREPENDED_REFERENCES, key_params
from .models import ModelIdentity
from .render_request import IdentityLine, RenderRequest
from .versions import ENGINE_ALGORITHM


def key_material(model: ModelIdentity, request: RenderRequest, condition: Any = None,
                 adapter: Any = None, expression: ResolvedExpression | None = None,
                 cast: list[tuple[Any, ResolvedExpression | None]] | None = None) -> dict[str, Any]:
    """Everything that can change a job's pixels. Documented in docs/file-formats.md.

    ``cast`` (several characters): each conditioning character's identity and expression, in line
    order; their lines are added under ``method.characters`` (a one-character key has no such entry).
    """
    method: dict[str, Any] = {"name": "text"}
    if condition is not None and request.fusion is not None:
        params = key_params(request.method, request.fusion, len(request.lines) or 1)
        # The identity by what made it (identity/resolve.py), not its embedding's float bits, so another
        # machine's encoding of the same selfies keeps the key.
        identity = {"identity_key": condition.key, "strength": request.identity_strength}
        if params.get("aggregation") == "prepend":
            if condition.source == "pack":  # from selfies the identity key already covers the references
                identity["references_sha256"] = condition.references_sha256
            identity["references"] = min(len(condition.references), MAX_PREPENDED_REFERENCES)
        method = {"name": request.method, "identity": identity, "adapter": adapter.key_material(), "params": params}
        if request.method == "dual-line":
            method["semantic_prompt"] = request.semantic_prompt
            method["subject_spans"] = [list(span) for span in request.subject_spans]
        if request.lines and cast:
            method["characters"] = [_line_material(line, identity, e, params.get("aggregation"),
                                                   request.identity_count() - 1)
                                    for line, (identity, e) in zip(request.lines, cast, strict=True)]
    cfg = request.guidance > 1.0  # at or below 1 the engine runs no unconditional branch
    # Prompts longer than one CLIP window were cut at 77 tokens before issue 18; they are encoded in full
    # now, so their keys name the window count (and their old, truncated renders are stale). Keys of
    # prompts that fit one window are unchanged: so are their images.
    windows = {"text_windows": request.text_windows} if request.text_windows > 1 else {}
    return {
        "engine": ENGINE_ALGORITHM,
        "model": model.key_material(),
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt if cfg else "",
        "seed": request.seed,
        "size": [request.width, request.height],
        "steps": request.steps,
        "guidance": request.guidance if cfg else 1.0,
        "sampler": request.sampler,
        "method": method,
        "expression": None if expression is None else key_record(expression),
        **windows,
    }


def _line_material(line: IdentityLine, identity: Any, expression: ResolvedExpression | None,
                   aggregation: str | None, references: int) -> dict[str, Any]:
    """What of one character's identity line can change the pixels."""
    # The identity as the one-character key names it (``identity_key``: what made it, not float bits).
    record = {"name": line.name, "identity_key": identity.key, "strength": line.strength,
              "prompt": line.prompt, "subject_spans": [list(span) for span in line.spans],
              "expression": None if expression is None else key_record(expression)}
    if aggregation == "prepend":
        if identity.source == "pack":  # from selfies the identity key already covers the references
            record["references_sha256"] = identity.references_sha256
        record["references"] = references
    return record
