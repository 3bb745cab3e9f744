"""A bench run's figures: one record (``as_dict`` for ``--json``) and a short readable report. No torch."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from ..option_words import Option, words


@dataclass
class BenchResult:
    command: str
    date: str
    machine: dict[str, Any]
    versions: dict[str, Any]
    workload: dict[str, Any]  # arch, preset, jobs, width, height, steps, guidance, sampler, method
    model: str  # the model's label, e.g. "bench-sdxl (random weights)"
    random_weights: bool
    device: str
    dtype: str
    compile: bool  # idcli's UNet through torch.compile (never the baseline's)
    batch_size: int | str  # as asked
    batch_sizes: list[int]  # as run
    setup_seconds: float  # first planning, selfies encoded into the identity cache (not timed)
    build_seconds: float  # building the engine (not timed)
    warmup_seconds: float  # one short batch before the timed run (not timed)
    wall_seconds: float  # the timed render: load, plan, render, encode, write
    before_engine_seconds: float  # loading, planning and scanning the output folder
    engine_seconds: float  # inside Engine.render
    # On the commit thread (PNG encoding, hashing, sidecars, atomic writes, journal lines): it overlaps the
    # rendering of the next batches, so it is not a part of the wall time's split below.
    commit_seconds: float
    forwards: dict[str, Any]  # ForwardTime.as_dict() of the timed render
    unet_flops_per_row: float
    matmul_ceiling: dict[str, Any]  # MatmulCeiling.as_dict()
    peak_memory_bytes: int
    peak_memory_kind: str
    baseline: dict[str, Any] | None  # see runner._baseline_record
    notes: list[str] = field(default_factory=list)
    # One entry per repeat (idcli and the baseline timed alternately): wall times and their ratio.
    repeats: list[dict[str, Any]] = field(default_factory=list)
    workdir: str = ""
    kept: bool = False
    batch_size_chosen: int | None = None  # the size both renders got ('auto' resolved once, before the warm-up)
    decode_chunks: list[int | None] = field(default_factory=list)  # images per VAE decode call, per batch run
    # Per distinct attention call of the UNet and the VAE: the shapes and the SDPA kernel torch picks for them
    # (measure.sdpa_backends).
    sdpa: list[dict[str, Any]] = field(default_factory=list)
    profile: dict[str, Any] | None = None  # --profile's record (bench/profile.py)

    # -- derived figures ---------------------------------------------------------------------------

    @property
    def jobs(self) -> int:
        return int(self.workload["jobs"])

    @property
    def images_per_second(self) -> float:
        return self.jobs / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def seconds_per_image(self) -> float:
        return self.wall_seconds / self.jobs

    @property
    def forward_seconds(self) -> float:
        return float(self.forwards["total_seconds"])

    @property
    def outside_seconds(self) -> float:
        """Wall time of the timed render spent outside model forwards."""
        return max(0.0, self.wall_seconds - self.forward_seconds)

    @property
    def outside_share(self) -> float:
        return min(1.0, self.outside_seconds / self.wall_seconds) if self.wall_seconds else 0.0

    @property
    def outside_breakdown(self) -> dict[str, float]:
        """Where the time outside forwards went: before the engine (loading, planning, folder scan), in the
        engine but not in a forward (noise, scheduler steps, guidance, identity rows, image to numpy),
        and after the last batch left the engine (the commits still queued then, the run's journal line,
        releasing the folder). The commit work that overlapped rendering is ``commit_seconds``."""
        return {"before_engine": self.before_engine_seconds,
                "engine_outside_forwards": max(0.0, self.engine_seconds - self.forward_seconds),
                "after_engine": max(0.0, self.wall_seconds - self.before_engine_seconds - self.engine_seconds)}

    @property
    def unet_flops_per_image(self) -> float:
        return self.unet_flops_per_row * int(self.forwards["unet_rows"]) / self.jobs

    @property
    def achieved_tflops(self) -> float:
        """UNet FLOPs over the whole wall time: the rate a user gets."""
        return self.unet_flops_per_image * self.jobs / self.wall_seconds / 1e12 if self.wall_seconds else 0.0

    @property
    def achieved_tflops_in_unet(self) -> float:
        """UNet FLOPs over the time inside UNet forwards: how well the UNet's kernels run."""
        unet_seconds = float(self.forwards["seconds"]["unet"])
        return self.unet_flops_per_image * self.jobs / unet_seconds / 1e12 if unet_seconds else 0.0

    @property
    def ceiling_share(self) -> float:
        ceiling = float(self.matmul_ceiling["tflops"])
        return self.achieved_tflops / ceiling if ceiling else 0.0

    @property
    def ceiling_share_in_unet(self) -> float:
        ceiling = float(self.matmul_ceiling["tflops"])
        return self.achieved_tflops_in_unet / ceiling if ceiling else 0.0

    @property
    def speedup(self) -> float | None:
        """idcli images/s divided by the baseline's: the median of the repeats' ratios."""
        ratios = self.speedups
        if ratios:
            return statistics.median(ratios)
        if not self.baseline or not self.baseline["images_per_second"]:
            return None
        return self.images_per_second / self.baseline["images_per_second"]

    @property
    def sdpa_backends(self) -> dict[str, list[str]]:
        """The SDPA kernels torch picks, per component (``unet``, ``vae``), each named once."""
        found: dict[str, list[str]] = {}
        for call in self.sdpa:
            names = found.setdefault(call["component"], [])
            if call["backend"] not in names:
                names.append(call["backend"])
        return found

    @property
    def speedups(self) -> list[float]:
        """Each repeat's idcli/baseline ratio, sorted (empty without a baseline)."""
        return sorted(r["speedup_vs_baseline"] for r in self.repeats if r.get("speedup_vs_baseline"))

    def as_dict(self) -> dict[str, Any]:
        r4 = lambda x: round(float(x), 4)  # noqa: E731
        return {
            "command": self.command, "date": self.date, "machine": self.machine, "versions": self.versions,
            "workload": self.workload, "model": self.model, "random_weights": self.random_weights,
            "device": self.device, "dtype": self.dtype, "compile": self.compile, "batch_size": self.batch_size,
            "batch_sizes": self.batch_sizes,
            "images_per_second": r4(self.images_per_second), "seconds_per_image": r4(self.seconds_per_image),
            "wall_seconds": r4(self.wall_seconds),
            "not_timed_seconds": {"setup": r4(self.setup_seconds), "build": r4(self.build_seconds),
                                  "warmup": r4(self.warmup_seconds)},
            "forwards": self.forwards,
            "outside_forwards": {"seconds": r4(self.outside_seconds), "share": r4(self.outside_share),
                                 "breakdown_seconds": {k: r4(v) for k, v in self.outside_breakdown.items()},
                                 "engine_seconds": r4(self.engine_seconds),
                                 "commit_thread_seconds": r4(self.commit_seconds)},
            "unet_flops_per_image": round(self.unet_flops_per_image),
            "unet_flops_per_row": round(self.unet_flops_per_row),
            "achieved_tflops": r4(self.achieved_tflops), "achieved_tflops_in_unet": r4(self.achieved_tflops_in_unet),
            "matmul_ceiling": self.matmul_ceiling, "ceiling_share": r4(self.ceiling_share),
            "ceiling_share_in_unet": r4(self.ceiling_share_in_unet),
            "peak_memory": {"bytes": self.peak_memory_bytes, "kind": self.peak_memory_kind},
            "batch_size_chosen": self.batch_size_chosen, "decode_chunks": self.decode_chunks,
            "sdpa_backends": self.sdpa_backends, "sdpa": self.sdpa, "profile": self.profile,
            "baseline": self.baseline,
            "speedup_vs_baseline": None if self.speedup is None else r4(self.speedup),
            "speedup_spread": [r4(self.speedups[0]), r4(self.speedups[-1])] if self.speedups else None,
            "repeats": self.repeats,
            "notes": self.notes, "workdir": self.workdir, "kept": self.kept,
        }


