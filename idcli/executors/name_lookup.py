"""A TCP connection to a Ray head whose host name is looked up under the connection's own deadline.

``socket.create_connection``'s ``timeout`` bounds the connect, not the name's lookup before it: ``getaddrinfo`` waits
as long as the system's resolver does (a name server that does not answer: 5 s a try, several tries, several servers;
a VPN's or a container's resolver gone: for ever). A ``--ray-address ray://HOST:PORT`` whose name resolved slowly held
the address check, and the head watch every 2 s, that long (found by the farm's last loose ends, 2026-12-02). The name
is now looked up in a daemon thread given the connect's deadline; given up, the lookup may go on in that thread, which
cannot keep the process from exiting (docs/scale-out.md, "Faults"). The head watch looks its name up once
(``resolve``) and connects to that address at each check (``connect_to``): a slow resolver is not a head gone.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from typing import Any

# How long a connection to the head (the address check before Ray is asked) is given: the name's lookup, then the
# connect, each.
CONNECT_SECONDS = 5.0


class NameNotResolved(OSError):
    """The host name did not resolve within the deadline (the system's resolver gave no answer in time)."""

    def __init__(self, host: str, seconds: float) -> None:
        super().__init__(f"the name {host} did not resolve in {seconds:g} s")
        self.host = host
        self.seconds = seconds


def resolve(host: str, port: int, seconds: float) -> list[Any]:
    """``socket.getaddrinfo(host, port, type=SOCK_STREAM)`` within ``seconds``: its answers, or its own error
    (``socket.gaierror``: no such name), or ``NameNotResolved`` when it has not answered in time. An IP address asks
    no name server: looked up here (the head watch's, every 2 s, is the GCS's address as Ray resolved it)."""
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(host)
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    outcome: list[tuple[bool, Any]] = []

    def look_up() -> None:
        try:
            outcome.append((True, socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)))
        except BaseException as exc:  # handed to the caller, as if raised there
            outcome.append((False, exc))

    thread = threading.Thread(target=look_up, name="idcli-name-lookup", daemon=True)
    thread.start()
    thread.join(seconds)
    if not outcome:
        raise NameNotResolved(host, seconds)
    ok, value = outcome[0]
    if not ok:
        raise value
    return list(value)


def connect(host: str, port: int, seconds: float) -> socket.socket:
    """A TCP connection to ``host:port``, as ``socket.create_connection`` opens one (each address the name has, in
    turn), with the name's lookup bounded by ``seconds`` too (``NameNotResolved``)."""
    return connect_to(resolve(host, port, seconds), seconds, host)


def connect_to(addresses: list[Any], seconds: float, host: str) -> socket.socket:
    """A TCP connection to the first of ``addresses`` (``resolve``'s answers for ``host``) that takes one within
    ``seconds``; the last one's error when none does."""
    error: OSError | None = None
    for family, kind, protocol, _, address in addresses:
        connection = socket.socket(family, kind, protocol)
        try:
            connection.settimeout(seconds)
            connection.connect(address)
            return connection
        except OSError as exc:
            connection.close()
            error = exc
    raise error if error is not None else OSError(f"the name {host} has no address")
