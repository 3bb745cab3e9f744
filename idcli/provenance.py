"""What each image records about how it was made: the JSON sidecar and the PNG text chunks.

The PNG carries two chunks: ``parameters`` in the widely read "Steps: ..., Sampler: ..." form, and
``idcli`` with the sidecar's *reproducible* part (everything but timing, batch placement and the
image's own hash, which cannot be known before the bytes exist). So the same job renders the same
PNG bytes wherever it ran in a batch, and a sidecar can be rebuilt from the PNG alone.
"""

from __future__ import annotations

import io
import json
import math
import platform
import struct
import zlib
from collections.abc import Callable
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

from .models import ModelIdentity
from .plan import Job
from .random_mark import random_weights_mark
from .versions import ENGINE_ALGORITHM, SIDECAR_SCHEMA, TOOL_NAME, TOOL_VERSION

PNG_CHUNK = "idcli"
RANDOM_WEIGHTS_CHUNK = "idcli-random-weights"  # a random-weight render's mark (idcli deliver keeps it)

# How the pixels are deflated (docs/provenance.md, "PNG encoding"): each row's PNG filter is Pillow's choice either way
# (none, up, sub or Paeth, by the least sum of absolute values), then zlib. Recorded in the record (``png``) since
# 2026-12-02, so ``idcli reproduce`` encodes a take as it was encoded: a record without ``png`` was deflated at level
# 6 with Pillow's default strategy for PNG (Z_FILTERED). Z_RLE (matches of distance 1 only) gave files within 2 % of
# level 6's size on a drawn and on a grainy 4K and 8K plate, in 0.2-0.8 of its time (docs/performance.md).
PNG_ENCODING: dict[str, Any] = {"zlib_level": 1, "zlib_strategy": "rle"}
LEGACY_PNG_ENCODING: dict[str, Any] = {"zlib_level": 6, "zlib_strategy": "filtered"}


def png_save_options(encoding: Any) -> dict[str, int]:
    """Pillow's PNG ``save`` options for a record's ``png`` entry (None: the encoding of before it was recorded)."""
    if encoding is None or encoding == LEGACY_PNG_ENCODING:
        return {"compress_level": 6}  # exactly the call of before 2026-12-02 (Pillow's default strategy)
    if encoding == PNG_ENCODING:
        return {"compress_level": 1, "compress_type": zlib.Z_RLE}
    raise ValueError(f"not a PNG encoding idcli writes: {encoding!r}")


# Fields of a sidecar that are not in the PNG's idcli chunk.
# reused: where a reused image's pixels came from (idcli/reuse.py).
RUN_FIELDS = ("batch", "timing", "recovered", "c2pa", "fusion", "qa", "executor", "reused")  # qa: docs/review.md


