"""The executor options at the command line, checked before anything runs (no Ray cluster needed)."""

from __future__ import annotations

import contextlib
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from idcli.cli import app

SHOTS = """\
version: 1
project: options
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2}
shots:
  - {id: s1, prompt: "a lighthouse in a storm"}
"""


@pytest.fixture
def ray_init_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Ray's ``ray.init`` replaced by a recorder, for checks that must stop before it: each call it got (none, when
    the check works); a call raises the ConnectionError Ray gives after its minutes of retries, so a check that
    lets one through fails at once instead of hanging."""
    import ray

    calls: list[dict] = []

    def init(**kwargs: object) -> None:
        calls.append(kwargs)
        raise ConnectionError("Ray would have retried here for minutes")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    return calls


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["--executor", "dask"], 2, "allowed: local, ray"),
    (["--workers", "2"], 2, "need --executor ray"),
    (["--ray-address", "127.0.0.1:6379"], 2, "need --executor ray"),
    (["--executor", "ray", "--workers", "0"], 2, "--workers 0: give a whole number, 1 or more"),
    # Nothing listens on port 1: an error at once (Ray's own client would retry for minutes), exit 4.
    (["--executor", "ray", "--ray-address", "127.0.0.1:1"], 4, "cannot reach the Ray cluster at 127.0.0.1:1"),
])
def test_executor_options_are_checked(write_shotlist, tmp_path: Path, argv: list[str], code: int,
                                      message: str) -> None:
    path = write_shotlist(SHOTS)
    result = CliRunner().invoke(app, ["render", str(path), "--out", str(tmp_path / "o"), "--device", "cpu", *argv])
    assert result.exit_code == code and message in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("device", ["cuda1", "cuda:x", "cuda:", "cpu1"])
def test_a_mistyped_device_is_refused_before_connecting_to_ray(write_shotlist, tmp_path: Path,
                                                               ray_init_calls: list[dict], device: str) -> None:
    """``--executor ray --device cuda1`` (the colon forgotten) was taken as ``cuda``: any name starting with ``cuda``
    passed, where a local run refuses it (tests/test_device_names.py). Refused the same way, before Ray is asked:
    nothing listens on port 1, so a check after connecting would be exit 4, "cannot reach"."""
    from idcli.errors import InputError
    from idcli.executors.ray import RayBackend

    with pytest.raises(InputError) as caught:
        RayBackend("127.0.0.1:1").runtime(device, "auto")
    assert str(caught.value) == f"device={device!r}: no such device (allowed: auto, cpu, cuda, cuda:N)"
    assert caught.value.field == "device"
    path = write_shotlist(SHOTS)
    result = CliRunner().invoke(app, ["render", str(path), "--out", str(tmp_path / "o"), "--executor", "ray",
                                      "--ray-address", "127.0.0.1:1", "--device", device])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (f"idcli: error: --device {device}: no such device (allowed: auto, cpu, cuda, "
                                     "cuda:N)")
    assert ray_init_calls == [] and not (tmp_path / "o").exists()


@pytest.mark.parametrize("worker_cpus", [-1, "1", True, float("nan")])
def test_ray_backend_worker_cpus_is_checked(worker_cpus: object) -> None:
    """``RayBackend(worker_cpus=-1)`` got as far as starting the actors: Ray's ``ValueError`` ("The quantity of
    resource num_cpus cannot be negative") escaped ``idcli.render`` after the output folder was made."""
    import idcli
    from idcli.executors.ray import RayBackend

    with pytest.raises(idcli.InputError, match=r"worker_cpus .*: give a number of CPUs, 0 or more"):
        RayBackend(worker_cpus=worker_cpus)  # type: ignore[arg-type]


SETTINGS_FRAME = bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # an empty HTTP/2 SETTINGS frame: what a gRPC server sends first


def _listener_answering(reply: bytes | None, host: str = "127.0.0.1") -> tuple[Any, str]:
    """A TCP port on this machine that answers each connection with ``reply`` and closes it (None: stays silent);
    ``host`` ``::1`` listens on IPv6, its address given as Ray writes one, ``[::1]:PORT``."""
    import socket
    import threading

    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.bind((host, 0))
    listener.listen()

    def serve() -> None:
        with contextlib.suppress(OSError):  # closed by the test
            while True:
                connection, _ = listener.accept()
                if reply is None:
                    continue  # accepted, never answered (kept open until the test closes the listener)
                with connection:
                    connection.recv(64)
                    connection.sendall(reply)

    threading.Thread(target=serve, daemon=True).start()
    return listener, f"[{host}]:{listener.getsockname()[1]}" if ":" in host else f"{host}:{listener.getsockname()[1]}"


