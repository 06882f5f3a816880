"""Manifests and indexes: read by tag or digest (verified), HEAD, and write.

GET  /v2/<name>/manifests/<ref>             Manifests.get
HEAD /v2/<name>/manifests/<ref>             Manifests.head
PUT  /v2/<name>/manifests/<ref>             Manifests.put
"""

from __future__ import annotations

import json

import httpx

from lkpkg.errors import DigestMismatch, RegistryRefused
from lkpkg.oci import mediatypes
from lkpkg.oci.digest import algorithm_of, digest_of, invalid_digest_reason
from lkpkg.oci.tagged import Manifest, ManifestInfo
from lkpkg.registry.session import Session, checked_ref, registry_errors
from lkpkg.registry.transport import BodyTooLarge

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

# Content types that say nothing about which manifest a body is; the body's own `mediaType`
# decides then.
_GENERIC_TYPES = frozenset({"", "application/json", "text/plain", "application/octet-stream"})


class Manifests:
    """The manifest endpoints of one registry, over a `Session`."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def get(self, repo: str, ref: str) -> Manifest:
        """The manifest or index `ref` (a tag or digest) names, verified against the digest
        asked for, or else against the registry's `Docker-Content-Digest`."""
        path = self._s.path(repo)
        checked_ref(ref)
        action = self._s.pulling(path)
        limit = self._s.config.max_manifest_bytes
        try:
            response = self._s.request(
                "GET",
                f"/v2/{path}/manifests/{ref}",
                headers={"Accept": MANIFEST_ACCEPT},
                scopes=(self._s.pull_scope(path),),
                action=action,
                body_limit=limit,
            )
        except BodyTooLarge:
            raise RegistryRefused(
                f"manifest {self._s.subject(path, ref)} is larger than {limit} bytes;"
                " refusing to read it"
            ) from None
        if response.status_code != 200:
            raise self._s.error_for(response, action, self._s.subject(path, ref))
        data = response.content
        digest = self._verify_manifest(path, ref, data, response.headers)
        return Manifest(data, _media_type(response.headers.get("Content-Type"), data), digest)

    def head(self, repo: str, ref: str) -> ManifestInfo | None:
        """Digest, media type and size of the manifest `ref` names, or None if there is none.

        Falls back to a `GET` when the registry's `HEAD` leaves out the digest or type, which
        the spec allows.
        """
        path = self._s.path(repo)
        checked_ref(ref)
        action = self._s.pulling(path)
        response = self._s.request(
            "HEAD",
            f"/v2/{path}/manifests/{ref}",
            headers={"Accept": MANIFEST_ACCEPT},
            scopes=(self._s.pull_scope(path),),
            action=action,
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._s.error_for(response, action, self._s.subject(path, ref))
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
            manifest = self.get(path, ref)
            return ManifestInfo(manifest.digest, manifest.media_type, len(manifest.data))
        return ManifestInfo(digest, content_type, int(length))

    def put(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        """Store `data` as the manifest `ref` (a tag, or its own digest); return its digest.

        Blobs and, for an index, child manifests must already be in `repo` (the registry
        refuses with MANIFEST_BLOB_UNKNOWN otherwise): push them first.
        """
        path = self._s.path(repo)
        checked_ref(ref)
        if invalid_digest_reason(ref) is None:
            digest = digest_of(data, algorithm_of(ref))
            if digest != ref:
                raise DigestMismatch(
                    f"manifest to push as {self._s.subject(path, ref)} hashes to {digest}"
                )
        else:
            digest = digest_of(data)
        action = self._s.pushing(path)
        attempts = max(1, self._s.config.attempts)
        for attempt in range(attempts):
            if attempt:
                self._s.sleep(self._s.config.backoff(attempt - 1))
            response = self._s.request(
                "PUT",
                f"/v2/{path}/manifests/{ref}",
                content=data,
                headers={"Content-Type": media_type},
                scopes=(self._s.push_scope(path),),
                action=action,
            )
            if response.status_code != 400 or not _unknown_reference(response):
                break
        if response.status_code not in (200, 201, 202, 204):
            raise self._s.error_for(response, action, self._s.subject(path, ref))
        self._s.check_reported_digest(
            response, digest, f"manifest {self._s.subject(path, ref)}", data
        )
        return digest

    def _verify_manifest(self, path: str, ref: str, data: bytes, headers: httpx.Headers) -> str:
        subject = self._s.subject(path, ref)
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


def _unknown_reference(response: httpx.Response) -> bool:
    """Whether a refused manifest PUT says a blob or child manifest it names is unknown.

    The caller pushed those first (invariant 3), so the registry is contradicting what it
    just accepted: a read racing another client's write of the same blob. Distribution 2.8
    rewrites a repository's link file in place (truncate, then write), so a concurrent push
    of the same layer or manifest makes it read an empty link and refuse with
    DIGEST_INVALID + MANIFEST_BLOB_UNKNOWN (upstream writes through a temporary file and a
    rename since distribution/distribution#4624); a store whose reads lag its writes answers
    the same way. Another try after a backoff settles it; a reference that is really missing
    is still refused, after `attempts` tries.
    """
    return "MANIFEST_BLOB_UNKNOWN" in {code for code, _ in registry_errors(response)}


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
