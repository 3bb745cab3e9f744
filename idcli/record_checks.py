"""The fields of a sidecar that ``idcli reproduce`` re-renders from, checked before any is used.

A sidecar is a JSON file in an output folder that may have come from outside the studio or been edited
by hand. Reproduce builds an engine request from it, so every field it reads is checked here against
the shot list's own limits (a size, steps, guidance, seed or batch no shot list could give is refused, and
a torch thread count no machine has; a plate take's size is its plate's, so it is bounded by the plate reader's
limits instead): a wrong type, NaN or an oversized value is one ReproduceError naming the file and each bad field,
never an internal error, a 10^9-step render or a 10^9-entry batch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .arguments import MAX_BATCH_SIZE  # no render commits a larger batch

# Blocks read with ``.get``: each must be an object when present.
# torch threads beyond any one machine's cores: reproduce sets the recorded count, so an edited 10**6 is refused.
MAX_THREADS = 4096
# Images (plate crops) per VAE decode call, which reproduce sets: a chunk larger than its batch decodes the batch
# whole, so the bound only keeps the field a count.
MAX_DECODE_CHUNK = 10**6
_OBJECTS = ("tool", "model", "method", "batch", "timing", "c2pa", "executor", "software", "fusion", "plate",
            "image")


def record_problems(record: dict[str, Any]) -> list[str]:
    """What is wrong with ``record`` for a re-render: "'field': what is allowed" per problem."""
    from .shotlist import MAX_GUIDANCE, MAX_SEED, MAX_SIDE, MAX_STEPS, MIN_SIDE, SAMPLERS

    problems: list[str] = []

    def bad(field: str, value: Any, allowed: str) -> None:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        problems.append(f"'{field}' is {shown}; {allowed}")

    for name in _OBJECTS:
        if record.get(name) is not None and not isinstance(record[name], dict):
            bad(name, record[name], "expected an object")
    for name in ("job_key", "shot_id", "prompt"):
        if not isinstance(record.get(name), str):
            bad(name, record.get(name), "expected text")
    if record.get("negative_prompt") is not None and not isinstance(record["negative_prompt"], str):
        bad("negative_prompt", record["negative_prompt"], "expected text")
    if not _whole(record.get("take"), 1, 10**6):
        bad("take", record.get("take"), "expected a whole number from 1")
    if not _whole(record.get("seed"), 0, MAX_SEED):
        bad("seed", record.get("seed"), f"expected a whole number 0..{MAX_SEED}")
    sampler = record.get("sampler")
    if not isinstance(sampler, dict):
        bad("sampler", sampler, "expected an object with name, steps and guidance")
    else:
        if sampler.get("name") not in SAMPLERS:
            bad("sampler.name", sampler.get("name"), f"expected one of {', '.join(SAMPLERS)}")
        if not _whole(sampler.get("steps"), 1, MAX_STEPS):
            bad("sampler.steps", sampler.get("steps"), f"expected a whole number 1..{MAX_STEPS}")
        if not _number(sampler.get("guidance"), 0.0, MAX_GUIDANCE):
            bad("sampler.guidance", sampler.get("guidance"), f"expected a number 0..{MAX_GUIDANCE:g}")
    size = record.get("size")
    if not isinstance(size, dict):
        bad("size", size, "expected an object with width and height")
    else:
        # A plate take's size is its plate's (its faces work at plate.working_size, checked below): bounded by what
        # the plate reader takes, not by a shot list's size:, or no 4K or 8K plate take could be reproduced.
        low, high, budget, whose = _size_bounds(isinstance(record.get("plate"), dict))
        sides: list[Any] = [size.get("width"), size.get("height")]
        for name, side in zip(("width", "height"), sides, strict=True):
            if not _whole(side, low, high):
                bad(f"size.{name}", side, f"expected a whole number {low}..{high}{whose}")
        if all(_whole(side, low, high) for side in sides) and sides[0] * sides[1] > budget:
            bad("size", size, f"expected at most {budget:,} pixels{whose}")
    if isinstance(record.get("method"), dict):
        _method_problems(record["method"], bad)
    identity = record.get("identity")
    if identity is not None and not isinstance(identity, list):
        bad("identity", identity, "expected a list of objects")
    elif identity:
        for i, item in enumerate(identity):
            if isinstance(item, dict):
                _identity_problems(f"identity[{i}]", item, bad)
            else:
                bad(f"identity[{i}]", item, "expected an object")
    batch = record.get("batch")
    if isinstance(batch, dict):
        size_ = batch.get("size")
        if size_ is not None and not _whole(size_, 1, MAX_BATCH_SIZE):
            bad("batch.size", size_, f"expected a whole number 1..{MAX_BATCH_SIZE}")
        elif batch.get("index") is not None and not _whole(batch.get("index"), 0, (size_ or 1) - 1):
            bad("batch.index", batch.get("index"), f"expected a whole number 0..{(size_ or 1) - 1}")
    executor = record.get("executor")
    if isinstance(executor, dict) and executor.get("threads") is not None and not _whole(executor["threads"], 1,
                                                                                         MAX_THREADS):
        bad("executor.threads", executor["threads"], f"expected a whole number 1..{MAX_THREADS}")
    if isinstance(executor, dict) and executor.get("decode_chunk") is not None and not _whole(
            executor["decode_chunk"], 1, MAX_DECODE_CHUNK):
        bad("executor.decode_chunk", executor["decode_chunk"], f"expected a whole number 1..{MAX_DECODE_CHUNK}")
    from .provenance import LEGACY_PNG_ENCODING, PNG_ENCODING

    if record.get("png") is not None and record["png"] not in (PNG_ENCODING, LEGACY_PNG_ENCODING):
        bad("png", record["png"], f"expected {PNG_ENCODING} (or absent, as before 2026-12-02)")
    plate = record.get("plate")
    if isinstance(plate, dict) and not _whole(plate.get("working_size"), MIN_SIDE, MAX_SIDE):
        bad("plate.working_size", plate.get("working_size"), f"expected a whole number {MIN_SIDE}..{MAX_SIDE}")
    return problems


def _size_bounds(plate: bool) -> tuple[int, int, int, str]:
    """(smallest side, largest side, most pixels, words naming whose limits) of a record's ``size``: a plate take's
    is its plate's, as the plate reader bounds a plate (plate_files.py); any other take's, a shot list's size:."""
    if plate:
        from .identity.images import MAX_IMAGE_PIXELS
        from .plate_files import MAX_PLATE_SIDE, MIN_PLATE_SIDE

        return MIN_PLATE_SIDE, MAX_PLATE_SIDE, MAX_IMAGE_PIXELS, " (a plate take has its plate's size)"
    from .shotlist import MAX_PIXELS, MAX_SIDE, MIN_SIDE

    return MIN_SIDE, MAX_SIDE, MAX_PIXELS, ""


