"""`Session`: one registry's requests — ping, authorization, redirects, and one-line errors.

The blob, manifest and tag modules speak the endpoints through a `Session`; it owns what they
share: the base URL found by `GET /v2/`, the `Authorizer` (challenge.py), the `Transport`
(transport.py), the rule that credentials go only to the registry's own origin, and the
mapping of an answer to an error of `lkpkg.errors`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path

import httpx

from lkpkg.errors import (
    AuthError,
    DigestMismatch,
    LkpkgError,
    NameUnknown,
    ReferenceError_,
    RegistryError,
    RegistryRefused,
)
from lkpkg.oci.digest import algorithm_of, digest_of, invalid_digest_reason
from lkpkg.reference import DOCKER_HUB, DOCKER_HUB_LEGACY, DOCKER_HUB_REGISTRY, Reference
from lkpkg.reference import is_valid_tag as _is_valid_tag
from lkpkg.registry.authorizer import Authorization, Authorizer
from lkpkg.registry.challenge import (
    PULL,
    PUSH,
    Keychain,
    Scope,
    parse_www_authenticate,
    repository_scope,
)
from lkpkg.registry.failures import NoAnswer
from lkpkg.registry.transport import (
    TlsPolicy,
    Transport,
    TransportConfig,
    origin_of,
)

# Registry error codes (distribution-spec "Error Codes") that mean "not here".
_NOT_FOUND_CODES = frozenset({"NAME_UNKNOWN", "MANIFEST_UNKNOWN", "BLOB_UNKNOWN"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class Session:
    """Requests to one registry, authorized and mapped to errors; shared by the blob, manifest
    and tag operations of a `RegistryClient` (see client.py for the arguments). Thread-safe."""

    def __init__(
        self,
        domain: str,
        *,
        keychain: Keychain | None,
        insecure: Collection[str] = (),
        config: TransportConfig | None = None,
        tls: TlsPolicy,
        extra_ca: Path | None = None,
        config_dir: Path | None = None,
        sleep: Callable[[float], None] = time.sleep,
        http: httpx.BaseTransport | None = None,
    ) -> None:
        self.domain = DOCKER_HUB if domain == DOCKER_HUB_LEGACY else domain
        self.host = DOCKER_HUB_REGISTRY if self.domain == DOCKER_HUB else self.domain
        self.config = config or TransportConfig()
        self.sleep = sleep
        self.transport = Transport(
            tls=tls,
            insecure=insecure,
            config=self.config,
            extra_ca=extra_ca,
            config_dir=config_dir,
            sleep=sleep,
            http=http,
        )
        self.auth = Authorizer(
            self.host,
            keychain=keychain,
            send=self._send_token_request,
            plain_http_allowed=self.transport.plain_http_allowed,
            credential_host=self.domain,
        )
        self._base: str | None = None
        self._ping_lock = threading.Lock()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    @property
    def base_url(self) -> str:
        """`https://host[:port]` (or `http://` for a loopback/insecure registry), after ping."""
        return self.ping()

    # -- ping ---------------------------------------------------------------------------------

    def ping(self) -> str:
        """Find the scheme and the auth challenge with `GET /v2/` (once); return the base URL.

        https first, always. Plain http is tried only when the TLS policy allows it for this
        host (loopback, or named insecure) and https failed to connect or handshake, which is
        docker's rule for insecure registries.
        """
        with self._ping_lock:
            if self._base is not None:
                return self._base
            # One deadline for the whole ping. Where plain http is an option, https gets one
            # try, so that a server that never answers the handshake leaves time for http.
            started = time.monotonic()
            plain_allowed = self.transport.plain_http_allowed(self.host)
            base = f"https://{self.host}"
            # A peer that does not speak TLS is told apart without the CA store (tls_probe):
            # the https try would fail its handshake all the same.
            probed = self.transport.tls_probe(self.host, started) if plain_allowed else None
            outcome = probed or self._ping_at(base, started, 1 if plain_allowed else None)
            if isinstance(outcome, NoAnswer):
                if not plain_allowed:
                    raise outcome.error()
                https_failure = outcome
                base = f"http://{self.host}"
                outcome = self._ping_at(base, started, None)
                if isinstance(outcome, NoAnswer):
                    # A plain-http server that took the connection and then failed (reset, cut
                    # short, silent) is the one to report; TLS words only describe a TLS
                    # connection. If nothing took it, the https failure says more.
                    raise (outcome if outcome.connected else https_failure).error()
                if outcome.status_code not in (200, 401):
                    # Something answered plain http but it is not a registry's API (e.g. a TLS
                    # server saying "client sent an HTTP request to an HTTPS server"): the https
                    # failure is the one that explains the problem.
                    raise https_failure.error()
            response = outcome
            if response.status_code not in (200, 401):
                raise RegistryError(
                    f"{self.host} is not a registry: GET /v2/ answered"
                    f" {response.status_code} {response.reason_phrase}"
                )
            self.auth.adopt(parse_www_authenticate(response.headers.get_list("WWW-Authenticate")))
            self._base = base
            return base

    def _ping_at(
        self, base: str, started: float, attempts: int | None
    ) -> httpx.Response | NoAnswer:
        request = httpx.Request("GET", f"{base}/v2/")
        return self.transport.exchange(request, idempotent=True, started=started, attempts=attempts)

    # -- requests -----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        target: str,
        *,
        scopes: tuple[Scope, ...],
        action: str,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        content: bytes | Iterable[bytes] | None = None,
        stream: bool = False,
        idempotent: bool = True,
        body_limit: int | None = None,
    ) -> httpx.Response:
        """Send one API request with authorization; follow redirects for GET/HEAD.

        Unless `stream`, the body is read (and a cut-short answer retried like a missing one);
        over `body_limit` bytes it raises `transport.BodyTooLarge`. A 401 is answered once
        more with renewed authorization when that can help and the body can be sent again;
        any other status is returned for the caller to judge.
        """
        base = self.ping()
        url = httpx.URL(target if "://" in target else f"{base}{target}")
        if params:
            url = url.copy_merge_params(dict(params))
        # A streamed body (an upload) cannot be sent a second time.
        replayable = content is None or isinstance(content, bytes)
        for round_ in range(2):
            response, used = self._send(
                method, url, scopes, action, headers, content, stream, idempotent, body_limit
            )
            if response.status_code != 401 or round_ == 1 or not replayable:
                return response
            challenges = parse_www_authenticate(response.headers.get_list("WWW-Authenticate"))
            if not self.auth.refused(challenges, scopes, used):
                return response
            response.close()
        raise AssertionError("unreachable: the second round always returns")

    def _send(
        self,
        method: str,
        url: httpx.URL,
        scopes: tuple[Scope, ...],
        action: str,
        headers: Mapping[str, str] | None,
        content: bytes | Iterable[bytes] | None,
        stream: bool,
        idempotent: bool,
        body_limit: int | None,
    ) -> tuple[httpx.Response, Authorization | None]:
        registry_origin = origin_of(self.ping())
        used: Authorization | None = None
        follow = method in ("GET", "HEAD")
        for _hop in range(self.config.max_redirects + 1):
            request_headers = httpx.Headers(headers or {})
            # Credentials and tokens go to the registry's own origin only: not to a blob
            # store a redirect points at, nor to an upload Location on another host.
            if origin_of(url) == registry_origin:
                used = self.auth.authorization(scopes, action)
                if used is not None:
                    request_headers["Authorization"] = used.header
            request = httpx.Request(method, url, headers=request_headers, content=content)
            response = self.transport.send(
                request, idempotent=idempotent, stream=stream, body_limit=body_limit
            )
            location = response.headers.get("Location")
            if follow and response.status_code in _REDIRECTS and location:
                response.close()
                url = response.url.join(location)
                continue
            return response, used
        raise RegistryError(f"{action}: more than {self.config.max_redirects} redirects")

    def _send_token_request(self, request: httpx.Request) -> httpx.Response:
        return self.transport.send(request, idempotent=True, what="token service")

    # -- answers ------------------------------------------------------------------------------

    def check_reported_digest(
        self, response: httpx.Response, digest: str, what: str, data: bytes | None = None
    ) -> None:
        """Compare the registry's `Docker-Content-Digest` with ours, when it sends one."""
        reported = response.headers.get("Docker-Content-Digest")
        if reported is None or invalid_digest_reason(reported) is not None:
            return
        expected = digest
        if data is not None and algorithm_of(reported) != algorithm_of(digest):
            expected = digest_of(data, algorithm_of(reported))
        elif algorithm_of(reported) != algorithm_of(digest):
            return  # another algorithm's name for the same blob; nothing to compare
        if reported != expected:
            raise DigestMismatch(f"{what}: the registry stored it as {reported}")

    def error_for(self, response: httpx.Response, action: str, subject: str) -> LkpkgError:
        """The one-line error for a failed answer, from its JSON `errors` when it has them."""
        errors = registry_errors(response, self.config.max_error_body)
        status = response.status_code
        codes = {code for code, _ in errors}
        text = "; ".join(
            f"{message} ({code})" if message and code else message or code
            for code, message in errors
        )
        if status == 401:
            reason = "; ".join(m for _, m in errors if m) or "authentication required"
            return AuthError(
                f"{action} refused: {reason}; credentials tried: {self.auth.sources_tried()}"
            )
        if status == 404 or codes & _NOT_FOUND_CODES:
            return NameUnknown(f"{subject}: {text or 'not found'} (registry {self.host})")
        if status == 429:
            return RegistryRefused(f"{action} refused: {text or 'too many requests'} (429)")
        if 400 <= status < 500:
            fallback = f"{status} {response.reason_phrase}"
            return RegistryRefused(f"{action} refused: {text or fallback}")
        detail = f": {text}" if text else ""
        return RegistryError(
            f"{action} failed: registry {self.host} answered {status} {response.reason_phrase}"
            f"{detail}"
        )

    def location(self, response: httpx.Response) -> str:
        location = response.headers.get("Location")
        if not location:
            raise RegistryError(
                f"registry {self.host} opened an upload without saying where (no Location)"
            )
        # Relative Locations are allowed (distribution-spec: "the Location header may be an
        # absolute or relative URL").
        return str(response.url.join(location))

    # -- names --------------------------------------------------------------------------------

    def path(self, repo: str) -> str:
        """The repository path, validated and normalised as a `Reference` would have it."""
        return Reference(self.domain, repo).path

    def name(self, path: str) -> str:
        return f"{self.domain}/{path}"

    def subject(self, path: str, ref: str) -> str:
        sep = "@" if ":" in ref else ":"
        return f"{self.name(path)}{sep}{ref}"

    def pulling(self, path: str) -> str:
        return f"pull from {self.name(path)}"

    def pushing(self, path: str) -> str:
        return f"push to {self.name(path)}"

    @staticmethod
    def pull_scope(path: str) -> Scope:
        return repository_scope(path, PULL)

    @staticmethod
    def push_scope(path: str) -> Scope:
        return repository_scope(path, PULL, PUSH)


def checked_digest(digest: str) -> str:
    reason = invalid_digest_reason(digest)
    if reason is not None:
        raise ReferenceError_(f"invalid digest '{digest}': {reason}")
    return digest


def checked_ref(ref: str) -> str:
    if ":" in ref:
        return checked_digest(ref)
    if not _is_valid_tag(ref):
        raise ReferenceError_(f"invalid tag '{ref}'")
    return ref


def registry_errors(response: httpx.Response, limit: int = 64 * 1024) -> list[tuple[str, str]]:
    """(code, message) pairs of the distribution-spec error body, if the answer has one."""
    try:
        if response.is_stream_consumed:
            raw = response.content
        else:
            raw = b""
            for chunk in response.iter_raw():
                raw += chunk
                if len(raw) > limit:
                    break
    except (httpx.HTTPError, httpx.StreamError):
        return []
    try:
        body = json.loads(raw[:limit])
    except ValueError:
        return []
    found = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(found, list):
        return []
    pairs = []
    for item in found:
        if isinstance(item, dict):
            code = item.get("code")
            message = item.get("message")
            pairs.append(
                (
                    code if isinstance(code, str) else "",
                    " ".join(message.split()) if isinstance(message, str) else "",
                )
            )
    return pairs
