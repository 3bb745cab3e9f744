"""Selfies to an identity pack: encode each selfie, aggregate, write."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .aggregate import Aggregate, aggregate
from .encode import QualityGate, SelfieEncoding, SelfieFile, encode_selfie
from .faces import FaceAnalyzer, FaceModels
from .pack import IdentityPack, write_pack

ENCODER_VERSION = "idcli-identity-encoder/1"  # bump when the same selfies would give another embedding


@dataclass
class EncodeResult:
    pack: IdentityPack
    selfies: list[SelfieEncoding]
    aggregate: Aggregate


def build_identity(name: str, selfies: Sequence[Path | SelfieFile], analyzer: FaceAnalyzer, out: Path, *,
                   face_index: int | None = None, gate: QualityGate | None = None,
                   on_selfie: Callable[[SelfieEncoding], None] | None = None,
                   clip_adapters: Sequence[Any] = (), overwrite: bool = True) -> EncodeResult:
    """Encode ``selfies`` (paths, or files already read) as one person named ``name``; write the pack to ``out``.

    ``clip_adapters``: FaceID-Plus v2 adapters (adapters.AdapterIdentity) whose image encoders' CLIP features
    of the kept crops the pack also carries (identity/clip_features.py), so that renders of it need neither
    the selfies nor the encoder. ``overwrite=False``: a file at ``out`` is kept (PackExistsError)."""
    encoded: list[SelfieEncoding] = []
    for selfie in selfies:
        item = encode_selfie(analyzer, selfie, face_index, gate)
        encoded.append(item)
        if on_selfie:
            on_selfie(item)
    embeddings = np.stack([e.embedding for e in encoded])
    agg = aggregate(embeddings, [e.quality.weight for e in encoded], [e.path for e in encoded])
    used = set(agg.kept)
    models: FaceModels = analyzer.models
    meta: dict[str, Any] = {
        "name": name,
        "created": datetime.now(timezone.utc).isoformat(),  # noqa: UP017
        "encoder": ENCODER_VERSION,
        "selfies": [{**e.record(), "used": i in used, "file": os.path.basename(e.path)}
                    for i, e in enumerate(encoded)],
        "face_models": models.record(),
        "random_weights": models.synthetic,
        "aggregation": agg.record(),
    }
    tensors = {
        "embedding": agg.embedding.astype(np.float32),
        "selfie_embeddings": embeddings.astype(np.float32),
        "crops_112": np.stack([e.crop_112 for e in encoded]),
        "crops_224": np.stack([e.crop_224 for e in encoded]),
        "crops_head": np.stack([e.crop_head for e in encoded]),
    }
    if clip_adapters:
        from .clip_features import PACK_ENTRIES, pack_clip_features

        meta[PACK_ENTRIES], extra = pack_clip_features(meta, tensors, list(clip_adapters))
        tensors.update(extra)
    return EncodeResult(write_pack(out, meta, tensors, overwrite=overwrite), encoded, agg)


def contact_sheet(pack: IdentityPack, path: Path) -> None:
    """A PNG of the pack's aligned 224-pixel crops, each labelled, rejected ones marked."""
    from PIL import Image, ImageDraw

    crops = pack.tensors["crops_224"]
    selfies = pack.meta.get("selfies", [])
    cell, label = 224, 36
    sheet = Image.new("RGB", (cell * len(crops), cell + label), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for i, crop in enumerate(crops):
        sheet.paste(Image.fromarray(crop), (i * cell, 0))
        info = selfies[i] if i < len(selfies) else {}
        used = info.get("used", True)
        quality = info.get("quality", {})
        text = f"{info.get('file', i)}\nscore {quality.get('det_score', 0):.2f}" + ("" if used else "  REJECTED")
        draw.multiline_text((i * cell + 4, cell + 2), text, fill=(230, 230, 230) if used else (255, 90, 90))
        if not used:
            draw.rectangle((i * cell, 0, (i + 1) * cell - 1, cell - 1), outline=(255, 60, 60), width=4)
    import io

    from ..safeio import remove_dead_temporaries
    from ..shared_files import make_folders
    from ..store import atomic_write

    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    make_folders(path.parent)  # group-writable in a folder a team shares (shared_files.py)
    remove_dead_temporaries(path.parent)
    atomic_write(path, buffer.getvalue())
