"""Which identity adapter (IP-Adapter FaceID or FaceID-Plus v2) a run uses, named for job keys. No torch here."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .adapter_fit import check_adapter_fits
from .adapter_layout import check_adapter_file
from .adapter_pickle import check_allowed_pickle
from .errors import ModelUnavailableError
from .hashing import sha256_file_cached, tagged_hash
from .models import ModelIdentity
from .paths import local_path
from .presets import RANDOM_IMAGE_ENCODERS, TINY_INIT_SEED, get_preset
from .shotlist import ModelSpec

RANDOM_ADAPTER_SEED = 1  # the tiny presets' random FaceID weights
FACEID = "faceid"
PLUSV2 = "faceid-plusv2"
# What the CLIP features of a face crop are (docs/identity.md): the image encoder's penultimate hidden
# states of the 224-px aligned crop as diffusers' CLIPImageProcessor prepares it, the kept selfies'
# features averaged with the embedding's quality weights. Part of every FaceID-Plus v2 key: changing the
# recipe changes them.
CLIP_FEATURES_RECIPE = "idcli-clip-features-v1"


@dataclass(frozen=True)
class ImageEncoderIdentity:
    """The CLIP image encoder FaceID-Plus v2 reads face crops with (a diffusers/transformers folder)."""

    source: str  # "builtin" (random weights written by idcli), "hub" or "local"
    id: str  # hub id or folder ("builtin:<preset>")
    subfolder: str
    revision: str | None
    content_hash: str | None  # builtin: descriptor hash; local: hash over the folder's files

    def key_material(self) -> dict[str, Any]:
        if self.source == "hub":
            return {"hub": {"id": self.id, "revision": self.revision, "subfolder": self.subfolder}}
        return {self.source: self.content_hash}


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
    # FaceID-Plus v2 only (FaceID adapters keep the key material and sidecar record they always had).
    variant: str = FACEID
    shortcut_scale: float = 1.0
    image_encoder: ImageEncoderIdentity | None = None

    @property
    def is_plus(self) -> bool:
        return self.variant == PLUSV2

    def key_material(self) -> dict[str, Any]:
        if self.source == "hub":
            material: dict[str, Any] = {"hub": {"id": self.id, "revision": self.revision,
                                                "weight_name": self.weight_name, "subfolder": self.subfolder}}
        else:
            material = {self.source: self.content_hash}
        if self.is_plus:
            assert self.image_encoder is not None
            material.update(variant=self.variant, shortcut_scale=self.shortcut_scale,
                            image_encoder=self.image_encoder.key_material(), clip_features=CLIP_FEATURES_RECIPE)
        return material

    def record(self) -> dict[str, Any]:
        record = asdict(self)
        if not self.is_plus:
            for name in ("variant", "shortcut_scale", "image_encoder"):
                record.pop(name)
        return record


def adapter_variant(spec: ModelSpec, random_weights: bool) -> str:
    """The variant a shot list asks for: ``model.adapter.variant``, else the preset's default.

    Real presets default to FaceID-Plus v2 (the better likeness, docs/identity.md), except when
    ``model.adapter`` names a file without a variant: that was always read as FaceID and still is. The
    random-weight presets default to FaceID, so their images stay as they were.
    """
    given = spec.adapter.variant if spec.adapter is not None else None
    if given is not None:
        return given
    if random_weights or (spec.adapter is not None and spec.adapter.id is not None):
        return FACEID
    return PLUSV2


def _file_hash(file: Path, hash_contents: bool) -> str | None:
    """sha256 of an adapter file, what its key names; None for validate (``hash_contents=False``), which reads none."""
    return sha256_file_cached(file) if hash_contents else None


def resolve_adapter(spec: ModelSpec, model: ModelIdentity, base_dir: Path, *,
                    hash_contents: bool = True) -> AdapterIdentity:
    """The identity adapter for ``model``: the shot list's ``model.adapter``, else the preset's default.
    ``hash_contents=False``: every check plan makes, no file hashed (``idcli validate``)."""
    variant = adapter_variant(spec, model.random_weights)
    if variant == PLUSV2:
        return resolve_plus_adapter(spec, model, base_dir, hash_contents=hash_contents)
    preset = get_preset(model.preset)
    if model.random_weights:
        # v2: the random adapter carries a LoRA in the published layout (applied per row)
        descriptor = tagged_hash("idcli-faceid-random-v2", {"unet": preset.components["unet"],
                                                            "init_seed": TINY_INIT_SEED, "seed": RANDOM_ADAPTER_SEED})
        # The file is named by its descriptor: a changed preset or drawing rule never loads an old file.
        weight = f"ip-adapter-faceid-random-{descriptor.rsplit(':', 1)[1][:16]}.safetensors"
        return AdapterIdentity("builtin", f"builtin:{preset.name}", weight, "", None,
                               descriptor, True, False)
    if spec.adapter is not None and spec.adapter.id is not None:
        assert spec.adapter.weight_name is not None
        source_id, weight, subfolder, revision = (spec.adapter.id, spec.adapter.weight_name, spec.adapter.subfolder,
                                                  spec.adapter.revision)
    else:
        assert preset.faceid is not None
        (source_id, weight), subfolder, revision = preset.faceid, "", None
        from .model_setup import converted_adapter

        converted = converted_adapter(source_id, weight)
        if converted is not None:
            # `idcli models fetch` converted the published pickle once: load that, keyed by its sha256.
            return AdapterIdentity("local", str(converted.parent.resolve()), converted.name, "", None,
                                   _file_hash(converted, hash_contents), False, False)
    local = local_path(source_id, base_dir)
    if local is not None and local.is_dir():
        file = local / subfolder / weight
        if not file.is_file():
            # Found at plan time, like a model folder without its files: no key built on a missing file.
            raise ModelUnavailableError(f"adapter folder '{local}' has no weight file '{Path(subfolder) / weight}'")
        refuse_unallowed_pickle(file, spec.allow_pickle)
        check_adapter_file(file, plus=False)  # its header: a file of the wrong kind is refused before any work
        check_adapter_fits(file, model)  # and one made for the other base model (an _sd15 file with SDXL)
        check_allowed_pickle(file, False, model, spec.allow_pickle)  # h94's .bin as users keep it: the same checks
        content = _file_hash(file, hash_contents)
        return AdapterIdentity("local", str(local.resolve()), weight, subfolder, None, content, False,
                               spec.allow_pickle)
    converted = _conversion_of_named(source_id, weight, subfolder, revision, spec.allow_pickle)
    if converted is not None:
        return AdapterIdentity("local", str(converted.parent.resolve()), converted.name, "", None,
                               _file_hash(converted, hash_contents), False, False)
    refuse_cached_hub_pickle("FaceID", source_id, weight, subfolder, spec.allow_pickle, revision)
    check_cached_hub_adapter(source_id, weight, subfolder, revision, plus=False, model=model,
                             allow_pickle=spec.allow_pickle)
    return AdapterIdentity("hub", source_id, weight, subfolder, revision or "main", None, False, spec.allow_pickle)


def refuse_unallowed_pickle(file: Path, allow_pickle: bool) -> None:
    """A local adapter file that is a pickle (h94's ``.bin`` as users keep it, in a ComfyUI ``models/ipadapter``
    folder or a clone of the repository), refused at plan time unless allowed. It was refused only when the render
    had encoded every selfie and loaded the base model, pointing at `idcli models fetch`, which converts only the
    hub's published files into IDCLI_HOME and never a file of the user's."""
    if allow_pickle or file.name.endswith(".safetensors"):
        return
    raise ModelUnavailableError(
        f"the adapter '{file}' is a pickle, not a .safetensors file, and pickles are loaded only when allowed. To "
        "fix: set model.allow_pickle: true to load it (read with torch.load(weights_only=True), which refuses "
        "anything but tensors), or point model.adapter.weight_name at a .safetensors copy of it")


def _conversion_of_named(source_id: str, weight: str, subfolder: str, revision: str | None,
                         allow_pickle: bool) -> Path | None:
    """The safetensors conversion `idcli models fetch` made of a pickle a shot list names by hub id (diffusers'
    own ``load_ip_adapter("h94/IP-Adapter-FaceID", weight_name="….bin")``), used where the pickle would be refused:
    without ``allow_pickle`` (with it, the hub file is loaded and keyed as before), at the branch fetch converted
    (no revision or ``main``), from the repository's top folder."""
    if allow_pickle or subfolder.strip("/") or revision not in (None, "main") or weight.endswith(".safetensors"):
        return None
    from .model_setup import converted_adapter

    return converted_adapter(source_id, weight)


