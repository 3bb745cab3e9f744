"""Whether a Ray cluster's head answers as one: the address check before a render connects, and the watch on the head
while it runs (docs/scale-out.md, "Faults").

Ray itself retries an address where nothing listens, or where something else does (the dashboard's port, an SSH
server, a proxy), for minutes, and ends a driver whose head went away with exit 1 and no word; these checks say what
answered, at once, and let the run end with exit 4 and what was kept. Split from ray.py; ray_dispatch.py drives the
workers.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING, Any

from ..errors import ExecutorUnavailableError
from .name_lookup import CONNECT_SECONDS, NameNotResolved, connect, connect_to, resolve

if TYPE_CHECKING:
    from .grpc_probe import PendingCall

HEAD_CHECK_SECONDS = 2.0  # while waiting, how often the driver asks whether the cluster's head still answers
HEAD_MISSES = 3  # consecutive unanswered checks before the cluster counts as gone (Ray's client waits 60 s)
# How long the head's GCS has to answer a gRPC call asked and waited for (``answers``): a frozen head (its process
# stopped, its port still accepting connections) answers none. The checks as the run goes on wait for none: each asks
# one call with the whole grace for deadline and takes its answer at a later check (a loaded GCS answers late).
HEAD_CALL_SECONDS = 2.0
# How long the cluster's head has to answer the HTTP/2 preface a gRPC client opens with, before the run is refused
# (a GCS answers in milliseconds; Ray itself would retry a port that never does for about 14 minutes).
HEAD_ANSWER_SECONDS = 10.0
CLIENT_PORT_HINT = "a ray:// address names the head's Ray Client server, port 10001 by default"


class HeadWatch:
    """Whether the cluster's head (its GCS) still answers. When it is gone, Ray's client waits 60 s for it
    and then ends this process with exit 1: no message, no --json document, nothing said of what was kept.
    The driver asks the head itself when a worker dies and, while the run goes on, every ``HEAD_CHECK_SECONDS``: a
    TCP connection, then one gRPC call with a deadline (``HEAD_CALL_SECONDS``), which a head whose process is stopped
    (a frozen VM, ``kill -STOP`` of its ``gcs_server``) does not answer though its port still accepts connections. A
    head that misses ``HEAD_MISSES`` checks in a row ends the run with exit 4 naming the cluster; one that answers again
    before (a pause shorter than that grace) only resets the count."""

    def __init__(self, address: str, name: str | None = None) -> None:
        self.address = address  # the head's GCS, as Ray resolved it
        self.name = name or address  # the cluster as the user named it
        self._misses = 0
        self._next = time.monotonic() + HEAD_CHECK_SECONDS
        self.lost = False  # set once the run was stopped for it: the clean-up then gives Ray's calls a deadline
        self._call: PendingCall | None = None  # the check's gRPC call still in flight, asked at an earlier check
        self._addresses: list[Any] | None = None  # what the head's name resolved to, looked up once

    def _connects(self) -> None:
        """A TCP connection to the head, opened and closed (OSError, ValueError when it is not). Its name (a Ray Client
        server's, ``ray://farm-head:10001``) is looked up once, given ``CONNECT_SECONDS`` as the address check was:
        looked up at each check within its connection's 1 s, a resolver that answers in 1-5 s (its first name server
        gone) made every check a miss, and a well head was "went away" in 6 s (2026-12-02)."""
        host, _, port = self.address.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")  # an IPv6 host as Ray writes one: [::1]:10001
        if self._addresses is None:
            self._addresses = resolve(host, int(port), CONNECT_SECONDS)
        connect_to(self._addresses, 1, host).close()

    def answers(self, tries: int = 2) -> bool:
        for attempt in range(tries):
            try:
                self._connects()
                if self._called_in_time():
                    return True
            except (OSError, ValueError):
                pass
            if attempt + 1 < tries:
                time.sleep(0.2)
        return False

    def _called_in_time(self) -> bool:
        """Whether the head answers a gRPC call within ``HEAD_CALL_SECONDS``. A TCP connection alone is accepted by
        the kernel for a stopped process too. Where the call cannot be made (grpcio not installed; a head started with
        ``RAY_USE_TLS=1``, whose port a plain call does not reach) the connection is the answer, as before
        2026-12-02."""
        if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
            return True
        from .grpc_probe import answers_in_time

        return answers_in_time(self.address, HEAD_CALL_SECONDS) is not False

    def stops_answering(self, seconds: float) -> bool:
        """Whether the head stops answering within ``seconds`` (asked every half second): a head `ray stop` is
        ending answers for a moment after its workers are gone."""
        deadline = time.monotonic() + seconds
        while True:
            if not self.answers(tries=1):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)

    def check(self) -> None:
        """Called as the run goes on, replies arriving or not (it asks at most every ``HEAD_CHECK_SECONDS``): raises
        once the head has missed ``HEAD_MISSES`` checks in a row."""
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + HEAD_CHECK_SECONDS
        self._misses = 0 if self._answered_since() else self._misses + 1
        if self._misses >= HEAD_MISSES:
            self.gone()

    def _answered_since(self) -> bool:
        """A check's question, without waiting: a TCP connection, then whether the gRPC call asked at an earlier check
        was answered (a new one asked once it is done). A call still in flight is a miss; a head that answers each call
        late but within the grace misses a check or two, never ``HEAD_MISSES`` in a row (until 2026-12-02 each check
        waited ``HEAD_CALL_SECONDS`` for its own call, so a GCS answering every call 3 s late was taken for gone in
        6 s, and a slow head held the driver for most of each check)."""
        try:
            self._connects()
        except (OSError, ValueError):
            return False
        if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
            return True
        call = self._call
        if call is not None and not call.done():
            return False  # still no answer to a call asked at least one check ago
        from .grpc_probe import ask

        self._call = ask(self.address, HEAD_CHECK_SECONDS * HEAD_MISSES)
        return call is None or call.answered()

    def close(self) -> None:
        """The check's call still in flight given up (the run is over)."""
        if self._call is not None:
            self._call.close()
            self._call = None

    def gone(self) -> None:
        self.lost = True
        raise ExecutorUnavailableError(f"the Ray cluster at {self.name} went away (its head no longer "
                                       "answers); the images committed so far are kept: run again to resume")


