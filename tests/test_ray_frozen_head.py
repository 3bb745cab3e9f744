"""A farm whose head stops answering mid-run without going away: its machine frozen, its ``gcs_server`` stopped with
``kill -STOP`` (docs/scale-out.md, "Faults").

A stopped process's listening socket still accepts TCP connections (the kernel completes them), so a watch that only
connects saw the head answer, and the driver's reads of Ray's actor table had no timeout: the run hung with the output
folder locked (193 s until killed on the farm). Each test runs ``idcli render --executor ray`` against a one-CPU
cluster of its own (tests/ray_clusters.py), stops its GCS with SIGSTOP once the first image is committed, and lets it go
on with SIGCONT before the cluster is stopped. In the ``ray`` xdist group, as tests/test_ray_executor.py, so only one
Ray cluster runs at a time on the test machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import assert_nothing_partial, cli_env
from ray_clusters import FARM_SHOTS as SHOTS
from ray_clusters import own_cluster, processes_in_group

pytestmark = pytest.mark.xdist_group("ray")

# How long the driver is given to end once the head is stopped: a hang (the run before 2026-12-02) fails the test here
# instead of holding the suite.
EXIT_BOUND_SECONDS = 90


@contextlib.contextmanager
def _render_on(path: Path, out: Path, env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], int, str]]:
    """``idcli render --quiet --json`` on a one-worker cluster of its own, once its first image is committed: yields the
    driver, the head's ``gcs_server`` pid and the cluster's address. The GCS is let go on (SIGCONT) and the driver
    killed, if still running, on the way out, before the cluster is stopped."""
    with own_cluster(env) as (head, address):
        gcs = [pid for pid, name in processes_in_group(head.pid).items() if name.startswith("gcs_server")]
        assert len(gcs) == 1, processes_in_group(head.pid)
        driver = subprocess.Popen([sys.executable, "-m", "idcli", "render", str(path), "--out", str(out), "--device",
                                   "cpu", "--batch-size", "1", "--executor", "ray", "--ray-address", address,
                                   "--workers", "1", "--quiet", "--json"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while not list(out.glob("*/*.json")):
                assert driver.poll() is None, driver.communicate()
                assert time.monotonic() < deadline, "the Ray run committed nothing in 120 s"
                time.sleep(0.05)
            yield driver, gcs[0], address
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(gcs[0], signal.SIGCONT)
            if driver.poll() is None:
                driver.kill()
                driver.wait()


def test_a_head_whose_gcs_stops_answering_mid_run_is_exit_4_with_what_was_committed_kept(write_shotlist,
                                                                                          tmp_path: Path) -> None:
    """The head's GCS stopped (SIGSTOP) while the driver waits on a batch, and never let go on during the run: the
    run hung (still running when killed here, at 90 s), the output folder locked. Now: exit 4, "the Ray cluster at ADDR
    went away", no job failed, the images committed kept and counted, stderr idcli's one line."""
    path, out = write_shotlist(SHOTS), tmp_path / "out"
    env = {**cli_env(tmp_path / "home"), "RAY_AUTH_MODE": "disabled"}
    with _render_on(path, out, env) as (driver, gcs, address):
        os.kill(gcs, signal.SIGSTOP)
        try:
            stdout, stderr = driver.communicate(timeout=EXIT_BOUND_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the driver was still running {EXIT_BOUND_SECONDS} s after the head's GCS was stopped")
    assert driver.returncode == 4, stderr[-2000:]
    assert stderr.splitlines() == [
        f"idcli: error: the Ray cluster at {address} went away (its head no longer answers); the images committed so "
        "far are kept: run again to resume"], stderr
    document = json.loads(stdout)
    assert document["exit_code"] == 4 and document["counts"]["failed"] == 0, document["counts"]
    committed = list(out.glob("*/*.json"))
    assert 1 <= len(committed) < 36 and document["counts"]["rendered"] == len(committed), document["counts"]
    assert_nothing_partial(out, temporaries_allowed=True)


def test_a_head_paused_for_less_than_the_grace_is_no_went_away(write_shotlist, tmp_path: Path) -> None:
    """The head's GCS stopped for 2 s, then let go on (SIGCONT): shorter than the watch's grace (3 unanswered checks
    2 s apart), so the run is not stopped: it renders every job, exit 0, and says nothing of it."""
    from idcli.executors.ray_head import HEAD_CHECK_SECONDS, HEAD_MISSES

    pause = 2.0
    assert pause < HEAD_CHECK_SECONDS * HEAD_MISSES
    path, out = write_shotlist(SHOTS), tmp_path / "out"
    env = {**cli_env(tmp_path / "home"), "RAY_AUTH_MODE": "disabled"}
    with _render_on(path, out, env) as (driver, gcs, _):
        os.kill(gcs, signal.SIGSTOP)
        time.sleep(pause)
        os.kill(gcs, signal.SIGCONT)
        try:
            stdout, stderr = driver.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            pytest.fail("the driver was still running 240 s after the head's GCS was let go on")
    assert driver.returncode == 0, stderr[-2000:]
    assert stderr == "", stderr
    document = json.loads(stdout)
    assert document["counts"]["rendered"] == 36 and document["counts"]["failed"] == 0, document["counts"]
    assert len(list(out.glob("*/*.json"))) == 36
