"""tools/gpu_bench.sh keeps to its time budget (issue 16's H200 run: 15 minutes of device time in all, the script
under 8 of them): each workload is cut to what is left of the budget, and one that would start with too
little left is skipped and named, so the summary and the JSON already written still come back."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


FAKE = """\
import json, pathlib, sys, time

args = sys.argv[3:]  # after "-m idcli": "bench", then the step's options
with open(pathlib.Path(sys.argv[0]).with_name("python.calls"), "a") as calls:
    calls.write(" ".join(args) + "\\n")
time.sleep({seconds})
if "--check-batch-invariance" in args:
    print(json.dumps({{"check": "batch-invariance", "batch": 8, "dtype": "bfloat16", "max_abs_diff": 3,
                      "mean_abs_diff": 0.125, "differing_share": 0.05}}))
    sys.exit(0)
record = {{"images_per_second": 1.0, "speedup_vs_baseline": None, "outside_forwards": {{"share": 0.01}},
          "ceiling_share": 0.5, "wall_seconds": 1.0}}
if "--profile" in args:
    folder = pathlib.Path(args[args.index("--profile") + 1])
    folder.mkdir()
    for name in ("top_ops.json", "top_ops.txt", "trace.json.gz"):
        (folder / name).write_text("x")
    phases = {{k: {{"device_share": 0.2, "host_share": 0.1}} for k in ("unet", "vae_decode", "outside")}}
    record["profile"] = {{"jobs": 2, "time_basis": "device", "phases": phases, "device_busy_share": 0.9,
                          "trace": "trace.json.gz"}}
    record["sdpa_backends"] = {{"unet": ["flash"], "vae": ["efficient"]}}
print(json.dumps(record))
"""


def _fake_python(tmp_path: Path, seconds: float) -> Path:
    """An interpreter for the script: ``-m idcli bench ...`` takes ``seconds``, notes its arguments in
    ``python.calls`` and prints a result (a profile's folder made, a batch-invariance check's record); anything
    else (the summary) runs in this Python."""
    (tmp_path / "fake_bench.py").write_text(FAKE.format(seconds=seconds))
    fake = tmp_path / "python"
    fake.write_text(f"""#!/usr/bin/env bash
if [ "$1" = "-m" ]; then
  exec {sys.executable} {tmp_path / "fake_bench.py"} "$@"
