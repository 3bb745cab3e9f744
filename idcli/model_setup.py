"""What each real preset needs on disk, and getting it there: `idcli models list` and `idcli models fetch`.

Hub weights go through ``huggingface_hub`` (its cache, its progress bars, its resumable downloads;
``HF_ENDPOINT`` and ``HF_HOME`` work as usual). The published FaceID and FaceID-Plus v2 adapters are
pickles (``.bin``): ``fetch`` converts each once to safetensors with a weights-only load, records
both files' sha256 next to the converted file, and a render then uses the converted file with no
``allow_pickle``. FaceID-Plus v2 also needs the CLIP ViT-H image encoder: a filtered snapshot of
``h94/IP-Adapter``'s ``models/image_encoder`` (config.json and model.safetensors only; see
``image_encoder_folder``).

The insightface face-model pack (buffalo_l) is fetched only with ``accept_insightface_licence``
(``--accept-insightface-license``): it is licensed for non-commercial research only and is not on the
hub (idcli/face_pack.py downloads it from insightface's release assets).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import InputError, ModelUnavailableError
from .hashing import sha256_file
from .paths import state_dir
from .presets import PRESETS, Preset, get_preset

# The files ``from_pretrained`` reads for the full-precision weights: no fp16/non-EMA variants, no
# single-file checkpoint, no safety checker (idcli loads the pipelines without one).
BASE_ALLOW = ["model_index.json", "*/*.json", "*/*.txt", "*/diffusion_pytorch_model.safetensors",
              "*/model.safetensors"]
BASE_IGNORE = ["safety_checker/*", "vae_1_0/*"]
LICENCES = {
    "sd15": "CreativeML OpenRAIL-M",
    "sdxl": "CreativeML OpenRAIL++-M",
    "faceid": "the IP-Adapter-FaceID model card: non-commercial research (it was trained with insightface)",
    "image_encoder": "the h94/IP-Adapter model card: Apache-2.0 (OpenCLIP ViT-H/14, LAION-2B)",
}
VARIANTS = ("faceid", "faceid-plusv2")
# What a real preset renders with when the shot list names no variant (adapters.adapter_variant, docs/identity.md),
# so `idcli models fetch PRESET` gets what a render then needs.
DEFAULT_VARIANT = "faceid-plusv2"
# The CLIP image encoder as transformers' from_pretrained reads it: no pickled pytorch_model.bin.
ENCODER_FILES = ("config.json", "model.safetensors")
CONVERTED_RECORD = "conversion.json"


@dataclass(frozen=True)
class Need:
    """One thing a preset needs: a base-model snapshot or one adapter file, in a hub repository."""

    role: str  # "base model", "FaceID adapter", "FaceID-Plus v2 adapter" or "CLIP image encoder"
    repo_id: str
    filename: str | None  # None: a snapshot (filtered by BASE_ALLOW / BASE_IGNORE, or of `subfolder` only)
    licence: str
    subfolder: str | None = None  # a snapshot of only this folder's ENCODER_FILES (the CLIP image encoder)

    def allow_patterns(self) -> list[str]:
        return [f"{self.subfolder}/{name}" for name in ENCODER_FILES] if self.subfolder else BASE_ALLOW


def _real_preset(name: str) -> Any:
    """The preset ``name`` names, when it has weights to fetch. An unknown name is told the presets fetch takes,
    not every preset: the random-weight ones it listed are then refused."""
    real = [n for n, p in PRESETS.items() if not p.random_weights]
    if name not in PRESETS:
        from .suggest import did_you_mean

        hint = did_you_mean(name, real)
        raise InputError(f"unknown preset '{name}'" + (f"; {hint}" if hint else "") + f" (allowed: {', '.join(real)})")
    preset = get_preset(name)
    if preset.random_weights:
        raise InputError(f"preset '{name}' has built-in random weights and needs no download (presets with "
                         f"downloads: {', '.join(real)})")
    return preset


def needs(name: str, variant: str | None = None) -> list[Need]:
    """What preset ``name`` with adapter ``variant`` (default: what it renders with) needs from the hub."""
    variant = variant or DEFAULT_VARIANT
    if variant not in VARIANTS:
        raise InputError(f"unknown adapter variant '{variant}' (allowed: {', '.join(VARIANTS)})")
    preset = _real_preset(name)
    result = [Need("base model", preset.default_id, None, LICENCES.get(preset.name, "see the model card"))]
    if variant == "faceid" and preset.faceid is not None:
        repo, weight = preset.faceid
        result.append(Need("FaceID adapter", repo, weight, LICENCES["faceid"]))
    if variant == "faceid-plusv2" and preset.faceid_plusv2 is not None and preset.image_encoder is not None:
        repo, weight = preset.faceid_plusv2
        result.append(Need("FaceID-Plus v2 adapter", repo, weight, LICENCES["faceid"]))
        repo, subfolder = preset.image_encoder
        result.append(Need("CLIP image encoder", repo, None, LICENCES["image_encoder"], subfolder))
    return result


def image_encoder_folder(preset: str | Preset, cache_dir: Path | None = None) -> Path | None:
    """The CLIP ViT-H image encoder folder FaceID-Plus v2 reads, when it is in the hub cache; else None.

    ``idcli models fetch PRESET --variant faceid-plusv2`` puts it there. The folder holds exactly
    ``config.json`` and ``model.safetensors`` (``CLIPVisionModelWithProjection.from_pretrained(folder)``
    loads it without pickles). Never downloads: a ``local_files_only`` snapshot lookup in the cache
    (``cache_dir``, else ``HF_HUB_CACHE``/``HF_HOME`` as huggingface_hub resolves them).
    """
    from huggingface_hub import snapshot_download

    found = preset if isinstance(preset, Preset) else get_preset(preset)
    if found.image_encoder is None:
        return None
    repo_id, subfolder = found.image_encoder
    try:
        snapshot = snapshot_download(repo_id, allow_patterns=[f"{subfolder}/{n}" for n in ENCODER_FILES],
                                     cache_dir=cache_dir, local_files_only=True)
    except (OSError, ValueError):  # LocalEntryNotFoundError: not fetched
        return None
    folder = Path(snapshot) / subfolder
    return folder if all((folder / name).is_file() for name in ENCODER_FILES) else None


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

    from .engine.faceid_layout import canonical_safetensors
    from .safeio import atomic_write, remove_dead_temporaries

    try:
        loaded = torch.load(str(source), map_location="cpu", weights_only=True)
    except Exception as exc:  # any failure to unpickle means the same thing here
        raise ModelUnavailableError(f"cannot convert '{source}': a weights-only load failed ({type(exc).__name__}: "
                                    f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}); the download "
                                    "is damaged or truncated — run `idcli models fetch` again") from None
    if not isinstance(loaded, dict) or not all(isinstance(loaded.get(g), dict) for g in ("image_proj", "ip_adapter")):
        raise ModelUnavailableError(f"'{source}' is not an IP-Adapter checkpoint (no 'image_proj' and 'ip_adapter' "
                                    "groups)")
    # h94's files hold these two groups, the FaceID LoRA inside ip_adapter (docs/models.md, "What h94's pickles
    # hold"): every key of both is written. A weights-only load also reads numbers, strings and dicts: refused by name.
    flat = {f"{group}.{key}": value for group in ("image_proj", "ip_adapter") for key, value in loaded[group].items()}
    odd = next(((key, value) for key, value in flat.items() if not isinstance(value, torch.Tensor)), None)
    if odd is not None:
        raise ModelUnavailableError(f"'{source}' holds something other than tensors: {odd[0]} is "
                                    f"{_a_value_of(odd[1])}, which no IP-Adapter checkpoint holds; the download is "
                                    "damaged or not an adapter — run `idcli models fetch` again")
    data = canonical_safetensors(save(_own_memory(flat), metadata={"format": "pt",
                                                                    "idcli.converted_from": source.name}))
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(target.parent)  # a fetch killed mid-conversion left its temporary here
    atomic_write(target, data)
    entry = {"source_file": source.name, "source_sha256": sha256_file(source), "file": target.name,
             "sha256": sha256_file(target), "tensors": len(flat)}
    record_path = target.parent / CONVERTED_RECORD
    records = json.loads(record_path.read_text("utf-8")) if record_path.is_file() else {}
    records[target.name] = entry
    atomic_write(record_path, (json.dumps(records, indent=2, sort_keys=True) + "\n").encode())
    return entry


def _a_value_of(value: object) -> str:
    kind = type(value).__name__
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def _own_memory(tensors: dict[str, Any]) -> dict[str, Any]:
    """The tensors, contiguous, each sharing memory with another (one tensor under two keys, a view inside another:
    ``torch.load`` keeps them shared) copied to its own: safetensors refuses to write overlapping tensors. Tensors
    that share nothing are written as loaded, so a file converted before converts to the same bytes."""
    from collections import Counter

    storages = Counter(value.untyped_storage().data_ptr() for value in tensors.values() if value.numel())
    return {key: (value.clone() if value.numel() and storages[value.untyped_storage().data_ptr()] > 1
                  else value).contiguous() for key, value in tensors.items()}


def _conversion_record(target: Path) -> dict[str, Any] | None:
    """The recorded conversion of ``target`` when the file is there and still has the recorded hash."""
    record_path = target.parent / CONVERTED_RECORD
    if not target.is_file() or not record_path.is_file():
        return None
    entry = json.loads(record_path.read_text("utf-8")).get(target.name)
    return entry if isinstance(entry, dict) and entry.get("sha256") == sha256_file(target) else None


# -- list ---------------------------------------------------------------------------------------------


_HUB_REPO_PREFIX = "models--"
_COMMIT = re.compile(r"[0-9a-f]{40}")
_REF_LIMIT = 4096  # a ref is a commit hash and a newline; anything much longer is not one


def hub_cache_repo_id(folder_name: str) -> str | None:
    """``org/name`` for a hub cache's repository folder name (``models--org--name``: the hub allows no ``--`` in a
    repository id, so the first one is the slash); None for any other name."""
    if not folder_name.startswith(_HUB_REPO_PREFIX):
        return None
    return folder_name[len(_HUB_REPO_PREFIX):].replace("--", "/", 1)


def hub_cache_commit(repo_folder: Path, revision: str | None = None) -> str | None:
    """The commit ``revision`` (None: ``main``) names in the hub cache repository folder ``repo_folder``: a commit
    hash as it is, a branch (or tag) as its ``refs/`` file names it; None when the cache has no ref for it or the ref
    is not a commit hash. The one reader of the cache's refs (read from disk: a damaged or planted file must not send
    a path outside ``snapshots/``)."""
    wanted = revision or "main"
    if _COMMIT.fullmatch(wanted):
        return wanted
    if ".." in Path(wanted).parts or Path(wanted).is_absolute():
        return None  # a ref names a file under refs/; "/etc/x" joined to it would read /etc/x
    from .safeio import NotRegularFile, read_regular

    try:
        # A regular file only, bounded: a FIFO planted as a received cache's ref would block the read until killed.
        commit = read_regular(repo_folder / "refs" / wanted, _REF_LIMIT).decode("utf-8").strip()
    except (NotRegularFile, UnicodeDecodeError):
        return None
    return commit if _COMMIT.fullmatch(commit) else None


def _hub_cache_repo(repo_id: str, cache_dir: Path | None = None) -> Path:
    from huggingface_hub import constants

    return Path(cache_dir or constants.HF_HUB_CACHE) / (_HUB_REPO_PREFIX + repo_id.replace("/", "--"))


def hub_repo_cached(repo_id: str, revision: str | None = None, cache_dir: Path | None = None) -> bool:
    """Whether the Hugging Face cache holds a snapshot of the model repository ``repo_id`` at ``revision`` (a branch
    its ``refs/`` names, or a commit; None: ``main``, as a render reads it), its folders read: no request, nothing
    downloaded. Another revision's snapshot does not count: a shot list pinning a revision the cache lacks would
    download it."""
    return hub_snapshot(repo_id, revision, cache_dir) is not None


def hub_snapshot(repo_id: str, revision: str | None = None, cache_dir: Path | None = None) -> Path | None:
    """The Hugging Face cache's snapshot folder of the model repository ``repo_id`` at ``revision`` (None: ``main``),
    as ``from_pretrained`` offline reads it; None when the cache holds none (its folders read, no request)."""
    if ".." in Path(repo_id).parts:
        return None
    repo = _hub_cache_repo(repo_id, cache_dir)
    commit = hub_cache_commit(repo, revision)
    snapshot = repo / "snapshots" / commit if commit is not None else None
    return snapshot if snapshot is not None and snapshot.is_dir() else None


def hub_file_cached(repo_id: str, filename: str, revision: str | None = None) -> bool:
    """Whether the Hugging Face cache (HF_HUB_CACHE) holds ``filename`` of the model repository ``repo_id`` at
    ``revision`` (a branch its ``refs/`` names, or a commit): the cache's folders read as ``try_to_load_from_cache``
    reads them, without importing its HTTP stack (half a second of ``idcli validate``)."""
    if any(".." in Path(name).parts for name in (filename, repo_id)):
        return False
    repo = _hub_cache_repo(repo_id)
    commit = hub_cache_commit(repo, revision)
    return commit is not None and (repo / "snapshots" / commit / filename).is_file()


def cached_file(repo_id: str, filename: str, cache_dir: Path | None, revision: str | None = None) -> Path | None:
    """The cached copy of ``filename`` in the snapshot a render reads (``revision``; None: ``main``), or None."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir, revision=revision)
    return Path(found) if isinstance(found, str) else None


