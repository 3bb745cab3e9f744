"""The head watch of a cluster named by a host name (``--ray-address ray://farm-head:10001``: the head's Ray Client
server is watched by its name), where the system's resolver answers, but slowly (idcli/executors/ray_head.py,
name_lookup.py; docs/scale-out.md, "Faults")."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest

from idcli.executors import ray_head
from idcli.executors.ray_head import HeadWatch

NAME = "farm-head.studio.internal"


def test_a_head_named_by_a_slow_resolving_name_is_not_taken_for_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A resolver that answers in 1.5 s (its first name server gone: glibc asks the next after its timeout) for a head
    that answers every check: each check looked the name up again within its connection's 1 s, missed, and the run
    was stopped as "went away" after 3 checks, about 6 s in, its head well (since the lookup was bounded, 2026-12-02;
    before, each check waited for the resolver). The watch now looks the name up once, given the address check's
    deadline (CONNECT_SECONDS), and connects to that address at each check."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    real_getaddrinfo = socket.getaddrinfo
    lookups: list[str] = []
    never = threading.Event()

    def slow_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == NAME:
            lookups.append(host)
            never.wait(1.5)  # answered, late
            return real_getaddrinfo("127.0.0.1", *args, **kwargs)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow_getaddrinfo)
    monkeypatch.setenv("RAY_USE_TLS", "1")  # the watch keeps to its TCP connection: no gRPC server needed here
    watch = HeadWatch(f"{NAME}:{port}", f"ray://{NAME}:{port}")
    with listener:
        for _ in range(ray_head.HEAD_MISSES + 1):
            watch._next = 0.0  # a check is due
            watch.check()
        assert watch.answers(tries=1)
    assert not watch.lost
    assert lookups == [NAME]  # looked up once, not at every check
