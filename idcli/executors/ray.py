"""The Ray executor: batches rendered by Ray Core actors on many GPUs and machines; this process commits.

The driver (this process) has already validated, planned and resolved identities, and holds the
output folder's lock. Here the backend connects to the cluster (the address checked first:
ray_address.py; Ray's own lines kept off its stderr: ray_driver_settings.py), starts one
:class:`~idcli.executors.ray_worker.RenderWorker` actor per GPU (``num_gpus=1``; CPU actors where the
cluster has no GPU) and, at the end, stops them and the connection it opened. Handing the batches to the
actors, and every fault while they render (a worker killed, an error in a batch, a worker never placed,
the cluster gone, Ctrl-C or SIGTERM), is ray_dispatch.py's (docs/scale-out.md, "Faults"). ``kill -9`` of
the driver: Ray ends the actors it owned; nothing partial is left (the store's protocol) and a plain
re-run resumes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from typing import Any

from ..errors import ExecutorUnavailableError, InputError
from ..library_quiet import quiet_ray_client_timeout
from ..models import ModelIdentity
from ..option_words import Option
from ..runtime import Runtime, check_device_name
from .cluster_hangup import hangup_kept_from_cluster
from .gcs_deadline import shut_down
from .ray_address import check_address
from .ray_dispatch import RayExecutor
from .ray_driver_settings import no_auto_init, quiet_ray
from .ray_head import HeadWatch, check_head_answers, refused_hint
from .ray_import import import_ray

ACTOR_MAX_RESTARTS = 4  # per actor: a worker killed more often than this is dropped from the pool
ACTOR_MAX_TASK_RETRIES = 1  # Ray re-runs a batch in flight once on the restarted actor

# What scripts and tests import from here: the backend, and three names that live in modules of their own now.
__all__ = ["RayBackend", "RayExecutor", "check_head_answers", "refused_hint"]


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
        # What connect changed in this process (ray_driver_settings.py), undone by close().
        self._put_back: list[Any] = []
        self._head: HeadWatch | None = None  # the watch on the cluster's head, once the workers are started

    # -- connection -----------------------------------------------------------------------------------

    def connect(self) -> None:
        if self._connected:
            return
        ray = import_ray()
        if not ray.is_initialized():
            target = self.address or os.environ.get("RAY_ADDRESS") or "local"
            self._target = target
            check_address(target, as_option=bool(self.address))
            # ray.init replaces the driver's SIGTERM handler with one that exits at once; idcli's own
            # (commit what arrived, exit 143) is put back.
            handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
            debug = bool(os.environ.get("IDCLI_DEBUG"))
            self._put_back.extend(quiet_ray(debug))
            self._put_back.extend(no_auto_init())
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

    def runtime(self, device: str, dtype: str) -> Runtime:
        """The workers' device and precision (part of every job key), from the cluster's resources: the
        driver itself may have no GPU."""
        check_device_name(device)  # before connecting: a typo (cuda1) is refused as locally, not taken as cuda
        self.connect()
        gpus = int(import_ray().cluster_resources().get("GPU", 0))
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
        resources = import_ray().cluster_resources()
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
        ray = import_ray()
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
        ray = import_ray()
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
