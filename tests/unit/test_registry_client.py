"""RegistryClient's protocol logic against an in-memory registry (tests/unit/fakeregistry.py).

The real-registry behaviour (TLS, Distribution's own answers, memory while streaming) is in
tests/integration/test_registry_client.py; these run in milliseconds and cover the branches a
real registry rarely takes.
"""

from __future__ import annotations

import base64
import io
import json
import ssl
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lkpkg.errors import (
    AuthError,
    DigestMismatch,
    NameUnknown,
    RegistryError,
    RegistryRefused,
    RegistryUnreachable,
)
from lkpkg.registry import Credential, RegistryClient, TransportConfig
from tests.unit.fakeregistry import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    FakeRegistry,
    Fault,
    sha256,
)

FAST = TransportConfig(
    backoff_initial=0.0, backoff_max=0.0, retry_after_max=5.0, use_env_proxies=False
)


_CONTEXT = ssl.create_default_context()


class LoopbackTls:
    """The TLS policy the client is handed: no TLS happens over a MockTransport."""

    def ssl_context_for(
        self, host: str, *, extra_ca: Path | None = None, config_dir: Path | None = None
    ) -> ssl.SSLContext:
        return _CONTEXT

    def plain_http_allowed(self, host: str, insecure_registries: Collection[str] = ()) -> bool:
        return host in insecure_registries


class Keys:
    def __init__(self, credentials: dict[str, Credential]) -> None:
        self.credentials = credentials
        self.asked: list[str] = []

    def resolve(self, registry: str) -> Credential | None:
        self.asked.append(registry)
        return self.credentials.get(registry)

    def sources_tried(self, registry: str) -> str:
        return "the test's keys" if registry in self.credentials else "none"


def credential(user: str = "wombat", secret: str = "s3cret") -> Credential:
    from lkpkg.auth.keychain import Credential as AuthCredential

    return AuthCredential(user, secret, source="test")


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def connect() -> Iterator[Callable[..., RegistryClient]]:
    made: list[RegistryClient] = []

    def make(fake: FakeRegistry, keychain: Any = None, **kwargs: Any) -> RegistryClient:
        kwargs.setdefault("config", FAST)
        client = RegistryClient(
            fake.host,
            keychain=keychain,
            tls=LoopbackTls(),
            http=fake.transport(),
            sleep=lambda _s: None,
            **kwargs,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def image(fake: FakeRegistry, repo: str, payload: bytes = b"layer") -> tuple[bytes, str]:
    """An image manifest whose blobs `repo` already holds; (bytes, digest)."""
    layer = fake.put_blob(repo, payload)
    config = fake.put_blob(repo, json.dumps({"architecture": "amd64", "os": "linux"}).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer}],
    }
    data = json.dumps(manifest).encode()
    return data, sha256(data)


# -- ping and scheme -------------------------------------------------------------------------


def test_ping_finds_https_and_happens_once(registry, connect):
    client = connect(registry)
    assert client.base_url == f"https://{registry.host}"
    client.blob_exists("lkpkg/a", sha256(b"x"))
    assert registry.count("GET", "/v2/") == 1


def test_a_ping_that_is_not_a_registry_answer_is_an_error(registry, connect):
    registry.fail(Fault("GET", "/v2/", status=404, times=5))
    with pytest.raises(RegistryError, match="is not a registry: GET /v2/ answered 404"):
        connect(registry).ping()


def test_ping_retries_a_busy_registry(registry, connect):
    registry.fail(Fault("GET", "/v2/", status=503, times=2))
    assert connect(registry).ping().startswith("https://")
    assert registry.count("GET", "/v2/") == 3


# -- blobs -----------------------------------------------------------------------------------


