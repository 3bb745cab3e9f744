"""The Ray executor: batches rendered by Ray Core actors on many GPUs and machines; this process commits.

The driver (this process) has already validated, planned and resolved identities, and holds the
output folder's lock. Here it starts one :class:`~idcli.executors.ray_worker.RenderWorker` actor per
GPU (``num_gpus=1``; CPU actors where the cluster has no GPU), cuts the pending jobs into the same
batches the local executor would, hands each batch to an idle actor, and passes every reply to the
commit path as it arrives. Faults (docs/scale-out.md):

- a worker process killed mid-batch: Ray restarts the actor (``max_restarts``) and re-runs the batch
  on it (``max_task_retries``); if that fails too the driver gives the batch to another actor, up to
  ``MAX_ATTEMPTS`` times. Replies are at-least-once, so jobs are settled by take (SHOT_tN: two shots alike
  share a key) and committed once;
- an ordinary error in a batch: those jobs are reported failed, the run goes on;
- Ctrl-C or SIGTERM of the driver: the replies already arrived are committed, the actors killed;
- ``kill -9`` of the driver: Ray ends the actors it owned; nothing partial is left (the store's
  protocol) and a plain re-run resumes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import time
from collections import deque
from typing import Any

from ..diagnostics import kind_of
from ..errors import ExecutorUnavailableError, InputError
from ..library_quiet import quiet_ray_client_timeout
from ..models import ModelIdentity
from ..option_words import EachSurface, Option, words
from ..plan import Job
from ..runtime import Runtime, check_device_name
from . import BatchSink, RenderedBatch
from .cluster_hangup import hangup_kept_from_cluster
from .gcs_deadline import GCS_READ_SECONDS, shut_down, within
from .local import group_jobs, widest_request
from .ray_deaths import actor_process, death_cause, error_cause
from .ray_head import (
    HEAD_CHECK_SECONDS,
    HEAD_MISSES,
    HeadWatch,
    check_head_answers,
    refused_hint,
)

MAX_ATTEMPTS = 3  # dispatches of one batch whose worker died, before its jobs are reported failed
ACTOR_MAX_RESTARTS = 4  # per actor: a worker killed more often than this is dropped from the pool
ACTOR_MAX_TASK_RETRIES = 1  # Ray re-runs a batch in flight once on the restarted actor
WAIT_SECONDS = 0.5  # ray.wait timeout: keeps Ctrl-C and SIGTERM prompt
# A worker Ray has not placed on a node (the GPUs or CPUs it asks for are all held, by another job most often) is
# waited for this long; then it is dropped, and when no worker was placed the run stops with exit 4 (docs/scale-out.md,
# "Faults"). Five minutes: an autoscaling cluster adds a node within them; longer, another job holds the resources, and
# a pipeline is better told (and its scheduler retries: a re-run resumes) than left hanging with no word.
PLACEMENT_WAIT_SECONDS = 300.0
PLACEMENT_NOTE_SECONDS = 30.0  # then one note says which resources the run waits for and what the cluster has free
# The kinds of address a render takes (docs/scale-out.md), as an error about another kind names them.
ALLOWED_ADDRESSES = ("give the head's HOST:PORT (6379 by default), auto, or ray://HOST:PORT to connect through Ray "
                     "Client (the head's Ray Client server, port 10001 by default)")


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        if isinstance(exc, ModuleNotFoundError) and exc.name == "ray":
            raise ExecutorUnavailableError(Option("executor", "ray"), " needs Ray, which is not installed here: pip "
                                           "install 'idcli[ray]' (from a source checkout: pip install -e '.[ray]'; Ray "
                                           "2.60 or later)") from None
        # Ray is there but does not import (a dependency missing or of another version, a wheel for another Python):
        # "pip install" would change nothing, so what failed is said.
        raise ExecutorUnavailableError(Option("executor", "ray"), f" needs Ray, which is installed but does not import "
                                       f"here ({type(exc).__name__}: {_first_line(exc)}); reinstall it: pip install "
                                       "--force-reinstall 'ray>=2.60'") from None
    return ray


class RayBackend:
    """A connection to a Ray cluster for one render: the runtime the workers will have, the actors, and
    clean-up. ``address``: a cluster address (default ``$RAY_ADDRESS``, else a local cluster is started
    for this run). When Ray is already initialised in this process (a pipeline or a test did it), that
    connection is used and left open."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, engine_factory: Any = None,
                 worker_cpus: float | None = None) -> None:
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise InputError(Option("workers", workers), ": give a whole number, 1 or more", field="workers")
        if address is not None and not isinstance(address, str):
            raise InputError(f"ray_address {address!r}: give a cluster address such as 'head-node:6379'")
        if worker_cpus is not None and (isinstance(worker_cpus, bool) or not isinstance(worker_cpus, int | float)
                                        or not worker_cpus >= 0):
            raise InputError(f"worker_cpus {worker_cpus!r}: give a number of CPUs, 0 or more (e.g. 0.5)")
        self.address = address
        self.workers = workers
        self.engine_factory = engine_factory
        self.worker_cpus = worker_cpus
        self._connected = False
        self._owns_connection = False
        self._actors: list[Any] = []
        self._target: str | None = None  # the address this backend connected to, as given
        self._put_back: list[Any] = []  # what _quiet_ray changed in this process, undone by close()
        self._head: HeadWatch | None = None  # the watch on the cluster's head, once the workers are started

    # -- connection -----------------------------------------------------------------------------------

    def connect(self) -> None:
        if self._connected:
            return
        ray = _ray()
        if not ray.is_initialized():
            target = self.address or os.environ.get("RAY_ADDRESS") or "local"
            self._target = target
            if target != target.strip():
                raise self._padded_address(target)
            if target.startswith(("http://", "https://")):
                raise self._dashboard_address(target)
            if target.startswith("ray://"):
                self._check_client_address(target)
            elif "://" in target:
                self._check_kind(target)
            else:
                if target not in ("auto", "local"):
                    self._check_form(target)
                check_head_answers(target)
            # ray.init replaces the driver's SIGTERM handler with one that exits at once; idcli's own
            # (commit what arrived, exit 143) is put back.
            handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
            debug = bool(os.environ.get("IDCLI_DEBUG"))
            self._quiet_ray(debug)
            self._put_back.extend(_no_auto_init())
            try:
                # The workers' own output (stdout, stderr, their logging) stays in Ray's session folder on their node,
                # forwarded to this terminal only under IDCLI_DEBUG (docs/scale-out.md, "What a run prints").
                # Ray Client's "connection timed out" UserWarning: the error below says it. Filter entries of
                # idcli's own, not a catch_warnings block, which would undo a host thread's own (library_quiet.py).
                # Ray Client sets the `ray` logger's level itself (INFO), whatever configure_logging says: its
                # "Encountered connection issues in the data channel" warnings, the error line says it.
                quiet = {} if debug else {"logging_level": logging.ERROR}
                with contextlib.nullcontext() if debug else quiet_ray_client_timeout(), \
                        hangup_kept_from_cluster(target == "local"):
                    ray.init(address=target, include_dashboard=False, log_to_driver=debug, configure_logging=False,
                             **quiet)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise ExecutorUnavailableError(f"cannot connect to the Ray cluster at {target}: "
                                               f"{str(exc).strip().splitlines()[0] if str(exc).strip() else exc}"
                                               f"{refused_hint(target, exc)}") from None
            finally:
                for sig, handler in handlers.items():
                    if handler is not None:
                        signal.signal(sig, handler)
            self._owns_connection = True
        self._connected = True

    def _dashboard_address(self, target: str) -> ExecutorUnavailableError:
        """An http:// address is the Ray dashboard's, which Ray's job submission asks a pipeline to export as
        RAY_ADDRESS (``ray job submit``); Ray's own error is several lines, blames RAY_ADDRESS for a --ray-address too,
        and advises unsetting it, which would have this run start a cluster of its own."""
        given = self._given(target)
        return ExecutorUnavailableError(
            given, ": an http:// address is the Ray dashboard's, which `ray job submit` takes, not a cluster's head a "
            "render joins; give the head's address, HOST:6379 by default (`ray start --head` prints it)",
            *(() if self.address else (" with ", Option("ray_address"), ", which wins over RAY_ADDRESS")),
            field="ray_address")

    def _given(self, target: str) -> Any:
        """The address as the user gave it: ``--ray-address ADDR`` (``ray_address='ADDR'`` from Python), or
        ``RAY_ADDRESS=ADDR``."""
        return Option("ray_address", target) if self.address else f"RAY_ADDRESS={target}"

    def _check_client_address(self, target: str) -> None:
        """A Ray Client address (``ray://HOST:PORT``, the head's Ray Client server) checked as a head's address is,
        before Ray is asked: Ray Client took 30 s to say "ray client connection timeout" whatever was wrong (nothing
        listening, no port given, another port). Then that Ray Client is installed here: it needs grpcio, which idcli's
        ``ray`` extra installs but Ray alone does not."""
        from importlib.util import find_spec

        inner = target.removeprefix("ray://")
        host, _, port = inner.rpartition(":")
        if not host or not port.isdigit():
            raise InputError(self._given(target), ": a ray:// address needs the port of the head's Ray Client server: "
                             "give ray://HOST:PORT (10001 by default)", field="ray_address")
        check_head_answers(inner, named=target, client=True)
        if find_spec("grpc") is None:
            raise ExecutorUnavailableError(
                f"cannot connect to the Ray cluster at {target}: a ray:// address connects through Ray Client, which "
                "needs grpcio here: pip install 'ray[client]'; or run idcli on a node of the cluster with the head's "
                "HOST:PORT (6379 by default)")

    def _check_form(self, target: str) -> None:
        """A head's address with no port, no host or a port no TCP port has (``head``, ``head:``, ``:6379``,
        ``head:70000``): refused as the option it is (exit 2, the forms named). Ray said "Invalid address format", or
        "Unable to parse port number from  (full address = 192.0.2.2:)", as exit 4, "cannot connect to the cluster"."""
        host, colon, port = target.rpartition(":")
        if not colon or not port or target.endswith("]"):  # "[::1]": an IPv6 host in brackets, no port after it
            problem = "the address has no port"
        elif not host:
            problem = "the address has no host"
        elif not port.isdigit() or not 1 <= int(port) <= 65535:
            problem = f"{port!r} is not a port (1 to 65535)"
        else:
            return
        raise InputError(self._given(target), f": {problem}; {ALLOWED_ADDRESSES}", field="ray_address")

    def _check_kind(self, target: str) -> None:
        """An address of a kind Ray does not take (``foo://``): Ray reads its scheme as a Python module offering a
        client (``anyscale://`` and the like, left to Ray where that module is installed), and said only "Module:
        foo does not exist." Refused with the kinds it does take."""
        from importlib.util import find_spec

        scheme = target.split("://", 1)[0]
        try:
            found = scheme.isidentifier() and find_spec(scheme) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise InputError(self._given(target), f": Ray takes no {scheme}://" if scheme else ": Ray takes no ://",
                             f" address; {ALLOWED_ADDRESSES}", field="ray_address")

    def _padded_address(self, target: str) -> InputError:
        """An address copied with a space or a line break around it: looked up as a host name with the space in it,
        it failed as "Name or service not known" (a trailing one reached Ray), the space unseen in the message. It is
        refused, as other options' values are, not trimmed: the address is shown quoted, with what to give."""
        text = repr(target)
        given = EachSurface(f"ray_address={text}", f"--ray-address {text}") if self.address else f"RAY_ADDRESS={text}"
        where = " and ".join(side for side, padded in (("begins", target != target.lstrip()),
                                                       ("ends", target != target.rstrip())) if padded)
        kind = "a space" if target.strip(" ") == target.strip() else "whitespace"
        if not target.strip():
            return InputError(given, ": the address is only whitespace; give a cluster address such as "
                              "'head-node:6379'", field="ray_address")
        fix = Option("ray_address", target.strip()) if self.address else f"RAY_ADDRESS={target.strip()}"
        return InputError(given, f": the address {where} with {kind} (copied with it?); give it without: ", fix,
                          field="ray_address")

    def _quiet_ray(self, debug: bool) -> None:
        """Keep this process's stderr to idcli's lines while Ray runs in it. Ray's Python warnings on the driver
        ("Token authentication is enabled for this Ray cluster ..." and the like) and the lines its error listener
        prints for the cluster ("(raylet) A worker died ...", "(raylet) The autoscaler failed ... Terminated with
        signal 15" and its stack when `ray stop` ends the head) are said only under IDCLI_DEBUG, where they carry no
        colour codes if they reach no terminal (RAY_COLOR_PREFIX=0, read as each line is printed; a value the user set
        is kept). idcli says what they would have (its notes, its error line, each failed job's error). ``close``
        puts all three back."""
        import sys

        logger = logging.getLogger("ray")
        level = logger.level
        if not debug:
            logger.setLevel(logging.ERROR)
            self._put_back.extend(_mute_cluster_lines())
        self._put_back.append(lambda: logger.setLevel(level))
        # Ray prints those lines on sys.stdout (the command line sends it to stderr while it renders).
        if "RAY_COLOR_PREFIX" not in os.environ and not _is_terminal(sys.stdout):
            os.environ["RAY_COLOR_PREFIX"] = "0"
            self._put_back.append(lambda: os.environ.pop("RAY_COLOR_PREFIX", None))

    def runtime(self, device: str, dtype: str) -> Runtime:
        """The workers' device and precision (part of every job key), from the cluster's resources: the
        driver itself may have no GPU."""
        check_device_name(device)  # before connecting: a typo (cuda1) is refused as locally, not taken as cuda
        self.connect()
        gpus = int(_ray().cluster_resources().get("GPU", 0))
        if device == "auto":
            device = "cuda" if gpus else "cpu"
        elif device.startswith("cuda"):
            if not gpus:
                raise InputError(Option("device", device), ": the Ray cluster has no GPU (use ",
                                 Option("device", "cpu"), ")", field="device")
            device = "cuda"  # each worker is given its own GPU by Ray
        if dtype == "auto":
            dtype = "bfloat16" if device == "cuda" else "float32"
        if self.workers is not None:
            self._check_room(device == "cuda")
        return Runtime(device, dtype)

    def _check_room(self, gpu: bool) -> None:
        """``--workers N`` must fit in the cluster: an actor Ray cannot place is never scheduled, and the batch
        handed to it would wait for ever. The bound is the cluster's total (other jobs may hold some of it)."""
        resources = _ray().cluster_resources()
        cpus, gpus, per_worker = resources.get("CPU", 0.0), resources.get("GPU", 0.0), self._worker_cpus()
        room = int(cpus // per_worker) if per_worker else self.workers or 0
        held = f"{cpus:g} CPUs, {per_worker:g} per worker"
        if gpu:
            room, held = min(room, int(gpus)), f"{gpus:g} GPUs and {held}"
        if self.workers is not None and self.workers > room:
            raise InputError(Option("workers", self.workers), f": the Ray cluster holds {room} ({held}); give ",
                             Option("workers", max(room, 1)), " or fewer, or add nodes", field="workers")

    def _worker_cpus(self) -> float:
        return 1.0 if self.worker_cpus is None else float(self.worker_cpus)

    # -- workers ----------------------------------------------------------------------------------------

    def executor(self, model: ModelIdentity, runtime: Runtime, adapter: Any, project: str | None = None
                 ) -> RayExecutor:
        """Start the actors (each builds its engine while the driver goes on)."""
        ray = _ray()
        from ..paths import relative_home
        from .ray_worker import RenderWorker

        self.connect()
        gpu = runtime.device.startswith("cuda")
        count = self.workers or (max(1, int(ray.cluster_resources().get("GPU", 0))) if gpu else 1)
        options: dict[str, Any] = {"max_restarts": ACTOR_MAX_RESTARTS, "max_task_retries": ACTOR_MAX_TASK_RETRIES,
                                   "num_cpus": self._worker_cpus()}
        if gpu:
            options["num_gpus"] = 1
        actor_class = ray.remote(RenderWorker)
        home = relative_home()  # a worker of a cluster this process started has its IDCLI_HOME, not its folder
        self._actors = [actor_class.options(**options).remote(model, runtime, adapter, self.engine_factory, project,
                                                              home=home)
                        for _ in range(count)]
        if self._target is not None and self._target.startswith("ray://"):
            # Through Ray Client this process has no GCS address: the head's Ray Client server is watched instead
            # (`ray stop` ends it with the head; a head lost with its machine takes it along).
            head: str | None = self._target.removeprefix("ray://")
        else:
            try:
                head = ray.get_runtime_context().gcs_address
            except Exception:  # another kind of connection without one (a host's own): Ray's own handling
                head = None
        named = self._target if self._target not in (None, "local", "auto") else head
        request = {"GPU": 1.0, "CPU": self._worker_cpus()} if gpu else {"CPU": self._worker_cpus()}
        self._head = HeadWatch(head, named) if head else None
        return RayExecutor(self._actors, self._head, request)

    def close(self) -> None:
        """Stop the workers (they are this run's) and the connection this backend opened."""
        if not self._connected:
            while self._put_back:  # a connection that failed
                self._put_back.pop()()
            return
        ray = _ray()
        # A connection Ray Client lost is not initialised any more: there is nothing to kill through it (the head's
        # workers went with it), and a Ray call would try to start one.
        for actor in self._actors if ray.is_initialized() else []:
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)
        self._actors = []
        if self._owns_connection:
            # Ray's shutdown says goodbye to the head's GCS and waits for its answer with no timeout: a head that
            # stopped answering (its process stopped, its machine frozen) would hold this process for ever, the output
            # folder locked. Then it is given SHUTDOWN_SECONDS, in a daemon thread that cannot keep the process from
            # exiting (gcs_deadline.py).
            lost = self._head is not None and (self._head.lost or not self._head.answers())
            if self._head is not None:  # its call in flight closed first: the head's goodbye (GOAWAY) is not its
                self._head.close()
            with contextlib.suppress(Exception):
                if lost:
                    shut_down(ray.shutdown)
                else:
                    ray.shutdown()
        while self._put_back:
            self._put_back.pop()()
        if self._head is not None:
            self._head.close()
        self._head = None
        self._connected = self._owns_connection = False


