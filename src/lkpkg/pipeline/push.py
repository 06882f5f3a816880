"""Publishing packages to a registry — the seed's `make push`, without manifest-tool.

Ordering (a manifest never names a blob the registry lacks, even if the run dies half way):
layers and config are uploaded first, then the image manifest under its arch tag
`ORG/IMAGE:TAG-ARCH`, and only then the index `ORG/IMAGE:TAG`.

The index is parallel-safe. Registries have no compare-and-swap, so the per-arch tags are
the truth and the index is derived from them: read every arch tag, write the index they
imply, then (after a short random pause) read both again; if another host pushed an arch in
between, write again. Every writer verifies after its own last write, so whoever writes last
leaves an index that holds every arch tag that existed when it looked — and any arch pushed
after that has a pusher that will look again. Hosts can therefore build and push their
architectures at the same moment; "arches must be built in sequence" is gone.
"""

from __future__ import annotations

import functools
import io
import json
import os
import random
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from lkpkg.build.base import Builder
from lkpkg.cache.layout import Cache
from lkpkg.errors import InputError, RegistryError
from lkpkg.oci import mediatypes
from lkpkg.oci.digest import sha256_digest
from lkpkg.oci.model import (
    Descriptor,
    ImageIndex,
    ImageManifest,
    Platform,
    canonical_bytes,
    config_platform,
    parse_manifest_bytes,
)
from lkpkg.package.buildyml import KNOWN_ARCHES
from lkpkg.package.model import Package
from lkpkg.pipeline.build import build_package, target_platforms
from lkpkg.reference import is_valid_tag

# How long writers wait before checking that their index still matches the arch tags; random
# so that concurrent writers do not check in lock step.
SETTLE_SECONDS = (0.05, 0.3)
MAX_INDEX_ROUNDS = 50
UPLOAD_WORKERS = 4


class Registry(Protocol):
    """What the push pipeline needs of a registry client (lkpkg.registry.client)."""

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

    def head_manifest(self, repo: str, ref: str) -> tuple[str, str, int] | None: ...

    def get_manifest(self, repo: str, ref: str) -> tuple[bytes, str, str]: ...

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str: ...

    def get_blob(self, repo: str, digest: str, sink: BinaryIO) -> int: ...


@dataclass(frozen=True)
class ArchPush:
    arch: str
    digest: str
    size: int
    uploaded: bool


def push_image(
    registry: Registry,
    repo: str,
    tag: str,
    cache: Cache,
    manifest: Descriptor,
    *,
    workers: int = UPLOAD_WORKERS,
    on_blob: Callable[[str, int], None] | None = None,
) -> bool:
    """Push one image from the cache under `tag`; False when the registry already had it."""
    current = registry.head_manifest(repo, tag)
    if current is not None and current[0] == manifest.digest:
        return False
    body = cache.read_blob(manifest.digest)
    parsed = parse_manifest_bytes(body)
    if not isinstance(parsed, ImageManifest):
        raise InputError(f"{repo}:{tag}: the cache holds an index where an image was expected")
    blobs = [*parsed.layers, parsed.config]

    def upload(blob: Descriptor) -> None:
        registry.upload_blob(repo, blob.digest, blob.size, lambda: cache.open_blob(blob.digest))
        if on_blob is not None:
            on_blob(blob.digest, blob.size)

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

    def __call__(self, digest: str) -> Platform | None:
        if digest not in self._known:
            self._known[digest] = self._lookup(digest)
        return self._known[digest]

    def _lookup(self, digest: str) -> Platform | None:
        if self._cache is not None and self._cache.has_blob(digest):
            manifest = self._cache.read_manifest(digest)
            if isinstance(manifest, ImageManifest) and self._cache.has_blob(manifest.config.digest):
                return config_platform(json.loads(self._cache.read_blob(manifest.config.digest)))
        body, _, _ = self._registry.get_manifest(self._repo, digest)
        parsed = parse_manifest_bytes(body)
        if not isinstance(parsed, ImageManifest):
            return None
        sink = io.BytesIO()
        self._registry.get_blob(self._repo, parsed.config.digest, sink)
        return config_platform(json.loads(sink.getvalue()))