def test_upload_then_head_and_get_verify(registry, connect):
    client = connect(registry)
    data = b"hello blob" * 1000
    digest = sha256(data)
    assert client.blob_exists("lkpkg/a", digest) is None
    client.upload_blob("lkpkg/a", digest, len(data), lambda: io.BytesIO(data))
    assert registry.blobs[digest] == data
    assert client.blob_exists("lkpkg/a", digest) == len(data)
    sink = io.BytesIO()
    assert client.get_blob("lkpkg/a", digest, sink) == len(data)
    assert sink.getvalue() == data


def test_upload_of_a_blob_already_there_sends_nothing(registry, connect):
    digest = registry.put_blob("lkpkg/a", b"present")
    client = connect(registry)

    def opener() -> io.BytesIO:
        raise AssertionError("the blob was read although the registry had it")

    client.upload_blob("lkpkg/a", digest, 7, opener)
    assert registry.count("POST") == 0


def test_upload_of_wrong_content_is_stopped_before_the_registry_stores_it(registry, connect):
    client = connect(registry, config=TransportConfig(hash_uploads=True, **_fast()))
    declared = sha256(b"the right bytes")
    with pytest.raises(DigestMismatch, match="the content hashes to sha256:"):
        client.upload_blob("lkpkg/a", declared, 15, lambda: io.BytesIO(b"the wrong bytes"))
    assert declared not in registry.blobs
    assert not registry.uploads, "the abandoned session was not cancelled"


@pytest.mark.parametrize(
    ("content", "words"), [(b"short", "not the 6 declared"), (b"longer!", "longer than the 6")]
)
def test_upload_of_content_of_the_wrong_size_is_refused(registry, connect, content, words):
    with pytest.raises(DigestMismatch, match=words):
        connect(registry).upload_blob(
            "lkpkg/a", sha256(content[:6]), 6, lambda: io.BytesIO(content)
        )


def test_get_blob_that_does_not_hash_to_its_digest_is_a_mismatch(registry, connect):
    digest = registry.put_blob("lkpkg/a", b"stored")
    registry.blobs[digest] = b"tampered"
    with pytest.raises(DigestMismatch, match="hash to sha256:"):
        connect(registry).get_blob("lkpkg/a", digest, io.BytesIO())


def test_get_blob_of_a_missing_blob_is_name_unknown(registry, connect):
    with pytest.raises(NameUnknown, match="blob unknown to registry"):
        connect(registry).get_blob("lkpkg/a", sha256(b"none"), io.BytesIO())


def test_blob_from_another_repository_is_mounted(registry, connect):
    client = connect(registry)
    data = b"shared base layer"
    digest = sha256(data)
    client.upload_blob("lkpkg/first", digest, len(data), lambda: io.BytesIO(data))
    client.upload_blob("lkpkg/second", digest, len(data), lambda: io.BytesIO(data))
    assert client.mounted == 1
    assert digest in registry.links["lkpkg/second"]
    assert registry.count("PUT", "/blobs/uploads/") == 1
    # The mount is asked for at once: no HEAD in the second repository first.
    assert registry.count("HEAD", exact=f"/v2/lkpkg/second/blobs/{digest}") == 0


def test_a_refused_mount_falls_back_to_the_session_it_opened(registry, connect):
    client = connect(registry)
    data = b"not in the source"
    digest = sha256(data)
    client.upload_blob(
        "lkpkg/b", digest, len(data), lambda: io.BytesIO(data), mount_from="lkpkg/elsewhere"
    )
    assert client.mounted == 0
    assert digest in registry.links["lkpkg/b"]
    assert registry.count("POST", "/blobs/uploads/") == 1  # the mount's session was used


def test_a_broken_upload_restarts_from_a_new_session(registry, connect):
    registry.fail(Fault("PUT", "/blobs/uploads/", status=503, times=2))
    client = connect(registry)
    data = b"try, try again"
    opened = []

    def opener() -> io.BytesIO:
        opened.append(1)
        return io.BytesIO(data)

    client.upload_blob("lkpkg/a", sha256(data), len(data), opener)
    assert registry.blobs[sha256(data)] == data
    assert registry.count("POST", "/blobs/uploads/") == 3
    assert len(opened) == 3


