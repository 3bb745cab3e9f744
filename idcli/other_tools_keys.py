"""Keys other image tools use in a shot's (or the adapter's) place, answered with idcli's own field.

A previs artist writes what A1111, ComfyUI or diffusers called it (``cfg_scale``, ``scheduler``, ``width``,
``denoising_strength``, ``init_image``) or what a regional prompter or layout tool has (``regions``, ``positions``,
``masks``). Spelling alone leads astray there: ``regions`` and ``positions`` are closest to ``expressions``,
``masks`` to ``takes`` and ``denoising_strength`` to ``identity_strength``, so a hint built from spelling sends the
artist to a field that means something else. These are said by meaning.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

_WHERE_IN_WORDS = ("a shot has no regions: say where each character is in the prompt ('{theo} at the head of "
                   "the table, {mara} on his left'); boxes are for plates only (plate: FILE with plate_faces)")

_PLATE = "did you mean 'plate'? (an existing frame the characters' faces are put into: plate: FILE)"
_FACES = ("did you mean 'plate_faces'? (with a plate: one face per character in the prompt's order, a detected face's "
          "index or a box [x, y, w, h]; a shot without a plate says where each character is in the prompt)")
_EITHER_STRENGTH = ("did you mean 'identity_strength' (how strongly each character's identity holds, 0-2) or "
                    "'plate_strength' (how much of each plate face is re-generated, 0-1)?")
_IDENTITY_STRENGTH = "did you mean 'identity_strength'? (how strongly the character's identity holds, 0-2)"

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
    "img2img_strength": ("plate_strength",
                         "did you mean 'plate_strength'? (how much of each plate face is re-generated)"),
    # 'strength' alone could be either: both are said.
    "strength": ("identity_strength", _EITHER_STRENGTH),
    # Where each character stands, as regional prompters and layout tools write it: said in words in the prompt.
    # By spelling 'positions' was 'expressions', 'placement' 'plate_strength', 'areas' and 'masks' 'takes'.
    **dict.fromkeys(("regions", "region", "positions", "position", "placement", "placements", "layout", "areas",
                     "area", "masks", "mask", "regional_prompts", "regional_prompt"), ("framing", _WHERE_IN_WORDS)),
    # An existing frame, and the faces in it, as img2img and face-swap tools name them.
    **dict.fromkeys(("init_image", "plate_file", "plate_image", "plate_path"), ("plate", _PLATE)),
    **dict.fromkeys(("boxes", "bbox", "bboxes", "face_boxes", "face_box", "face_bbox"), ("plate_faces", _FACES)),
    "batch_size": ("steps", "the batch size is not the shot list's: give it to the render "
                            "(idcli render --batch-size N, or auto)"),
    # A1111's and ComfyUI's prompt settings. By spelling 'positive_prompt' was 'negative_prompt', the opposite, and
    # the rest were answered with the whole list of fields. The knobs idcli lacks are said as lacking, with what it
    # does instead; they map to 'steps' (allowed wherever they are written) only so that the hint is given.
    **dict.fromkeys(("positive", "positive_prompt", "pos_prompt"), ("prompt", "did you mean 'prompt'?")),
    **dict.fromkeys(("batch_count", "n_iter", "num_images", "num_images_per_prompt"),
                    ("takes", "did you mean 'takes'? (images of the shot, each with its own seed)")),
    **dict.fromkeys(("clip_skip", "clipskip", "clip_set_last_layer"), (
        "steps", "idcli has no clip skip: each preset reads its text encoder as diffusers does (SD1.5 its last "
                 "layer, SDXL its penultimate), so a model trained for 'Clip skip: 2' renders differently here")),
    **dict.fromkeys(("lora", "loras", "lora_name", "lora_weight"), (
        "steps", "idcli loads no LoRA besides its identity adapter's: merge it into the model once (diffusers: "
                 "load_lora_weights, fuse_lora, save_pretrained) and give that folder as model.id")),
    **dict.fromkeys(("embedding", "embeddings", "textual_inversion", "textual_inversions"), (
        "steps", "idcli loads no textual-inversion embedding: an embedding's name in a prompt is a plain word")),
}


# The adapter's knobs as other tools name them (diffusers' set_ip_adapter_scale and lora_scale, h94's scripts'
# s_scale and shortcut, ComfyUI_IPAdapter_plus's weight, weight_faceidv2 and lora_strength), written under
# model.adapter by people who used them: said in idcli's words. The nearest key by spelling misled ('lora_scale': did
# you mean 'shortcut_scale'?, a FaceID-Plus v2 knob with nothing to do with the LoRA, refused with FaceID).
_STRENGTH = ("idcli's adapter strength is characters.NAME.identity_strength or a shot's identity_strength: 0-2, "
             "default 1.0, 0 turns the adapter off; the FaceID LoRA follows it, row by row")
_LORA = _STRENGTH + ", and has no scale of its own"
_SHORTCUT = ("FaceID-Plus v2's s_scale is shortcut_scale here: 0-4, default 1.0, the v2 shortcut always on; the "
             "adapter's strength is identity_strength, on a character or a shot")
_ADAPTER_KNOBS = {
    **dict.fromkeys(("scale", "ip_adapter_scale", "weight", "strength", "adapter_scale"), _STRENGTH),
    **dict.fromkeys(("lora_scale", "lora_strength", "lora_weight"), _LORA),
    **dict.fromkeys(("s_scale", "shortcut", "weight_faceidv2", "faceidv2_weight"), _SHORTCUT),
}


def other_tools_hint(key: str, allowed: Collection[str]) -> str:
    """The hint for an unknown ``key`` that another tool uses for one of idcli's fields in ``allowed``; else ''."""
    found = _KEYS.get(key.lower())
    if found is not None and found[1] is _EITHER_STRENGTH and "plate_strength" not in allowed:
        found = ("identity_strength", _IDENTITY_STRENGTH)  # a character's: it has no plate
    return found[1] if found is not None and found[0] in allowed else ""


def adapter_knob_hint(key: str) -> str:
    """The hint for an unknown ``key`` under ``model.adapter`` that another tool uses for the adapter's knobs; else
    ''."""
    return _ADAPTER_KNOBS.get(key.lower(), "")


def seed_hint(key: str, value: Any, allowed: Collection[str]) -> str:
    """The hint for ``seed: 42`` (A1111's and ComfyUI's word) where ``seeds`` is allowed: the list to write, in one
    step. "did you mean 'seeds'?" led to a second error after the rename (``seeds: 42``: not a list); else ''."""
    if key.lower() not in {"seed", "noise_seed", "random_seed"} or not {"seeds", "takes"} & set(allowed):
        return ""
    given = value if isinstance(value, list) else [value]
    shown = ", ".join(str(v) for v in given) if all(type(v) is int for v in given) and given else "SEED"
    if "seeds" not in allowed:  # defaults: a seed shared by every shot would render them all from one noise
        return f"seeds are a shot's: write seeds: [{shown}] under a shot, a list: one seed per take"
    return f"write seeds: [{shown}], a list: one seed per take"
