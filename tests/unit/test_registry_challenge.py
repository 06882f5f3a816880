"""WWW-Authenticate parsing, scopes, Link headers and the token cache: pure functions."""

from __future__ import annotations

import httpx
import pytest

from lkpkg.auth.keychain import Credential
from lkpkg.registry.authorizer import Authorizer, TokenCache
from lkpkg.registry.challenge import (
    Challenge,
    Scope,
    merge_scopes,
    parse_www_authenticate,
    repository_scope,
)
from lkpkg.registry.tags import next_link
from lkpkg.registry.transport import TransportConfig, origin_of, parse_retry_after


def test_distribution_bearer_challenge() -> None:
    header = (
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:wombat/hello:pull,push",error="insufficient_scope"'
    )
    [challenge] = parse_www_authenticate(header)
    assert challenge.scheme == "bearer"
    assert challenge.realm == "https://auth.example.com/token"
    assert challenge.service == "registry.example.com"
    assert challenge.error == "insufficient_scope"
    # The comma inside the quoted scope is part of the value, not a separator.
    assert challenge.scopes == (Scope("repository", "wombat/hello", ("pull", "push")),)


def test_basic_challenge_and_case_insensitive_names() -> None:
    [challenge] = parse_www_authenticate('BASIC Realm="Registry Realm"')
    assert challenge.scheme == "basic"
    assert challenge.realm == "Registry Realm"


def test_several_challenges_in_one_header() -> None:
    found = parse_www_authenticate('Basic realm="a, b", Bearer realm="https://t/x",service=s')
    assert [c.scheme for c in found] == ["basic", "bearer"]
    assert found[0].realm == "a, b"
    assert found[1].realm == "https://t/x"
    assert found[1].service == "s"


def test_several_header_values() -> None:
    found = parse_www_authenticate(['Basic realm="r"', 'Bearer realm="https://t"'])
    assert [c.scheme for c in found] == ["basic", "bearer"]


def test_quoted_string_escapes_and_spaces_around_equals() -> None:
    [challenge] = parse_www_authenticate(r'Bearer realm = "a \"quoted\" \\ realm" , service=x')
    assert challenge.realm == 'a "quoted" \\ realm'
    assert challenge.service == "x"


def test_token68_challenge_then_another() -> None:
    found = parse_www_authenticate('Negotiate YWJjZA==, Basic realm="r"')
    assert found[0] == Challenge("negotiate", {}, "YWJjZA==")
    assert found[1].scheme == "basic"
    assert found[1].realm == "r"


def test_scheme_without_parameters() -> None:
    found = parse_www_authenticate("Basic, Bearer realm=x")
    assert [c.scheme for c in found] == ["basic", "bearer"]
    assert found[0].params == {}


def test_duplicate_parameter_keeps_the_first() -> None:
    [challenge] = parse_www_authenticate('Bearer realm="first",realm="second"')
    assert challenge.realm == "first"


@pytest.mark.parametrize(
    ("header", "schemes"),
    [
        ("", []),
        ("   ,  ", []),
        ('Bearer realm="unterminated', ["bearer"]),
        ('Bearer realm="ok", @@@', ["bearer"]),
    ],
)
def test_malformed_headers_keep_what_parsed(header: str, schemes: list[str]) -> None:
    assert [c.scheme for c in parse_www_authenticate(header)] == schemes


def test_unterminated_quote_drops_only_that_parameter() -> None:
    [challenge] = parse_www_authenticate('Bearer service=s,realm="unterminated')
    assert challenge.service == "s"
    assert challenge.realm is None


def test_scope_parse_and_print() -> None:
    scope = Scope.parse("repository:library/debian:push,pull")
    assert scope == Scope("repository", "library/debian", ("pull", "push"))
    assert str(scope) == "repository:library/debian:pull,push"
    assert Scope.parse("registry:catalog:*") == Scope("registry", "catalog", ("*",))
    assert Scope.parse("nonsense") is None
    assert Scope.parse("repository::pull") is None


def test_merge_scopes_unions_actions_per_repository() -> None:
    merged = merge_scopes(
        [
            repository_scope("a", "pull"),
            repository_scope("b", "pull"),
            repository_scope("a", "push"),
        ]
    )
    assert [str(s) for s in merged] == ["repository:a:pull,push", "repository:b:pull"]


