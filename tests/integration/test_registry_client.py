"""RegistryClient against real Distribution registries: plain http, TLS + basic, TLS + token.

Also checks the fixtures themselves with a client that is not ours (skopeo), and injects
faults (5xx, 429, resets, refusals) through a small proxy in front of the plain registry.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import logging
import os
import socket
import subprocess
import sys
import tarfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from lkpkg.auth import tls
from lkpkg.auth.keychain import Credential, Keychain
from lkpkg.errors import (
    EXIT_AUTH,
    EXIT_ENVIRONMENT,
    EXIT_FAILED,
    AuthError,
    DigestMismatch,
    NameUnknown,
    RegistryError,
    RegistryRefused,
    RegistryUnreachable,
    exit_code_for,
)
from lkpkg.oci import mediatypes
from lkpkg.oci.digest import sha256_digest
from lkpkg.oci.model import Descriptor, ImageIndex, ImageManifest, Platform, canonical_bytes
from lkpkg.registry import RegistryClient, TransportConfig
from tests.fixtures.loopback import HOP_BY_HOP, LoopbackServer, forward, reset
from tests.fixtures.registry import RegistryInfo, StaticKeychain, unique_repository_name

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

# Retries without the waiting: these tests exercise the retry paths, not the clock.
FAST = TransportConfig(backoff_initial=0.01, backoff_max=0.05, retry_after_max=5.0)
MiB = 1 << 20


@pytest.fixture(params=["plain", "basic", "token"])
def registry(request: pytest.FixtureRequest) -> RegistryInfo:
    info: RegistryInfo = request.getfixturevalue(f"registry_{request.param}")
    return info


def keychain_for(info: RegistryInfo) -> StaticKeychain:
    """The user's credentials for the registry, and for its token realm where it has one
    (the realm is another host:port, so the client sends it only what is configured for it)."""
    also = [info.token_issuer.host] if info.token_issuer is not None else []
    return StaticKeychain.for_registry(info, also=also)


@pytest.fixture
def client_factory() -> Iterator[Callable[..., RegistryClient]]:
    made: list[RegistryClient] = []

    def make(info: RegistryInfo, keychain: Any = None, **kwargs: Any) -> RegistryClient:
        kwargs.setdefault("config", FAST)
        kwargs.setdefault("tls", tls)
        client = RegistryClient(
            info.host,
            keychain=keychain if keychain is not None else keychain_for(info),
            config_dir=info.docker_config,
            **kwargs,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


# -- building an image ---------------------------------------------------------------------


@dataclass
class Blob:
    data: bytes
    media_type: str
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        self.digest = sha256_digest(self.data)

    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.data))

    def opener(self) -> Callable[[], io.BytesIO]:
        return lambda: io.BytesIO(self.data)


def layer_tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


@dataclass
class Image:
    """Two platform images under one index, as lkpkg publishes a package."""

    blobs: list[Blob]
    manifests: list[tuple[bytes, str]]  # (bytes, digest)
    index: bytes
    index_digest: str


def make_image(seed: str) -> Image:
    blobs: list[Blob] = []
    manifests: list[tuple[bytes, str]] = []
    descriptors = []
    for arch in ("amd64", "arm64"):
        layer = Blob(layer_tar({"hello": f"{seed} {arch}\n".encode()}), mediatypes.OCI_LAYER)
        diff_id = sha256_digest(layer.data)
        config = Blob(
            canonical_bytes(
                {
                    "architecture": arch,
                    "os": "linux",
                    "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                    "config": {},
                }
            ),
            mediatypes.OCI_CONFIG,
        )
        manifest = canonical_bytes(
            ImageManifest(config.descriptor(), (layer.descriptor(),)).to_json()
        )
        digest = sha256_digest(manifest)
        blobs += [layer, config]
        manifests.append((manifest, digest))
        descriptors.append(
            Descriptor(mediatypes.OCI_MANIFEST, digest, len(manifest), Platform("linux", arch))
        )
    index = canonical_bytes(ImageIndex(tuple(descriptors)).to_json())
    return Image(blobs, manifests, index, sha256_digest(index))


def push_image(client: RegistryClient, repo: str, image: Image, tag: str = "v1") -> None:
    # Order matters (see the registry README): blobs, then manifests, then the index.
    for blob in image.blobs:
        client.upload_blob(repo, blob.digest, len(blob.data), blob.opener())
    for data, digest in image.manifests:
        assert client.put_manifest(repo, digest, data, mediatypes.OCI_MANIFEST) == digest
    assert client.put_manifest(repo, tag, image.index, mediatypes.OCI_INDEX) == image.index_digest


def blob_path(info: RegistryInfo, digest: str) -> Path:
    """Where Distribution's filesystem driver keeps a blob's bytes."""
    hex_ = digest.split(":", 1)[1]
    return info.storage / "docker/registry/v2/blobs/sha256" / hex_[:2] / hex_ / "data"


# -- the fixtures, checked by another client -----------------------------------------------


def make_oci_layout(root: Path, tag: str) -> str:
    """A one-layer OCI image layout at `root`; returns its manifest digest."""
    image = make_image("skopeo")
    blobs_dir = root / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True)
    for blob in image.blobs[:2]:
        (blobs_dir / blob.digest.split(":")[1]).write_bytes(blob.data)
    manifest, digest = image.manifests[0]
    (blobs_dir / digest.split(":")[1]).write_bytes(manifest)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_INDEX,
        "manifests": [
            {
                "mediaType": mediatypes.OCI_MANIFEST,
                "digest": digest,
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (root / "index.json").write_text(json.dumps(index))
    return digest


def test_fixture_works_for_skopeo(
    registry: RegistryInfo, tmp_path: Path, client_factory: Callable[..., RegistryClient]
) -> None:
    layout = tmp_path / "layout"
    digest = make_oci_layout(layout, "v1")
    repo = registry.repo("skopeo")
    target = f"docker://{registry.host}/{repo}:v1"
    copy = ["skopeo", "--insecure-policy", "copy", "--quiet", "--preserve-digests"]
    copy += [f"oci:{layout}:v1", target]
    if registry.kind == "plain":
        copy.append("--dest-tls-verify=false")
    else:
        copy += [
            f"--dest-creds={registry.username}:{registry.password}",
            f"--dest-cert-dir={registry.cert_dir}",
        ]
    copied = subprocess.run(copy, capture_output=True, text=True, timeout=120)
    issuer = registry.token_issuer
    assert copied.returncode == 0, copied.stderr + (issuer.diagnosis() if issuer else "")

    # Read back through the docker config the fixture wrote (config.json auths + certs.d).
    inspect = ["skopeo", "inspect", "--raw", target]
    if registry.kind == "plain":
        inspect.append("--tls-verify=false")
    else:
        inspect += [
            f"--authfile={registry.docker_config / 'config.json'}",
            f"--cert-dir={registry.cert_dir}",
        ]
    raw = subprocess.run(inspect, check=True, capture_output=True, timeout=60).stdout
    assert sha256_digest(raw) == digest

    # ... and through lkpkg's own keychain reading the same docker config.
    client = client_factory(registry, keychain=Keychain(registry.docker_config, env={}))
    assert client.get_manifest(repo, "v1").digest == digest


def test_fixture_docker_config(registry: RegistryInfo) -> None:
    config = json.loads((registry.docker_config / "config.json").read_text())
    if registry.kind == "plain":
        assert config["auths"] == {}
        assert registry.ca_cert is None
        return
    assert registry.ca_cert is not None
    assert (registry.cert_dir / "ca.crt").read_bytes() == registry.ca_cert.read_bytes()
    entry = config["auths"][registry.host]["auth"]
    assert entry  # base64 of user:password; the keychain test above decodes it for real


# -- pushing and pulling -------------------------------------------------------------------


def test_push_and_read_back_an_image(
    registry: RegistryInfo, client_factory: Callable[..., RegistryClient]
) -> None:
    client = client_factory(registry)
    repo = registry.repo("image")
    image = make_image(repo)
    push_image(client, repo, image)

    expected_scheme = "http" if registry.kind == "plain" else "https"
    assert client.base_url == f"{expected_scheme}://{registry.host}"

    index = client.get_manifest(repo, "v1")
    assert index.data == image.index
    assert index.digest == image.index_digest
    assert index.media_type == mediatypes.OCI_INDEX
    assert client.head_manifest(repo, "v1") == (
        image.index_digest,
        mediatypes.OCI_INDEX,
        len(image.index),
    )
    for data, digest in image.manifests:
        got = client.get_manifest(repo, digest)
        assert got == (data, mediatypes.OCI_MANIFEST, digest)
    for blob in image.blobs:
        assert client.blob_exists(repo, blob.digest) == len(blob.data)
        sink = io.BytesIO()
        assert client.get_blob(repo, blob.digest, sink) == len(blob.data)
        assert sink.getvalue() == blob.data
    assert client.list_tags(repo) == ["v1"]


def test_upload_skips_a_blob_already_there(
    registry_plain: RegistryInfo,
    client_factory: Callable[..., RegistryClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = client_factory(registry_plain)
    repo = registry_plain.repo("skip")
    blob = Blob(b"present", mediatypes.OCI_LAYER)
    client.upload_blob(repo, blob.digest, len(blob.data), blob.opener())
    opened: list[int] = []

    def opener() -> io.BytesIO:
        opened.append(1)
        return io.BytesIO(blob.data)

    caplog.set_level(logging.DEBUG, "lkpkg.registry")
    client.upload_blob(repo, blob.digest, len(blob.data), opener)
    assert opened == []
    assert not [r for r in caplog.records if r.getMessage().startswith(("POST", "PUT"))]


def test_empty_blob(
    registry_basic: RegistryInfo, client_factory: Callable[..., RegistryClient]
) -> None:
    client = client_factory(registry_basic)
    repo = registry_basic.repo("empty")
    blob = Blob(b"", mediatypes.OCI_EMPTY)
    client.upload_blob(repo, blob.digest, 0, blob.opener())
    sink = io.BytesIO()
    assert client.get_blob(repo, blob.digest, sink) == 0


def test_missing_things(
    registry: RegistryInfo, client_factory: Callable[..., RegistryClient]
) -> None:
    client = client_factory(registry)
    repo = registry.repo("missing")
    absent = sha256_digest(b"absent")
    assert client.blob_exists(repo, absent) is None
    assert client.head_manifest(repo, "nope") is None
    with pytest.raises(NameUnknown) as caught:
        client.get_manifest(repo, "nope")
    assert exit_code_for(caught.value) == EXIT_FAILED
    assert f"{registry.host}/{repo}:nope" in caught.value.message
    with pytest.raises(NameUnknown):
        client.get_blob(repo, absent, io.BytesIO())
    with pytest.raises(NameUnknown) as caught:
        client.list_tags(repo)
    assert "NAME_UNKNOWN" in caught.value.message


def test_manifest_naming_a_missing_blob_is_refused(
    registry_plain: RegistryInfo, client_factory: Callable[..., RegistryClient]
) -> None:
    client = client_factory(registry_plain)
    repo = registry_plain.repo("orphan")
    image = make_image(repo)
    with pytest.raises(RegistryRefused) as caught:
        client.put_manifest(repo, "v1", image.manifests[0][0], mediatypes.OCI_MANIFEST)
    assert "MANIFEST_BLOB_UNKNOWN" in caught.value.message
    assert "\n" not in caught.value.message


# -- digests are verified ------------------------------------------------------------------


def test_blob_with_wrong_content_is_detected(
    registry: RegistryInfo, client_factory: Callable[..., RegistryClient]
) -> None:
    client = client_factory(registry)
    repo = registry.repo("corrupt")
    blob = Blob(os.urandom(4096), mediatypes.OCI_LAYER)
    client.upload_blob(repo, blob.digest, len(blob.data), blob.opener())
    # The registry's disk rots: same size, other bytes.
    blob_path(registry, blob.digest).write_bytes(os.urandom(4096))
    with pytest.raises(DigestMismatch) as caught:
        client.get_blob(repo, blob.digest, io.BytesIO())
    assert blob.digest in caught.value.message
    assert exit_code_for(caught.value) == EXIT_FAILED


def test_manifest_with_wrong_content_is_detected(
    registry_token: RegistryInfo, client_factory: Callable[..., RegistryClient]
) -> None:
    client = client_factory(registry_token)
    repo = registry_token.repo("corrupt-manifest")
    image = make_image(repo)
    push_image(client, repo, image)
    tampered = image.index.replace(b'"arm64"', b'"arm"  ')
    blob_path(registry_token, image.index_digest).write_bytes(tampered)
    # By digest: the bytes must hash to the digest asked for.
    with pytest.raises(DigestMismatch):
        client.get_manifest(repo, image.index_digest)
    # By tag: the bytes must hash to the registry's Docker-Content-Digest.
    with pytest.raises(DigestMismatch) as caught:
        client.get_manifest(repo, "v1")
    assert image.index_digest in caught.value.message


def test_upload_of_content_that_does_not_match_its_digest(
    registry: RegistryInfo, client_factory: Callable[..., RegistryClient]
) -> None:
    # With the local hash on, the client itself stops the wrong bytes before their end.
    client = client_factory(
        registry, config=TransportConfig(hash_uploads=True, backoff_initial=0.01, backoff_max=0.05)
    )
    repo = registry.repo("liar")
    claimed = sha256_digest(b"what we said")
    with pytest.raises(DigestMismatch) as caught:
        client.upload_blob(repo, claimed, 12, lambda: io.BytesIO(b"what we sent"))
    assert "hashes to" in caught.value.message
    with pytest.raises(DigestMismatch) as caught:
        client.upload_blob(repo, claimed, 12, lambda: io.BytesIO(b"short"))
    assert "not the 12 declared" in caught.value.message
    with pytest.raises(DigestMismatch):
        client.upload_blob(repo, claimed, 12, lambda: io.BytesIO(b"what we said, and more"))
    # Nothing was stored under the name.
    assert client.blob_exists(repo, claimed) is None


def test_by_default_the_registry_refuses_content_that_does_not_match_its_digest(
    registry: RegistryInfo, client_factory: Callable[..., RegistryClient]
) -> None:
    # The default: no local hash; the registry verifies `?digest=` and stores nothing.
    client = client_factory(registry)
    repo = registry.repo("liar-default")
    claimed = sha256_digest(b"what we said")
    with pytest.raises(DigestMismatch) as caught:
        client.upload_blob(repo, claimed, 12, lambda: io.BytesIO(b"what we sent"))
    assert "DIGEST_INVALID" in caught.value.message
    assert exit_code_for(caught.value) == EXIT_FAILED
    with pytest.raises(DigestMismatch) as caught:
        client.upload_blob(repo, claimed, 12, lambda: io.BytesIO(b"short"))
    assert "not the 12 declared" in caught.value.message
    assert client.blob_exists(repo, claimed) is None


def test_put_manifest_by_digest_checks_the_bytes(
    registry_plain: RegistryInfo, client_factory: Callable[..., RegistryClient]
) -> None:
    client = client_factory(registry_plain)
    repo = registry_plain.repo("wrong-name")
    with pytest.raises(DigestMismatch):
        client.put_manifest(repo, sha256_digest(b"x"), b"{}", mediatypes.OCI_MANIFEST)


# -- mounts and tags -----------------------------------------------------------------------


def test_cross_repository_mount(
    registry: RegistryInfo,
    client_factory: Callable[..., RegistryClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = client_factory(registry)
    source = registry.repo("mount-src")
    target = registry.repo("mount-dst")
    blob = Blob(os.urandom(2048), mediatypes.OCI_LAYER)
    client.upload_blob(source, blob.digest, len(blob.data), blob.opener())
    caplog.set_level(logging.DEBUG, "lkpkg.registry")
    caplog.clear()

    def no_read() -> io.BytesIO:
        raise AssertionError("a mount must not read the blob")

    client.upload_blob(target, blob.digest, len(blob.data), no_read, mount_from=source)
    assert client.blob_exists(target, blob.digest) == len(blob.data)
    assert not [r for r in caplog.records if r.getMessage().startswith("PUT")]
    if registry.token_issuer is not None:
        # One token for both scopes: pull on the source, push on the target.
        last = registry.token_issuer.requests[-1]
        assert set(last.scopes) == {
            f"repository:{source}:pull",
            f"repository:{target}:pull,push",
        }


def test_mount_from_a_repository_without_the_blob_uploads_instead(
    registry: RegistryInfo, client_factory: Callable[..., RegistryClient]
) -> None:
    client = client_factory(registry)
    source = registry.repo("mount-empty")
    target = registry.repo("mount-fallback")
    blob = Blob(os.urandom(1024), mediatypes.OCI_LAYER)
    client.upload_blob(target, blob.digest, len(blob.data), blob.opener(), mount_from=source)
    assert client.blob_exists(target, blob.digest) == len(blob.data)


def test_tag_list_with_a_page_size(
    registry: RegistryInfo, client_factory: Callable[..., RegistryClient]
) -> None:
    client = client_factory(registry)
    repo = registry.repo("tags")
    image = make_image(repo)
    push_image(client, repo, image, tag="t0")
    tags = [f"t{i}" for i in range(7)]
    for tag in tags[1:]:
        client.put_manifest(repo, tag, image.index, mediatypes.OCI_INDEX)
    # Distribution 2.8 ignores `n` and answers every tag in one unsorted page; the client
    # takes that as the whole list (pagination itself is tested through the proxy below).
    assert sorted(client.list_tags(repo, page_size=2)) == tags
    assert sorted(client.list_tags(repo)) == tags


# -- auth --------------------------------------------------------------------------------


def test_wrong_password_is_an_auth_error_without_the_password(
    registry_basic: RegistryInfo,
    registry_token: RegistryInfo,
    client_factory: Callable[..., RegistryClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "not-the-password-8d1f"
    for info in (registry_basic, registry_token):
        also = [info.token_issuer.host] if info.token_issuer is not None else []
        credential = Credential("wombat", wrong, source="config.json auths")
        keychain = StaticKeychain({host: credential for host in (info.host, *also)})
        client = client_factory(info, keychain=keychain)
        repo = info.repo("denied")
        blob = Blob(b"x", mediatypes.OCI_LAYER)
        with pytest.raises(AuthError) as caught:
            client.upload_blob(repo, blob.digest, 1, blob.opener())
        message = caught.value.message
        assert exit_code_for(caught.value) == EXIT_AUTH == 4
        assert message.startswith(f"push to {info.host}/{repo} refused:")
        assert "credentials tried: config.json auths" in message
        assert wrong not in message
        assert "\n" not in message
    assert all(wrong not in r.getMessage() for r in caplog.records)


def test_no_credentials_is_an_auth_error(
    registry_basic: RegistryInfo, client_factory: Callable[..., RegistryClient]
) -> None:
    client = client_factory(registry_basic, keychain=StaticKeychain({}))
    with pytest.raises(AuthError) as caught:
        client.list_tags(registry_basic.repo("anon"))
    assert "authentication required" in caught.value.message
    assert "credentials tried: none" in caught.value.message


def test_basic_credentials_go_only_to_the_registry(
    registry_basic: RegistryInfo, client_factory: Callable[..., RegistryClient]
) -> None:
    keychain = StaticKeychain.for_registry(registry_basic)
    client = client_factory(registry_basic, keychain=keychain)
    repo = registry_basic.repo("basic")
    push_image(client, repo, make_image(repo))
    assert set(keychain.asked) == {registry_basic.host}


def test_token_realm_on_another_host_gets_no_registry_credentials(
    registry_token: RegistryInfo, client_factory: Callable[..., RegistryClient]
) -> None:
    issuer = registry_token.token_issuer
    assert issuer is not None
    # A user who pushed an image...
    owner = client_factory(registry_token)
    repo = registry_token.repo("realm")
    image = make_image(repo)
    push_image(owner, repo, image)

    # ... and a keychain naming only the registry: the realm (127.0.0.1:OTHER) is another
    # host, so the registry's password must not travel there; the client goes anonymous.
    keychain = StaticKeychain.for_registry(registry_token)
    client = client_factory(registry_token, keychain=keychain)
    issuer.reset_counts()
    assert client.get_manifest(repo, "v1").digest == image.index_digest  # anonymous pull
    blob = Blob(b"push me", mediatypes.OCI_LAYER)
    with pytest.raises(AuthError) as caught:
        client.upload_blob(repo, blob.digest, len(blob.data), blob.opener())
    assert issuer.requests
    assert not any(r.presented_basic for r in issuer.requests)
    assert f"not sent to the token realm on another host ({issuer.host})" in caught.value.message
    assert registry_token.password is not None
    assert registry_token.password not in caught.value.message


def test_identity_token_uses_the_oauth2_refresh_grant(
    registry_token: RegistryInfo, client_factory: Callable[..., RegistryClient]
) -> None:
    issuer = registry_token.token_issuer
    assert issuer is not None
    credential = Credential(None, issuer.refresh_token, identity_token=True, source="helper")
    keychain = StaticKeychain({registry_token.host: credential, issuer.host: credential})
    client = client_factory(registry_token, keychain=keychain)
    issuer.reset_counts()
    repo = registry_token.repo("identity")
    push_image(client, repo, make_image(repo))
    assert issuer.requests
    assert all(r.method == "POST" and r.grant_type == "refresh_token" for r in issuer.requests)


def test_tokens_are_cached(
    registry_token: RegistryInfo, client_factory: Callable[..., RegistryClient]
) -> None:
    issuer = registry_token.token_issuer
    assert issuer is not None
    client = client_factory(registry_token)
    issuer.reset_counts()
    repo = registry_token.repo("cache")
    image = make_image(repo)
    push_image(client, repo, image)
    for _ in range(5):
        client.get_manifest(repo, "v1")
        for blob in image.blobs:
            client.get_blob(repo, blob.digest, io.BytesIO())
        client.list_tags(repo)
    # One push token (pull,push) answers every later pull of the same repository.
    assert issuer.count() == 1


def test_concurrent_uploads_share_one_token(
    registry_token: RegistryInfo, client_factory: Callable[..., RegistryClient]
) -> None:
    issuer = registry_token.token_issuer
    assert issuer is not None
    client = client_factory(registry_token)
    issuer.reset_counts()
    repo = registry_token.repo("threads")
    blobs = [Blob(os.urandom(256 * 1024), mediatypes.OCI_LAYER) for _ in range(6)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda b: client.upload_blob(repo, b.digest, len(b.data), b.opener()), blobs))
    for blob in blobs:
        assert client.blob_exists(repo, blob.digest) == len(blob.data)
    assert issuer.count() == 1


# -- reaching the registry -----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_registry_down_is_unreachable() -> None:
    port = _free_port()
    client = RegistryClient(f"127.0.0.1:{port}", keychain=None, tls=tls, config=FAST)
    with pytest.raises(RegistryUnreachable) as caught:
        client.blob_exists("lkpkg/x", sha256_digest(b""))
    assert caught.value.message == f"registry 127.0.0.1:{port} unreachable: connection refused"
    assert exit_code_for(caught.value) == EXIT_ENVIRONMENT == 3


def test_untrusted_certificate_is_unreachable_not_downgraded(
    registry_basic: RegistryInfo, tmp_path: Path
) -> None:
    # No CA configured: https fails verification; loopback may use plain http, but the
    # server speaks TLS, so the TLS failure is what the user is told.
    client = RegistryClient(
        registry_basic.host, keychain=None, tls=tls, config=FAST, config_dir=tmp_path / "empty"
    )
    with pytest.raises(RegistryUnreachable) as caught:
        client.list_tags("lkpkg/x")
    assert "TLS certificate verify failed" in caught.value.message
    client.close()


def test_extra_ca_is_trusted(registry_basic: RegistryInfo, tmp_path: Path) -> None:
    keychain = StaticKeychain.for_registry(registry_basic)
    with RegistryClient(
        registry_basic.host,
        keychain=keychain,
        tls=tls,
        config=FAST,
        config_dir=tmp_path / "empty",
        extra_ca=registry_basic.ca_cert,
    ) as client:
        with pytest.raises(NameUnknown):
            client.list_tags(registry_basic.repo("ca"))
        assert client.base_url.startswith("https://")


def test_plain_http_is_not_tried_for_a_remote_host(registry_plain: RegistryInfo) -> None:
    # `plain_http_allowed` is False for a name that is not loopback nor named insecure; a
    # policy stub stands in for such a host while the traffic still goes to loopback.
    class NoPlainHttp:
        def ssl_context_for(self, host: str, **_: Any) -> Any:
            from lkpkg.auth.tls import ssl_context_for

            return ssl_context_for(host)

        def plain_http_allowed(self, host: str, insecure: Any = ()) -> bool:
            return False

    client = RegistryClient(registry_plain.host, keychain=None, config=FAST, tls=NoPlainHttp())
    with client, pytest.raises(RegistryUnreachable) as caught:
        client.list_tags("lkpkg/x")
    assert "TLS handshake failed" in caught.value.message


# -- faults: a proxy that misbehaves on purpose ----------------------------------------------


@dataclass
class Fault:
    method: str
    path_contains: str
    kind: str  # "status" or "reset"
    times: int = 1
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class FlakyFront:
    """A plain-http proxy in front of a registry that fails chosen requests and logs them.

    The Host header is passed through, so the registry's upload Locations point back here.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.faults: list[Fault] = []
        # Answer `tags/list?n=` in pages with Link headers, as Distribution 3, Harbor and
        # Docker Hub do (Distribution 2.8 behind the proxy ignores `n`).
        self.paginate_tags = False
        self.seen: list[tuple[str, str, int | str]] = []
        self.lock = threading.Lock()
        self.server = LoopbackServer(self.handle)

    @property
    def host(self) -> str:
        return self.server.host

    def close(self) -> None:
        self.server.close()

    def add(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def count(self, method: str, contains: str) -> int:
        with self.lock:
            return sum(1 for m, p, _ in self.seen if m == method and contains in p)

    def _take(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and fault.path_contains in path:
                    fault.times -= 1
                    return fault
        return None

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        fault = self._take(h.command, h.path)
        if fault is not None and fault.kind == "reset":
            h.rfile.read(min(length, 1024))
            with self.lock:
                self.seen.append((h.command, h.path, "reset"))
            reset(h)
            return
        body = h.rfile.read(length) if length else b""
        if self.paginate_tags and h.command == "GET" and "/tags/list?" in h.path:
            self._tags_page(h)
            return
        if fault is not None:
            with self.lock:
                self.seen.append((h.command, h.path, fault.status))
            h.send_response(fault.status)
            for name, value in fault.headers.items():
                h.send_header(name, value)
            h.send_header("Content-Length", str(len(fault.body)))
            h.end_headers()
            h.wfile.write(fault.body)
            return
        answer = forward(h, body, ("127.0.0.1", self.upstream_port), timeout=30)
        with self.lock:
            self.seen.append((h.command, h.path, answer.status))
        h.send_response(answer.status)
        for name, value in answer.headers:
            if name.lower() not in HOP_BY_HOP:
                h.send_header(name, value)
        # HEAD keeps the upstream's length (the blob's size); other answers carry `data`.
        if h.command == "HEAD":
            h.send_header("Content-Length", answer.header("Content-Length") or "0")
        else:
            h.send_header("Content-Length", str(len(answer.data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(answer.data)

    def _tags_page(self, h: BaseHTTPRequestHandler) -> None:
        path, _, query = h.path.partition("?")
        params = dict(parse_qsl(query))
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        upstream.request("GET", path)
        every = sorted(json.loads(upstream.getresponse().read())["tags"])
        upstream.close()
        size = int(params["n"])
        after = [t for t in every if t > params.get("last", "")]
        page, rest = after[:size], after[size:]
        data = json.dumps({"name": path.split("/v2/")[1].rsplit("/tags/", 1)[0], "tags": page})
        with self.lock:
            self.seen.append((h.command, h.path, 200))
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        if rest:
            h.send_header("Link", f'<{path}?last={page[-1]}&n={size}>; rel="next"')
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data.encode())


@pytest.fixture
def flaky(registry_plain: RegistryInfo) -> Iterator[FlakyFront]:
    front = FlakyFront(int(registry_plain.host.rsplit(":", 1)[1]))
    yield front
    front.close()


def flaky_client(
    front: FlakyFront, sleeps: list[float] | None = None, **kwargs: Any
) -> RegistryClient:
    kwargs.setdefault("config", FAST)
    kwargs.setdefault("tls", tls)
    return RegistryClient(
        front.host,
        keychain=None,
        sleep=(sleeps.append if sleeps is not None else (lambda _s: None)),
        **kwargs,
    )


def test_tag_pagination_follows_link_headers(flaky: FlakyFront) -> None:
    flaky.paginate_tags = True
    with flaky_client(flaky) as client:
        repo = unique_repository_name("pages")
        image = make_image(repo)
        push_image(client, repo, image, tag="t0")
        tags = [f"t{i}" for i in range(7)]
        for tag in tags[1:]:
            client.put_manifest(repo, tag, image.index, mediatypes.OCI_INDEX)
        assert client.list_tags(repo, page_size=2) == tags
        assert flaky.count("GET", "/tags/list") == 4
        assert [p for m, p, _ in flaky.seen if "/tags/list" in p][-1].endswith("last=t5&n=2")


def test_retries_5xx_on_idempotent_requests(flaky: FlakyFront) -> None:
    with flaky_client(flaky) as client:
        repo = unique_repository_name("retry")
        image = make_image(repo)
        push_image(client, repo, image)
        flaky.add(Fault("GET", "/manifests/v1", "status", times=2, status=503))
        assert client.get_manifest(repo, "v1").digest == image.index_digest
        assert flaky.count("GET", "/manifests/v1") == 3


def test_gives_up_after_the_configured_attempts(flaky: FlakyFront) -> None:
    with flaky_client(flaky) as client:
        repo = unique_repository_name("give-up")
        flaky.add(Fault("GET", "/tags/list", "status", times=99, status=502))
        with pytest.raises(RegistryError) as caught:
            client.list_tags(repo)
        assert "answered 502" in caught.value.message
        assert flaky.count("GET", "/tags/list") == FAST.attempts


def test_honours_retry_after(flaky: FlakyFront) -> None:
    sleeps: list[float] = []
    with flaky_client(flaky, sleeps) as client:
        repo = unique_repository_name("retry-after")
        flaky.add(Fault("GET", "/tags/list", "status", status=429, headers={"Retry-After": "2"}))
        with pytest.raises(NameUnknown):
            client.list_tags(repo)
        assert sleeps == [2.0]


def test_retry_after_beyond_the_limit_is_refused(flaky: FlakyFront) -> None:
    with flaky_client(flaky) as client:
        body = json.dumps(
            {"errors": [{"code": "TOOMANYREQUESTS", "message": "pull rate limit reached"}]}
        ).encode()
        flaky.add(
            Fault(
                "GET",
                "/tags/list",
                "status",
                status=429,
                headers={"Retry-After": "3600", "Content-Type": "application/json"},
                body=body,
            )
        )
        with pytest.raises(RegistryRefused) as caught:
            client.list_tags(unique_repository_name("limit"))
        assert "pull rate limit reached (TOOMANYREQUESTS)" in caught.value.message
        assert flaky.count("GET", "/tags/list") == 1


def test_broken_upload_restarts_from_a_new_session(flaky: FlakyFront) -> None:
    with flaky_client(flaky) as client:
        repo = unique_repository_name("reset")
        blob = Blob(os.urandom(3 * MiB), mediatypes.OCI_LAYER)
        flaky.add(Fault("PUT", "/blobs/uploads/", "reset"))
        flaky.add(Fault("PUT", "/blobs/uploads/", "status", status=500))
        opened: list[int] = []

        def opener() -> io.BytesIO:
            opened.append(1)
            return io.BytesIO(blob.data)

        client.upload_blob(repo, blob.digest, len(blob.data), opener)
        assert client.blob_exists(repo, blob.digest) == len(blob.data)
        assert flaky.count("POST", "/blobs/uploads/") == 3
        assert flaky.count("PUT", "/blobs/uploads/") == 3
        assert flaky.count("DELETE", "/blobs/uploads/") == 2
        assert len(opened) == 3


def test_denied_and_too_large_are_refusals(flaky: FlakyFront) -> None:
    with flaky_client(flaky) as client:
        repo = unique_repository_name("refused")
        denied = json.dumps(
            {
                "errors": [
                    {"code": "DENIED", "message": "requested access to the resource is denied"}
                ]
            }
        ).encode()
        flaky.add(Fault("PUT", "/manifests/", "status", status=403, body=denied))
        with pytest.raises(RegistryRefused) as caught:
            client.put_manifest(repo, "v1", b"{}", mediatypes.OCI_MANIFEST)
        assert caught.value.message == (
            f"push to {flaky.host}/{repo} refused:"
            " requested access to the resource is denied (DENIED)"
        )
        assert exit_code_for(caught.value) == EXIT_FAILED

        flaky.add(Fault("PUT", "/blobs/uploads/", "status", status=413))
        blob = Blob(b"big", mediatypes.OCI_LAYER)
        with pytest.raises(RegistryRefused) as caught:
            client.upload_blob(repo, blob.digest, 3, blob.opener())
        assert "413" in caught.value.message


def test_reads_retry_after_a_reset(flaky: FlakyFront) -> None:
    with flaky_client(flaky) as client:
        repo = unique_repository_name("read-reset")
        blob = Blob(b"abc", mediatypes.OCI_LAYER)
        client.upload_blob(repo, blob.digest, 3, blob.opener())
        flaky.add(Fault("GET", f"/blobs/{blob.digest}", "reset"))
        sink = io.BytesIO()
        assert client.get_blob(repo, blob.digest, sink) == 3
        assert sink.getvalue() == b"abc"


# -- memory: blobs stream ----------------------------------------------------------------------

_STREAM_SCRIPT = r"""
import hashlib, io, json, os, sys
from pathlib import Path
from lkpkg.auth import tls
from lkpkg.registry import RegistryClient, TransportConfig
from tests.fixtures.registry import StaticKeychain, RegistryInfo
from lkpkg.auth.keychain import Credential

def hwm_kib():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise SystemExit("no VmHWM")

host, repo, path, config_dir = sys.argv[1:5]
user, password = os.environ.get("REG_USER"), os.environ.get("REG_PASSWORD")
keychain = StaticKeychain({host: Credential(user, password, source="t")} if user else {})
client = RegistryClient(host, keychain=keychain, tls=tls, config_dir=Path(config_dir))
# Warm up (TLS, auth, imports) with a small blob so that only the big one is measured.
small = b"warm-up" + os.urandom(8)
client.upload_blob(repo, "sha256:" + hashlib.sha256(small).hexdigest(), len(small),
                   lambda: io.BytesIO(small))
size = os.path.getsize(path)
h = hashlib.sha256()
with open(path, "rb") as f:
    while chunk := f.read(1 << 20):
        h.update(chunk)
digest = "sha256:" + h.hexdigest()
before = hwm_kib()
client.upload_blob(repo, digest, size, lambda: open(path, "rb"))
after_upload = hwm_kib()
with open(path + ".back", "wb") as sink:
    got = client.get_blob(repo, digest, sink)
after_download = hwm_kib()
print(json.dumps({"before": before, "after_upload": after_upload,
                  "after_download": after_download, "size": got}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["plain", "basic"])
def test_64_mib_blob_streams_in_bounded_memory(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    info: RegistryInfo = request.getfixturevalue(f"registry_{kind}")
    path = tmp_path / "big.bin"
    with path.open("wb") as out:
        for _ in range(64):
            out.write(os.urandom(MiB))
    # A fresh interpreter, so its peak RSS (VmHWM) before the upload is not some earlier test's.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if info.username is not None and info.password is not None:
        env |= {"REG_USER": info.username, "REG_PASSWORD": info.password}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _STREAM_SCRIPT,
            info.host,
            info.repo("big"),
            str(path),
            str(info.docker_config),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    back = tmp_path / "big.bin.back"
    try:
        assert result.returncode == 0, result.stderr[-3000:]
        numbers = json.loads(result.stdout.strip().splitlines()[-1])
        assert numbers["size"] == 64 * MiB
        assert back.read_bytes() == path.read_bytes()
    finally:
        # pytest keeps the temporary directories of recent runs; 128 MiB each is too much.
        path.unlink()
        back.unlink(missing_ok=True)
    growth_mib = (numbers["after_download"] - numbers["before"]) / 1024
    print(f"{kind}: peak RSS growth {growth_mib:.1f} MiB", numbers)
    assert growth_mib < 32, numbers


def test_sha256_helper_matches_hashlib() -> None:
    # Guards the test helpers above: the digests they compute are plain sha256.
    assert sha256_digest(b"x") == "sha256:" + hashlib.sha256(b"x").hexdigest()


def test_a_client_that_says_nothing_does_not_stall_the_token_issuer(registry_token) -> None:
    # The fixture's issuer once did every TLS handshake in its accept loop: one connection
    # that sent nothing held every later token request until skopeo gave up with "TLS
    # handshake timeout" (seen in two full CI runs). Each connection now handshakes in its own
    # thread, so a token is served while a silent client is connected.
    import ssl
    import time

    issuer = registry_token.token_issuer
    assert issuer is not None and registry_token.ca_cert is not None
    host, port = issuer.host.rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(registry_token.ca_cert))
    with socket.create_connection((host, int(port)), timeout=10):  # connects, sends nothing
        started = time.monotonic()
        with (
            socket.create_connection((host, int(port)), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            query = f"service={issuer.service}&scope=repository:x/y:pull"
            tls.sendall(
                f"GET /token?{query} HTTP/1.1\r\nHost: {issuer.host}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            answer = tls.recv(64)
        assert answer.startswith(b"HTTP/1.1 200"), answer
        assert time.monotonic() - started < 5