class RayExecutor:
    """Hands batches to actors and their replies to the sink; see the module's docstring for faults."""

    name = "ray"

    def __init__(self, actors: list[Any], head: HeadWatch | None = None, request: dict[str, float] | None = None
                 ) -> None:
        self.actors = list(actors)
        self.head = head
        # ``request``: what each worker asks of the cluster (its CPUs and GPU), for the workers Ray has not placed.
        self.placement = _PlacementWatch(self.actors, request) if request is not None else None
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
            _ray().kill(self.actors[index], no_restart=True)

    def run(self, pending: list[Job], batch_size: int | str, save_masks: bool, sink: BatchSink) -> None:
        ray = _ray()
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
                sink.note(_restarted(worker, pids.get(index) or before, len(jobs), cause))
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
                    cannot_start(index, jobs, attempts, _cause(exc))
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
                         f"{MAX_ATTEMPTS} times ({why or _first_line(exc)})")
                return
            except (RayError, ConnectionError) as exc:
                inflight.pop(ref)
                if not isinstance(exc, RayError) or not ray.is_initialized():
                    # Ray Client lost its server: its data channel failed (ConnectionError), or it gave the connection
                    # up and Ray itself says it has not been started. The jobs are not at fault.
                    queue.appendleft((jobs, attempts))
                    self._if_connection_lost()
                    raise
                if (unavailable := _engine_unavailable(exc)) is not None:
                    cannot_start(index, jobs, attempts, *unavailable)
                    return
                idle.append(index)
                fail([j for j in jobs if j.stem not in settled], _task_error(exc))
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
                raise ExecutorUnavailableError(_none_could_start(why, missing)) from None
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
        if not _ray().is_initialized() or (self.head is not None and not self.head.answers()):
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
        ray = _ray()
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
                unavailable = (_cause(exc), True)
            except RayTaskError as exc:
                if (refused := _engine_unavailable(exc)) is None:
                    raise
                unavailable = refused
            self._drop(index)
            cannot.append(unavailable)
        if not answers:
            raise ExecutorUnavailableError(_none_could_start(*cannot[-1]))
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
            ray = _ray()
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


