"""A hub that does not answer, or refuses the repository, told as such and after one request (idcli/hub_reach.py).

A render fetches a hub model's tokenizer before it keys a long prompt (idcli/tokenizer_files.py). With the hub
unreachable, huggingface_hub retried for about 25 s (a closed port) to six minutes (a silent one) before the
refusal, which then said "offline, not in the cache"; a gated repository and a misspelt id were refused in the same
words. Here the hub is a closed local port, a local server that accepts and never answers, and a local server that
answers 401/403/404 with the ``X-Error-Code`` the hub sends: never the real hub.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import idcli
from idcli.errors import EXIT_MODEL_UNAVAILABLE, ModelUnavailableError
from idcli.presets import PRESETS

REPO = str(PRESETS["sd15"].default_id)
LONG = ("a woman in a red coat walks through the wet neon street at night, rain and fog and smoke, "
        "a crowded bar behind her, golden light from a window, a train station in the distance")
SHOTS = """\
version: 1
project: reach
model: {{preset: sd15{revision}}}
defaults: {{takes: 1}}
shots:
  - id: rain
    prompt: "{prompt}"
"""
OFFLINE_WORDS = "(offline, not in the cache)"


def _online_through(monkeypatch: pytest.MonkeyPatch, endpoint: str, cache: Path) -> None:
    """huggingface_hub pointed at ``endpoint`` (HF_ENDPOINT as it read it on import), offline mode off, an empty
    cache, and at most one second for the first answer (HF_HUB_ETAG_TIMEOUT as read on import)."""
    import huggingface_hub.constants as hub

    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "ENDPOINT", endpoint)
    monkeypatch.setattr(hub, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(hub, "HF_HUB_ETAG_TIMEOUT", 1)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the block ends: connecting is refused


@contextmanager
def _silent_server() -> Iterator[list[int]]:
    """A server that accepts connections and never answers (as behind a firewall that drops the replies); yields the
    list it appends each connection's port to."""
    seen: list[int] = []
    stop = threading.Event()

    class Silent(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            seen.append(self.client_address[1])
            self.request.settimeout(0.1)
            while not stop.is_set():  # until the client gives up and closes, or the test ends
                try:
                    if not self.request.recv(4096):
                        return
                except TimeoutError:
                    continue
                except OSError:
                    return

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Silent)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    seen.append(server.server_address[1])  # the first entry is the server's own port
    try:
        yield seen
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


