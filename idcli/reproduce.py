"""Re-rendering one committed image from its record alone (``idcli reproduce``).

The record is the image's sidecar (or, without one, the PNG's own ``idcli`` chunk). Everything that
can change a pixel is taken from it and checked before the engine runs: the model by its content
hash, the identity by its pack's or selfies' sha256 (through the identity cache, or encoded again
from the recorded selfie paths), the adapter by its weight hash. A missing or changed input is an
``InputError`` naming it (exit 2); a record from an engine version this idcli no longer makes is
refused. The re-render is encoded with the recorded record, so on the same machine its PNG bytes
are the committed ones: ``identical`` means equal sha256 (for a signed image, the sha256 before its
C2PA manifest, which the sidecar records). Otherwise the report gives the largest pixel difference
and what differs between the recorded environment and this one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from . import safeio
from .errors import EXIT_CHECK_FAILED, EXIT_OK, InputError
from .hashing import CHUNK, sha256_bytes
from .option_words import Option, words
from .shared_files import make_folders
from .store import MAX_IMAGE_BYTES, MAX_SIDECAR_BYTES
from .versions import ENGINE_ALGORITHM, SIDECAR_SCHEMA, SUPPORTED_ENGINES, TOOL_VERSION

T = TypeVar("T")  # a recorded input as read (a selfie, a pack path, a plate)


class ReproduceError(InputError):
    """A record that cannot be re-rendered here (exit 2): missing or changed inputs, unsupported engine."""


@dataclass
class ReproduceReport:
    image: str
    sidecar: str | None
    status: str  # "identical", "pixels-identical" (PNG bytes differ, pixels do not) or "different"
    recorded_sha256: str | None
    sha256: str
    max_pixel_difference: int | None = None  # 0..255 over every channel; None without the committed image
    differing_pixels: int | None = None
    environment: list[dict[str, Any]] = field(default_factory=list)  # what differs: name, recorded, now
    notes: list[str] = field(default_factory=list)
    output: str | None = None
    # Images (a plate job's crops) per VAE decode call of the re-render (None: its engine did not say), and the
    # record's ``executor.decode_chunk`` it was asked to decode with (None: an older record, decoded as the device
    # allows).
    decode_chunk: int | None = None
    recorded_decode_chunk: int | None = None
    # The image's sha256 as it is now (before its manifest, when signed); None when it is gone. It differs from
    # recorded_sha256 for an image changed after its commit, compared as it is now.
    image_sha256: str | None = None
    # Where recorded_sha256 comes from: "record" (the sidecar's), or "image" when the record holds none to compare
    # with and it is the image's own as it is now (a take alone, whose own chunk cannot hold its sha256; a signature
    # the record does not describe): "recorded" would claim a record of it.
    recorded_sha256_from: Literal["record", "image"] = "record"

    @property
    def identical(self) -> bool:
        return self.status == "identical"

    @property
    def exit_code(self) -> int:
        """0 when identical, EXIT_CHECK_FAILED otherwise (docs/file-formats.md, exit codes)."""
        return EXIT_OK if self.identical else EXIT_CHECK_FAILED

    def as_dict(self) -> dict[str, Any]:
        """The ``idcli reproduce --json`` document (docs/provenance.md; the contract of file-formats.md)."""
        error: dict[str, Any] | None = None
        if not self.identical:
            where = (f"largest pixel difference {self.max_pixel_difference}/255 over {self.differing_pixels} pixels"
                     if self.max_pixel_difference is not None else "compared by hash only")
            error = {"type": "NotReproduced", "message": f"{self.image}: {self.status} ({where})",
                     "file": self.image, "line": None, "column": None, "field": None, "hint": None, "problems": []}
        return {"ok": self.identical, "exit_code": self.exit_code, "error": error, **asdict(self),
                "identical": self.identical}


# -- reading the record -------------------------------------------------------------------------------------

def locate(target: str | Path) -> tuple[Path, Path | None, dict[str, Any]]:
    """(image path, sidecar path or None, record) for an image or a sidecar path."""
    from .provenance import read_png_record

    target = Path(target)
    if target.suffix.lower() == ".json":
        sidecar_path: Path | None = target
        record = _read_json(target)
        image_record = record.get("image")
        if not isinstance(image_record, dict) or not image_record.get("path"):
            raise ReproduceError(f"{target}: not an idcli sidecar (no image path)", file=target)
        image = target.parent / Path(str(image_record["path"])).name
        if not image.is_file() and target.with_suffix(".png").is_file():  # a superseded take: SHOT_tN.KEY.png
            image = target.with_suffix(".png")
        return image, sidecar_path, record
    sidecar_path = target.with_suffix(".json")
    if sidecar_path.is_file():
        return target, sidecar_path, _read_json(sidecar_path)
    try:
        data = safeio.read_regular(target, MAX_IMAGE_BYTES)
    except safeio.NotRegularFile as exc:
        raise ReproduceError(f"{target}: {'no such file' if exc.kind == 'missing' else 'cannot read it'}",
                             file=target) from None
    embedded = read_png_record(data)
    if embedded is None:
        raise ReproduceError(f"{target}: no sidecar beside it and no idcli record inside it; not an idcli image",
                             file=target)
    return target, None, embedded


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(safeio.read_regular(path, MAX_SIDECAR_BYTES))
    except safeio.NotRegularFile as exc:
        raise ReproduceError(f"{path}: {'no such file' if exc.kind == 'missing' else 'cannot read it'}",
                             file=path) from None
    except (ValueError, RecursionError):
        raise ReproduceError(f"{path}: not valid JSON", file=path) from None
    if not isinstance(data, dict) or "job_key" not in data:
        raise ReproduceError(f"{path}: not an idcli sidecar (no job_key)", file=path)
    return data


def check_supported(record: dict[str, Any], notes: list[str], source: Path | None = None) -> None:
    """Refuse a record this idcli cannot re-render: a newer sidecar schema or an unsupported engine (``source``:
    the sidecar or image the record was read from, named in the error)."""
    tool = record.get("tool")
    made_by = tool.get("version", "?") if isinstance(tool, dict) else "?"
    where = f"{source}: " if source is not None else ""
    schema = record.get("schema")
    if not isinstance(schema, int) or schema > SIDECAR_SCHEMA:
        raise ReproduceError(f"{where}the record has sidecar schema {schema!r}, made by idcli {made_by}; this idcli "
                             f"{TOOL_VERSION} reads schema {SIDECAR_SCHEMA} and earlier: upgrade idcli", file=source)
    engine = record.get("engine")
    if engine is None:
        engine = ENGINE_ALGORITHM
        notes.append(f"the record predates engine versions in sidecars; assumed {ENGINE_ALGORITHM}")
    if engine not in SUPPORTED_ENGINES:
        supported = ", ".join(SUPPORTED_ENGINES)
        # The same version string spans engine changes during development: sending the artist to it helps nobody.
        way = (f"an earlier build of idcli {made_by} made it, or the record was edited" if made_by == TOOL_VERSION
               else f"use idcli {made_by} to reproduce it")
        raise ReproduceError(f"{where}the image was made by engine {engine} (idcli {made_by}); this idcli "
                             f"{'' if made_by == TOOL_VERSION else TOOL_VERSION + ' '}re-renders {supported} only: "
                             f"{way}", file=source)


# -- inputs, each checked against its hash ------------------------------------------------------------------

def resolve_recorded_model(record: dict[str, Any]) -> Any:
    from .models import resolve_model
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


# -- comparing ---------------------------------------------------------------------------------------------

def environment_differences(record: dict[str, Any], device: str, dtype: str,
                            threads: int | None = None) -> list[dict[str, Any]]:
    """What of the recorded environment differs now: device, dtype, library versions, idcli's version; on a CPU the
    torch threads (``threads``: the count the re-render ran with, by default this thread's now)."""
    from .provenance import software_versions

    m = record.get("model") or {}
    pairs: list[tuple[str, Any, Any]] = [("device", m.get("device"), device), ("dtype", m.get("dtype"), dtype),
             ("idcli", (record.get("tool") or {}).get("version"), TOOL_VERSION)]
    recorded = record.get("software") or {}
    now = software_versions()
    pairs += [(name, recorded.get(name), now.get(name)) for name in sorted(set(recorded) | set(now))]
    recorded_threads = (record.get("executor") or {}).get("threads")
    if recorded_threads is not None and device == "cpu":  # a CPU's float32 sums round by how they are split
        import torch

        pairs.append(("torch threads", recorded_threads, threads if threads is not None else torch.get_num_threads()))
    return [{"name": n, "recorded": r, "now": v} for n, r, v in pairs if r != v]


def recorded_device(record: dict[str, Any], device: str, notes: list[str]) -> str:
    """The device to re-render on: the one asked for, except that ``auto`` (the default) keeps a CPU-recorded image
    on the CPU where it would pick a GPU, saying so in a note. A GPU's kernels sum in another order than a CPU's, so
    a CPU image re-rendered on the GPU could never be identical, and ``reproduce`` said only that it differed."""
    if device != "auto" or (record.get("model") or {}).get("device") != "cpu":
        return device
    import torch

    if torch.cuda.is_available():
        notes.append(words(("rendered on the CPU: re-rendered on the CPU too, not on this machine's GPU (",
                            Option("device", "auto"), " keeps the recorded device; ", Option("device", "cuda"),
                            " re-renders on the GPU, whose pixels differ)")))
        return "cpu"
    return device


def other_device_note(record: dict[str, Any], device: str) -> str | None:
    """For an image that did not reproduce on another device than the recorded one: that the devices' arithmetic
    differs, and how to ask for the recorded device. None on the recorded device (or one the record does not say)."""
    recorded = (record.get("model") or {}).get("device")
    if not isinstance(recorded, str) or _first_gpu(recorded) == _first_gpu(device) \
            or not recorded.startswith(("cpu", "cuda")):
        return None
    where = "" if recorded == "cpu" else " on a machine with a GPU"
    return words((f"rendered on {recorded}, re-rendered on {device}: the devices' float arithmetic differs, so "
                  "8-bit values may; ", Option("device", recorded), f" re-renders on the recorded device{where}"))


def _first_gpu(device: str) -> str:
    """``cuda`` as ``cuda:0``, the device torch's ``cuda`` is in idcli's process (the first visible one): a record's
    ``cuda`` re-rendered with ``--device cuda:0`` is on the same device, whose arithmetic cannot differ."""
    return "cuda:0" if device == "cuda" else device


@contextlib.contextmanager
def recorded_threads(record: dict[str, Any], device: str, notes: list[str]) -> Iterator[int | None]:
    """Torch's CPU threads set to the count the record's render ran with (``executor.threads``) for the re-render,
    and put back after it, also when it fails; yields the count it ran with (None: the host's, untouched).

    float32 sums split between threads round differently, so a few 8-bit values move by one between thread counts:
    a Ray CPU worker renders with one thread (Ray's ``OMP_NUM_THREADS``) where this process may have one per core,
    and only the recorded count makes its bytes again (docs/scale-out.md). On another device the count does not
    apply: a note says so. The count is torch's for this thread (and for threads torch starts meanwhile), so a
    Python caller's own count is its own again when ``reproduce`` returns.
    """
    threads = (record.get("executor") or {}).get("threads")
    if threads is None:  # a GPU render, or a sidecar from before the count was recorded
        yield None
        return
    if device != "cpu":
        notes.append(f"rendered on a CPU with {threads} torch thread{'s' if threads != 1 else ''}; re-rendered on "
                     f"{device}, where that count does not apply")
        yield None
        return
    import torch

    before = torch.get_num_threads()
    try:  # the change inside the guarded region: a Ctrl-C just after it still puts the caller's count back
        torch.set_num_threads(threads)
        yield threads
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def recorded_decode_chunk(engine: Any, chunk: int | None, device: str, image: Path) -> Iterator[bool]:
    """The engine's VAE decoding ``chunk`` images per call (the record's ``executor.decode_chunk``) while the block
    runs, as the render did: on a GPU a render's chunk follows the free memory, and another chunk can move a decoded
    value by one 8-bit level (docs/provenance.md). None (an older record): decoded as the device allows, as before.
    Yields whether the chunk was set (not on a caller's engine, ``engine_factory``, that has no such setting).

    Out of memory at the recorded chunk is a ReproduceError saying so and what to do: decoding in a smaller chunk
    and then calling the image identical, or not, would be a verdict on another decode than the render's."""
    from .engine.memory import DecodeChunkOutOfMemory

    fixed = getattr(engine, "fixed_decode_chunk", None)
    if chunk is None or fixed is None:
        yield False
        return
    try:
        with fixed(chunk):
            yield True
    except DecodeChunkOutOfMemory as exc:
        raise ReproduceError(
            f"{image}: out of memory on {device} decoding {exc.chunk} image{'s' if exc.chunk != 1 else ''} per VAE "
            f"call, as the render did (its sidecar's executor.decode_chunk is {chunk}); another chunk can move a "
            "pixel by one 8-bit level, so reproduce does not decode in a smaller one. Free the device's memory "
            "(another process may hold some: nvidia-smi lists them) and run it again, or reproduce it on a "
            "machine with more", file=image) from None


def decode_chunk_note(recorded: int | None, used: int | None, chunk_set: bool = True) -> str | None:
    """Why a re-render that is not identical may have decoded otherwise than its render (None: nothing to say;
    ``chunk_set``: whether the engine took the recorded chunk)."""
    if recorded is not None and not chunk_set:
        return (f"the record's VAE decode chunk ({recorded} per call) could not be set on this engine (an "
                "engine_factory's): it decoded as it chose, and another chunk can move a pixel by one 8-bit level")
    if recorded is None and used is not None:
        return (f"the record does not say how many images the VAE decoded per call (a take from before "
                f"2026-12-02): decoded {used} per call, as this device allows; another chunk than the render's "
                "can move a pixel by one 8-bit level")
    if recorded is not None and used is not None and used != recorded:
        return (f"decoded {used} image{'s' if used != 1 else ''} per VAE call, not the recorded {recorded}: the "
                "re-render's batch is smaller than the render's")
    return None


def compile_note(record: dict[str, Any]) -> str | None:
    """Why a ``--compile`` render may not reproduce bit for bit: reproduce renders uncompiled."""
    if not (record.get("executor") or {}).get("compile"):
        return None
    return words(("rendered with ", Option("compile", True), ": torch.compile fuses and reorders float operations, "
                  "so some 8-bit values may differ by one from this uncompiled re-render (docs/performance.md)"))


def pixel_difference(committed: bytes, reproduced: bytes) -> tuple[int, int, str | None]:
    """(largest absolute channel difference, pixels that differ, the modes in words when they differ) between
    two PNGs of one size; the mode words make them differ whatever the numbers.

    Every channel the images have is compared: an RGBA plate take whose alpha alone changed is a difference
    (compared as RGB, transparency composited on white, it read as ``pixels-identical``). Two images of other
    modes are compared as RGBA (so the largest difference says how far apart their colours are).
    """
    a_mode, a = _mode_and_pixels(Path("committed.png"), committed)
    b_mode, b = _mode_and_pixels(Path("reproduced.png"), reproduced)
    mode_words = None
    steps = 1  # the image's steps in one of the 255 the difference is said in
    if a_mode != b_mode:
        mode_words = f"the committed image is {_mode_words(a_mode)}, the re-render {_mode_words(b_mode)}"
        a, b = _as_rgba(_as_8_bit(a)), _as_rgba(_as_8_bit(b))
    elif a.dtype != np.uint8:  # 16-bit grey (I;16, or I as some Pillows open it): compared in its own steps
        steps = 257
    if a.shape != b.shape:
        return 255, int(max(a.shape[0] * a.shape[1], b.shape[0] * b.shape[1])), mode_words
    # One signed copy, subtracted and made absolute in place: a 50-megapixel plate take is one more copy, not four
    diff: np.ndarray = a.astype(np.int16 if a.dtype == np.uint8 else np.int64)
    np.subtract(diff, b, out=diff)
    np.abs(diff, out=diff)
    differing = diff.max(axis=2) > 0
    largest = -(-int(diff.max()) // steps)  # rounded up: a 1/65535 step is still a difference, never 0
    if mode_words is not None:  # another mode is another image, even where its colours agree: every pixel
        return largest, differing.size, mode_words
    return largest, int(differing.sum()), None


def _mode_and_pixels(path: Path, data: bytes) -> tuple[str, np.ndarray]:
    """A take's mode and its pixels, every channel kept (height x width x channels), through the same hardened
    decode as every take read for review; a palette image as the colours (and transparency) it shows."""
    from .identity.images import decode_upright

    modes: list[str] = []

    def every_channel(image: Any) -> np.ndarray:
        if image.mode == "P":
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        elif image.mode == "PA":
            image = image.convert("RGBA")
        modes.append(image.mode)
        if image.mode == "1":  # bilevel decodes as booleans: white as 255, as in every other 8-bit mode
            image = image.convert("L")
        pixels = np.asarray(image)
        return pixels[:, :, None] if pixels.ndim == 2 else pixels

    pixels = decode_upright(path, data, every_channel)
    return modes[0], pixels


def _as_8_bit(pixels: np.ndarray) -> np.ndarray:
    """16-bit grey (0..65535) as 0..255, rounded, so two modes compare in one scale; 8-bit pixels as they are."""
    if pixels.dtype == np.uint8:
        return pixels
    return ((np.clip(pixels.astype(np.int64), 0, 65535) + 128) // 257).astype(np.uint8)


def _as_rgba(pixels: np.ndarray) -> np.ndarray:
    """Pixels of one to four channels as RGBA, for comparing two images of other modes."""
    pixels = pixels.astype(np.int32)
    colour = pixels[:, :, :1].repeat(3, axis=2) if pixels.shape[2] in (1, 2) else pixels[:, :, :3]
    alpha = pixels[:, :, -1:] if pixels.shape[2] in (2, 4) else np.full_like(pixels[:, :, :1], 255)
    return np.concatenate([colour, alpha], axis=2)


def _mode_words(mode: str) -> str:
    return f"{mode} (with transparency)" if mode in ("RGBA", "LA") else mode


# -- the batch it was rendered in ---------------------------------------------------------------------------

def batch_members(sidecar_path: Path | None, sidecar: dict[str, Any]) -> tuple[list[dict[str, Any]], int] | None:
    """The sidecars of the batch ``sidecar`` was rendered in, in batch order, from its output folder, and its
    own index among them; None when it was rendered alone or the batch cannot be rebuilt (a member is missing).

    A batch's float rounding depends on its shape and rows (CPU float32 agrees to ~1e-6, enough to move a
    few pixels by 1/255), so an exact reproduction renders the same batch. Its members are the sidecars
    of the same output folder with the same batch size and the same start and finish times, including
    takes a later render replaced (kept in ``.idcli/superseded/``: editing one shot of a batch must not
    cost its neighbours their exact reproduction); a take at its final path wins over a superseded copy.
    A sidecar rebuilt from its PNG after a kill (``recovered``), or the PNG's own record (``sidecar_path``
    is then the image's: the same folder), records no batch: a neighbour whose ``batch.job_keys`` names its
    job says which batch it was, and where in it.
    """
    from .superseded import SUPERSEDED

    recorded = sidecar.get("batch") or {}
    if sidecar_path is None or (recorded.get("size") is not None and not (
            isinstance(recorded.get("size"), int) and recorded["size"] > 1)):
        return None  # rendered alone: no need to read the folder's sidecars
    root = sidecar_path.parent.parent
    if root.parts[-len(SUPERSEDED.parts):] == SUPERSEDED.parts:  # the sidecar of a superseded take
        root = root.parent.parent
    others: list[dict[str, Any]] = []
    for path in sorted((root / SUPERSEDED).glob("*/*.json")) + sorted(root.glob("*/*.json")):
        try:
            other = json.loads(safeio.read_regular(path, MAX_SIDECAR_BYTES, follow_links=False))
        except (safeio.NotRegularFile, ValueError, RecursionError):
            continue
        if isinstance(other, dict):
            others.append(other)
    batch, timing = sidecar.get("batch") or {}, sidecar.get("timing") or {}
    index = batch.get("index")
    if batch.get("size") is None:  # a sidecar rebuilt after a kill, or the PNG's own record: no batch recorded
        key = sidecar.get("job_key")
        named = next((o for o in others if key in _job_keys(o)), None)
        if named is None:
            return None
        batch, timing, index = named["batch"], named.get("timing"), _job_keys(named).index(key)
        if not isinstance(timing, dict):
            return None
    size = batch.get("size")
    if not isinstance(size, int) or size <= 1 or not timing.get("started") or not isinstance(index, int):
        return None
    found: dict[int, dict[str, Any]] = {index: sidecar}
    for other in others:
        o_batch, o_timing = other.get("batch") or {}, other.get("timing") or {}
        if not (isinstance(o_batch, dict) and isinstance(o_timing, dict)):
            continue
        # A member whose size or sampler differs (edited since) cannot share the batch: rendered alone then.
        same_shape = other.get("size") == sidecar.get("size") and other.get("sampler") == sidecar.get("sampler")
        if (same_shape and o_batch.get("size") == size and o_timing.get("started") == timing["started"]
                and o_timing.get("finished") == timing.get("finished") and isinstance(o_batch.get("index"), int)):
            found[o_batch["index"]] = other
    return ([found[i] for i in range(size)], index) if sorted(found) == list(range(size)) else None


def _job_keys(record: dict[str, Any]) -> list[Any]:
    """The jobs a sidecar's ``batch.job_keys`` names in row order; none when it is not a list (a hand-edited file:
    a string would match keys by substring)."""
    batch = record.get("batch")
    keys = batch.get("job_keys") if isinstance(batch, dict) else None
    return keys if isinstance(keys, list) else []


def _checked(member: dict[str, Any]) -> dict[str, Any]:
    """A batch member's record, checked as the reproduced one is (a bad one: rendered alone, with a note)."""
    from .record_checks import check_record

    check_record(member, f"{member.get('shot_id')} take {member.get('take')}")
    return member


@dataclass
class _Prepared:
    record: dict[str, Any]
    request: Any
    identity: Any
    adapter: Any
    conditioning: dict[str, Any] | None


def _prepare(sidecar: dict[str, Any], model: Any, face_models: str | None, notes: list[str],
             out_dir: Path | None = None) -> _Prepared:
    """One record's request, its identity and adapter resolved and checked (steps 2 and 3 of reproduce)."""
    from .provenance import record_of_sidecar

    record = record_of_sidecar(sidecar)
    method = record.get("method") or {"name": "text"}
    conditioning = next((c for c in record.get("identity") or [] if c.get("conditions_image")), None)
    identity = adapter = None
    cast: dict[str, Any] = {}
    if method.get("name") != "text" and conditioning is not None:
        strength = float((method.get("identity") or {}).get("strength", 0.0))
        from .recorded_paths import shotlist_dirs

        dirs = shotlist_dirs(out_dir)
        identity = resolve_recorded_identity(conditioning, strength, model.preset, face_models, notes, dirs)
        adapter = recorded_adapter(conditioning, model)
        # Several characters: every identity line's character, each input checked the same way.
        entries = {c.get("name"): c for c in record.get("identity") or []}
        for line in method.get("characters") or ():
            name = line.get("name")
            if name not in entries:
                raise ReproduceError(f"the record's identity line '{name}' has no identity entry")
            cast[name] = identity if name == identity.name else resolve_recorded_identity(
                entries[name], float(line.get("strength", 0.0)), model.preset, face_models, notes, dirs)
        if adapter.is_plus:
            from .identity.clip_features import image_encoder_for

            encoder = image_encoder_for(adapter)
            identity = with_recorded_clip(identity, conditioning, adapter, encoder, notes)
            cast = {name: identity if name == identity.name else
                    with_recorded_clip(one, entries[name], adapter, encoder, notes) for name, one in cast.items()}
    request = request_from_record(record, identity, cast)
    if record.get("plate") is not None:
        # A plate job (docs/plates.md): its faces worked at the recorded working size, the shot prompt as
        # the semantic line, the plate's pixels from its file (checked by sha256; ``out_dir``: where to look).
        import dataclasses

        side = int(record["plate"].get("working_size") or 0)
        if side <= 0:
            raise ReproduceError("the record's plate block has no working size")
        request = dataclasses.replace(request, width=side, height=side, semantic_prompt=record["prompt"],
                                      plate=recorded_plate(record, out_dir))
    return _Prepared(record, request, identity, adapter, conditioning)


# -- the call ----------------------------------------------------------------------------------------------

def reproduce(target: str | os.PathLike[str], *, out_dir: str | os.PathLike[str] | None = None, device: str = "auto",
              face_models: str | os.PathLike[str] | None = None,
              engine_factory: Callable[[Any, Any, Any], Any] | None = None,
              delivered_from: str | os.PathLike[str] | None = None) -> ReproduceReport:
    """Re-render the image at ``target`` (an image or its sidecar) from its record; compare.

    A delivery copy (``idcli deliver``) is reproduced as the take it was made from, found in ``delivered_from``
    (the studio's output folder), else in ``renders/PROJECT`` (idcli/delivery_checks.py: original_take)."""
    from . import arguments as args
    from .kept_engine import engine_for
    from .plan import Job
    from .provenance import encode_png, read_png_record
    from .runtime import resolve_runtime

    target = args.check_path("target", target)
    out_dir = args.check_path_or_none("out_dir", out_dir)
    device = args.check_str("device", device)
    face_models = args.check_path_or_none("face_models", face_models)
    args.check_callable("engine_factory", engine_factory)
    delivered_from = args.check_path_or_none("delivered_from", delivered_from)
    # 1. The record, refused when this idcli no longer makes its engine's pixels; the model by content.
    image_path, sidecar_path, sidecar = locate(target)
    delivery_notes: list[str] = []
    if isinstance(sidecar.get("delivery"), dict):  # a delivery copy names no local file: its take does
        from .delivery_checks import original_take

        original, delivery_notes = original_take(image_path, sidecar, delivered_from)
        image_path, sidecar_path, sidecar = locate(original)
    elif delivered_from is not None:
        delivery_notes.append(words((Option("delivered_from", delivered_from, flag="--from"),
                                     f" ignored: {image_path.name} is a take, not a delivered copy")))
    if out_dir is not None and (Path(out_dir) / image_path.name).resolve() == image_path.resolve():
        raise ReproduceError(Option("out_dir", out_dir, flag="--out"), ": holds the image being reproduced, which the "
                             "re-render would replace (unsigned, and perhaps different); give another folder",
                             field="out_dir")
    notes: list[str] = list(delivery_notes)
    check_supported(sidecar, notes, sidecar_path or image_path)
    from .record_checks import check_record

    check_record(sidecar, sidecar_path or image_path)  # every field the re-render reads, before any is used
    model = resolve_recorded_model(sidecar)
    # 2. Its identity and adapter, each by hash (a missing or changed input is named: exit 2).
    out_root = image_path.parent.parent  # <out>/<shot_id>/<stem>.png
    own = _prepare(sidecar, model, face_models, notes, out_root)
    # 3. The batch it was rendered in, when the folder still holds it: same shape, same rounding.
    batch, index = [own], 0
    # Without a sidecar, the image's folder when it sits where a render put it (OUT/SHOT/SHOT_tN.png).
    at_home = image_path.stem.startswith(f"{image_path.parent.name}_t")
    in_batch = batch_members(sidecar_path or (image_path if at_home else None), sidecar)
    if in_batch is not None:
        members, index = in_batch
        try:
            batch = [own if i == index else _prepare(_checked(m), model, face_models, [], out_root)
                     for i, m in enumerate(members)]
        except InputError as exc:
            batch, index = [own], 0
            notes.append(f"rendered alone, not in its batch of {len(members)} ({exc}); float rounding may "
                         "move some pixels by 1/255")
    elif (sidecar.get("batch") or {}).get("size") not in (None, 1):
        notes.append("rendered alone: the other images of its batch are not in the folder; float rounding may "
                     "move some pixels by 1/255")
    elif (sidecar.get("batch") or {}).get("size") is None:
        which = ("its sidecar, rebuilt from the image after an interrupted run," if sidecar.get("recovered") else
                 "its record (the image's own: no sidecar beside it)")
        notes.append(f"rendered alone: {which} does not say which batch it was rendered in, and no sidecar in "
                     "the folder names it; float rounding may move some pixels by 1/255")
    # 4. The engine on the recorded precision; render; encode with the recorded record, as the commit did.
    runtime = resolve_runtime(recorded_device(sidecar, device, notes), model.dtype)
    adapter = next((p.adapter for p in batch if p.adapter is not None), None)
    # A render's or an earlier reproduce's engine when it is exactly this record's (idcli/kept_engine.py): checking
    # images one after another does not load the model for each.
    with engine_for(model, runtime, adapter, engine_factory) as engine:
        recorded_weight = ((own.conditioning or {}).get("adapter") or {}).get("weight_sha256")
        loaded_weight = (getattr(engine, "adapter_record", None) or {}).get("weight_sha256")
        if own.adapter is not None and recorded_weight and loaded_weight and recorded_weight != loaded_weight:
            notes.append(f"the adapter's weight file differs from the recorded one ({recorded_weight[:12]}…, now "
                         f"{loaded_weight[:12]}…)")
        # On a CPU, with the torch threads the render had (a Ray worker's one): the same split sums, the same bytes;
        # the VAE decoding as many images per call as the render's did (another chunk can move a level).
        recorded_chunk = (sidecar.get("executor") or {}).get("decode_chunk")
        with recorded_threads(sidecar, runtime.device, notes) as threads, \
                recorded_decode_chunk(engine, recorded_chunk, runtime.device, image_path) as chunk_set:
            result = engine.render([p.request for p in batch])[index]
        pixels = result.pixels
        decode_chunk = (getattr(result, "facts", None) or {}).get("decode_chunk")
    committed = None
    try:
        committed = safeio.read_regular(image_path, MAX_IMAGE_BYTES)
    except safeio.NotRegularFile:
        notes.append(f"the committed image {image_path} is missing: compared by hash only")
    # The record the commit embedded is the image's own chunk (an older idcli's sidecar may hold fewer
    # fields than its PNG); the sidecar's stands in when the image is gone or holds another job.
    embedded = read_png_record(committed) if committed is not None else None
    record = embedded if embedded and embedded.get("job_key") == own.record["job_key"] else own.record
    if record is embedded and sidecar_path is not None:
        # The encode below follows this record, not the sidecar checked in step 1: an entry edited in the image alone
        # (its `png`, its take) is refused in words, as the sidecar's would have been.
        check_record(record, image_path)
    job = Job(key=record["job_key"], shot_id=record["shot_id"], take=int(record["take"]), request=own.request,
              framing=record.get("framing"), expression=record.get("expression"),
              characters=tuple(record.get("characters") or ()), group="g1",
              subject=own.conditioning.get("name") if own.identity is not None and own.conditioning else None,
              cast=tuple({"name": line.name} for line in own.request.lines), plate=record.get("plate"))
    from .executors.output import with_plate_alpha

    png = encode_png(with_plate_alpha(job, pixels), job, model, record)
    # 5. Compare: sha256 first (a signed image's hash before its manifest), then pixels. The re-render must
    #    equal the record and the committed image as it is now: an image changed since is not reproduced.
    c2pa = sidecar.get("c2pa") or {}
    recorded_sha = c2pa.get("unsigned_sha256") if c2pa.get("signed") else (sidecar.get("image") or {}).get("sha256")
    committed_sha: str | None = None
    sha_from: Literal["record", "image"] = "record"
    if committed is not None:
        from .signing import without_manifest

        unsigned = without_manifest(committed)
        committed_sha = sha256_bytes(unsigned if unsigned is not None else committed)
        if unsigned is not None and sidecar_path is None:  # a signed take alone: its own chunk never names a manifest
            recorded_sha, sha_from = committed_sha, "image"
            notes.append("signed: compared without its C2PA manifest (idcli verify checks the signature)")
        elif unsigned is not None and not c2pa.get("signed"):  # signed; the sidecar (rebuilt after a kill?) says not
            recorded_sha, sha_from = committed_sha, "image"
            notes.append("the image carries a C2PA manifest its record does not describe; compared without it")
        elif recorded_sha is None:  # no sidecar: the image itself is the record
            recorded_sha, sha_from = committed_sha, "image"
        elif committed_sha != recorded_sha:
            notes.append("the image does not match its record's sha256 (changed after it was committed): "
                         "compared with the image as it is now")
        if c2pa.get("signed") and unsigned is None:
            notes.append("the record says the image was signed, but it carries no C2PA manifest (idcli verify "
                         "reports it)")
        if sidecar_path is not None and embedded is not None:  # a sidecar edited by hand: say why pixels differ
            from .verify import sidecar_record_problems

            notes += [f"{problem} re-rendered as the sidecar says"
                      for problem in sidecar_record_problems(sidecar, committed)]
    report = ReproduceReport(str(image_path), str(sidecar_path) if sidecar_path else None, "different",
                             recorded_sha, sha256_bytes(png), notes=notes, decode_chunk=decode_chunk,
                             recorded_decode_chunk=recorded_chunk, image_sha256=committed_sha,
                             recorded_sha256_from=sha_from)
    if report.sha256 == recorded_sha and committed_sha in (None, recorded_sha):
        report.status, report.max_pixel_difference, report.differing_pixels = "identical", 0, 0
    elif committed is not None:
        from .identity.images import ImageError

        mode_words = None
        try:
            report.max_pixel_difference, report.differing_pixels, mode_words = pixel_difference(committed, png)
            if mode_words is not None:
                notes.append(mode_words)
        except ImageError as exc:  # damaged since it was committed: a difference, not a bad input
            notes.append(f"the committed image cannot be decoded ({str(exc).split(': ', 1)[-1]}): compared by "
                         "hash only")
        if report.max_pixel_difference == 0 and mode_words is None:
            report.status = "pixels-identical"
    if not report.identical:
        report.environment = environment_differences(sidecar, runtime.device, runtime.dtype, threads)
        note = other_device_note(sidecar, runtime.device)
        if note:
            report.notes.append(note)
        note = compile_note(sidecar)
        if note:
            report.notes.append(note)
        note = decode_chunk_note(recorded_chunk, decode_chunk, chunk_set)
        if note:
            report.notes.append(note)
    if out_dir is not None:
        out = Path(out_dir)
        make_folders(out)  # group-writable in a folder a team shares (shared_files.py)
        target_path = out / image_path.name
        safeio.remove_dead_temporaries(out)  # what a reproduce killed mid-write left there
        safeio.atomic_write(target_path, png)
        report.output = str(target_path)
    return report
