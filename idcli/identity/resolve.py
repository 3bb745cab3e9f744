"""Characters of a shot list to identities: packs read, selfies encoded once and cached.

Selfies are encoded on the fly and the pack is kept in ``$IDCLI_HOME/identities`` under the
identity's key: a hash of what made it (the selfies' bytes, the face models' hashes, the encoder
version and the aggregation settings), so a second run does not encode again and a changed selfie
makes a new identity (and so new job keys) for that character only.

Job keys name an identity by that key, not by its embedding's float bits: the same selfies encoded
on another machine or ONNX Runtime build (whose last bits may differ) keep every job key. An
identity pack, which carries its embedding as data, is named by its embedding's hash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Problem
from ..hashing import tagged_hash
from ..paths import absolute, state_dir
from ..presets import get_preset
from ..profile_ranges import IDENTITY, ranged
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
    key: str = ""  # what job keys name this identity by (identity_key / pack_identity_key)
    # Every selfie given (source "selfies"), as (path, sha256): where idcli reproduce finds and checks them.
    selfie_files: tuple[tuple[str, str], ...] = ()
    # Each selfie as the shot list gives it (relative to the shot list), in selfie_files' order: recorded as
    # its ``path`` so that reproduce finds it after the project folder moved (``abs_path``: as resolved).
    selfie_given: tuple[str, ...] = field(default=(), compare=False)
    # A pack character's pack as the shot list gives it: recorded as ``pack_file``, for the same reason.
    pack_given: str = field(default="", compare=False)
    # FaceID-Plus v2 only (identity/clip_features.py): CLIP rows (the aggregate, then each kept selfie's),
    # (n, tokens, hidden) float32, and what the sidecar says of them. None for FaceID.
    clip: Any = field(default=None, compare=False, repr=False)
    clip_record: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    # Per selfie given (file order): (faces found, the face used) — a group photo's largest face is used,
    # which plan warns about (identity/group_selfies.py). Read from the pack; never part of a key.
    selfie_faces: tuple[tuple[int, int], ...] = field(default=(), compare=False, repr=False)

    @property
    def references_sha256(self) -> str:
        return embedding_sha256(self.references)

    def record(self) -> dict[str, Any]:
        """What the sidecar says about this character's identity."""
        return {"name": self.name, "source": self.source, "pack_sha256": self.pack_sha256,
                "pack_path": self.pack_path, "selfie_sha256": list(self.selfie_sha256s),
                "embedding_sha256": self.embedding_sha256, "face_models": self.face_models, "strength": self.strength,
                "random_face_models": self.random_face_models, "identity_key": self.key,
                "selfie_files": self._selfie_records(),
                **({"pack_file": self.pack_given} if self.pack_given else {}),
                **({"clip_features": self.clip_record} if self.clip_record is not None else {})}


    def _selfie_records(self) -> list[dict[str, str]]:
        if len(self.selfie_given) != len(self.selfie_files):  # not from a shot list (reproduce): as resolved
            return [{"path": path, "sha256": sha} for path, sha in self.selfie_files]
        return [{"path": given, "abs_path": str(absolute(path)), "sha256": sha}
                for given, (path, sha) in zip(self.selfie_given, self.selfie_files, strict=True)]


def synthetic_face_models_folder() -> Path:
    """The random-weight face pack of the tiny presets, built on first use in the idcli state folder."""
    from ..synthetic_faces import build_synthetic_face_pack

    return build_synthetic_face_pack(state_dir() / "face-models")


def face_models_for(preset_name: str, option: str | None) -> FaceModels:
    """``--face-models`` / ``$IDCLI_FACE_MODELS`` override the preset's pack (synthetic for tiny presets)."""
    return resolve_face_models(option, "synthetic" if get_preset(preset_name).random_weights else None)


# The analyzers shared_analyzer made, by face-model pack (a test puts its own in).
ANALYZERS: dict[str, Any] = {}


def shared_analyzer(models: FaceModels) -> Any:
    """One FaceAnalyzer per face-model pack per process (loading ONNX sessions costs about a second)."""
    from .faces import FaceAnalyzer

    key = f"{models.folder}|{models.hash}"
    if key not in ANALYZERS:
        ANALYZERS[key] = FaceAnalyzer(models)
    return ANALYZERS[key]


IDENTITY_KEY_TAG = "idcli-identity-v2"


def identity_key(selfie_sha256s: list[str], face_models_hash: str) -> str:
    """The key of an identity made from selfies: what made it, never the embedding's float bits.

    The selfies' hashes (in the order given, rejected ones included: they were part of the input),
    the face models' hash, the encoder version and the aggregation and quality-gate settings.
    Anything else that could change the embedding is code, covered by ENCODER_VERSION.
    """
    from dataclasses import asdict

    from .aggregate import SAME_PERSON_THRESHOLD
    from .build import ENCODER_VERSION
    from .encode import QualityGate

    return tagged_hash(IDENTITY_KEY_TAG, {
        "selfies": list(selfie_sha256s), "face_models": face_models_hash, "encoder": ENCODER_VERSION,
        "aggregation": {"method": "quality-weighted spherical mean", "threshold": SAME_PERSON_THRESHOLD,
                        "gate": asdict(QualityGate())}})


