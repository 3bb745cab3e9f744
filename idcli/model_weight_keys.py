"""A base model's weight files checked against the weights each of its components needs, before any work: by ``plan``
and the start of a render (before any selfie is encoded), from the files' key names alone; ``validate`` checks the
shard indexes only (the key check imports torch, diffusers and transformers: about 7 s where validate takes 0.6).

A weight file that lacks some of a component's weights (a truncated export: a UNet saved again without some keys)
loads in diffusers and transformers with those weights at their random initialisation, a warning the only word; the
render refuses it as it loads the model (engine/build.py), which is after the selfies are encoded. Here the same
refusal comes first. What a component needs is what those libraries compare a checkpoint with: the component built
from its ``config.json`` on the meta device (no memory, no initialisation) and its ``state_dict()`` keys; what a
file holds is read without a weight: a ``.safetensors`` header, a shard index's ``weight_map`` and its shards'
headers, an allowed pickle's record memory-mapped (adapter_pickle.py; never a pickle the shot list does not allow).
The checkpoint's keys are renamed as the libraries rename them on load before comparing: diffusers'
``_fix_state_dict_keys_on_load`` (old attention blocks' ``query``/``key``/``value``/``proj_attn``, one-file
checkpoints only, as diffusers does it) and transformers' conversion mapping with its ``base_model_prefix`` added or
stripped, then its ``_keys_to_ignore_on_load_missing`` and tied weights. A ``.safetensors`` file cut short or with a
damaged header is refused as such (weight_file_damage.py: safetensors' own check, no tensor read), and so is a shard
index naming weights its shards do not hold (diffusers would load them uninitialised); a config asking for more
layers than plan builds is refused before it is built (model_config_bounds.py). Any other file or folder this cannot
read is left to the render, which says what it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import ModelUnavailableError
from .model_config_bounds import refuse_oversized_config

# What a render loads of a pipeline folder: the safety checker never runs and the feature extractor only feeds it.
_NOT_LOADED = {"safety_checker", "feature_extractor"}
# The files diffusers (ModelMixin) and transformers (PreTrainedModel) name their weights with; each preferred over the
# next as the library prefers it (diffusers takes a sharded index before one file, transformers one file first).
_DIFFUSERS_FILES = ("diffusion_pytorch_model.safetensors.index.json", "diffusion_pytorch_model.safetensors")
_DIFFUSERS_PICKLES = ("diffusion_pytorch_model.bin.index.json", "diffusion_pytorch_model.bin")
_TRANSFORMERS_FILES = ("model.safetensors", "model.safetensors.index.json")
_TRANSFORMERS_PICKLES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
SHOWN_KEYS = 3  # missing keys named in a refusal: enough to tell a cut file from a renamed one


def with_variant(name: str, variant: str | None) -> str:
    """A weight file's name with ``variant`` before its last suffix, as diffusers' and transformers' ``_add_variant``
    write it: ``diffusion_pytorch_model.fp16.safetensors``, ``model.safetensors.index.fp16.json``."""
    if variant is None:
        return name
    stem, _, suffix = name.rpartition(".")
    return f"{stem}.{variant}.{suffix}"


def missing_weights_words(folder: Path | str, where: str, name: str, missing: list[str]) -> str:
    """The refusal of a component whose weight files leave out some of its weights, as plan and the render say it:
    ``where`` is "the weight file '…' leaves" or "its shard index '…' leaves"."""
    shown = ", ".join(f"'{key}'" for key in missing[:SHOWN_KEYS])
    return (f"cannot load model '{folder}': {where} out {len(missing)} of the weights the {name} needs (such as "
            f"{shown}), which would render at random values, a different image each run. To fix: download or save "
            "the model again (save_pretrained(..., safe_serialization=True))")


def shard_index_problem(index: Path) -> tuple[str | None, dict[str, str]]:
    """What is wrong with a shard index (``….safetensors.index.json``, ``….bin.index.json``) that would stop the
    render or leave it reading something else (None when nothing), and its ``weight_map``: not JSON, no
    ``weight_map`` naming a shard file for each tensor, no ``metadata`` object (which save_pretrained always writes
    and diffusers reads unchecked), a shard named with a folder (``../x``, an absolute path: the libraries join it to
    the component's folder) or one that is not there."""
    try:
        read = json.loads(index.read_text("utf-8"))
        weight_map = read.get("weight_map")
    except AttributeError:  # a list or a string, not an object
        return "it is no JSON object", {}
    except (OSError, ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        return f"it cannot be read as JSON ({exc})", {}
    if not (isinstance(weight_map, dict) and all(isinstance(v, str) for v in weight_map.values())):
        return 'it has no "weight_map" naming a shard file for each tensor', {}
    if not isinstance(read.get("metadata"), dict):
        return 'it has no "metadata" object', {}
    for shard in sorted(set(weight_map.values())):
        if "\\" in shard or len(PurePosixPath(shard).parts) != 1 or shard in (".", ".."):
            return f"it names the shard '{shard}' outside its folder", {}
        if not (index.parent / shard).is_file():
            return f"it names the shard '{shard}', which is not in {index.parent}", {}
    return None, weight_map


def refuse_damaged_index(folder: Path | str, index: Path) -> dict[str, str]:
    """A shard index's ``weight_map``, or the refusal of a damaged one (exit 4)."""
    problem, weight_map = shard_index_problem(index)
    if problem is not None:
        raise ModelUnavailableError(
            f"cannot load model '{folder}': its shard index '{index}' is damaged ({problem}). To fix: download or "
            "save the model again (save_pretrained(..., safe_serialization=True))")
    return weight_map


def unheld_weights(index: Path) -> dict[str, str]:
    """The tensors a safetensors shard index names that none of its shards holds, each with the shard it names (a
    shard from another copy or revision); empty when there are none, or for an index or shard that cannot be read
    (refused elsewhere). diffusers counts a sharded checkpoint's tensors from the index, not its shards: such a weight
    loads uninitialised with no word. A tensor the index places in the wrong shard loads (both libraries read every
    shard the index names) and is not counted."""
    held = held_weights(index)
    if held is None:
        return {}
    return {key: shard for key, shard in shard_index_problem(index)[1].items() if key not in held}


def held_weights(index: Path) -> set[str] | None:
    """The tensors the shards a safetensors shard index names hold, from their headers: what both libraries load,
    whatever the index lists (diffusers reports a held tensor the index leaves out as missing, yet loads it). None for
    an index or shard that cannot be read so (refused elsewhere)."""
    from .adapter_layout import safetensors_shapes

    problem, weight_map = shard_index_problem(index)
    shards = sorted(set(weight_map.values()))
    if problem is not None or not all(shard.endswith(".safetensors") for shard in shards):
        return None
    try:
        return {key for shard in shards for key in safetensors_shapes(index.parent / shard)}
    except (OSError, ValueError):
        return None


def safetensors_index(part: Path, variant: str | None, from_diffusers: bool) -> Path | None:
    """The safetensors shard index a component's library loads from ``part`` (diffusers takes one before a single
    file, transformers after), or None when it loads no such index."""
    names = _DIFFUSERS_FILES if from_diffusers else _TRANSFORMERS_FILES
    chosen = next((file for file in (part / with_variant(name, variant) for name in names) if file.is_file()), None)
    return chosen if chosen is not None and chosen.name.endswith(".json") else None


def refuse_damaged_safetensors(folder: Path | str, part: Path, variant: str | None, from_diffusers: bool) -> None:
    """Refuse (exit 4), in plan's words, the first safetensors file a component's library loads from ``part`` (its
    file, or its shard index's shards) that safetensors cannot open: the render's word on a file cut after plan, or
    loaded with plan skipped (a library call, a Ray worker), where the libraries name no file or say no more than
    "damaged". Nothing when each opens."""
    from .weight_file_damage import damaged_weights_words, safetensors_damage

    names = _DIFFUSERS_FILES if from_diffusers else _TRANSFORMERS_FILES
    chosen = next((file for file in (part / with_variant(name, variant) for name in names) if file.is_file()), None)
    files = [chosen] if chosen is not None else []
    if chosen is not None and chosen.name.endswith(".json"):
        files = [part / shard for shard in sorted(set(shard_index_problem(chosen)[1].values()))]
    for file in files:
        try:
            damage = safetensors_damage(file)
        except OSError:  # not there, not readable: the library's own words say so
            continue
        if damage is not None:
            raise ModelUnavailableError(damaged_weights_words(folder, file, damage))


def refuse_unheld_weights(folder: Path | str, weights: Path, name: str, needed: Iterable[str]) -> None:
    """Refuse (exit 4) a component whose safetensors shard index ``weights`` names weights of ``needed`` (what the
    component needs, or what it lacks) that none of its shards holds, naming the index, a few of them and their
    shards, as plan and the render say it; nothing when ``weights`` is not such an index or they are all held."""
    if ".safetensors.index." not in weights.name:
        return
    unheld = unheld_weights(weights)
    claimed = sorted(set(unheld).intersection(needed))
    if claimed:
        shown = ", ".join(f"'{key}' in '{unheld[key]}'" for key in claimed[:SHOWN_KEYS])
        raise ModelUnavailableError(
            f"cannot load model '{folder}': its shard index '{weights}' names {len(claimed)} of the weights the "
            f"{name} needs in shards that do not hold them (such as {shown}), which would load uninitialised, a "
            "different image each run. To fix: copy the model's shards again from where they came, or download or "
            "save the model again")


def check_model_weights(folder: Path, allow_pickle: bool, variant: str | None, *, keys: bool = True) -> None:
    """Refuse (exit 4) a pipeline folder or cached hub snapshot whose weighted components' weight files leave out
    weights the component needs, or whose shard index is damaged, naming the file and a few missing keys. ``variant``:
    what the render passes diffusers (``fp16`` for a local folder of fp16 files; None for a hub id). Reads headers,
    indexes and configs only; a folder or file it cannot read is left to the render. ``keys=False`` checks the shard
    indexes alone, importing no model library (``validate``: a second's reading of a shot list, not seven)."""
    try:
        index = json.loads((folder / "model_index.json").read_text("utf-8"))
    except (OSError, ValueError, RecursionError):
        return  # models.check_local_folder says so of a local folder, the render of a snapshot
    if not isinstance(index, dict):
        return
    if not keys:
        _check_shard_indexes(folder, index, allow_pickle, variant)
        return
    from .library_quiet import quiet_model_libraries

    with quiet_model_libraries():
        _check_components(folder, index, allow_pickle, variant)


def _check_components(folder: Path, index: dict[str, Any], allow_pickle: bool, variant: str | None) -> None:
    import diffusers
    import transformers

    variants: dict[str, str] = {}
    if variant is not None:  # diffusers' pipeline loading is a second's import more: only where a variant is asked
        from diffusers.pipelines.pipeline_loading_utils import _identify_model_variants

        # diffusers gives the variant only to the components that have variant files; the render does the same.
        variants = _identify_model_variants(folder=str(folder), variant=variant, config=index)
    for name, entry in index.items():
        part = folder / name
        if name in _NOT_LOADED or not (isinstance(entry, list) and len(entry) == 2 and part.is_dir()):
            continue
        library = {"diffusers": diffusers, "transformers": transformers}.get(str(entry[0]))
        component_class: Any = getattr(library, str(entry[1]), None) if library is not None else None
        if not isinstance(component_class, type):
            continue
        if issubclass(component_class, diffusers.ModelMixin):
            names = _DIFFUSERS_FILES + (_DIFFUSERS_PICKLES if allow_pickle else ())
        elif issubclass(component_class, transformers.PreTrainedModel):
            names = _TRANSFORMERS_FILES + (_TRANSFORMERS_PICKLES if allow_pickle else ())
        else:
            continue  # a tokenizer, a scheduler: no weights
        files = [part / with_variant(file, variants.get(name)) for file in names]
        weights = next((file for file in files if file.is_file()), None)
        if weights is None:
            continue  # the render says which file it looked for
        keys = _checkpoint_keys(folder, weights)
        if keys is None:
            continue
        refuse_oversized_config(folder, part)  # built on the meta device next: its time grows with its layers
        try:
            missing = _missing_keys(component_class, part, keys, sharded=weights.name.endswith(".json"))
        except Exception:  # a config the class cannot be built from: the render says what from_pretrained says
            continue
        if missing:
            refuse_unheld_weights(folder, weights, name, missing)
            where = f"its shard index '{weights}' leaves" if weights.name.endswith(".json") \
                else f"the weight file '{weights}' leaves"
            raise ModelUnavailableError(missing_weights_words(folder, where, name, missing))


def _check_shard_indexes(folder: Path, index: dict[str, Any], allow_pickle: bool, variant: str | None) -> None:
    """Refuse a damaged shard index the render would read, told from model_index.json's library names alone: the
    files each library looks for, in its order (a diffusers component takes its index before one file, a transformers
    one the other way round; tokenizers and schedulers have none), the variant's where the component has them, as
    diffusers gives it (``_identify_model_variants``)."""
    for name, entry in index.items():
        part = folder / name
        if name in _NOT_LOADED or not (isinstance(entry, list) and len(entry) == 2 and part.is_dir()):
            continue
        if entry[0] == "diffusers":
            names = _DIFFUSERS_FILES + (_DIFFUSERS_PICKLES if allow_pickle else ())
        elif entry[0] == "transformers":
            names = _TRANSFORMERS_FILES + (_TRANSFORMERS_PICKLES if allow_pickle else ())
        else:
            continue
        with_variants = [part / with_variant(file, variant) for file in names]
        files = with_variants if any(file.is_file() for file in with_variants) else [part / file for file in names]
        weights = next((file for file in files if file.is_file()), None)
        if weights is not None and weights.name.endswith(".json"):
            refuse_damaged_index(folder, weights)


def _checkpoint_keys(folder: Path, weights: Path) -> list[str] | None:
    """The tensor names a weight file or shard index holds, read without a weight: a safetensors header, an index's
    shards' headers (its ``weight_map`` for pickled shards; a damaged index refused, in the render's words), an allowed
    pickle's record memory-mapped. A cut or damaged safetensors file is refused (exit 4); None when a file cannot be
    read otherwise (the render names it)."""
    from .adapter_layout import safetensors_shapes

    try:
        if weights.name.endswith(".json"):
            weight_map = refuse_damaged_index(folder, weights)
            shards = sorted(set(weight_map.values()))
            if not all(shard.endswith(".safetensors") for shard in shards):
                return list(weight_map)
            return [key for shard in shards for key in safetensors_shapes(_whole(folder, weights.parent / shard))]
        if weights.suffix == ".safetensors":
            return list(safetensors_shapes(_whole(folder, weights)))
    except (OSError, ValueError):
        return None
    from .adapter_pickle import pickled_weight_names

    return pickled_weight_names(weights)


def _whole(folder: Path, weights: Path) -> Path:
    """``weights``, refused (exit 4) when safetensors cannot open it: cut short, a damaged header (its header alone
    read, as safetensors checks it on opening: weight_file_damage.py)."""
    from .weight_file_damage import damaged_weights_words, safetensors_damage

    damage = safetensors_damage(weights)
    if damage is not None:
        raise ModelUnavailableError(damaged_weights_words(folder, weights, damage))
    return weights


def _missing_keys(component_class: type, part: Path, keys: Iterable[str], *, sharded: bool) -> list[str]:
    """The keys of the component built from ``part``'s config that the checkpoint's ``keys`` leave out after the
    renames its library does on load, sorted."""
    import diffusers
    import torch

    from_diffusers = issubclass(component_class, diffusers.ModelMixin)
    with torch.device("meta"):  # parameters and buffers of no memory; their initialisation costs nothing
        model = _on_meta(component_class, part, from_diffusers)
    expected = model.state_dict()
    if from_diffusers:
        loaded = dict.fromkeys(keys)
        if not sharded:  # diffusers renames old attention blocks' keys of one-file checkpoints only
            model._fix_state_dict_keys_on_load(loaded)
        return sorted(set(expected) - set(loaded))
    return _transformers_missing(model, expected, keys)


def _on_meta(component_class: type, part: Path, from_diffusers: bool) -> Any:
    """The component as from_pretrained builds it before loading weights (call inside ``torch.device("meta")``)."""
    if from_diffusers:
        from diffusers.models.modeling_utils import LegacyModelMixin

        config = component_class.load_config(str(part))  # type: ignore[attr-defined]
        if issubclass(component_class, LegacyModelMixin):  # what LegacyModelMixin.from_pretrained loads instead
            from diffusers.models.model_loading_utils import _fetch_remapped_cls_from_config

            component_class = _fetch_remapped_cls_from_config(config, component_class)
        return component_class.from_config(config)  # type: ignore[attr-defined]
    config = component_class.config_class.from_pretrained(str(part))  # type: ignore[attr-defined]
    return component_class(config)


def _transformers_missing(model: Any, expected: dict[str, Any], keys: Iterable[str]) -> list[str]:
    """transformers' missing keys, as convert_and_load_state_dict_in_model and _finalize_model_loading find them."""
    import re

    from transformers.conversion_mapping import get_model_conversion_mapping
    from transformers.core_model_loading import WeightConverter, WeightRenaming, rename_source_key

    mapping = get_model_conversion_mapping(model)
    renamings = [entry for entry in mapping if isinstance(entry, WeightRenaming)]
    converters = [entry for entry in mapping if isinstance(entry, WeightConverter)]
    prefix = model.base_model_prefix
    loaded = set()
    for key in keys:
        renamed, _ = rename_source_key(key, renamings, converters, prefix, expected)
        if renamed not in expected and key in expected:  # as transformers: the prefix alone, not the renames
            renamed, _ = rename_source_key(key, [], [], base_model_prefix=prefix, meta_state_dict=expected)
        loaded.add(renamed)
    missing = set(expected) - loaded
    for target, source in (getattr(model, "all_tied_weights_keys", None) or {}).items():
        if target in missing and source not in missing:  # tie_weights fills either from the other
            missing.discard(target)
        elif source in missing and target not in missing:
            missing.discard(source)
    patterns = model._keys_to_ignore_on_load_missing or set()
    if patterns:
        ignored = re.compile("|".join(rf"({pattern})" for pattern in patterns))
        missing = {key for key in missing if ignored.search(key) is None}
    return sorted(missing)


def check_base_model_weights(model: Any, *, keys: bool = True) -> None:
    """``check_model_weights`` of the base model a shot list renders with (a ``models.ModelIdentity``): a local
    folder, or a hub model's snapshot already in the Hugging Face cache (never downloaded: one not cached is checked by
    the render as it loads it). Random-weight presets have no files. ``keys=False``: the shard indexes alone."""
    if model.random_weights or model.id is None:
        return
    if model.source == "local":
        from .models import weights_variant

        folder = Path(model.id)
        check_model_weights(folder, model.allow_pickle, weights_variant(folder), keys=keys)
    elif model.source == "hub":
        from .model_setup import hub_snapshot

        snapshot = hub_snapshot(model.id, model.revision)
        if snapshot is not None:
            check_model_weights(snapshot, model.allow_pickle, None, keys=keys)


__all__ = ["check_base_model_weights", "check_model_weights", "held_weights", "missing_weights_words",
           "refuse_damaged_index", "refuse_damaged_safetensors", "refuse_unheld_weights", "safetensors_index",
           "shard_index_problem", "unheld_weights", "with_variant"]
