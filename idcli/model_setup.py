"""What each real preset needs on disk, and getting it there: `idcli models list` and `idcli models fetch`.

Everything goes through ``huggingface_hub`` (its cache, its progress bars, its resumable downloads;
``HF_ENDPOINT`` and ``HF_HOME`` work as usual). The published FaceID adapters are pickles (``.bin``):
``fetch`` converts one once to safetensors with a weights-only load, records both files' sha256 next
to the converted file, and a render then uses the converted file with no ``allow_pickle``.

The insightface face-model packs are not fetched: they are licensed for non-commercial research
only and are not on the Hugging Face hub; ``list`` says so and where to put them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import InputError, ModelUnavailableError
from .hashing import sha256_file
from .paths import state_dir
from .presets import PRESETS, get_preset

# The files ``from_pretrained`` reads for the full-precision weights: no fp16/non-EMA variants, no
# single-file checkpoint, no safety checker (idcli loads the pipelines without one).
BASE_ALLOW = ["model_index.json", "*/*.json", "*/*.txt", "*/diffusion_pytorch_model.safetensors",
              "*/model.safetensors"]
BASE_IGNORE = ["safety_checker/*", "vae_1_0/*"]
LICENCES = {
    "sd15": "CreativeML OpenRAIL-M",
    "sdxl": "CreativeML OpenRAIL++-M",
    "faceid": "the IP-Adapter-FaceID model card: non-commercial research (it was trained with insightface)",
}
VARIANTS = ("faceid",)
FACE_MODELS_NOTE = ("insightface face-model packs (e.g. buffalo_l) are for non-commercial research only and are "
                    "not fetched by idcli: download one yourself from the insightface releases and point "
                    "--face-models (or characters' face_models) at its folder")
CONVERTED_RECORD = "conversion.json"


@dataclass(frozen=True)
class Need:
    """One thing a preset needs: a base-model snapshot or one adapter file, in a hub repository."""

    role: str  # "base model" or "FaceID adapter"
    repo_id: str
    filename: str | None  # None: a snapshot filtered by BASE_ALLOW / BASE_IGNORE
    licence: str


def _real_preset(name: str) -> Any:
    preset = get_preset(name)
    if preset.random_weights:
        raise InputError(f"preset '{name}' has built-in random weights and needs no download (presets with "
                         f"downloads: {', '.join(n for n, p in PRESETS.items() if not p.random_weights)})")
    return preset


def needs(name: str, variant: str = "faceid") -> list[Need]:
    """What preset ``name`` with adapter ``variant`` needs from the hub."""
    if variant not in VARIANTS:
        raise InputError(f"unknown adapter variant '{variant}' (allowed: {', '.join(VARIANTS)})")
    preset = _real_preset(name)
    result = [Need("base model", preset.default_id, None, LICENCES.get(preset.name, "see the model card"))]
    if preset.faceid is not None:
        repo, weight = preset.faceid
        result.append(Need("FaceID adapter", repo, weight, LICENCES["faceid"]))
    return result


# -- converted adapters -------------------------------------------------------------------------------


def converted_folder(repo_id: str) -> Path:
    """Where the safetensors conversions of ``repo_id``'s pickled adapters live."""
    return state_dir() / "models" / "converted" / repo_id.replace("/", "--")


def converted_adapter(repo_id: str, weight_name: str) -> Path | None:
    """The converted safetensors file for a pickled hub adapter, when ``fetch`` made one."""
    file = converted_folder(repo_id) / (Path(weight_name).stem + ".safetensors")
    return file if file.is_file() else None


def convert_pickled_adapter(source: Path, target: Path) -> dict[str, Any]:
    """Convert a published ``.bin`` adapter to safetensors with a weights-only load; record both hashes.

    The record (``conversion.json`` beside the file, one entry per converted file) names the source
    file's sha256 so a changed upstream file is noticed, and the converted file's sha256 that job keys use.
    """
    import torch
    from safetensors.torch import save

    from .engine.faceid import _canonical_safetensors
    from .safeio import atomic_write

    try:
        loaded = torch.load(str(source), map_location="cpu", weights_only=True)
    except Exception as exc:  # any failure to unpickle means the same thing here
        raise ModelUnavailableError(f"cannot convert '{source}': a weights-only load failed ({type(exc).__name__}: "
                                    f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}); the download "
                                    "is damaged or truncated — run `idcli models fetch` again") from None
    if not isinstance(loaded, dict) or not all(isinstance(loaded.get(g), dict) for g in ("image_proj", "ip_adapter")):
        raise ModelUnavailableError(f"'{source}' is not an IP-Adapter checkpoint (no 'image_proj' and 'ip_adapter' "
                                    "groups)")
    flat = {f"{group}.{key}": value.contiguous() for group in ("image_proj", "ip_adapter")
            for key, value in loaded[group].items()}
    if not all(isinstance(v, torch.Tensor) for v in flat.values()):
        raise ModelUnavailableError(f"'{source}' holds something other than tensors")
    data = _canonical_safetensors(save(flat, metadata={"format": "pt", "idcli.converted_from": source.name}))
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, data)
    entry = {"source_file": source.name, "source_sha256": sha256_file(source), "file": target.name,
             "sha256": sha256_file(target), "tensors": len(flat)}
    record_path = target.parent / CONVERTED_RECORD
    records = json.loads(record_path.read_text("utf-8")) if record_path.is_file() else {}
    records[target.name] = entry
    atomic_write(record_path, (json.dumps(records, indent=2, sort_keys=True) + "\n").encode())
    return entry


