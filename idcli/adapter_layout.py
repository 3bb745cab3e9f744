"""What an IP-Adapter FaceID checkpoint holds, told from its key names and shapes alone. No torch here.

The engine checks the state dict it loaded with these (engine/faceid_loading.py, engine/faceid_plus.py). ``plan``
and ``validate`` check a local ``.safetensors`` adapter the same way from its header (a few kilobytes; no weight is
read): a file of the wrong kind — a FaceID-Plus v2 file named for FaceID or the reverse, the LoRA h94 publishes
alone, a download cut short — was refused only by the render, after it had loaded the base model (on a farm, by
every worker), while ``plan`` and ``validate`` said the shot list was fine.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .adapter_keys import both_group_names, incomplete_adapter, loader_key, missing_keys, other_lora_layout
from .errors import ModelUnavailableError

Shapes = Mapping[str, Sequence[int]]  # key -> shape, of a tensor or as a safetensors header states it

FACEID_PROJECTION_KEYS = frozenset({"proj.0.weight", "proj.0.bias", "proj.2.weight", "proj.2.bias",
                                    "norm.weight", "norm.bias"})
RESAMPLER = "perceiver_resampler."
PLUS_REQUIRED_KEYS = FACEID_PROJECTION_KEYS | {f"{RESAMPLER}proj_in.weight", f"{RESAMPLER}proj_out.weight"}
FACEID_TOKENS = 4
# A file named as FaceID-Plus v1 (h94's ip-adapter-faceid-plus_sd15.bin, or a copy renamed faceid_plus…), not v2.
_PLUS_V1_NAME = re.compile(r"faceid[-_]?plus(?![-_]?v2)")
# The projection as IP-Adapter's training script saves it, beside ``adapter_modules.*`` and the whole UNet (``unet.*``):
# a training checkpoint (accelerate's save_state), which its README converts into an adapter file.
TRAINING_PROJECTION = "image_proj_model."
MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit on the JSON header


def faceid_layout_problem(projection: Shapes, file: Path | str) -> str | None:
    """Why a checkpoint with these ``image_proj`` keys (and shapes) is not a FaceID one; None if it is."""
    found = set(projection)
    if found == FACEID_PROJECTION_KEYS:
        return _portrait_problem(projection, file)
    if any(key.startswith(RESAMPLER) for key in found):
        kind = ("IP-Adapter FaceID-Plus (a perceiver resampler over CLIP image features; to use it set "
                "model.adapter.variant: faceid-plusv2)")
    elif "proj.weight" in found or any(key.startswith("latents") for key in found):
        kind = "a CLIP-image IP-Adapter, not a FaceID one"
    else:
        kind = "an unknown layout (image_proj keys: " + ", ".join(sorted(found)[:6]) + ")"
    return (f"'{file}' holds {kind}; idcli's adapter is IP-Adapter FaceID, whose image_proj keys are "
            f"{', '.join(sorted(FACEID_PROJECTION_KEYS))} — point model.adapter at an ip-adapter-faceid_sd15 or "
            "ip-adapter-faceid_sdxl file")


def _portrait_problem(projection: Shapes, file: Path | str) -> str | None:
    """h94's FaceID-Portrait (``ip-adapter-faceid-portrait…``) has FaceID's keys but 16 tokens per face, no LoRA, and
    was made to read several faces at once (five by default); diffusers loads it as a 16-token FaceID, so it would
    render from one embedding without a word. Refused, naming the file: idcli runs FaceID and FaceID-Plus v2."""
    tokens = tokens_per_face(projection)
    if tokens is None or tokens == FACEID_TOKENS:
        return None
    return (f"'{file}' holds {tokens} identity tokens per face, not FaceID's 4: it is IP-Adapter FaceID-Portrait or "
            "another model of FaceID's shape, made to read several faces at once, which idcli does not run — point "
            "model.adapter at ip-adapter-faceid_sd15 / _sdxl (variant: faceid) or ip-adapter-faceid-plusv2_… "
            "(variant: faceid-plusv2)")


def tokens_per_face(projection: Shapes) -> int | None:
    """How many tokens a FaceID-shaped projection makes of one face (its output width over the UNet's, which its
    norm states); None when its shapes do not say."""
    norm, out = projection.get("norm.weight"), projection.get("proj.2.weight")
    if norm is None or out is None or len(norm) != 1 or len(out) != 2 or int(norm[0]) == 0:
        return None
    return int(out[0]) // int(norm[0])


def plusv2_layout_problem(projection: Shapes, file: Path | str) -> str | None:
    """Why a checkpoint whose ``image_proj`` keys are ``projection`` is not a FaceID-Plus one; None if it is."""
    found = set(projection)
    if found >= PLUS_REQUIRED_KEYS:
        return None
    if found == FACEID_PROJECTION_KEYS:
        kind = "IP-Adapter FaceID (an MLP over the ArcFace embedding, no CLIP resampler)"
        fix = "set model.adapter.variant: faceid to use it, or point model.adapter at an ip-adapter-faceid-plusv2 file"
    elif "proj.weight" in found or "latents" in found:
        kind = "a CLIP-image IP-Adapter, not a FaceID one"
        fix = "point model.adapter at an ip-adapter-faceid-plusv2_sd15 or _sdxl file"
    else:
        kind = "an unknown layout (image_proj keys: " + ", ".join(sorted(found)[:6]) + ")"
        fix = "point model.adapter at an ip-adapter-faceid-plusv2_sd15 or _sdxl file"
    return (f"'{file}' holds {kind}, but model.adapter.variant is faceid-plusv2, whose checkpoint has a perceiver "
            f"resampler (image_proj.{RESAMPLER}*). To fix: {fix}")


def not_an_adapter(file: Path, keys: Sequence[str]) -> str:
    """Why a safetensors file with no ``image_proj.*``/``ip_adapter.*`` key is not an adapter, and what to use."""
    sample = ", ".join(sorted(keys)[:3]) or "none"
    if any(key.startswith(TRAINING_PROJECTION) for key in keys):
        return (f"'{file}' is a checkpoint of IP-Adapter's training script ({len(keys)} keys: {TRAINING_PROJECTION}*, "
                "adapter_modules.*, and the UNet's own as unet.*), not an adapter file. To fix: convert it as the "
                "IP-Adapter README does (image_proj_model.* as image_proj, adapter_modules.* as ip_adapter, unet.* "
                "left out) and point model.adapter at the result")
    if any(key.startswith(("lora_unet_", "lora_te")) or ".lora_down." in key or ".lora_A." in key for key in keys):
        from .adapters import adapter_carrying_lora

        adapter = adapter_carrying_lora(file.name) or "ip-adapter-faceid_sd15.bin / ip-adapter-faceid_sdxl.bin"
        return (f"'{file}' holds only a LoRA ({len(keys)} keys such as {sample}), not the adapter: the FaceID "
                f"adapter file ({adapter}, or its safetensors conversion by `idcli models fetch`) carries the "
                "adapter weights and this same LoRA, which idcli applies from there — point model.adapter."
                "weight_name at it")
    return (f"'{file}' is not an IP-Adapter checkpoint: it has no image_proj.* and ip_adapter.* keys (its keys "
            f"begin: {sample}) — point model.adapter at an ip-adapter-faceid file")


def is_pickle(file: Path) -> bool:
    """Whether ``file`` starts as torch.save writes: a zip archive (torch 1.6+) or a bare pickle stream."""
    try:
        with open(file, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return False
    return head == b"PK\x03\x04" or (len(head) >= 2 and head[0] == 0x80 and head[1] <= 5)


def pickle_named_safetensors(file: Path) -> str:
    """A .bin renamed .safetensors (renaming is taken for converting): not damaged, and not safetensors."""
    return (f"'{file}' is a pickle (torch.save) named .safetensors: renaming does not convert it. To fix: give it "
            "back its .bin name and set model.allow_pickle: true (read with torch.load(weights_only=True)), or "
            "convert it to safetensors")


def safetensors_shapes(file: Path) -> dict[str, tuple[int, ...]]:
    """Each tensor's shape as ``file``'s safetensors header states it, the header checked as safetensors checks it
    on loading (its length, its JSON, the tensors' data filling the rest of the file exactly); reads only the
    header. A ``ValueError`` says what is wrong; an ``OSError`` if the file cannot be read."""
    with open(file, "rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(0)
        head = handle.read(8)
        length = int.from_bytes(head, "little") if len(head) == 8 else -1
        if length < 2 or length > MAX_HEADER_BYTES or 8 + length > size:
            raise ValueError(f"its header is cut or unreadable: the file has {size:,} bytes")
        text = handle.read(length)
    try:
        header = json.loads(text)
    except (ValueError, RecursionError):  # nested past the parser's depth: as unreadable, not a traceback
        raise ValueError("its header is not valid JSON") from None
    if not isinstance(header, dict):
        raise ValueError("its header is not a JSON object")
    shapes: dict[str, tuple[int, ...]] = {}
    end = 0
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        try:
            shape = tuple(int(n) for n in entry["shape"])
            end = max(end, int(entry["data_offsets"][1]))
        except (TypeError, KeyError, IndexError, ValueError):
            raise ValueError(f"its header's entry for '{key}' is malformed") from None
        shapes[key] = shape
    held = size - 8 - length
    if end != held:
        raise ValueError(f"its header places {end:,} bytes of tensors, the file holds {held:,}")
    return shapes


def damaged(label: str, file: Path, reason: str) -> str:
    """A damaged or cut safetensors adapter, as plan, validate and the render say it."""
    return f"cannot load the {label} adapter '{file}' ({reason}): the file is damaged or truncated — download it again"


def check_adapter_file(file: Path, plus: bool) -> None:
    """Refuse a local ``.safetensors`` adapter whose header says it is not the adapter the shot list names (FaceID,
    or FaceID-Plus v2 when ``plus``), or is damaged, in the render's words; reads only the header. A pickle is left
    to the render, which reads it weights-only (reading its keys here would mean unpickling it)."""
    if not file.name.endswith(".safetensors"):
        return
    label = "FaceID-Plus v2" if plus else "FaceID"
    try:
        shapes = safetensors_shapes(file)
    except ValueError as exc:
        raise ModelUnavailableError(pickle_named_safetensors(file) if is_pickle(file)
                                    else damaged(label, file, str(exc))) from None
    except OSError as exc:
        raise ModelUnavailableError(f"cannot read the {label} adapter '{file}': {exc.strerror or exc}") from None
    check_adapter_shapes(file, shapes, plus)


def check_adapter_shapes(file: Path, shapes: Shapes, plus: bool) -> None:
    """Refuse an adapter whose flat keys and shapes (``image_proj.…``, ``ip_adapter.…``: a safetensors header's, or
    an allowed pickle's, adapter_pickle.py) are not the adapter the shot list names, in the render's words. Keys in
    the training script's names (``adapter_modules.…``) are read as the loader's (adapter_keys.loader_key)."""
    label = "FaceID-Plus v2" if plus else "FaceID"
    both = both_group_names(file, shapes, label)
    if both:
        raise ModelUnavailableError(both)
    shapes = loader_shapes(shapes)
    projection = {key.removeprefix("image_proj."): shape for key, shape in shapes.items()
                  if key.startswith("image_proj.")}
    if not projection and not adapter_keys_held(shapes):
        raise ModelUnavailableError(not_an_adapter(file, list(shapes)))
    problem = (plusv2_layout_problem if plus else faceid_layout_problem)(projection, file) \
        or incomplete_adapter(file, shapes, label) or other_lora_layout(file, shapes, label)
    if problem:
        raise ModelUnavailableError(problem)


def adapter_keys_held(keys: Iterable[str]) -> bool:
    """Whether flat keys (the loader's names) hold an adapter's ``ip_adapter.*`` keys, not a training checkpoint's
    (whose ``adapter_modules.*`` come with ``image_proj_model.*``: not_an_adapter says what it is)."""
    keys = list(keys)
    return any(key.startswith("ip_adapter.") for key in keys) \
        and not any(key.startswith(TRAINING_PROJECTION) for key in keys)


def loader_shapes(shapes: Shapes) -> dict[str, Sequence[int]]:
    """An adapter's flat keys and shapes with keys in the training script's names (``adapter_modules.…``) as the
    loader reads them (``ip_adapter.…``; adapter_keys.loader_key)."""
    return {loader_key(key): shape for key, shape in shapes.items()}


def adapter_kind(file: Path) -> str:
    """What a ``.safetensors`` adapter file holds, from its header alone, in the words `idcli models list` shows
    (``models list`` called every adapter "IP-Adapter weights"); "" for a pickle, whose keys would mean unpickling
    it. FaceID-Plus v1 and v2 have the same keys (v2 differs only in how the shortcut is used), so one label, which
    says a file named as v1 is rendered as v2 (names_plus_v1)."""
    if not file.name.endswith(".safetensors"):
        return ""
    try:
        safetensors = safetensors_shapes(file)
    except ValueError as exc:
        return "a pickle named .safetensors: not loadable as it is" if is_pickle(file) \
            else f"damaged or truncated ({exc}): download it again"
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    if both_group_names(file, safetensors, ""):
        return "adapter keys under two names (ip_adapter.* and adapter_modules.*): not loadable, convert it again"
    shapes = loader_shapes(safetensors)
    projection = {key.removeprefix("image_proj."): shape for key, shape in shapes.items()
                  if key.startswith("image_proj.")}
    if not projection and not adapter_keys_held(shapes):
        if any(key.startswith(TRAINING_PROJECTION) for key in shapes):
            return "a checkpoint of IP-Adapter's training script, not an adapter file: convert it (IP-Adapter's README)"
        if "holds only a LoRA" in not_an_adapter(file, list(shapes)):
            return "the LoRA alone, not an adapter: model.adapter takes the adapter file, which carries it"
        return "not an IP-Adapter checkpoint (no image_proj.* and ip_adapter.* keys)"
    missing = missing_keys(shapes)  # a LoRA a converter trimmed, a file cut short (adapter_keys.py)
    if missing and (plusv2_layout_problem(projection, file) is None or faceid_layout_problem(projection, file) is None):
        kind = "FaceID-Plus" if plusv2_layout_problem(projection, file) is None else "FaceID"
        return (f"{kind}, incomplete: {len(missing)} of the keys the loader reads are missing (such as "
                f"{missing[0]}): not loadable, get it again")
    if other_lora_layout(file, shapes, "") and faceid_layout_problem(projection, file) is None:
        return "FaceID, its LoRA in another tool's key names (kohya's or diffusers'): idcli would not read it"
    if other_lora_layout(file, shapes, "") and plusv2_layout_problem(projection, file) is None:
        return "FaceID-Plus, its LoRA in another tool's key names (kohya's or diffusers'): idcli would not read it"
    if plusv2_layout_problem(projection, file) is None:
        if names_plus_v1(file.name):
            return ("FaceID-Plus, named v1 (v1 and v2 hold the same keys: idcli renders it as v2): "
                    "model.adapter.variant: faceid-plusv2")
        return "FaceID-Plus (v1 and v2 alike): model.adapter.variant: faceid-plusv2"
    if faceid_layout_problem(projection, file) is None:
        return "FaceID: model.adapter.variant: faceid"
    if set(projection) == FACEID_PROJECTION_KEYS:  # FaceID's keys, not its 4 tokens
        return f"FaceID-Portrait ({tokens_per_face(projection)} identity tokens per face): idcli does not run it"
    if "proj.weight" in projection or any(key.startswith("latents") for key in projection):
        return "a CLIP-image IP-Adapter, not a FaceID one: idcli does not run it"
    return "an unknown layout: idcli does not run it"


def names_plus_v1(name: str) -> bool:
    """Whether a file name says FaceID-Plus v1, not v2: the only thing that does. v1 and v2 hold the same keys and
    shapes (the IP-Adapter repository builds one ``ProjPlusModel`` for both, and v2 turns its shortcut on at inference;
    diffusers loads both as one ``IPAdapterFaceIDPlusImageProjection``), and ComfyUI_IPAdapter_plus tells v2 by
    ``'plusv2'`` in the file name too."""
    return bool(_PLUS_V1_NAME.search(name.lower()))


def plus_v1_note(where: str, shortcut_scale: float) -> str:
    """The note for a FaceID-Plus adapter file named as v1 (``where``: the file as errors name it), which idcli renders
    as v2: said, not refused (the file may be v2 renamed; nothing in it says)."""
    return (f"the adapter {where} is named as IP-Adapter FaceID-Plus v1 (ip-adapter-faceid-plus_…), which idcli "
            "renders as v2 (model.adapter.variant: faceid-plusv2: the shortcut on, shortcut_scale "
            f"{shortcut_scale:g}): v1 and v2 hold the same keys and shapes, so nothing in the file tells them apart "
            "(docs/models.md, \"FaceID-Plus v1 or v2\"). If it is v1, its images are not what v1 gives elsewhere; for "
            "v2, point model.adapter at ip-adapter-faceid-plusv2_sd15 or _sdxl (`idcli models fetch` gets it)")


def missing_lora_note(file: Path) -> str | None:
    """A note when a FaceID or FaceID-Plus ``.safetensors`` adapter carries no LoRA: h94's published files carry it
    (``ip_adapter.{k}.to_q_lora…``; h94's own loader loads them strictly into its LoRA processors), which the authors
    say identity consistency needs, and a file without it (a conversion that kept only the adapter keys) rendered
    without a word. Told from the header; None for a file that has it, is no adapter, or cannot be read (refused
    elsewhere in its own words). Nothing is refused: the file renders as it is."""
    if not file.name.endswith(".safetensors"):
        return None
    try:
        shapes = safetensors_shapes(file)
    except (ValueError, OSError):
        return None
    return lora_absent_note(file, shapes)


def lora_absent_note(file: Path | str, keys: Iterable[str]) -> str | None:
    """``missing_lora_note``'s words for an adapter's flat keys (``image_proj.…``, ``ip_adapter.…``): from a
    safetensors header, or from the state dict the engine loaded from a pickle (weights-only, engine/faceid_loading.py),
    which nothing reads before the render. None when the keys hold the LoRA or are no adapter's."""
    keys = [loader_key(key) for key in keys]
    if not any(key.startswith("image_proj.") for key in keys) \
            or any(key.startswith("ip_adapter.") and "_lora." in key for key in keys):
        return None
    return (f"the adapter '{file}' carries no LoRA (no ip_adapter.*_lora.* keys): it renders, but without the LoRA "
            "FaceID's authors made for identity consistency. h94's published adapter files carry it (idcli applies it "
            "from there, row by row); the LoRA h94 also publishes alone (…_lora.safetensors) is not added beside "
            "another file. To have it: point model.adapter at the published file (or `idcli models fetch`'s "
            "conversion of it), or convert your file again keeping every key")