# h94 publishes each FaceID adapter's LoRA alone too (``ip-adapter-faceid_sd15_lora.safetensors``, for ComfyUI and
# A1111); the adapter file carries the same LoRA, which idcli applies per row from there.
LORA_ALONE_SUFFIX = "_lora.safetensors"


def adapter_carrying_lora(file_name: str) -> str | None:
    """The adapter file that carries the LoRA h94 publishes alone as ``file_name``
    (``ip-adapter-faceid_sd15_lora.safetensors`` -> ``ip-adapter-faceid_sd15.bin``); None for any other name."""
    if not file_name.endswith(LORA_ALONE_SUFFIX):
        return None
    return file_name.removesuffix(LORA_ALONE_SUFFIX) + ".bin"


def fetch_command(source_id: str, weight_name: str) -> str | None:
    """The `idcli models fetch` command that gets a real preset's published adapter file; None for any other."""
    from .presets import PRESETS

    for name, preset in PRESETS.items():
        if preset.faceid == (source_id, weight_name):
            return f"`idcli models fetch {name} --variant faceid`"
        if preset.faceid_plusv2 == (source_id, weight_name):
            return f"`idcli models fetch {name}`"
    return None


def adapter_where(source: str, weight_name: str, subfolder: str) -> str:
    """How an error names an adapter file: ``'ip-adapter-faceid_sd15.bin' from 'h94/IP-Adapter-FaceID'``."""
    return f"'{weight_name}' from '{source}'" + (f" (subfolder '{subfolder}')" if subfolder else "")


