"""How bytes move: httpx clients per origin, TLS per host, timeouts, retries with backoff.

Everything tunable lives in `TransportConfig`; nothing else in the registry package carries a
timeout, a retry count or a size limit of its own. `Transport.send` retries only what is safe to
repeat (the caller says so) and turns every failure to get an HTTP answer into
`RegistryUnreachable`, with a short reason a user can act on.
"""

from __future__ import annotations

import email.utils
import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from lkpkg import __version__
from lkpkg.registry.failures import NoAnswer, is_transient

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

    # How long any step may go without progress: no answer to a request (with its retries and
    # their backoff), or no byte moving while a blob streams. `--timeout` sets it (and the
    # socket timeouts below, through `with_deadline`).
    deadline: float = 60.0
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
    # Hash blobs while uploading them, and stop before the last byte if they do not match.
    # Off by default: the size is still checked here, the registry verifies the `?digest=`
    # of every blob it accepts (distribution-spec; Distribution answers DIGEST_INVALID), and
    # no manifest is pushed before all its blobs were accepted (docs/design.md, "Publishing").
    # The local pass cost 0.15 s of CPU per 256 MiB, on two cores the registry also hashes on.
    hash_uploads: bool = False
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

    @classmethod
    def with_deadline(cls, seconds: float, **kwargs: Any) -> TransportConfig:
        """A config in which nothing waits longer than `seconds` without progress."""
        return cls(
            deadline=seconds,
            connect_timeout=min(seconds, cls.connect_timeout),
            read_timeout=seconds,
            write_timeout=seconds,
            pool_timeout=min(seconds, cls.pool_timeout),
            **kwargs,
        )

    def timeout(self, within: float | None = None) -> httpx.Timeout:
        """httpx's timeouts, each cut to `within` seconds when a step has only that left."""

        def cut(value: float) -> float:
            return value if within is None else max(0.001, min(value, within))

        return httpx.Timeout(
            connect=cut(self.connect_timeout),
            read=cut(self.read_timeout),
            write=cut(self.write_timeout),
            pool=cut(self.pool_timeout),
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
        self._closed = False

    def plain_http_allowed(self, host: str) -> bool:
        return self._tls.plain_http_allowed(host, self._insecure)

    def client_for(self, url: str | httpx.URL) -> httpx.Client:
        """The client for `url`'s origin: each host gets the TLS trust configured for it."""
        scheme, host = origin_of(url)
        with self._lock:
            if self._closed:
                # As httpx says of a closed client: the caller closed it (a run being stopped
                # closes its registries while requests are in flight), no request goes out.
                raise RuntimeError("the registry transport is closed")
            client = self._clients.get((scheme, host))
            if client is None:
                # A plain-http client never verifies anything; False spares httpx loading the
                # system CA store (~50 ms) for a context it would not use.
                verify: ssl.SSLContext | bool = False
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
        body_limit: int | None = None,
    ) -> httpx.Response:
        """Send `request`, retrying when `idempotent` on 429/5xx, resets and timeouts.

        Returns the last response whatever its status (the caller maps statuses to errors);
        raises `RegistryUnreachable` when no response came. With `stream` the body is left
        unread and the caller must close the response; otherwise it is read here, and an
        answer cut short (reset, truncated) is retried like one that never came. A body over
        `body_limit` bytes raises `BodyTooLarge`.
        """
        outcome = self.exchange(
            request, idempotent=idempotent, stream=stream, what=what, body_limit=body_limit
        )
        if isinstance(outcome, NoAnswer):
            raise outcome.error()
        return outcome

    def tls_probe(self, host: str, started: float) -> NoAnswer | None:
        """Whether `host` speaks TLS at all, asked before the first https request to a host
        that may also be spoken to over plain http, because that request's verifying context
        loads the system CA store (17 ms of CPU, a tenth of a re-push) and, against a
        plain-http registry, only to fail its handshake.

        A handshake with a context holding no CA and checking nothing: nothing is sent over
        it and nothing it says is trusted. Returns the answer the https request would have
        given when the peer does not speak TLS (its handshake failed) or does not finish it
        within the ping's deadline, in the same words; None when it is a TLS server or the
        connection failed, and the https request then runs as it always did.
        """
        if self._http is not None:
            return None  # a test's transport: no sockets to probe
        url = httpx.URL(f"https://{host}/v2/")
        left = self.config.deadline - (time.monotonic() - started)
        timeout = max(0.001, min(self.config.connect_timeout, left))
        failure: httpx.TransportError
        try:
            sock = socket.create_connection((url.host, url.port or 443), timeout=timeout)
        except TimeoutError:
            failure = httpx.ConnectTimeout("timed out")
        except OSError:
            return None  # refused, unreachable: the https request meets it and says so
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            try:
                with context.wrap_socket(sock, server_hostname=url.host):
                    return None  # TLS: the verifying https request decides
            except ssl.SSLError as error:
                failure = httpx.ConnectError(str(error))
                failure.__cause__ = error
            except TimeoutError:
                failure = httpx.ConnectTimeout("timed out")
            except OSError:
                return None
            finally:
                sock.close()
        elapsed = time.monotonic() - started
        return NoAnswer.of(failure, "registry", origin_of(url)[1], elapsed, False)

    def exchange(
        self,
        request: httpx.Request,
        *,
        idempotent: bool,
        stream: bool = False,
        what: str = "registry",
        body_limit: int | None = None,
        started: float | None = None,
        attempts: int | None = None,
    ) -> httpx.Response | NoAnswer:
        """`send`, but a request that got no (complete) answer returns what happened.

        `started` (a `time.monotonic()`) shares one deadline between several exchanges that
        make one step; `attempts` overrides the configured number of tries.
        """
        client = self.client_for(request.url)
        if attempts is None:
            attempts = self.config.attempts
        attempts = max(1, attempts) if idempotent else 1
        where = origin_of(request.url)[1]
        # A request whose body is in memory is one step with one deadline across its retries;
        # one that streams a blob is bounded by the socket timeouts (no progress), not by a
        # total, so a large blob on a slow link still goes through.
        bounded = isinstance(request.stream, httpx.ByteStream) and not stream
        start = time.monotonic() if started is None else started
        for attempt in range(attempts):
            last = attempt == attempts - 1
            left = self.config.deadline - (time.monotonic() - start)
            request.extensions["timeout"] = self.config.timeout(left if bounded else None).as_dict()
            answered = False
            try:
                response = client.send(request, stream=True)
                answered = True
                if not stream:
                    response = _read_body(response, body_limit)
            except httpx.TransportError as error:
                failure = NoAnswer.of(error, what, where, time.monotonic() - start, answered)
                delay = self.config.backoff(attempt)
                if (
                    last
                    or self._closed
                    or not is_transient(error)
                    or not self._time_for(start, delay, bounded)
                ):
                    return failure
                log.debug(
                    "%s %s: %s; retrying in %.1fs",
                    request.method,
                    _loggable(request.url),
                    failure.reason,
                    delay,
                )
                self._sleep(delay)
                continue
            log.debug("%s %s -> %d", request.method, _loggable(request.url), response.status_code)
            if response.status_code in RETRY_STATUSES and not last:
                wait = self._retry_delay(response, attempt)
                if wait is not None and self._time_for(start, wait, bounded):
                    response.close()
                    log.debug("retrying in %.1fs", wait)
                    self._sleep(wait)
                    continue
            return response
        raise AssertionError("unreachable: the last attempt always returns or raises")

    def _time_for(self, start: float, wait: float, bounded: bool) -> bool:
        """Whether a step begun at `start` may still wait `wait` seconds and try again."""
        return not bounded or time.monotonic() - start + wait < self.config.deadline

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
        """Close every connection, in use or not: a request in flight (from another thread)
        fails, is not retried, and no request is sent any more."""
        with self._lock:
            self._closed = True
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            client.close()


class BodyTooLarge(Exception):
    """An answer's body is longer than the caller's limit (it was not read past it)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"body over {limit} bytes")
        self.limit = limit


def _read_body(response: httpx.Response, limit: int | None) -> httpx.Response:
    """The response with its body read (`.content`); raises a transport error, or
    `BodyTooLarge` past `limit`. The connection is released either way."""
    if limit is None:
        try:
            response.read()
        finally:
            response.close()
        return response
    buffer = bytearray()
    try:
        for chunk in response.iter_raw():
            buffer += chunk
            if len(buffer) > limit:
                raise BodyTooLarge(limit)
    finally:
        response.close()
    return httpx.Response(
        response.status_code,
        headers=response.headers,
        content=bytes(buffer),
        request=response.request,
        extensions=response.extensions,
    )


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


def _loggable(url: httpx.URL) -> str:
    """The URL without its query: upload locations carry registry state, realms carry nothing
    secret, but nothing is gained by logging either."""
    return str(url.copy_with(query=None))
