"""The Ray executor's dispatch: the driver hands the pending jobs, cut into the same batches the local executor would,
to the idle :class:`~idcli.executors.ray_worker.RenderWorker` actors the backend started (ray.py), and passes every
reply to the commit path as it arrives. Faults (docs/scale-out.md):

- a worker process killed mid-batch: Ray restarts the actor (``max_restarts``) and re-runs the batch
  on it (``max_task_retries``); if that fails too the driver gives the batch to another actor, up to
  ``MAX_ATTEMPTS`` times. Replies are at-least-once, so jobs are settled by take (SHOT_tN: two shots alike
  share a key) and committed once;
- an ordinary error in a batch: those jobs are reported failed, the run goes on;
- a worker that cannot build its engine, dies twice in a row or is never placed (ray_placement.py): dropped, its
  batch to another; none left, the run stops with exit 4 and what arrived is committed;
- the cluster gone (its head stopped answering: ray_head.py; Ray Client's connection lost): exit 4, what arrived
  committed;
- Ctrl-C or SIGTERM of the driver: the replies already arrived are committed (the backend kills the actors).
Split from ray.py, which connects and starts the workers.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from typing import Any

from ..diagnostics import kind_of
from ..errors import ExecutorUnavailableError
from ..option_words import Option, words
from ..plan import Job
from . import BatchSink, RenderedBatch
from .local import group_jobs, widest_request
from .ray_deaths import actor_process, death_cause, error_cause
from .ray_failure_words import (
    engine_unavailable,
    first_line,
    last_error_line,
    none_could_start,
    restarted_note,
    task_error,
)
from .ray_head import HEAD_CHECK_SECONDS, HEAD_MISSES, HeadWatch
from .ray_import import import_ray
from .ray_placement import PlacementWatch

MAX_ATTEMPTS = 3  # dispatches of one batch whose worker died, before its jobs are reported failed
WAIT_SECONDS = 0.5  # ray.wait timeout: keeps Ctrl-C and SIGTERM prompt


class RayExecutor:
    """Hands batches to actors and their replies to the sink; see the module's docstring for faults."""

    name = "ray"

    def __init__(self, actors: list[Any], head: HeadWatch | None = None, request: dict[str, float] | None = None
                 ) -> None:
        self.actors = list(actors)
        self.head = head
        # ``request``: what each worker asks of the cluster (its CPUs and GPU), for the workers Ray has not placed.
        self.placement = PlacementWatch(self.actors, request) if request is not None else None
        # Driver-side figures for docs/performance.md: time receiving replies, and the workers' own times. ``workers``:
        # the workers started; ``workers_left``: those not dropped (killed: their engine could not be built, they
        # died twice in a row, or Ray never placed them).
        self.stats = {"workers": len(actors), "workers_left": len(actors), "replies": 0, "receive_seconds": 0.0,
                      "worker_seconds": 0.0, "forward_seconds": 0.0, "encode_seconds": 0.0, "worker_deaths": 0}
        self.dropped: set[int] = set()  # actors (by index) that cannot start or died repeatedly: killed, idle for good

    def _drop(self, index: int) -> None:
        """Take a worker out of the pool and kill its actor: on a shared farm its CPU or GPU goes back to the cluster
        now, not when the run ends (Ray keeps a live actor's resources, and restarts a dead one up to
        ``max_restarts``). The backend's ``close`` kills it again: a no-op in Ray."""
        self.dropped.add(index)
        self.stats["workers_left"] = len(self.actors) - len(self.dropped)
        with contextlib.suppress(Exception):
            import_ray().kill(self.actors[index], no_restart=True)

    def run(self, pending: list[Job], batch_size: int | str, save_masks: bool, sink: BatchSink) -> None:
        ray = import_ray()
        from ray.exceptions import RayActorError, RayError

        by_take = {job.stem: job for job in pending}  # SHOT_tN: unique in a plan, where a key is not
        settled: set[str] = set()  # takes committed or failed: a late duplicate reply is ignored
        queue: deque[tuple[list[Job], int]] = deque()  # filled in the try below: asking for ``auto`` talks to Ray
        dropped = self.dropped  # asking for ``auto`` may drop some
        idle: deque[int] = deque()  # actors by index
        inflight: dict[Any, tuple[int, list[Job], int]] = {}
        deaths: dict[int, int] = {}  # consecutive deaths per actor
        # Per actor, its process: read from Ray's actor table as its first batch is handed over, then the one its last
        # reply came from (Ray restarts a dead one): a death mid-batch is told as that process's (ray_deaths.py).
        pids: dict[int, int] = {}
        nodes: dict[int, str] = {}  # per actor, its process's node (its id, or the start of it), read with its pid
        told: set[bytes] = set()  # the dead worker processes whose cause a note gave (ray_deaths.py)
        # Rendered batches received and not yet handed to the sink: a Ctrl-C at any point still hands them over.
        arrived: deque[tuple[dict[str, Any], dict[str, Any]]] = deque()

        def accept(index: int, jobs: list[Job], reply: dict[str, Any]) -> None:
            self.stats["replies"] += 1
            for key in ("worker_seconds", "forward_seconds", "encode_seconds"):
                self.stats[key] += reply["seconds" if key == "worker_seconds" else key]
            worker = reply["worker"]
            if reply.get("attempt", 0):
                # Ray's own retry saved the batch: only its "(raylet)" lines said so, and those may not be read.
                cause, before = death_cause(str(worker.get("node") or ""), pids.get(index), told)
                sink.note(restarted_note(worker, pids.get(index) or before, len(jobs), cause))
            pids[index], nodes[index] = worker["pid"], str(worker.get("node") or "")
            arrived.extend((part, worker) for part in reply["batches"])
            for text in reply["notes"]:
                kind, said = kind_of(text)
                sink.note(f"{kind}: worker {worker['host']}:{worker['pid']}: {said}")

        def hand_over() -> None:
            # A part leaves ``arrived`` only once the sink holds it: a signal at any point before that (the queue
            # taking it, the report's lines) leaves it at the head, and the stop path hands it over again. The sink
            # commits and reports each job once, however often it is handed over.
            while arrived:
                part, worker = arrived[0]
                takes = part["takes"]
                fresh = [i for i, take in enumerate(takes) if take not in settled]
                if fresh:
                    jobs = [by_take[takes[i]] for i in fresh]
                    if part["images"] is None:
                        sink.failed(jobs, part["error"] or "failed on a Ray worker")
                    else:
                        sink.rendered(RenderedBatch(jobs, [part["images"][i] for i in fresh], part["started"],
                                                    part["finished"], worker, None, keys=part["keys"],
                                                    positions=fresh))
                    settled.update(job.stem for job in jobs)
                arrived.popleft()

        def receive(ref: Any) -> None:
            # The reference leaves ``inflight`` only once its reply is in ``arrived``: a signal while the reply is
            # fetched leaves it for the stop path to fetch again (a reply fetched twice is settled by take).
            index, jobs, attempts = inflight[ref]
            clock = time.perf_counter()
            try:
                reply = ray.get(ref)
            except RayActorError as exc:
                inflight.pop(ref)
                if getattr(exc, "actor_init_failed", False):  # an engine_factory whose failure escaped the worker
                    cannot_start(index, jobs, attempts, last_error_line(exc))
                    return
                # The worker died (killed, out of host memory, node lost) and Ray's own retry failed too; or
                # the whole cluster went away, and no other worker will do better.
                if self.head is not None and not self.head.answers():
                    queue.appendleft((jobs, attempts))
                    self.head.gone()
                self.stats["worker_deaths"] += 1
                # Ray's error says why where it can; else the worker table, of the process the batch was handed to.
                why = error_cause(exc) or death_cause(nodes.get(index), pids.get(index), told)[0]
                pids.pop(index, None)  # its process died: the next one is read as its next batch is handed over
                nodes.pop(index, None)
                deaths[index] = deaths.get(index, 0) + 1
                if deaths[index] < 2:
                    idle.append(index)
                else:
                    self._drop(index)
                    sink.note(f"a Ray worker died twice in a row; it is stopped and its CPU/GPU handed back to the "
                              f"cluster ({self._left()})")
                if attempts + 1 < MAX_ATTEMPTS:
                    sink.note(f"a Ray worker died{f' ({why})' if why else ''}; its batch of {len(jobs)} goes to "
                              "another worker")
                    queue.appendleft((jobs, attempts + 1))
                else:
                    fail([j for j in jobs if j.stem not in settled], f"the Ray worker rendering it died "
                         f"{MAX_ATTEMPTS} times ({why or first_line(exc)})")
                return
            except (RayError, ConnectionError) as exc:
                inflight.pop(ref)
                if not isinstance(exc, RayError) or not ray.is_initialized():
                    # Ray Client lost its server: its data channel failed (ConnectionError), or it gave the connection
                    # up and Ray itself says it has not been started. The jobs are not at fault.
                    queue.appendleft((jobs, attempts))
                    self._if_connection_lost()
                    raise
                if (unavailable := engine_unavailable(exc)) is not None:
                    cannot_start(index, jobs, attempts, *unavailable)
                    return
                idle.append(index)
                fail([j for j in jobs if j.stem not in settled], task_error(exc))
                return
            accept(index, jobs, reply)
            inflight.pop(ref, None)
            self.stats["receive_seconds"] += time.perf_counter() - clock
            deaths[index] = 0
            idle.append(index)

        def cannot_start(index: int, jobs: list[Job], attempts: int, why: str, missing: bool = True) -> None:
            # The engine could not be built there (a model missing from that node's cache...): the worker is
            # dropped and its batch goes to another; none left, the run stops.
            self._drop(index)
            if len(dropped) == len(self.actors):
                raise ExecutorUnavailableError(none_could_start(why, missing)) from None
            sink.note(self._could_not_start(why))
            queue.appendleft((jobs, attempts))

        def fail(jobs: list[Job], error: str) -> None:
            if jobs:
                settled.update(job.stem for job in jobs)
                sink.failed(jobs, error)

        def dispatch() -> None:
            while queue and idle:
                index = idle.popleft()
                jobs, attempts = queue.popleft()
                jobs = [j for j in jobs if j.stem not in settled]
                if jobs:
                    if index not in pids and (process := actor_process(self.actors[index])) is not None:
                        pids[index], nodes[index] = process
                    ref = self.actors[index].render.remote(jobs, len(jobs), save_masks)
                    inflight[ref] = (index, jobs, attempts)
                else:
                    idle.append(index)

        try:
            try:
                # The workers' ``auto`` sizes are asked for here, inside the handling of a lost cluster: a Ray Client
                # head gone while they answer is exit 4, "went away", as mid-run (it was a ConnectionError, exit 5).
                queue.extend((batch, 0) for batch in self._batches(pending, batch_size, sink))
                idle.extend(i for i in range(len(self.actors)) if i not in dropped)
                while queue or inflight:
                    dispatch()
                    if not inflight:
                        # Every worker was dropped (each died twice in a row, or Ray never placed it): what is left
                        # cannot run here, and the jobs are not at fault. `ray stop` ends the workers first and the head
                        # a moment later, so a head still answering now may be going: it is given a few seconds to say.
                        if self.head is not None and self.head.stops_answering(HEAD_CHECK_SECONDS * HEAD_MISSES):
                            self.head.gone()
                        left = sum(len([j for j in jobs if j.stem not in settled]) for jobs, _ in queue)
                        raise ExecutorUnavailableError(
                            f"no Ray worker is left (each died twice in a row); {left} job(s) not rendered; the images "
                            "committed so far are kept: run again to resume (docs/scale-out.md, \"Faults\")")
                    try:
                        ready, _ = ray.wait(list(inflight), num_returns=1, timeout=WAIT_SECONDS)
                    except Exception:  # once Ray Client gave the connection up, Ray says it has not been started
                        self._if_connection_lost()
                        raise
                    for ref in ready:
                        receive(ref)
                    # The workers that replied get their next batches before the replies go to the commit queue,
                    # which waits while two batches queue there: a worker never idles through that wait.
                    dispatch()
                    hand_over()
                    if self.head is not None:  # also while replies arrive: a frozen head lets the workers go on
                        self.head.check()
                    if not ready:
                        for index in self._unplaced(sink):
                            with contextlib.suppress(ValueError):
                                idle.remove(index)
                            for ref in [ref for ref, (i, _, _) in inflight.items() if i == index]:
                                _, jobs, attempts = inflight.pop(ref)
                                queue.appendleft((jobs, attempts))
            except ConnectionError:
                # Ray Client lost its server (its data channel did not come back in Ray's 30 s grace): any Ray call
                # raises it, a `.remote()` as well as `ray.get`. Not this machine's OSError (exit 5, "output folder").
                self._if_connection_lost()
                raise
        except ExecutorUnavailableError:
            # The cluster went away: what already arrived is committed (the run keeps it), then the run stops.
            for _ in range(len(arrived) + 1):
                with contextlib.suppress(Exception):
                    hand_over()
            raise
        except KeyboardInterrupt:
            # Ctrl-C or SIGTERM: commit what has already arrived, then stop (the backend kills the actors).
            with contextlib.suppress(Exception, KeyboardInterrupt):
                if inflight:
                    ready, _ = ray.wait(list(inflight), num_returns=len(inflight), timeout=0)
                    for ref in ready:
                        receive(ref)
            for _ in range(len(arrived) + 1):  # each try hands over at least one batch
                with contextlib.suppress(Exception, KeyboardInterrupt):
                    hand_over()
            raise

    def _if_connection_lost(self) -> None:
        """Raise "the Ray cluster went away" (exit 4) when this process's connection to it is gone: Ray Client gave it
        up (its data channel failed and did not come back in Ray's 30 s grace), or the head no longer answers."""
        if not import_ray().is_initialized() or (self.head is not None and not self.head.answers()):
            if self.head is not None:
                self.head.gone()
            raise ExecutorUnavailableError("the Ray cluster this run was connected to went away; the images committed "
                                           "so far are kept: run again to resume")

    def _batches(self, pending: list[Job], batch_size: int | str, sink: BatchSink) -> list[list[Job]]:
        """The local executor's batches: groups in plan order, each cut at the size asked for. ``auto`` asks every
        worker (its engine knows its own device's memory) and cuts at the smallest answer: every batch then fits on
        every worker, and which batches there are never depends on which worker is given which."""
        groups = group_jobs(pending)
        sizes = [batch_size] * len(groups) if isinstance(batch_size, int) else self._smallest_suggestions(groups, sink)
        return [jobs[i:i + size] for jobs, size in zip(groups, sizes, strict=True) for i in range(0, len(jobs), size)]

    def _smallest_suggestions(self, groups: list[list[Job]], sink: BatchSink) -> list[int]:
        """Per group, the smallest batch size the live workers suggest, asked of all of them at once (each may still
        be building its engine: seconds). A worker that cannot answer (its engine could not be built, it died) is
        dropped; none left, the run stops."""
        ray = import_ray()
        from ray.exceptions import RayActorError, RayTaskError

        live = [i for i in range(len(self.actors)) if i not in self.dropped]
        asked = {i: [self.actors[i].suggest_batch_size.remote(widest_request(jobs)) for jobs in groups] for i in live}
        waiting = [ref for refs in asked.values() for ref in refs]
        while waiting:
            try:
                _, waiting = ray.wait(waiting, num_returns=len(waiting), timeout=WAIT_SECONDS)
            except Exception:  # as in ``run``: Ray Client lost its server (ConnectionError), or gave it up
                self._if_connection_lost()
                raise
            if waiting and self.head is not None:
                self.head.check()
            if waiting and (unplaced := self._unplaced(sink)):
                left_out = {id(ref) for index in unplaced for ref in asked.pop(index)}
                waiting = [ref for ref in waiting if id(ref) not in left_out]
        answers: dict[int, list[int]] = {}
        cannot: list[tuple[str, bool]] = []
        for index, refs in asked.items():
            try:
                answers[index] = [int(size) for size in ray.get(refs)]
                continue
            except RayActorError as exc:  # an engine_factory whose failure escaped the worker, or a worker that died
                if self.head is not None and not self.head.answers():
                    self.head.gone()
                unavailable = (last_error_line(exc), True)
            except RayTaskError as exc:
                if (refused := engine_unavailable(exc)) is None:
                    raise
                unavailable = refused
            self._drop(index)
            cannot.append(unavailable)
        if not answers:
            raise ExecutorUnavailableError(none_could_start(*cannot[-1]))
        for why, _ in cannot:
            sink.note(self._could_not_start(why))
        sizes = [min(answer[g] for answer in answers.values()) for g in range(len(groups))]
        differing = [g for g in range(len(groups)) if len({answer[g] for answer in answers.values()}) > 1]
        if differing:
            sink.note(self._suggestions_differ(answers, differing, sizes))
        return sizes

    def _unplaced(self, sink: BatchSink) -> list[int]:
        """Called while waiting: the workers Ray has still not placed after ``PLACEMENT_WAIT_SECONDS``, now dropped
        (their batches go to the others), with a note; raises when no worker was placed at all."""
        if self.placement is None:
            return []
        live = [i for i in range(len(self.actors)) if i not in self.dropped]
        unplaced = self.placement.overdue(live, sink)
        for index in unplaced:
            self._drop(index)
        if unplaced:
            sink.note(f"note: {self.placement.describe(unplaced)}; {'it is' if len(unplaced) == 1 else 'they are'} "
                      f"stopped ({self._left()})")
        return unplaced

    def _suggestions_differ(self, answers: dict[int, list[int]], differing: list[int], sizes: list[int]) -> str:
        """The one note when the workers' engines answered ``auto`` differently (a farm mixing an 80 GB and a 24 GB
        GPU): each worker's answer, the size used, and how to choose one instead."""
        names = self._names(list(answers))
        first = differing[0]
        each = ", ".join(f"{names[i]} {answers[i][first]}" for i in answers)
        more = (f"; {len(differing) - 1} other batch group(s) likewise at their smallest" if len(differing) > 1
                else "")
        return words(("note: ", Option("batch_size", "auto"), ": the Ray workers suggest different sizes (", each,
                      f"); batches are cut at the smallest, {sizes[first]}{more}, so every batch fits on every worker "
                      "and no image depends on which worker rendered it; a fixed ", Option("batch_size"), " overrides"))

    def _names(self, indexes: list[int]) -> dict[int, str]:
        """``host:pid`` (and the GPU, if any) of each worker, for a note; ``worker N`` where it cannot say."""
        names = {i: f"worker {i + 1}" for i in indexes}
        with contextlib.suppress(Exception):
            ray = import_ray()
            described = ray.get([self.actors[i].describe.remote() for i in indexes], timeout=30)
            for i, worker in zip(indexes, described, strict=True):
                gpu = f" ({worker['gpu']})" if worker.get("gpu") else ""
                names[i] = f"{worker['host']}:{worker['pid']}{gpu}"
        return names

    def _could_not_start(self, why: str) -> str:
        return f"a Ray worker could not start ({why}); it is stopped and its CPU/GPU handed back ({self._left()})"

    def _left(self) -> str:
        left = len(self.actors) - len(self.dropped)
        return f"the run goes on with {left} worker{'s' if left != 1 else ''}" if left else "no worker is left"

    def close(self) -> None:
        pass