def test_registry_saying_digest_invalid_is_a_mismatch(registry, connect):
    registry.fail(
        Fault(
            "PUT",
            "/blobs/uploads/",
            status=400,
            body=json.dumps({"errors": [{"code": "DIGEST_INVALID", "message": "no"}]}).encode(),
        )
    )
    data = b"bytes"
    with pytest.raises(DigestMismatch, match="DIGEST_INVALID"):
        connect(registry).upload_blob("lkpkg/a", sha256(data), len(data), lambda: io.BytesIO(data))


def test_a_blob_redirect_gets_no_credentials(registry, connect):
    registry.auth = "basic"
    digest = registry.put_blob("lkpkg/a", b"behind a CDN")
    store: list[httpx.Request] = []

    def redirect(request: httpx.Request) -> httpx.Response:
        return httpx.Response(307, headers={"Location": f"https://cdn.test/blob/{digest}"})

    registry.fail(Fault("GET", f"/blobs/{digest}", respond=redirect))

    def cdn(request: httpx.Request) -> httpx.Response:
        store.append(request)
        return httpx.Response(200, content=b"behind a CDN")

    registry.elsewhere = cdn
    client = connect(registry, Keys({registry.host: credential()}))
    sink = io.BytesIO()
    assert client.get_blob("lkpkg/a", digest, sink) == 12
    assert store and "Authorization" not in store[0].headers


# -- manifests -------------------------------------------------------------------------------


def test_manifest_put_by_tag_then_get_head_by_tag_and_digest(registry, connect):
    client = connect(registry)
    data, digest = image(registry, "lkpkg/a")
    assert client.put_manifest("lkpkg/a", "v1", data, OCI_MANIFEST) == digest
    for ref in ("v1", digest):
        got = client.get_manifest("lkpkg/a", ref)
        assert (got.data, got.media_type, got.digest) == (data, OCI_MANIFEST, digest)
        info = client.head_manifest("lkpkg/a", ref)
        assert info is not None
        assert (info.digest, info.media_type, info.size) == (digest, OCI_MANIFEST, len(data))
    assert client.head_manifest("lkpkg/a", "nope") is None


def test_manifest_naming_a_missing_blob_is_refused_by_the_registry(registry, connect):
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"digest": sha256(b"no config")},
        "layers": [],
    }
    with pytest.raises(RegistryRefused, match="MANIFEST_BLOB_UNKNOWN"):
        connect(registry).put_manifest(
            "lkpkg/a", "v1", json.dumps(manifest).encode(), DOCKER_MANIFEST
        )
    # Asked again, in case the registry was reading a link another client was rewriting.
    assert registry.count("PUT", "/manifests/v1") == FAST.attempts


# Distribution 2.8's answer to a manifest PUT that read a blob's link file while another
# client's upload of the same blob was rewriting it (truncate, then write): the empty link is
# an invalid digest, and the blob counts as unknown.
RELINKING = json.dumps(
    {
        "errors": [
            {"code": "DIGEST_INVALID", "message": "provided digest did not match uploaded content"},
            {"code": "MANIFEST_BLOB_UNKNOWN", "message": "blob unknown to registry"},
        ]
    }
).encode()


def test_a_manifest_refused_while_another_push_relinks_its_blob_is_put_again(registry, connect):
    client = connect(registry)
    data, digest = image(registry, "lkpkg/a")
    registry.fail(
        Fault(
            "PUT",
            "/manifests/v1",
            status=400,
            headers={"Content-Type": "application/json"},
            body=RELINKING,
            times=FAST.attempts - 1,
        )
    )
    assert client.put_manifest("lkpkg/a", "v1", data, OCI_MANIFEST) == digest
    assert registry.count("PUT", "/manifests/v1") == FAST.attempts
    assert client.get_manifest("lkpkg/a", "v1").digest == digest


