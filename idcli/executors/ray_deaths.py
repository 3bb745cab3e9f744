"""Why a Ray worker's process died, in words, for the notes the driver gives when a worker died mid-batch: Ray
restarted it and ran its batch again, or its batch goes to another worker.

Ray records each dead process in the GCS worker table (its node, pid, job, ``exit_type``, ``exit_detail``) and puts
the same ``exit_type`` and ``exit_detail`` in the text of the ``ActorDiedError`` a batch raises when Ray's own retry
failed too. What Ray 2.60 knows (measured on a local cluster, tests/test_ray_deaths.py):

- ``NODE_OUT_OF_MEMORY``: Ray's memory monitor killed it (its node above ``memory_usage_threshold``, 95 % by default);
- SIGTERM: the worker's own handler says so ("The process receives a SIGTERM");
- SIGKILL, a crash (SIGSEGV) and ``os._exit`` alike: Ray only saw the connection close ("connection error code 2. End
  of file") and cannot tell them apart, so the words do not either;
- its node gone: "The actor died because its node has died".

The actor's own record (its ``DeathCause``) is cleared once it is alive again, which it is by the time a restarted
batch's reply arrives, so the worker table is read. Ray's public state API (``ray.util.state``) needs the dashboard,
which a cluster idcli starts does not run, so the internal tables are read, as ``ray_placement.is_placed`` reads the
actor table (Ray 2.60), guarded: another Ray, Ray Client (no GCS here), any error: nothing is added to the note. One
read is one GCS call (a millisecond), once per death or per worker, given up after ``GCS_READ_SECONDS``
(gcs_deadline.py: a head whose GCS stopped answering held the driver here, with no timeout, before 2026-12-02)."""

from __future__ import annotations

import re
from typing import Any

from .gcs_deadline import GCS_READ_SECONDS, within

LOW_MEMORY = "Ray's memory monitor killed it: its node was low on memory"
# Ray cannot tell SIGKILL from a crash or an exit without a word: it saw the worker's connection close.
NO_WORD = ("it ended without a word to Ray: killed with SIGKILL (by hand, or by the kernel when the node ran out of "
           "memory) or crashed")
NODE_LOST = "its node was lost"
# The exit types of a death the worker did not choose (Ray's WorkerExitType; the INTENDED_* ones are exits Ray or
# idcli asked for: an idle worker let go, an actor killed with ray.kill).
UNEXPECTED = ("SYSTEM_ERROR", "USER_ERROR", "NODE_OUT_OF_MEMORY")


def in_words(exit_type: str, detail: str) -> str | None:
    """Why a process died, from Ray's ``exit_type`` name and ``exit_detail``; None where Ray does not say."""
    if exit_type == "NODE_OUT_OF_MEMORY":
        return LOW_MEMORY
    if exit_type not in UNEXPECTED:
        return None
    if signal := re.search(r"receives a (SIG[A-Z0-9]+)", detail):
        return f"it was sent {signal[1]}"
    if "End of file" in detail:
        return NO_WORD
    if code := re.search(r"exit code (-?\d+)", detail):
        return f"it exited with code {code[1]}"
    return None


def error_cause(exc: BaseException) -> str | None:
    """Why the worker behind ``exc`` died (Ray's retry of the batch failed too), from the error's own text; None
    where it does not say. An ``ActorDiedError`` holds the dead process's exit type and detail, or says its node died;
    an ``ActorUnavailableError`` (the retry met the actor still restarting) the first death's detail, after
    ``UnexpectedSystemExit:``. Also through Ray Client: no GCS call."""
    text = str(exc)
    if "because its node has died" in text:
        return NODE_LOST
    if said := re.search(r"Worker exit type: (\w+) Worker exit detail: (.*)", text, re.DOTALL):
        return in_words(said[1], said[2])
    if said := re.search(r"UnexpectedSystemExit: (.*)", text, re.DOTALL):
        return in_words("SYSTEM_ERROR", said[1])
    return None


def death_cause(node: str | None, pid: int | None, seen: set[bytes]) -> tuple[str | None, int | None]:
    """Why a worker process of this run died, and its pid; (None, None) where Ray's worker table has no such death.
    ``pid``: the dead process (the one the batch was handed to), on ``node`` where given (its id or the start of it,
    as a reply names it); without a pid, a death on ``node`` not yet told (``seen``: the dead processes already told,
    updated). Found, the cause is None where Ray does not say why."""
    if pid is None and not node:
        return None, None
    try:
        from ray.core.generated import common_pb2

        rows = within(GCS_READ_SECONDS, dead_workers)  # a head that stopped answering: TimeoutError, no cause
        name = common_pb2.WorkerExitType.Name
    except Exception:
        return None, None
    # Without a pid, the latest death on that node: the one Ray's restart followed (when one worker of this run died
    # there in that while; two on one node, as a node of several GPUs may hold, cannot be told apart without it).
    for row in sorted(rows, key=lambda row: row.end_time_ms, reverse=True):
        if (name(row.exit_type) not in UNEXPECTED or (node and not row.worker_address.node_id.hex().startswith(node))
                or (pid is not None and row.pid != pid) or row.worker_address.worker_id in seen):
            continue
        seen.add(row.worker_address.worker_id)
        return in_words(name(row.exit_type), row.exit_detail), row.pid
    return None, None


def dead_workers() -> list[Any]:
    """This run's (this Ray job's) worker processes that have died, from the GCS worker table."""
    import ray
    from ray._private import state
    from ray.core.generated import gcs_pb2

    job = ray.get_runtime_context().get_job_id()
    table = state.state._connect_and_get_accessor().get_worker_table()
    rows = [gcs_pb2.WorkerTableData.FromString(row) for row in table]
    return [row for row in rows if not row.is_alive and row.job_id.hex() == job]


def actor_process(actor: Any) -> tuple[int, str] | None:
    """The pid of the process running ``actor`` now and its node's id (hex), from the cluster's actor table; None where
    Ray cannot say (not placed yet, Ray Client, another Ray). Read as a batch is handed over, so that a death mid-batch
    is matched to its own process, not to another of that node's (Ray's worker table holds no actor's id), nor to
    another node's of the same pid (a pid namespace per container gives every node the same few). None for an actor
    Ray is restarting (or gave up on): its entry still names the process that died (RESTARTING, Ray 2.60, until the
    new one is ALIVE); a first process building its engine (PENDING_CREATION) is named."""
    try:
        from ray._private import state

        entry = within(GCS_READ_SECONDS, lambda: state.actors(actor_id=actor._actor_id.hex()))
        pid = None if entry.get("State") in ("RESTARTING", "DEAD") else entry.get("Pid")
        node = str((entry.get("Address") or {}).get("NodeID") or "")
    except Exception:
        return None
    return (pid, node) if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None