def pickle_refusal(label: str, source: str, weight_name: str, subfolder: str) -> str:
    """Why a hub adapter file that is no ``.safetensors`` is not loaded without ``model.allow_pickle``: the render's
    words, which plan and validate say too when the Hugging Face cache holds the repository."""
    fetch = fetch_command(source, weight_name)  # fetch converts a preset's published pickle, no other file
    return (f"refusing to load the {label} adapter {adapter_where(source, weight_name, subfolder)}: it is not a "
            ".safetensors file, and pickle checkpoints (.bin, .pt, .ckpt) are loaded only when allowed — set "
            "allow_pickle (model.allow_pickle: true) to load it (read with torch.load(weights_only=True)), or "
            + (f"convert it to safetensors once with {fetch}" if fetch else "point model.adapter at a .safetensors "
               "copy of it"))


def refuse_cached_hub_pickle(label: str, source: str, weight_name: str, subfolder: str, allow_pickle: bool,
                             revision: str | None = None) -> None:
    """A hub adapter named as a pickle (``.bin``) without ``allow_pickle``, refused at plan time when the Hugging Face
    cache holds its repository at ``revision`` (None: main): the render refuses it by that name (after encoding every
    selfie and loading the base model), so nothing is gained by planning it. Not cached at that revision (another
    revision's snapshot does not count), it is planned by its hub id as before: an offline plan (a laptop planning
    for the farm) keeps working, and the render says how to get the file."""
    if allow_pickle or weight_name.endswith(".safetensors"):
        return
    from .model_setup import hub_repo_cached

    if hub_repo_cached(source, revision):
        raise ModelUnavailableError(pickle_refusal(label, source, weight_name, subfolder))


