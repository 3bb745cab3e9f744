"""Why a Ray worker's process died, as Ray's GCS recorded it, for the note the driver gives when Ray restarted the
worker and ran its batch again.

Ray's memory monitor kills a worker process when its node runs low on host memory (``memory_usage_threshold``, 95 %
by default), and Ray restarts the actor: the driver only saw the batch come back from a new process. The actor's own
record (``ray._private.state.actors``: its ``DeathCause``) is cleared once it is alive again, which it is by the time
the batch's reply arrives; the GCS worker table keeps each dead process (its node, pid, job, ``exit_type``
``NODE_OUT_OF_MEMORY``). Ray's public state API (``ray.util.state``) needs the dashboard, which a cluster idcli starts
does not run, so the internal table is read, as ``_placed`` reads the actor table (Ray 2.60), guarded: another Ray,
Ray Client (no GCS here), any error: nothing is added to the note. One read is one GCS call (a millisecond)."""

from __future__ import annotations

from typing import Any

LOW_MEMORY = "Ray's memory monitor killed it: its node was low on memory"


def death_cause(worker: dict[str, Any], pid: int | None, seen: set[bytes]) -> str | None:
    """Why the process before ``worker`` (the restarted one, as its reply names it: its ``node``) died, when Ray killed
    it for low memory; else None. ``pid``: the dead process, when an earlier reply named it; without it, a death of
    this run's on that node not yet told (``seen``: the dead processes already told, updated)."""
    try:
        from ray.core.generated import common_pb2

        rows = dead_workers()
        out_of_memory = common_pb2.NODE_OUT_OF_MEMORY
    except Exception:
        return None
    node = str(worker.get("node") or "")
    for row in rows:
        if (row.exit_type != out_of_memory or not node or not row.worker_address.node_id.hex().startswith(node)
                or (pid is not None and row.pid != pid) or row.worker_address.worker_id in seen):
            continue
        seen.add(row.worker_address.worker_id)
        return LOW_MEMORY
    return None


def dead_workers() -> list[Any]:
    """This run's (this Ray job's) worker processes that have died, from the GCS worker table."""
    import ray
    from ray._private import state
    from ray.core.generated import gcs_pb2

    job = ray.get_runtime_context().get_job_id()
    table = state.state._connect_and_get_accessor().get_worker_table()
    rows = [gcs_pb2.WorkerTableData.FromString(row) for row in table]
    return [row for row in rows if not row.is_alive and row.job_id.hex() == job]