def test_a_manifest_refused_for_another_reason_is_not_put_again(registry, connect):
    data, _ = image(registry, "lkpkg/a")
    body = json.dumps({"errors": [{"code": "MANIFEST_INVALID", "message": "manifest invalid"}]})
    registry.fail(Fault("PUT", "/manifests/v1", status=400, body=body.encode()))
    with pytest.raises(RegistryRefused, match="MANIFEST_INVALID"):
        connect(registry).put_manifest("lkpkg/a", "v1", data, OCI_MANIFEST)
    assert registry.count("PUT", "/manifests/v1") == 1


def test_put_manifest_refuses_bytes_that_are_not_their_digest(registry, connect):
    data, _ = image(registry, "lkpkg/a")
    with pytest.raises(DigestMismatch, match="hashes to"):
        connect(registry).put_manifest("lkpkg/a", sha256(b"other"), data, OCI_MANIFEST)
    assert registry.count("PUT") == 0


def test_a_registry_that_stores_under_another_digest_is_caught(registry, connect):
    data, _ = image(registry, "lkpkg/a")
    registry.reported_digest = sha256(b"something else")
    with pytest.raises(DigestMismatch, match="the registry stored it as"):
        connect(registry).put_manifest("lkpkg/a", "v1", data, OCI_MANIFEST)


def test_manifest_by_tag_is_checked_against_the_reported_digest(registry, connect):
    client = connect(registry)
    data, _ = image(registry, "lkpkg/a")
    client.put_manifest("lkpkg/a", "v1", data, OCI_MANIFEST)
    registry.reported_digest = sha256(b"a lie")
    with pytest.raises(DigestMismatch, match="the registry says sha256:"):
        client.get_manifest("lkpkg/a", "v1")


def test_head_without_digest_falls_back_to_get(registry, connect):
    client = connect(registry)
    data, digest = image(registry, "lkpkg/a")
    client.put_manifest("lkpkg/a", "v1", data, OCI_MANIFEST)
    registry.fail(
        Fault("HEAD", "/manifests/v1", status=200, headers={"Content-Type": "application/json"})
    )
    info = client.head_manifest("lkpkg/a", "v1")
    assert info is not None and info.digest == digest
    assert registry.count("GET", "/manifests/v1") == 1


def test_an_oversized_manifest_is_not_read(registry, connect):
    client = connect(registry, config=TransportConfig(max_manifest_bytes=64, **_fast()))
    data, _ = image(registry, "lkpkg/a")
    client.put_manifest("lkpkg/a", "v1", data, OCI_MANIFEST)
    with pytest.raises(RegistryRefused, match="larger than 64 bytes"):
        client.get_manifest("lkpkg/a", "v1")


def test_index_needs_its_manifests_first(registry, connect):
    client = connect(registry)
    data, digest = image(registry, "lkpkg/a")
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest, "size": len(data)}],
        }
    ).encode()
    with pytest.raises(RegistryRefused, match="MANIFEST_BLOB_UNKNOWN"):
        client.put_manifest("lkpkg/a", "v1", index, OCI_INDEX)
    client.put_manifest("lkpkg/a", digest, data, OCI_MANIFEST)
    assert client.put_manifest("lkpkg/a", "v1", index, OCI_INDEX) == sha256(index)


# -- tags ------------------------------------------------------------------------------------


def test_tags_follow_link_pagination(registry, connect):
    client = connect(registry)
    data, _ = image(registry, "lkpkg/a")
    names = [f"t{i:02d}" for i in range(7)]
    for name in names:
        client.put_manifest("lkpkg/a", name, data, OCI_MANIFEST)
    assert client.list_tags("lkpkg/a", page_size=3) == names
    assert registry.count("GET", "/tags/list") == 3


def test_tags_of_an_unknown_repository_is_name_unknown(registry, connect):
    with pytest.raises(NameUnknown, match="repository name not known"):
        connect(registry).list_tags("lkpkg/none")


