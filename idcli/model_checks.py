"""The models a shot list renders with, checked as ``plan`` resolves them but reading no weight: what
``idcli validate`` adds to its checks of the document (docs/shot-lists.md).

A local model folder must exist and have the pipeline layout plan checks (models.check_local_folder); a hub model,
adapter or image encoder must be in the local Hugging Face cache when HF_HUB_OFFLINE=1 forbids the render to
download it (else validate notes that the render downloads it first), and a cached hub snapshot must hold the files
of each tokenizer its model_index.json names, as a local folder must (models.tokenizer_lacks). Each problem is at
the shot list's line and field (``model.id``; ``model.preset`` for the preset's own model; ``model.adapter``).
Nothing is hashed, nothing is loaded, the hub is never asked: the cache's folders are read
(model_setup.hub_file_cached).
"""

from __future__ import annotations

from pathlib import Path

from .errors import ModelUnavailableError, Problem
from .models import resolve_model
from .presets import PRESETS, get_preset
from .shotlist import LoadedShotList


def model_problems(loaded: LoadedShotList) -> tuple[list[Problem], list[Problem]]:
    """(problems, notes) of the shot list's models: a problem stops the render; a note is what it downloads."""
    from huggingface_hub import constants

    spec = loaded.shotlist.model
    if get_preset(spec.preset).random_weights:
        return [], []  # built here from a seed: nothing to find
    offline = bool(constants.HF_HUB_OFFLINE)
    problems: list[Problem] = []
    notes: list[Problem] = []

    def said(message: str, field: tuple[str, ...], *, note: bool = False) -> None:
        line, column = loaded.position(field)
        (notes if note else problems).append(Problem(message, ".".join(field), line, column))

    model_field = ("model", "id") if spec.id else ("model", "preset")
    try:
        model = resolve_model(spec, loaded.base_dir, "float32", hash_contents=False)
    except ModelUnavailableError as exc:
        said(str(exc), model_field)
        return problems, notes
    from .model_weight_keys import check_base_model_weights

    try:  # a damaged shard index; a weight file lacking weights is plan's to find (it imports the model libraries)
        check_base_model_weights(model, keys=False)
    except ModelUnavailableError as exc:
        said(str(exc), model_field)
        return problems, notes
    if model.source == "hub" and model.id is not None:
        if not _cached(model.id, "model_index.json", model.revision):
            said(_model_not_cached(model.id, model.preset, spec.id is not None, loaded, offline), model_field,
                 note=not offline)
        else:
            lacking = _snapshot_tokenizer_lacks(model.id, model.revision)
            if lacking is not None:
                said(_snapshot_incomplete(model.id, model.preset, lacking, offline), model_field, note=not offline)
    if not _names_a_character(loaded):
        return problems, notes  # plan resolves an adapter only for the shots' characters
    from .adapters import adapter_where, encoder_not_cached_offline, not_cached_offline, resolve_adapter

    adapter_field = ("model", "adapter") if spec.adapter is not None else ("model", "preset")
    try:
        adapter = resolve_adapter(spec, model, loaded.base_dir, hash_contents=False)
    except ModelUnavailableError as exc:
        said(str(exc), adapter_field)
        return problems, notes
    from .adapters import adapter_lora_note, adapter_name_note

    for note in (adapter_lora_note(adapter), adapter_name_note(adapter)):  # both render: noted, not refused
        if note is not None:
            said(note, adapter_field, note=True)
    label = "FaceID-Plus v2" if adapter.is_plus else "FaceID"
    where = adapter_where(adapter.id, adapter.weight_name, adapter.subfolder)
    file = f"{adapter.subfolder.strip('/')}/{adapter.weight_name}" if adapter.subfolder.strip("/") else \
        adapter.weight_name
    if adapter.source == "hub" and not _cached(adapter.id, file, adapter.revision):
        advice = not_cached_offline(adapter.id, adapter.weight_name, adapter.subfolder)
        said(f"cannot load the {label} adapter {where}: {advice}" if offline else
             f"the {label} adapter {where} is not in the Hugging Face cache: the render downloads it first"
             + _pickle_words(adapter.id, adapter.weight_name, adapter.allow_pickle),
             adapter_field, note=not offline)
    encoder = adapter.image_encoder
    if encoder is not None and encoder.source == "hub":
        config = f"{encoder.subfolder.strip('/')}/config.json" if encoder.subfolder.strip("/") else "config.json"
        if not _cached(encoder.id, config, encoder.revision):
            what = f"the CLIP image encoder '{encoder.id}' ({encoder.subfolder or 'its top folder'}) is not in the " \
                "Hugging Face cache"
            said(encoder_not_cached_offline(encoder.id, encoder.subfolder, model.preset) if offline
                 else f"{what}: the render downloads it first",
                 ("model", "adapter", "image_encoder") if spec.adapter is not None and spec.adapter.image_encoder
                 else adapter_field, note=not offline)
    return problems, notes