@pytest.mark.parametrize("auth_mode", [None, "token"])
def test_a_cluster_that_refuses_this_driver_points_at_token_authentication(
        monkeypatch: pytest.MonkeyPatch, auth_mode: str | None) -> None:
    """The farm tour: `ray start --head` on a machine holding ``~/.ray/auth_token`` starts a cluster with token
    authentication, and a driver given its address (``--ray-address`` or ``$RAY_ADDRESS``) never turns token
    authentication on by itself (Ray 2.60: only ``RAY_AUTH_MODE=token`` does, even with the token file at hand).
    Ray refused it for 20 s, then idcli said only "Failed to connect to Ray cluster at ...", as if the address
    were wrong. The port answers (idcli checked it), so the message says what else it is. Ray's own ``ray.init`` is
    replaced by the ConnectionError it raised then: no cluster is started for this."""
    import ray

    from idcli.errors import ExecutorUnavailableError
    from idcli.executors.ray import RayBackend

    def refused(**kwargs: object) -> None:
        raise ConnectionError("Failed to connect to Ray cluster at 192.0.2.2:6393")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refused)
    if auth_mode is None:
        monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    else:
        monkeypatch.setenv("RAY_AUTH_MODE", auth_mode)
    listener, address = _listener_answering(SETTINGS_FRAME)  # the head's GCS answers as an HTTP/2 server does
    with listener, pytest.raises(ExecutorUnavailableError, match=f"cannot connect to the Ray cluster at {address}: "
                                 "Failed to connect to Ray cluster at 192.0.2.2:6393; its port answers") as err:
        RayBackend(address=address).connect()
    assert err.value.exit_code == 4
    if auth_mode is None:
        assert "set RAY_AUTH_MODE=token here and give this machine the cluster's token" in str(err.value)
    else:
        assert "check that this machine's token (RAY_AUTH_TOKEN or ~/.ray/auth_token) is the cluster's" in str(
            err.value)


@pytest.mark.parametrize(("reply", "said"), [
    # The Ray dashboard (aiohttp) answers the HTTP/2 preface as an HTTP/1.1 server does.
    (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", "it answers HTTP/1, as a web server such as the Ray "
                                                               "dashboard (port 8265 by default) does"),
    (b"SSH-2.0-OpenSSH_9.6\r\n", "it answered 'SSH-2.0-OpenSSH_9.6'"),
    (b"", "it closed the connection without a word"),
    (None, "it did not answer in 0.5 s"),
], ids=["http", "ssh", "closed", "silent"])
def test_an_address_whose_port_answers_but_not_as_a_ray_cluster_is_exit_4_at_once(
        write_shotlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ray_init_calls: list[dict],
        reply: bytes | None, said: str) -> None:
    """The farm trial: ``--ray-address head:8265`` (the dashboard's port, which Ray's job submission uses) passed
    idcli's check (its port answers), and Ray's ``ray.init`` then retried for about 14 minutes (20 tries of 41 s),
    printing ``Failed to connect to GCS at address ... within 5 seconds`` lines, before it gave up. A Ray cluster's
    head (its GCS) speaks gRPC over HTTP/2: the port is asked as a gRPC client would first ask it, and a port that does
    not answer so is refused at once, exit 4, saying what answered. ``ray.init`` is replaced by a recorder: it
    must not be reached."""
    from idcli.executors import ray_head

    monkeypatch.setattr(ray_head, "HEAD_ANSWER_SECONDS", 0.5)
    monkeypatch.delenv("RAY_USE_TLS", raising=False)
    listener, address = _listener_answering(reply)
    with listener:
        path = write_shotlist(SHOTS)
        result = CliRunner().invoke(app, ["render", str(path), "--out", str(tmp_path / "o"), "--device", "cpu",
                                          "--executor", "ray", "--ray-address", address])
    assert ray_init_calls == []
    assert result.exit_code == 4, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"idcli: error: cannot connect to the Ray cluster at {address}: "
                                                   "its port answers, but not as a Ray cluster's head"), result.output
    assert said in lines[0] and "`ray start --head` prints the address to give (port 6379 by default)" in lines[0]
    assert not (tmp_path / "o").exists()



