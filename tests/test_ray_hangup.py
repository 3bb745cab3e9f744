"""The artist's SSH session drops mid-Ray-run (SIGHUP): the takes committed are kept, the folder's lock is released, a
re-run resumes, and the Ray workers stop rendering (docs/scale-out.md, "Faults").

Two ways a hangup meets a Ray run. On a farm's cluster (``--ray-address``, its head started on another machine, here a
one-CPU head of the test's own in its own session) only the driver gets SIGHUP: it must stop its workers itself, or they
go on rendering batches nobody will commit. On a cluster the run started for itself (no address), Ray's processes
share the driver's process group, so the shell's hangup reaches them all at once. In the ``ray`` xdist group, as
tests/test_ray_executor.py, so only one Ray cluster runs at a time on the test machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cli_helpers import assert_nothing_partial, cli_env, journal_commits
from ray_clusters import FARM_SHOTS as SHOTS
from ray_clusters import own_cluster, processes_in_group, render_until_first_commit

pytestmark = pytest.mark.xdist_group("ray")

HANGUP_LINE = "idcli: error: interrupted by SIGHUP; completed images are kept, rerun to resume"


def _render_workers(head: int) -> list[int]:
    """The Ray actor processes rendering for a driver (``ray::RenderWorker…``) on the cluster whose ``ray start`` is
    ``head``: children of its raylet, each in a process group of its own."""
    raylets = [pid for pid, name in processes_in_group(head).items() if name == "raylet"]
    assert len(raylets) == 1, processes_in_group(head)
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError):
            stat = (entry / "stat").read_text()
            if int(stat[stat.rindex(")") + 2:].split()[1]) == raylets[0] and \
                    (entry / "cmdline").read_bytes().startswith(b"ray::RenderWorker"):
                found.append(int(entry.name))
    return found


def _resumes(path: Path, out: Path, env: dict[str, str], committed: int) -> None:
    """A plain local re-run takes the folder (its lock released) and renders only the takes not committed, each once."""
    again = subprocess.run([sys.executable, "-m", "idcli", "render", str(path), "--out", str(out), "--device", "cpu",
                            "--batch-size", "4", "--quiet", "--json"], env=env, capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert sorted(journal_commits(out).values()) == [1] * 36
    assert len(list(out.glob("*/*.json"))) == 36 > committed


def test_a_hangup_mid_run_on_a_farm_stops_the_workers_and_keeps_what_was_committed(write_shotlist,
                                                                                   tmp_path: Path) -> None:
    path, out = write_shotlist(SHOTS), tmp_path / "out"
    env = {**cli_env(tmp_path / "home"), "RAY_AUTH_MODE": "disabled"}
    with own_cluster(env) as (head, address):
        driver = render_until_first_commit(path, out, address, env, options=("--quiet",))
        try:
            assert _render_workers(head.pid), processes_in_group(head.pid)
            os.kill(driver.pid, signal.SIGHUP)
            _, stderr = driver.communicate(timeout=90)
        finally:
            if driver.poll() is None:
                driver.kill()
                driver.wait()
        left = _render_workers(head.pid)
        deadline = time.monotonic() + 30
        while left and time.monotonic() < deadline:  # Ray ends a killed actor's process in a moment
            time.sleep(0.2)
            left = _render_workers(head.pid)
        assert left == [], "the Ray worker went on after the driver was hung up"
    assert driver.returncode == 129, stderr[-2000:]
    assert stderr.splitlines()[-1] == HANGUP_LINE, stderr
    assert "Traceback" not in stderr
    committed = len(list(out.glob("*/*.json")))
    assert committed >= 1
    assert_nothing_partial(out)
    _resumes(path, out, env, committed)


def _hangup_blocked(pid: int) -> bool:
    """Whether process ``pid`` has SIGHUP blocked (/proc/PID/status, SigBlk: bit 0 is signal 1)."""
    status = Path(f"/proc/{pid}/status").read_text()
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigBlk:"))
    return bool(int(mask, 16) & 1 << (signal.SIGHUP - 1))


def test_a_hangup_of_a_run_on_a_cluster_of_its_own_is_the_drivers_alone(write_shotlist, tmp_path: Path) -> None:
    """Without ``--ray-address`` the run starts a cluster of its own, whose GCS and raylet are the driver's children in
    its process group: the shell's hangup reached them too, and Ray 2.60's do not end on it but stop answering. The
    driver's ``ray.kill`` of its worker and its ``ray.shutdown`` then met a cluster that did not answer (5 s given up),
    and the worker went on until the driver's exit took the cluster with it (about 9 s after the hangup, 1.5 s now).
    They now start with SIGHUP blocked, and the hangup stops the run as for a farm."""
    path, out = write_shotlist(SHOTS), tmp_path / "out"
    env = {**cli_env(tmp_path / "home"), "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    # In a session of its own, as a job of the artist's login shell: the hangup goes to its whole process group.
    driver = subprocess.Popen([sys.executable, "-m", "idcli", "render", str(path), "--out", str(out), "--device",
                               "cpu", "--batch-size", "1", "--executor", "ray", "--workers", "1", "--quiet"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while not list(out.glob("*/*.json")):
            assert driver.poll() is None, driver.communicate()
            assert time.monotonic() < deadline, "the Ray run committed nothing in 180 s"
            time.sleep(0.05)
        cluster = {pid: name for pid, name in processes_in_group(driver.pid).items() if pid != driver.pid}
        assert {"gcs_server", "raylet"} <= set(cluster.values()), cluster
        assert not _hangup_blocked(driver.pid)  # the driver's own hangup stops the run
        unblocked = {name for pid, name in cluster.items() if not _hangup_blocked(pid)}
        workers = _render_workers(driver.pid)
        assert workers, cluster
        os.killpg(driver.pid, signal.SIGHUP)
        _, stderr = driver.communicate(timeout=90)
        deadline = time.monotonic() + 60
        while (processes_in_group(driver.pid) or any(Path(f"/proc/{pid}").exists() for pid in workers)) and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        left = processes_in_group(driver.pid)
        running = [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
    assert unblocked == set(), f"the run's own Ray processes would take the terminal's hangup: {unblocked}"
    assert driver.returncode == 129, stderr[-2000:]
    assert stderr.splitlines() == [HANGUP_LINE], stderr
    assert left == {} and running == [], f"Ray processes left behind by the hung-up run: {left}, workers {running}"
    committed = len(list(out.glob("*/*.json")))
    assert committed >= 1
    assert_nothing_partial(out)
    _resumes(path, out, env, committed)


def test_a_hangup_while_the_cluster_starts_is_kept_from_it_and_delivered_after() -> None:
    """The mechanism alone: a process started inside ``hangup_kept_from_cluster(True)`` has SIGHUP blocked; one started
    outside, or inside with ``False`` (a cluster not started here), does not; a hangup to this thread inside reaches
    it once the block ends, not lost."""
    from idcli.executors.cluster_hangup import hangup_kept_from_cluster

    def started() -> bool:
        child = subprocess.Popen(["sleep", "30"])
        try:
            return _hangup_blocked(child.pid)
        finally:
            child.kill()
            child.wait()

    came: list[int] = []
    before = signal.signal(signal.SIGHUP, lambda signum, frame: came.append(signum))
    try:
        with hangup_kept_from_cluster(True):
            assert started()
            # To this thread: one sent to the process may be taken by another thread (gRPC's), not blocked there.
            signal.pthread_kill(threading.get_ident(), signal.SIGHUP)
            assert came == []  # held while the cluster starts
        signal.sigtimedwait([], 0.1)  # the handler runs at the next bytecode; this gives the signal its moment
        assert came == [signal.SIGHUP]
        with hangup_kept_from_cluster(False):
            assert not started()
        assert not started()
    finally:
        signal.signal(signal.SIGHUP, before)