def _arch_entries(
    registry: Registry, repo: str, tag: str, arches: Iterable[str], platform_of: PlatformOf
) -> list[Descriptor]:
    entries: list[Descriptor] = []
    for arch in arches:
        head = registry.head_manifest(repo, f"{tag}-{arch}")
        if head is None:
            continue
        digest, media_type, size = head
        if media_type not in mediatypes.MANIFEST_TYPES:
            continue
        platform = platform_of(digest)
        if platform is None:
            continue
        entries.append(Descriptor(media_type, digest, size, platform=platform))
    entries.sort(key=lambda d: (str(d.platform), d.digest))
    return entries


def publish_index(
    registry: Registry,
    repo: str,
    tag: str,
    *,
    platform_of: PlatformOf,
    arches: Sequence[str] = KNOWN_ARCHES,
    settle: tuple[float, float] = SETTLE_SECONDS,
    guard: Callable[[ImageIndex | None, list[Descriptor]], None] | None = None,
) -> Descriptor:
    """Write `tag` as the index of every `tag-ARCH` the registry holds, until it holds still.

    `guard` sees the index currently at `tag` and the entries about to be written, and may
    raise to refuse (release tags never change content).
    """
    for _ in range(MAX_INDEX_ROUNDS):
        entries = _arch_entries(registry, repo, tag, arches, platform_of)
        if not entries:
            raise RegistryError(f"{repo}:{tag}: no {tag}-ARCH image in the registry to index")
        data = canonical_bytes(ImageIndex(manifests=tuple(entries)).to_json())
        digest = sha256_digest(data)
        descriptor = Descriptor(mediatypes.OCI_INDEX, digest, len(data))
        current = registry.head_manifest(repo, tag)
        if current is not None and current[0] == digest:
            return descriptor  # nothing to write, so nothing of ours to verify
        if guard is not None:
            guard(_current_index(registry, repo, tag) if current else None, entries)
        registry.put_manifest(repo, tag, data, mediatypes.OCI_INDEX)
        time.sleep(random.uniform(*settle))  # noqa: S311 - jitter, not cryptography
        again = _arch_entries(registry, repo, tag, arches, platform_of)
        now = registry.head_manifest(repo, tag)
        if again == entries and now is not None and now[0] == digest:
            return descriptor
    raise RegistryError(f"{repo}:{tag}: the index kept changing under concurrent pushes; run again")


def _current_index(registry: Registry, repo: str, tag: str) -> ImageIndex | None:
    body, _, _ = registry.get_manifest(repo, tag)
    parsed = parse_manifest_bytes(body)
    return parsed if isinstance(parsed, ImageIndex) else None


def release_guard(repo: str, tag: str) -> Callable[[ImageIndex | None, list[Descriptor]], None]:
    """Refuse to move a release tag: an arch it already names must keep its digest."""

    def check(current: ImageIndex | None, entries: list[Descriptor]) -> None:
        if current is None:
            return
        wanted = {str(e.platform): e.digest for e in entries}
        for existing in current.manifests:
            key = str(existing.platform)
            if key in wanted and wanted[key] != existing.digest:
                raise InputError(
                    f"release {repo}:{tag} already points {key} at {existing.digest}; "
                    f"refusing to move it to {wanted[key]}"
                )

    return check


