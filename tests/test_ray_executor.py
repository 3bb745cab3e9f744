"""``--executor ray``: batches rendered by Ray actors, committed by the driver (docs/scale-out.md).

Every test shares one local Ray cluster (``address="local"``, 2 CPUs, token auth off), started once
for the module: a cluster costs seconds, an actor (a worker process building its engine) a few more.
Worker pools stay smaller than the cluster's CPUs, because an actor holds its CPU for its whole life.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import ray  # the test extra pulls the ray extra: CI tests this executor
from cli_helpers import ROOT, assert_nothing_partial, cli_env, journal_commits, plan_jobs
from ray_clusters import render_until_first_commit

import idcli
from idcli.executors.ray import RayBackend
from idcli.executors.ray_deaths import NO_WORD
from idcli.provenance import RUN_FIELDS

RECIPES = ROOT / "recipes"

# Under pytest-xdist every test here runs in one worker, so the module's one cluster is started once (a
# cluster per worker would also split the machine's CPUs between two Rays that each think they have 2).
pytestmark = pytest.mark.xdist_group("ray")

SMALL = """\
version: 1
project: ray
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, sampler: euler, takes: %(takes)d}
shots:
  - {id: s1, prompt: "a lighthouse in a storm"}
  - {id: s2, prompt: "a bar at night"}
  - {id: s3, prompt: "%(third)s"}