# -- auth ------------------------------------------------------------------------------------


def test_basic_credentials_go_with_every_request(registry, connect):
    registry.auth = "basic"
    client = connect(registry, Keys({registry.host: credential()}))
    data, _ = image(registry, "lkpkg/a")
    client.put_manifest("lkpkg/a", "v1", data, OCI_MANIFEST)
    assert client.get_manifest("lkpkg/a", "v1").data == data


def test_basic_refused_is_an_auth_error_naming_the_source_not_the_secret(registry, connect):
    registry.auth = "basic"
    client = connect(registry, Keys({registry.host: credential(secret="wrong-secret")}))
    with pytest.raises(AuthError) as caught:
        client.list_tags("lkpkg/a")
    assert "the test's keys" in caught.value.message
    assert "wrong-secret" not in caught.value.message


def test_bearer_token_is_fetched_once_for_push_and_reused_for_pull(registry, connect):
    registry.auth = "bearer"
    client = connect(registry, Keys({registry.host: credential()}))
    data = b"layer"
    client.upload_blob("lkpkg/a", sha256(data), len(data), lambda: io.BytesIO(data))
    assert client.blob_exists("lkpkg/a", sha256(data)) == len(data)
    assert len(registry.token_requests) == 1
    assert registry.token_requests[0].url.params.get("scope") == "repository:lkpkg/a:pull,push"


def test_bearer_mount_asks_one_token_for_both_repositories(registry, connect):
    registry.auth = "bearer"
    client = connect(registry, Keys({registry.host: credential()}))
    data = b"shared"
    client.upload_blob("lkpkg/one", sha256(data), len(data), lambda: io.BytesIO(data))
    client.upload_blob("lkpkg/two", sha256(data), len(data), lambda: io.BytesIO(data))
    assert client.mounted == 1
    scopes = set(registry.token_requests[-1].url.params.get_list("scope"))
    assert scopes == {"repository:lkpkg/one:pull", "repository:lkpkg/two:pull,push"}


def test_credentials_are_not_sent_to_a_realm_on_another_host(connect):
    fake = FakeRegistry(auth="bearer", token_realm="https://auth.elsewhere.test/token")
    keys = Keys({fake.host: credential()})
    client = connect(fake, keys)
    with pytest.raises(AuthError, match="not sent to the token realm on another host"):
        client.list_tags("lkpkg/a")
    assert all("Authorization" not in r.headers for r in fake.token_requests)


# -- faults ----------------------------------------------------------------------------------


def test_retry_after_is_honoured_and_too_long_a_wait_fails_at_once(registry, connect):
    sleeps: list[float] = []
    client = RegistryClient(
        registry.host,
        keychain=None,
        tls=LoopbackTls(),
        http=registry.transport(),
        config=FAST,
        sleep=sleeps.append,
    )
    registry.fail(Fault("HEAD", "/blobs/", status=429, headers={"Retry-After": "2"}))
    assert client.blob_exists("lkpkg/a", sha256(b"x")) is None
    assert 2.0 in sleeps
    registry.fail(Fault("HEAD", "/blobs/", status=429, headers={"Retry-After": "3600"}))
    with pytest.raises(RegistryRefused, match="429"):
        client.blob_exists("lkpkg/a", sha256(b"x"))
    client.close()


def test_a_registry_failing_every_try_is_one_line_with_its_words(registry, connect):
    body = json.dumps({"errors": [{"code": "UNKNOWN", "message": "disk\nfull"}]}).encode()
    registry.fail(Fault("GET", "/tags/list", status=500, times=10, body=body))
    image(registry, "lkpkg/a")
    with pytest.raises(RegistryError) as caught:
        connect(registry).list_tags("lkpkg/a")
    assert caught.value.message == (
        f"list tags of {registry.host}/lkpkg/a failed: registry {registry.host} answered"
        " 500 Internal Server Error: disk full (UNKNOWN)"
    )


