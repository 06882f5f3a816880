"""Docker's client configuration file, `config.json`, as far as credentials are concerned.

Only the keys that decide where credentials come from are read: `auths`, `credsStore` and
`credHelpers`. Everything else in the file (proxies, aliases, contexts, ...) is ignored, as
another docker version's unknown keys would be.

Key matching follows docker's file store: an exact key first, then any key that names the same
host once a `http://`/`https://` scheme and a trailing path are cut off (docker's
`ConvertToHostname`). Docker Hub is special: docker files it under `https://index.docker.io/v1/`,
and lkpkg also accepts the host spellings `index.docker.io`, `docker.io` and
`registry-1.docker.io` that hand-written configs use.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

# Re-exported: the location has its own module (configdir.py), which a registry client needs
# without this reader.
from lkpkg.auth.configdir import default_config_dir as default_config_dir
from lkpkg.errors import AuthConfigError
from lkpkg.reference import DOCKER_HUB, DOCKER_HUB_LEGACY, DOCKER_HUB_REGISTRY

CONFIG_FILE_NAME = "config.json"
# The key `docker login` writes for Docker Hub, and the server URL docker hands a credential
# helper for it; a relic of the v1 index API that every docker version still uses.
DOCKER_HUB_SERVER = "https://index.docker.io/v1/"
DOCKER_HUB_HOSTS = frozenset({DOCKER_HUB, DOCKER_HUB_LEGACY, DOCKER_HUB_REGISTRY})

_SCHEMES = ("https://", "http://")


def strip_key(key: str) -> str:
    """A config key or registry cut down to `host[:port]`: scheme and any path removed."""
    for scheme in _SCHEMES:
        if key[: len(scheme)].lower() == scheme:
            key = key[len(scheme) :]
            break
    return key.split("/", 1)[0]


def is_docker_hub(registry: str) -> bool:
    """Whether `registry` (a domain, host or config key) names Docker Hub."""
    return registry == DOCKER_HUB_SERVER or strip_key(registry).lower() in DOCKER_HUB_HOSTS


def server_address(registry: str) -> str:
    """The name docker uses for `registry` in config keys and in what it sends to a helper:
    `https://index.docker.io/v1/` for Docker Hub, the bare `host[:port]` for any other."""
    return DOCKER_HUB_SERVER if is_docker_hub(registry) else strip_key(registry)


def matching_keys(keys: list[str], registry: str) -> list[str]:
    """The keys among `keys` that name `registry`, best first: docker's exact key, then the
    others in file order."""
    exact = server_address(registry)
    if is_docker_hub(registry):
        same = [k for k in keys if k != exact and is_docker_hub(k)]
    else:
        wanted = exact.lower()
        same = [k for k in keys if k != exact and strip_key(k).lower() == wanted]
    return ([exact] if exact in keys else []) + same


@dataclass(frozen=True)
class AuthEntry:
    """One `auths` entry, decoded. Secrets are left out of `repr`."""

    key: str
    username: str | None
    password: str | None = field(default=None, repr=False)
    identity_token: str | None = field(default=None, repr=False)

    @property
    def empty(self) -> bool:
        """True for the `{}` placeholders docker writes when a credential store holds the secret."""
        return not self.password and not self.identity_token


@dataclass(frozen=True)
class StoreChoice:
    """A credential helper that is authoritative for a registry."""

    helper: str
    origin: str  # "credHelpers" or "credsStore"
    key: str | None  # the credHelpers key that matched; None for credsStore


@dataclass(frozen=True)
class DockerConfig:
    """The credential-related part of one config.json (or of its absence)."""

    path: Path
    exists: bool
    auths: tuple[AuthEntry, ...] = ()
    creds_store: str | None = None
    cred_helpers: tuple[tuple[str, str], ...] = ()

    def store_for(self, registry: str) -> StoreChoice | None:
        """The helper docker would ask for `registry`, or None when `auths` is the source.

        docker's `getConfiguredCredentialStore`: a `credHelpers` entry wins; an entry whose
        value is "" pins the registry to the file itself, even when `credsStore` is set;
        otherwise `credsStore`, if any, serves every registry.
        """
        helpers = dict(self.cred_helpers)
        for key in matching_keys(list(helpers), registry):
            name = helpers[key]
            return StoreChoice(name, "credHelpers", key) if name else None
        if self.creds_store:
            return StoreChoice(self.creds_store, "credsStore", None)
        return None

    def auth_entry_for(self, registry: str) -> AuthEntry | None:
        """The first `auths` entry for `registry` that holds a credential, if any."""
        by_key = {entry.key: entry for entry in self.auths}
        for key in matching_keys(list(by_key), registry):
            if not by_key[key].empty:
                return by_key[key]
        return None


def load_config(config_dir: Path) -> DockerConfig:
    """Read `<config_dir>/config.json`. A missing file is an empty config, as for docker; a
    file docker could not decode raises `AuthConfigError` naming it, never a secret in it."""
    path = config_dir / CONFIG_FILE_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return DockerConfig(path, exists=False)
    except OSError as e:
        raise AuthConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise AuthConfigError(f"{path}: not UTF-8 text") from None
    # docker treats an empty file as an empty configuration (it decodes up to EOF).
    if not text.strip():
        return DockerConfig(path, exists=True)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as e:
        # e.msg only: str(e) is fine too, but e.doc holds the file, secrets included.
        raise AuthConfigError(f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
    return _parse(path, document)


def json_field(obj: dict[str, object], name: str) -> object:
    """`obj[name]` matched case-insensitively, last spelling winning, as Go's encoding/json
    decodes the structs of docker's config and of the credential-helper protocol; None when
    absent."""
    value: object = None
    lowered = name.lower()
    for key, item in obj.items():
        if key.lower() == lowered:
            value = item
    return value


def _string(path: Path, where: str, value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise AuthConfigError(f"{path}: {where} must be a string, not {_json_type(value)}")


def _object(path: Path, where: str, value: object) -> dict[str, object]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    raise AuthConfigError(f"{path}: {where} must be an object, not {_json_type(value)}")


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    return "null" if value is None else "an object"


def _parse(path: Path, document: object) -> DockerConfig:
    top = _object(path, "the top level", document)
    auths = tuple(
        _auth_entry(path, key, _object(path, f"auths '{key}'", value))
        for key, value in _object(path, "'auths'", json_field(top, "auths")).items()
    )
    store = _string(path, "'credsStore'", json_field(top, "credsStore"))
    helpers: list[tuple[str, str]] = []
    for key, value in _object(path, "'credHelpers'", json_field(top, "credHelpers")).items():
        name = _string(path, f"credHelpers '{key}'", value) or ""
        _check_helper_name(path, f"credHelpers '{key}'", name)
        helpers.append((key, name))
    _check_helper_name(path, "'credsStore'", store or "")
    return DockerConfig(path, True, auths, store or None, tuple(helpers))


def _check_helper_name(path: Path, where: str, name: str) -> None:
    # The name becomes part of an executable's name looked up on PATH; a separator would turn
    # the lookup into a path relative to wherever lkpkg happens to run.
    if "/" in name or os.sep in name:
        raise AuthConfigError(f"{path}: {where}: '{name}' is not a credential helper name")


def _auth_entry(path: Path, key: str, entry: dict[str, object]) -> AuthEntry:
    where = f"auths '{key}'"
    auth = _string(path, f"{where} 'auth'", json_field(entry, "auth"))
    username = _string(path, f"{where} 'username'", json_field(entry, "username"))
    password = _string(path, f"{where} 'password'", json_field(entry, "password"))
    token = _string(path, f"{where} 'identitytoken'", json_field(entry, "identitytoken"))
    # As in docker's config loader, `auth` replaces `username` and `password` when present.
    if auth:
        username, password = _decode_auth(path, where, auth)
    return AuthEntry(key, username or None, password or None, token or None)


def _decode_auth(path: Path, where: str, auth: str) -> tuple[str, str]:
    """`auth` is base64("user:password"); the password may itself contain ':'."""
    # Go's base64.StdEncoding skips CR and LF, and so does docker; anything else must be valid.
    compact = auth.replace("\r", "").replace("\n", "")
    try:
        decoded = base64.b64decode(compact, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        # Never echo the value: it is the credential.
        raise AuthConfigError(f"{path}: {where} 'auth' is not base64 of UTF-8 text") from None
    username, colon, password = decoded.partition(":")
    if not colon or not username:
        raise AuthConfigError(f"{path}: {where} 'auth' does not decode to 'username:password'")
    # docker trims NULs that some old tools padded the password with.
    return username, password.strip("\x00")