class _PlacementWatch:
    """Whether Ray has placed each worker on a node. An actor whose resources the cluster does not have free now is
    not an error in Ray: it waits, for ever, and so did the run (``--device cuda`` on a farm whose GPUs another job
    holds), with no word. Asked while the driver waits, every ``HEAD_CHECK_SECONDS``: one note after
    ``PLACEMENT_NOTE_SECONDS``; after ``PLACEMENT_WAIT_SECONDS`` the workers still not placed are handed back to
    be dropped, or, when no worker was placed, the run stops with exit 4."""

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
                placed = _placed(self.actors[index])
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
        ray = _ray()
        try:
            free, total = within(GCS_READ_SECONDS, lambda: (ray.available_resources(), ray.cluster_resources()))
        except Exception:  # a TimeoutError too: the head did not answer in time
            return "free resources Ray did not say"
        return " and ".join(f"{free.get(name, 0.0):g} of {total.get(name, 0.0):g} {name}s"
                            for name in sorted(self.request, reverse=True)) + " free"


def _placed(actor: Any) -> bool | None:
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


# Also for an actor that could not be created at all (idcli missing on that node, another version of it).
NO_ENGINE_HINT = ("each node needs idcli in this version, and the model in its own Hugging Face cache or a local model "
                  "folder at the same path (docs/scale-out.md)")


