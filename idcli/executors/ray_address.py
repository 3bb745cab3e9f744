"""The Ray cluster address a render was given (``--ray-address``, ``ray_address=`` from Python, else ``RAY_ADDRESS``),
checked before Ray is asked (docs/scale-out.md, "Faults"): an address with a space around it, a dashboard's
``http://`` address, one with no port or no host, a kind Ray does not take, a ``ray://`` address without its port or
without Ray Client installed are refused with the forms allowed; then the head must answer as one (ray_head.py).
Ray's own errors for each took seconds or said little. Split from ray.py, which connects once the address passes."""

from __future__ import annotations

from typing import Any

from ..errors import ExecutorUnavailableError, InputError
from ..option_words import EachSurface, Option
from .ray_head import check_head_answers

# The kinds of address a render takes (docs/scale-out.md), as an error about another kind names them.
ALLOWED_ADDRESSES = ("give the head's HOST:PORT (6379 by default), auto, or ray://HOST:PORT to connect through Ray "
                     "Client (the head's Ray Client server, port 10001 by default)")


def check_address(target: str, as_option: bool) -> None:
    """Refuse ``target`` unless Ray can be asked to connect to it: ``local`` and ``auto`` pass as they are, a head's
    address once it answers as one. ``as_option``: it was given as ``--ray-address`` (``ray_address=`` from Python),
    not as ``RAY_ADDRESS``, which the errors name."""
    if target != target.strip():
        raise _padded_address(target, as_option)
    if target.startswith(("http://", "https://")):
        raise _dashboard_address(target, as_option)
    if target.startswith("ray://"):
        _check_client_address(target, as_option)
    elif "://" in target:
        _check_kind(target, as_option)
    else:
        if target not in ("auto", "local"):
            _check_form(target, as_option)
        check_head_answers(target)


def _dashboard_address(target: str, as_option: bool) -> ExecutorUnavailableError:
    """An http:// address is the Ray dashboard's, which Ray's job submission asks a pipeline to export as
    RAY_ADDRESS (``ray job submit``); Ray's own error is several lines, blames RAY_ADDRESS for a --ray-address too,
    and advises unsetting it, which would have this run start a cluster of its own."""
    return ExecutorUnavailableError(
        _given(target, as_option), ": an http:// address is the Ray dashboard's, which `ray job submit` takes, not a "
        "cluster's head a render joins; give the head's address, HOST:6379 by default (`ray start --head` prints it)",
        *(() if as_option else (" with ", Option("ray_address"), ", which wins over RAY_ADDRESS")),
        field="ray_address")


def _given(target: str, as_option: bool) -> Any:
    """The address as the user gave it: ``--ray-address ADDR`` (``ray_address='ADDR'`` from Python), or
    ``RAY_ADDRESS=ADDR``."""
    return Option("ray_address", target) if as_option else f"RAY_ADDRESS={target}"


def _check_client_address(target: str, as_option: bool) -> None:
    """A Ray Client address (``ray://HOST:PORT``, the head's Ray Client server) checked as a head's address is,
    before Ray is asked: Ray Client took 30 s to say "ray client connection timeout" whatever was wrong (nothing
    listening, no port given, another port). Then that Ray Client is installed here: it needs grpcio, which idcli's
    ``ray`` extra installs but Ray alone does not."""
    from importlib.util import find_spec

    inner = target.removeprefix("ray://")
    host, _, port = inner.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(_given(target, as_option), ": a ray:// address needs the port of the head's Ray Client "
                         "server: give ray://HOST:PORT (10001 by default)", field="ray_address")
    check_head_answers(inner, named=target, client=True)
    if find_spec("grpc") is None:
        raise ExecutorUnavailableError(
            f"cannot connect to the Ray cluster at {target}: a ray:// address connects through Ray Client, which "
            "needs grpcio here: pip install 'ray[client]'; or run idcli on a node of the cluster with the head's "
            "HOST:PORT (6379 by default)")


def _check_form(target: str, as_option: bool) -> None:
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
    raise InputError(_given(target, as_option), f": {problem}; {ALLOWED_ADDRESSES}", field="ray_address")


def _check_kind(target: str, as_option: bool) -> None:
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
        raise InputError(_given(target, as_option), f": Ray takes no {scheme}://" if scheme else ": Ray takes no ://",
                         f" address; {ALLOWED_ADDRESSES}", field="ray_address")


def _padded_address(target: str, as_option: bool) -> InputError:
    """An address copied with a space or a line break around it: looked up as a host name with the space in it,
    it failed as "Name or service not known" (a trailing one reached Ray), the space unseen in the message. It is
    refused, as other options' values are, not trimmed: the address is shown quoted, with what to give."""
    text = repr(target)
    given = EachSurface(f"ray_address={text}", f"--ray-address {text}") if as_option else f"RAY_ADDRESS={text}"
    where = " and ".join(side for side, padded in (("begins", target != target.lstrip()),
                                                   ("ends", target != target.rstrip())) if padded)
    kind = "a space" if target.strip(" ") == target.strip() else "whitespace"
    if not target.strip():
        return InputError(given, ": the address is only whitespace; give a cluster address such as "
                          "'head-node:6379'", field="ray_address")
    fix = Option("ray_address", target.strip()) if as_option else f"RAY_ADDRESS={target.strip()}"
    return InputError(given, f": the address {where} with {kind} (copied with it?); give it without: ", fix,
                      field="ray_address")