def _conversion_record(target: Path) -> dict[str, Any] | None:
    """The recorded conversion of ``target`` when the file is there and still has the recorded hash."""
    record_path = target.parent / CONVERTED_RECORD
    if not target.is_file() or not record_path.is_file():
        return None
    entry = json.loads(record_path.read_text("utf-8")).get(target.name)
    return entry if isinstance(entry, dict) and entry.get("sha256") == sha256_file(target) else None


# -- list ---------------------------------------------------------------------------------------------


def _cached_file(repo_id: str, filename: str, cache_dir: Path | None) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir)
    return Path(found) if isinstance(found, str) else None


def _cached_snapshot_size(repo_id: str, cache_dir: Path | None) -> int | None:
    """Bytes of the cached snapshot of ``repo_id`` with a ``model_index.json``; None when not cached."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir(cache_dir)
    except CacheNotFound:
        return None
    for repo in info.repos:
        if repo.repo_id == repo_id and repo.repo_type == "model":
            for revision in repo.revisions:
                if any(f.file_name == "model_index.json" for f in revision.files):
                    return revision.size_on_disk
    return None


def list_models(cache_dir: Path | None = None) -> list[dict[str, Any]]:
    """Per real preset and variant: each need, whether it is present, its size and licence."""
    rows = []
    for name, preset in PRESETS.items():
        if preset.random_weights:
            continue
        for variant in VARIANTS:
            items = []
            for need in needs(name, variant):
                if need.filename is None:
                    size = _cached_snapshot_size(need.repo_id, cache_dir)
                    present, path = size is not None, None
                else:
                    converted = converted_adapter(need.repo_id, need.filename)
                    cached = _cached_file(need.repo_id, need.filename, cache_dir)
                    file = converted or cached
                    present, path = file is not None, str(file) if file else None
                    size = file.stat().st_size if file else None
                items.append({**asdict(need), "present": present, "size_bytes": size, "path": path})
            rows.append({"preset": name, "variant": variant, "ready": all(i["present"] for i in items),
                         "needs": items, "face_models": FACE_MODELS_NOTE})
    return rows


# -- fetch --------------------------------------------------------------------------------------------


def fetch(name: str, variant: str = "faceid", *, cache_dir: Path | None = None, endpoint: str | None = None,
          progress: bool = True) -> dict[str, Any]:
    """Download what preset ``name`` needs through ``huggingface_hub``; convert a pickled adapter once.

    Interrupted transfers resume (huggingface_hub retries with a Range request); a transfer that ends
    short of the size the hub announced is refused (exit 4) and nothing lands in the cache.
    """
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    fetched = []
    (enable_progress_bars if progress else disable_progress_bars)()
    for need in needs(name, variant):
        try:
            if need.filename is None:
                folder = snapshot_download(need.repo_id, allow_patterns=BASE_ALLOW, ignore_patterns=BASE_IGNORE,
                                           cache_dir=cache_dir, endpoint=endpoint)
                fetched.append({"role": need.role, "repo_id": need.repo_id, "path": folder})
                continue
            file = Path(hf_hub_download(need.repo_id, need.filename, cache_dir=cache_dir, endpoint=endpoint))
        except (OSError, ValueError) as exc:  # hub errors, lost connections and size mismatches are OSError
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            truncated = "Consistency check failed" in text
            raise ModelUnavailableError(
                f"cannot fetch {need.role} '{need.repo_id}'" + (f" file '{need.filename}'" if need.filename else "")
                + f": {text}. " + ("The download ended early (truncated); run the same command again — nothing "
                                   "partial was kept." if truncated else
                                   "Check the network (HF_ENDPOINT, HF_TOKEN for gated repositories) and retry.")
            ) from None
        entry: dict[str, Any] = {"role": need.role, "repo_id": need.repo_id, "path": str(file),
                                 "sha256": sha256_file(file)}
        if file.suffix != ".safetensors":
            target = converted_folder(need.repo_id) / (file.stem + ".safetensors")
            done = _conversion_record(target)
            if done is None or done.get("source_sha256") != entry["sha256"]:  # converted once per source file
                done = convert_pickled_adapter(file, target)
            entry["converted"] = done | {"path": str(target)}
        fetched.append(entry)
    return {"preset": name, "variant": variant, "fetched": fetched, "face_models": FACE_MODELS_NOTE}
