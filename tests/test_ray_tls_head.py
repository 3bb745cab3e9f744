"""A Ray head started with ``RAY_USE_TLS=1`` given to a driver without it (the cluster's TLS settings not copied to the
machine that renders): its GCS, a gRPC server with TLS credentials, closes a plain HTTP/2 opening without a word.
The head check said so and pointed at the address (``its port answers, but not as a Ray cluster's head does (it
closed the connection without a word); `ray start --head` prints the address to give``), which was right; what was
missing is TLS on this side. It now says the port speaks TLS and what to set."""

from __future__ import annotations

import datetime
from concurrent import futures
from typing import Any

import pytest

from idcli.errors import ExecutorUnavailableError
from idcli.executors import ray_head

grpc = pytest.importorskip("grpc")
pytest.importorskip("cryptography")


def _tls_credentials() -> Any:
    """A self-signed certificate and its key, as a head's ``RAY_TLS_SERVER_CERT`` and ``RAY_TLS_SERVER_KEY``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ray-head")])
    now = datetime.datetime.now(datetime.timezone.utc)  # noqa: UP017
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                   .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return grpc.ssl_server_credentials([(key_pem, certificate.public_bytes(serialization.Encoding.PEM))])


def test_a_head_that_speaks_tls_to_a_driver_without_it_says_to_set_ray_use_tls(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_USE_TLS", raising=False)
    monkeypatch.setattr(ray_head, "HEAD_ANSWER_SECONDS", 5.0)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))  # a GCS as Ray starts one under RAY_USE_TLS=1
    port = server.add_secure_port("127.0.0.1:0", _tls_credentials())
    server.start()
    try:
        with pytest.raises(ExecutorUnavailableError) as err:
            ray_head.check_head_answers(f"127.0.0.1:{port}")
    finally:
        server.stop(None)
    said = str(err.value)
    assert said.startswith(f"cannot connect to the Ray cluster at 127.0.0.1:{port}: its port answers TLS, as a Ray "
                           "cluster's head started with RAY_USE_TLS=1 does"), said
    assert "set RAY_USE_TLS=1 here too, with RAY_TLS_SERVER_CERT, RAY_TLS_SERVER_KEY and RAY_TLS_CA_CERT" in said
    assert "prints the address to give" not in said  # the address is right
    assert err.value.exit_code == 4


def test_a_port_answering_a_tls_alert_is_named_as_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    """A TLS server of another make (OpenSSL's) answers the plain opening with a TLS alert record rather than closing:
    the same advice, with no second connection needed."""
    import socket
    import threading

    monkeypatch.delenv("RAY_USE_TLS", raising=False)
    monkeypatch.setattr(ray_head, "HEAD_ANSWER_SECONDS", 5.0)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def answer_once() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(64)
            connection.sendall(bytes([21, 3, 3, 0, 2, 2, 70]))  # alert record, TLS 1.2: fatal protocol_version

    threading.Thread(target=answer_once, daemon=True).start()
    with listener, pytest.raises(ExecutorUnavailableError, match="its port answers TLS, as a Ray cluster's head "
                                                                 "started with RAY_USE_TLS=1 does"):
        ray_head.check_head_answers(f"127.0.0.1:{listener.getsockname()[1]}")