@pytest.mark.parametrize("given", ["option", "environment"])
def test_auto_naming_a_cluster_that_is_gone_is_exit_4_at_once(
        write_shotlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ray_init_calls: list[dict],
        given: str) -> None:
    """The farm trial: ``--ray-address auto`` (or ``RAY_ADDRESS=auto``) is the cluster whose address the last ``ray
    start --head`` on this machine wrote in Ray's temporary folder (``/tmp/ray/ray_current_cluster``); a head killed
    without ``ray stop`` leaves it behind. idcli checked only ``host:port`` addresses, so Ray retried the gone head's
    address for about 14 minutes. "auto" is resolved as Ray resolves it and that address checked: exit 4 at once,
    naming it. ``ray.init`` is replaced by a recorder: it must not be reached."""
    from ray._private import services

    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))  # Ray's temporary folder, where "auto" is read from
    # No head process on this machine (Ray's "auto" takes a running one first; other tests' clusters may run here).
    monkeypatch.setattr(services, "find_gcs_addresses", lambda: [])
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text("127.0.0.1:1\n")  # a head that is gone: nothing listens
    argv = ["--executor", "ray"]
    if given == "option":
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
        argv += ["--ray-address", "auto"]
    else:
        monkeypatch.setenv("RAY_ADDRESS", "auto")
    path = write_shotlist(SHOTS)
    result = CliRunner().invoke(app, ["render", str(path), "--out", str(tmp_path / "o"), "--device", "cpu", *argv])
    assert ray_init_calls == []
    assert result.exit_code == 4, result.output
    # Ray names this machine by its own IP address where the file says 127.0.0.1 (resolve_ip_for_localhost).
    assert re.fullmatch(
        r"idcli: error: cannot reach the Ray cluster at auto \([\w.:-]+:1, the address the last `ray start --head` on "
        r"this machine left; a head stopped without `ray stop` leaves it behind\) \(Connection refused\); is "
        r"`ray start --head` running there, and is the address right\?", result.output.strip()), result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("given", ["option", "environment"])
def test_an_http_address_is_named_as_the_dashboards_with_what_to_give(
        write_shotlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ray_init_calls: list[dict],
        given: str) -> None:
    """The farm trial: ``RAY_ADDRESS=http://head:8265`` is what Ray's job submission asks a pipeline to export (the
    dashboard's address, for ``ray job submit``); a render on Ray then read "cannot connect to the Ray cluster at
    http://head:8265: Invalid Ray address: ... It looks like you set RAY_ADDRESS to an HTTP address (e.g. the API
    server address). To fix this, either:" and stopped there, the first line of Ray's message, its remedies cut off
    (and it blamed RAY_ADDRESS for a --ray-address). Now one line naming where the address came from and what to give
    instead; Ray's own ``ray.init`` (which raised that at once) is not reached."""
    address, argv = "http://127.0.0.1:8265", ["--executor", "ray"]
    if given == "option":
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
        argv += ["--ray-address", address]
        named = f"--ray-address {address}"
    else:
        monkeypatch.setenv("RAY_ADDRESS", address)
        named = f"RAY_ADDRESS={address}"
    path = write_shotlist(SHOTS)
    result = CliRunner().invoke(app, ["render", str(path), "--out", str(tmp_path / "o"), "--device", "cpu", *argv])
    assert ray_init_calls == []
    assert result.exit_code == 4, result.output
    assert result.output.strip() == (
        f"idcli: error: {named}: an http:// address is the Ray dashboard's, which `ray job submit` takes, not a "
        "cluster's head a render joins; give the head's address, HOST:6379 by default (`ray start --head` prints "
        f"it){' with --ray-address, which wins over RAY_ADDRESS' if given == 'environment' else ''}"), result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("given", "address", "where"), [
    ("option", " 127.0.0.1:6379", "begins"), ("environment", "127.0.0.1:6379 ", "ends"),
    ("option", "\t127.0.0.1:6379\n", "begins and ends"), ("python", " 127.0.0.1:6379 ", "begins and ends"),
])
def test_an_address_with_surrounding_whitespace_is_refused_naming_it(
        write_shotlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ray_init_calls: list[dict],
        given: str, address: str, where: str) -> None:
    """An address copied with a space (``--ray-address " 127.0.0.1:6379"``) was looked up as a host name with the
    space in it: "cannot reach the Ray cluster at  127.0.0.1:6379 (Name or service not known)", the space unseen.
    Now one line that shows the address quoted, says where the whitespace is and what to give; Ray is not reached."""
    import idcli

    path = write_shotlist(SHOTS)
    kind = "a space" if address.strip(" ") == address.strip() else "whitespace"
    if given == "python":
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
        with pytest.raises(idcli.InputError) as caught:
            idcli.render(idcli.load_shotlist(path), tmp_path / "o", device="cpu", executor="ray",
                         ray_address=address)
        assert str(caught.value) == (f"ray_address={address!r}: the address {where} with {kind} (copied with it?); "
                                     "give it without: ray_address='127.0.0.1:6379'")
        assert caught.value.field == "ray_address"
    else:
        argv = ["--executor", "ray"]
        if given == "option":
            monkeypatch.delenv("RAY_ADDRESS", raising=False)
            argv += ["--ray-address", address]
            named, fix = f"--ray-address {address!r}", "--ray-address 127.0.0.1:6379"
        else:
            monkeypatch.setenv("RAY_ADDRESS", address)
            named, fix = f"RAY_ADDRESS={address!r}", "RAY_ADDRESS=127.0.0.1:6379"
        result = CliRunner().invoke(app, ["render", str(path), "--out", str(tmp_path / "o"), "--device", "cpu", *argv])
        assert result.exit_code == 2, result.output
        assert result.output.strip() == (f"idcli: error: {named}: the address {where} with {kind} (copied with it?); "
                                         f"give it without: {fix}"), result.output
    assert ray_init_calls == []
    assert not (tmp_path / "o").exists()


