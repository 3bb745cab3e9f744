"""One bench run: write the workload's shot list, build the engine once, render it through
``idcli.run.render`` with timers on the model forwards, count the UNet's FLOPs, measure the device's
matrix-product ceiling and run the naive baseline, all in one process on the same weights.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from ..arguments import DTYPES
from ..errors import EXIT_JOBS_FAILED, IdcliError, InputError
from ..option_words import Option
from .result import BenchResult
from .workload import make_workload, nearest_hint, write_shotlist

# Short names people give dtypes, answered with the name --dtype takes.
_SHORT_DTYPES = {"fp32": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16"}


class BenchError(IdcliError):
    """The timed render did not render every job."""

    exit_code = EXIT_JOBS_FAILED


class CountingEngine:
    """The engine ``render`` gets from its ``engine_factory``: the bench's prebuilt engine, plus when the
    factory was called and the time spent inside ``Engine.render``."""

    def __init__(self, engine: Any) -> None:
        self.inner = engine
        self.adapter_record = engine.adapter_record
        self.factory_calls = 0
        self.factory_at: float | None = None
        self.seconds = 0.0
        self.batches: list[int] = []
        self.decode_chunks: list[int | None] = []  # images per VAE decode call, per batch

    def factory(self, model: Any, runtime: Any, adapter: Any) -> CountingEngine:
        if model != self.inner.identity:
            raise RuntimeError(f"the bench built {self.inner.identity.label}, the render planned {model.label}")
        self.factory_calls += 1
        self.factory_at = time.perf_counter()
        return self

    def render(self, requests: list[Any], *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.inner.render(requests, *args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start
            self.batches.append(len(requests))
            self.decode_chunks.append(getattr(self.inner, "last_decode_chunk", None))

    def suggest_batch_size(self, request: Any) -> int:
        return self.inner.suggest_batch_size(request)

    def __getattr__(self, name: str) -> Any:  # anything else render() may ask the engine for
        return getattr(self.inner, name)


@contextmanager
def _workdir(keep: Path | None) -> Iterator[Path]:
    """A temporary folder removed afterwards, or ``keep`` (absent or empty) left in place."""
    if keep is None:
        with tempfile.TemporaryDirectory(prefix="idcli-bench-") as folder:
            yield Path(folder)
        return
    if keep.exists() and (not keep.is_dir() or any(keep.iterdir())):
        raise InputError(Option("keep", keep),
                         ": give a new or empty folder (a bench never renders over earlier files)")
    keep.mkdir(parents=True, exist_ok=True)
    yield keep


def run_bench(arch: str = "tiny-sd", *, jobs: int = 64, steps: int | None = None, size: tuple[int, int] | None = None,
              method: str = "single", batch_size: int | str = "auto", device: str = "auto", baseline: bool = True,
              compile: bool = False, keep: Path | None = None, face_models: str | None = "synthetic",
              repeats: int = 1, command: str | None = None,
              on_note: Callable[[str], None] | None = None, qa: bool = True, dtype: str = "auto",
              profile: Path | None = None, baseline_jobs: int | None = None) -> BenchResult:
    """Measure idcli's throughput on ``jobs`` identity-conditioned jobs, and the naive baseline's.

    The model has random weights (the published architecture for sd15/sdxl); the selfies are encoded
    with ``face_models`` (the synthetic pack by default: identities only need to exist). Images are
    written into a temporary folder removed afterwards, or kept in ``keep``. ``compile`` runs idcli's
    UNet through ``torch.compile`` as ``render --compile`` does (never the baseline's). ``qa``: identity
    QA on the commit thread, as ``render`` runs it by default (``--no-qa`` measures without it). ``dtype``:
    the weights' and activations' precision, ``auto`` as ``render`` picks it (bfloat16 on a GPU, float32 on
    a CPU); bfloat16 on a CPU rehearses the GPU run's numerics at half float32's memory.

    ``repeats`` times the idcli render and the baseline alternately (A B A B ...), so that a machine whose
    speed drifts (other processes, clocks) affects both alike; the figures are medians over the repeats
    and the idcli/baseline ratio is the median of the per-pair ratios with its spread.

    ``baseline_jobs``: time the baseline on the first N jobs only (default: all). The baseline is one stock
    call per job at batch 1, so its cost is linear in jobs and its images/s the same on fewer; at SDXL size
    on a lent GPU the whole baseline would take most of the run's time. The ratio compares images per second.

    ``profile``: a new or empty folder; after the timed runs, a few more jobs are rendered under
    ``torch.profiler`` and their tables and trace written there (idcli/bench/profile.py), counted in no figure.
    """
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise InputError(Option("repeats", repeats), ": give a whole number of at least 1")
    workload = make_workload(arch, jobs, steps, size, method)
    check_dtype(dtype)
    if baseline_jobs is not None and (isinstance(baseline_jobs, bool) or not isinstance(baseline_jobs, int)
                                      or not 1 <= baseline_jobs <= workload.jobs):
        raise InputError(Option("baseline_jobs", baseline_jobs), ": give a whole number from 1 to ", Option("jobs"),
                         f" ({workload.jobs})")
    if profile is not None:
        from .profile import check_profile_folder

        check_profile_folder(profile)
    note = on_note or (lambda text: None)
    command = command or (f"idcli.bench.run_bench({arch!r}, jobs={jobs}, steps={steps}, size={size}, "
                          f"method={method!r}, batch_size={batch_size!r}, device={device!r}, baseline={baseline}, "
                          f"compile={compile}, repeats={repeats}, dtype={dtype!r}, profile={profile!r}, "
                          f"baseline_jobs={baseline_jobs!r})")
    with _workdir(keep) as folder:
        result = _run(workload, folder, batch_size, device, baseline, compile, face_models, command, note, repeats,
                      qa, dtype, profile, baseline_jobs or workload.jobs)
        result.workdir, result.kept = str(folder), keep is not None
    return result


def check_dtype(dtype: str) -> None:
    """``--dtype``: auto or one of DTYPES, else an InputError with a hint."""
    if dtype not in ("auto", *DTYPES):
        short = _SHORT_DTYPES.get(str(dtype).lower())  # 'fp16' is how many say float16: too short for difflib
        hint = f" (did you mean {short}?)" if short else nearest_hint(dtype, ("auto", *DTYPES))
        raise InputError(Option("dtype", dtype), f": allowed: auto, {', '.join(DTYPES)}{hint}")


@dataclass
class BuiltEngine:
    plan: Any  # the workload's plan (jobs, model, adapter)
    runtime: Any
    engine: Any
    setup_seconds: float  # planning: identities, adapter, tokenizer (not timed)
    build_seconds: float  # building the engine (not timed)


def build_engine(workload: Any, shots: Path, *, device: str, dtype: str, compile: bool, face_models: str | None,
                 note: Callable[[str], None]) -> BuiltEngine:
    """The workload's shot list ``shots`` planned and its engine built, as every bench measurement starts (the timed
    run and ``--check-batch-invariance``)."""
    from ..engine import Engine
    from ..planning import plan_shotlist
    from ..shotlist import load_shotlist

    started = time.perf_counter()
    plan, runtime = plan_shotlist(load_shotlist(shots), preset=workload.preset, device=device, dtype=dtype,
                                  face_models=face_models)
    setup_seconds = time.perf_counter() - started
    if compile:
        from ..engine.compiled import cpu_compile_note

        runtime = replace(runtime, compile=True)
        slow_start = cpu_compile_note(runtime.device)
        if slow_start is not None:  # the warm-up compiles: minutes on a CPU before any figure
            note(slow_start)
    note(f"building {plan.model.label} on {runtime.device} ({runtime.dtype})")
    started = time.perf_counter()
    engine = Engine(plan.model, runtime, plan.adapter)
    return BuiltEngine(plan, runtime, engine, setup_seconds, time.perf_counter() - started)


def _run(workload: Any, folder: Path, batch_size: int | str, device: str, baseline: bool, compile: bool,
         face_models: str | None, command: str, note: Callable[[str], None], repeats: int = 1,
         qa: bool = True, dtype: str = "auto", profile: Path | None = None,
         baseline_jobs: int | None = None) -> BenchResult:
    from ..run import render
    from ..shotlist import load_shotlist
    from . import measure
    from .baseline import run_baseline

    shots = write_shotlist(workload, folder)
    preset = workload.preset
    built = build_engine(workload, shots, device=device, dtype=dtype, compile=compile, face_models=face_models,
                         note=note)
    plan, runtime, engine = built.plan, built.runtime, built.engine
    setup_seconds, build_seconds = built.setup_seconds, built.build_seconds
    sync = measure.synchronizer(engine.device)
    # "auto" is resolved once, before the warm-up, and both renders get that size: asked again after the
    # warm-up (memory cached on a GPU), the engine could answer differently and the warm-up would not
    # have warmed the timed batch's shapes.
    size = batch_size if isinstance(batch_size, int) else engine.suggest_batch_size(plan.jobs[0].request)
    common = {"preset": preset, "device": device, "dtype": runtime.dtype, "batch_size": size,
              "face_models": face_models, "compile": compile, "qa": qa}

    # One short batch first, so one-off costs (kernel selection, allocator growth, lazy imports) stay out.
    warm = load_shotlist(write_shotlist(workload, folder, "warmup.yaml", jobs=min(size, workload.jobs), steps=1))
    note(f"warm-up: {min(size, workload.jobs)} jobs, 1 step")
    started = time.perf_counter()
    render(warm, folder / "warmup", engine_factory=lambda *a: engine, **common)
    warmup_seconds = time.perf_counter() - started

    timed: list[_TimedRender] = []
    baselines: list[Any] = []
    baseline_requests = [job.request for job in plan.jobs][:baseline_jobs or workload.jobs]
    for repeat in range(repeats):
        suffix = "" if repeat == 0 else f"-{repeat + 1}"
        label = f" ({repeat + 1} of {repeats})" if repeats > 1 else ""
        note(f"timed run{label}: {workload.jobs} jobs, {workload.steps} steps, {workload.width}x{workload.height}")
        timed.append(timed_render(engine, shots, folder / f"out{suffix}", common, sync, workload.jobs))
        if baseline:
            note(f"baseline{label}: {len(baseline_requests)} stock pipeline calls at batch 1")
            baselines.append(run_baseline(engine, baseline_requests, folder / f"baseline{suffix}",
                                          sync, warmup=repeat == 0))
    # The figures of the median idcli run (by wall time); the ratio is the median of the pairs' ratios.
    middle = sorted(timed, key=lambda t: t.wall)[(len(timed) - 1) // 2]

    note("counting UNet FLOPs; measuring the matrix-product ceiling")
    flops_per_row = measure.unet_flops_per_row(engine.pipe.unet, middle.last_unet_call)
    ceiling = measure.matmul_ceiling(engine.device, engine.torch_dtype, sync)
    note("asking torch which attention kernel it picks for the UNet's and the VAE's shapes")
    latent_shape = (1, engine.latent_channels, workload.height // engine.vae_scale, workload.width // engine.vae_scale)
    sdpa = measure.sdpa_backends(engine.pipe.unet, middle.last_unet_call, engine.pipe.vae, latent_shape)

    profile_record = None
    if profile is not None:
        from .profile import PROFILE_JOBS, profile_render

        note(f"profiled render: {min(PROFILE_JOBS, workload.jobs)} jobs under torch.profiler into {profile}")
        profile_record = profile_render(engine, workload, folder, common, profile, sync)

    baseline_record = None
    notes = []
    if plan.model.random_weights:
        notes.append("random weights: the images are noise; the figures measure speed only")
    if baselines:
        run = sorted(baselines, key=lambda b: b.seconds)[(len(baselines) - 1) // 2]
        baseline_record = _baseline_record(run)
        if run.identity == "faceid":
            notes.append(f"baseline: stock {run.pipeline} called once per job at batch 1 with the same prompts, seeds, "
                         "steps, guidance and sampler; FaceID through ip_adapter_image_embeds and diffusers' "
                         "IPAdapterAttnProcessor2_0; each image saved as a PNG")
        else:
            notes.append(f"baseline: stock {run.pipeline}, text only (the engine has no FaceID adapter)")
        if run.jobs < workload.jobs:
            notes.append(f"baseline timed on the first {run.jobs} of the {workload.jobs} jobs (--baseline-jobs); "
                         "the ratio compares images per second")
        if workload.method == "dual-line":
            notes.append("baseline runs single-line FaceID: the stock pipelines have no dual-line method")
    if repeats > 1:
        notes.append(f"{repeats} repeats, idcli and baseline alternating; figures from the median run")
    if engine.compiled is not None and engine.compiled.fallback is not None:
        # The run went on eager (engine/compiled.py): figures labelled compiled would mislead.
        notes.append(f"--compile gave up ({engine.compiled.fallback}); the UNet ran uncompiled from then on, so "
                     "these figures are not a compiled UNet's")
    # Each pair's ratio as images per second (the baseline may have timed fewer jobs: --baseline-jobs).
    def ratio(t: _TimedRender, base: Any) -> float:
        return round((base.seconds / base.jobs) / (t.wall / workload.jobs), 4)

    repeat_records = [{"wall_seconds": round(t.wall, 4),
                       "baseline_wall_seconds": round(baselines[i].seconds, 4) if baselines else None,
                       "speedup_vs_baseline": ratio(t, baselines[i]) if baselines else None}
                      for i, t in enumerate(timed)]

    return BenchResult(
        command=command, date=datetime.now().astimezone().isoformat(timespec="seconds"),
        machine=measure.machine(engine.device), versions=measure.versions(), workload=workload.as_dict(),
        model=plan.model.label, random_weights=plan.model.random_weights, device=str(engine.device),
        dtype=runtime.dtype, compile=compile, batch_size=batch_size, batch_sizes=list(middle.report.batch_sizes),
        setup_seconds=setup_seconds, build_seconds=build_seconds, warmup_seconds=warmup_seconds,
        wall_seconds=middle.wall, before_engine_seconds=middle.before_engine, engine_seconds=middle.engine_seconds,
        commit_seconds=middle.report.commit_seconds,
        forwards=middle.forwards, unet_flops_per_row=flops_per_row, matmul_ceiling=ceiling.as_dict(),
        peak_memory_bytes=middle.peak, peak_memory_kind=middle.peak_kind, baseline=baseline_record, notes=notes,
        repeats=repeat_records, batch_size_chosen=size, decode_chunks=middle.decode_chunks, sdpa=sdpa,
        profile=profile_record)


@dataclass
class _TimedRender:
    """One timed idcli render of the bench's shot list."""

    wall: float
    before_engine: float  # from the start to the engine factory's call
    engine_seconds: float
    forwards: dict[str, Any]
    last_unet_call: Any
    report: Any
    peak: int
    peak_kind: str
    decode_chunks: list[int | None]


