"""Whether an adapter file holds every ``ip_adapter.*`` key the loader reads, told from its key names alone. No torch.

diffusers' IP-Adapter loader reads ``ip_adapter.{k}.to_k_ip.weight`` and ``.to_v_ip.weight`` for k = 1, 3, 5, …, one
pair per cross-attention layer; idcli reads the LoRA h94 ships in the same file as
``ip_adapter.{k}.{to_q,to_k,to_v,to_out}_lora.{down,up}.weight`` for every attention layer, k = 0, 1, 2, …
(engine/faceid_layout.py). The layout checks (adapter_layout.py) read the ``image_proj`` keys only, so a file lacking
some of these (a LoRA whose ``to_out`` weights a converter dropped, a conversion that stopped half way) passed
``validate`` and ``plan`` and was refused by the render after every selfie was encoded, in words that blamed the
UNet ("the LoRA of attention layer 0 … does not fit this UNet: 'to_out_lora.down.weight'") or a bare key.

From the file alone the layers it should have are those up to its highest numbered one; the render, holding the
UNet, knows how many there are and finds a file cut at its end too. A file with no LoRA key at all is not incomplete:
it renders without the LoRA, with a note (adapter_layout.lora_absent_note).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

LORA_PROJECTIONS = ("to_q", "to_k", "to_v", "to_out")  # the published ``{k}.{proj}_lora.{down,up}.weight``
LORA_WEIGHTS = tuple(f"{projection}_lora.{side}.weight" for projection in LORA_PROJECTIONS for side in ("down", "up"))
IP_WEIGHTS = ("to_k_ip.weight", "to_v_ip.weight")
SHOWN = 3  # missing keys named in a message; the rest are counted


# IP-Adapter's training scripts (tencent-ailab/IP-Adapter tutorial_train*.py) hold the attention processors as
# ``adapter_modules = torch.nn.ModuleList(unet.attn_processors.values())`` and save them under that name; h94's
# published files are the same modules with the group renamed ``ip_adapter`` (the repository README's conversion).
# Both number a layer by its processor's position in ``unet.attn_processors``, so the rename is exact.
# ComfyUI_IPAdapter_plus's loader takes either name, so such files are met in ComfyUI folders.
TRAINING_GROUP, LOADER_GROUP = "adapter_modules", "ip_adapter"


def loader_key(key: str) -> str:
    """``adapter_modules.5.to_k_ip.weight`` (the training script's name) as the loader reads it,
    ``ip_adapter.5.to_k_ip.weight``; any other key as it is."""
    if key.startswith(f"{TRAINING_GROUP}."):
        return f"{LOADER_GROUP}.{key.removeprefix(f'{TRAINING_GROUP}.')}"
    return key


def both_group_names(file: Path | str, keys: Iterable[str], label: str) -> str | None:
    """Why a file holding adapter keys under both names (``ip_adapter.*`` and ``adapter_modules.*``) is refused: which
    of two weights for one layer to read is not for idcli to guess. None when it holds one name or neither."""
    keys = list(keys)
    loader = sorted(key for key in keys if key.startswith(f"{LOADER_GROUP}."))
    training = sorted(key for key in keys if key.startswith(f"{TRAINING_GROUP}."))
    if not loader or not training:
        return None
    return (f"the {label} adapter '{file}' holds adapter keys under two names, {len(loader)} as {LOADER_GROUP}.* "
            f"(such as {loader[0]}) and {len(training)} as {TRAINING_GROUP}.* (IP-Adapter's training script's name, "
            f"such as {training[0]}): which of them to load is not clear. To fix: convert it again keeping one "
            "name, or point model.adapter at h94's published file")


def layer_keys(keys: Iterable[str]) -> dict[int, set[str]]:
    """The ``ip_adapter.{k}.…`` keys by layer number k, each as the part after the number."""
    layers: dict[int, set[str]] = {}
    for key in keys:
        if key.startswith("ip_adapter."):
            number, _, rest = key.removeprefix("ip_adapter.").partition(".")
            if number.isdigit():
                layers.setdefault(int(number), set()).add(rest)
    return layers


def missing_keys(keys: Iterable[str], attention_layers: int | None = None,
                 cross_layers: Sequence[int] | None = None) -> list[str]:
    """The ``ip_adapter.*`` keys the loader reads that ``keys`` lack, in layer order. ``attention_layers`` (how many
    attention processors the UNet has) and ``cross_layers`` (the numbers of its cross-attention ones) when the UNet
    is at hand; else the layers up to the file's highest numbered one."""
    layers = layer_keys(keys)
    top = max(layers, default=-1)
    ip_numbers = set(cross_layers if cross_layers is not None else range(1, top + 1, 2))
    has_lora = any(rest in LORA_WEIGHTS for rests in layers.values() for rest in rests)
    lora_numbers = set(range(attention_layers if attention_layers is not None else top + 1)) if has_lora else set()
    missing: list[str] = []
    for number in sorted(ip_numbers | lora_numbers):
        wanted = (IP_WEIGHTS if number in ip_numbers else ()) + (LORA_WEIGHTS if number in lora_numbers else ())
        have = layers.get(number, set())
        missing += [f"ip_adapter.{number}.{weight}" for weight in wanted if weight not in have]
    return missing


def incomplete_adapter(file: Path | str, keys: Iterable[str], label: str, attention_layers: int | None = None,
                       cross_layers: Sequence[int] | None = None) -> str | None:
    """Why an adapter file lacking keys the loader reads cannot render, naming the file, the first missing keys and
    their count, and what the file looks like; None when it lacks none. ``label``: "FaceID" or "FaceID-Plus v2"."""
    keys = list(keys)
    missing = missing_keys(keys, attention_layers, cross_layers)
    if not missing:
        return None
    shown = ", ".join(missing[:SHOWN]) + (", …" if len(missing) > SHOWN else "")
    count = f"{len(missing)} key" + ("s" if len(missing) > 1 else "")
    return (f"the {label} adapter '{file}' lacks {count} the loader reads ({shown}): it looks "
            f"like {_looks_like(missing, keys, label)}. The published file holds every one. To fix: download it "
            "again, or point model.adapter at h94's published file (or `idcli models fetch`'s conversion of it), or "
            "convert yours again keeping every key")


def _looks_like(missing: list[str], keys: list[str], label: str) -> str:
    """What a file lacking ``missing`` is: a LoRA trimmed of some projections, a file cut short, or either."""
    lacking = layer_keys(missing)
    present = layer_keys(keys)
    lora_lacking = {rest for rests in lacking.values() for rest in rests if rest in LORA_WEIGHTS}
    only_lora = all(rest in LORA_WEIGHTS for rests in lacking.values() for rest in rests)
    lora_layers = [number for number, rests in present.items() if rests & set(LORA_WEIGHTS)]
    if only_lora and lora_layers and all(lacking.get(number, set()) == lora_lacking for number in lora_layers):
        projections = [p for p in LORA_PROJECTIONS if any(rest.startswith(f"{p}_lora.") for rest in lora_lacking)]
        kept = [p for p in LORA_PROJECTIONS if p not in projections]
        return (f"a {label} file whose LoRA lacks its {_listed(projections)} weights on every layer, as a converter "
                f"that kept only {_listed(kept) or 'other keys'} writes it")
    if all(number not in present for number in lacking):
        return (f"a {label} file cut short or trimmed: it has no keys at all for attention layer"
                f"{'s' if len(lacking) > 1 else ''} {_numbers(list(lacking))}")
    if not any(rest in LORA_WEIGHTS for rests in lacking.values() for rest in rests):
        return f"a {label} file without the identity projections (to_k_ip, to_v_ip) of some cross-attention layers"
    return f"a {label} file cut short or trimmed by a converter"


def _listed(names: Sequence[str]) -> str:
    """``["to_q", "to_k", "to_v"]`` as "to_q, to_k and to_v"."""
    return " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else "".join(names)


def _numbers(numbers: Sequence[int]) -> str:
    """``[4, 5, 6, 7]`` as "4–7", ``[3, 9]`` as "3, 9"."""
    ordered = sorted(numbers)
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{ordered[0]}–{ordered[-1]}"
    return ", ".join(str(n) for n in ordered[:6]) + (", …" if len(ordered) > 6 else "")


# Other published names for the same LoRA: kohya's, which h94's ``…_lora.safetensors`` uses for ComfyUI and A1111
# (``lora_unet_{module path}_{to_q|to_k|to_v|to_out_0}.lora_{down|up}.weight``), and diffusers' (``unet.{processor
# name}.{to_q|…}_lora.{down|up}.weight``, what its ``load_ip_adapter`` turns an adapter's ``{k}.to_q_lora…`` into).
KOHYA_PREFIXES = ("lora_unet_", "lora_te_", "lora_te1_", "lora_te2_")


def other_lora_layout(file: Path | str, keys: Iterable[str], label: str) -> str | None:
    """Why an adapter file whose LoRA is in kohya's or diffusers' names, beside the adapter keys, is refused: the loader
    reads an adapter's LoRA as ``ip_adapter.{k}.{proj}_lora.*`` only, so it rendered without it, and validate noted it
    "carries no LoRA". None when it holds its LoRA in that layout (extra keys are then not read) or no LoRA at all."""
    keys = list(keys)
    if any(key.startswith("ip_adapter.") and "_lora." in key for key in keys):
        return None
    kohya = sorted(key for key in keys if key.startswith(KOHYA_PREFIXES))
    diffusers = sorted(key for key in keys if key.startswith("unet.") and "lora" in key)
    if kohya:
        found, layout = kohya, ("kohya's names (lora_unet_…_to_q.lora_down.weight: the layout of the LoRA h94 "
                                "publishes alone as …_lora.safetensors, for ComfyUI and A1111)")
    elif diffusers:
        found, layout = diffusers, ("diffusers' names (unet.{layer}.processor.to_q_lora.down.weight: the layout "
                                    "diffusers' load_ip_adapter turns an adapter's LoRA into)")
    else:
        return None
    return (f"the {label} adapter '{file}' holds its LoRA in {layout}: {len(found)} keys such as {found[0]}. idcli "
            "reads an adapter's LoRA only as h94's adapter files hold it (ip_adapter.{k}.to_q_lora.down.weight, "
            "k numbering the attention layers), so this file would render without it. To fix: point model.adapter at "
            "h94's published adapter file (ip-adapter-faceid…_sd15.bin or _sdxl.bin with model.allow_pickle: true, "
            "or `idcli models fetch`'s conversion of it), which carries the same LoRA in those keys")
