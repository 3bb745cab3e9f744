"""Which model a run uses, named by content so that job keys change exactly when weights do.

No torch here: the planner needs the model's identity, not the model.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import ModelUnavailableError
from .hashing import canonical_json, sha256_file_cached, tagged_hash
from .paths import local_path
from .presets import PRESETS, TINY_INIT_SEED, get_preset
from .shotlist import ModelSpec

# Files whose bytes decide a local diffusers folder's output: weights, configs, tokenizer files.
_MODEL_FILE_SUFFIXES = {".safetensors", ".json", ".txt", ".model"}
_PICKLE_SUFFIXES = {".bin", ".ckpt", ".pt", ".pth"}
MAX_MODEL_JSON_BYTES = 16 * 1024 * 1024  # a pipeline's model_index.json or a component's config.json is a few kB


@dataclass(frozen=True)
class ModelIdentity:
    preset: str
    architecture: str  # "sd" or "sdxl"
    source: str  # "builtin" (tiny random weights), "hub" or "local"
    id: str | None  # hub repo id or absolute local folder
    revision: str | None  # hub revision ("main" unless pinned)
    content_hash: str | None  # builtin: config hash; local: hash over the folder's files
    dtype: str  # resolved: float32, float16 or bfloat16
    random_weights: bool
    allow_pickle: bool = False

    def key_material(self) -> dict[str, Any]:
        """What of the model enters a job key. The local path does not: moving a folder changes nothing."""
        material: dict[str, Any] = {"architecture": self.architecture, "dtype": self.dtype}
        if self.source == "hub":
            material["hub"] = {"id": self.id, "revision": self.revision}
        else:
            material[self.source] = self.content_hash
        return material

    def as_record(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def label(self) -> str:
        """Short text for PNG ``parameters`` chunks and tables."""
        if self.source == "builtin":
            return f"{self.preset} (random weights)"
        if self.source == "hub":
            return f"{self.id}@{self.revision}"
        return f"{self.id} ({(self.content_hash or '')[:19]})"


def _weight_variant(file: Path) -> str | None:
    """``fp16`` for ``diffusion_pytorch_model.fp16.safetensors`` (and its shards ``….fp16-00001-of-00002…``);
    None for a full-precision file (``model.safetensors``, ``model-00001-of-00002.safetensors``)."""
    parts = file.name.split(".")
    return parts[1].split("-")[0] if len(parts) >= 3 else None


def weights_variant(folder: Path) -> str | None:
    """The ``variant`` to give ``from_pretrained`` for a pipeline folder: ``"fp16"`` when some component holds only
    ``*.fp16.safetensors`` files (``save_pretrained(variant="fp16")``, or a hub download of those files only) or,
    having no safetensors, only ``*.fp16.bin`` pickles; None when every component has full-precision weights (loaded
    as before, so their images are unchanged).

    With a variant, diffusers loads each component's variant files where it has them and its plain files where it
    has none (pipeline_loading_utils._identify_model_variants), so a folder mixing both kinds of component loads.
    It takes one variant name per call: components holding only different variants (fp16 here, bf16 there) are
    refused, naming them."""
    variants: dict[str, set[str]] = {}
    for part in sorted(p for p in folder.iterdir() if p.is_dir()):
        weights = [p for p in part.iterdir() if p.suffix == ".safetensors"]
        # A component with pickles only (``diffusion_pytorch_model.fp16.bin``; loaded only with model.allow_pickle,
        # refused before this otherwise) comes in the variant its pickles are named for.
        weights = weights or [p for p in part.iterdir() if p.suffix == ".bin"]
        found = {_weight_variant(p) for p in weights}
        if weights and None not in found:
            variants[part.name] = {v for v in found if v}
    names = sorted({v for found in variants.values() for v in found})
    if len(names) > 1:
        raise ModelUnavailableError(
            f"'{folder}' holds only variant weights of different kinds ("
            + ", ".join(f"{part}: {' / '.join(sorted(found))}" for part, found in variants.items())
            + "); diffusers loads one variant per pipeline. To fix: save the components with one variant, or "
            "without a variant (save_pretrained(NEW_FOLDER)), and point model.id at that folder")
    return names[0] if names else None


# What from_pretrained reads of each component idcli loads (the safety checker and feature extractor are skipped).
_COMPONENT_FILES = {"unet": "config.json", "vae": "config.json", "text_encoder": "config.json",
                    "text_encoder_2": "config.json", "scheduler": "scheduler_config.json", "tokenizer": "",
                    "tokenizer_2": ""}


def read_model_json(path: Path) -> Any:
    """A model folder's small JSON file (model_index.json, config.json), read bounded: a received folder's may be
    nested past Python's stack (an internal error) or hundreds of MB (a 300 MB sparse one cost 945 MB). Anything
    that is not such a file is a ValueError."""
    from .safeio import NotRegularFile, read_regular

    try:
        return json.loads(read_regular(path, MAX_MODEL_JSON_BYTES).decode("utf-8"))
    except NotRegularFile as exc:
        raise ValueError(f"{path}: not a readable JSON file ({exc.kind})") from None
    except RecursionError:
        raise ValueError(f"{path}: nested too deep") from None


def _refuse_missing_components(folder: Path) -> None:
    """A component model_index.json names whose folder is missing or incomplete (a partial copy): diffusers'
    own error names a config.json "in" the pipeline folder, after loading the others."""
    try:
        index = read_model_json(folder / "model_index.json")
    except (OSError, ValueError):
        raise ModelUnavailableError(f"'{folder}': model_index.json cannot be read as JSON") from None
    if not isinstance(index, dict):
        raise ModelUnavailableError(f"'{folder}': model_index.json is not a JSON object")
    _refuse_own_code(folder, index)
    for name, needed in _COMPONENT_FILES.items():
        entry = index.get(name)
        if not (isinstance(entry, list) and entry and entry[0] is not None):
            continue  # not part of this pipeline (text_encoder_2 of SD1.5), or saved as None
        path = folder / name / needed if needed else folder / name
        if not (path.is_file() if needed else path.is_dir()):
            raise ModelUnavailableError(
                f"'{folder}' is incomplete: model_index.json names {name}, but there is no {name}/{needed} — copy "
                "or download the whole folder again")
        if name.startswith("tokenizer"):
            _refuse_tokenizer_without_files(folder, name)


def _refuse_tokenizer_without_files(folder: Path, name: str) -> None:
    """A tokenizer folder that lost its files: transformers 5 builds an empty CLIPTokenizer instead of raising (it
    knows only its special tokens), and every prompt became unknown tokens, rendered without a word; without
    tokenizer_config.json it has no window size (77), and the render stopped on an internal error."""
    lacking = tokenizer_lacks(folder, name)
    if lacking:
        raise ModelUnavailableError(f"'{folder}' is incomplete: {lacking} — copy or download the whole folder again")


def tokenizer_lacks(folder: Path, name: str) -> str | None:
    """What the tokenizer folder ``name`` of the pipeline folder (or cached hub snapshot) ``folder`` lacks for
    transformers to build a tokenizer that encodes prompts, as "its tokenizer/ lacks merges.txt; transformers would
    …"; None when it has its files (tokenizer.json, or vocab.json and merges.txt, beside tokenizer_config.json)."""
    part = folder / name
    have = {file for file in ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json")
            if (part / file).is_file()}
    missing = [] if "tokenizer.json" in have or {"vocab.json", "merges.txt"} <= have else \
        ["merges.txt"] if "vocab.json" in have else ["vocab.json"] if "merges.txt" in have else \
        ["tokenizer.json (or vocab.json and merges.txt)"]
    missing += [] if "tokenizer_config.json" in have else ["tokenizer_config.json"]
    if not missing:
        return None
    return (f"its {name}/ lacks {' and '.join(missing)}; transformers would build a tokenizer that cannot encode the "
            "prompts (every word unknown, or no window size)")


