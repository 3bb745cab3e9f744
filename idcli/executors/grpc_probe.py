"""Whether an HTTP/2 server answers gRPC: one gRPC call (grpcio), before Ray is asked.

A Ray head's GCS (and its Ray Client server) is a gRPC server, and the address check (``ray_head.check_head_answers``)
already expects its HTTP/2 SETTINGS frame. Any HTTP/2 server sends one, though: a proxy, another web service. Ray then
retried such a port for about 20 s, printing a ``Failed to get cluster ID from GCS server: … status: 404`` line a
second, and the run's error pointed at token authentication (found by the farm trial, 2026-12-02). A gRPC server
answers every call, a method it lacks too, with HTTP status 200 and a gRPC status; another HTTP/2 server answers a gRPC
call with its own HTTP status (404, 400, 503, …). The call made, ``GetClusterId``, only reads (what Ray's client asks
first). grpcio is imported here only, when a Ray address is checked; without it (Ray installed without idcli's ``ray``
extra) nothing can be told and the address is Ray's, as it is where the call gets no answer.
"""

from __future__ import annotations

import re

# The call: Ray's client asks a GCS for its cluster id first (ray.rpc.NodeInfoGcsService), with an empty request.
CALL_PATH = "/ray.rpc.NodeInfoGcsService/GetClusterId"
# The address itself is asked, never an http_proxy set in the environment, which grpcio would otherwise go through.
NO_PROXY = [("grpc.enable_http_proxy", 0)]
# What grpcio (its C core, chttp2) says where the server answered with an HTTP status other than 200 and so no gRPC
# status: it makes one up from the HTTP status (404 -> UNIMPLEMENTED, 400 -> INTERNAL, 503 -> UNAVAILABLE, ...) and
# gives the HTTP status in the details, "Received http2 header with status: 404" (grpcio 1.85.3). The gRPC status
# alone cannot tell the two apart: a gRPC server lacking the method answers UNIMPLEMENTED too ("Method not found!"), a
# head with token authentication UNAUTHENTICATED; only this text names an HTTP status. A gRPC server that sent this
# very text as its own details would be taken for a proxy: no Ray head does.
HTTP_STATUS_DETAILS = re.compile(r"^Received http2 header with status: (\d{3})$")


def call_status(address: str, seconds: float) -> int | None:
    """The HTTP status the HTTP/2 server at ``address`` (``host:port``, ``[v6]:port``) gives a gRPC call: 200 where a
    gRPC server answered (any gRPC status: OK, UNAUTHENTICATED, UNIMPLEMENTED, ...), the other server's status where
    one answered without gRPC; None where it cannot be told within ``seconds`` (the connection closed or refused, no
    answer in time, grpcio not installed)."""
    try:
        import grpc
    except ImportError:
        return None
    with grpc.insecure_channel(address, options=NO_PROXY) as channel:  # the address itself, as the HTTP/2 preface
        # No serializers: raw bytes in and out, the empty request (b"") and whatever answer, never decoded.
        call = channel.unary_unary(CALL_PATH)
        try:
            call(b"", timeout=seconds)
        except grpc.RpcError as error:
            details = error.details() if isinstance(error, grpc.Call) else None
            status = HTTP_STATUS_DETAILS.match(details or "")
            if status is not None:
                return int(status.group(1))
            code = error.code() if isinstance(error, grpc.Call) else None
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, None):
                return None  # refused, closed, reset, silent: nothing read, the address is Ray's
            # UNKNOWN "No status received" is an HTTP 200 without a gRPC status: not told apart from a gRPC server's
            # own UNKNOWN, and HTTP 200 is what a gRPC server sends, so it passes as one.
            return 200
    return 200


def answers_in_time(address: str, seconds: float) -> bool | None:
    """Whether the gRPC server at ``address`` answers a call within ``seconds``: the head watch's question while a run
    goes on (ray_head.HeadWatch). A process that stopped without going away (a frozen VM, ``kill -STOP`` of the head's
    ``gcs_server``) still has its listening socket, which the kernel keeps accepting connections on, so only a call
    tells it: nothing comes back. True where the server answered anything (any gRPC status: a head with token
    authentication answers UNAUTHENTICATED, a Ray Client server UNIMPLEMENTED; or an HTTP status); False where nothing
    did in time (the call's deadline passed, the connection was refused or closed); None where grpcio is not installed
    (nothing can be told: the watch keeps to its TCP connection)."""
    call = ask(address, seconds)
    return None if call is None else call.answered()


def _an_answer(error: BaseException) -> bool:
    """Whether the error a call ended with was the server's answer (any gRPC status, or an HTTP one), not silence."""
    import grpc

    code = error.code() if isinstance(error, grpc.Call) else None
    if code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED, None):
        return False
    if code == grpc.StatusCode.UNAVAILABLE:  # refused or closed; or an HTTP status from a server that answered
        details = error.details() if isinstance(error, grpc.Call) else None
        return HTTP_STATUS_DETAILS.match(details or "") is not None
    return True


class PendingCall:
    """The head watch's call made without waiting for it (``ask``): the driver goes on while it is in flight, and a
    later check takes its answer, however late within its deadline (a loaded GCS answers late, a stopped one never)."""

    def __init__(self, address: str, seconds: float) -> None:
        import grpc

        self._channel = grpc.insecure_channel(address, options=NO_PROXY)
        self._future = self._channel.unary_unary(CALL_PATH).future(b"", timeout=seconds)

    def done(self) -> bool:
        return bool(self._future.done())

    def answered(self) -> bool:
        """Whether the server answered it (waits for the call where it is not done); its channel is closed then."""
        try:
            self._future.result()
        except Exception as error:  # grpc.RpcError, or grpc.FutureCancelledError once closed
            return _an_answer(error)
        finally:
            self._channel.close()
        return True

    def close(self) -> None:
        self._future.cancel()
        self._channel.close()


def ask(address: str, seconds: float) -> PendingCall | None:
    """The gRPC call ``answers_in_time`` makes, started and not waited for; None where grpcio is not installed."""
    try:
        import grpc  # noqa: F401
    except ImportError:
        return None
    return PendingCall(address, seconds)
