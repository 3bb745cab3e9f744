"""What ``idcli reproduce`` re-renders from: each input a record names (the model, an identity from its pack or
selfies, the face models, the adapter and its image encoder, a plate), found and checked against its recorded hash,
and the render request the record describes. A missing or changed input is a ``ReproduceError`` naming it (exit 2).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from .hashing import CHUNK
from .option_words import Option

T = TypeVar("T")  # a recorded input as read (a selfie, a pack path, a plate)


# -- inputs, each checked against its hash ------------------------------------------------------------------

def resolve_recorded_model(record: dict[str, Any]) -> Any:
    from .models import resolve_model
    from .reproduce import ReproduceError  # defined there, where callers catch it
    from .shotlist import ModelSpec

    m = record.get("model") or {}
    try:
        spec = ModelSpec(preset=m.get("preset"), id=m.get("id") if m.get("source") != "builtin" else None,
                         revision=m.get("revision") if m.get("source") == "hub" else None,
                         allow_pickle=bool(m.get("allow_pickle", False)))
    except ValueError:
        raise ReproduceError(f"the record's model {m.get('preset')!r} is not a preset this idcli knows") from None
    if m.get("source") == "local" and not Path(str(m.get("id"))).is_dir():
        raise ReproduceError(f"model folder {m.get('id')} is missing", file=str(m.get("id")))
    model = resolve_model(spec, Path("/"), str(m.get("dtype")))
    if m.get("source") != "hub" and model.content_hash != m.get("hash"):
        raise ReproduceError(f"model {m.get('id') or m.get('preset')} changed since the render (content hash "
                             f"{m.get('hash')}, now {model.content_hash})")
    return model


def resolve_recorded_identity(character: dict[str, Any], strength: float, preset: str, face_models: str | None,
                              notes: list[str], shotlist_dirs: list[Path] | None = None) -> Any:
    """The identity a record's conditioning character was rendered with, each input checked
    (``shotlist_dirs``: where a selfie's recorded ``path`` may be relative to; recorded_paths.py)."""
    from .identity.pack import PackError, read_pack
    from .identity.resolve import identity_from_pack, identity_from_selfies, identity_key, read_cached_pack
    from .reproduce import ReproduceError  # defined there, where callers catch it

    name = character.get("name", "?")
    if character.get("source") == "pack":
        identity = identity_from_pack(name, strength, read_pack(_recorded_pack(character, name, shotlist_dirs or [])),
                                      "pack")
    else:
        files = character.get("selfie_files")
        if not files:
            # Older records name no selfie files: only the cached pack they were rendered from can serve.
            path = Path(str(character.get("pack_path")))
            try:
                identity = identity_from_pack(name, strength, read_pack(path), "selfies")
            except PackError:
                raise ReproduceError(f"'{name}': the record names no selfie files and its cached identity "
                                     f"{path} is gone; re-render it from its shot list instead") from None
        else:
            selfies = [_recorded_selfie(item, name, shotlist_dirs or []) for item in files]
            recorded_models = (character.get("face_models") or {}).get("hash", "")
            key = identity_key([s.sha256 for s in selfies], recorded_models)
            if character.get("identity_key") and key != character["identity_key"]:
                notes.append(f"'{name}': this idcli keys the identity differently (encoder or aggregation settings "
                             "changed); it is encoded again")
            pack = read_cached_pack(key)
            if pack is not None:
                identity = identity_from_pack(name, strength, pack, "selfies", key,
                                      tuple((str(s.path), s.sha256) for s in selfies))
            else:
                models = _recorded_face_models(character, preset, face_models)
                identity = identity_from_selfies(name, strength, selfies, models)
                notes.append(f"'{name}': not in the identity cache; encoded again from its selfies")
    if identity.embedding_sha256 != character.get("embedding_sha256"):
        notes.append(f"'{name}': the identity's embedding differs from the recorded one (encoded on another "
                     "machine or ONNX Runtime build?), so pixels may differ")
    return identity


def _recorded_input(what: str, shown: str, owner: str, given: str, abs_path: Any, sha256: Any, dirs: list[Path],
                    read: Callable[[Path], T], digest: Callable[[T], str]) -> T:
    """An input a record names (a selfie, an identity pack, a plate), read from the first place it is found
    with its recorded sha256 (recorded_paths.candidates: ``abs_path``, ``given`` beside the shot list, ``given``).

    A project moved elsewhere may still find an edited copy at its old absolute path and the right one beside
    its shot list, so every place is tried. Missing everywhere: an error naming where it was looked for;
    only other content: an error with both sha256s.
    """
    from .recorded_paths import candidates
    from .reproduce import ReproduceError  # defined there, where callers catch it

    places = candidates(given, abs_path if isinstance(abs_path, str) else None, dirs)
    changed: tuple[Path, str] | None = None
    for place in places:
        if not place.is_file():
            continue
        value = read(place)
        now = digest(value)
        if now == sha256:
            return value
        changed = changed or (place, now)
    if changed is None:
        raise ReproduceError(f"{what} {shown}{owner} is missing (looked for {', '.join(str(p) for p in places)}); "
                             f"put the {what} the image was made from back there", file=given)
    raise ReproduceError(f"{what} {changed[0]}{owner} changed since the render (sha256 recorded {sha256}, now "
                         f"{changed[1]})", file=changed[0])


def _recorded_file_sha256(path: Path) -> str:
    """sha256 of a file a record names, read no further than the size the file system gives it: a tampered record
    naming /proc/self/pagemap (size 0, an entry for each page of the address space to read) kept reproduce hashing
    until killed. A file that is not a regular one (a FIFO, a device) hashes as nothing, so it reads as changed."""
    from .safeio import NotRegularFile, open_regular

    digest = hashlib.sha256()
    try:
        fd = open_regular(path)
    except NotRegularFile:
        return digest.hexdigest()
    try:
        left = os.fstat(fd).st_size
        while left > 0 and (chunk := os.read(fd, min(CHUNK, left))):
            digest.update(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    return digest.hexdigest()


def _recorded_pack(character: dict[str, Any], name: str, shotlist_dirs: list[Path]) -> Path:
    """A pack character's pack: at ``pack_path`` (as resolved), else ``pack_file`` beside the shot list (a moved
    project; older sidecars have no ``pack_file``), the first with the recorded sha256."""
    recorded = str(character.get("pack_path"))
    given = found if isinstance(found := character.get("pack_file"), str) else recorded
    return _recorded_input("identity pack", recorded, f" of '{name}'", given, recorded, character.get("pack_sha256"),
                           shotlist_dirs, lambda place: place, _recorded_file_sha256)


def _recorded_selfie(item: dict[str, Any], name: str, shotlist_dirs: list[Path]) -> Any:
    """A recorded selfie: ``abs_path``, then ``path`` beside the shot list (a moved project), then ``path``
    (older sidecars: absolute)."""
    from .identity.encode import SelfieFile

    given = str(item.get("path"))
    return _recorded_input("selfie", given, f" of '{name}'", given, item.get("abs_path"), item.get("sha256"),
                           shotlist_dirs, SelfieFile.read, lambda selfie: selfie.sha256)


def _recorded_face_models(character: dict[str, Any], preset: str, option: str | None) -> Any:
    from .errors import ModelUnavailableError
    from .identity.faces import resolve_face_models
    from .identity.resolve import face_models_for
    from .reproduce import ReproduceError  # defined there, where callers catch it

    recorded = character.get("face_models") or {}
    candidates: list[Any] = []
    for choose in (lambda: resolve_face_models(option) if option else None,
                   lambda: resolve_face_models(recorded["folder"]) if recorded.get("folder") else None,
                   lambda: face_models_for(preset, None)):
        try:
            found = choose()
        except ModelUnavailableError:
            found = None
        if found is not None:
            candidates.append(found)
            if found.hash == recorded.get("hash"):
                return found
    where = ", ".join(str(c.folder) for c in candidates) or "none found"
    raise ReproduceError(f"'{character.get('name')}': the face models the identity was encoded with "
                         f"({recorded.get('hash')}, in {recorded.get('folder')}) are not available ({where}); "
                         "pass ", Option("face_models", "DIR"), field="face_models")


def recorded_adapter(character: dict[str, Any], model: Any) -> Any:
    from .adapters import AdapterIdentity, ImageEncoderIdentity, resolve_adapter
    from .reproduce import ReproduceError  # defined there, where callers catch it
    from .shotlist import AdapterSpec, ModelSpec

    a = dict(character.get("adapter") or {})
    try:
        plus_only = {"variant", "shortcut_scale", "image_encoder"}  # absent from FaceID records: the defaults
        # Any: the record's values as they are; a missing or wrong one fails in AdapterIdentity (TypeError below).
        values: dict[str, Any] = {f.name: a.get(f.name) for f in fields(AdapterIdentity)
                                  if f.name not in plus_only or f.name in a}
        if a.get("image_encoder") is not None:  # FaceID-Plus v2 (docs/identity.md)
            values["image_encoder"] = ImageEncoderIdentity(**a["image_encoder"])
        adapter = AdapterIdentity(**values)
    except TypeError:
        raise ReproduceError("the record's adapter is incomplete") from None
    if adapter.is_plus:
        _check_recorded_encoder(adapter)
    if adapter.source == "builtin":
        spec = ModelSpec(preset=model.preset, adapter=AdapterSpec(variant=adapter.variant,
                                                                  shortcut_scale=adapter.shortcut_scale)
                         if adapter.is_plus else None)
        now = resolve_adapter(spec, model, Path("/"))
        if now.content_hash != adapter.content_hash:
            raise ReproduceError(f"the built-in adapter changed since the render ({adapter.content_hash}, now "
                                 f"{now.content_hash})")
        return now
    if adapter.source == "local":
        file = Path(adapter.id) / adapter.subfolder / adapter.weight_name
        if not file.is_file():
            raise ReproduceError(f"adapter weights {file} are missing", file=file)
        if _recorded_file_sha256(file) != adapter.content_hash:
            raise ReproduceError(f"adapter weights {file} changed since the render", file=file)
    return adapter


def _check_recorded_encoder(adapter: Any) -> None:
    """A local CLIP image encoder folder must still hold what the render read (a builtin one is checked with
    its adapter's descriptor; a hub one is what its revision resolves to, as for the adapter)."""
    from .adapters import encoder_folder_hash
    from .reproduce import ReproduceError  # defined there, where callers catch it

    encoder = adapter.image_encoder
    if encoder.source == "local":
        folder = Path(encoder.id)
        if not (folder / "config.json").is_file():
            raise ReproduceError(f"the CLIP image encoder {folder} is missing", file=folder)
        if encoder_folder_hash(folder, adapter.allow_pickle) != encoder.content_hash:
            raise ReproduceError(f"the CLIP image encoder {folder} changed since the render", file=folder)


def with_recorded_clip(identity: Any, character: dict[str, Any], adapter: Any, encoder: Any,
                       notes: list[str]) -> Any:
    """FaceID-Plus v2: the identity with its CLIP features (from the identity cache, else recomputed from
    the pack's crops), checked against the sha256 the sidecar recorded."""
    from .identity.clip_features import with_clip_features

    identity = with_clip_features(identity, adapter, encoder)
    recorded = (character.get("clip_features") or {}).get("sha256")
    if recorded and identity.clip_record["sha256"] != recorded:
        notes.append(f"{identity.name}: the CLIP face features differ from the recorded ones ({recorded[:12]}…, now "
                     f"{identity.clip_record['sha256'][:12]}…): another image encoder build or CPU")
    return identity


def request_from_record(record: dict[str, Any], identity: Any, cast: dict[str, Any] | None = None) -> Any:
    """The engine's request, exactly as the planner made it, from the record's fields.

    ``cast`` (several characters): each conditioning character's resolved identity by name, for the
    identity lines recorded under ``method.characters``.
    """
    from .method import PARAM_NAMES, FusionParams
    from .render_request import IdentityLine, RenderRequest

    method = record.get("method") or {"name": "text"}
    sampler, size = record["sampler"], record["size"]
    fusion = None
    if method.get("name") != "text":
        params = {k: v for k, v in (method.get("params") or {}).items() if k in PARAM_NAMES}
        fusion = FusionParams(**params)
    conditioned = identity is not None and fusion is not None
    return RenderRequest(
        prompt=record["prompt"], negative_prompt=record.get("negative_prompt") or "", seed=int(record["seed"]),
        width=int(size["width"]), height=int(size["height"]), steps=int(sampler["steps"]),
        guidance=float(sampler["guidance"]), sampler=sampler["name"],
        identity_embedding=identity.embedding if conditioned else None,
        identity_strength=float((method.get("identity") or {}).get("strength", 0.0)) if conditioned else 0.0,
        method=method.get("name", "text"), fusion=fusion,
        semantic_prompt=method.get("semantic_prompt"),
        subject_spans=tuple(tuple(span) for span in method.get("subject_spans") or ()),
        identity_references=identity.references if conditioned else None,
        identity_clip=identity.clip if conditioned else None,
        lines=tuple(IdentityLine(line["name"], line["prompt"], float(line["strength"]),
                                 tuple(tuple(span) for span in line["subject_spans"]),
                                 cast[line["name"]].embedding, cast[line["name"]].references,
                                 cast[line["name"]].clip)
                    for line in method.get("characters") or ()) if conditioned and cast else (),
        subject=identity.name if conditioned else "")


def _recorded_box(values: Any) -> tuple[int, int, int, int]:
    """x, y, w, h from a record; ValueError unless exactly four numbers (three reached the engine's unpacking)."""
    x, y, w, h = (int(v) for v in values)
    return x, y, w, h


def recorded_plate(record: dict[str, Any], out_dir: Path | None) -> Any:
    """A plate job's plate (docs/plates.md) as its record names it, checked by the file's sha256.

    Looked for at the path recorded when it was planned (``abs_path``), then at ``path`` beside the shot
    list the output folder's last run read, then from here. Missing: an error naming where it was looked
    for; another file there (edited since): an error with both sha256s.
    """
    from .plate_files import PlateError, read_plate
    from .render_request import PlateFaceRequest, PlateRequest
    from .reproduce import ReproduceError  # defined there, where callers catch it

    block = record["plate"]
    try:
        given, sha256 = str(block["path"]), str(block["sha256"])
        faces = tuple(PlateFaceRequest(str(f["character"]), _recorded_box(f["box"]), _recorded_box(f["crop_box"]))
                      for f in block["faces"])
        strength = float(block["faces"][0]["strength"])
    except (KeyError, TypeError, ValueError, IndexError):
        raise ReproduceError("the record's plate block is incomplete") from None
    from .recorded_paths import shotlist_dirs

    def read(place: Path) -> Any:
        try:
            return read_plate(place)
        except PlateError as exc:
            raise ReproduceError(f"plate {exc}", file=exc.file) from None

    plate = _recorded_input("plate", f"'{given}'", "", given, block.get("abs_path"), sha256, shotlist_dirs(out_dir),
                            read, lambda plate: plate.sha256)
    # The plate's colour profile only where the take's PNG carried it: a record from before images carried it
    # (2026-12-02) names none, and its image re-rendered with the profile would no longer be byte-identical.
    profile = plate.icc_profile if block.get("icc_profile_sha256") else None
    return PlateRequest(plate.pixels, sha256, faces, strength, profile)