def _none_could_start(why: str, missing: bool) -> str:
    """The run's stop when no worker could build its engine: the last worker's words, and where each node must hold
    the model only when it was missing there (a damaged weight file's own words say its fix)."""
    return f"no Ray worker could start: {why}; {NO_ENGINE_HINT}" if missing else f"no Ray worker could start: {why}"


def _engine_unavailable(exc: BaseException) -> tuple[str, bool] | None:
    """Why a worker could not build its engine, and whether the model was missing from its node, when that is what
    ``exc`` (a Ray task error) carries; else None."""
    from .ray_worker import EngineUnavailable

    # A RayTaskError is also an instance of the class it wraps, but its text is the remote traceback: use the cause.
    cause = getattr(exc, "cause", None)
    if not isinstance(cause, EngineUnavailable) or not cause.args:
        return None
    # A worker of an earlier idcli raised the words alone: missing, as it was always said.
    return str(cause.args[0]), bool(cause.args[1]) if len(cause.args) > 1 else True


def _no_auto_init() -> list[Any]:
    """Stop Ray starting or joining a cluster by itself, until the function returned is called. Ray's ``get``, ``wait``,
    ``kill`` and the like call ``ray.init()`` when Ray is not initialised (``RAY_ENABLE_AUTO_CONNECT``, read once at
    import): after Ray Client lost a ray:// head, the backend's clean-up called it, which looked for the last head
    started on this machine (the gone one) and retried it for ever: the run hung, a `Failed to connect to GCS` line
    every few seconds. Ray's switch, ``ray._private.auto_init_hook.enable_auto_connect``; another Ray without it:
    nothing changed."""
    try:
        from ray._private import auto_init_hook
    except ImportError:
        return []
    if not isinstance(getattr(auto_init_hook, "enable_auto_connect", None), bool):
        return []
    was = auto_init_hook.enable_auto_connect
    auto_init_hook.enable_auto_connect = False

    def put_back() -> None:
        auto_init_hook.enable_auto_connect = was

    return [put_back]


