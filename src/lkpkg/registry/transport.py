"""How bytes move: httpx clients per origin, TLS per host, timeouts, retries with backoff.

Everything tunable lives in `TransportConfig`; nothing else in the registry package carries a
timeout, a retry count or a size limit of its own. `Transport.send` retries only what is safe to
repeat (the caller says so) and turns every failure to get an HTTP answer into
`RegistryUnreachable`, with a short reason a user can act on.
"""

from __future__ import annotations

import email.utils
import errno
import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from lkpkg import __version__
from lkpkg.errors import RegistryUnreachable

log = logging.getLogger("lkpkg.registry")

# Statuses worth another try: the registry or a proxy in front of it is overloaded or
# restarting (RFC 9110 15.6; 429 is RFC 6585). Other 5xx (501, 505) will not change.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

USER_AGENT = f"lkpkg/{__version__}"

MiB = 1 << 20


@dataclass(frozen=True)
class TransportConfig:
    """Every limit of the registry client, in one place.

    The defaults suit a registry across the internet; tests shrink the backoff.
    """

    connect_timeout: float = 15.0
    # Per socket read/write, not per request: a 10 GiB blob is fine as long as bytes flow.
    read_timeout: float = 60.0
    write_timeout: float = 60.0
    pool_timeout: float = 15.0
    # Tries of one idempotent step (1 = no retry), and of one whole blob upload.
    attempts: int = 4
    backoff_initial: float = 0.5
    backoff_max: float = 10.0
    # A registry's Retry-After is honoured up to this; longer waits fail instead.
    retry_after_max: float = 60.0
    # Read and write unit for blob bodies: bounds memory, whatever the blob's size.
    chunk_size: int = MiB
    # Distribution refuses manifests over 4 MiB (and the image-spec suggests the same bound);
    # a larger answer is not a manifest and is not read into memory.
    max_manifest_bytes: int = 4 * MiB
    # Error bodies are read for their JSON `errors`, never more than this.
    max_error_body: int = 64 * 1024
    max_redirects: int = 5
    # Tags asked for per page of `tags/list` (`?n=`); None lets the registry choose.
    tag_page_size: int | None = None
    # HTTP(S)_PROXY / NO_PROXY from the environment, as docker honours them.
    use_env_proxies: bool = True

    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect_timeout,
            read=self.read_timeout,
            write=self.write_timeout,
            pool=self.pool_timeout,
        )

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before try `attempt + 1` (0-based), with full jitter."""
        ceiling = min(self.backoff_max, self.backoff_initial * (2**attempt))
        # Jitter keeps many clients that failed together from retrying together.
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - not cryptographic


class TlsPolicy(Protocol):
    """TLS trust and the plain-http rule, handed in by the caller (`lkpkg.auth.tls` provides
    these as functions; tests hand in stubs)."""

    def ssl_context_for(
        self, host: str, *, extra_ca: Path | None = None, config_dir: Path | None = None
    ) -> ssl.SSLContext: ...

    def plain_http_allowed(self, host: str, insecure_registries: Collection[str] = ()) -> bool: ...


def origin_of(url: str | httpx.URL) -> tuple[str, str]:
    """(scheme, host[:port]) with default ports dropped: what "the same host" means here."""
    parts = urlsplit(str(url))
    netloc = parts.netloc.rpartition("@")[2].lower()
    default = {"https": ":443", "http": ":80"}.get(parts.scheme, "")
    if default and netloc.endswith(default):
        netloc = netloc[: -len(default)]
    return parts.scheme, netloc


class Transport:
    """HTTP/1.1 clients keyed by origin, sharing one config, TLS policy and retry rule."""

    def __init__(
        self,
        *,
        tls: TlsPolicy,
        insecure: Collection[str] = (),
        config: TransportConfig | None = None,
        extra_ca: Path | None = None,
        config_dir: Path | None = None,
        sleep: Callable[[float], None] = time.sleep,
        http: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config or TransportConfig()
        # What moves the bytes: httpx's own (sockets) unless a test hands in another, e.g. an
        # `httpx.MockTransport` serving an in-memory registry.
        self._http = http
        self._tls = tls
        self._insecure = tuple(insecure)
        self._extra_ca = extra_ca
        self._config_dir = config_dir
        self._sleep = sleep
        self._clients: dict[tuple[str, str], httpx.Client] = {}
        self._lock = threading.Lock()

    def plain_http_allowed(self, host: str) -> bool:
        return self._tls.plain_http_allowed(host, self._insecure)

    def client_for(self, url: str | httpx.URL) -> httpx.Client:
        """The client for `url`'s origin: each host gets the TLS trust configured for it."""
        scheme, host = origin_of(url)
        with self._lock:
            client = self._clients.get((scheme, host))
            if client is None:
                verify: ssl.SSLContext | bool = True
                if scheme == "https":
                    verify = self._tls.ssl_context_for(
                        host, extra_ca=self._extra_ca, config_dir=self._config_dir
                    )
                client = httpx.Client(
                    http1=True,
                    http2=False,
                    verify=verify,
                    timeout=self.config.timeout(),
                    follow_redirects=False,
                    transport=self._http,
                    trust_env=self.config.use_env_proxies,
                    headers={
                        "User-Agent": USER_AGENT,
                        # Digests name the bytes as stored; a transparently decoded body
                        # would not match them, so never ask for a content-coding.
                        "Accept-Encoding": "identity",
                    },
                )
                self._clients[(scheme, host)] = client
            return client

    def send(
        self,
        request: httpx.Request,
        *,
        idempotent: bool,
        stream: bool = False,
        what: str = "registry",
    ) -> httpx.Response:
        """Send `request`, retrying when `idempotent` on 429/5xx, resets and timeouts.

        Returns the last response whatever its status (the caller maps statuses to errors);
        raises `RegistryUnreachable` when no response came. With `stream` the body is left
        unread and the caller must close the response.
        """
        client = self.client_for(request.url)
        attempts = max(1, self.config.attempts) if idempotent else 1
        where = origin_of(request.url)[1]
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = client.send(request, stream=True)
            except httpx.TransportError as error:
                retryable = _is_transient(error)
                if last or not retryable:
                    raise RegistryUnreachable(
                        f"{what} {where} unreachable: {describe_transport_error(error)}"
                    ) from None
                delay = self.config.backoff(attempt)
                log.debug(
                    "%s %s: %s; retrying in %.1fs",
                    request.method,
                    _loggable(request.url),
                    describe_transport_error(error),
                    delay,
                )
                self._sleep(delay)
                continue
            log.debug("%s %s -> %d", request.method, _loggable(request.url), response.status_code)
            if response.status_code in RETRY_STATUSES and not last:
                wait = self._retry_delay(response, attempt)
                if wait is not None:
                    response.close()
                    log.debug("retrying in %.1fs", wait)
                    self._sleep(wait)
                    continue
            if not stream:
                try:
                    response.read()
                except httpx.TransportError as error:
                    response.close()
                    raise RegistryUnreachable(
                        f"{what} {where} unreachable: {describe_transport_error(error)}"
                    ) from None
            return response
        raise AssertionError("unreachable: the last attempt always returns or raises")

    def _retry_delay(self, response: httpx.Response, attempt: int) -> float | None:
        """How long to wait before retrying after `response`; None to give up now."""
        header = response.headers.get("Retry-After")
        if header is None:
            return self.config.backoff(attempt)
        wait = parse_retry_after(header)
        if wait is None:
            return self.config.backoff(attempt)
        if wait > self.config.retry_after_max:
            return None
        return wait

    def close(self) -> None:
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            client.close()