def check_cached_hub_adapter(source: str, weight_name: str, subfolder: str, revision: str | None, plus: bool,
                             model: ModelIdentity | None = None, allow_pickle: bool = False) -> None:
    """A hub adapter's ``.safetensors`` file already in the Hugging Face cache at ``revision`` (None: main), checked
    from its header as a local file is (adapter_layout.check_adapter_file): a wrong-kind or cut file was refused only
    by the render, after it had loaded the base model, while plan and validate passed it. Never downloads: a file not
    cached is planned by its hub id as before, and the render checks it once it has it. A pickle (``.bin``) is read
    only when allowed, as a local one is (adapter_pickle.py)."""
    if not weight_name.endswith(".safetensors") and not (allow_pickle and model is not None):
        return
    from .model_setup import cached_file

    file = cached_file(source, "/".join(p for p in (subfolder.strip("/"), weight_name) if p), None, revision)
    if file is not None:
        check_adapter_file(file, plus=plus)
        if model is not None:
            check_adapter_fits(file, model, "FaceID-Plus v2" if plus else "FaceID")
            check_allowed_pickle(file, plus, model, allow_pickle)


def adapter_lora_note(adapter: AdapterIdentity) -> str | None:
    """plan's and validate's note for an adapter file without its LoRA (adapter_layout.missing_lora_note): a local
    file, or a hub one already in the cache (never downloaded for it); idcli's random adapters carry one."""
    from .adapter_layout import missing_lora_note

    if adapter.source == "local":
        file: Path | None = Path(adapter.id) / adapter.subfolder / adapter.weight_name
    elif adapter.source == "hub":
        from .model_setup import cached_file

        name = "/".join(p for p in (adapter.subfolder.strip("/"), adapter.weight_name) if p)
        file = cached_file(adapter.id, name, None, None if adapter.revision == "main" else adapter.revision)
    else:
        return None
    return missing_lora_note(file) if file is not None else None


def adapter_name_note(adapter: AdapterIdentity) -> str | None:
    """plan's and validate's note for a FaceID-Plus adapter file named as v1, which renders as v2 (adapter_layout.
    plus_v1_note): the file's name is all that tells v1 from v2, so a local file, a hub one and a pickle alike."""
    from .adapter_layout import names_plus_v1, plus_v1_note

    if not adapter.is_plus or not names_plus_v1(adapter.weight_name):
        return None
    return plus_v1_note(adapter_where(adapter.id, adapter.weight_name, adapter.subfolder), adapter.shortcut_scale)


def not_cached_offline(source: str, weight_name: str, subfolder: str) -> str:
    """Why a hub adapter cannot be had offline, and the way forward (the render's words, and validate's)."""
    from huggingface_hub import constants

    file = f"{subfolder.strip('/')}/{weight_name}" if subfolder.strip("/") else weight_name
    fetch = fetch_command(source, weight_name)
    return (f"it is not in the Hugging Face cache ({constants.HF_HUB_CACHE}), and HF_HUB_OFFLINE=1 forbids "
            "downloading it. To fix: " + (f"{fetch} (it converts the pickle once), or " if fetch else "")
            + f"`hf download {source} {file}` on a machine with network access, then copy the cache here; or "
            "point model.adapter at a local folder holding the file")