def refused_hint(address: str, exc: BaseException) -> str:
    """What else it is when a ``host:port`` cluster, whose port answered, refused this driver: most often token
    authentication. Ray 2.60's `ray start --head` turns it on when ``~/.ray/auth_token`` exists, and a driver
    given an address turns it on only with ``RAY_AUTH_MODE=token`` (Ray then retries for 20 s and says only
    "Failed to connect")."""
    if address.startswith("ray://") and isinstance(exc, ConnectionError):  # its port answered (checked before)
        return (f"; its port answers, but Ray Client did not connect: {CLIENT_PORT_HINT} (the head's own port, 6379 "
                "by default, is given without ray://)")
    host, _, port = address.rpartition(":")
    if not isinstance(exc, ConnectionError) or not host or not port.isdigit() or "://" in address:
        return ""
    if port == "10001":  # Ray Client's port answers gRPC as a head's does; Ray 2.60 then retried it for 25 s
        return (f"; its port answers, but 10001 is the head's Ray Client server by default: give the head's own "
                f"address (port 6379 by default), or ray://{address} to connect through Ray Client")
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
        return ("; its port answers, so check that this machine's token (RAY_AUTH_TOKEN or ~/.ray/auth_token) is "
                "the cluster's (docs/scale-out.md)")
    return ("; its port answers: if the cluster uses token authentication (`ray start --head` turns it on where "
            "~/.ray/auth_token exists), set RAY_AUTH_MODE=token here and give this machine the cluster's token "
            "(docs/scale-out.md)")


