"""The Ray actor that renders: one per GPU (or per CPU worker), the engine built once in ``__init__``.

It receives whole batches of planned jobs (requests with the identities already resolved to
embeddings, so no selfie, pack or shot-list file is needed here), renders them with the local
executor's batching rules, encodes each image to PNG bytes with its record, and returns them. It
writes nothing: the driver commits. After a crash Ray starts it again (``__init__`` runs again) and
re-runs the batch in flight, so a batch may be rendered twice; the driver commits each job once.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..models import ModelIdentity
from ..plan import Job
from ..runtime import Runtime


class EngineUnavailable(Exception):
    """This worker could not build its engine (its node lacks the model, or cannot read the model folder): raised
    by each call to it, so the driver drops the worker and says why in one line. Its args: the words, and whether the
    model is missing from this node (then the driver adds where each node must hold it)."""


class RenderWorker:
    def __init__(self, model: ModelIdentity, runtime: Runtime, adapter: Any, engine_factory: Any = None,
                 project: str | None = None, home: tuple[str, Path] | None = None) -> None:
        import ray

        from ..paths import use_home
        from . import compile_fact, executor_record

        # A relative IDCLI_HOME inherited from the driver means the driver's folder, not this worker's (``home``).
        use_home(home)

        # Ray gives a GPU actor its own device through CUDA_VISIBLE_DEVICES: it is "cuda" here.
        gpu_ids = ray.get_gpu_ids()
        device = "cuda" if gpu_ids else runtime.device
        self.runtime = replace(runtime, device=device)
        self.model = model
        self.project = project  # recorded in each image's record, as the local executor's commit path does
        if engine_factory is None:
            from ..run import default_engine as engine_factory
        started = time.perf_counter()
        # Kept, not raised: an actor whose __init__ raises is dead, and Ray then prints that traceback on the
        # driver's terminal for every call to it. Each call raises it instead, one line (docs/scale-out.md).
        self.unavailable: str | None = None
        self.model_missing = False
        try:
            self.engine = engine_factory(model, self.runtime, adapter)
        except Exception as exc:
            self.engine = None
            self.unavailable, self.model_missing = refusal(exc, model)
        self.build_seconds = time.perf_counter() - started
        self.oom_limits: dict[int, int] = {}  # this worker's out-of-memory back-off, as the local executor's
        gpu = None
        if device.startswith("cuda"):
            import torch

            gpu = torch.cuda.get_device_name(0)
        self.worker = executor_record("ray", device, pid=os.getpid(), gpu=gpu,
                                      node=ray.get_runtime_context().get_node_id()[:16],
                                      **compile_fact(self.engine))

    def describe(self) -> dict[str, Any]:
        """Who this worker is (tests use its pid to kill it; the driver logs it)."""
        return {**self.worker, "build_seconds": round(self.build_seconds, 3)}

    def suggest_batch_size(self, request: Any) -> int:
        return int(self._engine().suggest_batch_size(request))

    def _engine(self) -> Any:
        if self.unavailable is not None:
            raise EngineUnavailable(self.unavailable, self.model_missing)
        return self.engine

    def render(self, jobs: list[Job], size: int, save_masks: bool) -> dict[str, Any]:
        """Render ``jobs`` (one batch of one group) and encode them; out-of-memory halves the batch.

        Returns the sub-batches as rendered (one unless memory ran out), each with its job keys, its takes
        (``SHOT_tN``) and either encoded images or the error that failed it, plus this call's timings.
        """
        from .local import first_batch_size, render_in_batches
        from .output import encode_result

        engine = self._engine()
        started = time.perf_counter()
        notes: list[str] = []
        batches: list[dict[str, Any]] = []
        forward = encode = 0.0
        size = first_batch_size(engine, size, jobs, self.oom_limits)
        adapter_record = getattr(engine, "adapter_record", None)
        for outcome in render_in_batches(engine, jobs, size, self.oom_limits, save_masks, notes.append):
            images = None
            if outcome.results is not None:
                clock = time.perf_counter()
                images = [encode_result(job, result, self.model, self.runtime.device, adapter_record, self.project)
                          for job, result in zip(outcome.jobs, outcome.results, strict=True)]
                encode += time.perf_counter() - clock
                forward += outcome.forward_seconds
            # Takes as well as keys: two shots alike share a key, and the driver gives each image to its own take.
            batches.append({"keys": [j.key for j in outcome.jobs], "takes": [j.stem for j in outcome.jobs],
                            "images": images, "error": outcome.error,
                            "started": outcome.started, "finished": outcome.finished})
        return {"batches": batches, "notes": notes, "worker": self.worker, "attempt": _attempt(),
                "seconds": time.perf_counter() - started, "forward_seconds": forward, "encode_seconds": encode}


def refusal(exc: Exception, model: ModelIdentity) -> tuple[str, bool]:
    """Why this worker could not build its engine, as the driver says it, and whether the model is missing from this
    node. idcli's own refusal (a damaged weight file, an index naming a weight no shard holds) is given in its own
    words, which end with their fix, as a local run prints them; only another error is named by its class. The model
    is missing when the error says so (``ModelUnavailableError.missing``), when this node lacks its files, or when the
    error is none of idcli's (idcli missing on the node, another version of it): a cache hint there, not for a file
    that is there but damaged."""
    from ..errors import IdcliError
    from ..model_setup import hub_snapshot

    host = socket.gethostname()
    if not isinstance(exc, IdcliError):
        return f"on {host}: {type(exc).__name__}: {exc}", True
    try:
        if model.source == "local":
            absent = not (Path(str(model.id)) / "model_index.json").is_file()
        else:
            absent = model.source == "hub" and hub_snapshot(str(model.id), model.revision) is None
    except Exception:  # a cache or folder this node cannot read: as good as missing here
        absent = True
    return f"on {host}: {exc}", bool(getattr(exc, "missing", False)) or absent


def _attempt() -> int:
    """How often Ray ran this call before: 0, or 1 when this process is the actor Ray restarted after the one running
    the call died, and Ray ran the call again here (``max_task_retries``). The driver says so in a note. Ray 2.60 has
    no public call for it (``was_current_actor_reconstructed`` is also true of every later call): its core worker's.
    Where that is missing (another Ray), 0: no note."""
    try:
        from ray._private.worker import global_worker

        return int(global_worker.core_worker.get_current_task_attempt_number())
    except Exception:
        return 0
