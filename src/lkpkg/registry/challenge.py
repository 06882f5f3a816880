"""Registry authentication's vocabulary: `WWW-Authenticate` parsing, scopes, credentials.

A registry announces how it wants to be authenticated in the `WWW-Authenticate` header of a
401 (RFC 7235 section 4.1; docker's token spec, distribution docs/spec/auth/token.md):

    Basic realm="registry"
    Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"

The flow that answers them (Basic, Bearer, tokens) is `authorizer.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

log = logging.getLogger("lkpkg.registry")

BASIC = "basic"
BEARER = "bearer"


PULL = "pull"
PUSH = "push"


# -- credentials: the interface lkpkg.auth implements -------------------------------------


class Credential(Protocol):
    """One registry's credentials. `secret` is a password or token and is never logged."""

    @property
    def username(self) -> str | None: ...
    @property
    def secret(self) -> str: ...
    @property
    def identity_token(self) -> bool: ...
    @property
    def source(self) -> str: ...


class Keychain(Protocol):
    """Finds credentials for a registry host (`lkpkg.auth.Keychain`)."""

    def resolve(self, registry: str) -> Credential | None: ...

    def sources_tried(self, registry: str) -> str: ...


# -- WWW-Authenticate ----------------------------------------------------------------------


@dataclass(frozen=True)
class Challenge:
    """One challenge of a `WWW-Authenticate` header: a scheme and its parameters.

    The scheme and parameter names are lowercased (both are case-insensitive, RFC 7235 2.1);
    values keep their case. `token68` holds the rare non-parameter form (`Negotiate abc==`).
    """

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)
    token68: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "scheme", self.scheme.lower())
        object.__setattr__(
            self, "params", MappingProxyType({k.lower(): v for k, v in self.params.items()})
        )

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scopes(self) -> tuple[Scope, ...]:
        """The scopes named by a Bearer challenge (space-separated, as in the token request)."""
        found = []
        for text in (self.params.get("scope") or "").split():
            scope = Scope.parse(text)
            if scope is not None:
                found.append(scope)
        return tuple(found)

    @property
    def error(self) -> str | None:
        """RFC 6750 section 3.1 `error`, e.g. `insufficient_scope` or `invalid_token`."""
        return self.params.get("error")

    def same_endpoint(self, other: Challenge | None) -> bool:
        """Whether `other` asks for the same scheme at the same realm and service."""
        return (
            other is not None
            and self.scheme == other.scheme
            and self.realm == other.realm
            and self.service == other.service
        )


# RFC 7230 section 3.2.6 tchar, the characters of a token.
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
# RFC 7235 section 2.1 token68 adds these (and trailing "=").
_TOKEN68 = _TCHAR | frozenset("/")
_OWS = " \t"


def parse_www_authenticate(values: str | Iterable[str]) -> list[Challenge]:
    """Every challenge in one or several `WWW-Authenticate` header values, in order.

    Lenient like browsers: a malformed tail ends parsing and what was parsed so far is kept,
    because a registry's one odd header must not hide a usable Bearer challenge before it.
    """
    texts = [values] if isinstance(values, str) else list(values)
    challenges: list[Challenge] = []
    for text in texts:
        challenges.extend(_Parser(text).challenges())
    return challenges


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def challenges(self) -> list[Challenge]:
        found: list[Challenge] = []
        scheme: str | None = None
        params: dict[str, str] = {}
        token68: str | None = None
        while True:
            self._skip(_OWS + ",")
            if self.pos >= len(self.text):
                break
            start = self.pos
            word = self._token(_TCHAR)
            if not word:
                break  # not a token: malformed from here on
            after_word = self.pos
            self._skip(_OWS)
            if self._peek() == "=" and scheme is not None and not self._is_token68_tail():
                self.pos += 1
                self._skip(_OWS)
                value = self._quoted() if self._peek() == '"' else self._token(_TCHAR)
                if value is None:
                    break
                params.setdefault(word.lower(), value)
                continue
            if scheme is not None and not params and token68 is None and self._peek() in "=,":
                # `Scheme token68`: the word (and any trailing "=") is the credential blob.
                self.pos = start
                token68 = self._token(_TOKEN68) + self._run("=")
                continue
            if scheme is not None:
                found.append(Challenge(scheme, params, token68))
            self.pos = after_word
            scheme, params, token68 = word, {}, None
            if self._peek() == "=":
                break  # `=` right after a scheme: malformed
        if scheme is not None:
            found.append(Challenge(scheme, params, token68))
        return found

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _skip(self, chars: str) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1

    def _run(self, chars: str) -> str:
        start = self.pos
        self._skip(chars)
        return self.text[start : self.pos]

    def _token(self, alphabet: frozenset[str]) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in alphabet:
            self.pos += 1
        return self.text[start : self.pos]

    def _is_token68_tail(self) -> bool:
        """At `=`: whether the `=`s end the element (token68 padding), not start a value."""
        end = self.pos
        while end < len(self.text) and self.text[end] == "=":
            end += 1
        rest = self.text[end:].lstrip(_OWS)
        return end - self.pos > 1 or rest == "" or rest.startswith(",")

    def _quoted(self) -> str | None:
        """A quoted-string (RFC 7230 3.2.6): backslash escapes any one character."""
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == '"':
                return "".join(out)
            if char == "\\" and self.pos < len(self.text):
                char = self.text[self.pos]
                self.pos += 1
            out.append(char)
        return None  # unterminated


# -- scopes --------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Scope:
    """A resource scope of docker's token spec: `repository:wombat/hello:pull,push`."""

    kind: str
    name: str
    actions: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Scope | None:
        kind, colon, rest = text.partition(":")
        name, colon2, actions = rest.rpartition(":")
        if not colon or not colon2 or not kind or not name:
            return None
        return cls(kind, name, tuple(sorted({a for a in actions.split(",") if a})))

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}:{','.join(self.actions)}"

    def covers(self, other: Scope) -> bool:
        return (
            self.kind == other.kind
            and self.name == other.name
            and set(other.actions) <= set(self.actions)
        )


def repository_scope(repository: str, *actions: str) -> Scope:
    return Scope("repository", repository, tuple(sorted(set(actions))))


def merge_scopes(scopes: Iterable[Scope]) -> tuple[Scope, ...]:
    """One scope per resource with the union of its actions, in a stable order."""
    merged: dict[tuple[str, str], set[str]] = {}
    for scope in scopes:
        merged.setdefault((scope.kind, scope.name), set()).update(scope.actions)
    return tuple(
        sorted(Scope(kind, name, tuple(sorted(acts))) for (kind, name), acts in merged.items())
    )


def scopes_cover(granted: Sequence[Scope], wanted: Sequence[Scope]) -> bool:
    """Whether the `granted` scopes include every `wanted` one."""
    return all(any(g.covers(w) for g in granted) for w in wanted)