"""


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One local cluster for the module. Its workers inherit this environment: their own IDCLI_HOME (the
    tiny adapter's weights are written there), offline, one thread, and tests/ on the path (ray_engines)."""
    env = {"RAY_AUTH_MODE": "disabled", "IDCLI_HOME": str(tmp_path_factory.mktemp("ray-home")),
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TRANSFORMERS_VERBOSITY": "error",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    saved = {key: os.environ.get(key) for key in env}

    def restore(keys: list[str]) -> None:
        for key in keys:
            if saved[key] is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = saved[key]  # type: ignore[assignment]

    os.environ.update(env)
    try:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    finally:
        restore([key for key in env if key != "RAY_AUTH_MODE"])  # auth stays off while the cluster runs
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
    restore(["RAY_AUTH_MODE"])


def _sidecars(out: Path) -> dict[str, dict[str, Any]]:
    return {str(p.relative_to(out)): json.loads(p.read_text("utf-8")) for p in sorted(out.glob("*/*.json"))}


def _without_run_fields(sidecar: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in sidecar.items() if k not in RUN_FIELDS}


# -- same images -------------------------------------------------------------------------------------------


def test_quickstart_through_ray_is_byte_identical_to_local(ray_cluster: str, tmp_path: Path, engine_factory) -> None:
    """The quickstart (identities, dual-line, a shot naming two characters) on two Ray workers: every PNG
    byte-identical to the local executor's, every sidecar equal but for where and when it ran.
    (--save-masks is left out: it doubles the time; its strips are made by the same encode_result.)"""
    loaded = idcli.load_shotlist(RECIPES / "quickstart.yaml")
    local = idcli.render(loaded, tmp_path / "local", device="cpu", engine_factory=engine_factory)
    remote = idcli.render(loaded, tmp_path / "ray", device="cpu", executor=RayBackend(workers=2))
    assert local.failed == remote.failed == 0 and local.rendered == remote.rendered == 9
    assert sorted(remote.batch_sizes) == sorted(local.batch_sizes)  # the same batches (arriving in any order)
    assert any(len(job.characters) == 2 for job in plan_jobs(RECIPES / "quickstart.yaml"))
    for job in local.jobs:
        relative = Path(job.image).relative_to(tmp_path / "local")
        assert (tmp_path / "ray" / relative).read_bytes() == Path(job.image).read_bytes(), relative
    local_sidecars, ray_sidecars = _sidecars(tmp_path / "local"), _sidecars(tmp_path / "ray")
    assert local_sidecars.keys() == ray_sidecars.keys() and len(ray_sidecars) == 9
    pids = set()
    for name, sidecar in ray_sidecars.items():
        assert _without_run_fields(sidecar) == _without_run_fields(local_sidecars[name]), name
        assert sidecar["batch"] == local_sidecars[name]["batch"]
        executor = sidecar["executor"]
        assert executor["name"] == "ray" and executor["device"] == "cpu" and executor["host"]
        assert local_sidecars[name]["executor"]["name"] == "local"
        pids.add(executor["pid"])
    assert os.getpid() not in pids  # rendered in the workers, not here
    assert remote.executor["name"] == "ray" and remote.executor["workers"] == 2
    assert remote.executor["forward_seconds"] > 0


def test_a_ray_takes_sidecar_has_the_local_takes_fields_decode_chunk_too(ray_cluster: str, tmp_path: Path,
                                                                         engine_factory) -> None:
    """The executor never changes a result or its record's shape: a Ray worker's take records its VAE decode chunk
    (``executor.decode_chunk``, docs/file-formats.md) as a local take does, and every other field is the same, but for
    which executor, process and threads ran it and when."""
    loaded = idcli.load_shotlist(RECIPES / "quickstart.yaml")
    # QA is left out: its verdict is the same, its record also says how long it took.
    local = idcli.render(loaded, tmp_path / "local", device="cpu", engine_factory=engine_factory, qa=False)
    remote = idcli.render(loaded, tmp_path / "ray", device="cpu", executor=RayBackend(workers=1), qa=False)
    assert local.failed == remote.failed == 0 and local.rendered == remote.rendered
    local_sidecars, ray_sidecars = _sidecars(tmp_path / "local"), _sidecars(tmp_path / "ray")
    assert local_sidecars.keys() == ray_sidecars.keys()
    for name, sidecar in ray_sidecars.items():
        own = local_sidecars[name]
        assert sidecar.keys() == own.keys(), name
        assert {k: v for k, v in sidecar.items() if k not in ("timing", "executor")} == \
            {k: v for k, v in own.items() if k not in ("timing", "executor")}, name
        ray_only = {"name", "node", "pid", "gpu", "threads"}  # where it ran, not what it made
        assert {k: v for k, v in sidecar["executor"].items() if k not in ray_only} == \
            {k: v for k, v in own["executor"].items() if k not in ray_only}, name
        assert sidecar["executor"]["decode_chunk"] == own["executor"]["decode_chunk"] == sidecar["batch"]["size"]


def test_a_ray_take_decoded_image_by_image_reproduces_identical_here(ray_cluster: str, tmp_path: Path,
                                                                     tiny_engines: Any) -> None:
    """A Ray worker short of memory decodes its batch one image per call (``executor.decode_chunk`` 1); ``idcli
    reproduce`` here, in the driver's process with the whole batch in memory, decodes as recorded (and on the one
    torch thread the worker had) and says `identical`. Before 2026-12-02 it decoded the three in one call: different
    by 1/255 (tests/test_reproduce_decode_chunk.py)."""
    from ray_engines import one_image_decodes

    shots = tmp_path / "shots.yaml"
    shots.write_text("version: 1\nproject: ray-chunk\nmodel: {preset: tiny-sd}\n"
                     "defaults: {size: 128x128, steps: 2, guidance: 5.0, sampler: euler, takes: 3}\n"
                     "shots:\n  - {id: harbour, prompt: \"a harbour at night\"}\n", "utf-8")
    result = idcli.render(idcli.load_shotlist(shots), tmp_path / "ray", device="cpu", batch_size=3, qa=False,
                          executor=RayBackend(workers=1, engine_factory=one_image_decodes))
    assert result.failed == 0 and result.rendered == 3
    engine = tiny_engines("tiny-sd")
    for path in sorted((tmp_path / "ray").glob("harbour/harbour_t*.json")):
        sidecar = json.loads(path.read_text("utf-8"))
        assert sidecar["executor"]["name"] == "ray" and sidecar["executor"]["decode_chunk"] == 1
        assert sidecar["batch"]["size"] == 3
        report = idcli.reproduce(path, engine_factory=lambda m, r, a: engine)
        assert report.status == "identical", (path.name, report.max_pixel_difference, report.notes)
        assert report.decode_chunk == 1


def test_the_clusters_head_answers_the_address_check(ray_cluster: str) -> None:
    """``--ray-address`` is checked before ``ray.init`` (a port that answers, but not as a Ray cluster's head, is exit 4
    at once: tests/test_executor_options.py): a real head (its GCS, the module's cluster) passes the check, and its
    answer to the check's gRPC call is read as a gRPC server's (not "cannot be told", which would pass too)."""
    from idcli.executors.grpc_probe import call_status
    from idcli.executors.ray import check_head_answers

    check_head_answers(ray_cluster)  # raises ExecutorUnavailableError when the head does not answer as one
    assert call_status(ray_cluster, 10.0) == 200


# -- faults ------------------------------------------------------------------------------------------------


class _KillAfterFirstCommit:
    """A progress display that SIGKILLs the worker which rendered the first committed image, while its next
    batch is in flight (the slow engine's batches take over a second)."""

    def __init__(self) -> None:
        self.killed: int | None = None
        self.timer: threading.Timer | None = None
        self.notes: list[str] = []

    def start(self, total: int, already_done: int) -> None: ...
    def stop(self) -> None: ...

    def note(self, text: str) -> None:
        self.notes.append(text)

    def advance(self, outcome: Any) -> None:
        if self.timer is None and outcome.status == "rendered":
            pid = json.loads(Path(outcome.sidecar).read_text("utf-8"))["executor"]["pid"]
            self.timer = threading.Timer(0.4, self._kill, (pid,))
            self.timer.start()

    def _kill(self, pid: int) -> None:
        os.kill(pid, signal.SIGKILL)
        self.killed = pid


def test_two_shots_of_the_same_content_are_each_rendered_as_locally(ray_cluster: str, tmp_path: Path,
                                                                     engine_factory, write_shotlist) -> None:
    """Shots alike (the same prompt and seed) share a job key; the driver matched a worker's reply to its jobs by key,
    so both images went to the second shot's take (its record naming it) and the first was never written. Matched
    by take (SHOT_tN): each is committed once, byte-identical to the local executor's."""
    shots = write_shotlist((SMALL % {"takes": 1, "third": "a bar at night"}).replace('night"}', 'night", seeds: [5]}'))
    loaded = idcli.load_shotlist(shots)
    local = idcli.render(loaded, tmp_path / "local", device="cpu", engine_factory=engine_factory)
    remote = idcli.render(loaded, tmp_path / "ray", device="cpu", batch_size=4, executor=RayBackend(workers=1))
    assert sorted((o.shot_id, o.status) for o in remote.jobs) == [("s1", "rendered"), ("s2", "rendered"),
                                                             ("s3", "rendered")]
    for job in local.jobs:
        relative = Path(job.image).relative_to(tmp_path / "local")
        assert (tmp_path / "ray" / relative).read_bytes() == Path(job.image).read_bytes(), relative
    assert journal_commits(tmp_path / "ray") == journal_commits(tmp_path / "local")


def test_a_worker_killed_mid_batch_is_restarted_and_every_job_committed_once(
        ray_cluster: str, write_shotlist, tmp_path: Path) -> None:
    import socket

    from ray_engines import slow_engine

    path = write_shotlist(SMALL % {"takes": 2, "third": "a beach at dawn"})
    out = tmp_path / "out"
    progress = _KillAfterFirstCommit()
    report = idcli.render(idcli.load_shotlist(path), out, device="cpu", batch_size=1, progress=progress,
                          executor=RayBackend(workers=1, engine_factory=slow_engine))
    assert progress.killed is not None, "the worker was killed during the run"
    jobs = plan_jobs(path)
    assert report.failed == 0 and report.rendered == len(jobs) == 6
    assert set(journal_commits(out).values()) == {1} and len(journal_commits(out)) == len(jobs)
    assert_nothing_partial(out, jobs)
    pids = {sidecar["executor"]["pid"] for sidecar in _sidecars(out).values()}
    assert progress.killed in pids and len(pids) == 2, "the restarted worker (a new process) rendered the rest"
    # Ray's retry saved the batch: only Ray's own "(raylet)" lines said so. One note of idcli's names the worker.
    (new,) = pids - {progress.killed}
    restarted = [text for text in progress.notes if "restarted" in text]
    assert restarted == [f"note: the Ray worker {socket.gethostname()}:{progress.killed} died mid-batch ({NO_WORD}) "
                         f"and Ray restarted it (now pid {new}); its batch of 1 was rendered again there"
                         ], progress.notes


def _notes_of_a_self_killing_run(write_shotlist, tmp_path: Path, signal_number: int, times: int
                                 ) -> tuple[list[str], list[int], Any]:
    """A one-worker run of three one-take shots whose engine kills its own process with ``signal_number`` as a batch
    begins, ``times`` times: its notes, the pids killed (in the order killed) and the report."""
    from ray_engines import SelfKilling

    path = write_shotlist(SMALL % {"takes": 1, "third": "a beach at dawn"})
    killed = tmp_path / "killed"
    killed.mkdir()
    notes: list[str] = []

    class Notes:
        def start(self, total: int, already_done: int) -> None: ...
        def advance(self, outcome: Any) -> None: ...
        def stop(self) -> None: ...

        def note(self, text: str) -> None:
            notes.append(text)

    report = idcli.render(idcli.load_shotlist(path), tmp_path / "out", device="cpu", batch_size=1, progress=Notes(),
                          executor=RayBackend(workers=1, engine_factory=SelfKilling(str(killed), signal_number,
                                                                                    times)))
    pids = sorted(killed.iterdir(), key=lambda file: file.stat().st_mtime_ns)
    return notes, [int(file.name) for file in pids], report


def test_a_worker_killed_in_its_first_batch_is_named_with_why_ray_says_it_died(
        ray_cluster: str, write_shotlist, tmp_path: Path) -> None:
    """A worker SIGKILLed (from inside its first batch: no reply had named its process yet) that Ray restarted: the note
    named no process ("the Ray worker on HOST") and no cause. Now the process is read from Ray's actor table as the
    batch is handed over, and the cause from Ray's worker table: Ray saw only the connection close (SIGKILL and a
    crash read alike there), and the note says that much."""
    import socket

    notes, killed, report = _notes_of_a_self_killing_run(write_shotlist, tmp_path, signal.SIGKILL, 1)
    assert report.failed == 0 and report.rendered == 3 and len(killed) == 1
    # Every image, the first batch's too, was rendered by the restarted process.
    (new,) = {sidecar["executor"]["pid"] for sidecar in _sidecars(tmp_path / "out").values()}
    assert [text for text in notes if "died" in text] == [
        f"note: the Ray worker {socket.gethostname()}:{killed[0]} died mid-batch ({NO_WORD}) and Ray restarted it "
        f"(now pid {new}); its batch of 1 was rendered again there"], notes


def test_a_worker_killed_twice_in_one_batch_says_why_as_its_batch_goes_on(
        ray_cluster: str, write_shotlist, tmp_path: Path) -> None:
    """SIGTERM twice in one batch (as it begins, then as Ray runs it again on the restarted worker): Ray's retry failed
    too and the note said only "a Ray worker died; its batch of 1 goes to another worker". Ray's error records the
    worker's own word (its SIGTERM handler's), and the note now gives it; the batch then renders."""
    notes, killed, report = _notes_of_a_self_killing_run(write_shotlist, tmp_path, signal.SIGTERM, 2)
    assert report.failed == 0 and report.rendered == 3 and len(killed) == 2
    assert [text for text in notes if "died" in text] == [
        "note: a Ray worker died (it was sent SIGTERM); its batch of 1 goes to another worker"], notes


def test_an_ordinary_job_error_fails_that_job_and_out_of_memory_halves_the_batch(
        ray_cluster: str, write_shotlist, tmp_path: Path) -> None:
    """On the worker: batches of four run out of memory and are halved (as locally); the shot whose prompt
    raises is reported failed with its error (exit 1 at the command line); the rest are committed."""
    from ray_engines import faulty_engine

    path = write_shotlist(SMALL % {"takes": 4, "third": "an unlucky beach at dawn"})
    notes: list[str] = []

    class Notes:
        def start(self, total: int, already_done: int) -> None: ...
        def advance(self, outcome: Any) -> None: ...
        def stop(self) -> None: ...

        def note(self, text: str) -> None:
            notes.append(text)

    out = tmp_path / "out"
    report = idcli.render(idcli.load_shotlist(path), out, device="cpu", batch_size=4, progress=Notes(),
                          executor=RayBackend(workers=1, engine_factory=faulty_engine))
    failed = [o for o in report.jobs if o.status == "failed"]
    assert {o.shot_id for o in failed} == {"s3"} and len(failed) == 4
    assert all("ValueError" in (o.error or "") and "unlucky" in (o.error or "") for o in failed)
    assert report.rendered == 8 and not list(out.glob("s3/*.png"))
    assert report.batch_sizes == [2, 2, 2, 2]
    assert any("out of memory; batch size lowered to 2" in text for text in notes)
    assert all(sidecar["batch"]["size"] == 2 for sidecar in _sidecars(out).values())
    assert_nothing_partial(out)


def test_ctrl_c_of_the_driver_commits_what_arrived_and_stops_the_workers(
        ray_cluster: str, write_shotlist, tmp_path: Path, engine_factory) -> None:
    """Ctrl-C (a KeyboardInterrupt in the driver's main thread, as the SIGTERM handler raises too) once the
    first image is committed, which the display learns when the second batch arrives (each takes over a
    second): exit 130, both batches committed, not the third; the worker is killed; a local re-run renders
    only the rest."""
    from ray_engines import slow_engine

    from idcli.errors import Interrupted

    path = write_shotlist(SMALL % {"takes": 2, "third": "a beach at dawn"})
    out = tmp_path / "out"

    class CtrlC:
        def start(self, total: int, already_done: int) -> None: ...
        def note(self, text: str) -> None: ...
        def stop(self) -> None: ...

        pressed = False

        def advance(self, outcome: Any) -> None:
            if not self.pressed:
                self.pressed = True
                raise KeyboardInterrupt

    with pytest.raises(Interrupted) as stopped:
        idcli.render(idcli.load_shotlist(path), out, device="cpu", batch_size=2, progress=CtrlC(),
                     executor=RayBackend(workers=1, engine_factory=slow_engine))
    assert stopped.value.exit_code == 130
    jobs = plan_jobs(path)
    committed = [job for job in jobs if (out / job.sidecar_relpath).exists()]
    assert len(committed) == 4, "the two batches that arrived are committed, not the third"
    # The signal landed while the commit queue held the batch being handed over: it is handed over again as the run
    # stops, and still counted once.
    assert stopped.value.report.batch_sizes == [2, 2] and stopped.value.report.rendered == 4
    assert_nothing_partial(out, committed)
    pid = json.loads((out / committed[0].sidecar_relpath).read_text("utf-8"))["executor"]["pid"]
    deadline = time.monotonic() + 20
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, "the Ray worker was not stopped"
        time.sleep(0.1)
    rerun = idcli.render(idcli.load_shotlist(path), out, device="cpu", batch_size=2, engine_factory=engine_factory)
    assert rerun.rendered == len(jobs) - len(committed) and rerun.count("skipped") == len(committed)
    assert max(journal_commits(out).values()) == 1
    assert_nothing_partial(out, jobs)


@pytest.mark.parametrize("batch_size", [1, "auto"])  # "auto" asks a worker for the size first
def test_workers_that_cannot_build_their_engine_stop_the_run_with_exit_4(
        ray_cluster: str, write_shotlist, tmp_path: Path, batch_size: int | str, capfd: pytest.CaptureFixture[str]
) -> None:
    """The farm tour's worker that could not see the model folder: the run stopped with exit 4 and the error, but Ray
    first printed the actor's creation traceback on the driver's terminal, twice ("(raylet) Task
    RenderWorker.suggest_batch_size failed. There are 1 retries remaining ... Traceback ..."), once per call to the
    dead actor. The worker now keeps the error and raises it from each call: one line, naming the worker's host."""
    import socket

    from ray_engines import unloadable_engine

    from idcli.errors import ExecutorUnavailableError

    path = write_shotlist(SMALL % {"takes": 1, "third": "a beach at dawn"})
    with pytest.raises(ExecutorUnavailableError, match=r"Ray worker could (not )?start: .*not in this node's cache"
                       ) as err:
        idcli.render(idcli.load_shotlist(path), tmp_path / "out", device="cpu", batch_size=batch_size,
                     executor=RayBackend(workers=1, engine_factory=unloadable_engine))
    assert err.value.exit_code == 4
    assert f"on {socket.gethostname()}: cannot load model" in str(err.value)
    assert "each node needs idcli in this version, and the model in its own Hugging Face cache" in str(err.value)
    assert not list((tmp_path / "out").glob("*/*.png"))
    time.sleep(2)  # Ray's driver prints the errors it is told of from a thread polling the cluster
    printed = capfd.readouterr()
    assert "Traceback" not in printed.out + printed.err and "RenderWorker" not in printed.out + printed.err, printed
    # What keeps Ray quiet, without waiting on its printing thread: the actor lives (its creation did not fail, so
    # Ray has no creation traceback to print), and each call raises the kept error.
    from cli_helpers import plan_on_cpu
    from ray.exceptions import RayTaskError

    from idcli.executors.ray_worker import EngineUnavailable, RenderWorker
    from idcli.runtime import Runtime

    plan = plan_on_cpu(path)
    actor = ray.remote(RenderWorker).options(num_cpus=0).remote(plan.model, Runtime("cpu", "float32"), None,
                                                                 unloadable_engine, plan.project)
    try:
        assert ray.get(actor.describe.remote())["host"] == socket.gethostname()
        with pytest.raises(RayTaskError) as refused:
            ray.get(actor.suggest_batch_size.remote(plan.jobs[0].request))
        assert isinstance(refused.value.cause, EngineUnavailable), refused.value
        assert "not in this node's cache" in str(refused.value.cause)
    finally:
        ray.kill(actor)


def test_a_worker_refusing_a_damaged_weight_file_is_reported_in_its_own_words(
        ray_cluster: str, tmp_path: Path) -> None:
    """A model folder whose UNet weight file is cut after the driver planned it (the worker finds it so) stopped the
    run with ``no Ray worker could start: on HOST: ModelUnavailableError: …; each node needs idcli in this version, and
    the model in its own Hugging Face cache …``: a class name, and a cache hint that sent people to copy a model every
    node already holds. Now the worker's refusal is said in the words (and fix) a local run prints, exit 4 still, and
    the cache hint is kept for a model a node lacks (test_workers_that_cannot_build_their_engine_stop_the_run_…)."""
    import socket

    from ray_engines import CutsItsWeightsFirst

    from idcli.engine.build import build_tiny_pipeline
    from idcli.errors import ExecutorUnavailableError

    model = tmp_path / "model"
    build_tiny_pipeline("tiny-sd").save_pretrained(model, safe_serialization=True)
    weights = model / "unet" / "diffusion_pytorch_model.safetensors"
    path = tmp_path / "shots.yaml"
    path.write_text(f"version: 1\nproject: ray\nmodel: {{preset: sd15, id: {json.dumps(str(model))}}}\n"
                    "defaults: {size: 64x64, steps: 2}\nshots:\n  - {id: a, prompt: x}\n", "utf-8")
    shotlist = idcli.load_shotlist(path)  # planned whole: the file is cut only as the worker builds its engine
    with pytest.raises(ExecutorUnavailableError) as err:
        idcli.render(shotlist, tmp_path / "out", device="cpu", batch_size=1,
                     executor=RayBackend(workers=1, engine_factory=CutsItsWeightsFirst(str(weights),
                                                                                       str(tmp_path / "cut"))))
    said = " ".join(str(err.value).split())
    assert err.value.exit_code == 4
    assert said.startswith(f"no Ray worker could start: on {socket.gethostname()}: cannot load model '{model}': the "
                           f"weight file '{weights}' is damaged or cut short (it is cut short"), said
    assert said.endswith("To fix: copy it again from where it came, or download or save the model again"), said
    assert "ModelUnavailableError" not in said and "Hugging Face cache" not in said, said
    assert not list((tmp_path / "out").glob("*/*.png"))
    # The folder's journal ends saying why, as a local run's does (tests/test_model_refusal_journal.py).
    ended = json.loads((tmp_path / "out" / ".idcli" / "journal.jsonl").read_text("utf-8").splitlines()[-1])
    assert ended["event"] == "run-end" and ended["error"] == str(err.value) and ended["not_rendered"] == 1, ended


def test_driver_killed_mid_run_then_a_local_rerun_renders_nothing_twice(
        ray_cluster: str, write_shotlist, tmp_path: Path, engine_factory) -> None:
    """``idcli render --executor ray`` as a process, connected to the module's cluster: while it holds the
    output folder a second render exits 3; then it is SIGKILLed mid-run (stopped first, so that "mid-run" does not
    hang on how fast this machine is), and a plain local run finishes."""
    from typer.testing import CliRunner

    from idcli.cli import app

    path = write_shotlist(SMALL % {"takes": 3, "third": "a beach at dawn"})
    out = tmp_path / "out"
    jobs = plan_jobs(path)  # encodes nothing (no characters); also the reference for what must be done
    env = {**cli_env(), "RAY_AUTH_MODE": "disabled"}
    driver = subprocess.Popen([sys.executable, "-m", "idcli", "render", str(path), "--out", str(out), "--device",
                               "cpu", "--batch-size", "1", "--executor", "ray", "--ray-address", ray_cluster,
                               "--workers", "1", "--quiet"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while not list(out.glob("*/*.json")):
            assert driver.poll() is None, driver.communicate()
            assert time.monotonic() < deadline, "the Ray run committed nothing in 90 s"
            time.sleep(0.05)
        # Stopped, the driver commits nothing more yet still holds the folder's lock: the kill below lands mid-run
        # however slowly this machine runs the busy check (on a loaded machine the run once finished first).
        driver.send_signal(signal.SIGSTOP)
        busy = CliRunner().invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "--quiet"])
        assert busy.exit_code == 3, busy.output
        assert "another idcli run" in busy.output
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert driver.returncode == -signal.SIGKILL
    assert_nothing_partial(out, temporaries_allowed=True)
    done_before = sum(1 for job in jobs if (out / job.sidecar_relpath).exists())
    assert 1 <= done_before < len(jobs), "killed mid-run"
    rerun = idcli.render(idcli.load_shotlist(path), out, device="cpu", batch_size=1, engine_factory=engine_factory)
    assert rerun.failed == 0
    assert rerun.rendered + rerun.count("skipped") + rerun.count("recovered") == len(jobs)
    assert sum(engine_factory.calls) == rerun.rendered == len(jobs) - done_before - rerun.count("recovered")
    assert max(journal_commits(out).values()) == 1, "no job committed twice"
    assert_nothing_partial(out, jobs)


# -- plates (issue 12) -------------------------------------------------------------------------------------


def test_a_plate_job_through_ray_is_byte_identical_to_local(ray_cluster: str, tmp_path: Path, engine_factory) -> None:
    """A plate request (the plate's pixels as a numpy array inside the job) pickles to a Ray worker; the PNG,
    its plate block and its --save-masks file are the local executor's, byte for byte."""
    loaded = idcli.load_shotlist(RECIPES / "plates.yaml")
    local = idcli.render(loaded, tmp_path / "local", device="cpu", engine_factory=engine_factory, save_masks=True)
    remote = idcli.render(loaded, tmp_path / "ray", device="cpu", executor=RayBackend(workers=1), save_masks=True)
    assert local.failed == remote.failed == 0 and local.rendered == remote.rendered == 2
    for job in local.jobs:
        relative = Path(job.image).relative_to(tmp_path / "local")
        assert (tmp_path / "ray" / relative).read_bytes() == Path(job.image).read_bytes(), relative
        mask = relative.with_suffix(".mask.png")
        assert (tmp_path / "ray" / mask).read_bytes() == (tmp_path / "local" / mask).read_bytes(), mask
    for name, sidecar in _sidecars(tmp_path / "ray").items():
        assert sidecar["executor"]["name"] == "ray" and sidecar["plate"]["size"] == [760, 420]
        assert _without_run_fields(sidecar) == _without_run_fields(_sidecars(tmp_path / "local")[name]), name
        assert sidecar["plate"] == _sidecars(tmp_path / "local")[name]["plate"]


# -- worker count ------------------------------------------------------------------------------------------


def test_more_workers_than_the_cluster_holds_is_refused_not_a_hang(
        ray_cluster: str, write_shotlist, tmp_path: Path, engine_factory) -> None:
    """``workers=3`` on this 2-CPU cluster (one CPU per CPU worker): the third actor could never be scheduled,
    and the batch handed to it waited for ever (a script hung with no message). Refused before anything is
    planned or written, with what the cluster holds."""
    from hang_watchdog import no_hang

    path, out = write_shotlist(SMALL % {"takes": 1, "third": "a beach at dawn"}), tmp_path / "out"
    with no_hang(60), pytest.raises(idcli.InputError, match=r"workers=3: the Ray cluster holds 2 .*2 CPUs"):
        idcli.render(idcli.load_shotlist(path), out, device="cpu", batch_size=1,
                     executor=RayBackend(workers=3, engine_factory=engine_factory))
    assert not out.exists()
    with no_hang(60), pytest.raises(idcli.InputError, match=r"workers=5: .* give workers=4 or fewer"):
        idcli.render(idcli.load_shotlist(path), out, device="cpu",
                     executor=RayBackend(workers=5, worker_cpus=0.5, engine_factory=engine_factory))
    assert not out.exists()


@ray.remote
class _Holder:
    """Another job's actor, holding some of the cluster's CPUs (a farm's GPUs) for as long as it lives."""

    def ready(self) -> bool:
        return True


@pytest.mark.parametrize(("workers", "held", "batch_size"), [(1, 2, 1), (1, 2, "auto"), (2, 1, 1)])
def test_a_worker_ray_never_places_stops_the_run_or_is_dropped_not_a_hang(
        ray_cluster: str, write_shotlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int, held: int,
        batch_size: int | str) -> None:
    """``--device cuda`` on a farm whose GPUs another job holds: the cluster holds the workers (the check of
    ``--workers`` passes) but has none free, Ray never places the actor, and the run waited for ever with no word,
    with a fixed batch size (the batch handed to it) or ``auto`` (its answer). Here another job holds ``held`` of the
    cluster's 2 CPUs. After a note, the wait ends (shortened here): no worker placed, exit 4 naming what a worker
    needs and what is free; one placed, the other is dropped and the run ends whole on the one."""
    from hang_watchdog import no_hang

    from idcli.errors import ExecutorUnavailableError
    from idcli.executors import ray_placement

    # 5 s, not less: on a loaded machine Ray took over 2 s to place the worker the free CPU fits (the note then
    # counted it among those waiting: a clean-clone CI under five other test runs, 2026-12-02).
    monkeypatch.setattr(ray_placement, "PLACEMENT_NOTE_SECONDS", 5.0)
    monkeypatch.setattr(ray_placement, "PLACEMENT_WAIT_SECONDS", 8.0)
    path, out = write_shotlist(SMALL % {"takes": 1, "third": "a beach at dawn"}), tmp_path / "out"
    holder = _Holder.options(num_cpus=held).remote()
    progress = _Notes()
    try:
        assert ray.get(holder.ready.remote(), timeout=60)
        with no_hang(120):
            if workers == 1:
                with pytest.raises(ExecutorUnavailableError) as err:
                    idcli.render(idcli.load_shotlist(path), out, device="cpu", batch_size=batch_size,
                                 progress=progress, executor=RayBackend(workers=workers))
                report = None
            else:
                report = idcli.render(idcli.load_shotlist(path), out, device="cpu", batch_size=batch_size,
                                      progress=progress, executor=RayBackend(workers=workers))
    finally:
        ray.kill(holder)
        deadline = time.monotonic() + 30  # the next test's workers need the CPUs back
        while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    waiting = [text for text in progress.notes if text.startswith("note: waiting for Ray to place")]
    assert waiting == [f"note: waiting for Ray to place 1 of {workers} worker(s): each needs 1 CPU, and the Ray "
                       f"cluster has 0 of 2 CPUs free; if still not placed after 8 s, "
                       f"{'the run stops with exit 4' if workers == 1 else 'they are stopped'}"], progress.notes
    if report is None:
        assert err.value.exit_code == 4
        assert str(err.value) == ("no Ray worker was placed in 8 s: each needs 1 CPU on one node, and the Ray cluster "
                                  "has 0 of 2 CPUs free; nothing was rendered: run again when other jobs have freed "
                                  'them (docs/scale-out.md, "Faults")')
        assert not list(out.glob("*/*.png"))
    else:
        assert report.failed == 0 and report.rendered == 3
        assert report.executor["workers"] == 2 and report.executor["workers_left"] == 1, report.executor
        dropped = [text for text in progress.notes if " not placed in " in text]
        assert dropped == ["note: 1 Ray worker(s) not placed in 8 s (each needs 1 CPU; the Ray cluster has 0 of 2 CPUs "
                           "free); it is stopped (the run goes on with 1 worker)"], progress.notes


# -- stdout of the command ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_render_json_through_ray_keeps_stdout_one_document(write_shotlist, tmp_path: Path) -> None:
    """``idcli render --executor ray --json`` stopped by SIGTERM while a batch is in flight: the driver kills
    the worker, and Ray's error listener prints ``(raylet) Task RenderWorker.render failed ...`` on
    sys.stdout, in front of the JSON document (``json.load`` failed). The render now sends whatever
    the libraries print to stderr; stdout holds the one document."""
    from cli_helpers import render_argv

    path, out = write_shotlist(SMALL.replace("64x64, steps: 2", "256x256, steps: 8")
                               % {"takes": 3, "third": "a beach at dawn"}), tmp_path / "out"
    env = {**cli_env(), "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.Popen([sys.executable, "-m", "idcli", *render_argv(path, out, "--json", "--quiet",
                                                                         "--executor", "ray")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 240
    while not list(out.glob("*/*.json")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    document = json.loads(stdout)  # exactly one document: nothing before or after it
    assert document["exit_code"] == 143 and document["executor"]["name"] == "ray", document


# -- a cluster that goes away ------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_cluster_that_goes_away_mid_run_ends_with_exit_4_and_keeps_what_was_committed(
        write_shotlist, tmp_path: Path) -> None:
    """The cluster (its own ``ray start --head``, not the module's: its head and its worker) is SIGKILLed
    while the driver waits on a batch: the driver reported every job left as failed, "no Ray worker is left
    (each died repeatedly)", exit 1 (the code for "some jobs failed, the rest are kept"); killed while the
    worker built its engine, Ray's client waited 60 s, then ended the driver with exit 1, no message and no
    --json document. The driver now asks the head: exit 4 naming the cluster, the document, images kept."""
    import socket

    path, out = write_shotlist(SMALL % {"takes": 12, "third": "a beach at dawn"}), tmp_path / "out"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**cli_env(tmp_path / "home"), "RAY_AUTH_MODE": "disabled"}
    ray_cli = str(Path(sys.executable).with_name("ray"))
    head = subprocess.Popen([ray_cli, "start", "--head", "--block", "--num-cpus", "1", "--port", str(port),
                             "--node-ip-address", "127.0.0.1", "--include-dashboard=false",
                             "--disable-usage-stats"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # its own group: killed whole
    driver, address = None, f"127.0.0.1:{port}"
    try:
        started = time.monotonic() + 60
        while True:  # `ray start --block` answers once the head is up
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert head.poll() is None and time.monotonic() < started, "ray start --head did not come up"
                time.sleep(0.2)
        driver = render_until_first_commit(path, out, address, env)
        worker = json.loads(next(out.glob("*/*.json")).read_text("utf-8"))["executor"]["pid"]
        os.killpg(head.pid, signal.SIGKILL)  # the head and its node, as `ray stop --force` or a lost machine
        with contextlib.suppress(ProcessLookupError):  # it may have gone with its node
            os.kill(worker, signal.SIGKILL)
        gone = time.monotonic()
        stdout, stderr = driver.communicate(timeout=120)
        waited = time.monotonic() - gone
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        head.wait()
        if driver is not None and driver.poll() is None:
            driver.kill()
            driver.wait()
    assert driver.returncode == 4, stderr[-2000:]
    assert waited < 45, f"the driver noticed after {waited:.0f} s"
    document = json.loads(stdout)
    assert document["exit_code"] == 4 and document["error"]["type"] == "ExecutorUnavailableError", document
    assert address in document["error"]["message"] and "went away" in document["error"]["message"]
    assert f"Ray cluster at {address} went away" in stderr
    assert_nothing_partial(out, temporaries_allowed=True)
    committed = list(out.glob("*/*.json"))
    assert 1 <= len(committed) < 36
    # The document is the report so far (as for Ctrl-C): what was committed before the cluster went away.
    assert document["counts"]["rendered"] == len(committed), document["counts"]
    assert {job["image"]["abs_path"] for job in document["jobs"] if job["status"] == "rendered"} == {
        str(sidecar.with_suffix(".png")) for sidecar in committed}


# -- at film scale -----------------------------------------------------------------------------------------


class _CountedWorker:
    """A Ray actor's handle that logs, on the driver, each batch handed to the actor."""

    def __init__(self, actor: Any, log: list[str]) -> None:
        self.actor, self.log = actor, log

    @property
    def render(self) -> Any:
        log, method = self.log, self.actor.render

        class Dispatch:
            @staticmethod
            def remote(*args: Any) -> Any:
                log.append("dispatch")
                return method.remote(*args)

        return Dispatch


class _LoggingSink:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def rendered(self, batch: Any) -> None:
        self.log.append("commit")

    def failed(self, jobs: list[Any], error: str) -> None:
        self.log.append("failed")

    def note(self, text: str) -> None: ...


def test_a_worker_gets_its_next_batch_before_the_driver_commits_its_reply(
        ray_cluster: str, write_shotlist, tmp_path: Path) -> None:
    """The driver commits on one thread and waits when two batches queue there: a worker whose reply is being
    handed to the commit queue must already have its next batch, or it sits idle while the driver waits
    (at film scale 28 s of a 76 s run on two workers)."""
    from cli_helpers import plan_on_cpu

    from idcli.runtime import Runtime

    plan = plan_on_cpu(write_shotlist(SMALL % {"takes": 1, "third": "a beach at dawn"}))
    backend = RayBackend(workers=1)
    log: list[str] = []
    try:
        executor = backend.executor(plan.model, Runtime("cpu", "float32"), plan.adapter, plan.project)
        executor.actors = [_CountedWorker(actor, log) for actor in executor.actors]
        executor.run(list(plan.jobs), 1, False, _LoggingSink(log))
    finally:
        backend.close()
    assert log.count("commit") == len(plan.jobs) == 3 and "failed" not in log
    # Each reply is handed over only after the worker that sent it has the next batch (while any is left).
    for handed, position in enumerate(i for i, entry in enumerate(log) if entry == "commit"):
        assert log[:position].count("dispatch") == min(handed + 2, 3), log


# -- a signal while a reply is handed to the commit queue ---------------------------------------------------


class _SignalInHandOver:
    """A sink whose first hand-over of a rendered batch a signal cuts short: ``before`` the commit queue holds the
    batch (the signal lands between the executor taking the reply off its list and the queue receiving it), or
    after it (the queue holds it; the signal lands while the queue waits on the commit thread)."""

    def __init__(self, before: bool) -> None:
        self.before, self.cut = before, False
        self.handed: list[list[str]] = []

    def rendered(self, batch: Any) -> None:
        if not self.cut and self.before:
            self.cut = True
            raise KeyboardInterrupt
        self.handed.append([job.key for job in batch.jobs])
        if not self.cut:
            self.cut = True
            raise KeyboardInterrupt

    def failed(self, jobs: list[Any], error: str) -> None:
        raise AssertionError(f"no job fails here: {error}")

    def note(self, text: str) -> None: ...


@pytest.mark.parametrize("before", [True, False], ids=["before-the-queue-holds-it", "after"])
def test_a_signal_cutting_a_hand_over_short_hands_the_batch_over_again(
        ray_cluster: str, write_shotlist, before: bool) -> None:
    """docs/reliability.md listed it as the one window left: the Ray executor took an arrived reply off its list,
    then handed it to the commit queue; a signal in between left that batch neither committed nor reported
    (rendered again by the next run). A reply now leaves the list only once the queue holds it: the signal makes
    the executor hand it over again as it stops. (A batch the queue already held may be handed over twice: the
    commit path commits a job once, ``test_ctrl_c_of_the_driver_commits_what_arrived_and_stops_the_workers``.)"""
    from cli_helpers import plan_on_cpu

    from idcli.runtime import Runtime

    plan = plan_on_cpu(write_shotlist(SMALL % {"takes": 1, "third": "a beach at dawn"}))
    backend, sink = RayBackend(workers=1), _SignalInHandOver(before)
    try:
        executor = backend.executor(plan.model, Runtime("cpu", "float32"), plan.adapter, plan.project)
        with pytest.raises(KeyboardInterrupt):
            executor.run(list(plan.jobs), 1, False, sink)
    finally:
        backend.close()
    first = plan.jobs[0].key
    assert sink.handed and sink.handed[0] == [first], sink.handed
    assert [keys for keys in sink.handed if keys == [first]] == [[first]] * (1 if before else 2)


def test_a_batch_handed_over_again_after_a_signal_is_committed_and_reported_once(
        ray_cluster: str, write_shotlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The other side of handing a reply over again: the signal lands once the commit queue holds the first batch,
    before the sink has noted it. The stop path hands it over again; the commit thread commits it once (one journal
    line, one image file), the report lists it once, and the re-run renders only the rest."""
    from idcli.errors import Interrupted
    from idcli.writer import CommitQueue

    path, out = write_shotlist(SMALL % {"takes": 1, "third": "a beach at dawn"}), tmp_path / "out"
    submit, cut = CommitQueue.submit, []

    def submit_cut_once(self: CommitQueue, fn: Any, *args: Any, on_queued: Any = None) -> None:
        def signal_then_queued() -> None:
            if not cut:
                cut.append(args[0].jobs[0].key)
                raise KeyboardInterrupt
            on_queued()

        submit(self, fn, *args, on_queued=signal_then_queued if on_queued is not None else None)

    monkeypatch.setattr(CommitQueue, "submit", submit_cut_once)
    with pytest.raises(Interrupted) as stopped:
        idcli.render(idcli.load_shotlist(path), out, device="cpu", batch_size=1,
                     executor=RayBackend(workers=1))
    monkeypatch.undo()
    report = stopped.value.report
    assert cut and journal_commits(out) == {cut[0]: 1}, journal_commits(out)
    assert [o.job_key for o in report.jobs if o.status == "rendered"] == cut and report.batch_sizes == [1]
    jobs = plan_jobs(path)
    assert_nothing_partial(out, [job for job in jobs if job.key == cut[0]])


# -- a farm of unlike workers ------------------------------------------------------------------------------


class _Notes:
    """A progress display that keeps the run's notes."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def start(self, total: int, already_done: int) -> None: ...
    def advance(self, outcome: Any) -> None: ...
    def stop(self) -> None: ...

    def note(self, text: str) -> None:
        self.notes.append(text)


def test_batch_size_auto_asks_every_worker_and_cuts_at_the_smallest_answer(
        ray_cluster: str, write_shotlist, tmp_path: Path, engine_factory) -> None:
    """A farm mixing an 80 GB and a 24 GB GPU: ``auto`` asked worker 0 alone, so the 24 GB worker got batches sized for
    the 80 GB one (and halved every one on out-of-memory), and which batches a run had depended on which worker was
    worker 0. Every worker is asked now, all at once, and the batches are cut at the smallest answer: one note names
    each worker's answer and the size used. The images are the local executor's at that size."""
    from ray_engines import MixedFarm

    path = write_shotlist(SMALL % {"takes": 2, "third": "a beach at dawn"})
    progress = _Notes()
    remote = idcli.render(idcli.load_shotlist(path), tmp_path / "ray", device="cpu", batch_size="auto",
                          progress=progress,
                          executor=RayBackend(workers=2, engine_factory=MixedFarm(str(tmp_path / "claimed"), 3, 1)))
    assert remote.failed == 0 and remote.batch_sizes == [1] * 6, remote.batch_sizes
    differ = [text for text in progress.notes if "suggest different sizes" in text]
    assert len(differ) == 1, progress.notes
    assert re.fullmatch(r"note: batch_size='auto': the Ray workers suggest different sizes \(\S+:\d+ ([13]), \S+:\d+ "
                        r"([13])\); batches are cut at the smallest, 1, so every batch fits on every worker and no "
                        r"image depends on which worker rendered it; a fixed batch_size overrides", differ[0]), differ
    assert sorted(re.findall(r":\d+ ([13])[,)]", differ[0])) == ["1", "3"], differ
    local = idcli.render(idcli.load_shotlist(path), tmp_path / "local", device="cpu", batch_size=1,
                         engine_factory=engine_factory)
    for job in local.jobs:
        relative = Path(job.image).relative_to(tmp_path / "local")
        assert (tmp_path / "ray" / relative).read_bytes() == Path(job.image).read_bytes(), relative


class _WatchCpus(_Notes):
    """At the first committed image, how many of the cluster's CPUs are free (waiting up to 30 s for Ray's view of
    them to catch up), and how many images were still to come."""

    def __init__(self) -> None:
        super().__init__()
        self.total = self.done = 0
        self.free: float | None = None
        self.still_to_come: int | None = None

    def start(self, total: int, already_done: int) -> None:
        self.total = total

    def advance(self, outcome: Any) -> None:
        self.done += 1
        if self.free is None:
            deadline = time.monotonic() + 30
            while ray.available_resources().get("CPU", 0) < 1 and time.monotonic() < deadline:
                time.sleep(0.1)
            self.free = ray.available_resources().get("CPU", 0)
            self.still_to_come = self.total - self.done


@pytest.mark.parametrize("batch_size", [1, "auto"])  # dropped when handed a batch, or when asked for a size
def test_a_worker_that_cannot_start_hands_its_cpu_back_while_the_run_goes_on(
        ray_cluster: str, write_shotlist, tmp_path: Path, batch_size: int | str) -> None:
    """A worker whose engine could not be built was dropped from the pool but its actor lived on, holding its CPU (its
    GPU on a farm) until the run ended. It is killed as it is dropped: on this 2-CPU cluster, two workers of one CPU
    each, one CPU is free again while the other worker still renders; a note says so, and the run ends whole. The run
    report's ``executor`` says both workers started and one was left (its ``workers`` counted the dropped one as if
    it had rendered)."""
    from ray_engines import MixedFarm

    path = write_shotlist(SMALL % {"takes": 2, "third": "a beach at dawn"})
    progress, farm = _WatchCpus(), MixedFarm(str(tmp_path / "claimed"), "fail", 1)
    report = idcli.render(idcli.load_shotlist(path), tmp_path / "out", device="cpu", batch_size=batch_size,
                          progress=progress, executor=RayBackend(workers=2, engine_factory=farm))
    assert progress.free is not None and progress.free >= 1, f"{progress.free} CPUs free while the run went on"
    assert progress.still_to_come == 5
    assert report.failed == 0 and report.rendered == 6
    dropped = [text for text in progress.notes if "could not start" in text]
    assert len(dropped) == 1 and "not in this node's cache" in dropped[0], progress.notes
    assert dropped[0].endswith("it is stopped and its CPU/GPU handed back (the run goes on with 1 worker)"), dropped
    assert report.executor["workers"] == 2 and report.executor["workers_left"] == 1, report.executor


# -- what a run prints -------------------------------------------------------------------------------------


def _idcli_line(line: str) -> bool:
    """A line of idcli's own on a render's stderr: its notes and errors, the plain progress display's lines."""
    return line.startswith(("idcli: ", "  batch of ")) or re.match(r"(\d+ jobs: |\[\d+/\d+\] )", line) is not None


def test_a_cli_run_on_ray_keeps_stderr_to_idcli_lines(write_shotlist, tmp_path: Path) -> None:
    """``idcli render --executor ray`` on a cluster of its own, as on a pipeline TD's machine (Ray's default token
    authentication, a HOME of its own), its worker SIGKILLed mid-run, stderr a pipe: Ray's "Token authentication is
    enabled for this Ray cluster ..." warning was on stderr, and its error listener's "(raylet) ..." lines were wrapped
    in colour codes (ESC [33m ... ESC [0m) in a log file. Those lines, which no Ray option turns off, were kept (plain
    text) until 2026-12-02; now every line is idcli's (docs/scale-out.md, "What a run prints"; Ray's lines under
    IDCLI_DEBUG: tests/test_ray_stop_stderr.py)."""
    from cli_helpers import render_argv

    path, out = write_shotlist(SMALL.replace("64x64, steps: 2", "128x128, steps: 6")
                               % {"takes": 2, "third": "a beach at dawn"}), tmp_path / "out"
    env = {**cli_env(), "HOME": str(tmp_path / "home")}
    for key in ("RAY_AUTH_MODE", "RAY_ADDRESS", "RAY_COLOR_PREFIX"):
        env.pop(key, None)
    proc = subprocess.Popen([sys.executable, "-m", "idcli", *render_argv(path, out, "--executor", "ray", "--workers",
                                                                         "1")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("*/*.json")):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        worker = json.loads(next(out.glob("*/*.json")).read_text("utf-8"))["executor"]["pid"]
        os.kill(worker, signal.SIGKILL)  # Ray restarts it and runs its batch again
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert (tmp_path / "home" / ".ray" / "auth_token").exists(), "Ray's default: token authentication on"
    assert "\x1b" not in stderr and "Token authentication" not in stderr, stderr
    assert [line for line in stderr.splitlines() if not _idcli_line(line)] == [], stderr
    assert stdout.startswith("6 rendered, 0 skipped"), stdout


def test_under_idcli_debug_the_workers_output_and_rays_warnings_reach_stderr(write_shotlist, tmp_path: Path) -> None:
    """What a run keeps off stderr is still there when asked for: under IDCLI_DEBUG a worker's own output is forwarded
    (``(RenderWorker pid=N) ...``, plain text in a pipe) and Ray's warnings are printed; without it, neither.
    ``idcli.render`` from a pipeline's Python process, on a cluster of its own each time."""
    path = write_shotlist(SMALL % {"takes": 1, "third": "a beach at dawn"})
    script = ("import sys, idcli\nfrom idcli.executors.ray import RayBackend\nfrom ray_engines import chatty_engine\n"
              "report = idcli.render(idcli.load_shotlist(sys.argv[1]), sys.argv[2], device='cpu', batch_size=3,\n"
              "                      executor=RayBackend(workers=1, engine_factory=chatty_engine))\n"
              "print(report.rendered)\n")
    env = {**cli_env(), "HOME": str(tmp_path / "home"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    for key in ("RAY_AUTH_MODE", "RAY_ADDRESS", "RAY_COLOR_PREFIX"):
        env.pop(key, None)
    printed = {}
    for debug in (True, False):
        run_env = {**env, "IDCLI_DEBUG": "1"} if debug else env
        done = subprocess.run([sys.executable, "-c", script, str(path), str(tmp_path / f"out-{debug}")], env=run_env,
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 0 and done.stdout == "3\n", done
        printed[debug] = done.stderr
    assert re.search(r"^\(RenderWorker pid=\d+\) chatty_engine: building the engine on this worker$", printed[True],
                     re.MULTILINE), printed[True]
    assert "Token authentication is enabled for this Ray cluster" in printed[True] and "\x1b" not in printed[True]
    assert printed[False] == "", printed[False]
