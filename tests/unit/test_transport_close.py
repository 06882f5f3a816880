"""Closing a registry transport while a request is in flight (a run stopped by Ctrl-C or
SIGTERM closes its registries, pipeline/run.py): the request ends at once, is not retried,
and nothing is sent through the transport afterwards."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import httpx
import pytest

from lkpkg.auth import tls
from lkpkg.errors import RegistryUnreachable
from lkpkg.registry import TransportConfig
from lkpkg.registry.transport import Transport
from tests.fixtures.loopback import LoopbackServer

MiB = 1 << 20


class SlowRegistry:
    """Reads one request's first MiB of body, then stops reading (a registry busy writing):
    the client's send blocks on a full socket buffer. Counts the requests it got."""

    def __init__(self) -> None:
        self.requests = 0
        self.reading = threading.Event()
        self.release = threading.Event()
        self.server = LoopbackServer(self.handle, quiet=True)

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        self.requests += 1
        h.rfile.read(MiB)
        self.reading.set()
        self.release.wait(timeout=60)
        h.close_connection = True


@pytest.fixture
def slow() -> Iterator[SlowRegistry]:
    registry = SlowRegistry()
    yield registry
    registry.release.set()
    registry.server.close()


def test_closing_ends_an_upload_in_flight_without_a_retry(slow: SlowRegistry) -> None:
    transport = Transport(
        tls=tls,
        insecure=[slow.server.host],
        config=TransportConfig(attempts=5, write_timeout=30.0, read_timeout=30.0),
    )
    outcome: list[object] = []

    def upload() -> None:
        url = f"http://{slow.server.host}/v2/x/blobs/uploads/1"
        request = httpx.Request("PUT", url, content=b"\0" * (256 * MiB))
        try:
            outcome.append(transport.send(request, idempotent=True))
        except (RegistryUnreachable, RuntimeError) as error:
            outcome.append(error)

    thread = threading.Thread(target=upload)
    thread.start()
    assert slow.reading.wait(timeout=30)
    transport.close()
    thread.join(timeout=20)  # a guard: the send timeout (30 s) and its retries are longer
    assert not thread.is_alive(), "the upload went on after the transport was closed"
    assert isinstance(outcome[0], RegistryUnreachable | RuntimeError), outcome
    assert slow.requests == 1  # not retried
    with pytest.raises(RuntimeError, match="closed"):
        transport.client_for(f"http://{slow.server.host}/v2/")
