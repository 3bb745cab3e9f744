"""Which identity adapter (IP-Adapter FaceID) a run uses, named for job keys. No torch here."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import ModelUnavailableError
from .hashing import sha256_file_cached, tagged_hash
from .models import ModelIdentity
from .paths import local_path
from .presets import TINY_INIT_SEED, get_preset
from .shotlist import ModelSpec

RANDOM_ADAPTER_SEED = 1  # the tiny presets' random FaceID weights


@dataclass(frozen=True)
class AdapterIdentity:
    source: str  # "builtin" (random weights written by idcli), "hub" or "local"
    id: str  # hub id or folder ("builtin:<preset>" for tiny presets)
    weight_name: str
    subfolder: str
    revision: str | None
    content_hash: str | None  # builtin: descriptor hash; local: sha256 of the weight file
    random_weights: bool
    allow_pickle: bool

    def key_material(self) -> dict[str, Any]:
        if self.source == "hub":
            return {"hub": {"id": self.id, "revision": self.revision, "weight_name": self.weight_name,
                            "subfolder": self.subfolder}}
        return {self.source: self.content_hash}

    def record(self) -> dict[str, Any]:
        return asdict(self)


def resolve_adapter(spec: ModelSpec, model: ModelIdentity, base_dir: Path) -> AdapterIdentity:
    """The FaceID adapter for ``model``: the shot list's ``model.adapter``, else the preset's default."""
    preset = get_preset(model.preset)
    if model.random_weights:
        descriptor = tagged_hash("idcli-faceid-random-v1", {"unet": preset.components["unet"],
                                                            "init_seed": TINY_INIT_SEED, "seed": RANDOM_ADAPTER_SEED})
        # The file is named by its descriptor: a changed preset or drawing rule never loads an old file.
        weight = f"ip-adapter-faceid-random-{descriptor.rsplit(':', 1)[1][:16]}.safetensors"
        return AdapterIdentity("builtin", f"builtin:{preset.name}", weight, "", None,
                               descriptor, True, False)
    if spec.adapter is not None:
        source_id, weight, subfolder, revision = (spec.adapter.id, spec.adapter.weight_name, spec.adapter.subfolder,
                                                  spec.adapter.revision)
    else:
        assert preset.faceid is not None
        (source_id, weight), subfolder, revision = preset.faceid, "", None
    local = local_path(source_id, base_dir)
    if local is not None and local.is_dir():
        file = local / subfolder / weight
        if not file.is_file():
            # Found at plan time, like a model folder without its files: no key built on a missing file.
            raise ModelUnavailableError(f"adapter folder '{local}' has no weight file '{Path(subfolder) / weight}'")
        content = sha256_file_cached(file)
        return AdapterIdentity("local", str(local.resolve()), weight, subfolder, None, content, False,
                               spec.allow_pickle)
    return AdapterIdentity("hub", source_id, weight, subfolder, revision or "main", None, False, spec.allow_pickle)


def resolved_weight_sha256(adapter: AdapterIdentity) -> str | None:
    """sha256 of the adapter's weight file as loaded: the recorded hash for builtin and local adapters;
    for a hub adapter, of the file in the local hub cache that ``load_ip_adapter`` resolved (so the
    sidecar says exactly which bytes a branch name such as ``main`` meant that day). None when the
    file is not in the cache (it always is once loaded)."""
    if adapter.source != "hub":
        return adapter.content_hash
    from huggingface_hub import try_to_load_from_cache

    filename = f"{adapter.subfolder.strip('/')}/{adapter.weight_name}" if adapter.subfolder else adapter.weight_name
    found = try_to_load_from_cache(adapter.id, filename, revision=adapter.revision)
    return sha256_file_cached(Path(found)) if isinstance(found, str) else None
