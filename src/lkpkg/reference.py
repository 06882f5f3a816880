"""Image references: parse, validate and normalise `[domain/]path[:tag][@digest]`.

The grammar is docker/distribution's:

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ domain "/" ] path
    domain     := host [ ":" port ]
    host       := dns-label ( "." dns-label )* | "[" ipv6 "]"
    path       := component ( "/" component )*
    component  := [a-z0-9]+ ( ( [._] | "__" | "-"+ ) [a-z0-9]+ )*
    tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
    digest     := "sha256:" 64 lowercase hex | "sha512:" 128 lowercase hex

Normalisation follows docker: the first component is a domain only if it contains "." or ":"
or is "localhost"; otherwise the domain is docker.io. `index.docker.io` is docker.io, and a
one-component path on docker.io gets the `library/` namespace. A `Reference` is always valid
and normalised, however it was built, so its `str()` is the one fully qualified spelling that
caches and registries key on.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from typing import Self

from lkpkg.errors import ReferenceError_
from lkpkg.oci.digest import invalid_digest_reason

DOCKER_HUB = "docker.io"
DOCKER_HUB_LEGACY = "index.docker.io"
DOCKER_HUB_REGISTRY = "registry-1.docker.io"
OFFICIAL_NAMESPACE = "library"

# distribution limits the repository name, not the whole reference.
MAX_PATH_LENGTH = 255

_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DNS_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
_PORT = re.compile(r"[0-9]+")
_IPV6_CHARS = re.compile(r"[0-9A-Fa-f:.]+")
# Spelled out rather than `\w`, which in Python also matches non-ASCII letters.
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# docker refuses a bare image ID where a name is expected, so that `docker run <id>` can never
# be mistaken for a pull of a repository that happens to be named like an ID.
_IMAGE_ID = re.compile(r"[a-f0-9]{64}")


class _Invalid(Exception):
    """Why a reference is invalid; turned into a `ReferenceError_` naming the whole input."""


def is_valid_tag(tag: str) -> bool:
    """Whether `tag` is a valid tag: 1-128 of `[A-Za-z0-9_.-]`, not starting with `.` or `-`."""
    return _TAG.fullmatch(tag) is not None


@dataclass(frozen=True)
class Reference:
    """A normalised image reference. Construct with `Reference.parse` or directly; both
    validate, and direct construction normalises the domain and path the same way."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        try:
            domain, path = _normalise(self.domain, self.path, self.tag, self.digest)
        except _Invalid as e:
            raise ReferenceError_(f"invalid reference '{_compose(self)}': {e}") from None
        object.__setattr__(self, "domain", domain)
        object.__setattr__(self, "path", path)

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse `text`; raise `ReferenceError_("invalid reference 'X': <why>")` if invalid."""
        try:
            domain, path, tag, digest = _split(text)
            if domain is None and _IMAGE_ID.fullmatch(path) and tag is None and digest is None:
                raise _Invalid("a 64-character hex string is an image ID, not a repository name")
            domain, path = _normalise(domain or DOCKER_HUB, path, tag, digest)
        except _Invalid as e:
            raise ReferenceError_(f"invalid reference '{text}': {e}") from None
        return cls(domain, path, tag, digest)

    @property
    def name(self) -> str:
        """The fully qualified repository: `docker.io/library/debian`."""
        return f"{self.domain}/{self.path}"

    @property
    def registry_host(self) -> str:
        """The host to speak the registry API to; Docker Hub serves it from another name."""
        return DOCKER_HUB_REGISTRY if self.domain == DOCKER_HUB else self.domain

    def with_tag(self, tag: str) -> Reference:
        """The same repository with `tag`; a digest, if any, is kept (as docker does)."""
        if not is_valid_tag(tag):
            raise ReferenceError_(f"invalid reference '{self.name}:{tag}': {_tag_reason(tag)}")
        return replace(self, tag=tag)

    def with_digest(self, digest: str) -> Reference:
        """The same repository pinned to `digest`; a tag, if any, is kept (as docker does)."""
        reason = invalid_digest_reason(digest)
        if reason is not None:
            raise ReferenceError_(f"invalid reference '{self.name}@{digest}': {reason}")
        return replace(self, digest=digest)

    def familiar(self) -> str:
        """docker's short spelling: `debian:bookworm`, `wombat/hello:tag`, `localhost:5000/x:y`.

        docker.io and `library/` are dropped only when the short form parses back to this same
        reference: `docker.io/foo.bar/x` stays as it is, or `foo.bar` would read as a domain.
        """
        short = self.name
        if self.domain == DOCKER_HUB:
            first = self.path.split("/", 1)[0]
            if not _looks_like_domain(first):
                short = self.path
                rest = self.path.removeprefix(f"{OFFICIAL_NAMESPACE}/")
                if rest != self.path and "/" not in rest:
                    short = rest
        return short + _suffix(self.tag, self.digest)

    def __str__(self) -> str:
        return self.name + _suffix(self.tag, self.digest)


def _suffix(tag: str | None, digest: str | None) -> str:
    return (f":{tag}" if tag is not None else "") + (f"@{digest}" if digest is not None else "")


def _compose(ref: Reference) -> str:
    return f"{ref.domain}/{ref.path}" + _suffix(ref.tag, ref.digest)


def _looks_like_domain(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def _split(text: str) -> tuple[str | None, str, str | None, str | None]:
    """Cut `text` into (domain or None, path, tag, digest) without validating the parts."""
    if not text:
        raise _Invalid("empty reference")
    rest, at, digest = text.partition("@")
    if at and not digest:
        raise _Invalid("nothing after '@' (expected a digest)")
    tag = None
    colon = rest.rfind(":")
    # A colon before the last slash belongs to the domain's port, not to a tag.
    if colon > rest.rfind("/"):
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not tag:
            raise _Invalid("nothing after ':' (expected a tag)")
    if not rest:
        raise _Invalid("missing repository name")
    first, slash, remainder = rest.partition("/")
    if slash and _looks_like_domain(first):
        return first, remainder, tag, digest or None
    return None, rest, tag, digest or None


def _normalise(domain: str, path: str, tag: str | None, digest: str | None) -> tuple[str, str]:
    """Validate every part; return the normalised (domain, path)."""
    _check_domain(domain)
    if domain == DOCKER_HUB_LEGACY:
        domain = DOCKER_HUB
    if domain == DOCKER_HUB and path and "/" not in path:
        path = f"{OFFICIAL_NAMESPACE}/{path}"
    _check_path(path)
    if tag is not None and not is_valid_tag(tag):
        raise _Invalid(_tag_reason(tag))
    if digest is not None:
        reason = invalid_digest_reason(digest)
        if reason is not None:
            raise _Invalid(f"bad digest: {reason}")
    return domain, path


def _check_domain(domain: str) -> None:
    if not domain:
        raise _Invalid("empty domain")
    if domain.startswith("["):
        end = domain.find("]")
        if end < 0:
            raise _Invalid(f"unterminated '[' in domain '{domain}'")
        host, port = domain[1:end], domain[end + 1 :]
        try:
            # The character check refuses zone IDs (`%eth0`), which `ipaddress` would accept
            # but which have no place in a reference.
            if not _IPV6_CHARS.fullmatch(host):
                raise ValueError(host)
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _Invalid(f"'{host}' in brackets is not an IPv6 address") from None
        if port:
            if not port.startswith(":"):
                raise _Invalid(f"unexpected '{port}' after the IPv6 address in '{domain}'")
            _check_port(port[1:], domain)
        return
    host, colon, port = domain.partition(":")
    if ":" in port:
        raise _Invalid(f"domain '{domain}' has several ':'; an IPv6 host goes in brackets")
    labels = host.split(".")
    if not all(_DNS_LABEL.fullmatch(label) for label in labels):
        raise _Invalid(f"invalid domain '{host}'")
    if colon:
        _check_port(port, domain)


def _check_port(port: str, domain: str) -> None:
    if not _PORT.fullmatch(port) or not 0 < int(port) < 65536:
        raise _Invalid(f"invalid port '{port}' in domain '{domain}'")


def _check_path(path: str) -> None:
    for component in path.split("/"):
        if not component:
            raise _Invalid("empty path component (doubled, leading or trailing '/')")
        if not _PATH_COMPONENT.fullmatch(component):
            if _PATH_COMPONENT.fullmatch(component.lower()):
                raise _Invalid("repository name must be lowercase")
            raise _Invalid(
                f"invalid path component '{component}' (lowercase letters and digits,"
                " separated by '.', '_', '__' or dashes)"
            )
    if len(path) > MAX_PATH_LENGTH:
        raise _Invalid(f"repository name is {len(path)} characters, longer than {MAX_PATH_LENGTH}")


def _tag_reason(tag: str) -> str:
    if len(tag) > 128:
        return f"tag is {len(tag)} characters, longer than 128"
    return f"invalid tag '{tag}' (letters, digits, '_', '.', '-'; not starting with '.' or '-')"


# The org grammar: what `--org`, `LINUXKIT_PKG_ORG` and build.yml `org:` may say. An org is a
# repository-path prefix, optionally led by a registry domain (`localhost:5000/wombat`,
# `ghcr.io/acme`, or a bare `localhost:5000`); the image name is appended after a `/`.


def split_host(name: str) -> tuple[str | None, str]:
    """Split `ghcr.io/foo` into (`ghcr.io`, `foo`); a name without a domain gives (None, name).

    The first component is a domain by docker's rule (see `_looks_like_domain`). Unlike docker
    no `/` is needed after it: an org is always followed by `/image`.
    """
    first, _, rest = name.partition("/")
    if _looks_like_domain(first):
        return first, rest
    return None, name


def repository_path_problem(path: str) -> str | None:
    """Why `path` is not a repository path (`a/b-c/d`, no domain), or None if it is."""
    if not path:
        return "must not be empty"
    try:
        _check_path(path)
    except _Invalid as e:
        return str(e)
    return None


def org_problem(org: str) -> str | None:
    """Why `org` is not a valid org, or None if it is."""
    if not org:
        return "must not be empty"
    host, path = split_host(org)
    if host is not None:
        try:
            _check_domain(host)
        except _Invalid as e:
            return str(e)
        if not path:
            return "must not end with '/'" if org.endswith("/") else None
    return repository_path_problem(path)


def validate_org(org: str, source: str = "org") -> None:
    """Raise `ReferenceError_` (exit 2) when `org`, given as `source`, is not a valid org."""
    problem = org_problem(org)
    if problem is not None:
        raise ReferenceError_(f"invalid {source} '{_printable(org)}': {problem}")


def _printable(text: str) -> str:
    shown = text if len(text) <= 80 else text[:80] + "..."
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in shown)
