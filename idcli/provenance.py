"""What each image records about how it was made: the JSON sidecar and the PNG text chunks.

The PNG carries two chunks: ``parameters`` in the widely read "Steps: ..., Sampler: ..." form, and
``idcli`` with the sidecar's *reproducible* part (everything but timing, batch placement and the
image's own hash, which cannot be known before the bytes exist). So the same job renders the same
PNG bytes wherever it ran in a batch, and a sidecar can be rebuilt from the PNG alone.
"""

from __future__ import annotations

import io
import json
import platform
import struct
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, BinaryIO

from .models import ModelIdentity
from .plan import Job
from .versions import SIDECAR_SCHEMA, TOOL_NAME, TOOL_VERSION

PNG_CHUNK = "idcli"
# Fields of a sidecar that are not in the PNG's idcli chunk.
RUN_FIELDS = ("batch", "timing", "recovered")


@lru_cache(maxsize=1)
def software_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for package in ("torch", "diffusers", "transformers"):
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


def add_fusion_facts(sidecar: dict[str, Any], fusion: dict[str, Any]) -> None:
    """What fusion did, in the sidecar: the ``fusion`` entry, and in each conditioning character's
    ``identity`` entry its subject tokens and final mask coverage (known only once rendered)."""
    sidecar["fusion"] = fusion
    per_character = {c["name"]: c for c in fusion.get("characters", [])}
    for record in sidecar.get("identity", []):
        facts = per_character.get(record.get("name"))
        if facts is not None:
            record["subject_tokens"] = facts["subject_tokens"]
            record["mask_coverage"] = facts["mask_coverage"]


def reproducible_record(job: Job, model: ModelIdentity, device: str,
                        adapter: dict[str, Any] | None = None) -> dict[str, Any]:
    """The part of a sidecar fixed by the job alone (stored inside the PNG too)."""
    r = job.request
    return {
        "schema": SIDECAR_SCHEMA,
        "tool": {"name": TOOL_NAME, "version": TOOL_VERSION},
        "job_key": job.key,
        "shot_id": job.shot_id,
        "take": job.take,
        "seed": r.seed,
        "prompt": r.prompt,
        "negative_prompt": r.negative_prompt,
        "framing": job.framing,
        "expression": job.expression,
        "characters": list(job.characters),
        "identity": identity_records(job, adapter),
        "method": job.key_material.get("method"),
        "model": model_record(model, device),
        "sampler": {"name": r.sampler, "steps": r.steps, "guidance": r.guidance},
        "size": {"width": r.width, "height": r.height},
        "image": {"path": job.image_relpath, "width": r.width, "height": r.height},
        "software": software_versions(),
    }


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
    """The A1111-style ``parameters`` chunk most image tools display."""
    r = job.request
    lines = [r.prompt]
    if r.negative_prompt:
        lines.append(f"Negative prompt: {r.negative_prompt}")
    lines.append(f"Steps: {r.steps}, Sampler: {r.sampler}, CFG scale: {r.guidance:g}, Seed: {r.seed}, "
                 f"Size: {r.width}x{r.height}, Model: {model.label}, Version: {TOOL_NAME} {TOOL_VERSION}"
                 + _characters_text(job))
    return "\n".join(lines)


def _characters_text(job: Job) -> str:
    """``, Characters: mara theo`` (names are letters, digits and '_': no separator of the line can occur),
    then the ones whose identity conditions the image; nothing for a shot without characters."""
    if not job.characters:
        return ""
    return f", Characters: {' '.join(job.characters)}, Identities: {' '.join(job.conditioning) or 'none'}"


def encode_png(pixels: Any, job: Job, model: ModelIdentity, record: dict[str, Any]) -> bytes:
    """PNG bytes with both text chunks; deterministic for the same pixels and record."""
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", parameters_text(job, model))
    info.add_itxt(PNG_CHUNK, json.dumps(record, sort_keys=True, ensure_ascii=False))
    if model.random_weights:
        info.add_text("idcli-random-weights", "true: rendered by a random-weight test model")
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG", pnginfo=info, compress_level=6)
    return buffer.getvalue()


def read_png_record(source: bytes | BinaryIO) -> dict[str, Any] | None:
    """The ``idcli`` chunk of a PNG (its bytes or an open binary file), or None when absent, unreadable
    or describing an image of another size (a record copied onto some other picture is not its record).

    encode_png writes its text chunks before the pixel data, so the chunk is in ``.info`` once the
    headers are parsed and nothing is decoded (``.text`` would decode every pixel). PngImageFile is
    opened directly: Image.open would warn or raise about a declared size that is never decoded here.
    """
    from PIL import PngImagePlugin

    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with PngImagePlugin.PngImageFile(stream) as image:
            text, size = image.info.get(PNG_CHUNK), image.size
    except (OSError, ValueError, SyntaxError, EOFError, struct.error):
        return None
    if not text:
        return None
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        return None
    image_record = record.get("image") if isinstance(record, dict) else None
    if not isinstance(image_record, dict) or (image_record.get("width"), image_record.get("height")) != size:
        return None
    return record


def complete_sidecar(record: dict[str, Any], image_sha256: str, *, batch_index: int | None,
                     batch_size: int | None, started: datetime | None, finished: datetime | None,
                     recovered: bool = False) -> dict[str, Any]:
    """A full sidecar: the reproducible record plus the image hash and run facts."""
    sidecar = json.loads(json.dumps(record))  # deep copy
    sidecar["image"]["sha256"] = image_sha256
    sidecar["batch"] = {"index": batch_index, "size": batch_size}
    if started and finished:
        per_image = (finished - started).total_seconds() / max(1, batch_size or 1)
        sidecar["timing"] = {"started": started.isoformat(), "finished": finished.isoformat(),
                             "seconds": round(per_image, 4), "batch_seconds": round(
                                 (finished - started).total_seconds(), 4)}
    else:
        sidecar["timing"] = None
    if recovered:
        sidecar["recovered"] = True  # rebuilt from the PNG after an interrupted run
    return sidecar


def now() -> datetime:
    return datetime.now(timezone.utc)  # noqa: UP017 - keep 3.10 readers happy