# What a gRPC client sends first (RFC 9113 3.4): the HTTP/2 connection preface and an empty SETTINGS frame.
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def check_head_answers(address: str, named: str | None = None, client: bool = False) -> None:
    """Fail at once when a ``host:port`` cluster address does not answer as a Ray cluster's head does. Ray itself
    retries a port where nothing listens for minutes, and one where something else listens (the dashboard's 8265, an
    SSH server) for about 14 minutes (20 tries of 41 s). A head's GCS is a gRPC server: it answers a gRPC client's
    HTTP/2 preface with a SETTINGS frame before anything else (token authentication is checked later, per call).
    ``client``: ``address`` is a head's Ray Client server (``named``, the ``ray://`` address given), a gRPC server too,
    which Ray Client retries for 30 s."""
    named = named or address  # the cluster as the user named it
    if address == "auto":
        resolved = _auto_address()
        if resolved is None:
            return  # no cluster found: ray.init says so at once
        named = (f"auto ({resolved}, the address the last `ray start --head` on this machine left; a head stopped "
                 "without `ray stop` leaves it behind)")
        address = resolved
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or "://" in address:
        return  # "local", ray:// client addresses: Ray's own handling
    if host.startswith("[") and host.endswith("]"):  # an IPv6 address as Ray writes and reads one: [::1]:6379
        host = host[1:-1]
    try:
        connection = connect(host, int(port), CONNECT_SECONDS)
    except NameNotResolved as exc:  # the system's resolver did not answer: it waited as long as that, unbounded
        raise ExecutorUnavailableError(f"cannot reach the Ray cluster at {named}: {exc} (this machine's name server "
                                       f"did not answer); check the name, or give the head's IP address") from None
    except OSError as exc:
        raise ExecutorUnavailableError(f"cannot reach the Ray cluster at {named} ({exc.strerror or exc}); is "
                                       "`ray start --head` running there, and is the address right?") from None
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        connection.close()  # a TLS head expects a TLS handshake first: Ray's own handling
        return
    with connection:
        host = str(connection.getpeername()[0])  # the address the name gave: not looked up again below
        answer = _first_answer(connection)
    status = None
    if answer is not None and len(answer) == 9 and answer[3] == 4:  # a SETTINGS frame's header: HTTP/2, as a GCS
        from .grpc_probe import call_status

        status = call_status(address, HEAD_ANSWER_SECONDS)  # one gRPC call, on a connection of grpcio's own
        if status in (None, 200):  # gRPC, or it cannot be told: Ray's to connect
            return
    if status is not None:  # HTTP/2, but another server than gRPC: Ray retried it for 20 s, then "Failed to connect"
        kind = "a Ray Client server" if client else "a Ray cluster's head"
        raise ExecutorUnavailableError(
            f"cannot connect to the Ray cluster at {named}: its port answers HTTP/2, but not gRPC as {kind} does (a "
            f"gRPC call was answered with HTTP status {status}: another web server or a proxy); "
            + (CLIENT_PORT_HINT if client else "`ray start --head` prints the address to give (port 6379 by default)"))
    if _speaks_tls(host, int(port), answer):  # the address is right: TLS is missing on this side
        kind = "a Ray Client server" if client else "a Ray cluster's head"
        raise ExecutorUnavailableError(
            f"cannot connect to the Ray cluster at {named}: its port answers TLS, as {kind} started with RAY_USE_TLS=1 "
            "does, and this machine does not speak it: set RAY_USE_TLS=1 here too, with RAY_TLS_SERVER_CERT, "
            "RAY_TLS_SERVER_KEY and RAY_TLS_CA_CERT naming this machine's copies of the cluster's certificate files")
    if client:
        raise ExecutorUnavailableError(f"cannot connect to the Ray cluster at {named}: its port answers, but not as a "
                                       f"Ray Client server does ({_what_answered(answer)}); {CLIENT_PORT_HINT}")
    raise ExecutorUnavailableError(f"cannot connect to the Ray cluster at {named}: its port answers, but not as a "
                                   f"Ray cluster's head does ({_what_answered(answer)}); `ray start --head` prints "
                                   "the address to give (port 6379 by default)")


