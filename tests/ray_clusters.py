"""A Ray cluster of a test's own (``ray start --head``), and stopping it the way ``ray stop`` does, for the tests that
run ``idcli render --executor ray`` against a farm's head (tests/test_ray_farm.py, tests/test_ray_stop_stderr.py,
tests/test_ray_frozen_head.py), and such a render started until its first image is committed.

A plain module like cli_helpers.py. Each cluster is one CPU on its own port, in its own process group, so a test stops
only that cluster: ``ray stop`` itself would stop every Ray cluster on the machine, the other Ray tests' too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["FARM_SHOTS", "own_cluster", "processes_in_group", "ray_stop"]

# Three shots of twelve takes at 64x64: a run long enough to stop mid-way, short enough for two shared cores.
FARM_SHOTS = """\
version: 1
project: farm
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: euler, takes: 12}
shots:
  - {id: s1, prompt: "a lighthouse in a storm"}
  - {id: s2, prompt: "a bar at night"}
  - {id: s3, prompt: "a beach at dawn"}
"""


@contextlib.contextmanager
def own_cluster(env: dict[str, str], *extra: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A one-CPU Ray head of this test's own, in its own process group; yields it and its ``HOST:PORT``. ``extra``:
    more ``ray start`` options (``--ray-client-server-port PORT``)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ray_cli = str(Path(sys.executable).with_name("ray"))
    head = subprocess.Popen([ray_cli, "start", "--head", "--block", "--num-cpus", "1", "--port", str(port),
                             "--node-ip-address", "127.0.0.1", "--include-dashboard=false",
                             "--disable-usage-stats", *extra], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:  # `ray start --block` answers once the head is up
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert head.poll() is None and time.monotonic() < deadline, "ray start --head did not come up"
                time.sleep(0.2)
        yield head, f"127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        head.wait()


def processes_in_group(group: int) -> dict[int, str]:
    """pid -> name of the processes in process group ``group`` (Linux /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError):
                stat = (entry / "stat").read_text()
                name, fields = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
                if int(fields[2]) == group:
                    found[int(entry.name)] = name
    return found


def ray_stop(group: int) -> None:
    """What `ray stop` does (Ray 2.60, ``ray/scripts/scripts.py``), to one cluster only: SIGTERM in three rounds, each
    waited for (up to a third of its 16 s grace; 5 s here): the raylet, which ends its workers; then every other Ray
    process (the autoscaler's monitor, which publishes "The autoscaler failed ... Terminated with signal 15" and its
    stack to every driver as it goes, the log monitor, the Ray Client server, the agents); the head's GCS last."""

    def stop(pids: list[int]) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while any(pid in processes_in_group(group) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)

    found = processes_in_group(group)
    raylets = [pid for pid, name in found.items() if name == "raylet"]
    assert raylets, found
    stop(raylets)
    gcs = [pid for pid, name in processes_in_group(group).items() if name.startswith("gcs_server")]
    stop([pid for pid in processes_in_group(group) if pid not in gcs and pid != group])  # not `ray start --block`
    stop(gcs)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)


def render_until_first_commit(path: Path, out: Path, address: str, env: dict[str, str],
                              options: tuple[str, ...] = ("--quiet", "--json")) -> subprocess.Popen[str]:
    """``idcli render PATH --out OUT`` on the cluster at ``address`` (one worker, batches of one, on the CPU), handed
    back running once its first image is committed: what a test stops the head under. Killed if it never commits."""
    driver = subprocess.Popen([sys.executable, "-m", "idcli", "render", str(path), "--out", str(out), "--device",
                               "cpu", "--batch-size", "1", "--executor", "ray", "--ray-address", address,
                               "--workers", "1", *options], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("*/*.json")):
            assert driver.poll() is None, driver.communicate()
            assert time.monotonic() < deadline, "the Ray run committed nothing in 120 s"
            time.sleep(0.05)
    except BaseException:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        raise
    return driver
