"""A small Hugging Face hub emulator on 127.0.0.1 for offline tests of `idcli models fetch`.

It answers the requests huggingface_hub 2.x makes for ``hf_hub_download`` and ``snapshot_download``:
``/api/models/{repo}/revision/{rev}`` (repo info), ``/api/models/{repo}/tree/{rev}`` (file listing) and
``HEAD``/``GET /{repo}/resolve/{rev}/{path}`` (metadata headers, bytes, ``Range`` requests). Faults are
set per file: ``"drop-once"`` closes the connection half-way through the first full GET (the client
must resume with a Range request); ``"drop"`` does that on every GET, ranged ones included (each
brings half of what is left, so a client with a bounded number of retries ends short); ``"short"``
always sends fewer bytes than the metadata announced. A plain file server too: the insightface
face-pack tests fetch ``{endpoint}/{repo}/resolve/main/buffalo_l.zip``.

Bounded: the server stops by itself after ``lifetime`` seconds even if a test never closes it.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

COMMIT = "0123456789abcdef0123456789abcdef01234567"
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/(?P<kind>revision|tree)/(?P<rev>[^/?]+)")


class HubEmulator:
    def __init__(self, repos: dict[str, dict[str, bytes]], faults: dict[str, str] | None = None,
                 lifetime: float = 120.0) -> None:
        self.repos = repos
        self.faults = dict(faults or {})
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self._dropped: set[str] = set()
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:  # keep test output clean
                pass

            def do_HEAD(self) -> None:
                emulator._serve(self, head=True)

            def do_GET(self) -> None:
                emulator._serve(self, head=False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._timer = threading.Timer(lifetime, self.close)
        self._timer.daemon = True

    def __enter__(self) -> HubEmulator:
        self._thread.start()
        self._timer.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._timer.cancel()
        self.server.shutdown()
        self.server.server_close()

    # -- requests ---------------------------------------------------------------------------------

    def _json(self, handler: BaseHTTPRequestHandler, document: Any, status: int = 200) -> None:
        body = json.dumps(document).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _serve(self, handler: BaseHTTPRequestHandler, head: bool) -> None:
        path = handler.path.split("?", 1)[0]
        self.requests.append((handler.command, path, handler.headers.get("Range")))
        api = _API.match(path)
        if api:
            files = self.repos.get(api["repo"])
            if files is None:
                self._json(handler, {"error": "Repository not found"}, 404)
            elif api["kind"] == "revision":
                self._json(handler, {"id": api["repo"], "sha": COMMIT,
                                     "siblings": [{"rfilename": name} for name in files]})
            else:
                self._json(handler, [{"type": "file", "path": name, "size": len(data),
                                      "oid": hashlib.sha1(data).hexdigest()} for name, data in files.items()])
            return
        match = _RESOLVE.match(path)
        data = self.repos.get(match["repo"], {}).get(match["path"]) if match else None
        if data is None:
            handler.send_response(404)
            handler.send_header("X-Error-Code", "EntryNotFound")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        assert match is not None  # data was found under it
        name = match["path"]
        etag = hashlib.sha256(data).hexdigest()
        start = 0
        wanted = handler.headers.get("Range")
        if wanted and not head:
            ranged = re.match(r"bytes=(\d+)-", wanted)
            assert ranged, f"the emulator serves open-ended ranges only, not {wanted!r}"
            start = int(ranged.group(1))
        body = data[start:]
        fault = self.faults.get(name)
        handler.send_response(206 if start else 200)
        handler.send_header("X-Repo-Commit", COMMIT)
        handler.send_header("ETag", f'"{etag}"')
        handler.send_header("Accept-Ranges", "bytes")
        if start:
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        if fault == "short" and not head:
            body = body[: len(body) // 2]  # a complete response, but of fewer bytes than announced
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if head:
            return
        if fault == "drop" or (fault == "drop-once" and not start and name not in self._dropped):
            self._dropped.add(name)
            handler.wfile.write(body[: len(body) // 2])
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(2)  # the connection breaks mid-body
            return
        handler.wfile.write(body)
