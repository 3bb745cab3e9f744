"""A Ray worker killed by Ray's memory monitor (its node low on host memory) and restarted by Ray was said only as
"died mid-batch and Ray restarted it". Ray's GCS worker table keeps the dead process with ``exit_type``
``NODE_OUT_OF_MEMORY``; the note now says so. Ray's memory monitor cannot be made to kill one worker at one moment
reliably on two shared cores, so the table is a stand-in holding Ray's own records (``WorkerTableData``), and Ray's
``wait``/``get`` give the reply of a batch Ray ran again (``attempt`` 1). Real signals (SIGKILL, SIGTERM, from inside a
batch) are tests/test_ray_executor.py's; the words for Ray's other records are checked here on Ray 2.60's own texts,
as a local cluster gave them (2026-12-02)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import idcli
from idcli.executors import ray_deaths
from idcli.executors.ray import RayExecutor

SHOTS = """\
version: 1
project: deaths
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, takes: 2}
shots:
  - {id: s1, prompt: "a lighthouse in a storm"}
"""
NODE = bytes.fromhex("ab" * 28)  # a node's id as Ray's tables hold it; a reply names its first 16 hex digits
OTHER_NODE = bytes.fromhex("cd" * 28)
WORKER: dict[str, Any] = {"host": "node-a", "pid": 202, "node": NODE.hex()[:16]}


def _dead(node: bytes, pid: int, exit_type: int, worker_id: bytes, ended: int = 0) -> Any:
    from ray.core.generated import gcs_pb2

    row = gcs_pb2.WorkerTableData(is_alive=False, pid=pid, exit_type=exit_type, exit_detail="...", end_time_ms=ended)
    row.worker_address.node_id = node
    row.worker_address.worker_id = worker_id
    return row


class _Render:
    def remote(self, *args: Any) -> object:
        return object()


class _Worker:
    render = _Render()


class _Sink:
    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        self.notes.append(text)


def _restart_notes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: Any) -> list[str]:
    """The notes of a run whose one batch came back from a worker Ray restarted, the worker table holding ``rows``."""
    import ray

    monkeypatch.setattr(ray, "wait", lambda refs, **kwargs: (refs[:1], refs[1:]))
    monkeypatch.setattr(ray, "get", lambda ref: {"batches": [], "notes": [], "worker": WORKER, "attempt": 1,
                                                 "seconds": 0.0, "forward_seconds": 0.0, "encode_seconds": 0.0})
    monkeypatch.setattr(ray_deaths, "dead_workers", rows)
    shots = tmp_path / "shots.yaml"
    shots.write_text(SHOTS, "utf-8")
    plan, _ = idcli.plan_shotlist(shots, device="cpu")
    sink = _Sink()
    RayExecutor([_Worker()]).run(list(plan.jobs), 2, False, sink)  # type: ignore[arg-type]
    return [note for note in sink.notes if "died mid-batch" in note]


def _answer_in_turn(monkeypatch: pytest.MonkeyPatch, replies: Any) -> None:
    """Ray hands back one batch at a time, each ``ray.get`` the next of ``replies``: an error raised, a reply given."""
    import ray

    def get(ref: Any) -> Any:
        reply = next(replies)
        if isinstance(reply, BaseException):
            raise reply
        return reply

    monkeypatch.setattr(ray, "wait", lambda refs, **kwargs: (refs[:1], refs[1:]))
    monkeypatch.setattr(ray, "get", get)


class _Actor(_Worker):
    _actor_id = NODE  # any id: the stand-in actor table answers for it


def _death_notes_of_one_actor(tmp_path: Path) -> list[str]:
    """The notes about deaths of a run of SHOTS on one worker whose actor Ray's (stand-in) actor table answers for."""
    shots = tmp_path / "shots.yaml"
    shots.write_text(SHOTS, "utf-8")
    plan, _ = idcli.plan_shotlist(shots, device="cpu")
    sink = _Sink()
    RayExecutor([_Actor()]).run(list(plan.jobs), 2, False, sink)  # type: ignore[arg-type]
    return [note for note in sink.notes if "died" in note]