def cached_snapshot_size(repo_id: str, cache_dir: Path | None, revision: str | None = None) -> int | None:
    """Bytes of the cached snapshot of ``repo_id`` a render reads: the one ``revision`` names (None: ``main``; the
    presets pin none), when it has a ``model_index.json``; None when it is not cached. Another revision's snapshot
    does not count, as for ``hub_repo_cached``."""
    from huggingface_hub import constants, scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    # The cache named now: scan_cache_dir's own default is the HF_HUB_CACHE its module saw when first imported,
    # so a process whose first `models list` ran before the cache moved kept scanning the old folder.
    cache = Path(cache_dir if cache_dir is not None else constants.HF_HUB_CACHE)
    snapshot = hub_snapshot(repo_id, revision, cache)
    if snapshot is None or not (snapshot / "model_index.json").is_file():
        return None
    try:
        info = scan_cache_dir(cache)
    except CacheNotFound:
        return None
    for repo in info.repos:
        if repo.repo_id == repo_id and repo.repo_type == "model":
            for cached in repo.revisions:
                if cached.commit_hash == snapshot.name:
                    return cached.size_on_disk
    return None


def _need_state(need: Need, preset: Preset, cache_dir: Path | None) -> tuple[bool, int | None, str | None]:
    """(present, size in bytes, path) of one need in the hub cache or idcli's converted adapters."""
    if need.subfolder is not None:
        folder = image_encoder_folder(preset, cache_dir)
        if folder is None:
            return False, None, None
        return True, sum((folder / name).stat().st_size for name in ENCODER_FILES), str(folder)
    if need.filename is None:
        size = cached_snapshot_size(need.repo_id, cache_dir)
        return size is not None, size, None
    file = converted_adapter(need.repo_id, need.filename) or cached_file(need.repo_id, need.filename, cache_dir)
    return (True, file.stat().st_size, str(file)) if file else (False, None, None)