def test_token_cache_reuses_a_wider_token_and_expires() -> None:
    now = [1000.0]
    cache = TokenCache(clock=lambda: now[0])
    push = (repository_scope("a", "pull", "push"),)
    pull = (repository_scope("a", "pull"),)
    cache.put("https://t", "svc", push, "tok", lifetime=300)
    assert cache.get("https://t", "svc", pull) == "tok"
    assert cache.get("https://t", "svc", push) == "tok"
    assert cache.get("https://t", "svc", (repository_scope("b", "pull"),)) is None
    assert cache.get("https://t", "other", pull) is None
    now[0] += 300 - 16
    assert cache.get("https://t", "svc", pull) == "tok"
    # Renewed before the issuer's expiry, not after.
    now[0] += 2
    assert cache.get("https://t", "svc", pull) is None


def test_token_cache_narrow_token_does_not_answer_wider_request() -> None:
    cache = TokenCache(clock=lambda: 0.0)
    cache.put("r", "s", (repository_scope("a", "pull"),), "pull-only", lifetime=60)
    assert cache.get("r", "s", (repository_scope("a", "pull", "push"),)) is None


def test_token_cache_invalidate() -> None:
    cache = TokenCache(clock=lambda: 0.0)
    scopes = (repository_scope("a", "pull"),)
    cache.put("r", "s", scopes, "t", lifetime=60)
    cache.invalidate("r", "s", scopes)
    assert cache.get("r", "s", scopes) is None


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (['</v2/a/tags/list?last=b&n=2>; rel="next"'], "/v2/a/tags/list?last=b&n=2"),
        (["<https://r/v2/x?n=1>;rel=next"], "https://r/v2/x?n=1"),
        (['<https://r/prev>; rel="prev", <https://r/next>; rel="next"'], "https://r/next"),
        (['<https://r/a>; title="x"; rel="last next"'], "https://r/a"),
        (['<https://r/prev>; rel="prev"'], None),
        ([], None),
    ],
)
def test_next_link(values: list[str], expected: str | None) -> None:
    assert next_link(values) == expected


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://Registry.example:443/v2/", ("https", "registry.example")),
        ("http://localhost:80/v2/", ("http", "localhost")),
        ("https://localhost:5000/v2/", ("https", "localhost:5000")),
        ("https://user@host:5000/x", ("https", "host:5000")),
    ],
)
def test_origin_of(url: str, origin: tuple[str, str]) -> None:
    assert origin_of(url) == origin


def test_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None


def test_backoff_grows_and_is_capped() -> None:
    config = TransportConfig(backoff_initial=1.0, backoff_max=4.0)
    assert 0.5 <= config.backoff(0) <= 1.0
    assert 1.0 <= config.backoff(1) <= 2.0
    assert 2.0 <= config.backoff(5) <= 4.0


class _OneCredential:
    """A keychain holding one credential for one registry name (the docker config's view)."""

    def __init__(self, registry: str) -> None:
        self.registry = registry

    def resolve(self, registry: str) -> Credential | None:
        return Credential("user", "s3cret", source="test") if registry == self.registry else None

    def sources_tried(self, registry: str) -> str:
        return "test"


def _never_sent(request: httpx.Request) -> httpx.Response:
    raise AssertionError("choosing credentials for a realm sends nothing")


def _authorizer(registry: str, credential_host: str) -> Authorizer:
    return Authorizer(
        registry,
        keychain=_OneCredential(credential_host),
        send=_never_sent,
        plain_http_allowed=lambda host: False,
        credential_host=credential_host,
    )


def test_docker_hub_credentials_go_to_hubs_own_token_service_only():
    hub = _authorizer("registry-1.docker.io", "docker.io")
    assert hub.credential_for_realm("https://auth.docker.io/token") is not None
    assert hub.credential_for_realm("https://evil.example.com/token") is None
    other = _authorizer("ghcr.io", "ghcr.io")
    assert other.credential_for_realm("https://auth.docker.io/token") is None
    assert other.credential_for_realm("https://ghcr.io/token") is not None
