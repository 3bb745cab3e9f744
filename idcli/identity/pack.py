"""Identity packs: one safetensors file holding a character's face.

Tensors: ``embedding`` (512, float32, the aggregate), ``selfie_embeddings`` (n, 512),
``crops_112`` / ``crops_224`` (n, s, s, 3 uint8, ArcFace-aligned) and ``crops_head`` (n, 384, 384, 3).
Metadata (the safetensors header, strings only): ``format`` = ``idcli-identity-pack``,
``schema`` = the pack schema version, ``meta`` = JSON described in docs/identity.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..hashing import sha256_bytes
from ..option_words import Option
from ..safeio import NotRegularFile, read_regular
from ..versions import TOOL_NAME, TOOL_VERSION

PACK_FORMAT = "idcli-identity-pack"
PACK_SCHEMA = 1
PACK_SUFFIX = ".idpack"
REQUIRED_TENSORS = ("embedding", "selfie_embeddings", "crops_112", "crops_224", "crops_head")
MAX_PACK_BYTES = 256 * 1024 * 1024


class PackError(InputError):
    """An identity pack that cannot be read."""


class PackExistsError(PackError):
    """A pack is already at the path a new one was to be written to (shot lists and job keys may name it)."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} already exists (an identity pack that shot lists may name); give ",
                         Option("overwrite", True, flag="--force"), " to replace it, or another ",
                         Option("out", flag="-o"))
        self.file = str(path)


@dataclass
class IdentityPack:
    meta: dict[str, Any]
    tensors: dict[str, np.ndarray] = field(repr=False)
    sha256: str = ""  # of the file's bytes
    path: str = ""

    @property
    def name(self) -> str:
        return str(self.meta["name"])

    @property
    def embedding(self) -> np.ndarray:
        return self.tensors["embedding"]

    @property
    def embedding_sha256(self) -> str:
        return embedding_sha256(self.embedding)


def embedding_sha256(embedding: np.ndarray) -> str:
    """Hash of the embedding's float32 little-endian bytes: what conditions the renders."""
    return sha256_bytes(np.ascontiguousarray(embedding, dtype="<f4").tobytes())


def pack_bytes(meta: dict[str, Any], tensors: dict[str, np.ndarray]) -> bytes:
    from safetensors.numpy import save

    missing = [name for name in REQUIRED_TENSORS if name not in tensors]
    if missing:
        raise ValueError(f"identity pack is missing tensors {missing}")
    meta = {**meta, "schema": PACK_SCHEMA, "tool": {"name": TOOL_NAME, "version": TOOL_VERSION},
            "embedding_sha256": embedding_sha256(tensors["embedding"])}
    header = {"format": PACK_FORMAT, "schema": str(PACK_SCHEMA), "meta": json.dumps(meta, sort_keys=True)}
    return save({k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata=header)


def write_pack(path: Path, meta: dict[str, Any], tensors: dict[str, np.ndarray], *,
               overwrite: bool = True) -> IdentityPack:
    """Write a pack atomically; returns it as ``read_pack`` would, parsed from the bytes written.

    ``overwrite=False``: a file already at ``path`` is kept and PackExistsError raised.
    """
    from ..safeio import remove_dead_temporaries
    from ..shared_files import make_folders
    from ..store import atomic_write

    data = pack_bytes(meta, tensors)
    make_folders(path.parent)  # group-writable in a folder a team shares (shared_files.py)
    # A write killed with -9 (encode-identity interrupted hard) left its hidden temporary here; clear those.
    remove_dead_temporaries(path.parent)
    try:
        atomic_write(path, data, replace=overwrite)
    except FileExistsError:
        raise PackExistsError(path) from None
    return parse_pack(data, path)


def read_pack(path: Path) -> IdentityPack:
    """Read and check a pack; every failure is a PackError naming the file."""
    try:
        # Bounded: a pack of 32 selfies is about 20 MB; a huge file is not one and must not fill memory.
        data = read_regular(path, MAX_PACK_BYTES)
    except NotRegularFile as exc:
        reasons = {"missing": "no such identity pack", "folder": "not a file", "special": "not a file",
                   "too-large": f"over {MAX_PACK_BYTES:,} bytes, too large for an identity pack"}
        raise PackError(f"{path}: {reasons.get(exc.kind) or f'cannot read ({exc.detail})'}", file=path) from None
    return parse_pack(data, path)


def parse_pack(data: bytes, path: Path) -> IdentityPack:
    """Check a pack's bytes (``path`` names it in errors and in the result)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        tensors = load(data)
        header = _header(data)
    except (SafetensorError, ValueError, OSError, UnicodeDecodeError, RecursionError) as exc:
        raise PackError(f"{path}: not an idcli identity pack (corrupt or another format: {exc})", file=path) from None
    if header.get("format") != PACK_FORMAT:
        raise PackError(f"{path}: a safetensors file, but not an idcli identity pack", file=path)
    try:
        schema = int(header.get("schema", "0"))
        meta = json.loads(header["meta"])
    except (KeyError, ValueError, RecursionError):  # RecursionError: nested past Python's stack
        raise PackError(f"{path}: identity pack metadata is damaged", file=path) from None
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        raise PackError(f"{path}: identity pack metadata is damaged (no name)", file=path)
    if schema > PACK_SCHEMA:
        raise PackError(f"{path}: made by a newer idcli (pack schema {schema}; this idcli reads up to "
                        f"{PACK_SCHEMA}); upgrade idcli", file=path)
    missing = [name for name in REQUIRED_TENSORS if name not in tensors]
    if missing or tensors["embedding"].shape != (512,):
        raise PackError(f"{path}: identity pack is incomplete (missing {missing or 'a 512-value embedding'})",
                        file=path)
    if not np.isfinite(tensors["embedding"]).all():
        raise PackError(f"{path}: identity pack embedding is not finite", file=path)
    if meta.get("embedding_sha256") != embedding_sha256(tensors["embedding"]):
        raise PackError(f"{path}: identity pack embedding does not match its recorded hash (damaged?)", file=path)
    return IdentityPack(meta, tensors, sha256_bytes(data), str(path))


def _header(data: bytes) -> dict[str, str]:
    if len(data) < 8:
        raise ValueError("file too short")
    size = int.from_bytes(data[:8], "little")
    if size > len(data) - 8 or size > 100_000_000:
        raise ValueError("bad header size")
    header = json.loads(data[8:8 + size].decode("utf-8"))
    return dict(header.get("__metadata__") or {})
