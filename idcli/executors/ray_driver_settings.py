"""What the Ray backend changes in the driver process while Ray runs in it, each change returned with the function that
puts it back (``RayBackend.close`` calls them): Ray's own lines kept off the driver's stderr unless IDCLI_DEBUG, and
Ray's starting or joining a cluster by itself turned off. Each reaches into a switch of Ray 2.60's, guarded: another
Ray without it is left as it is. Split from ray.py."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

PutBack = Callable[[], Any]


def quiet_ray(debug: bool) -> list[PutBack]:
    """Keep this process's stderr to idcli's lines while Ray runs in it. Ray's Python warnings on the driver
    ("Token authentication is enabled for this Ray cluster ..." and the like) and the lines its error listener
    prints for the cluster ("(raylet) A worker died ...", "(raylet) The autoscaler failed ... Terminated with
    signal 15" and its stack when `ray stop` ends the head) are said only under IDCLI_DEBUG, where they carry no
    colour codes if they reach no terminal (RAY_COLOR_PREFIX=0, read as each line is printed; a value the user set
    is kept). idcli says what they would have (its notes, its error line, each failed job's error). The functions
    returned put all three back."""
    put_back: list[PutBack] = []
    logger = logging.getLogger("ray")
    level = logger.level
    if not debug:
        logger.setLevel(logging.ERROR)
        put_back.extend(mute_cluster_lines())
    put_back.append(lambda: logger.setLevel(level))
    # Ray prints those lines on sys.stdout (the command line sends it to stderr while it renders).
    if "RAY_COLOR_PREFIX" not in os.environ and not is_terminal(sys.stdout):
        os.environ["RAY_COLOR_PREFIX"] = "0"
        put_back.append(lambda: os.environ.pop("RAY_COLOR_PREFIX", None))
    return put_back


def no_auto_init() -> list[PutBack]:
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
    return _switched_off(auto_init_hook, "enable_auto_connect")


def mute_cluster_lines() -> list[PutBack]:
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
    return _switched_off(worker, "_worker_logs_enabled")


def _switched_off(module: Any, switch: str) -> list[PutBack]:
    """``module.switch``, one of Ray's true-or-false switches, set false until the function returned is called;
    nothing changed where Ray has no such switch (another version)."""
    was = getattr(module, switch, None)
    if not isinstance(was, bool):
        return []
    setattr(module, switch, False)

    def put_back() -> None:
        setattr(module, switch, was)

    return [put_back]


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is a terminal; False for a wrapper without ``isatty`` or a closed stream."""
    try:
        return bool(stream.isatty())
    except Exception:  # a wrapper without isatty, a closed stream
        return False
