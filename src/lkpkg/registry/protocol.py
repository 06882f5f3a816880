"""What the layers above need of a registry: the `Registry` protocol.

`lkpkg.registry.client.RegistryClient` implements it; the push pipeline and the trust backends
(cosign signatures live in the registry) name only this protocol, so neither imports the other
and tests can hand them an in-memory registry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO, Protocol

from lkpkg.oci.tagged import Manifest, ManifestInfo


class Registry(Protocol):
    """What the push pipeline needs of a registry client (lkpkg.registry.client)."""

    def check_push_access(self, repo: str) -> None: ...

    def blob_exists(self, repo: str, digest: str) -> int | None: ...

    def upload_blob(
        self,
        repo: str,
        digest: str,
        size: int,
        opener: Callable[[], BinaryIO],
        *,
        mount_from: str | None = None,
    ) -> None: ...

    def head_manifest(self, repo: str, ref: str) -> ManifestInfo | None: ...

    def get_manifest(self, repo: str, ref: str) -> Manifest: ...

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str: ...

    def get_blob(self, repo: str, digest: str, sink: BinaryIO) -> int: ...

    def list_tags(self, repo: str, *, page_size: int | None = None) -> list[str]: ...