def _refuse_own_code(folder: Path, index: dict[str, Any]) -> None:
    """A pipeline folder whose model_index.json names code of its own (``"unet": ["my_unet", "MyUNet"]`` beside
    ``unet/my_unet.py``, or a custom pipeline ``"_class_name": ["pipeline_x", "X"]``): diffusers loads it only with
    ``trust_remote_code``, which idcli never passes. Named at plan time; the render said "not a complete diffusers
    model" after loading the other components."""
    named = [("pipeline", index["_class_name"])] if isinstance(index.get("_class_name"), list) else []
    named += [(name, entry) for name, entry in index.items() if not name.startswith("_") and isinstance(entry, list)]
    for name, entry in named:
        module = entry[0] if entry and isinstance(entry[0], str) else None
        if module is None or "/" in module or "\\" in module:
            continue
        where = folder if name == "pipeline" else folder / name
        if (where / f"{module}.py").is_file() or (folder / f"{module}.py").is_file():
            raise ModelUnavailableError(
                f"'{folder}': model_index.json names custom code for {name} ({module}.py, "
                f"{entry[1] if len(entry) > 1 else '?'}); loading it would run that code (diffusers' "
                "trust_remote_code), which idcli never does. To fix: use a folder whose components are diffusers "
                "and transformers classes (a standard StableDiffusionPipeline / StableDiffusionXLPipeline saved with "
                "save_pretrained)")