@lru_cache(maxsize=1)
def software_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for package in ("torch", "diffusers", "transformers", "onnxruntime", "numpy", "pillow"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def identity_records(job: Job, adapter: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Per character in the shot: pack, selfies, embedding and face-model hashes, adapter, strength."""
    records = []
    cast = {c["name"]: c for c in job.cast}
    for character in job.identities:
        conditions = character.name in job.conditioning
        record = {**character.record(), "conditions_image": conditions, "adapter": adapter if conditions else None}
        if character.name in cast:  # several characters: each line's own strength and expression
            record["applied_strength"] = cast[character.name]["strength"]
            record["expression"] = cast[character.name]["expression"]
        records.append(record)
    return records


# Fields of a sidecar's identity entries that come from the render (add_fusion_facts), not the job: like
# ``fusion`` they are not in the PNG's idcli chunk.
FUSION_IDENTITY_FIELDS = ("subject_tokens", "mask_coverage")


def add_fusion_facts(sidecar: dict[str, Any], fusion: dict[str, Any]) -> None:
    """What fusion did, in the sidecar: the ``fusion`` entry, and in each conditioning character's
    ``identity`` entry its subject tokens and final mask coverage (known only once rendered)."""
    sidecar["fusion"] = fusion
    per_character = {c["name"]: c for c in fusion.get("characters", [])}
    for record in sidecar.get("identity", []):
        facts = per_character.get(record.get("name"))
        if facts is not None:
            record.update({name: facts[name] for name in FUSION_IDENTITY_FIELDS})


def reproducible_record(job: Job, model: ModelIdentity, device: str,
                        adapter: dict[str, Any] | None = None, *, project: str | None = None,
                        software: dict[str, str] | None = None) -> dict[str, Any]:
    """The part of a sidecar fixed by the job alone (stored inside the PNG too).

    ``project``: the shot list's project, so that a folder knows whose renders it holds. ``software``: the library
    versions that made the pixels (a reused image's: its source's), else this process's.
    """
    r = job.request
    width, height = image_size(job)
    return {
        "schema": SIDECAR_SCHEMA,
        "tool": {"name": TOOL_NAME, "version": TOOL_VERSION},
        **({"project": project} if project is not None else {}),
        "engine": ENGINE_ALGORITHM,  # what idcli reproduce checks it still supports
        "job_key": job.key,
        "shot_id": job.shot_id,
        "take": job.take,
        "seed": r.seed,
        "prompt": r.prompt,
        "negative_prompt": r.negative_prompt,
        # The shot's own words, as written: what stale_causes.py tells an edit of them by (absent before).
        **({"shot_prompt": job.shot_prompt} if job.shot_prompt is not None else {}),
        # What each named character's placeholder stood for: what stale_causes.py tells a description's edit by.
        **({"descriptions": job.descriptions} if job.descriptions else {}),
        "framing": job.framing,
        "expression": job.expression,
        "characters": list(job.characters),
        "identity": identity_records(job, adapter),
        "method": job.key_material.get("method"),
        "model": model_record(model, device),
        "sampler": {"name": r.sampler, "steps": r.steps, "guidance": r.guidance},
        "size": {"width": width, "height": height},
        "image": {"path": job.image_relpath, "width": width, "height": height},
        "software": software if software is not None else software_versions(),
        "png": dict(PNG_ENCODING),  # how encode_png deflates the pixels: reproduce encodes as recorded
        # A plate job (docs/plates.md): the plate file and each face (plates.plate_record).
        **({"plate": job.plate} if job.plate is not None else {}),
    }


def image_size(job: Job) -> tuple[int, int]:
    """(width, height) of a job's image: the plate's for a plate job (its faces are worked at the request's
    square working size), else the request's."""
    plate = job.request.plate
    return plate.size if plate is not None else (job.request.width, job.request.height)


# Fields of a sidecar's plate faces that come from the render (add_plate_facts), not the job.
PLATE_FACE_FIELDS = ("mask_coverage",)


def add_plate_facts(sidecar: dict[str, Any], facts: dict[str, Any]) -> None:
    """What the engine did to each plate face, in the sidecar's ``plate`` block: its mask coverage (the
    fraction of its crop re-generated), matched by position (faces are in the job's order)."""
    block = sidecar.get("plate")
    if not isinstance(block, dict):
        return
    for face, fact in zip(block.get("faces") or [], facts.get("faces") or [], strict=False):
        face.update({name: fact[name] for name in PLATE_FACE_FIELDS if name in fact})


# A1111's names for our samplers (modules/sd_samplers_*.py); ours without an equivalent keep our name.
A1111_SAMPLERS = {"dpmpp-2m": "DPM++ 2M", "euler": "Euler", "heun": "Heun", "ddim": "DDIM", "midpoint": "Midpoint"}


def a1111_value(value: Any) -> str:
    """A value as the settings line can carry it: readers split the line on ',' and ':' (sd-parsers,
    sd-prompt-reader), so both are removed, as are line breaks; runs of spaces become one."""
    text = str(value).replace(",", " ").replace(":", " ").replace("\n", " ").replace("\r", " ")
    return " ".join(text.split())


def a1111_model(model: ModelIdentity) -> tuple[str | None, str]:
    """(Model hash, Model) as A1111 writes them: a 10-hex-digit short hash and a checkpoint name."""
    short = model.content_hash.rsplit(":", 1)[-1][:10] if model.content_hash else None
    if model.source == "hub":
        name = f"{model.id}@{model.revision}" if model.revision and model.revision != "main" else str(model.id)
    elif model.source == "local":
        name = Path(str(model.id)).name
    else:
        name = f"{model.preset} random weights"
    return short, name


def model_record(model: ModelIdentity, device: str) -> dict[str, Any]:
    """The model as sidecars, ``plan --json`` and ``render --json`` all write it (one form everywhere)."""
    return {
        "preset": model.preset,
        "architecture": model.architecture,
        "source": model.source,
        "id": model.id,
        "revision": model.revision,
        "hash": model.content_hash,
        "dtype": model.dtype,
        "device": device,
        "random_weights": model.random_weights,
    }


def parameters_text(job: Job, model: ModelIdentity) -> str:
    """The ``parameters`` chunk exactly in A1111's layout (modules/processing.py ``create_infotext``): the
    prompt, ``Negative prompt: ...``, then one settings line in A1111's key order with A1111's sampler
    names, idcli's own keys after A1111's and ``Version`` last. "Send to txt2img" in A1111/Forge and the
    common readers get every field; values have ',' and ':' removed (A1111 quotes them instead, which
    most readers do not undo)."""
    r = job.request
    model_hash, model_name = a1111_model(model)
    settings: dict[str, Any] = {
        "Steps": r.steps,
        "Sampler": A1111_SAMPLERS.get(r.sampler, r.sampler),
        "Schedule type": "Automatic",  # the scheduler's own spacing from the model's config, as A1111's default
        "CFG scale": float(r.guidance),
        "Seed": r.seed,
        "Size": "{}x{}".format(*image_size(job)),
        "Model hash": model_hash,
        "Model": model_name,
        # idcli's own keys, after A1111's (readers keep unknown keys as metadata).
        "idcli sampler": r.sampler,
        "idcli method": r.method,
        "idcli identity": job.subject,
        # Several characters: every character named, and those whose identity conditions the image.
        "idcli characters": " ".join(job.characters) or None,
        "idcli identities": " ".join(job.conditioning) if len(job.conditioning) > 1 else None,
        "idcli identity strength": f"{r.identity_strength:g}" if job.subject else None,
        "idcli framing": job.framing,
        "idcli expression": (job.expression or {}).get("label") if isinstance(job.expression, dict) else None,
        "idcli job": job.key.rsplit(":", 1)[-1][:16],
        "idcli plate": job.plate["path"] if job.plate is not None else None,
        "Version": f"{TOOL_NAME} {TOOL_VERSION}",
    }
    line = ", ".join(f"{key}: {a1111_value(value)}" for key, value in settings.items() if value is not None)
    negative = f"\nNegative prompt: {r.negative_prompt}" if r.negative_prompt else ""
    return f"{r.prompt}{negative}\n{line}".strip()


def encode_png(pixels: Any, job: Job, model: ModelIdentity, record: dict[str, Any],
               mark: Callable[[dict[str, Any]], str | None] = random_weights_mark) -> bytes:
    """PNG bytes with both text chunks; deterministic for the same pixels and record. ``mark``: the random-weight
    mark's rule (``idcli reproduce`` also tries the one an earlier idcli followed, idcli/random_mark.py)."""
    from PIL import Image, PngImagePlugin

    # NaN or Infinity is no JSON (verify refuses it as edited by hand): a ValueError here, before anything is made.
    record_text = json.dumps(record, sort_keys=True, ensure_ascii=False, allow_nan=False)
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", parameters_text(job, model))
    info.add_itxt(PNG_CHUNK, record_text)
    text = mark(record)  # the random model's or the synthetic face models' (idcli/random_mark.py)
    if text is not None:
        info.add_text(RANDOM_WEIGHTS_CHUNK, text)
    buffer = io.BytesIO()
    # RGBA: a plate job's image keeps the plate's alpha (docs/plates.md).
    mode = "RGBA" if getattr(pixels, "ndim", 3) == 3 and pixels.shape[2] == 4 else "RGB"
    # A plate's RGB colour profile (docs/plates.md, "Colour"): the values are the plate's, so is their meaning.
    plate = getattr(job.request, "plate", None)
    profile = {"icc_profile": plate.icc_profile} if plate is not None and plate.icc_profile else {}
    Image.fromarray(pixels, mode).save(buffer, format="PNG", pnginfo=info, **png_save_options(record.get("png")),
                                       **profile)
    return buffer.getvalue()


# -- PNG chunks: the one reader every path that walks them uses (deliver, signing) ------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class PngFormatError(ValueError):
    """Bytes that are not a whole PNG; the message says what is wrong (a chunk cut short, a bad CRC, ...)."""


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, payload) of every chunk of a whole PNG, each CRC checked; PngFormatError otherwise.

    Strict on purpose: a chunk whose length runs past the file's end or whose CRC does not match is refused,
    never read as what its header says (a damaged C2PA manifest is not "a manifest")."""
    if not data.startswith(PNG_SIGNATURE):
        raise PngFormatError("not a PNG")
    chunks, pos = [], len(PNG_SIGNATURE)
    while pos < len(data):
        if pos + 12 > len(data):
            raise PngFormatError(f"cut short ({len(data) - pos} bytes after the last whole chunk)")
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        shown = kind.decode("latin-1") if kind.isalpha() else repr(kind)
        end = pos + 12 + length
        if end > len(data):
            raise PngFormatError(f"its {shown} chunk claims {length:,} bytes, past the file's end")
        payload = data[pos + 8:pos + 8 + length]
        if zlib.crc32(kind + payload) != int.from_bytes(data[end - 4:end], "big"):
            raise PngFormatError(f"its {shown} chunk's CRC does not match (damaged)")
        chunks.append((kind, payload))
        pos = end
        if kind == b"IEND":
            break
    if not chunks or chunks[-1][0] != b"IEND":
        raise PngFormatError("no IEND chunk at its end")
    if pos != len(data):  # a whole PNG with something appended: it has its IEND, which is not the file's end
        raise PngFormatError(f"{len(data) - pos:,} bytes after its IEND chunk, where a PNG ends")
    return chunks


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One chunk's bytes: length, type, payload, CRC."""
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


class RepeatedKey(ValueError):
    """A JSON object that writes one key twice: which value a reader takes depends on the reader."""

    def __init__(self, key: str) -> None:
        super().__init__(f"the key {key[:40]!r} is written twice")
        self.key = key


def _refuse_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise RepeatedKey(key)
        found[key] = value
    return found


class NotJsonNumber(ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity`` in a JSON text, at ``field`` (``a[1].b``; "the top level"): Python's
    json reads them, but RFC 8259 has no such number and other readers (a browser's ``JSON.parse``, jq, Go, a
    studio's asset database) refuse the whole file. idcli writes none in a record: one there was put in by hand."""

    def __init__(self, token: str, field: str) -> None:
        super().__init__(f"{token} at {field}: not JSON (RFC 8259)")
        self.token = token
        self.field = field


class _Constant:
    """Where the parser met NaN or Infinity (``parse_constant``), found again by identity in the parsed value."""

    def __init__(self, token: str) -> None:
        self.token = token


def _field_of(value: Any, wanted: object) -> str:
    """The field path of ``wanted`` in ``value``, walked with a stack (a record may be nested as deep as JSON reads)."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        at, item = stack.pop()
        if item is wanted:
            return at or "the top level"
        if isinstance(item, dict):
            stack.extend(reversed([(f"{at}.{key}" if at else str(key), inner) for key, inner in item.items()]))
        elif isinstance(item, list):
            stack.extend(reversed([(f"{at}[{i}]", inner) for i, inner in enumerate(item)]))
    return "the top level"  # not reached: the parser put it in the value


def loads_strict(text: str | bytes) -> Any:
    """JSON as ``json.loads`` reads it, but a key written twice in one object is a ``RepeatedKey`` (a ValueError):
    idcli never writes one, and a hand-edited record that does says one value to a reader taking the first and
    another to Python, which takes the last (what ``idcli verify`` compared). ``NaN``, ``Infinity`` and
    ``-Infinity`` are a ``NotJsonNumber`` naming the first one's field (a number past a double's range, ``1e999``,
    is JSON, read as Python reads it)."""
    met: list[_Constant] = []

    def constant(token: str) -> _Constant:
        met.append(_Constant(token))
        return met[-1]

    value = json.loads(text, object_pairs_hook=_refuse_repeats, parse_constant=constant)
    if met:
        raise NotJsonNumber(met[0].token, _field_of(value, met[0]))
    return value


def read_png_record(source: bytes | BinaryIO, *, strict: bool = False) -> dict[str, Any] | None:
    """The ``idcli`` chunk of a PNG (its bytes or an open binary file), or None when absent, unreadable
    or describing an image of another size (a record copied onto some other picture is not its record).
    ``strict``: a record writing a key twice, or holding NaN or Infinity, is unreadable too (``loads_strict``);
    verify reads with ``read_png_record_checked``, which says where.

    encode_png writes its text chunks before the pixel data, so the chunk is in ``.info`` once the
    headers are parsed and nothing is decoded (``.text`` would decode every pixel). PngImageFile is
    opened directly: Image.open would warn or raise about a declared size that is never decoded here.
    """
    return _png_record(source, strict, read_not_json=False)[0]


def read_png_record_checked(data: bytes) -> tuple[dict[str, Any] | None, RepeatedKey | NotJsonNumber | None]:
    """The ``idcli`` chunk as verify reads it: ``read_png_record(strict=True)``, except that a record writing a key
    twice or holding NaN or Infinity is read as Python reads it (a repeated key's last value), with the
    ``RepeatedKey`` or ``NotJsonNumber`` saying which key or where. The image carries that record: verify says what
    is wrong with it and still compares the rest (called unreadable, the image was said to carry none)."""
    return _png_record(data, True, read_not_json=True)


def _png_record(source: bytes | BinaryIO, strict: bool, *, read_not_json: bool
                ) -> tuple[dict[str, Any] | None, RepeatedKey | NotJsonNumber | None]:
    from PIL import PngImagePlugin

    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with PngImagePlugin.PngImageFile(stream) as image:
            text, size = image.info.get(PNG_CHUNK), image.size
    except (OSError, ValueError, SyntaxError, EOFError, struct.error):
        return None, None
    if not text:
        return None, None
    fault: RepeatedKey | NotJsonNumber | None = None
    try:
        try:
            record = loads_strict(text) if strict else json.loads(text)
        except (RepeatedKey, NotJsonNumber) as exc:
            if not read_not_json:
                return None, None
            record, fault = json.loads(text), exc  # as the sidecar's are read (verify.load_sidecar)
    except (ValueError, RecursionError):
        return None, None
    image_record = record.get("image") if isinstance(record, dict) else None
    if not isinstance(image_record, dict) or (image_record.get("width"), image_record.get("height")) != size:
        return None, None
    return record, fault


def record_of_sidecar(sidecar: dict[str, Any]) -> dict[str, Any]:
    """The reproducible record inside a sidecar (what the PNG's ``idcli`` chunk holds): the sidecar
    without its run fields and the image's own hash."""
    record = {k: v for k, v in json.loads(json.dumps(sidecar)).items() if k not in RUN_FIELDS}
    record.pop("sidecar_path", None)
    if isinstance(record.get("image"), dict):
        record["image"].pop("sha256", None)
        record["image"].pop("abs_path", None)
    # A hand-edited sidecar may hold any JSON here (deliver compares the record, reproduce reads it): only
    # lists are walked.
    identity = record.get("identity")
    for entry in identity if isinstance(identity, list) else []:  # what fusion did, known only once rendered
        if isinstance(entry, dict):
            for name in FUSION_IDENTITY_FIELDS:
                entry.pop(name, None)
    plate = record.get("plate")
    if isinstance(plate, dict):  # what the engine did to each face, and the --save-masks file
        plate.pop("mask", None)
        faces = plate.get("faces")
        for face in faces if isinstance(faces, list) else []:
            if isinstance(face, dict):
                for name in PLATE_FACE_FIELDS:
                    face.pop(name, None)
    return record


MISSING = object()  # a field the image's own record does not hold (record_differences)


def record_differences(part: Any, whole: Any, where: str = "") -> list[tuple[str, Any, Any]]:
    """``(field path, value in part, value in whole or MISSING)`` for each field of ``part`` (a sidecar's record,
    record_of_sidecar) that ``whole`` (the image's own record, read_png_record) does not hold with the same value.
    Fields only ``whole`` holds are no difference: an older idcli's sidecar holds fewer fields than its PNG.
    Walked with a stack, in field order: a hostile record nested as deep as JSON reads is no RecursionError."""
    found: list[tuple[str, Any, Any]] = []
    stack: list[tuple[str, Any, Any]] = [(where, part, whole)]
    while stack:
        at, own, its = stack.pop()
        if its is MISSING:
            found.append((at, own, MISSING))
        elif isinstance(own, dict) and isinstance(its, dict):
            stack.extend(reversed([(f"{at}.{key}" if at else str(key), value, its.get(key, MISSING))
                                   for key, value in own.items()]))
        elif isinstance(own, list) and isinstance(its, list) and len(own) == len(its):
            stack.extend(reversed([(f"{at}[{i}]", a, b) for i, (a, b) in enumerate(zip(own, its, strict=True))]))
        elif not _same_value(own, its):
            found.append((at, own, its))
    return found


def same_record(one: Any, other: Any) -> bool:
    """Whether two records read from JSON hold the same fields with the same values (``record_differences`` both
    ways: ``==`` takes two NaN read apart for different, and ``1`` for ``1.0`` or ``true``)."""
    return not record_differences(one, other) and not record_differences(other, one)


def _same_value(own: Any, its: Any) -> bool:
    """Whether two values read from JSON say the same: of one type and equal, NaN being NaN (a hand-edited NaN on
    both sides says the same; Python's ``nan != nan`` made verify report a difference that is not one)."""
    if type(own) is not type(its):
        return False
    return bool(own == its) or (isinstance(own, float) and math.isnan(own) and math.isnan(its))


def complete_sidecar(record: dict[str, Any], image_sha256: str, *, batch_index: int | None,
                     batch_size: int | None, started: datetime | None, finished: datetime | None,
                     recovered: bool = False, batch_keys: list[str] | None = None,
                     executor: dict[str, Any] | None = None) -> dict[str, Any]:
    """A full sidecar: the reproducible record plus the image hash and run facts.

    ``batch_keys``: the job keys of the UNet batch the image was rendered in, in row order (the image's
    own at ``batch_index``). On a CPU the batch can move a pixel by one 8-bit level, so an exact
    reproduction renders the same jobs together in the same order (docs/architecture.md).
    ``executor``: which executor rendered it, on which host and device (None when rebuilt from a PNG).
    """
    sidecar = json.loads(json.dumps(record))  # deep copy
    sidecar["image"]["sha256"] = image_sha256
    sidecar["batch"] = {"index": batch_index, "size": batch_size, "job_keys": batch_keys}
    if started and finished:
        per_image = (finished - started).total_seconds() / max(1, batch_size or 1)
        sidecar["timing"] = {"started": started.isoformat(), "finished": finished.isoformat(),
                             "seconds": round(per_image, 4), "batch_seconds": round(
                                 (finished - started).total_seconds(), 4)}
    else:
        sidecar["timing"] = None
    if recovered:
        sidecar["recovered"] = True  # rebuilt from the PNG after an interrupted run
    sidecar["executor"] = executor
    return sidecar


def now() -> datetime:
    return datetime.now(timezone.utc)  # noqa: UP017 - keep 3.10 readers happy
