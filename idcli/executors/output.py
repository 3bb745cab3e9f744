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


def encode_result(job: Job, result: Any, model: ModelIdentity, device: str,
                  adapter_record: dict[str, Any] | None) -> EncodedImage:
    """PNG bytes and record of one engine result (deterministic for the same pixels and job)."""
    from ..provenance import encode_png, reproducible_record

    record = reproducible_record(job, model, device, adapter_record)
    png = encode_png(result.pixels, job, model, record)
    fusion = result.facts.get("fusion")
    mask_png = None
    if result.facts.get("mask_frames"):
        from ..masks import mask_strip_png

        mask_png = mask_strip_png(result.facts["mask_frames"], fusion["evaluations"])
    return EncodedImage(png, record, fusion, mask_png)
