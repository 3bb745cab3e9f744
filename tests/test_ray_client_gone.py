"""A Ray Client head (``--ray-address ray://HOST:PORT``) that goes away mid-run (docs/scale-out.md, "Faults").

The test runs ``idcli render --executor ray`` through the Ray Client server of a cluster of its own
(tests/ray_clusters.py), stopped as ``ray stop`` stops it. In the ``ray`` xdist group, as tests/test_ray_executor.py,
so only one Ray cluster runs at a time on the test machine.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import assert_nothing_partial, cli_env
from ray_clusters import FARM_SHOTS as SHOTS
from ray_clusters import own_cluster, ray_stop

# Slow (run with -m slow): about 45 s, and Ray Client's server fails to start a driver's session now and then on two
# shared cores (grpcio aborting in its fork; the test tries once more, and a second such failure was seen once in five
# runs): Ray's start-up, not idcli's, so it must not decide the default suite.
pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, head: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert head.poll() is None and time.monotonic() < deadline, "the Ray Client server did not come up"
            time.sleep(0.2)


def test_a_ray_client_head_stopped_mid_run_is_exit_4_with_what_was_committed_kept(write_shotlist, tmp_path: Path
                                                                                 ) -> None:
    """`ray stop` on the head while a render through Ray Client waits on a batch: Ray Client tried its data channel
    again for 30 s and gave the connection up; the backend's clean-up then called ``ray.kill``, which, Ray no longer
    initialised, ran ``ray.init()``: it looked for the last head started on this machine (the stopped one) and retried
    it for ever, a ``Failed to connect to GCS`` line every few seconds, the output folder locked (still running after
    200 s). Now: exit 4 naming the ray:// address, the images committed kept and counted, no job failed, and stderr
    is idcli's one line (Ray Client's own "Encountered connection issues in the data channel" warnings not printed)."""
    path, out = write_shotlist(SHOTS), tmp_path / "out"
    env = {**cli_env(tmp_path / "home"), "RAY_AUTH_MODE": "disabled"}
    client_port = _free_port()
    address = f"ray://127.0.0.1:{client_port}"
    argv = [sys.executable, "-m", "idcli", "render", str(path), "--out", str(out), "--device", "cpu", "--batch-size",
            "1", "--executor", "ray", "--ray-address", address, "--workers", "1", "--quiet", "--json"]
    with own_cluster(env, "--ray-client-server-port", str(client_port)) as (head, _):
        _wait_for_port(client_port, head)
        driver = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 150
            while not list(out.glob("*/*.json")):
                if driver.poll() is not None and "Initialization failure from server" in driver.communicate()[1]:
                    # Ray's client server could not start this driver's session (on the 2-core test machine, 3 tries
                    # in 11: grpcio aborting in the server's fork, its log says): Ray's, not the run's. Once more.
                    driver = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                assert driver.poll() is None, driver.communicate()
                assert time.monotonic() < deadline, "the Ray Client run committed nothing in 150 s"
                time.sleep(0.05)
            ray_stop(head.pid)
            stopped = time.monotonic()
            stdout, stderr = driver.communicate(timeout=150)
            waited = time.monotonic() - stopped
        finally:
            if driver.poll() is None:
                driver.kill()
                driver.wait()
    assert driver.returncode == 4, stderr[-3000:]
    assert waited < 90, f"the driver stopped {waited:.0f} s after the head"
    assert stderr.splitlines() == [
        f"idcli: error: the Ray cluster at {address} went away (its head no longer answers); the images committed so "
        "far are kept: run again to resume"], stderr
    document = json.loads(stdout)
    assert document["exit_code"] == 4 and document["counts"]["failed"] == 0, document["counts"]
    committed = list(out.glob("*/*.json"))
    assert 1 <= len(committed) < 36 and document["counts"]["rendered"] == len(committed), document["counts"]
    assert_nothing_partial(out, temporaries_allowed=True)
