"""Loading an IP-Adapter FaceID checkpoint through diffusers, its LoRA applied per row.

``load_faceid_adapter`` loads a checkpoint through ``pipe.load_ip_adapter`` (local folder or hub id) and
swaps diffusers' IP-Adapter processors for ``RowScaledIPAdapterProcessor`` (``faceid``). The checkpoint's
LoRA (keys ``ip_adapter.{k}.to_q_lora.down.weight`` ... ``to_out_lora.up.weight``, k numbering every
attention processor) is read by us, not by diffusers: ``load_ip_adapter`` gets the state dict without it
and each attention processor gets its LoRA, added per row with that row's identity strength (diffusers
would merge it into the whole UNet through ``peft``, text-only rows included). Every way a file can be
the wrong one (a LoRA alone, a Plus or CLIP adapter, another base model, a damaged pickle) is refused
here with the file named.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from ..adapter_keys import LOADER_GROUP, TRAINING_GROUP, loader_key
from ..adapter_layout import (
    TRAINING_PROJECTION,
    faceid_layout_problem,
    is_pickle,
    not_an_adapter,
    pickle_named_safetensors,
)
from ..errors import ModelUnavailableError
from .faceid import FaceIDLoRA, FaceIDState, RowScaledIPAdapterProcessor, install_row_scaled_processors
from .faceid_layout import is_ip_layer


def describe_error(exc: Exception) -> str:
    """The first line of ``exc``'s message, without a closing full stop (callers go on with their own)."""
    return str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else type(exc).__name__


