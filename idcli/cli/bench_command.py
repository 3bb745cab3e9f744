"""``idcli bench``: throughput through the render path on real-size random-weight models, against a baseline.

Owns the command line of the benchmark only: its options, the equivalent explicit command it records with the
figures, and printing; the measuring itself is idcli/bench/.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from .options import DeviceOpt, JsonOpt, NoQaOpt, app, parse_batch_size, written_folder
from .output import emit, emit_json, guarded, ok


@app.command()
def bench(
    arch: Annotated[str, typer.Option("--arch", help="sd15 or sdxl (the published architectures with random "
                                      "weights), tiny-sd or tiny-sdxl [default: sd15 on a GPU, tiny-sd on a CPU].",
                                      show_default=False)] = "auto",
    jobs: Annotated[int, typer.Option("--jobs", "-n", help="Jobs (images) in the timed run.")] = 64,
    steps: Annotated[int | None, typer.Option("--steps", help="Denoising steps [default: the preset's: sd15 25, "
                                              "sdxl 30, tiny 12].", show_default=False)] = None,
    size: Annotated[str | None, typer.Option("--size", help="WIDTHxHEIGHT [default: the preset's: sd15 512x512, "
                                             "sdxl 1024x1024, tiny 256x256].", show_default=False)] = None,
    method: Annotated[str, typer.Option("--method", help="Identity method: single or dual-line.")] = "single",
    batch_size: Annotated[str, typer.Option("--batch-size", "-b", help="Images per batch, or 'auto'.")] = "auto",
    device: DeviceOpt = "auto",
    dtype: Annotated[str, typer.Option("--dtype", help="auto, float32, float16 or bfloat16 [default: auto: "
                                       "bfloat16 on a GPU, float32 on a CPU].", show_default=False)] = "auto",
    baseline: Annotated[bool, typer.Option("--baseline/--no-baseline", help="Also time the naive baseline: one stock "
                                           "diffusers pipeline call per job at batch 1.")] = True,
    baseline_jobs: Annotated[int | None, typer.Option("--baseline-jobs", min=1,
                                                      help="Time the baseline on the first N jobs only; the ratio "
                                                      "compares images per second [default: all --jobs].",
                                                      show_default=False)] = None,
    compile_unet: Annotated[bool, typer.Option("--compile", help="torch.compile idcli's UNet, as render --compile "
                                               "(the baseline stays uncompiled).")] = False,
    no_qa: NoQaOpt = False,
    keep: Annotated[Path | None, typer.Option("--keep", parser=written_folder,
                                              help="Keep the shot list and images in this new folder "
                                              "[default: a temporary folder, removed].", show_default=False)] = None,
    repeats: Annotated[int, typer.Option("--repeats", help="Time idcli and the baseline this many times, "
                                         "alternately (A B A B ...); report medians and the ratio's spread.",
                                         min=1)] = 1,
    profile: Annotated[Path | None, typer.Option("--profile", parser=written_folder,
                                                 help="After the timed run, render a few more jobs under "
                                                 "torch.profiler and write the top operations, the time by phase "
                                                 "and a small trace into this new folder.",
                                                 show_default=False)] = None,
    check_batch_invariance: Annotated[bool, typer.Option("--check-batch-invariance",
                                                         help="Instead of timing: render --jobs jobs as one batch "
                                                         "and each alone, and report how far their pixels "
                                                         "differ.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Measure throughput through the render path on real-size random-weight models, against a naive baseline."""
    from ..bench import check_batch_invariance as check_invariance
    from ..bench import format_invariance, format_report, parse_size, run_bench
    from ..bench.invariance import check_invariance_jobs
    from ..bench.runner import check_dtype
    from ..bench.workload import check_workload
    from ..errors import InputError

    def body() -> None:
        shape = parse_size(size) if size is not None else None
        size_batch = parse_batch_size(batch_size)
        # The values and options first: resolving the default arch imports torch (seconds), and a typo needs no
        # GPU to be refused.
        check_workload(jobs, steps, shape, method)
        check_dtype(dtype)
        if baseline_jobs is not None and not baseline:  # nothing to time on fewer jobs: said, not ignored
            raise InputError(f"--baseline-jobs {baseline_jobs}: --baseline-jobs goes with the baseline (drop "
                             "--no-baseline, or --baseline-jobs)")
        if check_batch_invariance:
            # One batch of --jobs against each job alone: options about timing have nothing to act on.
            given = [name for name, used in (("--batch-size", batch_size != "auto"), ("--repeats", repeats > 1),
                                             ("--keep", keep is not None), ("--profile", profile is not None),
                                             ("--baseline-jobs", baseline_jobs is not None)) if used]
            if given:
                raise InputError(f"--check-batch-invariance renders one batch of --jobs and each job alone: "
                                 f"{', '.join(given)} does not apply")
            check_invariance_jobs(jobs)  # 2 or more: a batch to compare with each job alone
        chosen = arch
        if chosen == "auto":
            from ..runtime import resolve_runtime

            chosen = "sd15" if resolve_runtime(device).device.startswith("cuda") else "tiny-sd"
        # The command as an equivalent, explicit line (recorded with the figures).
        line = ["idcli", "bench", "--arch", chosen, "--jobs", str(jobs), *(["--steps", str(steps)] if steps else []),
                *(["--size", size] if size else []), "--method", method, "--batch-size", batch_size,
                "--device", device, *(["--dtype", dtype] if dtype != "auto" else []),
                *([] if baseline else ["--no-baseline"]),
                *(["--baseline-jobs", str(baseline_jobs)] if baseline_jobs and baseline else []),
                *(["--compile"] if compile_unet else []),
                *(["--keep", str(keep)] if keep else []), *(["--no-qa"] if no_qa else []),
                *(["--repeats", str(repeats)] if repeats > 1 else []),
                *(["--profile", str(profile)] if profile else []),
                *(["--check-batch-invariance"] if check_batch_invariance else []), *(["--json"] if as_json else [])]

        def note(text: str) -> None:
            print(f"idcli bench: {text}", file=sys.stderr)

        if check_batch_invariance:
            record = check_invariance(chosen, jobs=jobs, steps=steps, size=shape, method=method, device=device,
                                      dtype=dtype, compile=compile_unet, command=shlex.join(line), on_note=note)
            if as_json:
                emit_json(ok(**record))
            else:
                emit(format_invariance(record))
            return
        result = run_bench(chosen, jobs=jobs, steps=steps, size=shape, method=method, batch_size=size_batch,
                           device=device, baseline=baseline, compile=compile_unet, keep=keep, repeats=repeats,
                           command=shlex.join(line), on_note=note, qa=not no_qa, dtype=dtype, profile=profile,
                           baseline_jobs=baseline_jobs if baseline else None)
        if as_json:
            emit_json(ok(**result.as_dict()))
        else:
            emit(format_report(result))

    guarded(body, as_json)

