"""`remote-tag FROM TO`: TO names what FROM names, in the registry, as linuxkit's `pkg
remote-tag` does.

Within one repository it is a tag: the manifest's bytes are put under the new tag (same
digest), nothing is pulled. Across repositories — of one registry or of two — linuxkit copies
the image (`crane.Copy`), and so does this: every manifest an index lists (platform images,
attestation manifests), bottom up, every blob before the manifest that names it, then the
top manifest's exact bytes under TO's tag, so every digest stays what it was. Within one
registry a blob is mounted from FROM's repository (no byte moves); when the registry will
not mount it, or across registries, it is read from FROM into a scratch file (verified
against its digest on the way in) and uploaded from there, and the file is removed. A TO
that already names the same digest is left as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from lkpkg.oci.model import Descriptor, ImageIndex, parse_manifest_bytes
from lkpkg.oci.tagged import Manifest
from lkpkg.reference import Reference
from lkpkg.registry.protocol import Registry

# Layers a registry may not serve by contract (Windows base layers): a copy leaves them to
# their own URLs, as crane does, and the manifest still names them.
_NON_DISTRIBUTABLE = ("nondistributable", ".foreign.")


def same_repository(source: Reference, target: Reference) -> bool:
    """Whether `remote_tag` only tags (else it copies, and needs a scratch directory)."""
    return (source.domain, source.path) == (target.domain, target.path)


def remote_tag(
    registries: Callable[[str], Registry],
    source: Reference,
    target: Reference,
    scratch: Path | None,
) -> str:
    """Make `target` (a tag) name what `source` names; return the digest. `scratch` is a
    directory for blobs on their way between repositories (empty again at the end); None
    only when both are one repository."""
    origin = registries(source.domain)
    found = origin.get_manifest(source.path, source.digest or source.tag or "latest")
    assert target.tag is not None
    destination = registries(target.domain)
    current = destination.head_manifest(target.path, target.tag)
    if current is not None and current.digest == found.digest:
        return found.digest
    if not same_repository(source, target):
        if scratch is None:
            raise ValueError("remote_tag across repositories needs a scratch directory")
        copier = _Copier(origin, source.path, destination, target.path, scratch)
        copier.contents(found)
    destination.put_manifest(target.path, target.tag, found.data, found.media_type)
    return found.digest


class _Copier:
    def __init__(
        self, origin: Registry, source: str, destination: Registry, target: str, scratch: Path
    ) -> None:
        self._origin, self._source = origin, source
        self._destination, self._target = destination, target
        self._scratch = scratch
        self._same_registry = origin is destination

    def contents(self, manifest: Manifest) -> None:
        """Everything `manifest` names, in the target repository (not `manifest` itself)."""
        parsed = parse_manifest_bytes(manifest.data)
        if isinstance(parsed, ImageIndex):
            for child in parsed.manifests:
                listed = self._origin.get_manifest(self._source, child.digest)
                self.contents(listed)
                self._destination.put_manifest(
                    self._target, child.digest, listed.data, listed.media_type
                )
            return
        for blob in (parsed.config, *parsed.layers):
            if not any(mark in blob.media_type for mark in _NON_DISTRIBUTABLE):
                self._blob(blob)

    def _blob(self, blob: Descriptor) -> None:
        spooled = self._scratch / blob.digest.replace(":", "-")

        def opener() -> BinaryIO:
            # Called only when the bytes must move (no mount): read once, verified by get_blob.
            if not spooled.exists():
                partial = spooled.with_suffix(".part")
                with partial.open("wb") as sink:
                    self._origin.get_blob(self._source, blob.digest, sink)
                partial.rename(spooled)
            return spooled.open("rb")

        try:
            self._destination.upload_blob(
                self._target,
                blob.digest,
                blob.size,
                opener,
                mount_from=self._source if self._same_registry else None,
            )
        finally:
            spooled.unlink(missing_ok=True)
            spooled.with_suffix(".part").unlink(missing_ok=True)
