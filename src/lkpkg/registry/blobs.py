"""Blobs: existence, streamed and verified download, upload and cross-repository mount.

    HEAD /v2/<name>/blobs/<digest>              Blobs.exists
    GET  /v2/<name>/blobs/<digest>              Blobs.get
    POST /v2/<name>/blobs/uploads/[?mount&from] Blobs.upload (session or cross-repo mount)
    PUT  <location>?digest=<digest>             Blobs.upload (monolithic, streamed)

Every byte is checked against its digest: downloads as they are written, uploads as they are
read (the last chunk is held back until the whole content checked out).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable, Iterator
from typing import BinaryIO

import httpx

from lkpkg.errors import DigestMismatch, LkpkgError, RegistryError, RegistryUnreachable
from lkpkg.oci.digest import DigestingWriter, algorithm_of
from lkpkg.registry.challenge import Scope, merge_scopes
from lkpkg.registry.failures import describe_transport_error
from lkpkg.registry.session import Session, checked_digest, registry_errors
from lkpkg.registry.transport import RETRY_STATUSES

# Codes with which a registry says the bytes it received do not match the digest sent.
_DIGEST_CODES = frozenset({"DIGEST_INVALID", "SIZE_INVALID"})


class _ContentError(Exception):
    """The local content of a blob being pushed does not match its digest or size."""


class Blobs:
    """The blob endpoints of one registry, over a `Session`.

    Remembers, per digest, a repository known to hold the blob (from uploads and HEADs), so a
    blob wanted in another repository is mounted from there instead of uploaded again.
    """

    def __init__(self, session: Session) -> None:
        self._s = session
        # digest -> a repository of this registry known to hold it (set by uploads and HEADs).
        self._homes: dict[str, str] = {}
        # digest -> set when the upload of it under way in this client ends.
        self._pending: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self.mounted = 0  # blobs linked by cross-repository mount rather than uploaded

    def exists(self, repo: str, digest: str) -> int | None:
        """The blob's size if `repo` has it, else None."""
        path = self._s.path(repo)
        return self._blob_size(
            path, checked_digest(digest), (self._s.pull_scope(path),), self._s.pulling(path)
        )

    def get(self, repo: str, digest: str, sink: BinaryIO) -> int:
        """Stream the blob into `sink`; return its size once it verified against `digest`.

        On `DigestMismatch` (or any error) `sink` holds unverified bytes: write to a temporary
        file and discard it. A connection that breaks mid-body is retried from the start when
        `sink` is seekable (it is rewound and truncated), else reported.
        """
        path = self._s.path(repo)
        algorithm = algorithm_of(checked_digest(digest))
        scopes = (self._s.pull_scope(path),)
        action = self._s.pulling(path)
        start = sink.tell() if sink.seekable() else None
        attempts = max(1, self._s.config.attempts) if start is not None else 1
        for attempt in range(attempts):
            response = self._s.request(
                "GET", f"/v2/{path}/blobs/{digest}", scopes=scopes, action=action, stream=True
            )
            try:
                if response.status_code != 200:
                    raise self._s.error_for(response, action, f"{self._s.name(path)}@{digest}")
                writer = DigestingWriter(sink, algorithm)
                try:
                    for chunk in response.iter_raw(self._s.config.chunk_size):
                        _write_all(writer, chunk)
                except httpx.TransportError as error:
                    if start is None or attempt == attempts - 1:
                        raise RegistryUnreachable(
                            f"registry {self._s.host} unreachable:"
                            f" {describe_transport_error(error)} while reading blob {digest}"
                        ) from None
                    sink.seek(start)
                    sink.truncate()
                    self._s.sleep(self._s.config.backoff(attempt))
                    continue
            finally:
                response.close()
            if writer.digest != digest:
                raise DigestMismatch(
                    f"blob {self._s.name(path)}@{digest}: the registry sent {writer.size} bytes"
                    f" that hash to {writer.digest}"
                )
            return writer.size
        raise AssertionError("unreachable: the last attempt returns or raises")

    def upload(
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

        Two threads wanting the same blob (packages sharing a base, pushed in parallel) do not
        both send it: the second waits for the first and then mounts from its repository.
        """
        path = self._s.path(repo)
        checked_digest(digest)
        if size < 0:
            raise ValueError(f"blob size must not be negative, got {size}")
        with self._lock:
            pending = self._pending.get(digest)
            if pending is None:
                self._pending[digest] = threading.Event()
        if pending is not None:
            pending.wait()
            self.upload(repo, digest, size, opener, mount_from=mount_from)
            return
        try:
            self._place(path, digest, size, opener, mount_from)
        finally:
            with self._lock:
                self._pending.pop(digest).set()

    def _place(
        self,
        path: str,
        digest: str,
        size: int,
        opener: Callable[[], BinaryIO],
        mount_from: str | None,
    ) -> None:
        if mount_from is None:
            # A blob this client already put or found in another repository of this registry
            # is mounted from there: no bytes move (packages sharing a base share layers).
            mount_from = self._homes.get(digest)
        source = self._s.path(mount_from) if mount_from is not None else None
        scopes: tuple[Scope, ...] = (self._s.push_scope(path),)
        if source is not None and source != path:
            # One token for both repositories: the mount needs pull on the source as well as
            # push on the target (docker token spec; distribution checks both).
            scopes = merge_scopes((*scopes, self._s.pull_scope(source)))
        action = self._s.pushing(path)
        mounting = source is not None and source != path
        # A mount answers "it is there now" (201) whether or not the repository had the blob,
        # so with a source to mount from the HEAD would only cost a round trip.
        if not mounting and self._blob_size(path, digest, scopes, action) is not None:
            self._homes.setdefault(digest, path)
            return
        location: str | None = None
        if source is not None and source != path:
            response = self._s.request(
                "POST",
                f"/v2/{path}/blobs/uploads/",
                params={"mount": digest, "from": source},
                headers={"Content-Length": "0"},
                scopes=scopes,
                action=action,
            )
            if response.status_code == 201:
                self._s.check_reported_digest(response, digest, f"mounted blob {digest}")
                self.mounted += 1
                return
            if response.status_code != 202:
                raise self._s.error_for(response, action, self._s.name(path))
            # The registry could not mount (blob not in the source, or no pull access there)
            # and opened an ordinary upload session instead (distribution-spec "Mounting a
            # blob from another repository").
            location = self._s.location(response)
        self._upload(path, digest, size, opener, scopes, action, location)
        self._homes.setdefault(digest, path)

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
        attempts = max(1, self._s.config.attempts)
        renewed_auth = False
        failure: LkpkgError | None = None
        for attempt in range(attempts):
            if attempt:
                self._s.sleep(self._s.config.backoff(attempt - 1))
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
                self._s.check_reported_digest(response, digest, f"uploaded blob {digest}")
                return
            self._cancel_upload(location, scopes)
            location = None
            if status == 401 and not renewed_auth:
                # A token can expire during a long upload; renew it once and start over.
                renewed_auth = True
                self._s.auth.invalidate(scopes)
                continue
            if status in RETRY_STATUSES:
                failure = self._s.error_for(response, action, self._s.name(path))
                continue
            codes = {code for code, _ in registry_errors(response)}
            if status == 400 and codes & _DIGEST_CODES:
                raise DigestMismatch(
                    f"push to {self._s.name(path)}: the registry says the uploaded bytes do not"
                    f" match blob {digest} ({', '.join(sorted(codes & _DIGEST_CODES))})"
                )
            raise self._s.error_for(response, action, self._s.name(path))
        assert failure is not None
        raise failure

    def _start_upload(self, path: str, scopes: tuple[Scope, ...], action: str) -> str:
        # A session nobody uses is harmless (registries purge them), so opening one may be
        # retried like an idempotent request.
        response = self._s.request(
            "POST",
            f"/v2/{path}/blobs/uploads/",
            headers={"Content-Length": "0"},
            scopes=scopes,
            action=action,
        )
        if response.status_code != 202:
            raise self._s.error_for(response, action, self._s.name(path))
        return self._s.location(response)

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
        config = self._s.config
        body = _BlobBody(opener, size, digest, config.chunk_size, config.hash_uploads)
        try:
            return self._s.request(
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
            raise DigestMismatch(
                f"blob {digest} to push to {self._s.name(path)}: {error}"
            ) from None
        finally:
            body.close()

    def _cancel_upload(self, location: str, scopes: tuple[Scope, ...]) -> None:
        """Best effort `DELETE` of an upload session we abandon, so it does not linger."""
        with contextlib.suppress(LkpkgError):
            self._s.request(
                "DELETE", location, scopes=scopes, action="cancel upload", idempotent=False
            ).close()

    def _blob_size(
        self, path: str, digest: str, scopes: tuple[Scope, ...], action: str
    ) -> int | None:
        response = self._s.request(
            "HEAD", f"/v2/{path}/blobs/{digest}", scopes=scopes, action=action
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._s.error_for(response, action, f"{self._s.name(path)}@{digest}")
        length = response.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise RegistryError(
                f"registry {self._s.host} answered HEAD of blob {digest} without its size"
            )
        return int(length)


class _BlobBody:
    """The body of a blob PUT: read from `opener()` in chunks, counted (and, with `hash_`,
    hashed) on the way.

    The last chunk is held back until the whole content checked out, so a wrong file never
    completes a request. Without `hash_` only the size is checked here, and the digest is the
    registry's to verify (distribution-spec: it must refuse a blob that does not hash to the
    `?digest=` it is pushed as; `Blobs._upload` then raises `DigestMismatch`).
    """

    def __init__(
        self,
        opener: Callable[[], BinaryIO],
        size: int,
        digest: str,
        chunk: int,
        hash_: bool = True,
    ) -> None:
        self._opener = opener
        self._size = size
        self._digest = digest
        self._chunk = chunk
        self._hash = hash_
        self._file: BinaryIO | None = None

    def __iter__(self) -> Iterator[bytes]:
        self.close()
        self._file = stream = self._opener()
        hasher = hashlib.new(algorithm_of(self._digest)) if self._hash else _NoHash()
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
        if self._hash and actual != self._digest:
            raise _ContentError(f"the content hashes to {actual}")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class _NoHash:
    def update(self, data: bytes) -> None:
        pass

    def hexdigest(self) -> str:
        return ""


def _write_all(writer: DigestingWriter, chunk: bytes) -> None:
    view = memoryview(chunk)
    while view:
        written = writer.write(view)
        view = view[written:]