@contextmanager
def _refusing_hub(status: int, error_code: str, message: str) -> Iterator[tuple[str, list[str]]]:
    """A server answering every request as the hub refuses one: ``status`` with its X-Error-Code and
    X-Error-Message headers (what huggingface_hub's hf_raise_for_status reads)."""
    requests: list[str] = []

    class Refuse(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: Any) -> None:
            pass

        def _refuse(self) -> None:
            requests.append(f"{self.command} {self.path}")
            body = b"" if self.command == "HEAD" else f'{{"error": "{message}"}}'.encode()
            self.send_response(status)
            self.send_header("X-Error-Code", error_code)
            self.send_header("X-Error-Message", message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_GET = _refuse

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


def _refusal(shots: Path, out: Path) -> ModelUnavailableError:
    with pytest.raises(ModelUnavailableError) as refused:
        idcli.render(shots, out, device="cpu", dry_run=True, qa=False)
    assert refused.value.exit_code == EXIT_MODEL_UNAVAILABLE
    assert not out.exists()
    return refused.value


@pytest.mark.parametrize("hub", ["closed port", "silent server"])
def test_an_unreachable_hub_is_asked_once_and_named(hub: str, write_shotlist, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    shots = write_shotlist(SHOTS.format(revision="", prompt=LONG))
    with _silent_server() as seen:
        port = seen[0] if hub == "silent server" else _closed_port()
        _online_through(monkeypatch, f"http://127.0.0.1:{port}", tmp_path / "cache")
        text = str(_refusal(shots, tmp_path / "out"))
        connections = seen[1:]
    assert "cannot key shot 'rain'" in text and "Nothing was rendered" in text
    # Before: "(offline, not in the cache)", after huggingface_hub's five retries (six silent minutes).
    assert OFFLINE_WORDS not in text
    assert f"the hub (http://127.0.0.1:{port}) could not be reached" in text, text
    assert "HF_HUB_OFFLINE=1" in text and "local diffusers folder" in text, text
    if hub == "silent server":
        assert "no answer in time" in text and len(connections) == 1, (text, connections)


@pytest.mark.parametrize(("status", "code", "message", "revision", "kind"), [
    (401, "GatedRepo", f"Access to model {REPO} is restricted. You must have access to it and be authenticated to "
     "access it. Please log in.", "", "gated"),
    (403, "GatedRepo", f"Access to model {REPO} is restricted and you are not in the authorized list. Visit "
     f"https://huggingface.co/{REPO} to ask for access.", "", "gated"),
    (401, "RepoNotFound", "Invalid username or password.", "", "no-repository"),
    (404, "RepoNotFound", "Repository not found", "", "no-repository"),
    (404, "RevisionNotFound", "Invalid rev id: v9", ", revision: v9", "no-revision"),
])
def test_a_refused_repository_is_told_from_one_not_in_the_cache(
        status: int, code: str, message: str, revision: str, kind: str, write_shotlist, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    shots = write_shotlist(SHOTS.format(revision=revision, prompt=LONG))
    with _refusing_hub(status, code, message) as (endpoint, requests):
        _online_through(monkeypatch, endpoint, tmp_path / "cache")
        text = str(_refusal(shots, tmp_path / "out"))
    assert "cannot key shot 'rain'" in text and OFFLINE_WORDS not in text, text
    expected = {
        "gated": [f"'{REPO}' is a gated repository", f"accept the model's licence on its page ({endpoint}/{REPO})",
                  "hf auth login"],
        "no-repository": [f"has no repository '{REPO}'", "check the id"],
        "no-revision": [f"'{REPO}' has no revision 'v9'", "check `model.revision`"],
    }[kind]
    assert all(words in text for words in expected), (expected, text)
    assert len(requests) == 1, requests  # a refusal is not asked again


def test_the_cli_refuses_an_unreachable_hub_in_one_line(write_shotlist, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from idcli.cli import app

    shots = write_shotlist(SHOTS.format(revision="", prompt=LONG))
    _online_through(monkeypatch, f"http://127.0.0.1:{_closed_port()}", tmp_path / "cache")
    result = CliRunner().invoke(app, ["render", str(shots), "--out", str(tmp_path / "out"), "--device", "cpu",
                                      "--no-qa"])
    stderr = " ".join(result.stderr.split())
    assert result.exit_code == EXIT_MODEL_UNAVAILABLE, stderr
    assert "could not be reached" in stderr and "Traceback" not in result.output, stderr
    assert "Retrying in" not in stderr, stderr  # huggingface_hub's notice of each retry


@pytest.mark.parametrize(("status", "code", "says"), [
    (401, "GatedRepo", "is a gated repository"),
    (404, "RepoNotFound", "has no repository"),
])
def test_models_fetch_names_a_refused_repository_and_an_unreachable_hub(
        status: int, code: str, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`idcli models fetch` said "Check the network (HF_ENDPOINT, HF_TOKEN for gated repositories)" for both, and
    retried a hub that did not answer for 25 s before saying it could not be reached."""
    from idcli import model_setup

    _online_through(monkeypatch, "http://127.0.0.1:1", tmp_path / "cache")  # only for the timeout and offline mode
    with _refusing_hub(status, code, "refused") as (endpoint, requests), \
            pytest.raises(ModelUnavailableError) as refused:
        model_setup.fetch("sd15", "faceid", cache_dir=tmp_path / "cache", endpoint=endpoint, progress=False)
    text = str(refused.value)
    assert f"cannot fetch base model '{REPO}'" in text and says in text and "Check the network" not in text, text
    assert len(requests) == 1, requests
    closed = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(ModelUnavailableError) as unreachable:
        model_setup.fetch("sd15", "faceid", cache_dir=tmp_path / "cache", endpoint=closed, progress=False)
    assert f"the hub ({closed}) could not be reached" in str(unreachable.value), str(unreachable.value)


@pytest.mark.parametrize("hub", ["closed port", "gated"])
def test_a_render_loading_a_hub_model_asks_an_unanswering_or_refusing_hub_once(
        hub: str, write_shotlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A short prompt needs no tokenizer, so the render goes on to load the model, whose download met the same
    silence (minutes behind a silent hub) and said `HF_HUB_OFFLINE=1 forbids network access` with the offline mode
    off, or `401 Client Error` for a gated repository."""
    shots = write_shotlist(SHOTS.format(revision="", prompt="an empty harbour at dawn"))
    with _refusing_hub(401, "GatedRepo", f"Access to model {REPO} is restricted.") as (endpoint, requests):
        url = endpoint if hub == "gated" else f"http://127.0.0.1:{_closed_port()}"
        _online_through(monkeypatch, url, tmp_path / "cache")
        with pytest.raises(ModelUnavailableError) as refused:
            idcli.render(shots, tmp_path / "out", device="cpu", qa=False)
    text = str(refused.value)
    assert f"cannot load model '{REPO}'" in text and "forbids network access" not in text, text
    if hub == "gated":
        assert f"'{REPO}' is a gated repository" in text and "hf auth login" in text, text
        assert len(requests) == 1, requests
    else:
        assert f"the hub ({url}) could not be reached" in text and "HF_HUB_OFFLINE=1" in text, text
    assert not list((tmp_path / "out").rglob("*.png"))


def test_a_model_in_the_cache_loads_with_the_hub_unreachable_without_asking_it(
        tiny_engines, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The one request is made only for a model the cache lacks: a cached snapshot loads as before (diffusers falls
    back to the cache when the hub does not answer), online and with the hub a closed port."""
    from idcli.engine.build import load_pretrained_pipeline
    from idcli.models import resolve_model
    from idcli.shotlist import ModelSpec

    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--someone--cached-sd15"
    tiny_engines("tiny-sd").pipe.save_pretrained(repo / "snapshots" / revision, safe_serialization=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    _online_through(monkeypatch, f"http://127.0.0.1:{_closed_port()}", tmp_path / "hub")
    identity = resolve_model(ModelSpec(preset="sd15", id="someone/cached-sd15"), tmp_path, "float32")
    assert load_pretrained_pipeline(identity, None).unet is not None