def read_faceid_checkpoint(file: Path, *, allow_pickle: bool = False) -> dict[str, dict[str, torch.Tensor]]:
    """A FaceID checkpoint as ``{"image_proj": {...}, "ip_adapter": {...}}`` (the layout ``load_ip_adapter``
    takes as a state dict): safetensors with flat ``image_proj.``/``ip_adapter.`` keys, or, when
    ``allow_pickle``, the published ``.bin`` read with ``torch.load(weights_only=True)``. The second group in
    IP-Adapter's training script's name, ``adapter_modules`` (flat keys or a pickle's group), is read as
    ``ip_adapter``: the same modules in the same order (adapter_keys.loader_key); a file holding both is refused."""
    from safetensors import SafetensorError, safe_open

    file = Path(file)
    try:
        if file.name.endswith(".safetensors"):
            state: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
            with safe_open(str(file), framework="pt", device="cpu") as handle:
                keys = list(handle.keys())
                _refuse_both_group_names(file, keys)
                for key in keys:
                    group, _, rest = loader_key(key).partition(".")
                    if group in state:
                        state[group][rest] = handle.get_tensor(key)
            if (not state["image_proj"] and not state["ip_adapter"]) \
                    or any(key.startswith(TRAINING_PROJECTION) for key in keys):
                raise ModelUnavailableError(not_an_adapter(file, keys))
            return state
        if not allow_pickle:
            raise ModelUnavailableError(
                f"refusing to load the FaceID adapter '{file}': it is not a .safetensors file, and pickle "
                "checkpoints (.bin, .pt, .ckpt) are loaded only when allowed — set allow_pickle, or convert it "
                "once with `idcli models fetch`")
        loaded = _weights_only_load(file)
        if isinstance(loaded, dict) and TRAINING_GROUP in loaded:
            _refuse_both_group_names(file, [f"{group}.{key}" for group, entries in loaded.items()
                                            if isinstance(entries, dict) for key in entries])
            loaded = {LOADER_GROUP if group == TRAINING_GROUP else group: entries for group, entries in loaded.items()}
    except (OSError, SafetensorError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        if file.name.endswith(".safetensors") and is_pickle(file):
            raise ModelUnavailableError(pickle_named_safetensors(file)) from None
        raise ModelUnavailableError(f"cannot load the FaceID adapter '{file}' ({describe_error(exc)}): the file is "
                                    "damaged, truncated or (a pickle) holds more than tensors, which the "
                                    "weights-only load refuses — download it again") from None
    if not isinstance(loaded, dict) or not isinstance(loaded.get("ip_adapter"), dict) \
            or not isinstance(loaded.get("image_proj"), dict):
        raise ModelUnavailableError(f"'{file}' is not an IP-Adapter checkpoint: it has no 'image_proj' and "
                                    "'ip_adapter' groups")
    return {"image_proj": dict(loaded["image_proj"]), "ip_adapter": dict(loaded["ip_adapter"])}


def _refuse_both_group_names(file: Path, keys: list[str]) -> None:
    """A file with adapter keys under both ``ip_adapter`` and ``adapter_modules`` (adapter_keys.both_group_names)."""
    from ..adapter_keys import both_group_names

    problem = both_group_names(file, keys, "FaceID")
    if problem:
        raise ModelUnavailableError(problem)


def _weights_only_load(file: Path) -> object:
    """``torch.load(weights_only=True)``; torch's weights-only unpickler fails on a malformed record with whatever
    error it meets (AssertionError, IndexError, TypeError), said here as the UnpicklingError it is."""
    try:
        return torch.load(str(file), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError):
        raise
    except Exception as exc:
        raise pickle.UnpicklingError(f"{type(exc).__name__}: {describe_error(exc)}") from exc


def check_faceid_layout(state: dict[str, dict[str, torch.Tensor]], file: Path | str) -> None:
    """Refuse a checkpoint whose projection is not the FaceID layout, naming the file and what it is."""
    problem = faceid_layout_problem({key: tuple(value.shape) for key, value in state["image_proj"].items()}, file)
    if problem:
        raise ModelUnavailableError(problem)


def check_base_model(state: dict[str, dict[str, torch.Tensor]], unet: Any, file: Path | str) -> None:
    """Refuse an adapter made for another base model (an SD1.5 file with SDXL, or the reverse), naming both:
    diffusers' own error is a bare "Error(s) in loading state_dict for IPAdapterAttnProcessor2_0". plan and validate
    say the same of a .safetensors file from its header (adapter_fit.py); a pickle is told here."""
    from ..adapter_fit import base_model_mismatch

    norm = state["image_proj"].get("norm.weight")  # [cross_attention_dim] in FaceID and FaceID-Plus alike
    wanted = int(unet.config.cross_attention_dim)
    if norm is None or norm.ndim != 1 or int(norm.shape[0]) == wanted:
        return
    raise ModelUnavailableError(base_model_mismatch(int(norm.shape[0]), wanted, file))


def check_complete(state: dict[str, dict[str, torch.Tensor]], unet: Any, file: Path | str, label: str) -> None:
    """Refuse a checkpoint lacking ``ip_adapter.*`` keys this UNet's layers read (adapter_keys.py), naming the file:
    a LoRA without its ``to_out`` weights failed in ``FaceIDLoRA`` with words that blamed the UNet, and a file cut
    short with diffusers' bare missing key."""
    from ..adapter_keys import incomplete_adapter

    names = list(unet.attn_processors)
    cross = [1 + 2 * index for index in range(sum(1 for name in names if is_ip_layer(name)))]
    keys = [f"{group}.{key}" for group, entries in state.items() for key in entries]
    problem = incomplete_adapter(file, keys, label, attention_layers=len(names), cross_layers=cross)
    if problem:
        raise ModelUnavailableError(problem)


def check_lora_layout(file: Path, label: str) -> None:
    """Refuse a ``.safetensors`` adapter whose LoRA is in kohya's or diffusers' key names (adapter_keys.
    other_lora_layout): reading only the adapter groups, the render dropped it without a word. A pickle holds h94's
    two groups or is refused as no adapter."""
    if not file.name.endswith(".safetensors"):
        return
    from safetensors import safe_open

    from ..adapter_keys import other_lora_layout

    with safe_open(str(file), framework="pt", device="cpu") as handle:
        problem = other_lora_layout(file, [loader_key(key) for key in handle.keys()], label)  # noqa: SIM118
    if problem:
        raise ModelUnavailableError(problem)


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
                                        f"this UNet: {describe_error(exc)}") from None
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
    from huggingface_hub.utils import httpx

    from ..adapters import adapter_where
    from ..hub_reach import hub_problem

    where = adapter_where(source, weight_name, subfolder)
    if not weight_name.endswith(".safetensors") and not allow_pickle:
        from ..adapters import pickle_refusal

        raise ModelUnavailableError(pickle_refusal(label, source, weight_name, subfolder))
    _ask_hub_first(source, weight_name, subfolder, label, where, load_kwargs.get("revision"))
    try:
        file = Path(_get_model_file(source, weights_name=weight_name, subfolder=subfolder or None,
                                    user_agent={"file_type": "attn_procs_weights", "framework": "pytorch"},
                                    **load_kwargs))
    except httpx.TransportError as exc:  # cut off after the check was answered (no OSError: it passed every except)
        problem = hub_problem(exc, source, load_kwargs.get("revision"), downloading=True)
        if problem is None:
            raise
        raise ModelUnavailableError(problem.refusal(f"cannot load the {label} adapter {where}")) from None
    except (OSError, ValueError) as exc:
        offline = _not_cached_offline(source, weight_name, subfolder)
        if offline:
            raise ModelUnavailableError(f"cannot load the {label} adapter {where}: {offline}") from None
        raise ModelUnavailableError(f"cannot load the {label} adapter {where}: {describe_error(exc)}{lookup_hint}") \
            from None
    checkpoint = read_faceid_checkpoint(file, allow_pickle=allow_pickle)
    check_layout(checkpoint, file)
    check_base_model(checkpoint, pipe.unet, file)
    check_complete(checkpoint, pipe.unet, file, label)
    check_lora_layout(file, label)
    without_lora, lora = split_faceid_lora(checkpoint)
    from .private_rng import private_generator

    try:
        # Without accelerate, diffusers builds the projection and the processors with a random initialisation
        # that the checkpoint's weights then replace; drawn from a private generator, so loading leaves torch's
        # global one (a pipeline's own seeded stream) as it was.
        with private_generator(0):
            pipe.load_ip_adapter(without_lora, subfolder="", weight_name=weight_name, image_encoder_folder=None)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise ModelUnavailableError(
            f"cannot load the {label} adapter {where} ({file}): {describe_error(exc)}") from None
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
    state.load_note = pickle_lora_note(checkpoint, file)
    return state, layers[0]


