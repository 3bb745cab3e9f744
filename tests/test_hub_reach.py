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
    # The HfApi behind huggingface_hub.model_info (diffusers asks it before a download) took ENDPOINT when first
    # imported, by whichever test came first.
    monkeypatch.setattr("huggingface_hub.hf_api.api.endpoint", endpoint)
    monkeypatch.setattr(hub, "HF_HUB_ETAG_TIMEOUT", 1)
    # huggingface_hub's own agent-harness registry ({ENDPOINT}/api/agent-harnesses, fetched once a day and process
    # when no copy is in HF_HOME, 3 s at most): not idcli's request, and counted here only by whichever test came
    # first, so taken as fetched (and empty) here.
    monkeypatch.setattr("huggingface_hub.utils._detect_agent._registry", {"standardEnvVars": [], "harnesses": {}})


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
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A hub answering as ``handler`` does on a free local port, for the length of the block: its endpoint."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
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

    with _serving(Refuse) as endpoint:
        yield endpoint, requests


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
    # A wrong HF_TOKEN, refused even for a public repository: was an OSError taken for a file-system failure.
    (401, "", "Invalid credentials in Authorization header", "", "bad-token"),
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
        "bad-token": [f"the hub ({endpoint}) refused this machine's token", "unset HF_TOKEN"],
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


@contextmanager
def _failing_hub(mode: str) -> Iterator[tuple[str, list[str]]]:
    """A server that fails after (or instead of) the one metadata request: ``"cut"`` answers every HEAD as the hub
    does for a file it has, then sends 100 of a GET's 4096 bytes and closes the connection; ``"503"``/``"429"``
    answers every request with that status (an overloaded or rate-limiting hub: no X-Error-Code);
    ``"get 503"`` answers the HEAD, then 503 to the download."""
    requests: list[str] = []

    class Fail(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: Any) -> None:
            pass

        def _answer(self, status: int, length: int, sent: bytes = b"") -> None:
            self.send_response(status)
            self.send_header("X-Repo-Commit", "0123456789abcdef0123456789abcdef01234567")
            self.send_header("ETag", '"0123456789abcdef"')
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(sent)

        def do_HEAD(self) -> None:
            requests.append(f"HEAD {self.path}")
            if mode in ("503", "429"):
                self._answer(int(mode), 0)
            else:
                self._answer(200, 4096)

        def do_GET(self) -> None:
            requests.append(f"GET {self.path}")
            if mode == "cut":
                self._answer(200, 4096, b"x" * 100)
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            else:
                self._answer(503 if mode == "get 503" else int(mode), 0)

    with _serving(Fail) as endpoint:
        yield endpoint, requests


def _no_resume_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    """huggingface_hub resumes a broken download five times, a second apart: not waited for here."""
    import huggingface_hub.file_download as file_download

    class Clock:
        sleep = staticmethod(lambda _seconds: None)

    monkeypatch.setattr(file_download, "time", Clock)


FAILURE_WORDS = {
    "cut": "the download from the hub ({endpoint}) broke off",
    "503": "the hub ({endpoint}) answered 503",
    "429": "the hub ({endpoint}) answered 429",
    "get 503": "the hub ({endpoint}) answered 503",
}