def list_models(cache_dir: Path | None = None,
                face_models: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Per real preset and variant: each need, whether it is present, its size and licence, and the
    face models (shared by every real preset). ``ready``: a render needs no other step (a pickled adapter
    in the hub cache counts once ``fetch`` converted it: ``not_converted``; face models count when the render would
    load them, not for any ``.onnx`` file: their ``problem``). ``face_models``: a folder (str or path), None for
    the usual choice; another type, or ``""``, raises ``InputError``."""
    from .arguments import check_path_or_none
    from .face_pack import pack_status

    # "" read as no choice silently listed the default folder; a number became a folder named "5".
    faces = pack_status(check_path_or_none("face_models", face_models))
    rows = []
    for name, preset in PRESETS.items():
        if preset.random_weights:
            continue
        for variant in VARIANTS:
            items = []
            for need in needs(name, variant):
                present, size, path = _need_state(need, preset, cache_dir)
                # The published pickle in the hub cache without its conversion: a render refuses it (no
                # allow_pickle), so the preset is not ready until `fetch` converts it (offline too).
                unconverted = need.filename is not None and path is not None and not path.endswith(".safetensors")
                items.append({**asdict(need), "present": present, "size_bytes": size, "path": path,
                              "not_converted": unconverted})
            rows.append({"preset": name, "variant": variant,
                         "ready": all(i["present"] and not i["not_converted"] for i in items) and faces["present"]
                         and faces["problem"] is None,
                         "needs": items, "face_models": faces})
    return rows


# -- fetch --------------------------------------------------------------------------------------------


def _cannot_fetch(need: Need) -> str:
    return f"cannot fetch {need.role} '{need.repo_id}'" + (f" file '{need.filename}'" if need.filename else "")


def _hub_failure(need: Need, exc: BaseException, endpoint: str | None = None) -> ModelUnavailableError:
    from huggingface_hub.errors import LocalEntryNotFoundError

    from .hub_reach import hub_problem

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    what = _cannot_fetch(need)
    problem = hub_problem(exc, need.repo_id, endpoint=endpoint, downloading=True)
    if problem is not None:  # a gated repository, a misspelt id, a hub that does not answer: each its own fix
        return ModelUnavailableError(problem.refusal(what) + ".")
    if "Consistency check failed" in text:
        return ModelUnavailableError(f"{what}: {text}. The download ended early (truncated); run the same command "
                                     "again — nothing partial was kept.")
    if isinstance(exc, LocalEntryNotFoundError):  # offline mode, or the hub could not be reached
        return ModelUnavailableError(f"{what}: the hub cannot be reached (no network, or HF_HUB_OFFLINE=1) and it "
                                     "is not in the cache. Connect (unset HF_HUB_OFFLINE; HF_ENDPOINT for a mirror) "
                                     "and run the same command again.")
    return ModelUnavailableError(f"{what}: {text}. Check the network (HF_ENDPOINT, HF_TOKEN for gated "
                                 "repositories) and retry.")


def fetch_need(need: Need, cache_dir: Path | None, endpoint: str | None) -> dict[str, Any]:
    """Download one need through huggingface_hub; what was fetched and where it lies."""
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.utils import httpx

    from .hub_reach import ask_hub_once

    # One request first: huggingface_hub retries an unanswered one for 25 s to minutes (hub_reach.py).
    asked = need.filename or (f"{need.subfolder}/{ENCODER_FILES[0]}" if need.subfolder else "model_index.json")
    problem = ask_hub_once(need.repo_id, asked, endpoint=endpoint)
    if problem is not None:
        raise ModelUnavailableError(problem.refusal(_cannot_fetch(need)) + ".")
    try:
        if need.filename is None:
            folder = Path(snapshot_download(need.repo_id, allow_patterns=need.allow_patterns(),
                                            ignore_patterns=None if need.subfolder else BASE_IGNORE,
                                            cache_dir=cache_dir, endpoint=endpoint))
        else:
            file = Path(hf_hub_download(need.repo_id, need.filename, cache_dir=cache_dir, endpoint=endpoint))
    except (OSError, ValueError, httpx.TransportError) as exc:  # hub errors and size mismatches are OSError; a
        raise _hub_failure(need, exc, endpoint) from None  # download cut off after its resumes is httpx's
    if need.filename is None:
        if need.subfolder is None:
            return {"role": need.role, "repo_id": need.repo_id, "path": str(folder)}
        encoder = folder / need.subfolder
        missing = [name for name in ENCODER_FILES if not (encoder / name).is_file()]
        if missing:
            raise ModelUnavailableError(f"{need.role} '{need.repo_id}' has no {', '.join(missing)} in "
                                        f"'{need.subfolder}': FaceID-Plus v2 cannot run without the CLIP encoder")
        return {"role": need.role, "repo_id": need.repo_id, "path": str(encoder),
                "files": {name: sha256_file(encoder / name) for name in ENCODER_FILES}}
    entry: dict[str, Any] = {"role": need.role, "repo_id": need.repo_id, "path": str(file),
                             "sha256": sha256_file(file)}
    if file.suffix != ".safetensors":
        target = converted_folder(need.repo_id) / (file.stem + ".safetensors")
        done = _conversion_record(target)
        if done is None or done.get("source_sha256") != entry["sha256"]:  # converted once per source file
            done = convert_pickled_adapter(file, target)
        entry["converted"] = done | {"path": str(target)}
    return entry


def fetch(name: str, variant: str | None = None, *, cache_dir: Path | None = None, endpoint: str | None = None,
          progress: bool = True, accept_insightface_licence: bool = False,
          face_models: str | os.PathLike[str] | None = None, face_pack_url: str | None = None,
          face_pack_sha256: str | None = None) -> dict[str, Any]:
    """Download what preset ``name`` needs through ``huggingface_hub``; convert a pickled adapter once;
    with ``accept_insightface_licence``, the buffalo_l face-model pack too (idcli/face_pack.py).

    Interrupted transfers resume (huggingface_hub retries with a Range request); a transfer that ends
    short of the size the hub announced is refused (exit 4) and nothing lands in the cache. Without
    the licence flag a missing face pack is not fetched: ``face_models.state`` says so and how to accept.
    ``face_models``: the folder to fill (str or path), None for the usual one; another type, or ``""``, raises
    ``InputError`` before any download.
    """
    from .arguments import check_path_or_none
    from .face_pack import check_expected_sha256, fetch_face_pack
    from .library_quiet import quiet_hub_progress_bars

    variant = variant or DEFAULT_VARIANT
    wanted = needs(name, variant)  # an unknown variant or preset fails before any download
    check_expected_sha256(face_pack_sha256)  # as does a mistyped sha256 (it was checked after the base model)
    face_models = check_path_or_none("face_models", face_models)  # and a face-model folder that is none
    # huggingface_hub's bars are off for this call only: the calling process's own switches are its own (they
    # were turned off, or on over its choice, for good).
    with contextlib.nullcontext() if progress else quiet_hub_progress_bars():
        fetched = [fetch_need(need, cache_dir, endpoint) for need in wanted]
    faces = fetch_face_pack(accept_insightface_licence=accept_insightface_licence, option=face_models,
                            base_url=face_pack_url, expected_sha256=face_pack_sha256, progress=progress)
    return {"preset": name, "variant": variant, "fetched": fetched, "face_models": faces}