def test_a_connection_that_breaks_mid_blob_is_retried_into_a_rewound_sink(registry, connect):
    data = b"0123456789" * 100
    digest = registry.put_blob("lkpkg/a", data)

    def broken(request: httpx.Request) -> httpx.Response:
        def body() -> Iterator[bytes]:
            yield data[:100]
            raise httpx.ReadError("connection reset by peer")

        return httpx.Response(200, content=body())

    registry.fail(Fault("GET", f"/blobs/{digest}", respond=broken))
    sink = io.BytesIO()
    assert connect(registry).get_blob("lkpkg/a", digest, sink) == len(data)
    assert sink.getvalue() == data


def test_no_answer_at_all_is_unreachable(registry, connect):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    registry.fail(Fault("GET", "/v2/", respond=refuse, times=10))
    with pytest.raises(RegistryUnreachable, match=f"registry {registry.host} unreachable"):
        connect(registry).ping()


def _fast() -> dict[str, Any]:
    return {"backoff_initial": 0.0, "backoff_max": 0.0, "use_env_proxies": False}


# -- answers cut short, silence, and the words for them --------------------------------------


def cut_short(body: bytes) -> Callable[[httpx.Request], httpx.Response]:
    """An answer whose body breaks off half way, as a reset or a truncating proxy leaves it."""

    def respond(request: httpx.Request) -> httpx.Response:
        def chunks() -> Iterator[bytes]:
            yield body[: len(body) // 2]
            raise httpx.RemoteProtocolError("peer closed connection without sending complete body")

        return httpx.Response(200, headers={"Content-Length": str(len(body))}, content=chunks())

    return respond


def test_a_manifest_cut_short_is_read_again(registry, connect):
    client = connect(registry)
    data, digest = image(registry, "lkpkg/a")
    client.put_manifest("lkpkg/a", "v1", data, OCI_MANIFEST)
    registry.fail(Fault("GET", "/manifests/v1", respond=cut_short(data), times=2))
    assert client.get_manifest("lkpkg/a", "v1").digest == digest
    assert registry.count("GET", "/manifests/v1") == 3


def test_a_ping_cut_short_is_read_again(registry, connect):
    registry.fail(Fault("GET", "/v2/", respond=cut_short(b'{"ok": true}'), times=2))
    assert connect(registry).ping() == f"https://{registry.host}"


def test_a_token_cut_short_is_fetched_again(registry, connect):
    registry.auth = "bearer"
    registry.fail(Fault("GET", "/token", respond=cut_short(b'{"token": "abc"}')))
    client = connect(registry, Keys({registry.host: credential()}))
    assert client.blob_exists("lkpkg/a", sha256(b"x")) is None
    assert len(registry.token_requests) == 1  # the cut-short answer never reached the service


def test_silence_is_reported_as_no_answer_not_as_a_connection_failure(registry, connect):
    def silent(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out")

    registry.fail(Fault("GET", "/v2/", respond=silent, times=10))
    with pytest.raises(RegistryUnreachable) as caught:
        connect(registry).ping()
    assert caught.value.message.startswith(f"no answer from registry {registry.host} in ")
    assert "connecting" not in caught.value.message


def test_plain_http_registry_failing_is_not_described_as_tls(registry, connect):
    def https_refused(request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "https":
            try:
                raise ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
            except ssl.SSLError as cause:
                raise httpx.ConnectError("wrong version number") from cause
        raise httpx.ReadError("[Errno 104] Connection reset by peer") from ConnectionResetError(
            104, "Connection reset by peer"
        )

    registry.fail(Fault("GET", "/v2/", respond=https_refused, times=20))
    client = connect(registry, insecure=[registry.host])
    with pytest.raises(RegistryUnreachable) as caught:
        client.ping()
    assert "TLS" not in caught.value.message
    assert caught.value.message == f"registry {registry.host} unreachable: connection reset"


def test_with_deadline_bounds_every_socket_wait() -> None:
    config = TransportConfig.with_deadline(5.0)
    timeout = config.timeout()
    assert (timeout.connect, timeout.read, timeout.write) == (5.0, 5.0, 5.0)
    assert config.deadline == 5.0
    assert config.timeout(within=2.0).read == 2.0


def test_without_the_local_hash_the_registry_refuses_a_wrong_blob(registry, connect):
    config = TransportConfig(hash_uploads=False, **_fast())
    declared = sha256(b"the right bytes")
    with pytest.raises(DigestMismatch, match="DIGEST_INVALID"):
        connect(registry, config=config).upload_blob(
            "lkpkg/a", declared, 15, lambda: io.BytesIO(b"the wrong bytes")
        )
    assert declared not in registry.blobs


def test_without_the_local_hash_the_size_is_still_checked(registry, connect):
    config = TransportConfig(hash_uploads=False, **_fast())
    with pytest.raises(DigestMismatch, match="longer than the 6"):
        connect(registry, config=config).upload_blob(
            "lkpkg/a", sha256(b"short!"), 6, lambda: io.BytesIO(b"short!!")
        )


# -- push access preflight ---------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["basic", "bearer"])
def test_push_access_with_a_wrong_password_fails_before_any_blob_request(registry, connect, scheme):
    registry.auth = scheme
    client = connect(registry, Keys({registry.host: credential(secret="wrong-secret")}))
    with pytest.raises(AuthError) as caught:
        client.check_push_access("lkpkg/a")
    assert caught.value.exit_code == 4
    assert caught.value.hint is not None and "docker login registry.test" in caught.value.hint
    assert "wrong-secret" not in caught.value.message
    assert "\n" not in caught.value.message
    # Nothing was uploaded or opened, and no blob was asked for.
    assert registry.uploads == {}
    assert registry.count("PUT") == registry.count("PATCH") == registry.count("HEAD") == 0


def test_push_access_with_basic_opens_one_upload_and_cancels_it(registry, connect):
    registry.auth = "basic"
    client = connect(registry, Keys({registry.host: credential()}))
    client.check_push_access("lkpkg/a")
    assert registry.count("POST", "/blobs/uploads/") == 1
    assert registry.count("DELETE", "/blobs/uploads/") == 1
    assert registry.uploads == {}
    assert registry.blobs == {}


def test_push_access_with_bearer_fetches_the_push_token_the_upload_then_reuses(registry, connect):
    registry.auth = "bearer"
    client = connect(registry, Keys({registry.host: credential()}))
    client.check_push_access("lkpkg/a")
    assert len(registry.token_requests) == 1
    assert registry.token_requests[0].url.params.get_list("scope") == [
        "repository:lkpkg/a:pull,push"
    ]
    assert [m for m, _, _ in registry.requests] == ["GET", "GET"]  # ping and the token
    client.upload_blob("lkpkg/a", sha256(b"layer"), 5, lambda: io.BytesIO(b"layer"))
    assert len(registry.token_requests) == 1


def test_push_access_to_an_open_registry_costs_only_the_ping(registry, connect):
    client = connect(registry)
    client.check_push_access("lkpkg/a")
    assert [(m, p) for m, p, _ in registry.requests] == [("GET", "/v2/")]


def _jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.c2ln"


def test_push_access_refuses_a_token_that_grants_only_pull(registry, connect):
    registry.auth = "bearer"
    pull_only = _jwt({"access": [{"type": "repository", "name": "lkpkg/a", "actions": ["pull"]}]})

    def token_service(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"token": pull_only, "expires_in": 300})

    registry.fail(Fault("GET", "/token", respond=token_service))
    client = connect(registry, Keys({registry.host: credential()}))
    with pytest.raises(AuthError) as caught:
        client.check_push_access("lkpkg/a")
    assert "granted pull on lkpkg/a, not push" in caught.value.message
    assert registry.uploads == {}
