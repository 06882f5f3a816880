"""`RegistryClient`: the OCI distribution API (distribution-spec v1.1) for one registry.

Blobs and manifests move as streams and are verified against their digests on the way in
and out; a mismatch is always an error (`DigestMismatch`), never a silent retry or a shrug.
Authentication, TLS and retries come from `challenge.py` and `transport.py`; this module
speaks the endpoints:

    GET  /v2/                                   ping: scheme and challenge
    HEAD /v2/<name>/blobs/<digest>              blob_exists
    GET  /v2/<name>/blobs/<digest>              get_blob
    POST /v2/<name>/blobs/uploads/[?mount&from] upload_blob (session or cross-repo mount)
    PUT  <location>?digest=<digest>             upload_blob (monolithic, streamed)
    GET  /v2/<name>/manifests/<ref>             get_manifest
    HEAD /v2/<name>/manifests/<ref>             head_manifest
    PUT  /v2/<name>/manifests/<ref>             put_manifest
    GET  /v2/<name>/tags/list[?n=]              list_tags (follows Link: rel="next")
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO, NamedTuple

import httpx

from lkpkg.errors import (
    AuthError,
    DigestMismatch,
    LkpkgError,
    NameUnknown,
    ReferenceError_,
    RegistryError,
    RegistryRefused,
    RegistryUnreachable,
)
from lkpkg.oci import mediatypes
from lkpkg.oci.digest import DigestingWriter, algorithm_of, digest_of, invalid_digest_reason
from lkpkg.reference import DOCKER_HUB, DOCKER_HUB_LEGACY, DOCKER_HUB_REGISTRY, Reference
from lkpkg.reference import is_valid_tag as _is_valid_tag
from lkpkg.registry.challenge import (
    PULL,
    PUSH,
    Authorization,
    Authorizer,
    Keychain,
    Scope,
    merge_scopes,
    parse_www_authenticate,
    repository_scope,
)
from lkpkg.registry.transport import (
    RETRY_STATUSES,
    TlsPolicy,
    Transport,
    TransportConfig,
    default_tls_policy,
    describe_transport_error,
    origin_of,
)

# Every manifest type lkpkg reads. Registries serve a manifest only in a type the client
# accepts: Distribution answers 404 for an OCI manifest to a client that does not list OCI
# types, and may downgrade Docker schema2 to schema1 for one that lists neither.
MANIFEST_ACCEPT = ", ".join(
    (
        mediatypes.OCI_INDEX,
        mediatypes.OCI_MANIFEST,
        mediatypes.DOCKER_MANIFEST_LIST,
        mediatypes.DOCKER_MANIFEST,
    )
)

# Registry error codes (distribution-spec "Error Codes") that mean "not here".
_NOT_FOUND_CODES = frozenset({"NAME_UNKNOWN", "MANIFEST_UNKNOWN", "BLOB_UNKNOWN"})
# Codes with which a registry says the bytes it received do not match the digest sent.
_DIGEST_CODES = frozenset({"DIGEST_INVALID", "SIZE_INVALID"})
# Content types that say nothing about which manifest a body is; the body's own `mediaType`
# decides then.
_GENERIC_TYPES = frozenset({"", "application/json", "text/plain", "application/octet-stream"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class Manifest(NamedTuple):
    """A manifest or index as received: its exact bytes, media type and verified digest."""

    data: bytes
    media_type: str
    digest: str


class ManifestInfo(NamedTuple):
    """What `HEAD` tells about a manifest without its body."""

    digest: str
    media_type: str
    size: int


class _ContentError(Exception):
    """The local content of a blob being pushed does not match its digest or size."""


class RegistryClient:
    """A client for one registry (`domain` as in `Reference.domain`; Docker Hub's API host
    is substituted). Safe to share between threads; close it (or use `with`) when done.

    `insecure` names registries (host[:port]) that may be spoken to over plain http, in
    addition to loopback ones, as docker's `insecure-registries`. `extra_ca` and `config_dir`
    are handed to the TLS policy (a CA file for every host; a docker config dir whose
    `certs.d/<host>/ca.crt` is trusted for that host).
    """

    def __init__(
        self,
        domain: str,
        *,
        keychain: Keychain | None,
        insecure: Collection[str] = (),
        config: TransportConfig | None = None,
        tls: TlsPolicy | None = None,
        extra_ca: Path | None = None,
        config_dir: Path | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.domain = DOCKER_HUB if domain == DOCKER_HUB_LEGACY else domain
        self.host = DOCKER_HUB_REGISTRY if self.domain == DOCKER_HUB else self.domain
        self.config = config or TransportConfig()
        self._sleep = sleep
        self._transport = Transport(
            tls=tls or default_tls_policy(),
            insecure=insecure,
            config=self.config,
            extra_ca=extra_ca,
            config_dir=config_dir,
            sleep=sleep,
        )
        self._auth = Authorizer(
            self.host,
            keychain=keychain,
            send=self._send_token_request,
            plain_http_allowed=self._transport.plain_http_allowed,
            credential_host=self.domain,
        )
        self._base: str | None = None
        self._ping_lock = threading.Lock()
        # digest -> a repository of this registry known to hold it (set by uploads and HEADs).
        self._blob_homes: dict[str, str] = {}
        self.mounted = 0  # blobs linked by cross-repository mount rather than uploaded

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._transport.close()

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
            base = f"https://{self.host}"
            try:
                response = self._ping_at(base)
            except RegistryUnreachable as https_error:
                if not self._transport.plain_http_allowed(self.host):
                    raise
                base = f"http://{self.host}"
                try:
                    response = self._ping_at(base)
                except RegistryUnreachable:
                    raise https_error from None
                if response.status_code not in (200, 401):
                    # Something answered plain http but it is not a registry's API (e.g. a TLS
                    # server saying "client sent an HTTP request to an HTTPS server"): the https
                    # failure is the one that explains the problem.
                    raise https_error from None
            if response.status_code not in (200, 401):
                raise RegistryError(
                    f"{self.host} is not a registry: GET /v2/ answered"
                    f" {response.status_code} {response.reason_phrase}"
                )
            self._auth.adopt(parse_www_authenticate(response.headers.get_list("WWW-Authenticate")))
            self._base = base
            return base

    def _ping_at(self, base: str) -> httpx.Response:
        request = httpx.Request("GET", f"{base}/v2/")
        return self._transport.send(request, idempotent=True)

    # -- blobs --------------------------------------------------------------------------------

    def blob_exists(self, repo: str, digest: str) -> int | None:
        """The blob's size if `repo` has it, else None."""
        path = self._path(repo)
        return self._blob_size(
            path, _checked_digest(digest), (self._pull(path),), self._pulling(path)
        )

    def get_blob(self, repo: str, digest: str, sink: BinaryIO) -> int:
        """Stream the blob into `sink`; return its size once it verified against `digest`.

        On `DigestMismatch` (or any error) `sink` holds unverified bytes: write to a temporary
        file and discard it. A connection that breaks mid-body is retried from the start when
        `sink` is seekable (it is rewound and truncated), else reported.
        """
        path = self._path(repo)
        algorithm = algorithm_of(_checked_digest(digest))
        scopes = (self._pull(path),)
        action = self._pulling(path)
        start = sink.tell() if sink.seekable() else None
        attempts = max(1, self.config.attempts) if start is not None else 1
        for attempt in range(attempts):
            response = self._request(
                "GET", f"/v2/{path}/blobs/{digest}", scopes=scopes, action=action, stream=True
            )
            try:
                if response.status_code != 200:
                    raise self._error_for(response, action, f"{self._name(path)}@{digest}")
                writer = DigestingWriter(sink, algorithm)
                try:
                    for chunk in response.iter_raw(self.config.chunk_size):
                        _write_all(writer, chunk)
                except httpx.TransportError as error:
                    if start is None or attempt == attempts - 1:
                        raise RegistryUnreachable(
                            f"registry {self.host} unreachable: {describe_transport_error(error)}"
                            f" while reading blob {digest}"
                        ) from None
                    sink.seek(start)
                    sink.truncate()
                    self._sleep(self.config.backoff(attempt))
                    continue
            finally:
                response.close()
            if writer.digest != digest:
                raise DigestMismatch(
                    f"blob {self._name(path)}@{digest}: the registry sent {writer.size} bytes"
                    f" that hash to {writer.digest}"
                )
            return writer.size
        raise AssertionError("unreachable: the last attempt returns or raises")

    def upload_blob(
        self,
        repo: str,
        digest: str,
        size: int,
        opener: Callable[[], BinaryIO],
        *,
        mount_from: str | None = None,
    ) -> None:
        """Make `repo` hold the blob `digest` of `size` bytes, which `opener()` reads.

        Nothing is sent if the blob is already there. With `mount_from`, the registry is asked
        to link it from that repository first (no bytes move). Otherwise the bytes are streamed
        in one `PUT` of `chunk_size` reads (memory does not grow with `size`); the stream is
        hashed as it goes and stopped before its last chunk if it does not match `digest`, so
        a registry never stores a wrong blob under that name. `opener` is called once per
        attempt; a broken upload restarts from a new session.
        """
        path = self._path(repo)
        _checked_digest(digest)
        if size < 0:
            raise ValueError(f"blob size must not be negative, got {size}")
        if mount_from is None:
            # A blob this client already put or found in another repository of this registry
            # is mounted from there: no bytes move (packages sharing a base share layers).
            mount_from = self._blob_homes.get(digest)
        source = self._path(mount_from) if mount_from is not None else None
        scopes: tuple[Scope, ...] = (self._push(path),)
        if source is not None and source != path:
            # One token for both repositories: the mount needs pull on the source as well as
            # push on the target (docker token spec; distribution checks both).
            scopes = merge_scopes((*scopes, self._pull(source)))
        action = self._pushing(path)
        if self._blob_size(path, digest, scopes, action) is not None:
            self._blob_homes.setdefault(digest, path)
            return
        location: str | None = None
        if source is not None and source != path:
            response = self._request(
                "POST",
                f"/v2/{path}/blobs/uploads/",
                params={"mount": digest, "from": source},
                headers={"Content-Length": "0"},
                scopes=scopes,
                action=action,
            )
            if response.status_code == 201:
                self._check_reported_digest(response, digest, f"mounted blob {digest}")
                self.mounted += 1
                return
            if response.status_code != 202:
                raise self._error_for(response, action, self._name(path))
            # The registry could not mount (blob not in the source, or no pull access there)
            # and opened an ordinary upload session instead (distribution-spec "Mounting a
            # blob from another repository").
            location = self._location(response)
        self._upload(path, digest, size, opener, scopes, action, location)
        self._blob_homes.setdefault(digest, path)

    def _upload(
        self,
        path: str,
        digest: str,
        size: int,
        opener: Callable[[], BinaryIO],
        scopes: tuple[Scope, ...],
        action: str,
        location: str | None,
    ) -> None:
        attempts = max(1, self.config.attempts)
        renewed_auth = False
        failure: LkpkgError | None = None
        for attempt in range(attempts):
            if attempt:
                self._sleep(self.config.backoff(attempt - 1))
            if location is None:
                location = self._start_upload(path, scopes, action)
            try:
                response = self._put_blob(path, location, digest, size, opener, scopes, action)
            except RegistryUnreachable as error:
                # The connection broke with the body partly sent; the session's state is
                # unknown, so it is dropped and the upload starts over.
                failure = error
                self._cancel_upload(location, scopes)
                location = None
                continue
            status = response.status_code
            if status in (200, 201, 204):
                self._check_reported_digest(response, digest, f"uploaded blob {digest}")
                return
            self._cancel_upload(location, scopes)
            location = None
            if status == 401 and not renewed_auth:
                # A token can expire during a long upload; renew it once and start over.
                renewed_auth = True
                self._auth.invalidate(scopes)
                continue
            if status in RETRY_STATUSES:
                failure = self._error_for(response, action, self._name(path))
                continue
            codes = {code for code, _ in _registry_errors(response)}
            if status == 400 and codes & _DIGEST_CODES:
                raise DigestMismatch(
                    f"push to {self._name(path)}: the registry says the uploaded bytes do not"
                    f" match blob {digest} ({', '.join(sorted(codes & _DIGEST_CODES))})"
                )
            raise self._error_for(response, action, self._name(path))
        assert failure is not None
        raise failure

    def _start_upload(self, path: str, scopes: tuple[Scope, ...], action: str) -> str:
        # A session nobody uses is harmless (registries purge them), so opening one may be
        # retried like an idempotent request.
        response = self._request(
            "POST",
            f"/v2/{path}/blobs/uploads/",
            headers={"Content-Length": "0"},
            scopes=scopes,
            action=action,
        )
        if response.status_code != 202:
            raise self._error_for(response, action, self._name(path))
        return self._location(response)

    def _put_blob(
        self,
        path: str,
        location: str,
        digest: str,
        size: int,
        opener: Callable[[], BinaryIO],
        scopes: tuple[Scope, ...],
        action: str,
    ) -> httpx.Response:
        url = httpx.URL(location).copy_merge_params({"digest": digest})
        body = _BlobBody(opener, size, digest, self.config.chunk_size)
        try:
            return self._request(
                "PUT",
                str(url),
                content=body,
                headers={
                    # Explicit, so httpx sends a plain body instead of chunked encoding, which
                    # some registries and proxies refuse for blob PUTs.
                    "Content-Length": str(size),
                    "Content-Type": "application/octet-stream",
                },
                scopes=scopes,
                action=action,
                idempotent=False,
            )
        except _ContentError as error:
            self._cancel_upload(location, scopes)
            raise DigestMismatch(f"blob {digest} to push to {self._name(path)}: {error}") from None
        finally:
            body.close()

    def _cancel_upload(self, location: str, scopes: tuple[Scope, ...]) -> None:
        """Best effort `DELETE` of an upload session we abandon, so it does not linger."""
        with contextlib.suppress(LkpkgError):
            self._request(
                "DELETE", location, scopes=scopes, action="cancel upload", idempotent=False
            ).close()

    # -- manifests ----------------------------------------------------------------------------

    def get_manifest(self, repo: str, ref: str) -> Manifest:
        """The manifest or index `ref` (a tag or digest) names, verified against the digest
        asked for, or else against the registry's `Docker-Content-Digest`."""
        path = self._path(repo)
        _checked_ref(ref)
        action = self._pulling(path)
        response = self._request(
            "GET",
            f"/v2/{path}/manifests/{ref}",
            headers={"Accept": MANIFEST_ACCEPT},
            scopes=(self._pull(path),),
            action=action,
            stream=True,
        )
        try:
            if response.status_code != 200:
                raise self._error_for(response, action, self._subject(path, ref))
            data = self._read_limited(response, self.config.max_manifest_bytes, path, ref)
        finally:
            response.close()
        digest = self._verify_manifest(path, ref, data, response.headers)
        return Manifest(data, _media_type(response.headers.get("Content-Type"), data), digest)

    def head_manifest(self, repo: str, ref: str) -> ManifestInfo | None:
        """Digest, media type and size of the manifest `ref` names, or None if there is none.

        Falls back to a `GET` when the registry's `HEAD` leaves out the digest or type, which
        the spec allows.
        """
        path = self._path(repo)
        _checked_ref(ref)
        action = self._pulling(path)
        response = self._request(
            "HEAD",
            f"/v2/{path}/manifests/{ref}",
            headers={"Accept": MANIFEST_ACCEPT},
            scopes=(self._pull(path),),
            action=action,
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._error_for(response, action, self._subject(path, ref))
        reported = response.headers.get("Docker-Content-Digest")
        digest = ref if invalid_digest_reason(ref) is None else reported
        content_type = (response.headers.get("Content-Type") or "").partition(";")[0].strip()
        length = response.headers.get("Content-Length")
        if (
            digest is None
            or invalid_digest_reason(digest) is not None
            or content_type in _GENERIC_TYPES
            or length is None
            or not length.isdigit()
        ):
            manifest = self.get_manifest(path, ref)
            return ManifestInfo(manifest.digest, manifest.media_type, len(manifest.data))
        return ManifestInfo(digest, content_type, int(length))

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        """Store `data` as the manifest `ref` (a tag, or its own digest); return its digest.

        Blobs and, for an index, child manifests must already be in `repo` (the registry
        refuses with MANIFEST_BLOB_UNKNOWN otherwise): push them first.
        """
        path = self._path(repo)
        _checked_ref(ref)
        if invalid_digest_reason(ref) is None:
            digest = digest_of(data, algorithm_of(ref))
            if digest != ref:
                raise DigestMismatch(
                    f"manifest to push as {self._subject(path, ref)} hashes to {digest}"
                )
        else:
            digest = digest_of(data)
        action = self._pushing(path)
        response = self._request(
            "PUT",
            f"/v2/{path}/manifests/{ref}",
            content=data,
            headers={"Content-Type": media_type},
            scopes=(self._push(path),),
            action=action,
        )
        if response.status_code not in (200, 201, 202, 204):
            raise self._error_for(response, action, self._subject(path, ref))
        self._check_reported_digest(response, digest, f"manifest {self._subject(path, ref)}", data)
        return digest

    # -- tags ---------------------------------------------------------------------------------

    def list_tags(self, repo: str, *, page_size: int | None = None) -> list[str]:
        """Every tag of `repo`, following `Link: <...>; rel="next"` pages (RFC 8288)."""
        path = self._path(repo)
        size = page_size if page_size is not None else self.config.tag_page_size
        action = f"list tags of {self._name(path)}"
        url: str | None = f"/v2/{path}/tags/list" + (f"?n={size}" if size else "")
        seen: set[str] = set()
        tags: list[str] = []
        while url is not None and url not in seen:
            seen.add(url)
            response = self._request("GET", url, scopes=(self._pull(path),), action=action)
            if response.status_code != 200:
                raise self._error_for(response, action, self._name(path))
            try:
                body = json.loads(response.content)
                page = body.get("tags") or []
            except (ValueError, AttributeError):
                raise RegistryError(f"{action}: the registry did not answer a tag list") from None
            if not isinstance(page, list) or not all(isinstance(t, str) for t in page):
                raise RegistryError(f"{action}: the registry's tag list is not a list of names")
            tags.extend(page)
            link = next_link(response.headers.get_list("Link"))
            url = str(response.url.join(link)) if link is not None else None
        return tags

    # -- requests -----------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        target: str,
        *,
        scopes: tuple[Scope, ...],
        action: str,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        content: bytes | _BlobBody | None = None,
        stream: bool = False,
        idempotent: bool = True,
    ) -> httpx.Response:
        """Send one API request with authorization; follow redirects for GET/HEAD.

        A 401 is answered once more with renewed authorization when that can help and the
        body can be sent again; any other status is returned for the caller to judge.
        """
        base = self.ping()
        url = httpx.URL(target if "://" in target else f"{base}{target}")
        if params:
            url = url.copy_merge_params(dict(params))
        replayable = not isinstance(content, _BlobBody)
        for round_ in range(2):
            response, used = self._send(
                method, url, scopes, action, headers, content, stream, idempotent
            )
            if response.status_code != 401 or round_ == 1 or not replayable:
                return response
            challenges = parse_www_authenticate(response.headers.get_list("WWW-Authenticate"))
            if not self._auth.refused(challenges, scopes, used):
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
        content: bytes | _BlobBody | None,
        stream: bool,
        idempotent: bool,
    ) -> tuple[httpx.Response, Authorization | None]:
        registry_origin = origin_of(self.ping())
        used: Authorization | None = None
        follow = method in ("GET", "HEAD")
        for _hop in range(self.config.max_redirects + 1):
            request_headers = httpx.Headers(headers or {})
            # Credentials and tokens go to the registry's own origin only: not to a blob
            # store a redirect points at, nor to an upload Location on another host.
            if origin_of(url) == registry_origin:
                used = self._auth.authorization(scopes, action)
                if used is not None:
                    request_headers["Authorization"] = used.header
            request = httpx.Request(method, url, headers=request_headers, content=content)
            response = self._transport.send(request, idempotent=idempotent, stream=stream or follow)
            location = response.headers.get("Location")
            if follow and response.status_code in _REDIRECTS and location:
                response.close()
                url = response.url.join(location)
                continue
            if follow and not stream:
                self._read_fully(response)
            return response, used
        raise RegistryError(f"{action}: more than {self.config.max_redirects} redirects")

    def _read_fully(self, response: httpx.Response) -> None:
        try:
            response.read()
        except httpx.TransportError as error:
            raise RegistryUnreachable(
                f"registry {self.host} unreachable: {describe_transport_error(error)}"
            ) from None
        finally:
            response.close()

    def _send_token_request(self, request: httpx.Request) -> httpx.Response:
        return self._transport.send(request, idempotent=True, what="token service")

    # -- answers ------------------------------------------------------------------------------

    def _blob_size(
        self, path: str, digest: str, scopes: tuple[Scope, ...], action: str
    ) -> int | None:
        response = self._request("HEAD", f"/v2/{path}/blobs/{digest}", scopes=scopes, action=action)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._error_for(response, action, f"{self._name(path)}@{digest}")
        length = response.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise RegistryError(
                f"registry {self.host} answered HEAD of blob {digest} without its size"
            )
        return int(length)

    def _verify_manifest(self, path: str, ref: str, data: bytes, headers: httpx.Headers) -> str:
        subject = self._subject(path, ref)
        if invalid_digest_reason(ref) is None:
            actual = digest_of(data, algorithm_of(ref))
            if actual != ref:
                raise DigestMismatch(
                    f"manifest {subject}: the registry sent bytes that hash to {actual}"
                )
            return ref
        reported: str | None = headers.get("Docker-Content-Digest")
        if reported is not None and invalid_digest_reason(reported) is None:
            actual = digest_of(data, algorithm_of(reported))
            if actual != reported:
                raise DigestMismatch(
                    f"manifest {subject}: the registry says {reported} but sent bytes that hash"
                    f" to {actual}"
                )
            return reported
        return digest_of(data)

    def _check_reported_digest(
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

    def _read_limited(self, response: httpx.Response, limit: int, path: str, ref: str) -> bytes:
        buffer = bytearray()
        try:
            for chunk in response.iter_raw(self.config.chunk_size):
                buffer += chunk
                if len(buffer) > limit:
                    raise RegistryRefused(
                        f"manifest {self._subject(path, ref)} is larger than {limit} bytes;"
                        " refusing to read it"
                    )
        except httpx.TransportError as error:
            raise RegistryUnreachable(
                f"registry {self.host} unreachable: {describe_transport_error(error)}"
            ) from None
        return bytes(buffer)

    def _error_for(self, response: httpx.Response, action: str, subject: str) -> LkpkgError:
        """The one-line error for a failed answer, from its JSON `errors` when it has them."""
        errors = _registry_errors(response, self.config.max_error_body)
        status = response.status_code
        codes = {code for code, _ in errors}
        text = "; ".join(
            f"{message} ({code})" if message and code else message or code
            for code, message in errors
        )
        if status == 401:
            reason = "; ".join(m for _, m in errors if m) or "authentication required"
            return AuthError(
                f"{action} refused: {reason}; credentials tried: {self._auth.sources_tried()}"
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

    def _location(self, response: httpx.Response) -> str:
        location = response.headers.get("Location")
        if not location:
            raise RegistryError(
                f"registry {self.host} opened an upload without saying where (no Location)"
            )
        # Relative Locations are allowed (distribution-spec: "the Location header may be an
        # absolute or relative URL").
        return str(response.url.join(location))

    # -- names --------------------------------------------------------------------------------

    def _path(self, repo: str) -> str:
        """The repository path, validated and normalised as a `Reference` would have it."""
        return Reference(self.domain, repo).path

    def _name(self, path: str) -> str:
        return f"{self.domain}/{path}"

    def _subject(self, path: str, ref: str) -> str:
        sep = "@" if ":" in ref else ":"
        return f"{self._name(path)}{sep}{ref}"

    def _pulling(self, path: str) -> str:
        return f"pull from {self._name(path)}"

    def _pushing(self, path: str) -> str:
        return f"push to {self._name(path)}"

    @staticmethod
    def _pull(path: str) -> Scope:
        return repository_scope(path, PULL)

    @staticmethod
    def _push(path: str) -> Scope:
        return repository_scope(path, PULL, PUSH)


class _BlobBody:
    """The body of a blob PUT: read from `opener()` in chunks, hashed and counted on the way.

    The last chunk is held back until the whole content checked out, so a wrong file never
    completes a request (the registry would store the bytes we declared as `digest`).
    """

    def __init__(self, opener: Callable[[], BinaryIO], size: int, digest: str, chunk: int) -> None:
        self._opener = opener
        self._size = size
        self._digest = digest
        self._chunk = chunk
        self._file: BinaryIO | None = None

    def __iter__(self) -> Iterator[bytes]:
        self.close()
        self._file = stream = self._opener()
        hasher = hashlib.new(algorithm_of(self._digest))
        sent = 0
        while sent < self._size:
            chunk = stream.read(min(self._chunk, self._size - sent))
            if not chunk:
                raise _ContentError(f"the content is {sent} bytes, not the {self._size} declared")
            hasher.update(chunk)
            sent += len(chunk)
            if sent == self._size:
                self._check_end(stream, hasher.hexdigest())
            yield chunk
        if self._size == 0:
            self._check_end(stream, hasher.hexdigest())
        self.close()

    def _check_end(self, stream: BinaryIO, hexdigest: str) -> None:
        if stream.read(1):
            raise _ContentError(f"the content is longer than the {self._size} bytes declared")
        actual = f"{algorithm_of(self._digest)}:{hexdigest}"
        if actual != self._digest:
            raise _ContentError(f"the content hashes to {actual}")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _write_all(writer: DigestingWriter, chunk: bytes) -> None:
    view = memoryview(chunk)
    while view:
        written = writer.write(view)
        view = view[written:]


def _checked_digest(digest: str) -> str:
    reason = invalid_digest_reason(digest)
    if reason is not None:
        raise ReferenceError_(f"invalid digest '{digest}': {reason}")
    return digest


def _checked_ref(ref: str) -> str:
    if ":" in ref:
        return _checked_digest(ref)
    if not _is_valid_tag(ref):
        raise ReferenceError_(f"invalid tag '{ref}'")
    return ref


def _media_type(content_type: str | None, data: bytes) -> str:
    declared = (content_type or "").partition(";")[0].strip()
    if declared not in _GENERIC_TYPES:
        return declared
    try:
        body = json.loads(data)
    except ValueError:
        return declared
    found = body.get("mediaType") if isinstance(body, dict) else None
    return found if isinstance(found, str) and found else declared


def _registry_errors(response: httpx.Response, limit: int = 64 * 1024) -> list[tuple[str, str]]:
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


def next_link(values: list[str]) -> str | None:
    """The target of the `rel="next"` link in `Link` header values (RFC 8288 section 3)."""
    for value in values:
        pos = 0
        while True:
            start = value.find("<", pos)
            if start < 0:
                break
            end = value.find(">", start)
            if end < 0:
                break
            target = value[start + 1 : end]
            following = value.find("<", end)
            params = value[end + 1 : following if following >= 0 else len(value)]
            for param in params.split(";"):
                name, _, raw = param.partition("=")
                if name.strip().lower() == "rel":
                    rels = raw.strip().strip(",").strip().strip('"').lower().split()
                    if "next" in rels:
                        return target
            pos = end + 1
    return None