def test_an_address_of_whitespace_only_is_refused(ray_init_calls: list[dict]) -> None:

    import idcli
    from idcli.executors.ray import RayBackend

    with pytest.raises(idcli.InputError, match=r"^ray_address=' ': the address is only whitespace; give a cluster "
                                               r"address such as 'head-node:6379'$"):
        RayBackend(" ").connect()
    assert ray_init_calls == []


ALLOWED_ADDRESSES = ("give the head's HOST:PORT (6379 by default), auto, or ray://HOST:PORT to connect through Ray "
                     "Client (the head's Ray Client server, port 10001 by default)")


@pytest.mark.parametrize(("address", "code", "said"), [
    # Nothing listens: Ray Client retried for 30 s, printed its UserWarning, then "ray client connection timeout".
    ("ray://127.0.0.1:1", 4, "cannot reach the Ray cluster at ray://127.0.0.1:1 (Connection refused); is `ray start "
                             "--head` running there, and is the address right?"),
    # No port: gRPC took 443 and timed out after 30 s, the head's Ray Client port (10001) unsaid.
    ("ray://127.0.0.1", 2, "--ray-address ray://127.0.0.1: a ray:// address needs the port of the head's Ray Client "
                           "server: give ray://HOST:PORT (10001 by default)"),
    # A kind Ray does not take: "Module: foo does not exist.", the kinds it does take unsaid.
    ("foo://127.0.0.1:10001", 2, f"--ray-address foo://127.0.0.1:10001: Ray takes no foo:// address; "
                                 f"{ALLOWED_ADDRESSES}"),
])
def test_a_ray_client_address_or_an_unknown_kind_is_checked_before_ray(
        write_shotlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ray_init_calls: list[dict],
        address: str, code: int, said: str) -> None:
    """The farm trial: ``--ray-address ray://HOST:PORT`` (Ray Client) skipped idcli's address check, so a wrong one
    took Ray Client's 30 s and its `UserWarning` lines before "ray client connection timeout" (Ray 2.60, grpcio
    1.85 installed for the trial), and an unknown kind read "Module: foo does not exist.". Now one line at once,
    naming what is allowed; ``ray.init`` is replaced by a recorder: it must not be reached."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    path = write_shotlist(SHOTS)
    result = CliRunner().invoke(app, ["render", str(path), "--out", str(tmp_path / "o"), "--device", "cpu",
                                      "--executor", "ray", "--ray-address", address])
    assert ray_init_calls == []
    assert result.exit_code == code, result.output
    assert result.output.strip() == f"idcli: error: {said}", result.output
    assert not (tmp_path / "o").exists()


def test_a_ray_client_address_whose_port_answers_but_not_as_grpc_names_the_client_port(
        monkeypatch: pytest.MonkeyPatch, ray_init_calls: list[dict]) -> None:
    from idcli.errors import ExecutorUnavailableError
    from idcli.executors import ray as ray_executor
    from idcli.executors import ray_head

    monkeypatch.setattr(ray_head, "HEAD_ANSWER_SECONDS", 0.5)
    monkeypatch.delenv("RAY_USE_TLS", raising=False)
    listener, address = _listener_answering(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    with listener, pytest.raises(ExecutorUnavailableError) as err:
        ray_executor.RayBackend(address=f"ray://{address}").connect()
    assert str(err.value) == (f"cannot connect to the Ray cluster at ray://{address}: its port answers, but not as a "
                              "Ray Client server does (it answers HTTP/1, as a web server such as the Ray dashboard "
                              "(port 8265 by default) does); a ray:// address names the head's Ray Client server, "
                              "port 10001 by default")
    assert ray_init_calls == []


@pytest.mark.parametrize("installed", [False, True])
def test_a_ray_client_address_that_answers_says_what_ray_client_needs(
        monkeypatch: pytest.MonkeyPatch, ray_init_calls: list[dict], installed: bool) -> None:
    """Ray Client needs grpcio (``ray[client]``), which Ray alone does not install: said as the remedy,
    with the way without it. Installed, a port that answers gRPC but never connects as Ray Client (the head's GCS
    port, 6379, given as ray://) timed out after 30 s as "ray client connection timeout": the error says which
    port a ray:// address names."""
    import importlib.util

    from idcli.errors import ExecutorUnavailableError
    from idcli.executors import ray as ray_executor

    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:  # grpcio, which Ray Client needs: installed or not
        return (object() if installed else None) if name == "grpc" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.delenv("RAY_USE_TLS", raising=False)
    if installed:
        import ray

        def timed_out(**kwargs: object) -> None:
            ray_init_calls.append(kwargs)
            raise ConnectionError("ray client connection timeout")  # Ray 2.60's, after 30 s

        monkeypatch.setattr(ray, "init", timed_out)
    listener, address = _listener_answering(SETTINGS_FRAME)
    with listener, pytest.raises(ExecutorUnavailableError) as err:
        ray_executor.RayBackend(address=f"ray://{address}").connect()
    assert err.value.exit_code == 4
    if installed:
        assert [call["address"] for call in ray_init_calls] == [f"ray://{address}"]
        assert str(err.value) == (f"cannot connect to the Ray cluster at ray://{address}: ray client connection "
                                  "timeout; its port answers, but Ray Client did not connect: a ray:// address names "
                                  "the head's Ray Client server, port 10001 by default (the head's own port, 6379 by "
                                  "default, is given without ray://)")
    else:
        assert ray_init_calls == []
        assert str(err.value) == (f"cannot connect to the Ray cluster at ray://{address}: a ray:// address connects "
                                  "through Ray Client, which needs grpcio here: pip install 'ray[client]'; or run "
                                  "idcli on a node of the cluster with the head's HOST:PORT (6379 by default)")


def test_the_ray_client_port_given_as_a_heads_address_is_named() -> None:
    """The farm trial: ``--ray-address HEAD:10001`` (Ray Client's port, without ray://) answers gRPC as a head does,
    so it passed the check; Ray 2.60 retried it for 25 s ("Method not found") and the error then pointed at token
    authentication. The port Ray Client listens on by default is named, with both ways to give the cluster."""
    from idcli.executors.ray import refused_hint

    hint = refused_hint("127.0.0.1:10001", ConnectionError("Failed to connect to Ray cluster at 192.0.2.2:10001"))
    assert hint == ("; its port answers, but 10001 is the head's Ray Client server by default: give the head's own "
                    "address (port 6379 by default), or ray://127.0.0.1:10001 to connect through Ray Client")


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_an_ipv6_address_in_brackets_is_checked_as_ray_reads_it(
        monkeypatch: pytest.MonkeyPatch, ray_init_calls: list[dict], scheme: str) -> None:
    """Ray writes and reads an IPv6 address in brackets (``[::1]:6379``, ``ray://[::1]:10001``: Ray 2.60's
    network_utils.parse_address). The check before Ray looked the host up with its brackets, "Name or service not
    known", so a head that answered on IPv6 was refused as unreachable and Ray never asked."""
    import importlib.util

    from idcli.errors import ExecutorUnavailableError
    from idcli.executors import ray as ray_executor

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",  # Ray Client's grpcio, installed
                        lambda name, *args: object() if name == "grpc" else real_find_spec(name, *args))
    monkeypatch.delenv("RAY_USE_TLS", raising=False)
    listener, address = _listener_answering(SETTINGS_FRAME, host="::1")
    with listener, pytest.raises(ExecutorUnavailableError):  # ray.init's recorder refuses, once reached
        ray_executor.RayBackend(address=f"{scheme}{address}").connect()
    assert [call["address"] for call in ray_init_calls] == [f"{scheme}{address}"]