def _flop(n: float) -> str:
    return f"{n / 1e12:.3f} TFLOP" if n >= 1e12 else f"{n / 1e9:.3g} GFLOP"


def _gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


def format_report(result: BenchResult) -> str:
    """A short report for people: the figures that answer 'how fast, and where does the time go'."""
    w = result.workload
    f = result.forwards
    sec = f["seconds"]
    parts = result.outside_breakdown
    ceiling = result.matmul_ceiling
    lines = [
        f"idcli bench: {result.model} on {result.device} ({result.dtype}{', compiled' if result.compile else ''}), "
        f"{w['width']}x{w['height']}, "
        f"{w['steps']} steps, guidance {w['guidance']}, {w['sampler']}, method {w['method']}",
        f"  {result.jobs} jobs in {result.wall_seconds:.2f} s: {result.images_per_second:.3f} images/s, "
        f"{result.seconds_per_image:.3f} s/image; batches {_batches(result.batch_sizes)} "
        f"(not timed: build {result.build_seconds:.1f} s, warm-up {result.warmup_seconds:.1f} s)",
        f"  forwards {result.forward_seconds:.2f} s: UNet {sec['unet']:.2f} s ({f['calls']['unet']} calls, "
        f"{f['unet_rows']} rows), VAE {sec['vae']:.2f} s, text {sec['text']:.2f} s",
        f"  outside forwards {result.outside_seconds:.2f} s = {result.outside_share:.1%} of the wall time "
        f"(planning {parts['before_engine']:.2f} s, engine loop {parts['engine_outside_forwards']:.2f} s, "
        f"after the last batch {parts['after_engine']:.2f} s)",
        f"  commit thread (PNG encoding, hashing, sidecars, writes) {result.commit_seconds:.2f} s, overlapping "
        "rendering",
        f"  UNet {_flop(result.unet_flops_per_image)}/image; {result.achieved_tflops:.3g} TFLOP/s over the "
        f"wall time ({result.achieved_tflops_in_unet:.3g} inside UNet forwards); matmul ceiling "
        f"{ceiling['tflops']:.3g} TFLOP/s ({ceiling['dtype']}, n={ceiling['n']}) → {result.ceiling_share:.1%} "
        f"({result.ceiling_share_in_unet:.1%} inside UNet)",
        f"  peak memory {_gb(result.peak_memory_bytes)} ({result.peak_memory_kind}); batch size "
        f"{result.batch_size_chosen} ({result.batch_size}), decode chunks {_batches(_known(result.decode_chunks))}",
    ]
    if result.sdpa:
        lines.append("  attention kernels (SDPA): " + "; ".join(f"{component} {', '.join(names)}" for component, names
                                                               in result.sdpa_backends.items()))
    base = result.baseline
    if base:
        spread = result.speedups
        over = (f" (median of {len(spread)} alternating repeats, {spread[0]:.2f}-{spread[-1]:.2f}×)"
                if len(spread) > 1 else "")
        lines.append(f"  baseline ({base['pipeline']}, batch 1, {base['identity']}): {base['images_per_second']:.3f} "
                     f"images/s, outside forwards {base['outside_forwards_share']:.1%} → idcli "
                     f"{result.speedup:.2f}×{over}")
    else:
        # The report is text, not the record: it names the choice as it was made (the --json fields stay as they are).
        lines.append(words(("  baseline: not run (", Option("baseline", False, negated="--no-baseline"), ")")))
    m, v = result.machine, result.versions
    lines.append(f"  {m['gpu'] or m['cpu']}, {m['cpu_count']} CPUs; torch {v['torch']}, diffusers {v['diffusers']}, "
                 f"transformers {v['transformers']}; {result.date}")
    if result.kept:
        lines.append(f"  files kept in {result.workdir}")
    if result.profile:
        lines.append(_profile_line(result.profile))
    lines += [f"  note: {note}" for note in result.notes]
    return "\n".join(lines)


def _known(values: list[int | None]) -> list[int]:
    return [v for v in values if v is not None]


def _profile_line(profile: dict[str, Any]) -> str:
    basis = profile["time_basis"]
    share = "device_share" if basis == "device" else "host_share"
    parts = ", ".join(f"{name} {phase[share]:.1%}" for name, phase in profile["phases"].items())
    return (f"  profile ({profile['jobs']} jobs, {basis} time, in {profile['dir']}): {parts}"
            + (f"; device busy {profile['device_busy_share']:.1%} of the wall time" if basis == "device" else ""))


def _batches(sizes: list[int]) -> str:
    if not sizes:
        return "none"
    runs: list[list[int]] = []
    for size in sizes:
        if runs and runs[-1][0] == size:
            runs[-1][1] += 1
        else:
            runs.append([size, 1])
    return " + ".join(f"{size}×{count}" if count > 1 else str(size) for size, count in runs)