def check_record(record: dict[str, Any], where: Path | str) -> None:
    """Raise a ReproduceError naming ``where`` and every bad field of ``record`` (record_problems)."""
    from .reproduce import ReproduceError

    problems = record_problems(record)
    if problems:
        raise ReproduceError(f"{where}: the record cannot be re-rendered (edited or damaged since the render): "
                             + "; ".join(problems), file=str(where))


def _method_problems(method: dict[str, Any], bad: Any) -> None:
    from pydantic import ValidationError

    from .method import PARAM_NAMES
    from .shotlist import MethodParams

    if not isinstance(method.get("name", "text"), str):
        bad("method.name", method.get("name"), "expected text")
    if method.get("semantic_prompt") is not None and not isinstance(method["semantic_prompt"], str):
        bad("method.semantic_prompt", method["semantic_prompt"], "expected text")
    params = method.get("params")
    if params is not None and not isinstance(params, dict):
        bad("method.params", params, "expected an object")
    elif params:
        try:
            MethodParams.model_validate({k: v for k, v in params.items() if k in PARAM_NAMES})
        except ValidationError as exc:
            for error in exc.errors():
                field = ".".join(str(part) for part in error["loc"])
                bad(f"method.params.{field}", error.get("input"), error["msg"])
    identity = method.get("identity")
    if identity is not None and not (isinstance(identity, dict) and _number(identity.get("strength", 0.0), 0, 2)):
        bad("method.identity", identity, "expected an object with a strength 0..2")
    if not _spans(method.get("subject_spans")):
        bad("method.subject_spans", method.get("subject_spans"), "expected a list of [start, end] token indices")
    lines = method.get("characters")
    if lines is not None and not isinstance(lines, list):
        bad("method.characters", lines, "expected a list of objects")
    for i, line in enumerate(lines or []):
        where = f"method.characters[{i}]"
        if not (isinstance(line, dict) and isinstance(line.get("name"), str) and isinstance(line.get("prompt"), str)
                and _number(line.get("strength"), 0, 2) and _spans(line.get("subject_spans"))):
            bad(where, line, "expected an object with name, prompt, strength 0..2 and subject_spans")


_ADAPTER_TEXT = ("source", "id", "weight_name", "subfolder", "revision", "content_hash", "variant")


def _identity_problems(where: str, item: dict[str, Any], bad: Any) -> None:
    """One character's identity entry: the fields reproduce reads to find and check its inputs."""
    if not isinstance(item.get("name"), str):
        bad(f"{where}.name", item.get("name"), "expected text")
    for name in ("face_models", "adapter", "clip_features"):
        if item.get(name) is not None and not isinstance(item[name], dict):
            bad(f"{where}.{name}", item[name], "expected an object")
    files = item.get("selfie_files")
    if files is not None and not (isinstance(files, list) and all(
            isinstance(f, dict) and isinstance(f.get("path"), str) for f in files)):
        bad(f"{where}.selfie_files", files, "expected a list of objects with a path")
    adapter = item.get("adapter")
    if isinstance(adapter, dict):
        for name in _ADAPTER_TEXT:
            if adapter.get(name) is not None and not isinstance(adapter[name], str):
                bad(f"{where}.adapter.{name}", adapter[name], "expected text")
        if adapter.get("source") in ("hub", "local") and not isinstance(adapter.get("id"), str):
            bad(f"{where}.adapter.id", adapter.get("id"), "expected text")
        encoder = adapter.get("image_encoder")
        if encoder is not None and not isinstance(encoder, dict):
            bad(f"{where}.adapter.image_encoder", encoder, "expected an object")


def _whole(value: Any, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def _number(value: Any, low: float, high: float) -> bool:
    return type(value) in (int, float) and math.isfinite(value) and low <= value <= high


def _spans(value: Any) -> bool:
    """None, or a list of [start, end] pairs of token indices (a CLIP prompt has at most a few hundred)."""
    return value is None or (isinstance(value, list) and all(
        isinstance(span, list) and len(span) == 2 and all(_whole(v, 0, 100_000) for v in span) for span in value))