def test_an_ipv6_address_where_nothing_listens_is_named_as_given(monkeypatch: pytest.MonkeyPatch,
                                                                 ray_init_calls: list[dict]) -> None:
    from idcli.errors import ExecutorUnavailableError
    from idcli.executors import ray as ray_executor

    with pytest.raises(ExecutorUnavailableError, match=r"^cannot reach the Ray cluster at ray://\[::1\]:1 \(Connection "
                                                       r"refused\)"):
        ray_executor.RayBackend(address="ray://[::1]:1").connect()
    assert ray_init_calls == []


@pytest.mark.parametrize(("address", "problem"), [
    ("127.0.0.1", "the address has no port"),  # Ray: "Invalid address format: 127.0.0.1", exit 4
    ("127.0.0.1:", "the address has no port"),  # "Unable to parse port number from  (full address = 192.0.2.2:)"
    ("[::1]", "the address has no port"),
    (":6379", "the address has no host"),  # "Malformed host:", and a stray "ValueError: Malformed host:" line
    ("127.0.0.1:70000", "'70000' is not a port (1 to 65535)"),  # "cannot reach … (Connection refused)"
    ("127.0.0.1:0", "'0' is not a port (1 to 65535)"),
])
def test_a_heads_address_without_a_port_or_a_host_is_exit_2_naming_the_forms(
        write_shotlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ray_init_calls: list[dict],
        address: str, problem: str) -> None:
    """The farm trial of 2026-12-02: a head's address without its port (`--ray-address head`, as a host name is often
    written), with no host, or with a port no TCP port has, was exit 4 ("the Ray cluster cannot be reached") with Ray's
    own words, or idcli's "Connection refused" for port 70000. It is a mistyped option: exit 2 at once, the forms
    named, Ray not asked."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    path = write_shotlist(SHOTS)
    result = CliRunner().invoke(app, ["render", str(path), "--out", str(tmp_path / "o"), "--device", "cpu",
                                      "--executor", "ray", "--ray-address", address])
    assert ray_init_calls == []
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"idcli: error: --ray-address {address}: {problem}; {ALLOWED_ADDRESSES}", (
        result.output)
    assert not (tmp_path / "o").exists()


def test_local_is_no_head_address_to_check(monkeypatch: pytest.MonkeyPatch, ray_init_calls: list[dict]) -> None:
    """``local`` (``RAY_ADDRESS=local``, what Ray's own tests and a cluster of this machine's use) has no port and is
    Ray's to start: the form check leaves it, as it leaves ``auto``."""
    from idcli.errors import ExecutorUnavailableError
    from idcli.executors import ray as ray_executor

    monkeypatch.setenv("RAY_ADDRESS", "local")
    with pytest.raises(ExecutorUnavailableError):  # the recorder's ConnectionError: ray.init was reached
        ray_executor.RayBackend().connect()
    assert [call["address"] for call in ray_init_calls] == ["local"]


