"""tools/gpu_bench.sh keeps to its time budget (issue 16's H200 run: 15 minutes of device time in all, the script
under 8 of them): each workload is cut to what is left of the budget, and one that would start with too
little left is skipped and named, so the summary and the JSON already written still come back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _fake_python(tmp_path: Path, seconds: float) -> Path:
    """An interpreter for the script: ``-m idcli bench`` takes ``seconds`` and writes a result; anything else
    (the summary) runs in this Python."""
    fake = tmp_path / "python"
    fake.write_text(f"""#!/usr/bin/env bash
if [ "$1" = "-m" ]; then
  sleep {seconds}
  echo '{{"images_per_second": 1.0, "speedup_vs_baseline": null, "outside_forwards": {{"share": 0.01}},
        "ceiling_share": 0.5, "wall_seconds": 1.0}}'
  exit 0
fi
exec {sys.executable} "$@"
""")
    fake.chmod(0o755)
    return fake


def test_workloads_stop_at_the_scripts_budget(tmp_path: Path) -> None:
    env = {**os.environ, "GPU_BENCH_SMOKE": "1", "GPU_BENCH_BUDGET": "3", "PYTHON": str(_fake_python(tmp_path, 2)),
           "OUT": str(tmp_path / "out")}
    done = subprocess.run(["bash", str(ROOT / "tools" / "gpu_bench.sh")], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "sdxl_single done" in done.stdout
    # The first workload used the budget: the others are named as skipped, not started and killed.
    assert "sd15_single skipped" in done.stdout and "sdxl_dual skipped" in done.stdout
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| sdxl_single | 1.000 img/s |" in summary and "| sd15_single | not measured |" in summary


def test_a_skipped_workload_is_not_reported_with_an_earlier_runs_figures(tmp_path: Path) -> None:
    # OUT defaults to the checkout's gpu-bench-out, kept between runs: a workload skipped this time must read
    # "not measured" in the summary, not the figures its JSON held from the run before.
    out = tmp_path / "out"
    out.mkdir()
    for name in ("sdxl_single", "sd15_single", "sdxl_dual"):
        (out / f"{name}.json").write_text('{"images_per_second": 9.0, "speedup_vs_baseline": 2.0, '
                                          '"outside_forwards": {"share": 0.5}, "ceiling_share": 0.9, '
                                          '"wall_seconds": 9.0}')
    env = {**os.environ, "GPU_BENCH_SMOKE": "1", "GPU_BENCH_BUDGET": "3", "PYTHON": str(_fake_python(tmp_path, 2)),
           "OUT": str(out)}
    done = subprocess.run(["bash", str(ROOT / "tools" / "gpu_bench.sh")], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "sd15_single skipped" in done.stdout and "sdxl_dual skipped" in done.stdout
    summary = (out / "summary.md").read_text()
    assert "| sd15_single | not measured |" in summary and "| sdxl_dual | not measured |" in summary
    assert "| sdxl_single | 1.000 img/s |" in summary  # this run's figure
    assert "dual/single" not in summary


def test_a_workload_is_cut_to_what_is_left_of_the_budget(tmp_path: Path) -> None:
    # A workload that would outrun the budget is stopped at it (not at its own LIMIT, 300 s in smoke runs): the
    # summary is still written, the workload reads "not measured" and the others are skipped.
    env = {**os.environ, "GPU_BENCH_SMOKE": "1", "GPU_BENCH_BUDGET": "4", "PYTHON": str(_fake_python(tmp_path, 30)),
           "OUT": str(tmp_path / "out")}
    done = subprocess.run(["bash", str(ROOT / "tools" / "gpu_bench.sh")], env=env, capture_output=True, text=True,
                          timeout=25)
    assert done.returncode == 0, done.stderr
    assert "sdxl_single FAILED" in done.stdout
    assert "sd15_single skipped" in done.stdout and "sdxl_dual skipped" in done.stdout
    assert "| sdxl_single | not measured |" in (tmp_path / "out" / "summary.md").read_text()