def check_local_folder(folder: Path, allow_pickle: bool) -> None:
    """What plan checks of a local pipeline folder before keying it, reading no weight: its model_index.json, no
    pickle-only component unless allowed, every component it names there, no code of its own, one variant."""
    if not (folder / "model_index.json").is_file():
        raise ModelUnavailableError(f"'{folder}' is not a diffusers model folder (no model_index.json)")
    # A component whose weights exist only as pickles would run arbitrary code when unpickled, so it
    # is refused unless the shot list allows pickles (diffusers then loads them weights-only).
    pickle_only = sorted(
        str(part.relative_to(folder)) for part in folder.iterdir()
        if part.is_dir() and any(p.suffix in _PICKLE_SUFFIXES for p in part.iterdir())
        and not any(p.suffix == ".safetensors" for p in part.iterdir()))
    if pickle_only and not allow_pickle:
        raise ModelUnavailableError(
            f"'{folder}' has pickle-only weights in {', '.join(pickle_only)}; pickles are refused by default. "
            "Convert them to .safetensors, or set model.allow_pickle: true to load them weights-only")
    _refuse_missing_components(folder)
    weights_variant(folder)  # components with different variants only are refused at plan time


def _local_folder_hash(folder: Path, allow_pickle: bool) -> str:
    check_local_folder(folder, allow_pickle)
    # '.safetensors' covers variant files (unet/diffusion_pytorch_model.fp16.safetensors) too.
    suffixes = _MODEL_FILE_SUFFIXES | (_PICKLE_SUFFIXES if allow_pickle else set())
    files = {
        str(p.relative_to(folder)): sha256_file_cached(p)
        for p in files_below(folder)
        # A '.cache' folder *inside* the model folder (huggingface_hub's local_dir metadata) is not the model; one
        # above it (~/.cache/huggingface/hub/...) is where it lives.
        if p.suffix in suffixes and ".cache" not in p.relative_to(folder).parts
    }
    return tagged_hash("idcli-model-files-v1", files)


def files_below(folder: Path) -> list[Path]:
    """Every file below ``folder``, sorted, named by its path inside it, components reached through links too.

    ``Path.rglob`` does not enter a linked folder: a pipeline folder whose ``unet/`` links to a shared copy (as
    people keep several fine-tunes that share components) was keyed without those weights, so changing them
    re-rendered nothing. from_pretrained reads a component through its link, so the key does too. Only the
    components (the folder's own entries) are followed: a link deeper down (``unet/x -> /``, in a received
    folder) stays unfollowed, as before, and a component linking to the folder or above it is not entered."""
    found: list[Path] = []
    top = os.path.realpath(folder)

    def walk(directory: Path, follow: bool) -> None:
        try:
            entries = list(directory.iterdir())
        except OSError as exc:  # a folder another account made (mode 700): named, not an internal error
            raise ModelUnavailableError(
                f"'{directory}' in the model folder cannot be read ({exc.strerror or exc}): make it readable by "
                "this user, or move it out of the model folder") from exc
        for entry in entries:
            if entry.is_symlink() and entry.is_dir():
                real = os.path.realpath(entry)
                if follow and not (real == top or top.startswith(real.rstrip(os.sep) + os.sep)):
                    walk(entry, False)
            elif entry.is_dir():
                walk(entry, False)
            elif entry.is_file():
                found.append(entry)

    walk(folder, True)
    return sorted(found)


def resolve_model(spec: ModelSpec, base_dir: Path, dtype: str, preset_override: str | None = None, *,
                  hash_contents: bool = True) -> ModelIdentity:
    """The content identity of the model a shot list asks for (``preset_override`` from ``--preset``).
    ``hash_contents=False``: every check, but a local folder's files are not hashed (its ``content_hash`` is None):
    what ``idcli validate`` resolves, reading no weight."""
    # "" (--preset "$UNSET", preset=os.environ.get(...)) is refused by get_preset, not read as no override.
    preset = get_preset(spec.preset if preset_override is None else preset_override)
    if preset.random_weights:
        from .engine.tokenizer import tiny_vocab_and_merges  # plain Python: no torch

        vocab, merges = tiny_vocab_and_merges()
        material = {"components": preset.components, "seed": TINY_INIT_SEED,
                    "tokenizer": tagged_hash("vocab", [vocab, merges]), "weight_init": preset.weight_init}
        config_hash = tagged_hash("idcli-tiny-v1", material)
        return ModelIdentity(preset.name, preset.architecture, "builtin", None, None, config_hash, dtype,
                             random_weights=True)
    # A --preset switch to a real preset ignores an id written for another architecture.
    model_id = spec.id if (preset_override is None or preset_override == spec.preset) else None
    model_id = model_id or preset.default_id
    assert model_id is not None
    local = local_path(model_id, base_dir)
    if local is not None and local.is_dir():
        content = _local_folder_hash(local.resolve(), spec.allow_pickle) if hash_contents else None
        if not hash_contents:
            check_local_folder(local.resolve(), spec.allow_pickle)
        return ModelIdentity(preset.name, preset.architecture, "local", str(local.resolve()), None, content,
                             dtype, random_weights=False, allow_pickle=spec.allow_pickle)
    return ModelIdentity(preset.name, preset.architecture, "hub", model_id, spec.revision or "main", None,
                         dtype, random_weights=False, allow_pickle=spec.allow_pickle)


def preset_names() -> list[str]:
    return list(PRESETS)


__all__ = ["ModelIdentity", "canonical_json", "preset_names", "resolve_model"]