def _pickle_words(source: str, weight_name: str, allow_pickle: bool) -> str:
    """What a download of a pickled adapter (a preset's published ``.bin``) needs before the render loads it: the
    render refuses a pickle without ``model.allow_pickle: true`` (docs/models.md), after encoding every selfie and
    loading the base model, so the note that it downloads the file says so, and how to do without."""
    if allow_pickle or weight_name.endswith(".safetensors"):
        return ""
    from .adapters import fetch_command

    fetch = fetch_command(source, weight_name)
    return (", and it is a pickle (.bin), which the render loads only with model.allow_pickle: true; or "
            + (f"convert it to safetensors once with {fetch}" if fetch
               else "point model.adapter at a .safetensors copy of it"))


def face_models_note(loaded: LoadedShotList, face_models: str | None) -> Problem | None:
    """A note at ``characters`` when the shots name a character and the face-model folder plan and render read holds
    no ``.onnx`` file (chosen as ``identity.resolve.face_models_for`` chooses it); None when it does, or when no shot
    names a character. The files are listed, not read or hashed. A note, not a problem: the document is valid, the
    render never downloads them, and a machine checking shot lists (an editor, CI) need not hold them."""
    from .identity.faces import face_model_files, face_models_folder

    if not _names_a_character(loaded):
        return None
    preset_default = "synthetic" if get_preset(loaded.shotlist.model.preset).random_weights else None
    folder, chosen = face_models_folder(face_models, preset_default)
    if folder is None:  # the random-weight test pack, built on first use
        return None
    try:
        face_model_files(folder, chosen)
    except ModelUnavailableError as exc:
        line, column = loaded.position(("characters",))
        return Problem(f"plan and render read face models for the characters the shots name: {exc}", "characters",
                       line, column)
    return None


def _cached(repo_id: str, filename: str, revision: str | None) -> bool:
    """Whether the Hugging Face cache holds ``filename`` of ``repo_id`` at ``revision`` (its folders read, no
    request)."""
    from .model_setup import hub_file_cached

    return hub_file_cached(repo_id, filename, revision)


def _snapshot_tokenizer_lacks(model_id: str, revision: str | None) -> tuple[Path, str] | None:
    """The cached snapshot of a hub model and what a tokenizer its model_index.json names lacks (a half-finished
    download; a local folder's are checked by models.check_local_folder); None when each has its files, or when the
    index cannot be read (the render says so)."""
    from .model_setup import hub_snapshot
    from .models import read_model_json, tokenizer_lacks

    snapshot = hub_snapshot(model_id, revision)
    if snapshot is None:
        return None
    try:
        index = read_model_json(snapshot / "model_index.json")
    except (OSError, ValueError):
        return None
    if not isinstance(index, dict):
        return None
    for name in ("tokenizer", "tokenizer_2"):
        entry = index.get(name)
        lacking = tokenizer_lacks(snapshot, name) if isinstance(entry, list) and entry and entry[0] is not None \
            else None
        if lacking is not None:
            return snapshot, lacking
    return None


def _snapshot_incomplete(model_id: str, preset: str, lacking: tuple[Path, str], offline: bool) -> str:
    """A local folder's words for a tokenizer without its files, for a cached hub snapshot: online the render downloads
    what is missing (diffusers completes a cached snapshot), offline it cannot."""
    snapshot, lacks = lacking
    what = f"'{model_id}' is incomplete in the Hugging Face cache ({snapshot}): {lacks}"
    if not offline:
        return f"{what}; the render downloads the missing files first"
    return (f"{what}, and HF_HUB_OFFLINE=1 forbids downloading the missing files. To fix: download it again with "
            f"{_fetch_words(model_id, preset)} on a machine with network access, then copy the cache here")


def _fetch_words(model_id: str, preset: str) -> str:
    return (f"`idcli models fetch {preset}`, or `hf download {model_id}`" if model_id == PRESETS[preset].default_id
            else f"`hf download {model_id}`")


def _model_not_cached(model_id: str, preset: str, given: bool, loaded: LoadedShotList, offline: bool) -> str:
    from huggingface_hub import constants

    from .paths import local_path

    fetch = _fetch_words(model_id, preset)
    local = local_path(model_id, loaded.base_dir) if given else None
    what = f"'{model_id}' is no folder here ({local}) and" if local is not None else f"'{model_id}' is"
    if not offline:
        return f"{what} not in the Hugging Face cache: the render downloads it first (get it now with {fetch})"
    return (f"{what} not in the Hugging Face cache ({constants.HF_HUB_CACHE}), and HF_HUB_OFFLINE=1 forbids "
            f"downloading it. To fix: " + ("give the folder's path if it is a model folder of yours, or " if given
                                            else "") +
            f"download it once with {fetch} on a machine with network access, then copy the cache here")


def _names_a_character(loaded: LoadedShotList) -> bool:
    from .shot_prompts import shot_characters

    return any(shot_characters(shot) for shot in loaded.shotlist.shots)


__all__ = ["face_models_note", "model_problems"]