def test_a_worker_ray_killed_for_low_memory_is_said_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ray.core.generated import common_pb2

    # No reply named the dead process, nor could Ray's actor table (a stand-in worker): the latest death on its node.
    rows = [_dead(NODE, 99, common_pb2.SYSTEM_ERROR, b"a", ended=1000),
            _dead(OTHER_NODE, 100, common_pb2.NODE_OUT_OF_MEMORY, b"b", ended=3000),
            _dead(NODE, 101, common_pb2.NODE_OUT_OF_MEMORY, b"c", ended=2000)]
    assert _restart_notes(tmp_path, monkeypatch, lambda: rows) == [
        "note: the Ray worker node-a:101 died mid-batch (Ray's memory monitor killed it: its node was low on memory) "
        "and Ray restarted it (now pid 202); its batch of 2 was rendered again there"]


@pytest.mark.parametrize("kind", ["killed otherwise", "another node's", "unreadable"])
def test_a_death_ray_gives_no_cause_for_is_said_without_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     kind: str) -> None:
    from ray.core.generated import common_pb2

    def rows() -> list[Any]:
        if kind == "unreadable":  # Ray Client (no GCS on this side), another Ray: nothing added
            raise AttributeError("'GlobalState' object has no attribute '_connect_and_get_accessor'")
        node = OTHER_NODE if kind == "another node's" else NODE
        exit_type = common_pb2.NODE_OUT_OF_MEMORY if kind == "another node's" else common_pb2.SYSTEM_ERROR
        return [_dead(node, 101, exit_type, b"a")]

    who = "node-a:101" if kind == "killed otherwise" else "on node-a"  # the death found, without a cause Ray gave
    assert _restart_notes(tmp_path, monkeypatch, rows) == [
        f"note: the Ray worker {who} died mid-batch and Ray restarted it (now pid 202); its batch of 2 was rendered "
        "again there"]


def test_each_low_memory_death_is_told_once_and_by_its_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    from ray.core.generated import common_pb2

    monkeypatch.setattr(ray_deaths, "dead_workers", lambda: [_dead(NODE, 101, common_pb2.NODE_OUT_OF_MEMORY, b"a")])
    seen: set[bytes] = set()
    node = WORKER["node"]
    assert ray_deaths.death_cause(node, 303, seen) == (None, None)  # another process of that node died so
    assert ray_deaths.death_cause(node, 101, seen) == (ray_deaths.LOW_MEMORY, 101)
    assert ray_deaths.death_cause(node, None, seen) == (None, None)  # told already


# Ray 2.60's exit details, as its worker table and errors held them for a worker killed on a local cluster.
END_OF_FILE = ("Worker unexpectedly exits with a connection error code 2. End of file. Some common causes include: (1) "
               "the process was killed by the OOM killer due to high memory usage, (2) ray stop --force was called, or "
               "(3) the worker crashed unexpectedly due to SIGSEGV or another unexpected error.")
SIGTERM = "Worker exits unexpectedly. Worker exits with an exit code 1. The process receives a SIGTERM."


@pytest.mark.parametrize(("exit_type", "detail", "words"), [
    ("SYSTEM_ERROR", END_OF_FILE, ray_deaths.NO_WORD),  # SIGKILL, SIGSEGV and os._exit(3) alike
    ("SYSTEM_ERROR", SIGTERM, "it was sent SIGTERM"),
    ("SYSTEM_ERROR", "Worker exits unexpectedly. Worker exits with an exit code 3.", "it exited with code 3"),
    ("NODE_OUT_OF_MEMORY", "Task was killed due to the node running low on memory. ...", ray_deaths.LOW_MEMORY),
    ("SYSTEM_ERROR", "...", None),  # nothing Ray says that idcli can read: the note as before
    ("INTENDED_USER_EXIT", "Worker exits because the actor is killed by `ray.kill`.", None),  # idcli's own doing
])
def test_rays_record_of_a_death_in_words(exit_type: str, detail: str, words: str | None) -> None:
    assert ray_deaths.in_words(exit_type, detail) == words


def test_the_cause_in_rays_own_error_of_a_batch_whose_retry_failed_too() -> None:
    from ray.exceptions import ActorDiedError, ActorUnavailableError

    died = ActorDiedError()
    died.error_msg = ("The actor died unexpectedly before finishing this task.\n\tclass_name: RenderWorker\n\tpid: "
                      "27289\nThe actor is dead because its worker process has died. Worker exit type: SYSTEM_ERROR "
                      f"Worker exit detail: {END_OF_FILE}")
    assert ray_deaths.error_cause(died) == ray_deaths.NO_WORD
    unavailable = ActorUnavailableError("The actor is temporarily unavailable: UnexpectedSystemExit: Worker exits "
                                        "with an exit code 1. The process receives a SIGTERM.", None)
    assert ray_deaths.error_cause(unavailable) == "it was sent SIGTERM"
    node = ActorDiedError()
    node.error_msg = ("The actor died unexpectedly before finishing this task.\nThe actor died because its node has "
                      "died. Node Id: ab12")
    assert ray_deaths.error_cause(node) == ray_deaths.NODE_LOST
    assert ray_deaths.error_cause(ActorDiedError()) is None  # Ray's bare text: no cause


