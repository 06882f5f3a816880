"""The Basic/Bearer flow for one registry: `Authorizer`, with its `TokenCache`.

Basic sends the user's credentials with every request to the registry. Bearer sends them (or
nothing, anonymously) to the *realm* once, receives a short-lived token for a set of scopes,
and sends the token to the registry. `Authorizer` does both for one registry, caching tokens
per (realm, service, scopes) until shortly before they expire.

Where credentials may go is the one rule this module exists to enforce; see
`Authorizer.credential_for_realm` and the package README.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from lkpkg.errors import AuthError, RegistryError
from lkpkg.registry.challenge import (
    BASIC,
    BEARER,
    Challenge,
    Credential,
    Keychain,
    Scope,
    merge_scopes,
    scopes_cover,
)
from lkpkg.registry.transport import origin_of

log = logging.getLogger("lkpkg.registry")

# Spec: "expires_in ... When omitted, this defaults to 60 seconds."
DEFAULT_TOKEN_LIFETIME = 60.0
# A token is renewed this long before the issuer says it expires, so that one fetched now is
# still valid when the registry checks it after a slow request or clock skew. Capped at a fifth
# of the lifetime for issuers that hand out very short tokens.
TOKEN_EXPIRY_MARGIN = 15.0
# docker sends this client_id with OAuth2 token requests; issuers log it.
OAUTH_CLIENT_ID = "lkpkg"


# -- tokens ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Authorization:
    """An `Authorization` header value for one request. `fresh` is False when it came from the
    cache, so a 401 may mean it went stale and is worth renewing once."""

    header: str = field(repr=False)
    fresh: bool


@dataclass
class _CachedToken:
    scopes: tuple[Scope, ...]
    token: str = field(repr=False)
    expires: float


class TokenCache:
    """Bearer tokens per (realm, service), each remembered with the scopes it was asked for.

    A lookup is answered by any live token asked for with a superset of the wanted scopes, so
    that pulling after a push in the same repository reuses the push token. Tokens are opaque
    (the spec does not let a client read them), so "asked for" is all a client can know; an
    issuer that granted less is found out by the registry's 401 and the entry is dropped.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[tuple[str, str], list[_CachedToken]] = {}

    def get(self, realm: str, service: str, scopes: Sequence[Scope]) -> str | None:
        now = self._clock()
        entries = self._entries.get((realm, service), [])
        entries[:] = [e for e in entries if e.expires > now]
        for entry in entries:
            if scopes_cover(entry.scopes, scopes):
                return entry.token
        return None

    def put(
        self, realm: str, service: str, scopes: Sequence[Scope], token: str, lifetime: float
    ) -> None:
        margin = min(TOKEN_EXPIRY_MARGIN, lifetime / 5)
        entry = _CachedToken(tuple(scopes), token, self._clock() + lifetime - margin)
        self._entries.setdefault((realm, service), []).append(entry)

    def invalidate(self, realm: str, service: str, scopes: Sequence[Scope]) -> None:
        """Forget every token that would answer `scopes` (it was just refused)."""
        entries = self._entries.get((realm, service), [])
        entries[:] = [e for e in entries if not scopes_cover(e.scopes, scopes)]


# -- the flow ----------------------------------------------------------------------------------


SendRequest = Callable[[httpx.Request], httpx.Response]


# Registries whose token service lives on another host, by their own documentation. Naming
# Docker Hub in a docker config names its token service too (`docker login` sends the
# credentials there), so these pairs are not "a host the user did not name".
KNOWN_TOKEN_SERVICES: frozenset[tuple[str, str]] = frozenset(
    {("registry-1.docker.io", "auth.docker.io")}
)