def pickle_lora_note(checkpoint: dict[str, dict[str, torch.Tensor]], file: Path) -> str | None:
    """A pickled adapter without its LoRA, in the words validate and plan use for a ``.safetensors`` one
    (adapter_layout.missing_lora_note): their note reads a safetensors header, and a pickle's keys are known only
    once loaded here (weights-only), so the engine says it. None for a ``.safetensors`` file (already said) or a
    pickle that carries its LoRA. A note only: the adapter renders as it is."""
    if file.name.endswith(".safetensors"):
        return None
    from ..adapter_layout import lora_absent_note

    return lora_absent_note(file, (f"{group}.{key}" for group, keys in checkpoint.items() for key in keys))


def _ask_hub_first(source: str, weight_name: str, subfolder: str, label: str, where: str,
                   revision: str | None) -> None:
    """A hub adapter the cache lacks: the hub asked once before diffusers' download, which retries an unanswered
    request for 25 s to minutes (idcli/hub_reach.py, as the base model's download); a refusal is raised in words."""
    from ..hub_reach import ask_before_download

    problem = ask_before_download(source, f"{subfolder}/{weight_name}" if subfolder else weight_name, revision)
    if problem is not None:
        raise ModelUnavailableError(problem.refusal(f"cannot load the {label} adapter {where}", uncached=True))


def _not_cached_offline(source: str, weight_name: str, subfolder: str) -> str | None:
    """Why a hub adapter's lookup failed in offline mode, and the way forward; None when not offline or local.

    diffusers words a file missing from the cache in offline mode as the repository not having it ("h94/IP-Adapter-
    FaceID does not appear to have a file named ip-adapter-faceid_sd15.bin"), which sent people looking for a
    renamed file."""
    from ..adapters import not_cached_offline
    from ..hub_reach import offline_now

    if not offline_now() or Path(source).is_dir():
        return None
    return not_cached_offline(source, weight_name, subfolder)


def unload_faceid_adapter(pipe: Any) -> None:
    """Remove the adapter: plain attention processors and no identity projection."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    processors = {name: AttnProcessor2_0() if isinstance(proc, RowScaledIPAdapterProcessor) else proc
                  for name, proc in pipe.unet.attn_processors.items()}
    pipe.unet.set_attn_processor(processors)
    pipe.unload_ip_adapter()
