"""A terminal's hangup kept from the Ray cluster a run starts for itself (docs/scale-out.md, "Faults").

Without ``--ray-address`` the driver starts a local cluster in ``ray.init``: its GCS, raylet and helpers are the
driver's children, in its process group, so the hangup of the artist's SSH session (the shell's SIGHUP to the job's
process group) reached them too. Ray 2.60's GCS and raylet do not end on it: they stopped answering, the driver's
``ray.kill`` of its workers and its ``ray.shutdown`` met a cluster that no longer answered (5 s given up), and the
workers went on rendering batches nobody would commit until the driver's exit took the cluster with it, about 9 s after
the hangup (the farm's last loose ends, 2026-12-02). The driver keeps SIGHUP blocked while ``ray.init`` starts those
processes, which inherit the blocked signal: the hangup is the driver's alone, which stops the run as Ctrl-C does and
stops its own cluster (``ray.shutdown``), 1.5 s after the hangup. A hangup while they start still stops the run: taken
by another of the driver's threads at once (the block is this thread's), else once they are up.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


@contextlib.contextmanager
def hangup_kept_from_cluster(starts_cluster: bool) -> Iterator[None]:
    """SIGHUP blocked in this thread while the block runs, where ``starts_cluster`` (the processes it starts inherit
    the blocked signal); delivered after it, if one came to this thread. Nothing where SIGHUP does not exist
    (Windows)."""
    hangup = getattr(signal, "SIGHUP", None)
    if not starts_cluster or hangup is None:
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {hangup})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
