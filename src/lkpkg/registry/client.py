"""`RegistryClient`: the OCI distribution API (distribution-spec v1.1) for one registry.

Blobs and manifests move as streams and are verified against their digests on the way in
and out; a mismatch is always an error (`DigestMismatch`), never a silent retry or a shrug.
The client is a facade over one `Session` (session.py: ping, authorization, redirects,
errors) and the endpoint modules:

    GET  /v2/                                   ping                        session.py
    HEAD /v2/<name>/blobs/<digest>              blob_exists                 blobs.py
    GET  /v2/<name>/blobs/<digest>              get_blob                    blobs.py
    POST /v2/<name>/blobs/uploads/[?mount&from] upload_blob                 blobs.py
    PUT  <location>?digest=<digest>             upload_blob                 blobs.py
    GET  /v2/<name>/manifests/<ref>             get_manifest                manifests.py
    HEAD /v2/<name>/manifests/<ref>             head_manifest               manifests.py
    PUT  /v2/<name>/manifests/<ref>             put_manifest                manifests.py
    GET  /v2/<name>/tags/list[?n=]              list_tags                   tags.py
    POST+DELETE /v2/<name>/blobs/uploads/       check_push_access (Basic)   access.py
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import BinaryIO

import httpx

from lkpkg.oci.tagged import Manifest, ManifestInfo
from lkpkg.registry.access import check_push_access
from lkpkg.registry.blobs import Blobs
from lkpkg.registry.challenge import Keychain
from lkpkg.registry.manifests import MANIFEST_ACCEPT, Manifests
from lkpkg.registry.session import Session
from lkpkg.registry.tags import list_tags, next_link
from lkpkg.registry.transport import TlsPolicy, TransportConfig

__all__ = ["MANIFEST_ACCEPT", "Manifest", "ManifestInfo", "RegistryClient", "next_link"]


class RegistryClient:
    """A client for one registry (`domain` as in `Reference.domain`; Docker Hub's API host
    is substituted). Safe to share between threads; close it (or use `with`) when done.

    `tls` is the TLS trust and plain-http rule (`lkpkg.auth.tls` provides one; it is handed in
    so this package does not depend on `lkpkg.auth`). `insecure` names registries
    (host[:port]) that may be spoken to over plain http, in addition to loopback ones, as
    docker's `insecure-registries`. `extra_ca` and `config_dir` are handed to the TLS policy
    (a CA file for every host; a docker config dir whose `certs.d/<host>/ca.crt` is trusted
    for that host). `http` replaces httpx's socket transport (tests: an in-memory registry).
    """

    def __init__(
        self,
        domain: str,
        *,
        keychain: Keychain | None,
        tls: TlsPolicy,
        insecure: Collection[str] = (),
        config: TransportConfig | None = None,
        extra_ca: Path | None = None,
        config_dir: Path | None = None,
        sleep: Callable[[float], None] = time.sleep,
        http: httpx.BaseTransport | None = None,
    ) -> None:
        self.session = Session(
            domain,
            keychain=keychain,
            tls=tls,
            insecure=insecure,
            config=config,
            extra_ca=extra_ca,
            config_dir=config_dir,
            sleep=sleep,
            http=http,
        )
        self.domain = self.session.domain
        self.host = self.session.host
        self.config = self.session.config
        self.blobs = Blobs(self.session)
        self.manifests = Manifests(self.session)

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    @property
    def base_url(self) -> str:
        """`https://host[:port]` (or `http://` for a loopback/insecure registry), after ping."""
        return self.session.ping()

    @property
    def mounted(self) -> int:
        """Blobs linked by cross-repository mount rather than uploaded, so far."""
        return self.blobs.mounted

    def ping(self) -> str:
        """Find the scheme and the auth challenge with `GET /v2/` (once); return the base URL."""
        return self.session.ping()

    def check_push_access(self, repo: str) -> None:
        """Raise `AuthError` (exit 4) unless our credentials may push to `repo`; at most a
        couple of requests, nothing left behind (see access.py)."""
        check_push_access(self.session, repo)

    def blob_exists(self, repo: str, digest: str) -> int | None:
        """The blob's size if `repo` has it, else None."""
        return self.blobs.exists(repo, digest)

    def get_blob(self, repo: str, digest: str, sink: BinaryIO) -> int:
        """Stream the blob into `sink`; return its size once it verified (see `Blobs.get`)."""
        return self.blobs.get(repo, digest, sink)

    def upload_blob(
        self,
        repo: str,
        digest: str,
        size: int,
        opener: Callable[[], BinaryIO],
        *,
        mount_from: str | None = None,
    ) -> None:
        """Make `repo` hold the blob `digest` of `size` bytes, which `opener()` reads (see
        `Blobs.upload`)."""
        self.blobs.upload(repo, digest, size, opener, mount_from=mount_from)

    def get_manifest(self, repo: str, ref: str) -> Manifest:
        """The manifest or index `ref` (a tag or digest) names, verified."""
        return self.manifests.get(repo, ref)

    def head_manifest(self, repo: str, ref: str) -> ManifestInfo | None:
        """Digest, media type and size of the manifest `ref` names, or None if there is none."""
        return self.manifests.head(repo, ref)

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        """Store `data` as the manifest `ref` (a tag, or its own digest); return its digest."""
        return self.manifests.put(repo, ref, data, media_type)

    def list_tags(self, repo: str, *, page_size: int | None = None) -> list[str]:
        """Every tag of `repo`, following `Link: <...>; rel="next"` pages (RFC 8288)."""
        return list_tags(self.session, repo, page_size=page_size)
