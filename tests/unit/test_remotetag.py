"""`remote-tag` (pipeline/remotetag.py) against in-memory registries: a tag within one
repository moves no blob; across repositories the image is copied with every digest kept
(mounted within one registry, moved through scratch files between two); an identical
target is left alone. The fake registry refuses a manifest naming what the repository lacks,
as Distribution does, so the copy order is checked too."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from lkpkg.cache.layout import Cache
from lkpkg.oci import mediatypes
from lkpkg.oci.model import Descriptor, ImageIndex, Platform
from lkpkg.pipeline.publish import push_image
from lkpkg.pipeline.remotetag import remote_tag
from lkpkg.reference import Reference
from lkpkg.registry import RegistryClient
from tests.unit.fakeregistry import FakeRegistry
from tests.unit.test_publish import cached_image
from tests.unit.test_registry_client import FAST, LoopbackTls

SOURCE = "registry.test/src/app:t"


@pytest.fixture
def registries() -> dict[str, FakeRegistry]:
    return {
        "registry.test": FakeRegistry("registry.test"),
        "other.test": FakeRegistry("other.test"),
    }


@pytest.fixture
def clients(registries: dict[str, FakeRegistry]) -> Iterator[dict[str, RegistryClient]]:
    made = {
        host: RegistryClient(
            host,
            keychain=None,
            tls=LoopbackTls(),
            http=fake.transport(),
            config=FAST,
            sleep=lambda _s: None,
        )
        for host, fake in registries.items()
    }
    yield made
    for client in made.values():
        client.close()


@pytest.fixture
def index(tmp_path: Path, clients: dict[str, RegistryClient]) -> str:
    """A two-platform index pushed to SOURCE; its digest."""
    cache = Cache(tmp_path / "cache")
    cache.ensure_layout()
    client = clients["registry.test"]
    images = []
    for arch in ("amd64", "arm64"):
        image = cached_image(cache, arch)
        push_image(client, "src/app", f"t-{arch}", cache, image)
        images.append(
            Descriptor(image.media_type, image.digest, image.size, Platform("linux", arch))
        )
    data = cache.read_blob(cache.put_manifest(ImageIndex(manifests=tuple(images))).digest)
    return client.put_manifest("src/app", "t", data, mediatypes.OCI_INDEX)


def tag(clients: dict[str, RegistryClient], scratch: Path, target: str) -> str:
    return remote_tag(
        clients.__getitem__, Reference.parse(SOURCE), Reference.parse(target), scratch
    )


def test_within_one_repository_it_only_tags(registries, clients, index, tmp_path):
    fake = registries["registry.test"]
    before = fake.count("POST"), fake.count("GET", "/blobs/")
    assert (
        remote_tag(
            clients.__getitem__,
            Reference.parse(SOURCE),
            Reference.parse("registry.test/src/app:v1"),
            None,
        )
        == index
    )
    assert fake.tags["src/app"]["v1"] == index
    assert (fake.count("POST"), fake.count("GET", "/blobs/")) == before


def test_another_repository_of_the_registry_gets_a_copy_by_mounts(
    registries, clients, index, tmp_path
):
    fake = registries["registry.test"]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    uploads_before = fake.count("PUT", "/blobs/uploads/")
    assert tag(clients, scratch, "registry.test/dst/app:v1") == index
    assert fake.tags["dst/app"]["v1"] == index
    # Every manifest and blob of the index is now in dst/app, under the same digests.
    assert fake.links["dst/app"] == fake.links["src/app"]
    assert set(fake.manifests["dst/app"]) == set(fake.manifests["src/app"])
    # Mounted, not moved: no blob was uploaded or read, and nothing is left in scratch.
    assert fake.count("PUT", "/blobs/uploads/") == uploads_before
    assert fake.count("GET", "/blobs/") == 0
    assert list(scratch.iterdir()) == []


def test_another_registry_gets_the_bytes_through_scratch_files(
    registries, clients, index, tmp_path
):
    source, other = registries["registry.test"], registries["other.test"]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    assert tag(clients, scratch, "other.test/mirror/app:v1") == index
    assert other.tags["mirror/app"]["v1"] == index
    for digest in source.links["src/app"]:
        assert other.blobs[digest] == source.blobs[digest]
    top = json.loads(other.manifests["mirror/app"][index][0])
    assert [m["platform"]["architecture"] for m in top["manifests"]] == ["amd64", "arm64"]
    assert list(scratch.iterdir()) == []


def test_an_identical_target_is_left_alone(registries, clients, index, tmp_path):
    fake = registries["registry.test"]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    tag(clients, scratch, "registry.test/dst/app:v1")
    puts = fake.count("PUT")
    assert tag(clients, scratch, "registry.test/dst/app:v1") == index
    assert fake.count("PUT") == puts
