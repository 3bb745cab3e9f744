"""One rendered job turned into the bytes the store commits: the PNG (with its ``idcli`` record) and the
``--save-masks`` strip. The local executor does this on the driver's commit thread, a Ray worker on the
worker; the same function runs in both places, so the bytes are the same wherever the job ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..models import ModelIdentity
from ..plan import Job


@dataclass
class EncodedImage:
    png: bytes
    record: dict[str, Any]  # the reproducible record (also the PNG's idcli chunk)
    fusion: dict[str, Any] | None = None  # the engine's fusion facts (dual-line jobs)
    mask_png: bytes | None = None  # the --save-masks strip, when asked for
    # Positions in the batch of the jobs that went through the UNet with this one (the engine's
    # ``batch_members``; None: the whole batch).
    members: list[int] | None = None
    plate: dict[str, Any] | None = None  # the engine's plate facts (plate jobs: faces' mask coverage, start step)
    # Images (plate crops) per VAE decode call of its batch (the engine's ``decode_chunk``; None: not said): a Ray
    # worker's reply carries it to the driver's sidecar as a local result's facts do (commit_path.with_decode_chunk).
    decode_chunk: int | None = None


def encode_result(job: Job, result: Any, model: ModelIdentity, device: str,
                  adapter_record: dict[str, Any] | None, project: str | None = None,
                  software: dict[str, str] | None = None) -> EncodedImage:
    """PNG bytes and record of one engine result (deterministic for the same pixels and job); ``device`` and
    ``software`` (default: this process's library versions) are what made the pixels."""
    from ..provenance import encode_png, reproducible_record

    record = reproducible_record(job, model, device, adapter_record, project=project, software=software)
    _unconditioned_without_tokens(record, result.facts)
    png = encode_png(with_plate_alpha(job, result.pixels), job, model, record)
    fusion = result.facts.get("fusion")
    mask_png = None
    if result.facts.get("mask_frames"):
        from ..masks import mask_strip_png

        mask_png = mask_strip_png(result.facts["mask_frames"], fusion["evaluations"])
    plate = result.facts.get("plate")
    if result.facts.get("plate_mask") is not None and job.plate is not None:
        from ..masks import plate_mask_png

        # A plate job's faces over the plate (docs/plates.md), in place of a strip over the steps.
        mask_png = plate_mask_png(result.pixels, result.facts["plate_mask"], job.plate["faces"],
                                  job.request.plate.icc_profile if job.request.plate is not None else None)
    return EncodedImage(png, record, fusion, mask_png, result.facts.get("batch_members"), plate,
                        result.facts.get("decode_chunk"))


def with_plate_alpha(job: Job, pixels: Any) -> Any:
    """An RGBA plate's image keeps the plate's alpha (docs/plates.md): the engine composites colour only and
    leaves alpha untouched, so the plate's own alpha channel is the image's, exactly."""
    plate = job.request.plate
    if plate is None or plate.pixels.shape[2] != 4 or pixels.shape[2] != 3:
        return pixels
    import numpy as np

    return np.dstack([pixels, plate.pixels[:, :, 3]])


def _unconditioned_without_tokens(record: dict[str, Any], facts: dict[str, Any]) -> None:
    """A dual-line character whose phrase made no CLIP token never gets a fusion mask, so the identity never
    reaches the image: its sidecar says so instead of ``conditions_image: true`` (``plan`` warned)."""
    fusion = facts.get("fusion")
    if fusion is None:
        return
    # Several characters: each line's own tokens (a character with none is unconditioned, the others not).
    tokens = {c.get("name"): c.get("subject_tokens", 1) for c in fusion.get("characters", [])}
    for entry in record.get("identity", []):
        if entry.get("conditions_image") and tokens.get(entry.get("name"), fusion.get("subject_tokens", 1)) == 0:
            entry["conditions_image"] = False
            entry["not_conditioned_because"] = "its phrase in the prompt makes no CLIP token (fusion mask empty)"


def png_pixels(png: bytes) -> Any:
    """The 8-bit RGB pixels of encoded PNG bytes (identity QA of an image a Ray worker encoded)."""
    import io

    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))