@pytest.mark.parametrize("mode", ["cut", "503", "429", "get 503"])
def test_a_hub_failing_after_or_at_the_check_refuses_the_tokenizer_in_words(
        mode: str, write_shotlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The metadata request answered and the download cut off (huggingface_hub's RemoteProtocolError, not an
    OSError) ended in `internal error ... a bug in idcli`; a 503 or 429 to the check itself in the words of a file
    system failure (exit 5); a 503 to the download in `offline, not in the cache`. Nothing partial stays in the
    cache, nothing is written to the output folder."""
    shots = write_shotlist(SHOTS.format(revision="", prompt=LONG))
    _no_resume_pause(monkeypatch)
    with _failing_hub(mode) as (endpoint, requests):
        _online_through(monkeypatch, endpoint, tmp_path / "cache")
        text = str(_refusal(shots, tmp_path / "out"))
    assert "cannot key shot 'rain'" in text and OFFLINE_WORDS not in text, text
    assert FAILURE_WORDS[mode].format(endpoint=endpoint) in text, text
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and "blobs" in p.parts], requests
    if mode in ("503", "429"):
        assert requests == [f"HEAD /{REPO}/resolve/main/tokenizer/vocab.json"], requests  # asked once


@pytest.mark.parametrize("mode", ["cut", "503"])
def test_models_fetch_refuses_a_hub_failing_after_or_at_the_check_in_words(
        mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`idcli models fetch` ended in `internal error` for a download cut off after the check, and called a 503 to
    the check a file-system failure."""
    from typer.testing import CliRunner

    from idcli.cli import app

    _no_resume_pause(monkeypatch)
    with _failing_hub(mode) as (endpoint, _requests):
        _online_through(monkeypatch, endpoint, tmp_path / "cache")
        result = CliRunner().invoke(app, ["models", "fetch", "sd15", "--variant", "faceid"])
    stderr = " ".join(result.stderr.split())
    assert result.exit_code == EXIT_MODEL_UNAVAILABLE, (result.exit_code, stderr)
    assert f"cannot fetch base model '{REPO}'" in stderr and FAILURE_WORDS[mode].format(endpoint=endpoint) in stderr, \
        stderr
    assert "internal error" not in stderr and "Traceback" not in result.output, stderr
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and "blobs" in p.parts]


def test_a_render_loading_a_hub_model_refuses_a_download_cut_off_in_words(
        write_shotlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The model's download (diffusers' `download`, after the one request was answered) cut off: httpx's
    RemoteProtocolError, not an OSError, passed every `except` and ended in `internal error ... a bug in idcli`."""
    shots = write_shotlist(SHOTS.format(revision="", prompt="an empty harbour at dawn"))
    _no_resume_pause(monkeypatch)
    with _failing_hub("cut") as (endpoint, _requests):
        _online_through(monkeypatch, endpoint, tmp_path / "cache")
        with pytest.raises(ModelUnavailableError) as refused:
            idcli.render(shots, tmp_path / "out", device="cpu", qa=False)
    text = str(refused.value)
    assert f"cannot load model '{REPO}'" in text and FAILURE_WORDS["cut"].format(endpoint=endpoint) in text, text
    # Not on this machine: a Ray worker's refusal adds where each node must hold it, also where the cut left a partial
    # snapshot (its model_index.json), which the worker's own look at the cache takes for the model (2026-12-02).
    assert refused.value.missing, text
    assert not list((tmp_path / "out").rglob("*.png"))
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and "blobs" in p.parts]


@pytest.mark.parametrize("hub", ["cut", "gated"])
def test_a_hub_adapter_the_cache_lacks_is_asked_for_once_and_refused_in_words(
        hub: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The FaceID adapter's download (diffusers' `_get_model_file`, after the base model loaded) did not go through
    the one request: a gated adapter repository got huggingface_hub's words, a download cut off a traceback."""
    from idcli.engine.faceid_loading import load_faceid_adapter

    _no_resume_pause(monkeypatch)
    failing = _failing_hub("cut") if hub == "cut" else _refusing_hub(401, "GatedRepo", "Access is restricted.")
    with failing as (endpoint, requests):
        _online_through(monkeypatch, endpoint, tmp_path / "cache")
        with pytest.raises(ModelUnavailableError) as refused:
            load_faceid_adapter(None, "someone/faceid", "ip-adapter-faceid_sd15.safetensors")
    text = str(refused.value)
    assert "cannot load the FaceID adapter" in text, text
    if hub == "cut":
        assert FAILURE_WORDS["cut"].format(endpoint=endpoint) in text, text
    else:
        assert "'someone/faceid' is a gated repository" in text and len(requests) == 1, (text, requests)
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and "blobs" in p.parts]


