"""Pulling an image or index from a registry into the cache, verified before it is written.

The order is what makes the cache trustworthy for `linuxkit build` offline:

1. resolve the reference to one digest (a tag is asked once; a pinned `@sha256:` is taken as
   written), so everything after is content-addressed and cannot change under us;
2. hand that pinned reference to the caller's `verify` (Docker Content Trust, cosign) —
   nothing has been downloaded yet;
3. download every manifest and blob into a staging directory, each checked against its digest
   while it streams;
4. only then, under the cache lock, move the blobs into the layout (children before the
   manifests that name them) and set the refs, in linuxkit's shape: the reference as given
   (fully qualified, `:latest` when it has neither tag nor digest) → the index, and for a
   tagged, unpinned index `TAG-ARCH` → each platform's manifest, as `linuxkit cache pull`
   writes them.

With `platforms`, only those platforms' images (and the attestations that describe them) are
fetched; the index is stored as the registry serves it (so its digest stays the pinned one),
with the other platforms absent. A failure at any step leaves the cache as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple, Protocol

from lkpkg.cache.layout import Cache
from lkpkg.errors import FormatError, InputError, NameUnknown, RegistryError
from lkpkg.oci import mediatypes
from lkpkg.oci.model import (
    Descriptor,
    ImageIndex,
    ImageManifest,
    Platform,
    config_platform,
    parse_manifest_bytes,
)
from lkpkg.reference import Reference

# buildkit's attestation manifests sit beside platform images in an index (see FACTS.md).
REFERENCE_DIGEST = "vnd.docker.reference.digest"
DOWNLOAD_WORKERS = 4


class _Head(NamedTuple):
    digest: str
    media_type: str
    size: int


class _Body(NamedTuple):
    data: bytes
    media_type: str
    digest: str


class PullRegistry(Protocol):
    """What a pull needs of a registry client (lkpkg.registry.client.RegistryClient)."""

    def head_manifest(self, repo: str, ref: str) -> tuple[str, str, int] | None: ...

    def get_manifest(self, repo: str, ref: str) -> tuple[bytes, str, str]: ...

    def get_blob(self, repo: str, digest: str, sink: BinaryIO) -> int: ...


@dataclass(frozen=True)
class Pulled:
    """What a pull stored: the cache entry's name, what it points at, what moved."""

    reference: Reference
    digest: str
    media_type: str
    platforms: tuple[Platform, ...]
    arch_refs: tuple[Reference, ...]
    blobs_fetched: int
    bytes_fetched: int


def with_default_tag(ref: Reference) -> Reference:
    """linuxkit's rule: a reference with neither tag nor digest means `:latest`."""
    return ref if ref.tag or ref.digest else ref.with_tag("latest")


def resolve(registry: PullRegistry, ref: Reference) -> Reference:
    """`ref` pinned to the digest the registry serves for it (its tag kept), or NameUnknown."""
    ref = with_default_tag(ref)
    head = registry.head_manifest(ref.path, ref.digest or ref.tag or "latest")
    if head is None:
        raise NameUnknown(f"{ref.familiar()}: not in the registry")
    return ref.with_digest(_Head(*head).digest)


def pull(
    cache: Cache,
    registry: PullRegistry,
    ref: Reference,
    *,
    platforms: Sequence[Platform] | None = None,
    verify: Callable[[Reference], object] | None = None,
    store_as: Reference | None = None,
) -> Pulled:
    """Pull `ref` into `cache` (see the module docstring for the order of the steps).

    `store_as` names the cache entry when it must differ from `ref` with its default tag:
    linuxkit looks up an image a YAML names without a tag under the bare name.
    """
    name = store_as if store_as is not None else with_default_tag(ref)
    pinned = resolve(registry, ref)
    if verify is not None:
        verify(pinned)
    assert pinned.digest is not None
    top = _Body(*registry.get_manifest(pinned.path, pinned.digest))
    parsed = _parse(top.data, pinned)
    top_desc = Descriptor(top.media_type, top.digest, len(top.data))
    if isinstance(parsed, ImageIndex):
        chosen = _choose(parsed, platforms, pinned)
        partial = len(chosen) < len(parsed.manifests)
    else:
        chosen = []
        partial = False
    # Staging in the cache's own scratch area, owned by this run (a sweep never takes it),
    # so a verified download is renamed, not copied, into blobs/.
    with cache.scratch_dir("pull") as staging:
        fetch = _Fetcher(registry, pinned.path, cache, staging)
        if isinstance(parsed, ImageIndex):
            for child in chosen:
                fetch.tree(child)
        else:
            fetch.children(parsed)
        fetch.download_all()
        if isinstance(parsed, ImageManifest) and platforms:
            _check_single_platform(fetch, parsed, platforms, pinned)
        arch_refs: list[tuple[Reference, Descriptor]] = []
        if isinstance(parsed, ImageIndex) and name.digest is None and name.tag is not None:
            arch_refs = _arch_refs(name, chosen)
        with cache.lock():
            fetch.store()
            cache.write_blob(top.data, top.media_type)
            cache.set_ref(name, top_desc, partial=partial)
            for arch_ref, desc in arch_refs:
                cache.set_ref(arch_ref, desc)
    stored = tuple(c.platform for c in chosen if c.platform is not None and not _is_attestation(c))
    return Pulled(
        reference=name,
        digest=top.digest,
        media_type=top.media_type,
        platforms=stored,
        arch_refs=tuple(r for r, _ in arch_refs),
        blobs_fetched=fetch.count,
        bytes_fetched=fetch.bytes,
    )