fi
exec {sys.executable} "$@"
""")
    fake.chmod(0o755)
    return fake


def _run(tmp_path: Path, budget: int, seconds: float, timeout: int = 60, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "GPU_BENCH_SMOKE": "1", "GPU_BENCH_BUDGET": str(budget),
                   "PYTHON": str(_fake_python(tmp_path, seconds)), "OUT": str(tmp_path / "out"), **env}
    return subprocess.run(["bash", str(ROOT / "tools" / "gpu_bench.sh")], env=environment, capture_output=True,
                          text=True, timeout=timeout)


def test_workloads_stop_at_the_scripts_budget(tmp_path: Path) -> None:
    done = _run(tmp_path, budget=3, seconds=2)
    assert done.returncode == 0, done.stderr
    assert "sdxl_single done" in done.stdout
    # The first workload used the budget: the others are named as skipped, not started and killed.
    assert "sd15_single skipped" in done.stdout and "sdxl_dual skipped" in done.stdout
    assert "profile_sdxl skipped" in done.stdout and "batch_invariance skipped" in done.stdout
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| sdxl_single | 1.000 img/s |" in summary and "| sd15_single | not measured |" in summary
    assert "| profile_sdxl | not measured |" in summary and "| batch_invariance | not measured |" in summary


def test_a_skipped_workload_is_not_reported_with_an_earlier_runs_figures(tmp_path: Path) -> None:
    # OUT defaults to the checkout's gpu-bench-out, kept between runs: a workload skipped this time must read
    # "not measured" in the summary, not the figures its JSON held from the run before.
    out = tmp_path / "out"
    out.mkdir()
    for name in ("sdxl_single", "sd15_single", "sdxl_dual"):
        (out / f"{name}.json").write_text('{"images_per_second": 9.0, "speedup_vs_baseline": 2.0, '
                                          '"outside_forwards": {"share": 0.5}, "ceiling_share": 0.9, '
                                          '"wall_seconds": 9.0}')
    done = _run(tmp_path, budget=3, seconds=2)
    assert done.returncode == 0, done.stderr
    assert "sd15_single skipped" in done.stdout and "sdxl_dual skipped" in done.stdout
    summary = (out / "summary.md").read_text()
    assert "| sd15_single | not measured |" in summary and "| sdxl_dual | not measured |" in summary
    assert "| sdxl_single | 1.000 img/s |" in summary  # this run's figure
    assert "dual/single" not in summary


def test_a_workload_is_cut_to_what_is_left_of_the_budget(tmp_path: Path) -> None:
    # A workload that would outrun the budget is stopped at it (not at its own LIMIT, 300 s in smoke runs): the
    # summary is still written, the workload reads "not measured" and the others are skipped.
    done = _run(tmp_path, budget=4, seconds=30, timeout=25)
    assert done.returncode == 0, done.stderr
    assert "sdxl_single FAILED" in done.stdout
    assert "sd15_single skipped" in done.stdout and "sdxl_dual skipped" in done.stdout
    assert "| sdxl_single | not measured |" in (tmp_path / "out" / "summary.md").read_text()


def test_the_profile_and_the_batch_check_run_after_the_workloads(tmp_path: Path) -> None:
    done = _run(tmp_path, budget=120, seconds=0)
    assert done.returncode == 0, done.stderr
    for name in ("sdxl_single", "sd15_single", "sdxl_dual", "profile_sdxl", "batch_invariance"):
        assert f"{name} done" in done.stdout
    calls = (tmp_path / "python.calls").read_text().splitlines()
    out = tmp_path / "out"
    assert f"--method single --no-baseline --no-qa --profile {out / 'profile_sdxl'} --device cpu --json" in calls[3]
    assert calls[3].startswith("bench --arch tiny-sdxl --jobs 2")
    # SDXL's baseline is timed on fewer jobs than idcli (its images/s; docs/performance.md)
    assert "--baseline-jobs 1 --method single --no-qa" in calls[0] and "--baseline-jobs" not in calls[1]
    assert calls[4].startswith("bench --arch tiny-sd --jobs 8 ")
    assert "--dtype bfloat16 --check-batch-invariance" in calls[4]
    summary = (out / "summary.md").read_text()
    assert ("| profile_sdxl (2 jobs) | device time: unet 20.0%, vae_decode 20.0%, outside 20.0%; device busy 90.0%"
            in summary)
    assert "SDPA unet flash; vae efficient; trace trace.json.gz |" in summary
    assert "| batch_invariance (batch 8 vs alone, bfloat16) | max 3 8-bit levels, mean 0.1250" in summary
    # What the device tool brings back: at most 8 files, none more than 2 folders down. The logs and the
    # profile's tables are in one archive; the JSON, the summary and the trace are loose.
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["batch_invariance.json", "files.tar.gz", "profile_sdxl.json", "profile_sdxl/trace.json.gz",
                     "sd15_single.json", "sdxl_dual.json", "sdxl_single.json", "summary.md"]
    with tarfile.open(out / "files.tar.gz") as archive:
        assert sorted(archive.getnames()) == ["batch_invariance.log", "profile_sdxl.log",
                                              "profile_sdxl/top_ops.json", "profile_sdxl/top_ops.txt",
                                              "sd15_single.log", "sdxl_dual.log", "sdxl_single.log"]


def test_the_profile_is_skipped_and_named_when_under_its_minimum_is_left(tmp_path: Path) -> None:
    # The profile needs more time than the other steps (GPU_BENCH_PROFILE_MIN_START, 60 s on the GPU): with less
    # left it is skipped, the batch check after it still runs, and an earlier run's profile is not reported.
    (tmp_path / "out" / "profile_sdxl").mkdir(parents=True)
    (tmp_path / "out" / "profile_sdxl.json").write_text('{"profile": {"jobs": 9}}')
    done = _run(tmp_path, budget=120, seconds=0, GPU_BENCH_PROFILE_MIN_START="1000")
    assert done.returncode == 0, done.stderr
    assert "sdxl_dual done" in done.stdout and "profile_sdxl skipped" in done.stdout
    assert "batch_invariance done" in done.stdout
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| profile_sdxl | not measured |" in summary and "| batch_invariance (batch 8" in summary
    assert not (tmp_path / "out" / "profile_sdxl").exists()