def pack_identity_key(embedding_sha256: str) -> str:
    """The key of an identity read from a pack: its embedding is data, so its hash names it."""
    return tagged_hash(IDENTITY_KEY_TAG, {"pack_embedding_sha256": embedding_sha256})


def identity_from_pack(name: str, strength: float, pack: IdentityPack, source: str, key: str | None = None,
               selfie_files: tuple[tuple[str, str], ...] = ()) -> CharacterIdentity:
    selfies = tuple(s.get("sha256", "") for s in pack.meta.get("selfies", []) if s.get("used", True))
    models = pack.meta.get("face_models", {})
    used = [i for i, s in enumerate(pack.meta.get("selfies", [])) if s.get("used", True)]
    references = pack.tensors["selfie_embeddings"][used].astype(np.float32)
    faces = tuple((len(s.get("faces") or []), int(s.get("face_index") or 0)) for s in pack.meta.get("selfies", []))
    return CharacterIdentity(name, strength, source, pack.path, pack.sha256, pack.embedding_sha256, selfies,
                             models, bool(models.get("synthetic")), pack.embedding.astype(np.float32), references,
                             key or pack_identity_key(pack.embedding_sha256), selfie_files, selfie_faces=faces)


def cached_pack_path(key: str) -> Path:
    """Where the identity cache keeps the pack of an identity made from selfies."""
    return state_dir() / "identities" / f"{key.split(':')[1][:32]}.idpack"


def read_cached_pack(key: str) -> Any:
    """The identity cache's pack for ``key``, or None when there is none (or it is damaged: rebuilt then)."""
    path = cached_pack_path(key)
    if not path.is_file():
        return None
    try:
        return read_pack(path)
    except PackError:
        return None


def identity_from_selfies(name: str, strength: float, selfies: list[SelfieFile], models: FaceModels,
                          on_encode: Callable[[str], None] | None = None) -> CharacterIdentity:
    """The identity of ``selfies`` (already read): from the cache, else encoded and cached."""
    key = identity_key([s.sha256 for s in selfies], models.hash)
    cached = cached_pack_path(key)
    pack = read_cached_pack(key)
    if pack is None:
        from .build import build_identity

        if on_encode:
            on_encode(name)
        pack = build_identity(name, selfies, shared_analyzer(models), cached).pack
    return identity_from_pack(name, strength, pack, "selfies", key, tuple((str(s.path), s.sha256) for s in selfies))


def character_problem(loaded: LoadedShotList, name: str, exc: Exception) -> Problem:
    """What was wrong with a character's selfies or pack, at the line that names the file (or the character).

    The message names the character and the file; the file's own line in the shot list is found by
    matching the path the error names against the character's ``selfies`` / ``identity`` entries.
    """
    character = loaded.shotlist.characters[name]
    text = str(exc)
    where: tuple[str | int, ...] = ("characters", name)
    entries: list[tuple[str, int | None, str]] = [("selfies", i, p) for i, p in enumerate(character.selfies or [])]
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


@ranged(IDENTITY)
def resolve_identities(loaded: LoadedShotList, names: set[str], preset_name: str, face_models: str | None = None,
                       on_encode: Callable[[str], None] | None = None,
                       failures: dict[str, Problem] | None = None) -> dict[str, CharacterIdentity]:
    """Identities of the named characters (only those some job needs).

    ``failures``: when given, a character whose selfies or pack cannot be used (no face, an unreadable
    file, selfies of different people) is recorded there as a Problem with its line, and the others are
    still resolved, so that only the shots naming it fail. Without it, the first such error is raised.
    """
    from ..errors import InputError, ModelUnavailableError

    characters = loaded.shotlist.characters
    result: dict[str, CharacterIdentity] = {}
    models: FaceModels | None = None
    for name in sorted(names):
        character = characters[name]
        try:
            if character.identity is not None:
                pack = read_pack(loaded.resolve_path(character.identity))
                identity = identity_from_pack(name, character.identity_strength, pack, "pack")
                result[name] = replace(identity, pack_given=character.identity)
                continue
            # Read once: the cache key and, on a miss, the encoding come from the same bytes.
            selfies = [SelfieFile.read(loaded.resolve_path(p)) for p in character.selfies or []]
            models = models or face_models_for(preset_name, face_models)
            identity = identity_from_selfies(name, character.identity_strength, selfies, models, on_encode)
            result[name] = replace(identity, selfie_given=tuple(character.selfies or ()))
        except ModelUnavailableError:
            raise  # no face models at all: every character fails the same way, say it once (exit 4)
        except InputError as exc:
            if failures is None:
                raise
            failures[name] = character_problem(loaded, name, exc)
    return result
