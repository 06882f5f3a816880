"""Attestations in a registry: pushed beside their arch, indexed in pairs, signed as
`cosign attest` stores them, verified by lkpkg and by openssl over the DSSE PAE."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lkpkg.attest import dsse
from lkpkg.attest.intoto import Statement
from lkpkg.attest.store import (
    index_entries,
    is_attestation,
    registry_tag,
    write_attestation_manifest,
)
from lkpkg.cache.layout import Cache
from lkpkg.errors import VerificationFailed
from lkpkg.oci.model import Descriptor, ImageIndex, Platform
from lkpkg.pipeline.publish import push_image
from lkpkg.reference import Reference
from lkpkg.registry import RegistryClient
from tests.unit import test_publish
from tests.unit.fakeregistry import FakeRegistry
from tests.unit.test_publish import REPO, cached_image, publish, served_index

# The in-memory registry and its client, as test_publish makes them.
registry = test_publish.registry
client = test_publish.client

SPDX = "https://spdx.dev/Document"
SLSA = "https://slsa.dev/provenance/v1"


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    made = Cache(tmp_path / "cache")
    made.ensure_layout()
    return made


def attest(cache: Cache, image: Descriptor, kinds: tuple[str, ...] = (SPDX, SLSA)) -> Descriptor:
    statements = [Statement("pkg:docker/x", image.digest, k, {"kind": k}) for k in kinds]
    return write_attestation_manifest(cache, image, statements)


def test_index_lists_an_attestation_only_while_it_belongs_to_the_arch_image(
    registry, client, cache
):
    amd, arm = cached_image(cache, "amd64"), cached_image(cache, "arm64")
    for arch, image in (("amd64", amd), ("arm64", arm)):
        push_image(client, REPO, f"t-{arch}", cache, image)
        push_image(client, REPO, registry_tag(f"t-{arch}"), cache, attest(cache, image))
    publish(client, cache)
    index = served_index(registry)
    pairs = {
        (m.annotations or {})["vnd.docker.reference.digest"]
        for m in index.manifests
        if is_attestation(m)
    }
    assert pairs == {amd.digest, arm.digest}
    assert all(
        m.platform == Platform("unknown", "unknown") for m in index.manifests if is_attestation(m)
    )
    # arm64 re-pushed with new content and no attestation: its stale one leaves the index,
    # amd64's stays.
    arm2 = cached_image(cache, "arm64", layers=3)
    push_image(client, REPO, "t-arm64", cache, arm2)
    publish(client, cache)
    index = served_index(registry)
    pairs = {
        (m.annotations or {})["vnd.docker.reference.digest"]
        for m in index.manifests
        if is_attestation(m)
    }
    assert pairs == {amd.digest}
    assert {m.digest for m in index.manifests if not is_attestation(m)} == {amd.digest, arm2.digest}


def key_pair(tmp_path: Path) -> tuple[ec.EllipticCurvePrivateKey, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    public = tmp_path / "cosign.pub"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key, public


def signed_setup(
    registry: FakeRegistry, client: RegistryClient, cache: Cache, tmp_path: Path
) -> tuple[Descriptor, ec.EllipticCurvePrivateKey, Path]:
    amd = cached_image(cache, "amd64")
    push_image(client, REPO, "t-amd64", cache, amd)
    entry = attest(cache, amd)
    index = ImageIndex((amd, *index_entries([amd], {amd.digest: entry}, None)))
    cache.set_ref("docker.io/lkpkg/pkg:t", cache.put_manifest(index))
    key, public = key_pair(tmp_path)
    tags = dsse.sign_package_attestations(
        client, cache, Reference.parse("lkpkg/pkg:t"), [amd.digest], key
    )
    assert tags == [dsse.attestation_tag(amd.digest)]
    return amd, key, public


def test_signed_attestations_verify_and_openssl_agrees(registry, client, cache, tmp_path):
    amd, key, public = signed_setup(registry, client, cache, tmp_path)
    verified = dsse.verify_attestations(
        client, "x", REPO, amd.digest, key.public_key(), required=[SPDX, SLSA]
    )
    assert verified.predicate_types == (SPDX, SLSA)
    # cosign's layout: sha256-HEX.att, DSSE envelopes annotated with their predicate type.
    data, _ = registry.manifests[REPO][registry.tags[REPO][dsse.attestation_tag(amd.digest)]]
    layers = json.loads(data)["layers"]
    assert [layer["mediaType"] for layer in layers] == [dsse.DSSE_ENVELOPE] * 2
    assert [layer["annotations"]["predicateType"] for layer in layers] == [SPDX, SLSA]
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    envelope = json.loads(registry.blobs[layers[0]["digest"]])
    payload = base64.b64decode(envelope["payload"])
    (tmp_path / "pae").write_bytes(dsse.pae(envelope["payloadType"], payload))
    (tmp_path / "sig").write_bytes(base64.b64decode(envelope["signatures"][0]["sig"]))
    checked = subprocess.run(
        [
            "openssl",
            "dgst",
            "-sha256",
            "-verify",
            str(public),
            "-signature",
            str(tmp_path / "sig"),
            str(tmp_path / "pae"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.stdout.strip() == "Verified OK", checked.stderr
    assert json.loads(payload)["subject"][0]["digest"] == {"sha256": amd.digest.split(":")[1]}


def test_a_tampered_attestation_fails_verification(registry, client, cache, tmp_path):
    amd, key, _ = signed_setup(registry, client, cache, tmp_path)
    tag = dsse.attestation_tag(amd.digest)
    data, media_type = registry.manifests[REPO][registry.tags[REPO][tag]]
    manifest = json.loads(data)
    envelope = json.loads(registry.blobs[manifest["layers"][0]["digest"]])
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"] = {"kind": "something else"}
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    forged = json.dumps(envelope).encode()
    manifest["layers"][0]["digest"] = registry.put_blob(REPO, forged)
    manifest["layers"][0]["size"] = len(forged)
    client.put_manifest(REPO, tag, json.dumps(manifest).encode(), media_type)
    with pytest.raises(VerificationFailed, match="signature does not verify"):
        dsse.verify_attestations(client, "x", REPO, amd.digest, key.public_key())


def test_an_attestation_about_another_image_fails_verification(registry, client, cache, tmp_path):
    amd, key, _ = signed_setup(registry, client, cache, tmp_path)
    arm = cached_image(cache, "arm64")
    push_image(client, REPO, "t-arm64", cache, arm)
    # amd64's statement, validly signed, replayed under arm64's .att tag.
    dsse.sign_statements(
        client,
        REPO,
        arm.digest,
        [(SPDX, Statement("x", amd.digest, SPDX, {}).to_bytes())],
        key,
    )
    with pytest.raises(VerificationFailed, match=f"is about {amd.digest}, not {arm.digest}"):
        dsse.verify_attestations(client, "x", REPO, arm.digest, key.public_key())
    other, _ = key_pair(tmp_path)
    with pytest.raises(VerificationFailed, match="does not verify with the given key"):
        dsse.verify_attestations(client, "x", REPO, amd.digest, other.public_key())