def encoder_not_cached_offline(encoder_id: str, subfolder: str, preset: str | None) -> str:
    """Why a hub CLIP image encoder cannot be had offline, and the way forward: plan's and render's words, and
    validate's. `idcli models fetch PRESET` gets a real preset's own encoder; any other is named for `hf download`."""
    from huggingface_hub import constants

    from .presets import PRESETS

    sub = subfolder.strip("/")
    own = [name for name, known in PRESETS.items() if known.image_encoder == (encoder_id, subfolder)]
    if preset in own:
        get = f"`idcli models fetch {preset}`"
    elif own:  # no run's preset at hand (a library call): every preset that reads it
        get = " or ".join(f"`idcli models fetch {name}`" for name in own)
    else:
        get = f"`hf download {encoder_id}" + (f" --include '{sub}/*'`" if sub else "`")
    return (f"the CLIP image encoder '{encoder_id}' ({sub or 'its top folder'}) that FaceID-Plus v2 reads face crops "
            f"with is not in the Hugging Face cache ({constants.HF_HUB_CACHE}), and HF_HUB_OFFLINE=1 forbids "
            f"downloading it. To fix: {get} on a machine with network access, then copy the cache here; or point "
            "model.adapter.image_encoder at a local folder")


def random_plus_descriptor(preset_name: str) -> str:
    """The content hash of a random-weight preset's FaceID-Plus v2 adapter and image encoder."""
    preset = get_preset(preset_name)
    return tagged_hash("idcli-faceid-plusv2-random-v1", {
        "unet": preset.components["unet"], "init_seed": TINY_INIT_SEED, "seed": RANDOM_ADAPTER_SEED,
        "image_encoder": RANDOM_IMAGE_ENCODERS[preset.name]})


def encoder_folder_hash(folder: Path, allow_pickle: bool, hash_contents: bool = True,
                        preset: str | None = None) -> str | None:
    """A local CLIP image encoder folder by content: its config and weights (None, checked only, for validate).
    ``preset``: the run's, named in the fetch command a folder without its config is told to run."""
    if not (folder / "config.json").is_file():
        raise ModelUnavailableError(encoder_without_config(folder, preset))
    if not hash_contents:
        return None
    suffixes = {".json", ".safetensors"} | ({".bin"} if allow_pickle else set())
    files = {str(p.relative_to(folder)): sha256_file_cached(p) for p in sorted(folder.iterdir())
             if p.is_file() and p.suffix in suffixes}
    return tagged_hash("idcli-image-encoder-files-v1", files)


def encoder_without_config(folder: Path, preset: str | None) -> str:
    """Why a folder given as the CLIP image encoder cannot be loaded without its config.json, and what to do: for a
    clone of h94/IP-Adapter, the subfolder; for ComfyUI's ``models/clip_vision`` (whose
    ``CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors`` is h94's encoder weights renamed), the folder to make of it."""
    from .presets import PRESETS

    if (folder / "models" / "image_encoder" / "config.json").is_file():
        inside = ("; it holds the encoder in models/image_encoder: set model.adapter.image_encoder_subfolder: "
                  "models/image_encoder")
    else:
        weights = sorted(p.name for p in folder.glob("*.safetensors") if p.is_file())[:3]
        inside = (f"; it holds {', '.join(weights)} without the config that says what it is. ComfyUI's "
                  "clip_vision/CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors is h94/IP-Adapter's "
                  "models/image_encoder/model.safetensors renamed: put it in a folder of its own as model.safetensors "
                  "beside that folder's config.json (hf download h94/IP-Adapter models/image_encoder/config.json), "
                  "and point model.adapter.image_encoder at that folder" if weights else "")
    fetch = (f"`idcli models fetch {preset}`" if preset in PRESETS and PRESETS[preset].image_encoder is not None
             else "`idcli models fetch sd15` (or sdxl)")
    return (f"the CLIP image encoder folder '{folder}' has no config.json{inside}. FaceID-Plus v2 needs the CLIP ViT-H "
            f"image encoder (h94/IP-Adapter, models/image_encoder): {fetch} gets it into the Hugging Face cache, where "
            "the preset finds it without model.adapter.image_encoder; or point model.adapter.image_encoder at a "
            "complete folder")


