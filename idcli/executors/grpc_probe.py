"""Whether an HTTP/2 server answers gRPC: one call, its response's HTTP status read, before Ray is asked.

A Ray head's GCS (and its Ray Client server) is a gRPC server, and the address check (``ray.check_head_answers``)
already expects its HTTP/2 SETTINGS frame. Any HTTP/2 server sends one, though: a proxy, another web service. Ray then
retried such a port for about 20 s, printing a ``Failed to get cluster ID from GCS server: … status: 404`` line a
second, and the run's error pointed at token authentication (found by the farm trial, 2026-12-02). A gRPC server
answers every call, a method it lacks too, with HTTP status 200 (the gRPC status comes in the trailers); another
HTTP/2 server answers a gRPC call with its own status (404, 400, …). Only the status is read, from the response's
first header: where it cannot be read (another encoding, the connection closed, no answer in time), None, and the
check leaves the address to Ray as before. The call made, ``GetClusterId``, only reads (what Ray's client asks first).
"""

from __future__ import annotations

import contextlib
import socket
import time

# The call: Ray's client asks a GCS for its cluster id first (ray.rpc.NodeInfoGcsService), with an empty request.
CALL_PATH = b"/ray.rpc.NodeInfoGcsService/GetClusterId"
# HPACK's static table (RFC 7541, appendix A): the indexed ``:status`` fields, entries 8 to 14.
INDEXED_STATUS = {0x88: 200, 0x89: 204, 0x8A: 206, 0x8B: 304, 0x8C: 400, 0x8D: 404, 0x8E: 500}
HEADERS, SETTINGS = 1, 4
END_STREAM, END_HEADERS, PADDED, PRIORITY, ACK = 0x1, 0x4, 0x8, 0x20, 0x1


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def _literal(name_index: int, value: bytes) -> bytes:
    """A header field "literal without indexing" with an indexed name (RFC 7541 6.2.2), its value not Huffman-coded
    (every value here is under 127 bytes)."""
    assert name_index < 15 and len(value) < 127
    return bytes([name_index, len(value)]) + value


def _call(authority: str) -> bytes:
    """SETTINGS ACK, then stream 1: HEADERS (POST, http, the path, the authority, application/grpc, te: trailers) and
    DATA holding one empty gRPC message, the end of the stream."""
    block = (bytes([0x83, 0x86])  # :method POST, :scheme http (static entries 3 and 6)
             + _literal(4, CALL_PATH) + _literal(1, authority.encode("ascii", "replace")[:100])
             + bytes([0x0F, 0x10, 16]) + b"application/grpc"  # content-type, static entry 31 (15 + 16)
             + bytes([0x00, 2]) + b"te" + bytes([8]) + b"trailers")
    return (_frame(SETTINGS, ACK, 0, b"") + _frame(HEADERS, END_HEADERS, 1, block)
            + _frame(0, END_STREAM, 1, bytes(5)))


def _read_exactly(connection: socket.socket, count: int, deadline: float) -> bytes | None:
    data = b""
    while len(data) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        connection.settimeout(left)
        chunk = connection.recv(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def call_status(connection: socket.socket, first_header: bytes, authority: str, seconds: float) -> int | None:
    """The HTTP status an HTTP/2 server gives a gRPC call, on ``connection`` where the client preface was sent and
    ``first_header`` (9 bytes, a SETTINGS frame's header) read; None where it cannot be told within ``seconds``."""
    deadline = time.monotonic() + seconds
    with contextlib.suppress(OSError):
        if _read_exactly(connection, int.from_bytes(first_header[:3], "big"), deadline) is None:  # its settings
            return None
        connection.sendall(_call(authority))
        while True:
            header = _read_exactly(connection, 9, deadline)
            if header is None:
                return None
            payload = _read_exactly(connection, int.from_bytes(header[:3], "big"), deadline)
            if payload is None:
                return None
            stream = int.from_bytes(header[5:9], "big") & 0x7FFFFFFF
            if header[3] != HEADERS or stream != 1:
                continue  # its SETTINGS ACK, a WINDOW_UPDATE, a PING: not the answer
            flags, start = header[4], 0
            if flags & PADDED:
                start += 1
            if flags & PRIORITY:
                start += 5
            return INDEXED_STATUS.get(payload[start]) if len(payload) > start else None
    return None