class Authorizer:
    """Answers the challenges of one registry (`registry`, a host[:port]) for the client.

    Thread-safe: one lock guards the challenge and the token cache, and is held while a token
    is fetched so that concurrent requests for the same scopes wait for one fetch.
    """

    def __init__(
        self,
        registry: str,
        *,
        keychain: Keychain | None,
        send: SendRequest,
        plain_http_allowed: Callable[[str], bool],
        credential_host: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        # The name the keychain knows the registry by (docker.io for registry-1.docker.io).
        self._credential_host = credential_host or registry
        self._keychain = keychain
        self._send = send
        self._plain_http_allowed = plain_http_allowed
        self._cache = TokenCache(clock)
        self._challenge: Challenge | None = None
        self._lock = threading.RLock()
        # Why credentials were not used, for the AuthError message (never the credentials).
        # An ordered set: a note is kept once however often its cause repeats.
        self._notes: dict[str, None] = {}

    @property
    def challenge(self) -> Challenge | None:
        return self._challenge

    def adopt(self, challenges: Sequence[Challenge]) -> bool:
        """Take the best challenge of a `/v2/` ping or a 401; True if it changed."""
        chosen = _preferred(challenges)
        with self._lock:
            if chosen is None or chosen.same_endpoint(self._challenge):
                return False
            self._challenge = chosen
            return True

    def authorization(self, scopes: Sequence[Scope], action: str) -> Authorization | None:
        """The `Authorization` value for a request needing `scopes`, or None (anonymous)."""
        with self._lock:
            challenge = self._challenge
            if challenge is None:
                return None
            if challenge.scheme == BASIC:
                return self._basic()
            if challenge.scheme == BEARER:
                return self._bearer(challenge, merge_scopes(scopes), action)
            return None

    def refused(
        self, challenges: Sequence[Challenge], scopes: Sequence[Scope], used: Authorization | None
    ) -> bool:
        """After a 401: whether one more try with renewed authorization could succeed.

        Yes when the registry now asks differently (first challenge seen, or another realm),
        or when the refused token came from the cache (it may have expired or been revoked).
        A freshly fetched token or Basic credentials refused a second time will not improve.
        """
        changed = self.adopt(challenges)
        if self._challenge is None:
            return False
        self.invalidate(scopes)
        return changed or (used is not None and not used.fresh)

    def invalidate(self, scopes: Sequence[Scope]) -> None:
        """Drop cached tokens for `scopes`: the registry refused one of them."""
        with self._lock:
            challenge = self._challenge
            if challenge is not None and challenge.scheme == BEARER and challenge.realm:
                self._cache.invalidate(
                    challenge.realm, challenge.service or "", merge_scopes(scopes)
                )

    def sources_tried(self) -> str:
        """What the keychain consulted, plus why credentials were withheld, for messages."""
        tried = (
            self._keychain.sources_tried(self._credential_host)
            if self._keychain is not None
            else "none (no keychain)"
        )
        with self._lock:
            notes = list(self._notes)
        return "; ".join([tried, *notes])

    # -- Basic ------------------------------------------------------------------------------

    def _basic(self) -> Authorization | None:
        credential = self._resolve(self._credential_host)
        if credential is None:
            return None
        if credential.identity_token or credential.username is None:
            self._note(
                f"the identity token from {credential.source} cannot answer a Basic challenge"
            )
            return None
        pair = f"{credential.username}:{credential.secret}".encode()
        return Authorization(f"Basic {base64.b64encode(pair).decode()}", fresh=True)

    # -- Bearer -----------------------------------------------------------------------------

    def _bearer(
        self, challenge: Challenge, scopes: tuple[Scope, ...], action: str
    ) -> Authorization | None:
        realm = challenge.realm
        if realm is None:
            raise RegistryError(f"registry {self.registry} sent a Bearer challenge without a realm")
        service = challenge.service or ""
        cached = self._cache.get(realm, service, scopes)
        if cached is not None:
            return Authorization(f"Bearer {cached}", fresh=False)
        token, lifetime = self._fetch_token(realm, service, scopes, action)
        self._cache.put(realm, service, scopes, token, lifetime)
        return Authorization(f"Bearer {token}", fresh=True)

    def credential_for_realm(self, realm: str) -> Credential | None:
        """The credentials that may be sent to the token realm `realm`, or None.

        Stricter than docker (which sends the registry's credentials to whatever realm the
        registry names): the registry's credentials go only to a realm on the registry's own
        host:port, or to the token service a well-known registry documents as its own
        (`KNOWN_TOKEN_SERVICES`). A realm elsewhere gets the credentials the keychain holds
        for *that* host, if any, so a registry can never direct a user's password to a host
        the user did not name. Credentials never travel over plain http unless the realm host
        is one plain http is allowed for (loopback or a user-named insecure registry).
        """
        parts = urlsplit(realm)
        realm_host = origin_of(realm)[1]
        if parts.scheme not in ("https", "http") or not realm_host:
            raise RegistryError(f"registry {self.registry} named an invalid token realm '{realm}'")
        own = origin_of(f"{parts.scheme}://{self.registry}")[1]
        if realm_host == own or (self.registry, realm_host) in KNOWN_TOKEN_SERVICES:
            credential = self._resolve(self._credential_host)
        else:
            credential = self._resolve(realm_host)
            if credential is None and self._resolve(self._credential_host) is not None:
                self._note(
                    f"credentials for {self._credential_host} were not sent to the token realm"
                    f" on another host ({realm_host}); configure credentials for {realm_host}"
                    " to use it"
                )
        if (
            credential is not None
            and parts.scheme == "http"
            and not self._plain_http_allowed(realm_host)
        ):
            self._note(f"credentials not sent over plain http to {realm_host}")
            return None
        return credential

    def _fetch_token(
        self, realm: str, service: str, scopes: tuple[Scope, ...], action: str
    ) -> tuple[str, float]:
        credential = self.credential_for_realm(realm)
        scope_texts = [str(s) for s in scopes]
        if credential is not None and credential.identity_token:
            # docker's OAuth2 flow for identity tokens (token spec oauth.md): POST a form with
            # the refresh token; the secret goes in the body, never in a URL.
            form = {
                "grant_type": "refresh_token",
                "refresh_token": credential.secret,
                "client_id": OAUTH_CLIENT_ID,
                "service": service,
                "scope": " ".join(scope_texts),
            }
            request = httpx.Request("POST", realm, data=form)
        else:
            params: list[tuple[str, str | int | float | bool | None]] = (
                [("service", service)] if service else []
            )
            # One `scope` parameter per scope, as docker sends them (token.md).
            params.extend(("scope", s) for s in scope_texts)
            headers = {}
            if credential is not None and credential.username is not None:
                pair = f"{credential.username}:{credential.secret}".encode()
                headers["Authorization"] = f"Basic {base64.b64encode(pair).decode()}"
            request = httpx.Request("GET", realm, params=params, headers=headers)
        log.debug(
            "token request to %s for %s (%s)",
            urlsplit(realm).netloc,
            " ".join(scope_texts) or "no scope",
            "authenticated" if credential is not None else "anonymous",
        )
        response = self._send(request)
        try:
            body = response.read()
        finally:
            response.close()
        if response.status_code in (401, 403):
            raise AuthError(
                f"{action} refused: the token service at {urlsplit(realm).netloc} refused the"
                f" credentials ({response.status_code}); credentials tried: {self.sources_tried()}"
            )
        if response.status_code != 200:
            raise RegistryError(
                f"{action} failed: the token service at {urlsplit(realm).netloc} answered"
                f" {response.status_code} {response.reason_phrase}"
            )
        return _parse_token(body, realm)

    def _note(self, text: str) -> None:
        self._notes[text] = None

    def _resolve(self, host: str) -> Credential | None:
        return self._keychain.resolve(host) if self._keychain is not None else None


def _preferred(challenges: Sequence[Challenge]) -> Challenge | None:
    """Bearer before Basic (a registry offering both prefers tokens); others are ignored."""
    for scheme in (BEARER, BASIC):
        for challenge in challenges:
            if challenge.scheme == scheme:
                return challenge
    return None


def _parse_token(body: bytes, realm: str) -> tuple[str, float]:
    where = urlsplit(realm).netloc
    try:
        data = json.loads(body)
    except ValueError:
        raise RegistryError(f"the token service at {where} did not answer JSON") from None
    if not isinstance(data, dict):
        raise RegistryError(f"the token service at {where} answered JSON that is not an object")
    # `token` is docker's name, `access_token` OAuth2's; the spec allows either.
    token = data.get("token") or data.get("access_token")
    if not isinstance(token, str) or not token:
        raise RegistryError(f"the token service at {where} answered without a token")
    lifetime = data.get("expires_in")
    if not isinstance(lifetime, int | float) or isinstance(lifetime, bool) or lifetime <= 0:
        lifetime = DEFAULT_TOKEN_LIFETIME
    return token, float(lifetime)
