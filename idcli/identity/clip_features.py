"""CLIP features of each identity's face crops, for FaceID-Plus v2: computed once, kept in the identity cache.

The identity packs keep every selfie's ArcFace-aligned 224-px crop (``crops_224``). FaceID-Plus v2
reads the CLIP image encoder's penultimate hidden states of such a crop (engine/faceid_plus.py
``crop_features``). They are computed the first time an identity is used with an image encoder and
stored beside the identity's pack in ``$IDCLI_HOME/identities`` under a key of what made them:

* the identity: its identity key (selfie sha256s, face-model hash, encoder version and aggregation
  settings: identity/resolve.py) for selfies, the pack file's sha256 for a pack (its crops are data);
* the image encoder's identity (builtin descriptor, local folder content hash, or hub id/revision);
* the recipe (``CLIP_FEATURES_RECIPE``: layer, preprocessing, aggregation).

So a changed selfie, face-model pack or image encoder computes them again; nothing else does.

An identity pack can carry them too (``idcli encode-identity --variant faceid-plusv2``; docs/identity.md):
one entry per image encoder, keyed by that encoder's identity as the cache keys it, holding the
aggregate and each kept selfie's features. A render of a pack with features for its run's encoder uses
them and loads no encoder; a pack without reads its crops through the encoder, and where that encoder
cannot be loaded the character fails at its line with how to fix it.

Aggregation mirrors the ArcFace embedding's: the kept selfies only (those the same-person check kept),
averaged with the same quality weights (an arithmetic weighted mean: hidden states do not live on a
sphere). The identity's CLIP rows are that mean, then each kept selfie's own features in file order —
the same order as the embedding rows (the aggregate, then the references for 'prepend').
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelUnavailableError
from ..hashing import sha256_bytes, tagged_hash
from ..paths import state_dir
from .pack import IdentityPack, PackError, read_pack
from .resolve import CharacterIdentity

CLIP_CACHE_FORMAT = "idcli-clip-features"


def clip_features_key(identity: CharacterIdentity, adapter: Any) -> str:
    """What made an identity's CLIP features (see the module docstring)."""
    from ..adapters import CLIP_FEATURES_RECIPE

    made_of = {"identity_key": identity.key} if identity.source == "selfies" else {"pack_sha256": identity.pack_sha256}
    return tagged_hash(CLIP_FEATURES_RECIPE, {**made_of, "image_encoder": adapter.image_encoder.key_material()})


def cached_features_path(key: str) -> Path:
    return state_dir() / "identities" / f"{key.split(':')[1][:32]}.clip.safetensors"


def _read_cached(path: Path, key: str, count: int) -> np.ndarray | None:
    """The cached per-selfie features, or None when absent, for another key or damaged (then recomputed)."""
    if not path.is_file():
        return None
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            if (handle.metadata() or {}).get("key") != key:
                return None
            features = handle.get_tensor("selfie_features")
    except (SafetensorError, OSError, ValueError, KeyError):
        return None
    if features.ndim != 3 or len(features) != count or not np.isfinite(features).all():
        return None
    return features.astype(np.float32)


def _write_cached(path: Path, key: str, features: np.ndarray, record: dict[str, Any]) -> None:
    from safetensors.numpy import save

    from ..safeio import remove_dead_temporaries
    from ..store import atomic_write

    metadata = {"format": CLIP_CACHE_FORMAT, "key": key, "record": json.dumps(record, sort_keys=True)}
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(path.parent)  # a render killed mid-write left its temporary in the identity cache
    atomic_write(path, save({"selfie_features": np.ascontiguousarray(features, np.float32)}, metadata=metadata))


def _kept_crops_and_weights(identity: CharacterIdentity) -> tuple[np.ndarray, np.ndarray]:
    """The 224-px crops of the selfies the identity kept, and their aggregation weights (summing to 1)."""
    pack = read_pack(Path(identity.pack_path))
    return _kept_of(pack.meta, pack.tensors)