def timed_render(engine: Any, shots: Path, out: Path, common: dict[str, Any], sync: Callable[[], None],
                 jobs: int) -> _TimedRender:
    """One ``render()`` of the workload on ``engine`` under the forward timers: wall time, forwards, peak memory."""
    from ..run import render
    from ..shotlist import load_shotlist
    from . import measure

    counting = CountingEngine(engine)
    with measure.ForwardTimers(engine.pipe, sync) as timers:
        measure.reset_peak_memory(engine.device)
        sync()
        started = time.perf_counter()
        report = render(load_shotlist(shots), out, engine_factory=counting.factory, **common)
        sync()
        wall = time.perf_counter() - started
    peak, peak_kind = measure.peak_memory(engine.device)
    if report.rendered != jobs or report.failed:
        errors = sorted({j.error for j in report.jobs if j.error})
        raise BenchError(f"the timed render rendered {report.rendered} of {jobs} jobs"
                         + (f": {errors[0]}" if errors else ""))
    assert timers.last_unet_call is not None and counting.factory_at is not None
    assert report.commits == len(report.batch_sizes), "every rendered batch went through the commit queue"
    return _TimedRender(wall, counting.factory_at - started, counting.seconds, timers.time.as_dict(),
                        timers.last_unet_call, report, peak, peak_kind, counting.decode_chunks)


def _baseline_record(run: Any) -> dict[str, Any]:
    outside = max(0.0, run.seconds - run.forwards.total)
    return {"pipeline": run.pipeline, "identity": run.identity, "jobs": run.jobs, "batch_size": 1,
            "wall_seconds": round(run.seconds, 4), "images_per_second": round(run.jobs / run.seconds, 4),
            "seconds_per_image": round(run.seconds / run.jobs, 4), "forwards": run.forwards.as_dict(),
            "outside_forwards_seconds": round(outside, 4),
            "outside_forwards_share": round(outside / run.seconds, 4) if run.seconds else 0.0}
