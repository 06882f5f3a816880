"""cache pull's order against an in-memory registry: nothing reaches the cache before the
pinned digest verified, or when any download fails; refs in linuxkit's shapes; --platforms
keeps the index's digest. (The real registry, trust server and judges: test_consumer.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import BinaryIO

import pytest

from lkpkg.cache.layout import Cache
from lkpkg.cache.pull import pull
from lkpkg.errors import DigestMismatch, InputError, NameUnknown, VerificationFailed
from lkpkg.oci import mediatypes
from lkpkg.oci.digest import sha256_digest
from lkpkg.oci.model import Descriptor, ImageIndex, ImageManifest, Platform, canonical_bytes
from lkpkg.reference import Reference


class MemoryRegistry:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, tuple[bytes, str]] = {}  # digest -> (bytes, type)
        self.tags: dict[str, str] = {}
        self.corrupt: set[str] = set()
        self.fetched: list[str] = []

    def blob(self, data: bytes, media_type: str) -> Descriptor:
        digest = sha256_digest(data)
        self.blobs[digest] = data
        return Descriptor(media_type, digest, len(data))

    def manifest(
        self, value: ImageManifest | ImageIndex, platform: Platform | None = None
    ) -> Descriptor:
        data = canonical_bytes(value.to_json())
        digest = sha256_digest(data)
        self.manifests[digest] = (data, value.media_type)
        return Descriptor(value.media_type, digest, len(data), platform=platform)

    def head_manifest(self, repo: str, ref: str) -> tuple[str, str, int] | None:
        digest = ref if ref.startswith("sha256:") else self.tags.get(f"{repo}:{ref}")
        if digest is None or digest not in self.manifests:
            return None
        data, media_type = self.manifests[digest]
        return digest, media_type, len(data)

    def get_manifest(self, repo: str, ref: str) -> tuple[bytes, str, str]:
        head = self.head_manifest(repo, ref)
        assert head is not None
        data, media_type = self.manifests[head[0]]
        self.fetched.append(head[0])
        return data, media_type, head[0]

    def get_blob(self, repo: str, digest: str, sink: BinaryIO) -> int:
        self.fetched.append(digest)
        if digest in self.corrupt:
            raise DigestMismatch(f"blob {digest}: the registry sent bytes that hash elsewhere")
        data = self.blobs[digest]
        sink.write(data)
        return len(data)


def image(registry: MemoryRegistry, arch: str) -> Descriptor:
    config = registry.blob(
        json.dumps({"architecture": arch, "os": "linux", "rootfs": {}}).encode(),
        mediatypes.OCI_CONFIG,
    )
    layer = registry.blob(f"layer {arch}".encode(), mediatypes.OCI_LAYER)
    return registry.manifest(ImageManifest(config=config, layers=(layer,)), Platform("linux", arch))


@pytest.fixture
def registry() -> MemoryRegistry:
    registry = MemoryRegistry()
    children = (image(registry, "amd64"), image(registry, "arm64"))
    index = registry.manifest(ImageIndex(manifests=children))
    registry.tags["o/app:t1"] = index.digest
    return registry


def stored(cache: Cache) -> tuple[list[str], list[Path]]:
    names = [name for name, _ in cache.refs()]
    blobs = sorted((cache.root / "blobs").rglob("*")) if (cache.root / "blobs").exists() else []
    return names, [b for b in blobs if b.is_file()]


def test_nothing_is_downloaded_or_written_before_the_digest_verifies(tmp_path, registry):
    cache = Cache(tmp_path / "cache")
    seen: list[Reference] = []

    def refuse(pinned: Reference) -> None:
        seen.append(pinned)
        raise VerificationFailed(f"{pinned}: not signed")

    with pytest.raises(VerificationFailed):
        pull(cache, registry, Reference.parse("localhost:5000/o/app:t1"), verify=refuse)
    assert [str(r) for r in seen] == [f"localhost:5000/o/app:t1@{registry.tags['o/app:t1']}"]
    assert registry.fetched == [] and stored(cache) == ([], [])


def test_a_bad_blob_leaves_the_cache_as_it_was(tmp_path, registry):
    cache = Cache(tmp_path / "cache")
    registry.corrupt.add(next(d for d, b in registry.blobs.items() if b == b"layer arm64"))
    with pytest.raises(DigestMismatch):
        pull(cache, registry, Reference.parse("localhost:5000/o/app:t1"))
    assert stored(cache) == ([], [])


def test_a_tag_stores_the_index_and_its_arch_refs_a_pin_only_its_name(tmp_path, registry):
    cache = Cache(tmp_path / "cache")
    digest = registry.tags["o/app:t1"]
    pulled = pull(cache, registry, Reference.parse("localhost:5000/o/app:t1"))
    assert [str(p) for p in pulled.platforms] == ["linux/amd64", "linux/arm64"]
    names, _ = stored(cache)
    assert names == [
        "localhost:5000/o/app:t1",
        "localhost:5000/o/app:t1-amd64",
        "localhost:5000/o/app:t1-arm64",
    ]
    again = pull(cache, registry, Reference.parse(f"localhost:5000/o/app:t1@{digest}"))
    assert again.blobs_fetched == 0  # everything was there
    assert f"localhost:5000/o/app:t1@{digest}" in [n for n, _ in cache.refs()]
    assert again.arch_refs == ()


def test_some_platforms_keep_the_index_digest_and_fetch_only_theirs(tmp_path, registry):
    cache = Cache(tmp_path / "cache")
    ref = Reference.parse("localhost:5000/o/app:t1")
    pulled = pull(cache, registry, ref, platforms=[Platform.parse("linux/arm64")])
    assert pulled.digest == registry.tags["o/app:t1"]
    assert [n for n, _ in cache.refs()] == [str(ref), f"{ref}-arm64"]
    assert not any(
        registry.blobs[d] == b"layer amd64" for d in registry.fetched if d in registry.blobs
    )
    index = cache.read_manifest(pulled.digest)
    assert isinstance(index, ImageIndex)
    by_arch = {m.platform.architecture: m.digest for m in index.manifests if m.platform}
    assert not cache.has_blob(by_arch["amd64"]) and cache.has_blob(by_arch["arm64"])
    with pytest.raises(InputError, match="no image for linux/riscv64"):
        pull(cache, registry, ref, platforms=[Platform.parse("linux/riscv64")])


def test_an_unknown_tag_is_one_line(tmp_path, registry):
    with pytest.raises(NameUnknown, match="o/app:nope: not in the registry"):
        pull(Cache(tmp_path / "c"), registry, Reference.parse("localhost:5000/o/app:nope"))
