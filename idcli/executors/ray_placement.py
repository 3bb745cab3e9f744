"""Whether Ray has placed each worker on a node, asked while the driver waits (docs/scale-out.md, "Faults"). An actor
whose resources the cluster does not have free now is not an error in Ray: it waits, for ever, and so did the run
(``--device cuda`` on a farm whose GPUs another job holds), with no word. Now one note after
``PLACEMENT_NOTE_SECONDS``; after ``PLACEMENT_WAIT_SECONDS`` the workers still not placed are dropped, or, when no
worker was placed, the run stops with exit 4. Split from ray.py; ray_dispatch.py asks it while it waits."""

from __future__ import annotations

import time
from typing import Any

from ..errors import ExecutorUnavailableError
from . import BatchSink
from .gcs_deadline import GCS_READ_SECONDS, within
from .ray_head import HEAD_CHECK_SECONDS
from .ray_import import import_ray

# A worker Ray has not placed on a node (the GPUs or CPUs it asks for are all held, by another job most often) is
# waited for this long; then it is dropped, and when no worker was placed the run stops with exit 4 (docs/scale-out.md,
# "Faults"). Five minutes: an autoscaling cluster adds a node within them; longer, another job holds the resources, and
# a pipeline is better told (and its scheduler retries: a re-run resumes) than left hanging with no word.
PLACEMENT_WAIT_SECONDS = 300.0
PLACEMENT_NOTE_SECONDS = 30.0  # then one note says which resources the run waits for and what the cluster has free


class PlacementWatch:
    """Whether Ray has placed each worker on a node. Asked while the driver waits, every ``HEAD_CHECK_SECONDS``: one
    note after ``PLACEMENT_NOTE_SECONDS``; after ``PLACEMENT_WAIT_SECONDS`` the workers still not placed are handed
    back to be dropped, or, when no worker was placed, the run stops with exit 4."""

    def __init__(self, actors: list[Any], request: dict[str, float]) -> None:
        self.actors = list(actors)
        self.request = request  # what each worker asks for: {"CPU": 1.0} or {"GPU": 1.0, "CPU": 1.0}
        self.placed: set[int] = set()
        self.started = time.monotonic()
        self._next = self.started + HEAD_CHECK_SECONDS
        self._noted = False

    def overdue(self, live: list[int], sink: BatchSink) -> list[int]:
        now = time.monotonic()
        if now < self._next or all(i in self.placed for i in live):
            return []
        self._next = now + HEAD_CHECK_SECONDS
        waiting = []
        for index in live:
            if index in self.placed:
                continue
            try:
                placed = is_placed(self.actors[index])
            except TimeoutError:  # the head's GCS did not answer (the head watch tells whether it is gone)
                continue
            if placed is False:
                waiting.append(index)
            else:  # placed, or Ray cannot say (waited for as before)
                self.placed.add(index)
        if not waiting:
            return []
        if now - self.started >= PLACEMENT_WAIT_SECONDS:
            if len(waiting) == len(live):
                raise ExecutorUnavailableError(
                    f"no Ray worker was placed in {PLACEMENT_WAIT_SECONDS:g} s: each needs {self._request()} on one "
                    f"node, and the Ray cluster has {self._free()}; nothing was rendered: run again when other jobs "
                    "have freed them (docs/scale-out.md, \"Faults\")")
            return waiting
        if now - self.started >= PLACEMENT_NOTE_SECONDS and not self._noted:
            self._noted = True
            then = ("they are stopped" if len(waiting) < len(live) else "the run stops with exit 4")
            sink.note(f"note: waiting for Ray to place {len(waiting)} of {len(live)} worker(s): each needs "
                      f"{self._request()}, and the Ray cluster has {self._free()}; if still not placed after "
                      f"{PLACEMENT_WAIT_SECONDS:g} s, {then}")
        return []

    def describe(self, unplaced: list[int]) -> str:
        return (f"{len(unplaced)} Ray worker(s) not placed in {PLACEMENT_WAIT_SECONDS:g} s (each needs "
                f"{self._request()}; the Ray cluster has {self._free()})")

    def _request(self) -> str:
        return " and ".join(f"{amount:g} {name}" for name, amount in sorted(self.request.items(), reverse=True))

    def _free(self) -> str:
        """What the cluster has free of what a worker asks for, e.g. ``0 of 8 GPUs and 40 of 64 CPUs free``."""
        ray = import_ray()
        try:
            free, total = within(GCS_READ_SECONDS, lambda: (ray.available_resources(), ray.cluster_resources()))
        except Exception:  # a TimeoutError too: the head did not answer in time
            return "free resources Ray did not say"
        return " and ".join(f"{free.get(name, 0.0):g} of {total.get(name, 0.0):g} {name}s"
                            for name in sorted(self.request, reverse=True)) + " free"


def is_placed(actor: Any) -> bool | None:
    """Whether Ray has placed ``actor`` on a node (a process of its own runs it: building its engine, or ready), from
    the cluster's actor table; None where Ray cannot say. An actor still waiting for its resources is pending with no
    process (pid 0). Ray's public state API (``ray.util.state``) needs the dashboard, which a cluster idcli starts for
    itself does not run (nor need a farm's): its internal table is read instead (Ray 2.60), guarded."""
    try:
        from ray._private import state

        entry = within(GCS_READ_SECONDS, lambda: state.actors(actor_id=actor._actor_id.hex()))
    except TimeoutError:
        raise  # the head did not answer in time: asked again at the next check, not taken as placed
    except Exception:
        return None
    if not isinstance(entry, dict) or "State" not in entry:
        return None
    return not (entry["State"] in ("DEPENDENCIES_UNREADY", "PENDING_CREATION") and not entry.get("Pid"))
