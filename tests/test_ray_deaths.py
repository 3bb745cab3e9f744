"""A Ray worker killed by Ray's memory monitor (its node low on host memory) and restarted by Ray was said only as
"died mid-batch and Ray restarted it". Ray's GCS worker table keeps the dead process with ``exit_type``
``NODE_OUT_OF_MEMORY``; the note now says so. Ray's memory monitor cannot be made to kill one worker at one moment
reliably on two shared cores, so the table is a stand-in holding Ray's own records (``WorkerTableData``), and Ray's
``wait``/``get`` give the reply of a batch Ray ran again (``attempt`` 1). A real ``kill -9`` (SYSTEM_ERROR, no
cause added) is tests/test_ray_executor.py's."""

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
WORKER = {"host": "node-a", "pid": 202, "node": NODE.hex()[:16]}


def _dead(node: bytes, pid: int, exit_type: int, worker_id: bytes) -> Any:
    from ray.core.generated import gcs_pb2

    row = gcs_pb2.WorkerTableData(is_alive=False, pid=pid, exit_type=exit_type, exit_detail="...")
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


def test_a_worker_ray_killed_for_low_memory_is_said_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ray.core.generated import common_pb2

    rows = [_dead(NODE, 101, common_pb2.SYSTEM_ERROR, b"a"),
            _dead(OTHER_NODE, 101, common_pb2.NODE_OUT_OF_MEMORY, b"b"),
            _dead(NODE, 101, common_pb2.NODE_OUT_OF_MEMORY, b"c")]
    assert _restart_notes(tmp_path, monkeypatch, lambda: rows) == [
        "note: the Ray worker on node-a died mid-batch (Ray's memory monitor killed it: its node was low on memory) "
        "and Ray restarted it (now pid 202); its batch of 2 was rendered again there"]


@pytest.mark.parametrize("kind", ["killed otherwise", "another node's", "unreadable"])
def test_a_death_ray_did_not_record_as_low_memory_is_said_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     kind: str) -> None:
    from ray.core.generated import common_pb2

    def rows() -> list[Any]:
        if kind == "unreadable":  # Ray Client (no GCS on this side), another Ray: nothing added
            raise AttributeError("'GlobalState' object has no attribute '_connect_and_get_accessor'")
        node = OTHER_NODE if kind == "another node's" else NODE
        exit_type = common_pb2.NODE_OUT_OF_MEMORY if kind == "another node's" else common_pb2.SYSTEM_ERROR
        return [_dead(node, 101, exit_type, b"a")]

    assert _restart_notes(tmp_path, monkeypatch, rows) == [
        "note: the Ray worker on node-a died mid-batch and Ray restarted it (now pid 202); its batch of 2 was rendered "
        "again there"]


def test_each_low_memory_death_is_told_once_and_by_its_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    from ray.core.generated import common_pb2

    monkeypatch.setattr(ray_deaths, "dead_workers", lambda: [_dead(NODE, 101, common_pb2.NODE_OUT_OF_MEMORY, b"a")])
    seen: set[bytes] = set()
    assert ray_deaths.death_cause(WORKER, 303, seen) is None  # another process of that node died so
    assert ray_deaths.death_cause(WORKER, 101, seen) == ray_deaths.LOW_MEMORY
    assert ray_deaths.death_cause(WORKER, None, seen) is None  # told already