def resolve_plus_adapter(spec: ModelSpec, model: ModelIdentity, base_dir: Path, *,
                         hash_contents: bool = True) -> AdapterIdentity:
    """The FaceID-Plus v2 adapter and its CLIP image encoder: random ones for random-weight presets; for
    real presets ``model.adapter``'s file and encoder, else the preset's (a converted pickle preferred)."""
    preset = get_preset(model.preset)
    shortcut = float(spec.adapter.shortcut_scale) if spec.adapter is not None else 1.0
    if model.random_weights:
        descriptor = random_plus_descriptor(preset.name)
        short = descriptor.rsplit(":", 1)[1][:16]
        encoder = ImageEncoderIdentity("builtin", f"builtin:{preset.name}", f"image_encoder-{short}", None, descriptor)
        weight = f"ip-adapter-faceid-plusv2-random-{short}.safetensors"
        return AdapterIdentity("builtin", f"builtin:{preset.name}", weight, "", None, descriptor, True, False,
                               PLUSV2, shortcut, encoder)
    allow_pickle = spec.allow_pickle
    given = spec.adapter
    if given is not None and given.image_encoder is not None:
        encoder_id, encoder_sub = given.image_encoder, given.image_encoder_subfolder
    else:
        assert preset.image_encoder is not None
        encoder_id, encoder_sub = preset.image_encoder
        from .model_setup import image_encoder_folder

        fetched = image_encoder_folder(preset)  # `idcli models fetch` put it in the hub cache: keyed by content
        if fetched is not None:
            encoder_id, encoder_sub = str(fetched), ""
    local_encoder = local_path(encoder_id, base_dir)
    if local_encoder is not None and local_encoder.is_dir():
        folder = (local_encoder / encoder_sub).resolve()
        encoder = ImageEncoderIdentity("local", str(folder), "", None,
                                       encoder_folder_hash(folder, allow_pickle, hash_contents, model.preset))
    else:
        encoder = ImageEncoderIdentity("hub", encoder_id, encoder_sub, "main", None)
    if given is not None and given.id is not None:
        assert given.weight_name is not None
        source_id, weight, subfolder, revision = given.id, given.weight_name, given.subfolder, given.revision
    else:
        assert preset.faceid_plusv2 is not None
        (source_id, weight), subfolder, revision = preset.faceid_plusv2, "", None
        from .model_setup import converted_adapter

        converted = converted_adapter(source_id, weight)
        if converted is not None:
            return AdapterIdentity("local", str(converted.parent.resolve()), converted.name, "", None,
                                   _file_hash(converted, hash_contents), False, False, PLUSV2, shortcut, encoder)
    local = local_path(source_id, base_dir)
    if local is not None and local.is_dir():
        file = local / subfolder / weight
        if not file.is_file():
            raise ModelUnavailableError(f"adapter folder '{local}' has no weight file '{Path(subfolder) / weight}'")
        refuse_unallowed_pickle(file, allow_pickle)
        check_adapter_file(file, plus=True)
        check_adapter_fits(file, model, "FaceID-Plus v2")
        check_allowed_pickle(file, True, model, allow_pickle)
        return AdapterIdentity("local", str(local.resolve()), weight, subfolder, None, _file_hash(file, hash_contents),
                               False, allow_pickle, PLUSV2, shortcut, encoder)
    converted = _conversion_of_named(source_id, weight, subfolder, revision, allow_pickle)
    if converted is not None:
        return AdapterIdentity("local", str(converted.parent.resolve()), converted.name, "", None,
                               _file_hash(converted, hash_contents), False, False, PLUSV2, shortcut, encoder)
    refuse_cached_hub_pickle("FaceID-Plus v2", source_id, weight, subfolder, allow_pickle, revision)
    check_cached_hub_adapter(source_id, weight, subfolder, revision, plus=True, model=model,
                             allow_pickle=allow_pickle)
    return AdapterIdentity("hub", source_id, weight, subfolder, revision or "main", None, False, allow_pickle,
                           PLUSV2, shortcut, encoder)


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
