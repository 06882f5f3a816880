"""pipeline/publish.py's image and index publishing against the in-memory registry.

The fake registry refuses a manifest naming a blob it lacks and an index naming a manifest it
lacks, as Distribution does, so these tests also hold the push order to account.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lkpkg.cache.layout import Cache
from lkpkg.errors import InputError, RegistryError
from lkpkg.oci import mediatypes
from lkpkg.oci.model import Descriptor, ImageIndex, ImageManifest, parse_manifest_bytes
from lkpkg.pipeline.publish import PlatformOf, publish_index, push_image, release_guard
from lkpkg.registry import RegistryClient
from tests.unit.fakeregistry import FakeRegistry, Fault
from tests.unit.test_registry_client import FAST, LoopbackTls

REPO = "lkpkg/pkg"
NO_SETTLE = (0.0, 0.0)


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def client(registry: FakeRegistry) -> Iterator[RegistryClient]:
    with RegistryClient(
        registry.host,
        keychain=None,
        tls=LoopbackTls(),
        http=registry.transport(),
        config=FAST,
        sleep=lambda _s: None,
    ) as made:
        yield made


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    made = Cache(tmp_path / "cache")
    made.ensure_layout()
    return made


def cached_image(cache: Cache, arch: str, layers: int = 2) -> Descriptor:
    blobs = tuple(
        cache.write_blob(f"{arch} layer {i}".encode(), mediatypes.OCI_LAYER) for i in range(layers)
    )
    config = cache.write_blob(
        json.dumps({"architecture": arch, "os": "linux", "rootfs": {}}).encode(),
        mediatypes.OCI_CONFIG,
    )
    return cache.put_manifest(ImageManifest(config=config, layers=blobs))


def test_push_image_puts_blobs_then_the_manifest_under_its_tag(registry, client, cache):
    image = cached_image(cache, "amd64", layers=3)
    assert push_image(client, REPO, "t-amd64", cache, image) is True
    assert registry.tags[REPO]["t-amd64"] == image.digest
    manifest = cache.read_manifest(image.digest)
    assert isinstance(manifest, ImageManifest)
    for blob in manifest.children():
        assert registry.blobs[blob.digest] == cache.read_blob(blob.digest)
    # Every blob went up before the manifest that names them.
    order = [(m, p) for m, p, _ in registry.requests if m == "PUT"]
    assert order[-1] == ("PUT", f"/v2/{REPO}/manifests/t-amd64")
    assert len(order) == 1 + len(manifest.children())


def test_push_image_of_an_image_the_registry_has_sends_nothing(registry, client, cache):
    image = cached_image(cache, "amd64")
    push_image(client, REPO, "t-amd64", cache, image)
    puts = registry.count("PUT")
    assert push_image(client, REPO, "t-amd64", cache, image) is False
    assert registry.count("PUT") == puts
    assert registry.count("POST") == len(cache.read_manifest(image.digest).children())


def test_push_image_refuses_an_index_where_an_image_belongs(client, cache):
    index = cache.put_manifest(ImageIndex(manifests=(cached_image(cache, "amd64"),)))
    with pytest.raises(InputError, match="the cache holds an index"):
        push_image(client, REPO, "t-amd64", cache, index)


def test_a_failed_blob_upload_leaves_no_manifest(registry, client, cache):
    image = cached_image(cache, "amd64")
    registry.fail(Fault("PUT", "/blobs/uploads/", status=400, times=10))
    with pytest.raises(Exception, match="refused"):
        push_image(client, REPO, "t-amd64", cache, image)
    assert "t-amd64" not in registry.tags.get(REPO, {})


def publish(client: RegistryClient, cache: Cache | None, **kwargs: object) -> Descriptor:
    return publish_index(
        client,
        REPO,
        "t",
        platform_of=PlatformOf(client, REPO, cache),
        settle=NO_SETTLE,
        **kwargs,  # type: ignore[arg-type]
    )


def served_index(registry: FakeRegistry) -> ImageIndex:
    data, _ = registry.manifests[REPO][registry.tags[REPO]["t"]]
    parsed = parse_manifest_bytes(data)
    assert isinstance(parsed, ImageIndex)
    return parsed


def test_index_names_every_arch_tag_with_its_platform(registry, client, cache):
    pushed = {a: cached_image(cache, a) for a in ("amd64", "arm64")}
    for arch, image in pushed.items():
        push_image(client, REPO, f"t-{arch}", cache, image)
    written = publish(client, cache)
    index = served_index(registry)
    assert written.digest == registry.tags[REPO]["t"]
    assert {(str(m.platform), m.digest) for m in index.manifests} == {
        ("linux/amd64", pushed["amd64"].digest),
        ("linux/arm64", pushed["arm64"].digest),
    }


def test_index_platforms_come_from_the_registry_when_the_cache_lacks_them(
    registry, client, cache, tmp_path
):
    push_image(client, REPO, "t-arm64", cache, cached_image(cache, "arm64"))
    empty = Cache(tmp_path / "other")
    empty.ensure_layout()
    publish(client, empty)
    (entry,) = served_index(registry).manifests
    assert str(entry.platform) == "linux/arm64"


def test_an_index_already_right_is_not_written_again(registry, client, cache):
    push_image(client, REPO, "t-amd64", cache, cached_image(cache, "amd64"))
    first = publish(client, cache)
    puts = registry.count("PUT", exact=f"/v2/{REPO}/manifests/t")
    assert publish(client, cache) == first
    assert registry.count("PUT", exact=f"/v2/{REPO}/manifests/t") == puts


def test_no_arch_tag_means_no_index(client):
    with pytest.raises(RegistryError, match="no t-ARCH image in the registry"):
        publish(client, None)


def test_an_arch_pushed_while_the_index_is_written_ends_up_in_it(registry, client, cache):
    push_image(client, REPO, "t-amd64", cache, cached_image(cache, "amd64"))
    arm = cached_image(cache, "arm64")
    # Another host: pushes arm64 (blobs, then its arch tag) just as this writer stores its
    # amd64-only index, so the writer's check finds the index stale and writes again.
    arm_manifest = cache.read_manifest(arm.digest)
    for blob in arm_manifest.children():
        registry.put_blob(REPO, cache.read_blob(blob.digest))

    def another_host(request: httpx.Request) -> httpx.Response:
        answer: httpx.Response = registry.serve(request)
        registry.manifests[REPO][arm.digest] = (cache.read_blob(arm.digest), arm.media_type)
        registry.tags[REPO]["t-arm64"] = arm.digest
        return answer

    registry.fail(Fault("PUT", f"/v2/{REPO}/manifests/t", respond=another_host))
    publish(client, cache)
    platforms = {str(m.platform) for m in served_index(registry).manifests}
    assert platforms == {"linux/amd64", "linux/arm64"}
    assert registry.count("PUT", exact=f"/v2/{REPO}/manifests/t") == 2


def test_release_guard_refuses_to_move_an_arch_of_a_release(registry, client, cache):
    push_image(client, REPO, "t-amd64", cache, cached_image(cache, "amd64", layers=1))
    publish(client, cache)
    push_image(client, REPO, "t-amd64", cache, cached_image(cache, "amd64", layers=2))
    with pytest.raises(InputError, match="refusing to move it"):
        publish(client, cache, guard=release_guard(REPO, "t"))


def test_a_one_arch_index_lists_tags_once_and_heads_only_tags_that_exist(
    registry, client, cache, monkeypatch
):
    push_image(client, REPO, "t-amd64", cache, cached_image(cache, "amd64"))
    slept: list[float] = []
    monkeypatch.setattr("lkpkg.pipeline.publish.time.sleep", slept.append)
    before = len(registry.requests)
    publish_index(client, REPO, "t", platform_of=PlatformOf(client, REPO, cache))
    sent = [(m, p) for m, p, _ in registry.requests[before:]]
    heads = [p for m, p in sent if m == "HEAD"]
    # Write: list, HEAD t-amd64, PUT; verify: list, HEAD t-amd64, HEAD t. No other arch asked.
    assert heads == [f"/v2/{REPO}/manifests/t-amd64"] * 2 + [f"/v2/{REPO}/manifests/t"]
    assert sum(1 for m, p in sent if m == "GET" and "/tags/list" in p) == 2
    assert [p for m, p in sent if m == "PUT"] == [f"/v2/{REPO}/manifests/t"]
    # No other writer showed itself, so no settle pause was paid.
    assert slept == []


def test_an_unchanged_index_costs_a_list_and_two_heads(registry, client, cache):
    push_image(client, REPO, "t-amd64", cache, cached_image(cache, "amd64"))
    publish(client, cache)
    before = len(registry.requests)
    publish(client, cache)
    sent = [(m, p) for m, p, _ in registry.requests[before:]]
    assert [m for m, _ in sent] == ["GET", "HEAD", "HEAD"]


def test_arch_tags_the_pusher_has_seen_are_not_asked_again_until_the_verify_read(
    registry, client, cache
):
    push_image(client, REPO, "t-amd64", cache, cached_image(cache, "amd64"))
    seen = {"t-amd64": client.head_manifest(REPO, "t-amd64")}
    before = len(registry.requests)
    publish_index(client, REPO, "t", platform_of=PlatformOf(client, REPO, cache), seen=seen)
    sent = [(m, p) for m, p, _ in registry.requests[before:]]
    # Write: list, PUT; verify: list, HEAD t-amd64 (asked now, seen or not), HEAD t.
    assert sent == [
        ("GET", f"/v2/{REPO}/tags/list"),
        ("PUT", f"/v2/{REPO}/manifests/t"),
        ("GET", f"/v2/{REPO}/tags/list"),
        ("HEAD", f"/v2/{REPO}/manifests/t-amd64"),
        ("HEAD", f"/v2/{REPO}/manifests/t"),
    ]
    # A re-push: the index is right, so a list and the index's HEAD are all it costs.
    before = len(registry.requests)
    publish_index(client, REPO, "t", platform_of=PlatformOf(client, REPO, cache), seen=seen)
    assert [m for m, _, _ in registry.requests[before:]] == ["GET", "HEAD"]


def test_an_arch_tag_appearing_during_the_write_is_indexed_after_a_pause(
    registry, client, cache, monkeypatch
):
    push_image(client, REPO, "t-amd64", cache, cached_image(cache, "amd64"))
    arm = cached_image(cache, "arm64")
    slept: list[float] = []

    real_put = client.put_manifest

    def put(repo: str, ref: str, data: bytes, media_type: str) -> str:
        # Another host pushes arm64 right after our first index write.
        digest: str = real_put(repo, ref, data, media_type)
        if ref == "t" and not slept:
            push_image(client, REPO, "t-arm64", cache, arm)
        return digest

    monkeypatch.setattr(client, "put_manifest", put)
    monkeypatch.setattr("lkpkg.pipeline.publish.time.sleep", slept.append)
    publish_index(client, REPO, "t", platform_of=PlatformOf(client, REPO, cache))
    assert len(slept) == 1
    assert {str(m.platform) for m in served_index(registry).manifests} == {
        "linux/amd64",
        "linux/arm64",
    }


def test_a_registry_that_will_not_list_tags_is_asked_per_arch(registry, client, cache):
    push_image(client, REPO, "t-arm64", cache, cached_image(cache, "arm64"))
    registry.fail(Fault("GET", "/tags/list", status=403, times=10))
    publish(client, cache)
    (entry,) = served_index(registry).manifests
    assert str(entry.platform) == "linux/arm64"