def parse_retry_after(value: str) -> float | None:
    """Seconds from a `Retry-After` value: delay-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _is_transient(error: httpx.TransportError) -> bool:
    """Resets, timeouts and a peer closing mid-answer may pass; a refused connection, a DNS
    failure or a TLS handshake failure will not within a retry's backoff."""
    if isinstance(error, httpx.TimeoutException):
        return True
    if isinstance(error, httpx.ConnectError):
        return isinstance(_root_cause(error), ConnectionResetError)
    return isinstance(error, httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError)


def is_tls_failure(error: BaseException) -> bool:
    return isinstance(_root_cause(error), ssl.SSLError)


def _root_cause(error: BaseException) -> BaseException:
    seen: set[int] = set()
    while id(error) not in seen:
        seen.add(id(error))
        nxt = error.__cause__ or error.__context__
        if nxt is None:
            break
        error = nxt
    return error


def describe_transport_error(error: BaseException) -> str:
    """A short reason: "connection refused", "TLS: certificate verify failed: ...", ..."""
    if isinstance(error, RegistryUnreachable):
        return error.message.partition(" unreachable: ")[2] or error.message
    if isinstance(error, httpx.TimeoutException):
        kind = {
            httpx.ConnectTimeout: "connecting",
            httpx.ReadTimeout: "waiting for an answer",
            httpx.WriteTimeout: "sending",
            httpx.PoolTimeout: "waiting for a free connection",
        }.get(type(error), "")
        return f"timed out {kind}".strip()
    cause = _root_cause(error)
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"TLS certificate verify failed: {cause.verify_message}"
    if isinstance(cause, ssl.SSLError):
        return f"TLS handshake failed: {cause.reason or cause}"
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(cause, ConnectionResetError):
        return "connection reset"
    if isinstance(cause, socket.gaierror):
        return f"cannot resolve host ({cause.strerror})"
    if isinstance(cause, OSError) and cause.errno is not None:
        return (cause.strerror or errno.errorcode.get(cause.errno, str(cause.errno))).lower()
    if isinstance(error, httpx.RemoteProtocolError):
        return "the server closed the connection without a complete answer"
    text = str(error) or type(error).__name__
    return " ".join(text.splitlines())


def _loggable(url: httpx.URL) -> str:
    """The URL without its query: upload locations carry registry state, realms carry nothing
    secret, but nothing is gained by logging either."""
    return str(url.copy_with(query=None))
