"""``idcli bench --check-batch-invariance``: how far a job's image moves when it is rendered inside a batch.

docs/architecture.md ("What 'batch composition never changes an image' means") says the mathematics of an image
never depends on its batch-mates, but the arithmetic may: on a GPU the matrix and attention kernels are chosen by
the batch's row count, so an image rendered in a batch of 8 and alone can differ by a few 8-bit levels. This
measures it: the bench's workload (``--jobs`` jobs, one batch) rendered once as one batch and once job by job on the
same engine, and each job's two images compared pixel by pixel.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..option_words import EachSurface, Option
from .workload import make_workload, write_shotlist


def check_batch_invariance(arch: str = "tiny-sd", *, jobs: int = 8, steps: int | None = None,
                           size: tuple[int, int] | None = None, method: str = "single", device: str = "auto",
                           dtype: str = "auto", compile: bool = False, face_models: str | None = "synthetic",
                           command: str | None = None,
                           on_note: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Render ``jobs`` jobs as one batch, then each alone, and compare: the record ``--json`` prints."""
    from .runner import check_dtype

    check_invariance_jobs(jobs)
    workload = make_workload(arch, jobs, steps, size, method)
    check_dtype(dtype)
    note = on_note or (lambda text: None)
    command = command or (f"idcli.bench.check_batch_invariance({arch!r}, jobs={jobs}, steps={steps}, size={size}, "
                          f"method={method!r}, device={device!r}, dtype={dtype!r}, compile={compile})")
    with tempfile.TemporaryDirectory(prefix="idcli-invariance-") as folder:
        return _check(workload, Path(folder), device, dtype, compile, face_models, command, note)


def check_invariance_jobs(jobs: int) -> None:
    """Refuse fewer than two jobs: no batch to compare. ``idcli bench`` checks it before its default arch (auto)
    asks torch for a GPU, as it does ``check_workload``, so the refusal comes in a moment, not after torch's import."""
    if jobs < 2:
        raise InputError(Option("jobs", jobs), ": ", EachSurface("check_batch_invariance", "--check-batch-invariance"),
                         " compares a batch with single renders; give 2 or more")


def _check(workload: Any, folder: Path, device: str, dtype: str, compile: bool, face_models: str | None,
           command: str, note: Callable[[str], None]) -> dict[str, Any]:
    import numpy as np

    from . import measure
    from .runner import build_engine

    built = build_engine(workload, write_shotlist(workload, folder), device=device, dtype=dtype, compile=compile,
                         face_models=face_models, note=note)
    plan, runtime, engine = built.plan, built.runtime, built.engine
    requests = [job.request for job in plan.jobs]
    started = time.perf_counter()
    note(f"one batch of {len(requests)} jobs")
    batched = engine.render(requests)
    if any(len(result.facts["batch_members"]) != len(requests) for result in batched):
        raise RuntimeError("the jobs did not run as one batch")
    note(f"the same {len(requests)} jobs one by one")
    alone = [engine.render([request])[0] for request in requests]
    seconds = time.perf_counter() - started

    per_job: list[dict[str, Any]] = []
    for job, together, single in zip(plan.jobs, batched, alone, strict=True):
        a, b = together.pixels.astype(np.int16), single.pixels.astype(np.int16)
        diff = np.abs(a - b)
        per_job.append({"shot": job.shot_id, "max_abs_diff": int(diff.max()), "mean_abs_diff": float(diff.mean()),
                        "differing_values": int((diff > 0).sum()),
                        "float_max_abs_diff": float(np.abs(together.image - single.image).max())})
    values = sum(r.image.size for r in batched)
    return {
        "check": "batch-invariance", "command": command,
        "date": datetime.now().astimezone().isoformat(timespec="seconds"), "machine": measure.machine(engine.device),
        "versions": measure.versions(), "workload": workload.as_dict(), "model": plan.model.label,
        "random_weights": plan.model.random_weights, "device": str(engine.device), "dtype": runtime.dtype,
        "compile": compile, "batch": len(requests),
        # 8-bit levels, over every job's every pixel and channel
        "max_abs_diff": max(r["max_abs_diff"] for r in per_job),
        "mean_abs_diff": round(sum(r["mean_abs_diff"] for r in per_job) / len(per_job), 6),
        "differing_share": round(sum(r["differing_values"] for r in per_job) / values, 6),
        "identical_images": sum(r["differing_values"] == 0 for r in per_job),
        "float_max_abs_diff": max(r["float_max_abs_diff"] for r in per_job),
        "jobs": per_job, "seconds": round(seconds, 3),
    }


def format_invariance(record: dict[str, Any]) -> str:
    """The check's record for people."""
    w = record["workload"]
    return "\n".join([
        f"idcli bench --check-batch-invariance: {record['model']} on {record['device']} ({record['dtype']}), "
        f"{w['width']}x{w['height']}, {w['steps']} steps, method {w['method']}",
        f"  {record['batch']} jobs as one batch against each alone: max {record['max_abs_diff']} 8-bit levels, "
        f"mean {record['mean_abs_diff']:.4f}; {record['differing_share']:.2%} of values differ; "
        f"{record['identical_images']} of {record['batch']} images identical",
    ])
