"""FaceID-Plus v2's CLIP image encoder, loaded once per process and kept for the next plan that reads face crops.

Each plan (and each ``reproduce``, each ``encode-identity --variant faceid-plusv2``) built its own lazy encoder holder
(identity/clip_features.py), so a process that rendered again with a new character (a sequence's shot list growing,
rendered after each change by a pipeline calling ``idcli.render``) loaded the encoder again for each: ViT-H is 632 M
parameters, 2.5 GB read from disk (docs/performance.md, "the image encoder loaded once"). The one loaded last is kept
here and handed to the next caller that would load exactly the same one:

* its key names the folder the weights are read from (a local folder as given, the random presets' folder under
  ``IDCLI_HOME``, a hub snapshot by the commit its revision names in the cache now) and their content (a local
  folder's hash, taken again by every plan; a random encoder's descriptor), whether pickles may be read, and the
  dtype and device it is loaded in (float32 on the CPU: engine/faceid_plus.load_image_encoder);
* a caller that cannot name it so (a local folder not hashed) loads its own, as before, and keeps nothing.

One encoder at most: a caller needing another drops the kept one first. It is shared between threads (reading crops
changes nothing in it), loaded by one of them at a time. ``release()`` (and ``kept_engine.release()``, which frees
the engine's memory with it) gives its memory back; a kept engine that renders without this encoder does too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

_LOCK = threading.Lock()  # held while loading: two plans at once load it once
_KEPT: tuple[Hashable, Hashable, Any] | None = None  # key, owner, encoder


def encoder_for(key: Hashable | None, owner: Hashable, load: Callable[[], Any]) -> Any:
    """The encoder ``load()`` would load: the kept one when ``key`` is the kept one's, else loaded now and kept
    (the old one dropped before, so two are never held for this). ``owner``: what an engine names the encoder by
    (its adapter's ``image_encoder`` and ``allow_pickle``), for ``keep_only``. ``key`` None: loaded, not kept."""
    global _KEPT
    if key is None:
        return load()
    with _LOCK:
        if _KEPT is not None and _KEPT[0] == key:
            return _KEPT[2]
        _KEPT = None  # freed before the next one loads (no reference cycle holds it)
        encoder = load()
        _KEPT = (key, owner, encoder)
        return encoder


def kept_key() -> Hashable | None:
    """The kept encoder's key (None: none), for tests and diagnostics."""
    with _LOCK:
        return _KEPT[0] if _KEPT is not None else None


def keep_only(owner: Hashable | None) -> None:
    """Drop the kept encoder unless ``owner`` names it (None: drop it): a kept engine that renders without it (FaceID,
    another image encoder) does not hold it in memory beside itself. Nothing is read to decide."""
    global _KEPT
    with _LOCK:
        if _KEPT is not None and (owner is None or _KEPT[1] != owner):
            _KEPT = None


def release() -> bool:
    """Drop the kept encoder (its memory back to the caller); whether there was one."""
    global _KEPT
    with _LOCK:
        kept, _KEPT = _KEPT, None
    return kept is not None