def _kept_of(meta: dict[str, Any], tensors: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``_kept_crops_and_weights`` of a pack's metadata and tensors (also before the pack is written)."""
    selfies = meta.get("selfies", [])
    used = [i for i, s in enumerate(selfies) if s.get("used", True)] or list(range(len(tensors["crops_224"])))
    weights = np.asarray((meta.get("aggregation") or {}).get("weights") or [], np.float64)
    if len(weights) != len(used) or not np.isfinite(weights).all() or weights.sum() <= 0:
        weights = np.ones(len(used))  # a pack without recorded weights: an even mean, as its embedding is unknown
    return tensors["crops_224"][used], weights / weights.sum()


def _rows(weights: np.ndarray, selfie_features: np.ndarray) -> np.ndarray:
    """The identity's CLIP rows: the quality-weighted mean of the kept selfies' features, then each one's."""
    mean = np.tensordot(weights, selfie_features.astype(np.float64), axes=1).astype(np.float32)
    return np.concatenate([mean[None], selfie_features.astype(np.float32)])


def rows_sha256(rows: np.ndarray) -> str:
    """The hash of CLIP feature rows as a pack records them (little-endian float32 bytes)."""
    return sha256_bytes(np.ascontiguousarray(rows, "<f4").tobytes())


class _Encoder:
    """The image encoder, loaded on the first identity that needs it (most runs find every one cached), and then the
    one kept for the process (idcli/kept_encoder.py): a later plan with a new character does not load it again."""

    def __init__(self, adapter: Any, preset: str | None = None) -> None:
        self.adapter = adapter
        self.preset = preset  # the run's, named in the advice when the encoder is missing
        self.model: Any = None

    def features(self, crops: np.ndarray) -> np.ndarray:
        from ..engine.faceid_plus import crop_features

        if self.model is None:
            self.model = self._load()
        return crop_features(self.model, crops)

    def _load(self) -> Any:
        from .. import kept_encoder
        from ..engine.faceid_plus import load_image_encoder, random_image_encoder_folder

        encoder = self.adapter.image_encoder
        owner = encoder_owner(self.adapter)
        if encoder.source == "builtin":
            folder = random_image_encoder_folder(self.adapter)  # written on first use
            return kept_encoder.encoder_for((*owner, str(folder), *_LOADED_AS), owner,
                                            lambda: load_image_encoder(str(folder)))
        if encoder.source == "local":
            # Keyed by the folder's content as this plan hashed it: a folder rewritten since is another encoder.
            key = (*owner, str(Path(encoder.id).resolve()), *_LOADED_AS) if encoder.content_hash else None
            return kept_encoder.encoder_for(key, owner, lambda: load_image_encoder(
                encoder.id, allow_pickle=self.adapter.allow_pickle))
        from ..model_setup import hub_snapshot

        # A hub encoder by the commit its revision names in the cache now (a `main` that moved is another encoder);
        # one not in the cache yet is loaded (downloaded) and kept from the next plan on.
        snapshot = hub_snapshot(encoder.id, encoder.revision)
        key = (*owner, snapshot.name, *_LOADED_AS) if snapshot is not None else None
        return kept_encoder.encoder_for(key, owner, lambda: load_image_encoder(
            encoder.id, encoder.subfolder, revision=encoder.revision, allow_pickle=self.adapter.allow_pickle,
            preset=self.preset))


# How engine/faceid_plus.load_image_encoder loads every encoder (features are computed on the CPU in float32, so the
# 2.5 GB encoder never sits in GPU memory beside the UNet): part of the kept encoder's key should that ever change.
_LOADED_AS = ("cpu", "float32")


def encoder_owner(adapter: Any) -> tuple[Any, bool]:
    """What names an adapter's image encoder for the kept encoder (idcli/kept_encoder.py): its identity and whether
    pickles may be read; nothing read from disk."""
    return adapter.image_encoder, bool(adapter.allow_pickle)


def with_clip_features(identity: CharacterIdentity, adapter: Any, encoder: _Encoder,
                       preset: str | None = None) -> CharacterIdentity:
    """``identity`` with its CLIP rows (the aggregate, then each kept selfie's) and their sidecar record.

    A pack's own features for ``adapter``'s image encoder come first (no encoder loaded); else the
    identity cache; else they are computed from the pack's crops. A pack whose encoder cannot be loaded
    here is a PackError saying how to fix it (``preset`` names the preset in that advice).
    """
    key = clip_features_key(identity, adapter)
    if identity.source == "pack":
        pack = read_pack(Path(identity.pack_path))
        stored = stored_pack_features(pack, adapter)
        if stored is not None:
            rows, entry = stored
            # Matched by a hub name (hub_names): say which encoder folder the features were made with.
            by_name = entry.get("key") != pack_features_key(adapter)
            made_with = {"made_with": entry.get("image_encoder")} if by_name else {}
            return dataclasses.replace(identity, clip=rows, clip_record={
                **_record(key, rows, adapter), "pack": identity.pack_path, **made_with})
    path = cached_features_path(key)
    crops, weights = _kept_crops_and_weights(identity)
    selfie_features = _read_cached(path, key, len(crops))
    computed = selfie_features is None
    if selfie_features is None:
        try:
            selfie_features = encoder.features(crops).astype(np.float32)
        except ModelUnavailableError as exc:
            if identity.source != "pack":
                raise  # selfies: the encoder is missing for every character alike (exit 4)
            raise PackError(_no_features_here(identity, adapter, exc, preset)) from None
    rows = _rows(weights, selfie_features)
    record = _record(key, rows, adapter)
    if computed:
        _write_cached(path, key, selfie_features, record)
    return dataclasses.replace(identity, clip=rows, clip_record={**record, "cache": str(path)})


def _record(key: str, rows: np.ndarray, adapter: Any) -> dict[str, Any]:
    return {"key": key, "sha256": rows_sha256(rows), "shape": list(rows.shape), "layer": "hidden_states[-2]",
            "aggregation": "quality-weighted mean", "image_encoder": adapter.image_encoder.key_material()}


def _no_features_here(identity: CharacterIdentity, adapter: Any, exc: Exception, preset: str | None) -> str:
    """Why a pack's character cannot render with FaceID-Plus v2 here, and how to fix it."""
    held = [json.dumps(e.get("image_encoder"), sort_keys=True) for e in pack_clip_entries(
        read_pack(Path(identity.pack_path)).meta)]
    encoder = adapter.image_encoder
    option = f" --image-encoder {encoder.id}" if encoder.source != "builtin" else ""
    return (f"{identity.pack_path}: FaceID-Plus v2 needs this pack's CLIP face features for the image encoder "
            f"{json.dumps(encoder.key_material(), sort_keys=True)}, the pack holds "
            f"{'features only for ' + '; '.join(held) if held else 'none'}, and that encoder cannot be loaded here "
            f"to compute them from its crops ({exc}). To fix: re-encode the pack with the variant where the "
            f"selfies and the encoder are (`idcli encode-identity SELFIES --name {identity.name} --variant "
            f"faceid-plusv2 --preset {preset or 'PRESET'}{option}`), or get the encoder here")


# -- features kept in identity packs (idcli encode-identity --variant faceid-plusv2) ---------------------------

PACK_ENTRIES = "clip_features"  # the pack metadata's list of feature entries


def pack_features_key(adapter: Any) -> str:
    """What names a pack's features: the recipe and the image encoder's identity, as the cache keys them
    (the pack's own crops are the rest of what made them)."""
    from ..adapters import CLIP_FEATURES_RECIPE

    return tagged_hash(CLIP_FEATURES_RECIPE, {"image_encoder": adapter.image_encoder.key_material()})


def pack_clip_entries(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """A pack's CLIP feature entries (none in a FaceID-only pack, or in one written before they existed)."""
    entries = meta.get(PACK_ENTRIES)
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def pack_clip_features(meta: dict[str, Any], tensors: dict[str, np.ndarray], adapters: list[Any]
                       ) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """The CLIP features of a pack's kept crops for each adapter's image encoder: the metadata entries and
    the tensors (``clip_features.<key>.aggregate`` (tokens, hidden) and ``.selfies`` (kept, tokens, hidden),
    float32) to add to the pack. The rows are made exactly as ``with_clip_features`` makes them."""
    from ..adapters import CLIP_FEATURES_RECIPE

    crops, weights = _kept_of(meta, tensors)
    entries: list[dict[str, Any]] = []
    extra: dict[str, np.ndarray] = {}
    for adapter in adapters:
        key = pack_features_key(adapter)
        if any(e["key"] == key for e in entries):
            continue  # two presets, one encoder (sd15 and sdxl read the same ViT-H)
        rows = _rows(weights, _Encoder(adapter).features(crops).astype(np.float32))
        name = f"clip_features.{key.split(':')[1][:16]}"
        extra[f"{name}.aggregate"], extra[f"{name}.selfies"] = rows[0], rows[1:]
        entries.append({"key": key, "recipe": CLIP_FEATURES_RECIPE, "image_encoder":
                        adapter.image_encoder.key_material(), "tensors": {"aggregate": f"{name}.aggregate",
                                                                          "selfies": f"{name}.selfies"},
                        "shape": list(rows.shape), "sha256": rows_sha256(rows), "layer": "hidden_states[-2]",
                        "aggregation": "quality-weighted mean", "hub_names": hub_names(adapter.image_encoder)})
    return entries, extra


def hub_names(encoder: Any) -> list[dict[str, Any]]:
    """The hub names of a local image encoder folder that is a snapshot in the Hugging Face cache.

    ``idcli models fetch`` puts the preset's encoder there, and a render keys it by the folder's content
    while it is there, by its hub id and revision where it is not (adapters.resolve_plus_adapter). A pack's
    features made from such a snapshot are the features of that hub folder at that commit: named by the
    commit, and by ``main`` when the cache's ``refs/main`` pointed at that commit — what a machine without
    the encoder resolves the preset's encoder to. Empty for any other folder.
    """
    from ..model_setup import hub_cache_commit, hub_cache_repo_id

    if encoder.source != "local":
        return []
    parts = Path(encoder.id).parts
    for i, part in enumerate(parts[:-2]):
        repo = hub_cache_repo_id(part)
        if repo is not None and parts[i + 1] == "snapshots":
            commit, subfolder = parts[i + 2], "/".join(parts[i + 3:])
            names = [{"hub": {"id": repo, "revision": commit, "subfolder": subfolder}}]
            if hub_cache_commit(Path(*parts[:i + 1]), "main") == commit:
                names.append({"hub": {"id": repo, "revision": "main", "subfolder": subfolder}})
            return names
    return []


def pack_entry_for(pack: IdentityPack, adapter: Any) -> dict[str, Any] | None:
    """The pack's feature entry for ``adapter``'s image encoder: the one keyed by it, else (a hub encoder
    that is not here) one made from a fetched snapshot of that hub folder and revision (``hub_names``)."""
    entries = pack_clip_entries(pack.meta)
    key = pack_features_key(adapter)
    found = next((e for e in entries if e.get("key") == key), None)
    if found is None and adapter.image_encoder.source == "hub":
        from ..adapters import CLIP_FEATURES_RECIPE

        named = adapter.image_encoder.key_material()
        found = next((e for e in entries if e.get("recipe") == CLIP_FEATURES_RECIPE
                      and isinstance(e.get("hub_names"), list) and named in e["hub_names"]), None)
    return found


def stored_pack_features(pack: IdentityPack, adapter: Any) -> tuple[np.ndarray, dict[str, Any]] | None:
    """The pack's CLIP rows for ``adapter``'s image encoder (the aggregate, then each kept selfie's) and their
    entry, or None when it holds none for that encoder. Features that are incomplete, of another shape than
    the pack's kept selfies, or do not match their recorded hash are a PackError."""
    entry = pack_entry_for(pack, adapter)
    if entry is None:
        return None
    names = entry.get("tensors") or {}
    kept = len(_kept_of(pack.meta, pack.tensors)[0])
    try:
        aggregate, selfies = pack.tensors[names["aggregate"]], pack.tensors[names["selfies"]]
        rows = np.concatenate([aggregate[None], selfies]).astype(np.float32)
    except (KeyError, TypeError, ValueError):
        rows = None
    if rows is None or rows.ndim != 3 or len(rows) != 1 + kept or not np.isfinite(rows).all():
        raise PackError(f"{pack.path}: the identity pack's CLIP features are incomplete or not one row per kept "
                        "selfie (damaged?); re-encode the pack")
    if rows_sha256(rows) != entry.get("sha256"):
        raise PackError(f"{pack.path}: the identity pack's CLIP features do not match their recorded hash "
                        "(damaged?); re-encode the pack")
    return rows, entry


def plus_adapter_for(preset: str, image_encoder: str | None = None, subfolder: str = "",
                     base_dir: Path | None = None) -> Any:
    """The FaceID-Plus v2 adapter (and so the image encoder) a shot list with ``model: {preset, adapter:
    {variant: faceid-plusv2, image_encoder, image_encoder_subfolder}}`` renders with: what a pack's
    features are computed for."""
    from ..adapters import resolve_plus_adapter
    from ..models import resolve_model
    from ..shotlist import AdapterSpec, ModelSpec

    base = base_dir or Path.cwd()
    spec = ModelSpec(preset=preset, adapter=AdapterSpec(variant="faceid-plusv2", image_encoder=image_encoder,
                                                        image_encoder_subfolder=subfolder))
    return resolve_plus_adapter(spec, resolve_model(spec, base, "float32"), base)


def image_encoder_for(adapter: Any) -> _Encoder:
    """The (lazily loaded) image encoder of ``adapter``, shared by the identities of one run."""
    return _Encoder(adapter)


def attach_clip_features(identities: dict[str, CharacterIdentity], adapter: Any, *, loaded: Any = None,
                         failures: dict[str, Any] | None = None, preset: str | None = None
                         ) -> dict[str, CharacterIdentity]:
    """Every identity with its CLIP features for ``adapter``'s image encoder (FaceID-Plus v2 runs only).

    ``failures`` (with ``loaded``, the shot list): a character whose pack cannot give its features (none
    for this encoder and the encoder not here, or damaged ones) is recorded there as a Problem at its line
    and left out, so that only the shots naming it fail (as resolve_identities does). Without it, raised.
    """
    from .resolve import character_problem

    encoder = _Encoder(adapter, preset)
    result: dict[str, CharacterIdentity] = {}
    for name, identity in identities.items():
        try:
            result[name] = with_clip_features(identity, adapter, encoder, preset)
        except PackError as exc:
            if failures is None or loaded is None:
                raise
            failures[name] = character_problem(loaded, name, exc)
    return result
