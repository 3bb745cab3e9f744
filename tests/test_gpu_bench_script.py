"""tools/gpu_bench.sh keeps to its time budget (issue 16's H200 run: 15 minutes of device time in all, the script
under 8 of them): each workload is cut to what is left of the budget, and one that would start with too
little left is skipped and named, so the summary and the JSON already written still come back."""

from __future__ import annotations

import os
import subprocess
import sys
import time
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
    started = time.monotonic()
    done = subprocess.run(["bash", str(ROOT / "tools" / "gpu_bench.sh")], env=env, capture_output=True, text=True,
                          timeout=60)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert "sdxl_single done" in done.stdout
    # The first workload used the budget: the others are named as skipped, not started and killed.
    assert "sd15_single skipped" in done.stdout and "sdxl_dual skipped" in done.stdout
    assert elapsed < 2 * 3 + 5
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| sdxl_single | 1.000 img/s |" in summary and "| sd15_single | not measured |" in summary