def _mute_cluster_lines() -> list[Any]:
    """Stop the driver printing what Ray's error listener receives for the cluster, until the function returned is
    called. Ray starts that listener in every driver (``ray._private.worker.listen_error_messages``), with no option to
    stop it and whatever ``log_to_driver`` says, and it prints each line through ``print_worker_logs``, which prints
    nothing while the module's ``_worker_logs_enabled`` is false: the switch Ray's own debugger (``ray.util.rpdb``)
    turns off while it holds the terminal. With ``log_to_driver=False`` nothing else goes through it. Another Ray
    without that switch: nothing changed (its lines print, as before)."""
    try:
        from ray._private import worker
    except ImportError:
        return []
    if not isinstance(getattr(worker, "_worker_logs_enabled", None), bool):
        return []
    was = worker._worker_logs_enabled
    worker._worker_logs_enabled = False

    def put_back() -> None:
        worker._worker_logs_enabled = was

    return [put_back]


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except Exception:  # a wrapper without isatty, a closed stream
        return False


def _restarted(worker: dict[str, Any], before: int | None, jobs: int, cause: str | None = None) -> str:
    """The note for a batch Ray ran again on a restarted worker (its process died mid-batch): which worker, why when
    Ray recorded it (``cause``: ray_deaths.py's words), and that the batch was rendered again. ``before``: the dead
    process's pid, when Ray's actor table or an earlier reply named it."""
    who = f"{worker['host']}:{before}" if before is not None and before != worker["pid"] else f"on {worker['host']}"
    why = f" ({cause})" if cause else ""
    return (f"note: the Ray worker {who} died mid-batch{why} and Ray restarted it (now pid {worker['pid']}); its batch "
            f"of {jobs} was rendered again there")