def test_a_worker_handed_a_batch_while_ray_restarts_it_is_not_told_as_its_dead_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While Ray restarts a dead actor its actor table is RESTARTING and still names the dead process's pid (Ray 2.60,
    a local cluster, 2026-12-02: 0.5 s after a SIGKILL). A batch handed to it then took that pid as its process's, so
    the next death mid-batch was told as the first process's: `node-a:101 died mid-batch`, without the cause Ray
    recorded for the process that died (202, killed by the memory monitor). No pid is read from a RESTARTING actor;
    else the latest death on its node not yet told is the one."""
    from ray._private import state
    from ray.core.generated import common_pb2
    from ray.exceptions import ActorUnavailableError

    table = iter([{"State": "ALIVE", "Pid": 101}, {"State": "RESTARTING", "Pid": 101}])
    monkeypatch.setattr(state, "actors", lambda actor_id=None, **kwargs: next(table))
    replies = iter([ActorUnavailableError("The actor is temporarily unavailable: RpcError: RPC error: Socket closed "
                                          "rpc_code: 14.", None),
                    {"batches": [], "notes": [], "worker": {**WORKER, "pid": 303}, "attempt": 1, "seconds": 0.0,
                     "forward_seconds": 0.0, "encode_seconds": 0.0}])
    _answer_in_turn(monkeypatch, replies)
    rows = [_dead(NODE, 101, common_pb2.SYSTEM_ERROR, b"a", ended=1000),
            _dead(NODE, 202, common_pb2.NODE_OUT_OF_MEMORY, b"b", ended=2000)]
    rows[0].exit_detail = SIGTERM
    monkeypatch.setattr(ray_deaths, "dead_workers", lambda: rows)
    assert _death_notes_of_one_actor(tmp_path) == [
        "a Ray worker died (it was sent SIGTERM); its batch of 2 goes to another worker",
        "note: the Ray worker node-a:202 died mid-batch (Ray's memory monitor killed it: its node was low on memory) "
        "and Ray restarted it (now pid 303); its batch of 2 was rendered again there"]


def test_a_death_whose_error_says_no_cause_is_matched_on_its_own_node(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Where Ray's error gives no cause (an `ActorUnavailableError` of a closed socket) the worker table is read for the
    process the batch was handed to. It was matched by pid alone, on any node, and pids repeat across nodes: a farm
    in containers (KubeRay: a pid namespace per pod) gives every node's workers the same few pids. So another node's
    death of that pid, killed by its memory monitor, was told as this worker's cause. The process is matched on the
    node Ray's actor table names for it."""
    from ray._private import state
    from ray.core.generated import common_pb2
    from ray.exceptions import ActorUnavailableError

    monkeypatch.setattr(state, "actors", lambda actor_id=None, **kwargs: {
        "State": "ALIVE", "Pid": 101, "Address": {"NodeID": NODE.hex()}})
    replies = iter([ActorUnavailableError("The actor is temporarily unavailable: RpcError: RPC error: Socket closed "
                                          "rpc_code: 14.", None),
                    {"batches": [], "notes": [], "worker": {**WORKER, "pid": 303}, "attempt": 0, "seconds": 0.0,
                     "forward_seconds": 0.0, "encode_seconds": 0.0}])
    _answer_in_turn(monkeypatch, replies)
    rows = [_dead(NODE, 101, common_pb2.SYSTEM_ERROR, b"a", ended=1000),  # this worker's: Ray says nothing readable
            _dead(OTHER_NODE, 101, common_pb2.NODE_OUT_OF_MEMORY, b"b", ended=2000)]
    monkeypatch.setattr(ray_deaths, "dead_workers", lambda: rows)
    assert _death_notes_of_one_actor(tmp_path) == [
        "a Ray worker died; its batch of 2 goes to another worker"]
