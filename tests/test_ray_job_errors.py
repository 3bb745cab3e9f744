"""What a failed job's error says when the failure escapes a Ray worker's own code (docs/scale-out.md, "Faults"):
the report is where a pipeline engineer reads why, since Ray's own lines stay off the driver's stderr.

The render runs in a process of its own, on a local cluster it starts (as ``idcli render --executor ray`` does), with
tests/ on its workers' path for ray_engines. In the ``ray`` xdist group, as tests/test_ray_executor.py, so only one
Ray cluster runs at a time on the test machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import ROOT, cli_env

pytestmark = pytest.mark.xdist_group("ray")

SHOTS = """\
version: 1
project: ray
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: euler, takes: 1}
shots:
  - {id: s1, prompt: "a lighthouse in a storm"}
  - {id: s2, prompt: "a bar at night"}
  - {id: s3, prompt: "a beach at dawn"}
"""

SCRIPT = """\
import json, sys, idcli
from idcli.executors.ray import RayBackend
from ray_engines import short_engine
report = idcli.render(idcli.load_shotlist(sys.argv[1]), sys.argv[2], device='cpu', batch_size=2,
                      executor=RayBackend(workers=1, engine_factory=short_engine))
print(json.dumps([[job.shot_id, job.status, job.error] for job in report.jobs]))
"""


def test_a_job_failing_in_the_ray_workers_own_code_is_reported_with_its_error(write_shotlist, tmp_path: Path
                                                                              ) -> None:
    """An error raised in the worker outside the engine's render (here the worker pairing a batch's jobs with an
    engine's results, one short) reached the report as ``RayTaskError(ValueError): ESC[36mray::RenderWorker.render()
    ESC[39m (pid=N, ip=…)``: Ray's first line, in colour codes, and not why. Now it is the error itself, as for an
    error in the engine, and the worker it happened on."""
    path = write_shotlist(SHOTS)
    env = {**cli_env(tmp_path / "home"), "HOME": str(tmp_path / "home"), "RAY_AUTH_MODE": "disabled",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(path), str(tmp_path / "out")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = json.loads(done.stdout.splitlines()[-1])
    failed = [error for _, status, error in jobs if status == "failed"]
    assert len(failed) == 2 and [status for _, status, _ in jobs].count("rendered") == 1, jobs
    for error in failed:
        assert error.startswith("ValueError: zip() argument 2 is shorter than argument 1 (on the Ray worker "), error
        assert "\x1b" not in error and "RayTaskError" not in error, error