def test_an_unreachable_proxy_is_named_not_blamed_on_the_hub(write_shotlist, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP(S)_PROXY set to a proxy that refuses: the refusal said `the hub (ENDPOINT) could not be reached
    (Connection refused)`, sending people to check a hub their requests never reached. The proxy is named, without
    the password its URL holds."""
    from huggingface_hub.utils import close_session

    shots = write_shotlist(SHOTS.format(revision="", prompt=LONG))
    port = _closed_port()
    _online_through(monkeypatch, "http://hub.example.test", tmp_path / "cache")
    for name in ("HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(name, f"http://someone:secret@127.0.0.1:{port}")
    for name in ("NO_PROXY", "no_proxy", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)  # lower case overrides upper case
    close_session()  # huggingface_hub's client reads the proxy variables when made
    try:
        text = str(_refusal(shots, tmp_path / "out"))
    finally:
        monkeypatch.undo()
        close_session()
    assert "the hub (http://hub.example.test) could not be reached" in text, text
    assert f"through the proxy http://127.0.0.1:{port}" in text and "secret" not in text, text


@pytest.mark.parametrize("hub", ["cut", "gated"])
def test_a_hub_image_encoder_the_cache_lacks_is_asked_for_once_and_refused_in_words(
        hub: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FaceID-Plus v2's CLIP image encoder, loaded by hub id (transformers' from_pretrained downloads it), did not go
    through the one request either."""
    from idcli.engine.faceid_plus import load_image_encoder

    _no_resume_pause(monkeypatch)
    failing = _failing_hub("cut") if hub == "cut" else _refusing_hub(401, "GatedRepo", "Access is restricted.")
    with failing as (endpoint, requests):
        _online_through(monkeypatch, endpoint, tmp_path / "cache")
        with pytest.raises(ModelUnavailableError) as refused:
            load_image_encoder("someone/encoder", "models/image_encoder")
    text = str(refused.value)
    if hub == "cut":
        assert FAILURE_WORDS["cut"].format(endpoint=endpoint) in text, text
    else:
        assert "'someone/encoder' is a gated repository" in text and len(requests) == 1, (text, requests)
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and "blobs" in p.parts]


def test_offline_as_the_environment_says_now_loads_no_encoder_from_the_hub_and_says_offline(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE=1 set after huggingface_hub read it (a host script, the tests' fixture): FaceID-Plus v2's image
    encoder, not in the cache, is refused in the offline words, asking nothing. Before,
    transformers went to the hub (found by a CI run where the hub's name did not resolve: "the download from the hub
    broke off ([Errno -2] Name or service not known)")."""
    from idcli.engine.faceid_plus import load_image_encoder

    with _silent_server() as seen:
        _online_through(monkeypatch, f"http://127.0.0.1:{seen[0]}", tmp_path / "cache")
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the environment says offline; huggingface_hub read "online"
        with pytest.raises(ModelUnavailableError) as refused:
            load_image_encoder("someone/encoder", "models/image_encoder")
        connections = seen[1:]
    text = str(refused.value)
    assert "is not in the Hugging Face cache" in text and "HF_HUB_OFFLINE=1 forbids downloading it" in text, text
    assert connections == [], connections


def test_a_connection_never_made_during_a_download_is_an_unreachable_hub_not_a_cut_download() -> None:
    """A name that does not resolve or a port refused, raised by a download (transformers' own, after the check
    was not asked): the hub could not be reached; only a transport error after the connection is a download that
    broke off."""
    from huggingface_hub.utils import httpx

    from idcli.hub_reach import hub_problem

    never = hub_problem(httpx.ConnectError("[Errno -2] Name or service not known"), "someone/encoder",
                        downloading=True)
    assert never is not None and never.kind == "unreachable", never
    assert "could not be reached ([Errno -2] Name or service not known" in never.why, never.why
    cut = hub_problem(httpx.RemoteProtocolError("peer closed connection"), "someone/encoder", downloading=True)
    assert cut is not None and cut.kind == "broken-off", cut
