"""Characters of a shot list to identities: packs read, selfies encoded once and cached.

Selfies are encoded on the fly and the pack is kept in ``$IDCLI_HOME/identities`` under a hash of
the selfies' bytes, the face models' hashes and the encoder version, so a second run does not
encode again and a changed selfie makes a new identity (and so new job keys) for that character only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Problem
from ..hashing import tagged_hash
from ..paths import state_dir
from ..presets import get_preset
from ..shotlist import LoadedShotList
from .encode import SelfieFile
from .faces import FaceModels, resolve_face_models
from .pack import IdentityPack, PackError, embedding_sha256, read_pack


@dataclass(frozen=True)
class CharacterIdentity:
    name: str
    strength: float
    source: str  # "selfies" (encoded and cached) or "pack"
    pack_path: str
    pack_sha256: str
    embedding_sha256: str
    selfie_sha256s: tuple[str, ...]
    face_models: dict[str, Any]
    random_face_models: bool
    embedding: np.ndarray = field(compare=False, repr=False)
    # The kept selfies' own embeddings (file order), for the 'prepend' aggregation (docs/method.md).
    references: np.ndarray = field(default_factory=lambda: np.zeros((0, 512), np.float32), compare=False,
                                   repr=False)

    @property
    def references_sha256(self) -> str:
        return embedding_sha256(self.references)

    def record(self) -> dict[str, Any]:
        """What the sidecar says about this character's identity."""
        return {"name": self.name, "source": self.source, "pack_sha256": self.pack_sha256,
                "pack_path": self.pack_path, "selfie_sha256": list(self.selfie_sha256s),
                "embedding_sha256": self.embedding_sha256, "face_models": self.face_models, "strength": self.strength,
                "random_face_models": self.random_face_models}


def synthetic_face_models_folder() -> Path:
    """The random-weight face pack of the tiny presets, built on first use in the idcli state folder."""
    from ..synthetic_faces import build_synthetic_face_pack

    return build_synthetic_face_pack(state_dir() / "face-models")


def face_models_for(preset_name: str, option: str | None) -> FaceModels:
    """``--face-models`` / ``$IDCLI_FACE_MODELS`` override the preset's pack (synthetic for tiny presets)."""
    return resolve_face_models(option, "synthetic" if get_preset(preset_name).random_weights else None)


_ANALYZERS: dict[str, Any] = {}


def shared_analyzer(models: FaceModels) -> Any:
    """One FaceAnalyzer per face-model pack per process (loading ONNX sessions costs about a second)."""
    from .faces import FaceAnalyzer

    key = f"{models.folder}|{models.hash}"
    if key not in _ANALYZERS:
        _ANALYZERS[key] = FaceAnalyzer(models)
    return _ANALYZERS[key]


def _from_pack(name: str, strength: float, pack: IdentityPack, source: str) -> CharacterIdentity:
    selfies = tuple(s.get("sha256", "") for s in pack.meta.get("selfies", []) if s.get("used", True))
    models = pack.meta.get("face_models", {})
    used = [i for i, s in enumerate(pack.meta.get("selfies", [])) if s.get("used", True)]
    references = pack.tensors["selfie_embeddings"][used].astype(np.float32)
    return CharacterIdentity(name, strength, source, pack.path, pack.sha256, pack.embedding_sha256, selfies,
                             models, bool(models.get("synthetic")), pack.embedding.astype(np.float32), references)


def character_problem(loaded: LoadedShotList, name: str, exc: Exception) -> Problem:
    """What was wrong with a character's selfies or pack, at the line that names the file (or the character).

    The message names the character and the file; the file's own line in the shot list is found by
    matching the path the error names against the character's ``selfies`` / ``identity`` entries.
    """
    character = loaded.shotlist.characters[name]
    text = str(exc)
    where: tuple[str | int, ...] = ("characters", name)
    entries = [("selfies", i, p) for i, p in enumerate(character.selfies or [])]
    if character.identity is not None:
        entries.append(("identity", None, character.identity))
    for field_name, index, value in entries:
        if str(loaded.resolve_path(value)) in text or value in text:
            where = ("characters", name, field_name) if index is None else ("characters", name, field_name, index)
            text = text.replace(str(loaded.resolve_path(value)), value)
            break
    line, column = loaded.position(where, key=len(where) == 2)
    field_path = ".".join(str(p) for p in where[:3]) + (f"[{where[3]}]" if len(where) > 3 else "")
    return Problem(f"character '{name}' cannot be used: {text}", field_path, line, column,
                   f"only the shots naming {{{name}}} fail; fix or replace this file and rerun")


def resolve_identities(loaded: LoadedShotList, names: set[str], preset_name: str, face_models: str | None = None,
                       on_encode: Callable[[str], None] | None = None,
                       failures: dict[str, Problem] | None = None) -> dict[str, CharacterIdentity]:
    """Identities of the named characters (only those some job needs).

    ``failures``: when given, a character whose selfies or pack cannot be used (no face, an unreadable
    file, selfies of different people) is recorded there as a Problem with its line, and the others are
    still resolved, so that only the shots naming it fail. Without it, the first such error is raised.
    """
    from ..errors import InputError, ModelUnavailableError

    result: dict[str, CharacterIdentity] = {}
    state: dict[str, Any] = {"analyzer": None, "models": None}
    for name in sorted(names):
        try:
            result[name] = _resolve_one(loaded, name, preset_name, face_models, on_encode, state)
        except ModelUnavailableError:
            raise  # no face models at all: every character fails the same way, say it once (exit 4)
        except InputError as exc:
            if failures is None:
                raise
            failures[name] = character_problem(loaded, name, exc)
    return result


def _resolve_one(loaded: LoadedShotList, name: str, preset_name: str, face_models: str | None,
                 on_encode: Callable[[str], None] | None, state: dict[str, Any]) -> CharacterIdentity:
    from .build import ENCODER_VERSION, build_identity

    character = loaded.shotlist.characters[name]
    if character.identity is not None:
        pack = read_pack(loaded.resolve_path(character.identity))
        return _from_pack(name, character.identity_strength, pack, "pack")
    # Read once: the cache key and, on a miss, the encoding come from the same bytes.
    selfies = [SelfieFile.read(loaded.resolve_path(p)) for p in character.selfies or []]
    models = state["models"] = state["models"] or face_models_for(preset_name, face_models)
    key = tagged_hash("idcli-identity-cache-v1", {
        "selfies": [s.sha256 for s in selfies], "face_models": models.hash, "encoder": ENCODER_VERSION})
    cached = state_dir() / "identities" / f"{key.split(':')[1][:32]}.idpack"
    pack = None
    if cached.is_file():
        try:
            pack = read_pack(cached)
        except PackError:
            pack = None  # a damaged cache entry is rebuilt
    if pack is None:
        if on_encode:
            on_encode(name)
        analyzer = state["analyzer"] = state["analyzer"] or shared_analyzer(models)
        pack = build_identity(name, selfies, analyzer, cached).pack
    return _from_pack(name, character.identity_strength, pack, "selfies")
