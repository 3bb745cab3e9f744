"""The engine one local render leaves for the next render in the same process.

A pipeline that calls ``idcli.render`` per sequence from one long-lived process built the engine again on every
call: the whole pipeline read from disk (SD1.5 2-4 GB, SDXL about 7 GB) and moved to the device, and the identity
adapter read and installed, although nothing had changed (docs/performance.md, "render called again in one
process: the engine kept"). The last engine a local render built is kept here and handed to the next render that
would build exactly the same one. ``idcli.reproduce`` leases its default engine here too (a pipeline checking its
renders image after image built one per image), so a render's engine serves the reproduce after it and back.

What identifies an engine, so that nothing stale is ever handed out:

* the model's identity as this call planned it (preset, source, id, revision, the content hash of a local folder's
  files — hashed again by every plan, so a file changed on disk changes it — dtype, ``allow_pickle``), and for a
  hub model the commit its revision names in the local cache now (a ``main`` that moved is another model);
* the runtime (device, dtype); a ``--compile`` engine is never kept (built per call, as before);
* the adapter's identity (None: no adapter, so an adapter never leaks into a render without one) and the sha256 of
  its weight file as it is on disk now, which must be the one the engine loaded (``adapter_record``);
* the function that builds it (a test's or a caller's replacement for ``run.default_engine`` never meets the
  real one's engine).

One engine at most: a render that needs another (a ``--compile`` render's too) drops the kept one before building
(two models never held at once for this), so memory does not grow call after call. It is lent to one render at a
time: a render running meanwhile in another thread builds its own (an engine's per-batch state is not shared between
threads), and the engine of whichever ends last is kept. A render that ends with an exception keeps nothing.
``release()`` drops it, giving its memory (on a GPU, device memory) back to the caller, and FaceID-Plus v2's CLIP image
encoder kept for the next plan with it (kept_encoder.py; kept only beside an engine that reads its features).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .models import ModelIdentity
from .runtime import Runtime

Build = Callable[[ModelIdentity, Runtime, Any], Any]


@dataclass(frozen=True)
class EngineKey:
    """What an engine was built from, the adapter file's hash aside (checked against the engine's own record)."""

    model: ModelIdentity
    hub_commit: str | None  # the commit a hub model's revision names in the cache when it was built
    runtime: Runtime
    adapter: Any  # an AdapterIdentity (frozen) or None
    build: Build


@dataclass
class _Kept:
    key: EngineKey
    engine: Any


_LOCK = threading.Lock()
_KEPT: _Kept | None = None


def engine_key(model: ModelIdentity, runtime: Runtime, adapter: Any, build: Build) -> EngineKey:
    """The key of the engine ``build(model, runtime, adapter)`` would make now."""
    commit = None
    if model.source == "hub" and model.id is not None:
        from .model_setup import hub_snapshot

        snapshot = hub_snapshot(model.id, model.revision)
        commit = snapshot.name if snapshot is not None else None
    return EngineKey(model, commit, runtime, adapter, build)


def adapter_file_sha256(adapter: Any, preset: str) -> str | None:
    """The sha256 of the adapter weight file a new engine would load now (None: none there yet). The random-weight
    presets' file lives in idcli's state folder (``IDCLI_HOME``), written by the first engine that needs it."""
    if adapter.source == "builtin":
        from .hashing import sha256_file_cached
        from .paths import state_dir

        weight = state_dir() / "adapters" / preset / adapter.weight_name
        return sha256_file_cached(weight) if weight.is_file() else None
    from .adapters import resolved_weight_sha256

    return resolved_weight_sha256(adapter)


def _still_current(kept: _Kept, key: EngineKey) -> bool:
    if kept.key != key:
        return False
    if key.adapter is None:
        return True
    loaded = (getattr(kept.engine, "adapter_record", None) or {}).get("weight_sha256")
    return loaded is not None and loaded == adapter_file_sha256(key.adapter, key.model.preset)


def _ready_again(engine: Any) -> None:
    """What a fresh engine would hold at the start of a render: its adapter's note said again (a note of the run,
    never lost because the engine was kept), no progress callback of an earlier run."""
    faceid = getattr(engine, "faceid", None)
    if hasattr(engine, "adapter_note"):
        engine.adapter_note = getattr(faceid, "load_note", None) if faceid is not None else None
    if hasattr(engine, "on_step"):
        engine.on_step = None


@contextmanager
def lease(model: ModelIdentity, runtime: Runtime, adapter: Any, build: Build) -> Iterator[Any]:
    """An engine for one render: the kept one when it is exactly the one ``build`` would make, else a new one; kept
    for the next render when the block ends without an exception."""
    global _KEPT
    if runtime.compile:  # its compiled graphs and fallback are per run (engine/compiled.py): built as before
        _drop_engine()  # not held beside it: two models on the device at once where a fresh process holds one
        yield build(model, runtime, adapter)
        return
    key = engine_key(model, runtime, adapter, build)
    with _LOCK:
        kept, _KEPT = _KEPT, None  # lent: one render at a time
    engine = None
    if kept is not None and _still_current(kept, key):
        engine = kept.engine
        _ready_again(engine)
    # Dropped before another loads: an engine holds no reference cycle, so its memory is freed right here.
    kept = None
    if engine is None:
        engine = build(model, runtime, adapter)
    yield engine
    with _LOCK:
        _KEPT = _Kept(key, engine)  # the last render to end leaves its engine
    _keep_its_encoder(adapter)


def _keep_its_encoder(adapter: Any) -> None:
    """The CLIP image encoder kept for the next plan (kept_encoder.py) stays only beside an engine that reads its
    features: freed with the engine, not held by a process that went on to render without it."""
    from . import kept_encoder

    if adapter is not None and getattr(adapter, "is_plus", False):
        from .identity.clip_features import encoder_owner

        kept_encoder.keep_only(encoder_owner(adapter))
    else:
        kept_encoder.keep_only(None)


@contextmanager
def engine_for(model: ModelIdentity, runtime: Runtime, adapter: Any, engine_factory: Build | None) -> Iterator[Any]:
    """The engine of one render or reproduce: a caller's ``engine_factory``'s, built for the call and never kept; else
    the default engine (``run.default_engine``), leased."""
    if engine_factory is not None:
        yield engine_factory(model, runtime, adapter)
        return
    from .run import default_engine

    with lease(model, runtime, adapter, default_engine) as engine:
        yield engine


def release() -> bool:
    """Drop the kept engine (its memory back to the caller: on a GPU, device memory once torch's cache is emptied)
    and FaceID-Plus v2's kept CLIP image encoder with it (kept_encoder.py). Whether there was an engine. The next
    render builds its engine again."""
    from . import kept_encoder

    kept_encoder.release()
    return _drop_engine()


def _drop_engine() -> bool:
    global _KEPT
    with _LOCK:
        kept, _KEPT = _KEPT, None
    return kept is not None  # freed as this returns (an engine holds no reference cycle)


def kept() -> tuple[EngineKey, Any] | None:
    """The kept engine and its key (None: none), for tests and diagnostics; holding the engine keeps its memory."""
    with _LOCK:
        return (_KEPT.key, _KEPT.engine) if _KEPT is not None else None
