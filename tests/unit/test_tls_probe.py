"""The ping's TLS probe (registry/transport `tls_probe`): a plain-http registry on a host that
may use plain http is found without building a verifying TLS context (which loads the system
CA store), and a TLS server is still left to the verifying https request."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Collection, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from lkpkg.auth import tls
from lkpkg.registry import RegistryClient, TransportConfig
from lkpkg.registry.transport import Transport
from tests.fixtures.loopback import LoopbackServer


class CountingTls:
    """lkpkg.auth.tls, counting the verifying contexts asked for."""

    def __init__(self) -> None:
        self.contexts = 0

    def ssl_context_for(
        self, host: str, *, extra_ca: Path | None = None, config_dir: Path | None = None
    ) -> ssl.SSLContext:
        self.contexts += 1
        return tls.ssl_context_for(host, extra_ca=extra_ca, config_dir=config_dir)

    def plain_http_allowed(self, host: str, insecure_registries: Collection[str] = ()) -> bool:
        return tls.plain_http_allowed(host, insecure_registries)


def answer_v2(h: BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Content-Length", "2")
    h.end_headers()
    h.wfile.write(b"{}")


@pytest.fixture
def plain_registry() -> Iterator[str]:
    server = LoopbackServer(answer_v2)
    yield server.host
    server.close()


def test_a_plain_http_registry_is_pinged_without_a_verifying_context(plain_registry):
    policy = CountingTls()
    with RegistryClient(plain_registry, keychain=None, tls=policy) as client:
        assert client.session.ping() == f"http://{plain_registry}"
    assert policy.contexts == 0


def test_the_probe_words_a_plain_peer_as_the_https_request_would(plain_registry):
    found = Transport(tls=tls).tls_probe(plain_registry, time.monotonic())
    assert found is not None
    assert found.tls and found.connected
    assert found.reason.startswith(f"registry {plain_registry} unreachable: TLS handshake failed")


def test_a_silent_peer_costs_the_probe_no_more_than_the_deadline():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    host = f"127.0.0.1:{listener.getsockname()[1]}"
    try:
        config = TransportConfig.with_deadline(0.5)
        found = Transport(tls=tls, config=config).tls_probe(host, time.monotonic())
    finally:
        listener.close()
    assert found is not None and not found.tls
    assert "no connection in" in found.reason


def test_a_tls_server_is_left_to_the_verifying_request(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
            *("-nodes", "-days", "1", "-subj", "/CN=localhost"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    handshakes: list[bool] = []

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with context.wrap_socket(conn, server_side=True):
                handshakes.append(True)
        except (ssl.SSLError, OSError):
            handshakes.append(False)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    host = f"127.0.0.1:{listener.getsockname()[1]}"
    try:
        assert Transport(tls=tls).tls_probe(host, time.monotonic()) is None
        thread.join(10)
    finally:
        listener.close()
    assert handshakes == [True]
