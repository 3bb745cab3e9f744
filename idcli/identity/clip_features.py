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

from ..hashing import sha256_bytes, tagged_hash
from ..paths import state_dir
from .pack import read_pack
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

    from ..store import atomic_write

    metadata = {"format": CLIP_CACHE_FORMAT, "key": key, "record": json.dumps(record, sort_keys=True)}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, save({"selfie_features": np.ascontiguousarray(features, np.float32)}, metadata=metadata))


def _kept_crops_and_weights(identity: CharacterIdentity) -> tuple[np.ndarray, np.ndarray]:
    """The 224-px crops of the selfies the identity kept, and their aggregation weights (summing to 1)."""
    pack = read_pack(Path(identity.pack_path))
    selfies = pack.meta.get("selfies", [])
    used = [i for i, s in enumerate(selfies) if s.get("used", True)] or list(range(len(pack.tensors["crops_224"])))
    weights = np.asarray((pack.meta.get("aggregation") or {}).get("weights") or [], np.float64)
    if len(weights) != len(used) or not np.isfinite(weights).all() or weights.sum() <= 0:
        weights = np.ones(len(used))  # a pack without recorded weights: an even mean, as its embedding is unknown
    return pack.tensors["crops_224"][used], weights / weights.sum()


class _Encoder:
    """The image encoder, loaded on the first identity that needs it (most runs find every one cached)."""

    def __init__(self, adapter: Any) -> None:
        self.adapter = adapter
        self.model: Any = None

    def features(self, crops: np.ndarray) -> np.ndarray:
        from ..engine.faceid_plus import crop_features

        if self.model is None:
            self.model = self._load()
        return crop_features(self.model, crops)

    def _load(self) -> Any:
        from ..engine.faceid_plus import load_image_encoder, random_image_encoder_folder

        encoder = self.adapter.image_encoder
        if encoder.source == "builtin":
            return load_image_encoder(str(random_image_encoder_folder(self.adapter)))
        if encoder.source == "local":
            return load_image_encoder(encoder.id, allow_pickle=self.adapter.allow_pickle)
        return load_image_encoder(encoder.id, encoder.subfolder, revision=encoder.revision,
                                  allow_pickle=self.adapter.allow_pickle)


def with_clip_features(identity: CharacterIdentity, adapter: Any, encoder: _Encoder) -> CharacterIdentity:
    """``identity`` with its CLIP rows (the aggregate, then each kept selfie's) and their sidecar record."""
    key = clip_features_key(identity, adapter)
    path = cached_features_path(key)
    crops, weights = _kept_crops_and_weights(identity)
    selfie_features = _read_cached(path, key, len(crops))
    computed = selfie_features is None
    if selfie_features is None:
        selfie_features = encoder.features(crops).astype(np.float32)
    mean = np.tensordot(weights, selfie_features.astype(np.float64), axes=1).astype(np.float32)
    rows = np.concatenate([mean[None], selfie_features])
    record = {"key": key, "sha256": sha256_bytes(np.ascontiguousarray(rows, "<f4").tobytes()),
              "shape": list(rows.shape), "layer": "hidden_states[-2]", "aggregation": "quality-weighted mean",
              "image_encoder": adapter.image_encoder.key_material()}
    if computed:
        _write_cached(path, key, selfie_features, record)
    return dataclasses.replace(identity, clip=rows, clip_record={**record, "cache": str(path)})


def image_encoder_for(adapter: Any) -> _Encoder:
    """The (lazily loaded) image encoder of ``adapter``, shared by the identities of one run."""
    return _Encoder(adapter)


def attach_clip_features(identities: dict[str, CharacterIdentity], adapter: Any) -> dict[str, CharacterIdentity]:
    """Every identity with its CLIP features for ``adapter``'s image encoder (FaceID-Plus v2 runs only)."""
    encoder = _Encoder(adapter)
    return {name: with_clip_features(identity, adapter, encoder) for name, identity in identities.items()}
