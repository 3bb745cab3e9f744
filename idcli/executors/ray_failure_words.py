"""A Ray error, or a worker that could not start or was restarted, put into the words of a note or the report: the
error Ray wraps (its text is the remote traceback, in colour codes), where it was raised, and what each node needs when
no worker could build its engine. Why a worker's process died is ray_deaths.py's. Split from ray.py."""

from __future__ import annotations

import re
from typing import Any

# Also for an actor that could not be created at all (idcli missing on that node, another version of it).
NO_ENGINE_HINT = ("each node needs idcli in this version, and the model in its own Hugging Face cache or a local model "
                  "folder at the same path (docs/scale-out.md)")


def none_could_start(why: str, missing: bool) -> str:
    """The run's stop when no worker could build its engine: the last worker's words, and where each node must hold
    the model only when it was missing there (a damaged weight file's own words say its fix)."""
    return f"no Ray worker could start: {why}; {NO_ENGINE_HINT}" if missing else f"no Ray worker could start: {why}"


def engine_unavailable(exc: BaseException) -> tuple[str, bool] | None:
    """Why a worker could not build its engine, and whether the model was missing from its node, when that is what
    ``exc`` (a Ray task error) carries; else None."""
    from .ray_worker import EngineUnavailable

    # A RayTaskError is also an instance of the class it wraps, but its text is the remote traceback: use the cause.
    cause = getattr(exc, "cause", None)
    if not isinstance(cause, EngineUnavailable) or not cause.args:
        return None
    # A worker of an earlier idcli raised the words alone: missing, as it was always said.
    return str(cause.args[0]), bool(cause.args[1]) if len(cause.args) > 1 else True


def restarted_note(worker: dict[str, Any], before: int | None, jobs: int, cause: str | None = None) -> str:
    """The note for a batch Ray ran again on a restarted worker (its process died mid-batch): which worker, why when
    Ray recorded it (``cause``: ray_deaths.py's words), and that the batch was rendered again. ``before``: the dead
    process's pid, when Ray's actor table or an earlier reply named it."""
    who = f"{worker['host']}:{before}" if before is not None and before != worker["pid"] else f"on {worker['host']}"
    why = f" ({cause})" if cause else ""
    return (f"note: the Ray worker {who} died mid-batch{why} and Ray restarted it (now pid {worker['pid']}); its batch "
            f"of {jobs} was rendered again there")


def task_error(exc: BaseException) -> str:
    """A batch's error raised in the Ray worker's own code, outside the engine's render (whose errors come back in the
    reply), as the report gives it: the error itself and where, ``ValueError: … (on the Ray worker IP:PID)``. Ray's
    text for it begins with its own line, ``ray::RenderWorker.render() (pid=…, ip=…)`` in colour codes, then the
    remote traceback; the error is its ``cause`` (or the traceback's last error line)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and not isinstance(cause, type(exc)):
        said = f"{type(cause).__name__}: {first_line(cause)}" if str(cause).strip() else type(cause).__name__
    else:
        said = last_error_line(exc)
        said = said if "Error: " in said or "Exception: " in said else f"{type(exc).__name__}: {said}"
    pid, ip = getattr(exc, "pid", None), getattr(exc, "ip", None)
    if not (pid and ip) and (named := re.search(r"\(pid=(\d+), ip=([^,)\s]+)", str(exc))):
        pid, ip = named.groups()  # the error Ray raises is of the cause's class too, without those attributes
    where = f" (on the Ray worker {ip}:{pid})" if pid and ip else ""
    return _PLAIN.sub("", said) + where


_PLAIN = re.compile(r"\x1b\[[0-9;]*m")  # a terminal's colour codes, which Ray puts in an error's text


def first_line(exc: BaseException) -> str:
    """An error's first line, or its class's name when it has no text."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def last_error_line(exc: BaseException) -> str:
    """The original error inside a Ray actor error's text (its last ``SomethingError: ...`` line)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    errors = [line for line in lines if ("Error: " in line or "Exception: " in line) and not line.startswith("ray")]
    return errors[-1] if errors else first_line(exc)
