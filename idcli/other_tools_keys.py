"""Keys other image tools use in a shot's place, answered with idcli's own field.

A previs artist writes what A1111, ComfyUI or diffusers called it (``cfg_scale``, ``scheduler``, ``width``,
``denoising_strength``) or what a regional prompter has (``regions``). Spelling alone leads astray there:
``regions`` is closest to ``expressions`` and ``denoising_strength`` to ``identity_strength``, so a hint
built from spelling sends the artist to a field that means something else. These are said by meaning.
"""

from __future__ import annotations

from collections.abc import Collection

_WHERE_IN_WORDS = ("a shot has no regions: say where each character is in the prompt ('{theo} at the head of "
                   "the table, {mara} on his left'); boxes are for plates only (plate: FILE with plate_faces)")

# key as written, case ignored -> (the field it stands for, which must be allowed where the key is; the hint)
_KEYS: dict[str, tuple[str, str]] = {
    "cfg": ("guidance", "did you mean 'guidance'? (the classifier-free guidance scale)"),
    "cfg_scale": ("guidance", "did you mean 'guidance'? (the classifier-free guidance scale)"),
    "scheduler": ("sampler", "did you mean 'sampler'? (ddim, euler, heun, dpmpp-2m, midpoint)"),
    "num_inference_steps": ("steps", "did you mean 'steps'?"),
    "width": ("size", "did you mean 'size'? (width and height are one field: size: 768x512)"),
    "height": ("size", "did you mean 'size'? (width and height are one field: size: 768x512)"),
    "denoise": ("plate_strength", "did you mean 'plate_strength'? (how much of each plate face is re-generated)"),
    "denoising_strength": ("plate_strength",
                           "did you mean 'plate_strength'? (how much of each plate face is re-generated)"),
    "regions": ("framing", _WHERE_IN_WORDS),
    "region": ("framing", _WHERE_IN_WORDS),
    "batch_size": ("steps", "the batch size is not the shot list's: give it to the render "
                            "(idcli render --batch-size N, or auto)"),
}


def other_tools_hint(key: str, allowed: Collection[str]) -> str:
    """The hint for an unknown ``key`` that another tool uses for one of idcli's fields in ``allowed``; else ''."""
    found = _KEYS.get(key.lower())
    return found[1] if found is not None and found[0] in allowed else ""