@dataclass(frozen=True)
class PushResult:
    reference: str
    index: Descriptor
    arches: tuple[ArchPush, ...]
    built: tuple[str, ...]
    releases: tuple[str, ...]
    signed: tuple[str, ...] = ()


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
    report: Callable[[str], None] = lambda _: None,
    sign: Callable[[Sequence[tuple[str, str, int]]], tuple[str, ...]] | None = None,
    on_blob: Callable[[str, str, int], None] | None = None,
) -> PushResult:
    """Build what is missing (cache, then registry, then builder), push, index, release, sign.

    `sign` receives every (tag, digest, size) this push wrote — the arch tags, the index and
    release tags — once they are all in the registry, and returns the kinds it signed with.
    `on_blob(arch, digest, size)` is told of each blob of an arch image once the registry
    has it (progress displays).
    """
    reference = package.reference()
    if package.dirty and not (allow_dirty or hash_given):
        raise InputError(
            f"{package.directory}: refusing to push a dirty package ({package.tag}); "
            "commit first, or pass --allow-dirty or --hash"
        )
    release_tags = list(releases) if releases is not None else _tags_at_head(package)
    if release_tags and package.dirty:
        raise InputError(f"{package.directory}: cannot release a dirty package")
    for release in release_tags:
        if not is_valid_tag(release):
            raise InputError(f"invalid release tag '{release}'")
    repo = reference.path
    targets = target_platforms(package, platforms)

    built: list[str] = []
    missing = []
    for platform in targets:
        arch_ref = str(package.arch_reference(platform.architecture))
        in_cache = cache.resolve(arch_ref) is not None
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
            report=report,
        )
        built = [p.platform.architecture for p in result.platforms if p.built]

    pushed: list[ArchPush] = []
    for platform in targets:
        arch = platform.architecture
        local = cache.resolve(str(package.arch_reference(arch)))
        if local is None:
            report(f"{reference.familiar()}-{arch}: already in the registry")
            continue
        uploaded = push_image(
            registry,
            repo,
            f"{package.tag}-{arch}",
            cache,
            local,
            on_blob=None if on_blob is None else functools.partial(on_blob, arch),
        )
        report(
            f"{reference.familiar()}-{arch}: {'pushed' if uploaded else 'unchanged'} {local.digest}"
        )
        pushed.append(ArchPush(arch, local.digest, local.size, uploaded))

    platform_of = PlatformOf(registry, repo, cache)
    index = publish_index(registry, repo, package.tag, platform_of=platform_of)
    report(f"{reference.familiar()}: index {index.digest}")

    written = [(f"{package.tag}-{p.arch}", p.digest, p.size) for p in pushed]
    written.append((package.tag, index.digest, index.size))

    for release in release_tags:
        for arch_push in pushed:
            _release_arch(registry, repo, release, arch_push, cache)
            written.append((f"{release}-{arch_push.arch}", arch_push.digest, arch_push.size))
        released = publish_index(
            registry, repo, release, platform_of=platform_of, guard=release_guard(repo, release)
        )
        written.append((release, released.digest, released.size))
        report(f"{reference.with_tag(release).familiar()}: released")
    signed = sign(written) if sign is not None else ()
    if signed:
        report(f"{reference.familiar()}: signed {len(written)} tags ({', '.join(signed)})")
    return PushResult(
        str(reference), index, tuple(pushed), tuple(built), tuple(release_tags), signed
    )


def _release_arch(
    registry: Registry, repo: str, release: str, arch_push: ArchPush, cache: Cache
) -> None:
    tag = f"{release}-{arch_push.arch}"
    current = registry.head_manifest(repo, tag)
    if current is not None:
        if current[0] != arch_push.digest:
            raise InputError(
                f"release {repo}:{tag} already points at {current[0]}; "
                f"refusing to move it to {arch_push.digest}"
            )
        return
    body = cache.read_blob(arch_push.digest)
    registry.put_manifest(repo, tag, body, parse_manifest_bytes(body).media_type)


def _tags_at_head(package: Package) -> list[str]:
    """Git tags on HEAD of the package's repository: linuxkit's default release names."""
    if package.head is None or package.dirty:
        return []
    result = subprocess.run(
        ["git", "-C", str(package.directory), "tag", "--points-at", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
    )
    return [t for t in result.stdout.split() if t] if result.returncode == 0 else []
