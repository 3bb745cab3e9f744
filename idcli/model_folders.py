"""What lies in folders the user gives `idcli models list`: `--models-dir DIR` and a shot list's models.

A pipeline keeps weights in its own folders (a shared drive, a container image) as often as in the
Hugging Face cache. ``--models-dir DIR`` (repeatable) looks in DIR and up to two levels below it and
names what it recognises; ``--shotlist FILE`` names the model, adapter and image encoder that shot list
renders with (a local folder as found there, a hub id as found in the cache). Recognised, each with its size and
licence:

- a diffusers pipeline folder (``model_index.json``): what ``model.id`` takes;
- IP-Adapter weight files (``ip-adapter*.safetensors`` / ``.bin``): what ``model.adapter`` takes (h94's
  ``…_lora.safetensors``, the LoRA alone, as ``FaceID LoRA``; a safetensors file's kind told from its header);
- a CLIP image encoder folder (``config.json`` naming a ``CLIPVisionModel*``): FaceID-Plus v2's encoder;
- ComfyUI's ``models/clip_vision`` files (``CLIP-ViT-*.safetensors``), as ``CLIP image encoder weights``: the
  encoder's weights without the config a folder needs (ViT-H is h94's, renamed; ViT-bigG is not Plus v2's);
- an insightface face-model pack (a folder of ``.onnx`` files): what ``--face-models`` takes (a detector alone
  or a cut file said as not usable).

The licence comes from the folder's model card (``license:`` in README.md's front matter) when it
has one, else from what idcli knows of the file, else "unknown". Nothing is loaded or hashed (an adapter's
safetensors header, a few kilobytes, is read; a face-model pack's ONNX graphs are parsed, not run, to say what is
wrong with one the render would refuse: face_pack_check.py).
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Any

from .errors import InputError
from .models import read_model_json

MAX_DEPTH = 2
MAX_FOLDERS = 5000  # a bound on the walk: a models folder, not a whole disk
ADAPTER_FILE = re.compile(r"^ip-adapter.*\.(safetensors|bin)$", re.IGNORECASE)
# ComfyUI's models/clip_vision files (ComfyUI_IPAdapter_plus names them so): CLIP vision weights without a config.
CLIP_VISION_FILE = re.compile(r"^CLIP-ViT-.*\.safetensors$", re.IGNORECASE)
_CARD_LICENCE = re.compile(r"^license:\s*(\S.*)$", re.MULTILINE)
UNKNOWN = "unknown: see the model's card"


def _card_licence(folder: Path) -> str | None:
    """``license:`` from a model card's YAML front matter (the hub's convention)."""
    with contextlib.suppress(OSError):
        with (folder / "README.md").open("r", encoding="utf-8", errors="replace") as card:
            head = card.read(8192)
        if head.startswith("---"):
            front = head[3:].split("\n---", 1)[0]
            found = _CARD_LICENCE.search(front)
            if found:
                return found.group(1).strip().strip("'\"")
    return None


def _folder_size(folder: Path) -> int:
    """The bytes of the files below ``folder``: its components reached through links too (``unet -> ../shared/unet``,
    walked as the content hash walks them, models.files_below), each real file once (two components linking one
    shared folder, a hub snapshot's links to one blob). A folder that cannot be read is left out of the size."""
    from .errors import ModelUnavailableError
    from .models import files_below

    try:
        files = files_below(folder)
    except ModelUnavailableError:  # a folder inside it another account made: listing names the rest
        files = [p for p in folder.rglob("*") if p.is_file()]
    sizes: dict[tuple[int, int], int] = {}
    for file in files:
        if ".cache" in file.relative_to(folder).parts:  # huggingface_hub's download metadata; ~/.cache itself counts
            continue
        with contextlib.suppress(OSError):
            stat = file.stat()
            sizes[stat.st_dev, stat.st_ino] = stat.st_size
    return sum(sizes.values())


def _entry(source: str, kind: str, path: Path, size: int | None, licence: str, detail: str = "") -> dict[str, Any]:
    return {"source": source, "kind": kind, "path": str(path), "repo_id": None, "present": size is not None,
            "size_bytes": size, "licence": licence, "detail": detail}


def _adapter_licence(file: Path) -> str:
    from .model_setup import LICENCES

    return LICENCES["faceid"] if file.name.lower().startswith("ip-adapter-faceid") else UNKNOWN


def _face_pack_entry(folder: Path, onnx: list[Path], source: str) -> dict[str, Any]:
    from .face_pack import LICENCE, RECORD
    from .face_pack_check import face_pack_problem
    from .identity.faces import is_synthetic_pack

    licence = ("synthetic random weights (idcli's test pack)" if is_synthetic_pack(folder)
               else LICENCE + " (unless these are models of your own)")
    detail = ", ".join(p.name for p in onnx) + ("; fetched by idcli" if (folder / RECORD).is_file() else "")
    problem = face_pack_problem(onnx)  # a detector alone, a cut recogniser: what the render would refuse
    if problem:
        detail += f"; not usable: {problem}"
    return _entry(source, "insightface face-model pack", folder, sum(p.stat().st_size for p in onnx), licence,
                  detail)


def describe_folder(folder: Path, source: str) -> tuple[list[dict[str, Any]], bool]:
    """What ``folder`` itself is or holds; the flag says it was recognised as a whole (don't walk into it)."""
    if (folder / "model_index.json").is_file():
        detail = ""
        with contextlib.suppress(OSError, ValueError, AttributeError):
            detail = str(read_model_json(folder / "model_index.json").get("_class_name", ""))
        with contextlib.suppress(OSError):
            from .errors import ModelUnavailableError
            from .models import weights_variant

            try:
                variant = weights_variant(folder)  # idcli loads such a folder with from_pretrained(variant=...)
                detail += f"; {variant} variant weights" if variant else ""
            except ModelUnavailableError:
                detail += "; variant weights of different kinds: not loadable as one pipeline"
        return [_entry(source, "diffusers pipeline", folder, _folder_size(folder), _card_licence(folder) or UNKNOWN,
                       detail)], True
    config = folder / "config.json"
    if config.is_file():
        architectures: list[Any] = []
        with contextlib.suppress(OSError, ValueError, AttributeError):
            architectures = list(read_model_json(config).get("architectures") or [])
        if any(str(a).startswith("CLIPVisionModel") for a in architectures):
            safe = (folder / "model.safetensors").is_file()
            return [_entry(source, "CLIP image encoder", folder, _folder_size(folder),
                           _card_licence(folder) or UNKNOWN,
                           "model.safetensors" if safe else "no model.safetensors: its pickle loads only with "
                           "model.allow_pickle: true")], True
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    onnx = [p for p in files if p.suffix == ".onnx"]
    if onnx:
        return [_face_pack_entry(folder, onnx, source)], True
    adapters = [_adapter_entry(source, folder, p) for p in files if ADAPTER_FILE.match(p.name)]
    encoders = [_clip_vision_entry(source, p) for p in files if CLIP_VISION_FILE.match(p.name)]
    return adapters + encoders, False


def _clip_vision_entry(source: str, file: Path) -> dict[str, Any]:
    """ComfyUI's clip_vision file: the CLIP image encoder's weights without the config.json beside them that
    ``model.adapter.image_encoder`` needs. ViT-H is what FaceID-Plus v2 reads (h94's models/image_encoder renamed);
    ViT-bigG is h94's sdxl_models/image_encoder, for other SDXL adapters."""
    from .model_setup import LICENCES

    licence = UNKNOWN
    if "vit-h-" in file.name.lower():
        licence = LICENCES["image_encoder"]  # ComfyUI's guide downloads it from h94/IP-Adapter
        detail = ("h94/IP-Adapter's models/image_encoder/model.safetensors renamed (ViT-H, what FaceID-Plus v2 reads): "
                  "model.adapter.image_encoder takes a folder holding it as model.safetensors beside that folder's "
                  "config.json (hf download h94/IP-Adapter models/image_encoder/config.json)")
    elif "vit-bigg-" in file.name.lower():
        detail = ("ViT-bigG (h94/IP-Adapter's sdxl_models/image_encoder), not what FaceID-Plus v2 reads: it reads "
                  "ViT-H, for SD1.5 and SDXL alike")
    else:
        detail = ("CLIP vision weights without their config: model.adapter.image_encoder takes a folder holding them "
                  "as model.safetensors beside their config.json")
    return _entry(source, "CLIP image encoder weights", file, file.stat().st_size, licence, detail)


def _adapter_entry(source: str, folder: Path, file: Path) -> dict[str, Any]:
    """An adapter file, said which kind it is from its safetensors header (adapter_layout.adapter_kind; the JSON
    ``kind`` keeps its two values, the header's answer is the ``detail``)."""
    from .adapter_layout import adapter_kind, names_plus_v1
    from .adapters import adapter_carrying_lora

    licence = _card_licence(folder) or _adapter_licence(file)
    adapter = adapter_carrying_lora(file.name)
    if adapter is not None:
        return _entry(source, "FaceID LoRA", file, file.stat().st_size, licence,
                      f"the LoRA alone, for ComfyUI/A1111: model.adapter takes {adapter}, which carries it")
    return _entry(source, "IP-Adapter weights", file, file.stat().st_size, licence,
                  # Given as model.adapter, this very file loads only with allow_pickle (plan refuses it otherwise);
                  # fetch converts only the hub's published files, into IDCLI_HOME.
                  "pickle: loads with model.allow_pickle: true; `idcli models fetch` converts the published ones "
                  "from the hub" + ("; named FaceID-Plus v1, which idcli renders as v2 (v1 and v2 hold the same keys)"
                                    if names_plus_v1(file.name) else "")
                  if file.suffix == ".bin" else adapter_kind(file))


def scan_models_dir(root: Path, source: str = "--models-dir") -> list[dict[str, Any]]:
    """Everything recognised in ``root`` and up to ``MAX_DEPTH`` levels below it (hidden folders skipped)."""
    if not root.is_dir():
        from .option_words import EachSurface

        # given_folders(models_dirs=[...]) from Python (docs/models.md, "From Python"), --models-dir typed
        raise InputError(EachSurface(f"models_dirs entry '{root}'", f"--models-dir '{root}'"),
                         " is not a folder" if root.exists() else " does not exist")
    found: list[dict[str, Any]] = []
    pending, seen = [(root, 0)], 0
    while pending and seen < MAX_FOLDERS:
        folder, depth = pending.pop(0)
        seen += 1
        hub = _hub_snapshot(folder)
        if hub is not None:
            # A Hugging Face hub cache (~/.cache/huggingface/hub): the files are in the snapshot refs/main names.
            repo_id, snapshot = hub
            for entry in scan_models_dir(snapshot, source):
                known = _known_hub_licence(repo_id, None) if entry["licence"] == UNKNOWN else entry["licence"]
                found.append({**entry, "repo_id": repo_id, "licence": known})
            continue
        entries, whole = describe_folder(folder, source)
        found.extend(entries)
        if whole or depth >= MAX_DEPTH:
            continue
        with contextlib.suppress(OSError):
            pending.extend((child, depth + 1) for child in sorted(folder.iterdir())
                           if child.is_dir() and not child.name.startswith("."))
    return found


def _hub_snapshot(folder: Path) -> tuple[str, Path] | None:
    """The repository id of a hub-cache repository folder (``models--ORG--NAME``) and the snapshot it serves: the
    one ``refs/main`` names, else its only one. None for any other folder."""
    from .model_setup import hub_cache_commit, hub_cache_repo_id

    repo_id = hub_cache_repo_id(folder.name)
    if repo_id is None or not (folder / "snapshots").is_dir():
        return None
    main = hub_cache_commit(folder, "main")
    if main is not None and (folder / "snapshots" / main).is_dir():
        return repo_id, folder / "snapshots" / main
    snapshots = [p for p in (folder / "snapshots").iterdir() if p.is_dir()]
    return (repo_id, snapshots[0]) if len(snapshots) == 1 else None


def _hub_entry(source: str, kind: str, repo_id: str, filename: str | None,
               revision: str | None = None) -> dict[str, Any]:
    from .model_setup import cached_file, cached_snapshot_size

    if filename is None:
        size = cached_snapshot_size(repo_id, None, revision)  # the snapshot the render reads
        path = None
    else:
        file = cached_file(repo_id, filename, None, revision)  # main's, or the revision the shot list pins
        size, path = (file.stat().st_size, str(file)) if file else (None, None)
    return {"source": source, "kind": kind, "path": path, "repo_id": repo_id, "present": size is not None,
            "size_bytes": size, "licence": _known_hub_licence(repo_id, filename),
            "detail": "hub" + (f" file {filename}" if filename else "")}


def _known_hub_licence(repo_id: str, filename: str | None) -> str:
    """What idcli knows of a hub file's licence: FaceID file names, the presets' base models and image encoder."""
    from .model_setup import LICENCES
    from .presets import PRESETS

    if filename is not None and Path(filename).name.lower().startswith("ip-adapter-faceid"):
        return LICENCES["faceid"]
    for preset in PRESETS.values():
        if preset.default_id == repo_id and preset.name in LICENCES:
            return LICENCES[preset.name]
        if preset.image_encoder is not None and preset.image_encoder[0] == repo_id \
                and filename is not None and filename.startswith(preset.image_encoder[1] + "/"):
            return LICENCES["image_encoder"]
    return UNKNOWN


def shotlist_folders(file: Path) -> list[dict[str, Any]]:
    """The model and adapter ``file`` renders with: local folders as found there, hub ids as cached.
    A tiny preset (built-in random weights) has nothing to list."""
    from .adapter_layout import adapter_kind
    from .paths import local_path
    from .presets import get_preset
    from .shotlist import load_shotlist

    loaded = load_shotlist(file)
    spec = loaded.shotlist.model
    preset = get_preset(spec.preset)
    if preset.random_weights:
        return []
    found: list[dict[str, Any]] = []
    model_id = spec.id or preset.default_id
    assert model_id is not None
    local = local_path(model_id, loaded.base_dir)
    source = f"{file}: model.id" if spec.id else f"{file}: preset {preset.name}"
    if local is not None and local.is_dir():
        entries, _whole = describe_folder(local, source)
        found.extend(entries or [_entry(source, "folder (not a diffusers pipeline)", local, None, UNKNOWN)])
    else:
        found.append(_hub_entry(source, "diffusers pipeline", model_id, None, spec.revision))
    if spec.adapter is not None and spec.adapter.id is not None and spec.adapter.weight_name is not None:
        source = f"{file}: model.adapter"
        local = local_path(spec.adapter.id, loaded.base_dir)
        if local is not None and local.is_dir():
            weight = local / spec.adapter.subfolder / spec.adapter.weight_name
            if weight.is_file():
                found.append(_adapter_entry(source, local, weight))
            else:
                found.append(_entry(source, "IP-Adapter weights", weight, None,
                                    _card_licence(local) or _adapter_licence(weight)))
        else:
            name = "/".join(p for p in (spec.adapter.subfolder.strip("/"), spec.adapter.weight_name) if p)
            entry = _hub_entry(source, "IP-Adapter weights", spec.adapter.id, name, spec.adapter.revision)
            kind = adapter_kind(Path(entry["path"])) if entry["path"] else ""  # a cached file: its header says
            found.append({**entry, "detail": entry["detail"] + (f"; {kind}" if kind else "")})
    if spec.adapter is not None and spec.adapter.image_encoder is not None:
        # FaceID-Plus v2 renders cannot start without it (its default is a preset row of `models list`).
        found.append(_image_encoder_entry(f"{file}: model.adapter.image_encoder", spec.adapter.image_encoder,
                                          spec.adapter.image_encoder_subfolder, loaded.base_dir))
    return found


def _image_encoder_entry(source: str, encoder_id: str, subfolder: str, base_dir: Path) -> dict[str, Any]:
    """The CLIP image encoder a shot list names: its folder as found there (incomplete: not present), or the
    hub snapshot's ``model.safetensors`` as cached."""
    from .paths import local_path

    local = local_path(encoder_id, base_dir)
    if local is not None and local.is_dir():
        folder = local / subfolder
        entries, _whole = describe_folder(folder, source) if folder.is_dir() else ([], False)
        encoder = [e for e in entries if e["kind"] == "CLIP image encoder"]
        if encoder:
            return encoder[0]
        return _entry(source, "CLIP image encoder", folder, None, UNKNOWN,
                      "no config.json naming a CLIPVisionModel here")
    name = "/".join(p for p in (subfolder.strip("/"), "model.safetensors") if p)
    return _hub_entry(source, "CLIP image encoder", encoder_id, name)


def given_folders(models_dirs: list[Path] | None = None, shotlist: Path | None = None) -> list[dict[str, Any]]:
    """The ``given`` part of `idcli models list`: every ``--models-dir`` in order, then the shot list's."""
    found: list[dict[str, Any]] = []
    for folder in models_dirs or []:
        found.extend(scan_models_dir(Path(os.path.expanduser(folder))))
    if shotlist is not None:
        found.extend(shotlist_folders(shotlist))
    return found