def _render_on_ray(tmp_path: Path, shots: Path) -> Any:
    return CliRunner().invoke(app, ["render", str(shots), "--out", str(tmp_path / "o"), "--device", "cpu",
                                    "--executor", "ray"])


def test_ray_not_installed_says_how_to_install_the_extra(write_shotlist, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The farm trial of 2026-12-02: the line said `pip install -e ".[ray]"`, which works only in a source checkout
    (every other extra's line says `pip install 'idcli[…]'`)."""
    monkeypatch.setitem(sys.modules, "ray", None)  # what Python does for a package that is not installed
    result = _render_on_ray(tmp_path, write_shotlist(SHOTS))
    assert result.exit_code == 4, result.output
    assert result.output.strip() == ("idcli: error: --executor ray needs Ray, which is not installed here: pip "
                                     "install 'idcli[ray]' (from a source checkout: pip install -e '.[ray]'; Ray 2.60 "
                                     "or later)")
    assert not (tmp_path / "o").exists()


def test_ray_installed_but_not_importing_says_what_failed(write_shotlist, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ray that is installed but does not import (one of its dependencies missing or of another version) read
    "needs Ray: pip install …", which changes nothing and hides the cause."""
    broken = tmp_path / "site" / "ray"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text('raise ImportError("cannot import name \'BaseModel\' from \'pydantic\'")\n')
    monkeypatch.delitem(sys.modules, "ray", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    result = _render_on_ray(tmp_path, write_shotlist(SHOTS))
    assert result.exit_code == 4, result.output
    assert result.output.strip() == ("idcli: error: --executor ray needs Ray, which is installed but does not import "
                                     "here (ImportError: cannot import name 'BaseModel' from 'pydantic'); reinstall "
                                     "it: pip install --force-reinstall 'ray>=2.60'")
    assert not (tmp_path / "o").exists()


def _http2_server(status_field: int | bytes) -> tuple[Any, str]:
    """A port that speaks HTTP/2 as any HTTP/2 server does: its SETTINGS frame at once, then, to the request that
    follows, a HEADERS frame on stream 1 whose first field is ``status_field`` (an HPACK indexed ``:status``: 0x88 is
    200, what a gRPC server answers; 0x8D is 404; or the field's bytes, for a status HPACK has no index for), kept open
    until the test closes it."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[Any] = []

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = listener.accept()
                held.append(connection)
                connection.sendall(SETTINGS_FRAME)
                connection.settimeout(0.3)
                with contextlib.suppress(TimeoutError):
                    while connection.recv(4096):  # the preface, the SETTINGS ACK, the call's HEADERS and DATA
                        pass
                field = bytes([status_field]) if isinstance(status_field, int) else status_field
                connection.sendall(bytes([0, 0, len(field), 1, 0x4 | 0x1, 0, 0, 0, 1]) + field)

    threading.Thread(target=serve, daemon=True).start()
    return listener, f"127.0.0.1:{listener.getsockname()[1]}"


def test_an_http2_server_that_is_not_grpc_is_exit_4_at_once(monkeypatch: pytest.MonkeyPatch,
                                                             ray_init_calls: list[dict]) -> None:
    """The farm trial of 2026-12-02: where the network answered any address with HTTP/2 (a proxy: in the sandbox
    10.255.255.1:6379), the head check passed on its SETTINGS frame, Ray retried for 21.6 s printing 20 "Failed to
    get cluster ID from GCS server: … status: 404" lines, and the error then pointed at token authentication. A
    gRPC call's HTTP status tells a gRPC server (200) from another HTTP/2 server: exit 4 at once, Ray not asked."""
    from idcli.errors import ExecutorUnavailableError
    from idcli.executors import ray as ray_executor

    monkeypatch.delenv("RAY_USE_TLS", raising=False)
    listener, address = _http2_server(0x8D)
    with listener, pytest.raises(ExecutorUnavailableError) as err:
        ray_executor.RayBackend(address=address).connect()
    assert str(err.value) == (f"cannot connect to the Ray cluster at {address}: its port answers HTTP/2, but not "
                              "gRPC as a Ray cluster's head does (a gRPC call was answered with HTTP status 404: "
                              "another web server or a proxy); `ray start --head` prints the address to give (port "
                              "6379 by default)")
    assert ray_init_calls == []
    # A gRPC server's answer (HTTP 200, whatever the method) passes: Ray is asked.
    listener, address = _http2_server(0x88)
    with listener, pytest.raises(ExecutorUnavailableError):
        ray_executor.RayBackend(address=address).connect()
    assert [call["address"] for call in ray_init_calls] == [address]


@pytest.mark.parametrize("answer", ["UNIMPLEMENTED", "UNAUTHENTICATED"])
def test_a_grpc_servers_own_error_status_passes_the_head_check(monkeypatch: pytest.MonkeyPatch,
                                                                ray_init_calls: list[dict], answer: str) -> None:
    """grpcio reports a 404 from another HTTP/2 server as UNIMPLEMENTED, the status a gRPC server lacking the method
    sends too (a head's Ray Client server: "Method not found!"), and a head with token authentication answers
    UNAUTHENTICATED: a real gRPC server (grpcio's own, in this process) answering either passes, Ray is asked."""
    from concurrent import futures

    import grpc

    from idcli.errors import ExecutorUnavailableError
    from idcli.executors import ray as ray_executor

    class Refusing(grpc.GenericRpcHandler):  # every call refused with a token-authentication error
        def service(self, handler_call_details: Any) -> Any:
            return grpc.unary_unary_rpc_method_handler(
                lambda request, context: context.abort(grpc.StatusCode.UNAUTHENTICATED, "Invalid token"))

    monkeypatch.delenv("RAY_USE_TLS", raising=False)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1),
                         handlers=[Refusing()] if answer == "UNAUTHENTICATED" else None)
    address = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    server.start()
    try:
        with pytest.raises(ExecutorUnavailableError):  # ray.init's recorder refuses, once reached
            ray_executor.RayBackend(address=address).connect()
    finally:
        server.stop(None)
    assert [call["address"] for call in ray_init_calls] == [address]

def test_a_proxy_answering_a_status_hpack_has_no_index_for_is_exit_4_at_once(
        monkeypatch: pytest.MonkeyPatch, ray_init_calls: list[dict]) -> None:
    """A proxy with no backend answers 503 (Envoy's "no healthy upstream"), a status HPACK's static table has no entry
    for, so the server writes it as a literal field. The hand-made probe read only the indexed ``:status`` fields
    (200, 204, 206, 304, 400, 404, 500) and left this one to Ray, which retried it for about 20 s; grpcio reads the
    answer whatever its encoding: exit 4 at once, the status named."""
    from idcli.errors import ExecutorUnavailableError
    from idcli.executors import ray as ray_executor

    monkeypatch.delenv("RAY_USE_TLS", raising=False)
    listener, address = _http2_server(bytes([0x08, 3]) + b"503")  # ":status" (static entry 8), literal "503"
    with listener, pytest.raises(ExecutorUnavailableError) as err:
        ray_executor.RayBackend(address=address).connect()
    assert str(err.value) == (f"cannot connect to the Ray cluster at {address}: its port answers HTTP/2, but not "
                              "gRPC as a Ray cluster's head does (a gRPC call was answered with HTTP status 503: "
                              "another web server or a proxy); `ray start --head` prints the address to give (port "
                              "6379 by default)")
    assert ray_init_calls == []


def test_a_ray_client_host_whose_name_does_not_resolve_in_time_is_refused_naming_it(
        monkeypatch: pytest.MonkeyPatch, ray_init_calls: list[dict]) -> None:
    """``--ray-address ray://HOST:PORT`` whose name the system's resolver does not answer for (a name server gone, a
    VPN down): ``socket.create_connection``'s timeout bounds the connect, not the lookup before it, so the address
    check waited as long as the resolver did, then said "Temporary failure in name resolution". Now the lookup is
    given the connect's deadline and the host is named. Here ``getaddrinfo`` blocks for that name (until the test
    ends, or 20 s, then fails as a resolver that gives up does)."""
    import socket
    import threading

    from idcli.errors import ExecutorUnavailableError
    from idcli.executors import ray as ray_executor
    from idcli.executors import ray_head

    released = threading.Event()
    real_getaddrinfo = socket.getaddrinfo

    def slow_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "farm-head.studio.internal":
            released.wait(20)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow_getaddrinfo)
    monkeypatch.setattr(ray_head, "CONNECT_SECONDS", 0.5)
    try:
        with pytest.raises(ExecutorUnavailableError) as err:
            ray_executor.RayBackend(address="ray://farm-head.studio.internal:10001").connect()
    finally:
        released.set()
    assert err.value.exit_code == 4
    assert str(err.value) == ("cannot reach the Ray cluster at ray://farm-head.studio.internal:10001: the name "
                              "farm-head.studio.internal did not resolve in 0.5 s (this machine's name server did not "
                              "answer); check the name, or give the head's IP address")
    assert ray_init_calls == []
