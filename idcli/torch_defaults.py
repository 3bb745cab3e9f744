"""torch's defaults as idcli's models are built and run with, whatever the calling process set: float32 tensors, made
on the CPU unless idcli names the device.

A pipeline that had called ``torch.set_default_dtype(torch.float64)`` (scientific code does) or ``float16`` before
``idcli.render`` got every job failed, ``RuntimeError: mat1 and mat2 must have the same dtype``: the tiny presets'
modules were made in the host's dtype and never cast, and any tensor idcli or diffusers makes without a dtype would
have followed it too. One that had called ``torch.set_default_device("meta")`` (or ``"cuda"`` on a CPU render) had
its render end in an internal error (the python-api trial, 2026-12-02). Inside ``torch_defaults`` the dtype is
float32 and, in the calling thread, the default device the CPU, each only where the host set another (the usual
process changes nothing and pays nothing); the host's are back when the block ends.

The default dtype is process-wide in torch, as the library notices are (library_quiet.py): while a call runs, another
thread's tensors made without a dtype are float32 too; two threads in idcli share one change, put back when the later
ends, and a dtype the host set meanwhile stays the host's. A call that begins after the host set one meanwhile pins
float32 again, and the host's newest is put back when the last call ends. What cannot be kept: a call already running
when a host thread sets a dtype runs on in it (torch has one default for the process), and a float32 the host set
meanwhile cannot be told from idcli's own, so the host's dtype found before it is put back over it. The default device
is per thread in torch, and is set here for the calling thread only.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

_LOCK = threading.Lock()
_USERS = 0
_HOSTS_DTYPE: Any = None  # the host's default dtype while idcli's float32 stands in for it; None: nothing to put back

F = TypeVar("F", bound=Callable[..., Any])


@contextlib.contextmanager
def _pinned() -> Iterator[None]:
    import torch

    global _USERS, _HOSTS_DTYPE
    with _LOCK:
        # Whenever a call begins, not only the first of several: a host thread may have set its own while another of
        # idcli's calls ran, and this call's models would be built in it (every job failed, until 2026-12-02). The
        # newest host dtype seen is the one put back.
        if torch.get_default_dtype() != torch.float32:
            _HOSTS_DTYPE = torch.get_default_dtype()
            torch.set_default_dtype(torch.float32)
        _USERS += 1
    try:
        # ``with torch.device`` acts in this thread only, above the host's default: what idcli makes without naming a
        # device is made on the CPU, as in a process that set none. Only where needed: it costs every torch call.
        on_cpu = _default_device_is_cpu(torch)
        with contextlib.nullcontext() if on_cpu else torch.device("cpu"):
            yield
    finally:
        with _LOCK:
            _USERS -= 1
            if _USERS == 0 and _HOSTS_DTYPE is not None:
                if torch.get_default_dtype() == torch.float32:  # else the host set another meanwhile: theirs stands
                    torch.set_default_dtype(_HOSTS_DTYPE)
                _HOSTS_DTYPE = None


def _default_device_is_cpu(torch: Any) -> bool:
    """Whether torch makes tensors on the CPU in this thread when told no device. Asking it makes an empty tensor on a
    default device named without an index, so a ``"cuda"`` a host set on a torch without CUDA raises: not the CPU
    (until 2026-12-02 an internal error before any job ran)."""
    try:
        return bool(torch.get_default_device().type == "cpu")
    except (AssertionError, RuntimeError):
        return False


def torch_defaults(function: F) -> F:
    """``function`` run with torch's defaults as idcli's models need them (the module's doc); the host's after."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _pinned():
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
