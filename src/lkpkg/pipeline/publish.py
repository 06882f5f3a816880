"""Publishing images to a registry: an image from the cache, and the multi-arch index.

Ordering (a manifest never names a blob the registry lacks, even if the run dies half way):
layers and config are uploaded first, then the image manifest under its arch tag
`ORG/IMAGE:TAG-ARCH`, and only then the index `ORG/IMAGE:TAG`.

The index is parallel-safe. Registries have no compare-and-swap, so the per-arch tags are
the truth and the index is derived from them: list the repository's tags once, read the arch
tags that exist, write the index they imply, then read both again; if another host pushed an
arch in between, wait a short random moment and write again (the pause is paid only once a
concurrent writer has shown itself). Every writer verifies after its own last write, so
whoever writes last leaves an index that holds every arch tag that existed when it looked —
and any arch pushed after that has a pusher that will look again. Hosts can therefore build
and push their architectures at the same moment; "arches must be built in sequence" is gone.
"""

from __future__ import annotations

import io
import json
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from lkpkg.attest.store import attested_digest, index_entry, is_attestation, registry_tag
from lkpkg.cache.layout import Cache
from lkpkg.cache.platform import cached_image_platform
from lkpkg.errors import InputError, NameUnknown, RegistryError, RegistryUnreachable
from lkpkg.oci import mediatypes
from lkpkg.oci.digest import sha256_digest
from lkpkg.oci.index import platform_index, sorted_images
from lkpkg.oci.model import (
    Descriptor,
    ImageIndex,
    ImageManifest,
    Platform,
    canonical_bytes,
    config_platform,
    parse_manifest_bytes,
)
from lkpkg.platforms import KNOWN_ARCHES

if TYPE_CHECKING:
    # Annotations only: importing lkpkg.registry would load httpx, which `build` never needs.
    from lkpkg.oci.tagged import ManifestInfo
    from lkpkg.registry.protocol import Registry


# How long writers wait before checking that their index still matches the arch tags; random
# so that concurrent writers do not check in lock step.
SETTLE_SECONDS = (0.05, 0.3)
MAX_INDEX_ROUNDS = 50
UPLOAD_WORKERS = 4


def push_image(
    registry: Registry,
    repo: str,
    tag: str,
    cache: Cache,
    manifest: Descriptor,
    *,
    workers: int = UPLOAD_WORKERS,
    on_blob: Callable[[Descriptor, ImageManifest], None] | None = None,
    head_first: bool = True,
) -> bool:
    """Push one image from the cache under `tag`; False when the registry already had it.

    `on_blob(blob, image)` is told of each blob once the registry has it (progress).
    `head_first=False`: the caller has just asked for `tag` and it was not this image, so
    it is not asked again.
    """
    if head_first:
        current = registry.head_manifest(repo, tag)
        if current is not None and current.digest == manifest.digest:
            return False
    body = cache.read_blob(manifest.digest)
    parsed = parse_manifest_bytes(body)
    if not isinstance(parsed, ImageManifest):
        raise InputError(f"{repo}:{tag}: the cache holds an index where an image was expected")
    blobs = [*parsed.layers, parsed.config]

    def upload(blob: Descriptor) -> None:
        registry.upload_blob(repo, blob.digest, blob.size, lambda: cache.open_blob(blob.digest))
        if on_blob is not None:
            on_blob(blob, parsed)

    # Blobs in parallel, but all of them before the manifest: the ordering invariant.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for future in [pool.submit(upload, b) for b in blobs]:
            future.result()
    registry.put_manifest(repo, tag, body, parsed.media_type)
    return True


class PlatformOf:
    """Platforms of manifests, from the local cache when it has them, else the registry."""

    def __init__(self, registry: Registry, repo: str, cache: Cache | None) -> None:
        self._registry = registry
        self._repo = repo
        self._cache = cache
        self._known: dict[str, Platform | None] = {}
        self._attests: dict[str, str | None] = {}

    def __call__(self, digest: str) -> Platform | None:
        if digest not in self._known:
            self._known[digest] = self._lookup(digest)
        return self._known[digest]

    def attests(self, digest: str) -> str | None:
        """The image digest the attestation manifest `digest` belongs to (None: not one)."""
        if digest not in self._attests:
            if self._cache is not None and self._cache.has_blob(digest):
                body = self._cache.read_blob(digest)
            else:
                body, _, _ = self._registry.get_manifest(self._repo, digest)
            parsed = parse_manifest_bytes(body)
            found = attested_digest(parsed) if isinstance(parsed, ImageManifest) else None
            self._attests[digest] = found
        return self._attests[digest]

    def _lookup(self, digest: str) -> Platform | None:
        if self._cache is not None:
            cached = cached_image_platform(self._cache, digest)
            if cached is not None:
                return cached.platform
        parsed = parse_manifest_bytes(self._registry.get_manifest(self._repo, digest).data)
        if not isinstance(parsed, ImageManifest):
            return None
        sink = io.BytesIO()
        self._registry.get_blob(self._repo, parsed.config.digest, sink)
        return config_platform(json.loads(sink.getvalue()))


def _listed_tags(registry: Registry, repo: str) -> frozenset[str] | None:
    """The repository's tags (one paged `tags/list`); None when the registry will not list
    them, and then every known arch tag is asked for by name."""
    try:
        return frozenset(registry.list_tags(repo))
    except NameUnknown:
        return frozenset()
    except RegistryUnreachable:
        raise
    except RegistryError:
        return None