def _parse(data: bytes, ref: Reference) -> ImageManifest | ImageIndex:
    try:
        return parse_manifest_bytes(data)
    except FormatError as e:
        raise FormatError(f"{ref.familiar()}: not an image or an index: {e}") from None


def _is_attestation(desc: Descriptor) -> bool:
    p = desc.platform
    return p is not None and p.os == "unknown" and p.architecture == "unknown"


def _choose(
    index: ImageIndex, platforms: Sequence[Platform] | None, ref: Reference
) -> list[Descriptor]:
    """The index entries to fetch: every one, or the requested platforms' images plus the
    attestations that name them; a requested platform the index lacks is an error."""
    if not platforms:
        return list(index.manifests)
    images = [
        m
        for m in index.manifests
        if m.media_type in mediatypes.MANIFEST_TYPES
        and m.platform is not None
        and not _is_attestation(m)
    ]
    chosen: list[Descriptor] = []
    missing = []
    for want in platforms:
        match = next((m for m in images if m.platform and m.platform.matches(want)), None)
        if match is None:
            missing.append(str(want))
        elif match not in chosen:
            chosen.append(match)
    if missing:
        have = ", ".join(str(m.platform) for m in images) or "none"
        raise InputError(
            f"{ref.familiar()}: the index has no image for {', '.join(missing)} (it has: {have})"
        )
    digests = {m.digest for m in chosen}
    chosen += [
        m
        for m in index.manifests
        if _is_attestation(m) and (m.annotations or {}).get(REFERENCE_DIGEST) in digests
    ]
    return chosen


def _check_single_platform(
    fetch: _Fetcher,
    manifest: ImageManifest,
    platforms: Sequence[Platform],
    ref: Reference,
) -> None:
    config = json.loads(fetch.staged_bytes(manifest.config.digest))
    declared = config_platform(config)
    if len(platforms) > 1 or not declared.matches(platforms[0]):
        asked = ", ".join(str(p) for p in platforms)
        raise InputError(f"{ref.familiar()} is one image for {declared}, not for {asked}")


def _arch_refs(name: Reference, chosen: Sequence[Descriptor]) -> list[tuple[Reference, Descriptor]]:
    assert name.tag is not None
    out: list[tuple[Reference, Descriptor]] = []
    seen: set[str] = set()
    for child in chosen:
        if (
            child.media_type not in mediatypes.MANIFEST_TYPES
            or child.platform is None
            or _is_attestation(child)
        ):
            continue
        arch = child.platform.arch_tag
        if arch in seen:
            continue  # several variants of one arch: the first keeps the TAG-ARCH name
        seen.add(arch)
        out.append((name.with_tag(f"{name.tag}-{arch}"), child))
    return out


class _Fetcher:
    """Downloads a tree of manifests and blobs into staging, then stores it bottom-up."""

    def __init__(self, registry: PullRegistry, repo: str, cache: Cache, staging: Path) -> None:
        self.registry = registry
        self.repo = repo
        self.cache = cache
        self.staging = staging
        self.manifests: list[_Body] = []  # children before parents
        self.blobs: dict[str, Descriptor] = {}
        self.staged: dict[str, Path] = {}
        self.count = 0
        self.bytes = 0

    def tree(self, desc: Descriptor) -> None:
        if desc.media_type not in mediatypes.MANIFEST_TYPES | mediatypes.INDEX_TYPES:
            self._want(desc)
            return
        body: _Body | None = None
        if self.cache.has_blob(desc.digest):
            data = self.cache.read_blob(desc.digest)  # verified; its children may be missing
        else:
            body = _Body(*self.registry.get_manifest(self.repo, desc.digest))
            data = body.data
        parsed = parse_manifest_bytes(data)
        if isinstance(parsed, ImageIndex):
            for child in parsed.manifests:
                self.tree(child)
        else:
            self.children(parsed)
        if body is not None:
            self.manifests.append(body)
            self.count += 1
            self.bytes += len(body.data)

    def children(self, manifest: ImageManifest) -> None:
        for child in manifest.children():
            self._want(child)

    def _want(self, desc: Descriptor) -> None:
        if desc.digest in self.blobs:
            return
        path = self.cache.blob_path(desc.digest)
        if path.is_file() and path.stat().st_size == desc.size:
            return  # already stored (and verified when it was written)
        self.blobs[desc.digest] = desc

    def download_all(self) -> None:
        todo = [d for d in self.blobs.values() if d.digest not in self.staged]
        with ThreadPoolExecutor(max_workers=DOWNLOAD_WORKERS) as pool:
            for desc, path in zip(todo, pool.map(self._download, todo), strict=True):
                self.staged[desc.digest] = path
                self.count += 1
                self.bytes += desc.size

    def _download(self, desc: Descriptor) -> Path:
        path = self.staging / desc.digest.replace(":", "-")
        with path.open("wb") as sink:
            size = self.registry.get_blob(self.repo, desc.digest, sink)
        if size != desc.size:
            raise RegistryError(
                f"blob {desc.digest}: the registry sent {size} bytes, the manifest says {desc.size}"
            )
        return path

    def staged_bytes(self, digest: str) -> bytes:
        path = self.staged.get(digest)
        if path is not None:
            return path.read_bytes()
        return self.cache.read_blob(digest)

    def store(self) -> None:
        for digest, path in self.staged.items():
            self.cache.ingest_file(path, digest, move=True)
        for body in self.manifests:
            self.cache.write_blob(body.data, body.media_type)
