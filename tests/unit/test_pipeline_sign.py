"""pipeline/sign.py's composition of trust backends, against an in-memory registry."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import BinaryIO

import pytest

from lkpkg.attest.store import ATTESTATION_MANIFEST, REFERENCE_DIGEST, REFERENCE_TYPE
from lkpkg.errors import InputError, TrustError, VerificationFailed
from lkpkg.oci import mediatypes
from lkpkg.oci.digest import sha256_digest
from lkpkg.oci.model import Descriptor, ImageIndex, Platform, canonical_bytes
from lkpkg.oci.tagged import Manifest, ManifestInfo, Tagged
from lkpkg.pipeline.sign import SigningPlan, sign_items, sign_reference, verify_reference
from lkpkg.reference import Reference
from lkpkg.registry.protocol import Registry

REPO = "wombat/hello"
REF = Reference.parse(f"127.0.0.1:5000/{REPO}:abc")


class Manifests:
    """Enough of a registry for signing: manifests by tag and by digest."""

    def __init__(self) -> None:
        self.by_ref: dict[str, tuple[bytes, str]] = {}

    def put(self, tag: str, data: bytes, media_type: str) -> Tagged:
        digest = sha256_digest(data)
        self.by_ref[tag] = self.by_ref[digest] = (data, media_type)
        return Tagged(tag, digest, len(data))

    def check_push_access(self, repo: str) -> None:
        return None

    def blob_exists(self, repo: str, digest: str) -> int | None:
        return None

    def list_tags(self, repo: str, *, page_size: int | None = None) -> list[str]:
        return [ref for ref in self.by_ref if not ref.startswith("sha256:")]

    def upload_blob(
        self,
        repo: str,
        digest: str,
        size: int,
        opener: Callable[[], BinaryIO],
        *,
        mount_from: str | None = None,
    ) -> None:
        raise AssertionError("no blob is uploaded by these backends")

    def head_manifest(self, repo: str, ref: str) -> ManifestInfo | None:
        found = self.by_ref.get(ref)
        if found is None:
            return None
        return ManifestInfo(sha256_digest(found[0]), found[1], len(found[0]))

    def get_manifest(self, repo: str, ref: str) -> Manifest:
        data, media_type = self.by_ref[ref]
        return Manifest(data, media_type, sha256_digest(data))

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        return self.put(ref, data, media_type).digest

    def get_blob(self, repo: str, digest: str, sink: BinaryIO) -> int:
        raise AssertionError("no blob is read by these backends")


class Recorder:
    """A backend that records what it is asked to sign, and verifies what it signed."""

    def __init__(self, name: str = "rec", by_digest: bool = False) -> None:
        self.name = name
        self.by_digest = by_digest
        self.signed: list[Tagged] = []

    def sign(self, registry: Registry, reference: Reference, items: Sequence[Tagged]) -> None:
        self.signed.extend(items)

    def verify(self, registry: Registry, reference: Reference, items: Sequence[Tagged]) -> str:
        for item in items:
            if item not in self.signed:
                raise VerificationFailed(f"{item.tag or item.digest}: not signed")
        return self.name


def image(registry: Manifests, tag: str, content: str) -> Tagged:
    return registry.put(tag, f'{{"image": "{content}"}}'.encode(), mediatypes.OCI_MANIFEST)


def index(registry: Manifests, tag: str, arches: dict[str, Tagged]) -> Tagged:
    entries = tuple(
        Descriptor(mediatypes.OCI_MANIFEST, t.digest, t.size, platform=Platform("linux", arch))
        for arch, t in sorted(arches.items())
    )
    data = canonical_bytes(ImageIndex(manifests=entries).to_json())
    return registry.put(tag, data, mediatypes.OCI_INDEX)


def test_signing_an_index_signs_every_arch_it_lists_even_one_pushed_unsigned():
    registry = Manifests()
    amd64 = image(registry, "abc-amd64", "amd64")  # an earlier NOTRUST=1 push
    arm64 = image(registry, "abc-arm64", "arm64")
    top = index(registry, "abc", {"amd64": amd64, "arm64": arm64})
    backend = Recorder()
    # What this push wrote: its own arch and the index.
    sign_items(SigningPlan((backend,)), registry, REF, [arm64, top])
    assert sorted(backend.signed, key=lambda t: t.tag) == [top, amd64, arm64]
    assert "index of 2 images" in verify_reference(registry, REF, [backend])


def test_an_index_whose_arch_tag_moved_is_not_signed():
    registry = Manifests()
    amd64 = image(registry, "abc-amd64", "amd64")
    top = index(registry, "abc", {"amd64": amd64})
    image(registry, "abc-amd64", "another build")
    backend = Recorder()
    with pytest.raises(TrustError, match="abc-amd64") as caught:
        sign_items(SigningPlan((backend,)), registry, REF, [top])
    assert caught.value.hint is not None and "push again" in caught.value.hint
    assert backend.signed == []


def test_sign_reference_hands_untagged_children_only_to_digest_signers():
    registry = Manifests()
    amd64 = image(registry, "abc-amd64", "amd64")
    top = index(registry, "abc", {"amd64": amd64})
    image(registry, "abc-amd64", "moved")
    tags, digests = Recorder("dct"), Recorder("cosign", by_digest=True)
    sign_reference(SigningPlan((tags,)), registry, REF)
    assert tags.signed == [top]
    sign_reference(SigningPlan((tags, digests)), registry, REF)
    assert digests.signed == [top, Tagged("", amd64.digest, amd64.size)]


def test_verify_needs_a_backend_and_names_the_first_unsigned_item():
    registry = Manifests()
    amd64 = image(registry, "abc-amd64", "amd64")
    index(registry, "abc", {"amd64": amd64})
    with pytest.raises(InputError, match="nothing to verify with"):
        verify_reference(registry, REF, [])
    with pytest.raises(VerificationFailed, match="abc: not signed"):
        verify_reference(registry, REF, [Recorder()])


def test_attestation_manifests_beside_the_arches_are_not_arch_members():
    registry = Manifests()
    amd64 = image(registry, "abc-amd64", "amd64")
    sbom = image(registry, "unused", "attestation")
    attestation = Descriptor(
        mediatypes.OCI_MANIFEST,
        sbom.digest,
        sbom.size,
        platform=Platform("unknown", "unknown"),
        annotations={REFERENCE_TYPE: ATTESTATION_MANIFEST, REFERENCE_DIGEST: amd64.digest},
    )
    arch = Descriptor(
        mediatypes.OCI_MANIFEST, amd64.digest, amd64.size, platform=Platform("linux", "amd64")
    )
    data = canonical_bytes(ImageIndex(manifests=(arch, attestation)).to_json())
    top = registry.put("abc", data, mediatypes.OCI_INDEX)
    backend = Recorder()
    sign_items(SigningPlan((backend,)), registry, REF, [top])
    assert backend.signed == [top, amd64]
    assert "index of 1 images" in verify_reference(registry, REF, [backend])
