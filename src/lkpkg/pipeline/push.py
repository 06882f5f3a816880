"""Pushing packages — the seed's `make push`, without manifest-tool: build what neither the
cache nor the registry has, publish each arch image and the index (pipeline/publish.py),
push release tags that never move, and hand everything written to the signer. Progress is
reported as typed events (pipeline/events.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lkpkg.attest.store import attestation_for, registry_tag
from lkpkg.cache.layout import Cache
from lkpkg.errors import InputError
from lkpkg.oci.model import Descriptor, ImageIndex, ImageManifest, Platform, parse_manifest_bytes
from lkpkg.oci.tagged import ManifestInfo, Tagged
from lkpkg.package.git import repository_top, tags_at
from lkpkg.package.model import Package
from lkpkg.pipeline.building import (
    build_package,
    cached_image,
    rewrite_index,
    target_platforms,
)
from lkpkg.pipeline.dependencies import cached_labels, moved, registry_labels
from lkpkg.pipeline.events import (
    BlobProgress,
    DependencyMoved,
    Emit,
    FoundInRegistry,
    ImagePushed,
    IndexResigned,
    IndexWritten,
    RegistryKept,
    Released,
    Signed,
    ignore,
)
from lkpkg.pipeline.publish import (
    PlatformOf,
    publish_index,
    push_image,
    release_guard,
)
from lkpkg.reference import Reference, is_valid_tag

if TYPE_CHECKING:
    from lkpkg.attest.attach import AttestOptions
    from lkpkg.builders.base import Builder

    # Annotations only: importing lkpkg.registry would load httpx, which `build` never needs.
    from lkpkg.registry.protocol import Registry

# Re-signing rounds when other hosts keep changing the index (see _sign_until_settled).
MAX_SIGN_ROUNDS = 20


# What signing is handed: every tag a push wrote; it answers with the kinds it signed with.
Sign = Callable[[Sequence[Tagged]], tuple[str, ...]]
# The git tags pointing at a commit of the repository at a path.
TagsAt = Callable[[Path, str], tuple[str, ...]]


@dataclass(frozen=True)
class ArchImage:
    """An arch image a push published: `image` is its TAG-ARCH; `uploaded` is False when the
    registry had it already."""

    arch: str
    image: Tagged
    uploaded: bool


@dataclass(frozen=True)
class PushResult:
    reference: str
    index: Descriptor
    arches: tuple[ArchImage, ...]
    built: tuple[str, ...]
    releases: tuple[str, ...]
    signed: tuple[str, ...] = ()
    # Arches not built because the cache held the same build under another org, with the
    # arch ref each was built as.
    reused: Mapping[str, Reference] = field(default_factory=dict)


def push_package(
    package: Package,
    *,
    cache: Cache,
    registry: Registry,
    builder_for: Callable[[Platform], Builder],
    platforms: Sequence[Platform] | None = None,
    force: bool = False,
    allow_dirty: bool = False,
    hash_given: bool = False,
    releases: Sequence[str] | None = None,
    verbose: bool = False,
    source_date_epoch: int | None = None,
    emit: Emit = ignore,
    sign: Sign | None = None,
    attest: AttestOptions | None = None,
    git_tags: TagsAt = tags_at,
) -> PushResult:
    """Build what is missing (cache, then registry, then builder), push, index, release, sign.

    `sign` receives every tag this push wrote — the arch tags, the index and release tags —
    once they are all in the registry, and returns the kinds it signed with. Progress, down
    to each blob the registry receives, goes to `emit`. `git_tags(top, commit)` names the
    default releases (a run passes one that asks git once per repository commit).
    """
    reference = package.reference()
    if package.dirty and not (allow_dirty or hash_given):
        raise InputError(
            f"{package.directory}: refusing to push a dirty package ({package.tag}); "
            "commit first, or pass --allow-dirty or --hash"
        )
    release_tags = list(releases) if releases is not None else _tags_at_head(package, git_tags)
    if release_tags and package.dirty:
        raise InputError(f"{package.directory}: cannot release a dirty package")
    for release in release_tags:
        if not is_valid_tag(release):
            raise InputError(f"invalid release tag '{release}'")
    repo = reference.path
    targets = target_platforms(package, platforms)

    built: list[str] = []
    reused: dict[str, Reference] = {}
    missing = []
    for platform in targets:
        # Complete in the cache (a TAG-ARCH whose blobs were removed counts as absent).
        in_cache = cached_image(cache, package, platform.architecture) is not None
        if force or (
            not in_cache
            and registry.head_manifest(repo, f"{package.tag}-{platform.architecture}") is None
        ):
            missing.append(platform)
    if missing:
        result = build_package(
            package,
            cache=cache,
            builder_for=builder_for,
            platforms=missing,
            force=force,
            verbose=verbose,
            source_date_epoch=source_date_epoch,
            emit=emit,
            attest=attest,
        )
        built = [p.platform.architecture for p in result.platforms if p.built]
        reused = {
            p.platform.architecture: p.reused_from
            for p in result.platforms
            if p.reused_from is not None
        }

    pushed: list[ArchImage] = []
    # The arch tags this push read or wrote: the index's first round needs not ask again.
    seen: dict[str, ManifestInfo] = {}
    kept = False
    for platform in targets:
        arch = platform.architecture
        arch_ref = package.arch_reference(arch)
        local = cached_image(cache, package, arch)
        if arch not in built and package.dependencies:
            # Not rebuilt: say if what it was built on has moved since (dependencies.py).
            labels = (
                cached_labels(cache, local.digest)
                if local is not None
                else registry_labels(registry, repo, f"{package.tag}-{arch}")
            )
            for change in moved(package, labels):
                emit(DependencyMoved(arch_ref, arch, *change.fields()))
        if local is None:
            emit(FoundInRegistry(arch_ref, arch))
            continue
        current = registry.head_manifest(repo, f"{package.tag}-{arch}")
        if current is not None and current.digest != local.digest and not force:
            # A pushed TAG-ARCH is immutable: keep the registry's image, and use it here too
            # (index, releases, signatures), so every machine ends with one digest per tag.
            _keep_registry_image(registry, cache, arch_ref)
            kept = True
            emit(RegistryKept(arch_ref, arch, current.digest, local.digest))
            image = Tagged(arch_ref.tag or "", current.digest, current.size)
            pushed.append(ArchImage(arch, image, False))
            continue
        uploaded = (current is None or current.digest != local.digest) and push_image(
            registry,
            repo,
            f"{package.tag}-{arch}",
            cache,
            local,
            on_blob=functools.partial(_blob_progress, emit, arch_ref, arch),
            head_first=False,  # asked just above
        )
        seen[f"{package.tag}-{arch}"] = (
            current
            if current is not None and not uploaded
            else ManifestInfo(local.digest, local.media_type, local.size)
        )
        emit(ImagePushed(arch_ref, arch, local.digest, uploaded))
        pushed.append(
            ArchImage(arch, Tagged(arch_ref.tag or "", local.digest, local.size), uploaded)
        )
        attested = _push_attestations(
            registry, repo, f"{package.tag}-{arch}", cache, reference, local.digest
        )
        if attested is not None:
            seen[registry_tag(f"{package.tag}-{arch}")] = attested

    if kept:
        rewrite_index(cache, package)
    platform_of = PlatformOf(registry, repo, cache)
    index = publish_index(registry, repo, package.tag, platform_of=platform_of, seen=seen)
    emit(IndexWritten(reference, index.digest))

    written = [p.image for p in pushed]
    written.append(Tagged(package.tag, index.digest, index.size))

    for release in release_tags:
        for arch_image in pushed:
            _release_arch(registry, repo, release, arch_image, cache)
            release_arch = f"{release}-{arch_image.arch}"
            image = arch_image.image
            _push_attestations(registry, repo, release_arch, cache, reference, image.digest)
            written.append(Tagged(release_arch, image.digest, image.size))
        released = publish_index(
            registry, repo, release, platform_of=platform_of, guard=release_guard(repo, release)
        )
        written.append(Tagged(release, released.digest, released.size))
        emit(Released(reference.with_tag(release)))
    signed = sign(written) if sign is not None else ()
    if signed and sign is not None:
        emit(Signed(reference, len(written), signed))
        index = _sign_until_settled(registry, repo, reference, index, platform_of, sign, emit)
    return PushResult(
        str(reference), index, tuple(pushed), tuple(built), tuple(release_tags), signed, reused
    )


def _blob_progress(
    emit: Emit, reference: Reference, arch: str, blob: Descriptor, image: ImageManifest
) -> None:
    blobs = [*image.layers, image.config]
    emit(
        BlobProgress(
            reference, arch, blob.digest, blob.size, len(blobs), sum(b.size for b in blobs)
        )
    )


def _sign_until_settled(
    registry: Registry,
    repo: str,
    reference: Reference,
    signed: Descriptor,
    platform_of: PlatformOf,
    sign: Sign,
    emit: Emit,
) -> Descriptor:
    """Make the signed index the one the registry serves, under concurrent pushers.

    Another host pushing another arch of the same hash rewrites the index; if its signature
    landed before ours, the trust data would name our older index. So after signing we look
    again: while the registry's index is not the one we signed, derive it from the arch tags
    once more and sign that. Whoever signs last has checked after signing, so the last
    signature always names what the registry serves.
    """
    tag = reference.tag or ""
    for _ in range(MAX_SIGN_ROUNDS):
        current = registry.head_manifest(repo, tag)
        if current is None or current.digest == signed.digest:
            return signed
        signed = publish_index(registry, repo, tag, platform_of=platform_of)
        sign([Tagged(tag, signed.digest, signed.size)])
        emit(IndexResigned(reference, signed.digest))
    return signed


def _push_attestations(
    registry: Registry,
    repo: str,
    arch_tag: str,
    cache: Cache,
    reference: Reference,
    image_digest: str,
) -> ManifestInfo | None:
    """Push the cache's attestation manifest for an image under its own tag, after the image
    and before the index, which lists it while it belongs to the arch's image. What the
    registry now holds under that tag, or None when the cache has no attestation."""
    top = cache.resolve(str(reference))
    index = cache.read_manifest(top.digest) if top is not None else None
    entry = attestation_for(index, image_digest) if isinstance(index, ImageIndex) else None
    if entry is None or not cache.has_blob(entry.digest):
        return None
    push_image(registry, repo, registry_tag(arch_tag), cache, entry)
    return ManifestInfo(entry.digest, entry.media_type, entry.size)


def _keep_registry_image(registry: Registry, cache: Cache, arch_ref: Reference) -> None:
    """Bring the registry's TAG-ARCH into the cache under the same name (verified blobs)."""
    # Imported here: cache/pull is only needed when two machines' builds differ.
    from lkpkg.cache.pull import pull

    pull(cache, registry, arch_ref)


def _release_arch(
    registry: Registry, repo: str, release: str, arch_image: ArchImage, cache: Cache
) -> None:
    tag = f"{release}-{arch_image.arch}"
    digest = arch_image.image.digest
    current = registry.head_manifest(repo, tag)
    if current is not None:
        if current.digest != digest:
            raise InputError(
                f"release {repo}:{tag} already points at {current.digest}; "
                f"refusing to move it to {digest}"
            )
        return
    body = cache.read_blob(digest)
    registry.put_manifest(repo, tag, body, parse_manifest_bytes(body).media_type)


def _tags_at_head(package: Package, tags: TagsAt) -> list[str]:
    """Git tags on HEAD of the package's repository: linuxkit's default release names."""
    if package.head is None or package.dirty:
        return []
    top = repository_top(package.directory)
    return list(tags(top or package.directory, package.head.commit))