def _arch_entries(
    registry: Registry,
    repo: str,
    tag: str,
    arches: Iterable[str],
    platform_of: PlatformOf,
    listed: frozenset[str] | None,
    seen: Mapping[str, ManifestInfo] | None = None,
) -> list[Descriptor]:
    images: list[Descriptor] = []
    attached: dict[str, Descriptor] = {}
    for arch in arches:
        arch_tag = f"{tag}-{arch}"
        if listed is not None and arch_tag not in listed:
            continue
        head = seen.get(arch_tag) if seen else None
        if head is None:
            head = registry.head_manifest(repo, arch_tag)
        if head is None:
            continue
        if head.media_type not in mediatypes.MANIFEST_TYPES:
            continue
        platform = platform_of(head.digest)
        if platform is None:
            continue
        images.append(Descriptor(head.media_type, head.digest, head.size, platform=platform))
        # The arch's attestations, listed only while they belong to the arch's image.
        attest_tag = registry_tag(arch_tag)
        if listed is not None and attest_tag not in listed:
            continue
        attestation = seen.get(attest_tag) if seen else None
        if attestation is None:
            attestation = registry.head_manifest(repo, attest_tag)
        if attestation is not None and platform_of.attests(attestation.digest) == head.digest:
            found = Descriptor(attestation.media_type, attestation.digest, attestation.size)
            attached[head.digest] = index_entry(found, head.digest)
    ordered = sorted_images(images)
    attestations = [attached[image.digest] for image in ordered if image.digest in attached]
    return list(platform_index(ordered, attestations).manifests)


def publish_index(
    registry: Registry,
    repo: str,
    tag: str,
    *,
    platform_of: PlatformOf,
    arches: Sequence[str] = KNOWN_ARCHES,
    settle: tuple[float, float] = SETTLE_SECONDS,
    guard: Callable[[ImageIndex | None, list[Descriptor]], None] | None = None,
    seen: Mapping[str, ManifestInfo] | None = None,
) -> Descriptor:
    """Write `tag` as the index of every `tag-ARCH` the registry holds, until it holds still.

    `guard` sees the index currently at `tag` and the entries about to be written, and may
    raise to refuse (release tags never change content). `seen` holds arch tags the caller
    read or wrote moments ago (a push's own arches): the first round takes them as read
    instead of asking again, which is no less safe than a HEAD a moment later (the first
    round's reads are a snapshot of moving state either way); every read after a write, the
    one that proves the index holds still, asks the registry.

    Requests: one tag list, a HEAD per arch tag that exists and is not in `seen` (and per
    attestation tag), a HEAD of the index when it exists; after a write, the same again,
    `seen` or not, to verify. The random pause
    comes only before a second round, i.e. once the verify read saw another writer.
    """
    listed = _listed_tags(registry, repo)
    for round_ in range(MAX_INDEX_ROUNDS):
        if round_:
            time.sleep(random.uniform(*settle))  # noqa: S311 - jitter, not cryptography
            listed = _listed_tags(registry, repo)
        first = seen if round_ == 0 else None
        entries = _arch_entries(registry, repo, tag, arches, platform_of, listed, first)
        if not entries:
            raise RegistryError(f"{repo}:{tag}: no {tag}-ARCH image in the registry to index")
        # Already in platform_index's order (images, then their attestations).
        data = canonical_bytes(ImageIndex(manifests=tuple(entries)).to_json())
        digest = sha256_digest(data)
        descriptor = Descriptor(mediatypes.OCI_INDEX, digest, len(data))
        current = registry.head_manifest(repo, tag) if listed is None or tag in listed else None
        if current is not None and current.digest == digest:
            return descriptor  # nothing to write, so nothing of ours to verify
        if guard is not None:
            guard(_current_index(registry, repo, tag) if current else None, entries)
        registry.put_manifest(repo, tag, data, mediatypes.OCI_INDEX)
        listed = _listed_tags(registry, repo)
        again = _arch_entries(registry, repo, tag, arches, platform_of, listed)
        now = registry.head_manifest(repo, tag)
        if again == entries and now is not None and now.digest == digest:
            return descriptor
    raise RegistryError(f"{repo}:{tag}: the index kept changing under concurrent pushes; run again")


def _current_index(registry: Registry, repo: str, tag: str) -> ImageIndex | None:
    parsed = parse_manifest_bytes(registry.get_manifest(repo, tag).data)
    return parsed if isinstance(parsed, ImageIndex) else None


def release_guard(repo: str, tag: str) -> Callable[[ImageIndex | None, list[Descriptor]], None]:
    """Refuse to move a release tag: an arch it already names must keep its digest."""

    def check(current: ImageIndex | None, entries: list[Descriptor]) -> None:
        if current is None:
            return
        # Attestations may be re-made (provenance times); a release pins only its images.
        wanted = {str(e.platform): e.digest for e in entries if not is_attestation(e)}
        for existing in current.manifests:
            if is_attestation(existing):
                continue
            key = str(existing.platform)
            if key in wanted and wanted[key] != existing.digest:
                raise InputError(
                    f"release {repo}:{tag} already points {key} at {existing.digest}; "
                    f"refusing to move it to {wanted[key]}"
                )

    return check