def _auto_address() -> str | None:
    """The ``host:port`` Ray connects to for ``auto``, as Ray resolves it: a head process running on this machine, else
    the address the last ``ray start --head`` here wrote in Ray's temporary folder (``/tmp/ray/ray_current_cluster``,
    removed by ``ray stop`` only). None when Ray finds none, or resolves it otherwise (its own handling then)."""
    try:
        from ray._private.services import canonicalize_bootstrap_address

        resolved = canonicalize_bootstrap_address("auto")
    except Exception:  # ConnectionError: no cluster found (ray.init says so); another Ray's internals
        return None
    return resolved if isinstance(resolved, str) else None


def _first_answer(connection: Any) -> bytes | None:
    """The first 9 bytes (an HTTP/2 frame header) a port sends back to the HTTP/2 preface: fewer when it closes the
    connection first, None when it says nothing in ``HEAD_ANSWER_SECONDS``."""
    answer = b""
    try:
        connection.settimeout(HEAD_ANSWER_SECONDS)
        connection.sendall(HTTP2_PREFACE)
        deadline = time.monotonic() + HEAD_ANSWER_SECONDS
        while len(answer) < 9:
            connection.settimeout(max(deadline - time.monotonic(), 0.001))
            chunk = connection.recv(9 - len(answer))
            if not chunk:
                break
            answer += chunk
    except TimeoutError:
        return answer or None
    except OSError:  # reset by the peer: it closed the connection on the preface
        return answer
    if len(answer) == 9 and answer[3] != 4:  # not HTTP/2: the rest of its first line, to say what it is
        with contextlib.suppress(OSError):
            connection.settimeout(0.2)
            answer += connection.recv(64)
    return answer


def _speaks_tls(host: str, port: int, answer: bytes | None) -> bool:
    """Whether the port speaks TLS, as a head started with ``RAY_USE_TLS=1`` does: its answer to the plain preface is a
    TLS record (an alert), or, where it closed the connection without a word (grpcio's TLS servers do), a TLS
    ClientHello on a connection of its own is answered with one (a ServerHello or an alert). Nothing is verified: the
    handshake is not finished, only which protocol the port speaks is read."""
    if answer:
        return _is_tls_record(answer)
    if answer is None:  # silent: nothing to tell from
        return False
    import socket
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    outgoing = ssl.MemoryBIO()
    hello = context.wrap_bio(ssl.MemoryBIO(), outgoing)
    with contextlib.suppress(ssl.SSLWantReadError):
        hello.do_handshake()  # writes the ClientHello to ``outgoing``, then waits for an answer it never gets here
    reply = b""
    try:
        with socket.create_connection((host, port), timeout=5) as connection:
            connection.settimeout(HEAD_ANSWER_SECONDS)
            connection.sendall(outgoing.read())
            while len(reply) < 3:
                chunk = connection.recv(3 - len(reply))
                if not chunk:
                    break
                reply += chunk
    except OSError:
        return False
    return _is_tls_record(reply)


def _is_tls_record(data: bytes) -> bool:
    """A TLS record's header: an alert (21) or a handshake (22), protocol version 3.x (SSL 3 to TLS 1.3)."""
    return len(data) >= 3 and data[0] in (21, 22) and data[1] == 3


def _what_answered(answer: bytes | None) -> str:
    if answer is None:
        return f"it did not answer in {HEAD_ANSWER_SECONDS:g} s"
    if not answer:
        return "it closed the connection without a word"
    if answer.startswith((b"HTTP/", b"<")):
        return "it answers HTTP/1, as a web server such as the Ray dashboard (port 8265 by default) does"
    shown = "".join(ch if ch.isprintable() else "?" for ch in answer.decode("latin-1").splitlines()[0])
    return f"it answered {shown!r}"
