"""A relative IDCLI_HOME under ``--executor ray``: the workers use the cache the driver uses (idcli/paths.py).

The driver makes a relative IDCLI_HOME absolute once, against the folder it first read it in; the local cluster a
run starts gives its workers the driver's environment (the same relative value) but the folder the cluster started
in. Run in a child process: it starts a cluster of its own there, and changes folder as a host would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import ROOT, cli_env

pytest.importorskip("ray")

# With the other Ray tests in one pytest-xdist worker: two clusters at once would split the machine's CPUs.
pytestmark = pytest.mark.xdist_group("ray")

SHOTS = """\
version: 1
project: home
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: euler, takes: 1}
characters:
  mara: {selfies: [%(selfie)s]}
shots:
  - {id: s1, prompt: "{mara} on a pier"}
"""

# The host reads IDCLI_HOME in its own folder, then moves on (a per-shot os.chdir) before the render starts
# its cluster, which starts in the folder the host is in then.
DRIVER = """\
import os, sys
import ray
import idcli
from idcli.executors.ray import RayBackend
from idcli.paths import state_dir

shots, out, elsewhere = sys.argv[1:4]
state_dir()
os.chdir(elsewhere)
ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
result = idcli.render(idcli.load_shotlist(shots), out, device="cpu", executor=RayBackend(workers=1))
ray.shutdown()
print(result.rendered, result.failed)
"""


def test_a_relative_idcli_home_means_the_drivers_folder_in_the_workers_too(tmp_path: Path) -> None:
    driver, elsewhere = tmp_path / "driver", tmp_path / "elsewhere"
    driver.mkdir()
    elsewhere.mkdir()
    shots = tmp_path / "shots.yaml"
    shots.write_text(SHOTS % {"selfie": ROOT / "recipes" / "selfies" / "mara_1.jpg"}, "utf-8")
    env = cli_env()
    env.update({"IDCLI_HOME": "home", "RAY_AUTH_MODE": "disabled"})
    done = subprocess.run([sys.executable, "-c", DRIVER, str(shots), str(tmp_path / "out"), str(elsewhere)],
                          cwd=driver, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and done.stdout.split() == ["1", "0"], done.stdout + done.stderr[-3000:]
    # The worker wrote the tiny preset's random FaceID adapter into the driver's cache, and no cache elsewhere.
    assert (driver / "home" / "adapters" / "tiny-sd").is_dir()
    assert not (elsewhere / "home").exists()