def _task_error(exc: BaseException) -> str:
    """A batch's error raised in the Ray worker's own code, outside the engine's render (whose errors come back in the
    reply), as the report gives it: the error itself and where, ``ValueError: … (on the Ray worker IP:PID)``. Ray's
    text for it begins with its own line, ``ray::RenderWorker.render() (pid=…, ip=…)`` in colour codes, then the
    remote traceback; the error is its ``cause`` (or the traceback's last error line)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and not isinstance(cause, type(exc)):
        said = f"{type(cause).__name__}: {_first_line(cause)}" if str(cause).strip() else type(cause).__name__
    else:
        said = _cause(exc)
        said = said if "Error: " in said or "Exception: " in said else f"{type(exc).__name__}: {said}"
    pid, ip = getattr(exc, "pid", None), getattr(exc, "ip", None)
    if not (pid and ip) and (named := re.search(r"\(pid=(\d+), ip=([^,)\s]+)", str(exc))):
        pid, ip = named.groups()  # the error Ray raises is of the cause's class too, without those attributes
    where = f" (on the Ray worker {ip}:{pid})" if pid and ip else ""
    return _PLAIN.sub("", said) + where


_PLAIN = re.compile(r"\x1b\[[0-9;]*m")  # a terminal's colour codes, which Ray puts in an error's text


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _cause(exc: BaseException) -> str:
    """The original error inside a Ray actor error's text (its last ``SomethingError: ...`` line)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    errors = [line for line in lines if ("Error: " in line or "Exception: " in line) and not line.startswith("ray")]
    return errors[-1] if errors else _first_line(exc)
