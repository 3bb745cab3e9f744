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

The inputs and their checks are reproduce_inputs.py's; the recorded device, threads and decode chunk, and the notes
on what differs now, reproduce_environment.py's; the pixel comparison pixel_compare.py's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from . import safeio
from .errors import EXIT_CHECK_FAILED, EXIT_OK, InputError
from .hashing import sha256_bytes
from .option_words import Option, words
from .pixel_compare import pixel_difference
from .reproduce_environment import (
    compile_note,
    decode_chunk_note,
    environment_differences,
    other_device_note,
    recorded_decode_chunk,
    recorded_device,
    recorded_threads,
)
from .reproduce_inputs import (
    recorded_adapter,
    recorded_plate,
    request_from_record,
    resolve_recorded_identity,
    resolve_recorded_model,
    with_recorded_clip,
)
from .shared_files import make_folders
from .store import MAX_IMAGE_BYTES, MAX_SIDECAR_BYTES
from .versions import ENGINE_ALGORITHM, SIDECAR_SCHEMA, SUPPORTED_ENGINES, TOOL_VERSION


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
    from .random_mark import random_weights_mark, random_weights_mark_before_2026_12_03

    # A real model's take with synthetic-pack identities was written without the random-weight mark until
    # 2026-12-03 (idcli/random_mark.py): encoded as it was then, such a take is its bytes again. Encoded a second
    # time only where the two rules differ for this record.
    if recorded_sha is not None and sha256_bytes(png) != recorded_sha and \
            random_weights_mark(record) != random_weights_mark_before_2026_12_03(record):
        earlier = encode_png(with_plate_alpha(job, pixels), job, model, record,
                             mark=random_weights_mark_before_2026_12_03)
        if sha256_bytes(earlier) == recorded_sha:
            png = earlier
            notes.append("encoded without the idcli-random-weights chunk, as idcli wrote a real model's take with "
                         "random-weight face models before 2026-12-03")
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
