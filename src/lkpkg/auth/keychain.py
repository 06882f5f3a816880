"""Which credential to present to a registry, decided the way the docker CLI decides it.

For a registry, docker consults exactly one source (its `GetCredentialsStore`):

1. a `credHelpers` entry for the registry names its helper (an empty name pins the registry to
   the file's own `auths`);
2. otherwise `credsStore`, if set, is the helper for every registry;
3. otherwise the `auths` entry in config.json.

A helper that is consulted is authoritative: when it has nothing for the registry the answer is
"no credential" (anonymous), and `auths` is not looked at, because with a store configured
docker keeps only `{}` placeholders there and never reads credentials from them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lkpkg.auth.dockerconfig import (
    DockerConfig,
    StoreChoice,
    default_config_dir,
    is_docker_hub,
    load_config,
    server_address,
    strip_key,
)
from lkpkg.auth.helpers import DEFAULT_TIMEOUT, helper_executable, helper_get
from lkpkg.errors import LkpkgError
from lkpkg.reference import DOCKER_HUB

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Credential:
    """A registry credential. `secret` is a password, or with `identity_token` an OAuth2
    refresh token to exchange at the registry's token endpoint. `source` says where it came
    from, for messages; neither `repr` nor `str` ever shows `secret`."""

    username: str | None
    secret: str = field(repr=False)
    identity_token: bool = False
    source: str = ""

    def __repr__(self) -> str:
        kind = "identity token" if self.identity_token else "password"
        return f"Credential(username={self.username!r}, {kind}=<hidden>, source={self.source!r})"


class Keychain:
    """Credentials as `docker login` left them in `config_dir` (default `$DOCKER_CONFIG` or
    `~/.docker`).

    `env` is the process environment the keychain works in: where DOCKER_CONFIG and HOME are
    read, the PATH helpers are found on, and the environment helpers run in. The caller passes
    it (the CLI: the process's environment); it is copied when the keychain is made.

    A keychain reads config.json once and remembers each registry's answer, so a helper (which
    may prompt for a GPG passphrase) runs at most once per registry; make a new keychain to see
    changes. It is safe to share between threads.
    """

    def __init__(self, config_dir: Path | None = None, *, env: Mapping[str, str]) -> None:
        self._env: dict[str, str] = dict(env)
        self._config_dir = config_dir if config_dir is not None else default_config_dir(self._env)
        self._config: DockerConfig | None = None
        self._answers: dict[str, Credential | None] = {}
        self._lock = threading.Lock()
        self.helper_timeout = DEFAULT_TIMEOUT

    @property
    def config_path(self) -> Path:
        return self._config_dir / "config.json"

    def resolve(self, registry: str) -> Credential | None:
        """The credential for `registry` (a domain as in `Reference.domain`: `docker.io`,
        `ghcr.io`, `localhost:5000`), or None to go anonymous.

        Raises `AuthConfigError` for a malformed config.json and `CredentialHelperError` for a
        helper that is missing or fails; neither message carries a secret.
        """
        name = _canonical(registry)
        with self._lock:
            if name.lower() in self._answers:
                return self._answers[name.lower()]
            config = self._load()
            store = config.store_for(name)
            if store is not None:
                credential = self._from_helper(config, store, name)
            else:
                credential = self._from_auths(config, name)
            self._answers[name.lower()] = credential
        if _log.isEnabledFor(logging.DEBUG):
            found = credential.source if credential else f"none ({self.sources_tried(name)})"
            _log.debug("credentials for %s: %s", name, found)
        return credential

    def sources_tried(self, registry: str) -> str:
        """Where `resolve` looks for `registry`, as one line for an "authentication refused"
        message. Never raises and never shows a secret."""
        name = _canonical(registry)
        try:
            with self._lock:
                config = self._load()
        except LkpkgError as e:
            return str(e)  # it names the file and what is wrong with it
        if not config.exists:
            return f"{config.path}, which does not exist (no `docker login` yet?)"
        store = config.store_for(name)
        if store is not None:
            return (
                f"{helper_executable(store.helper)} ({_origin(config, store)}),"
                f" asked for '{server_address(name)}'"
            )
        entry = config.auth_entry_for(name)
        if entry is not None:
            return f"{config.path} auths '{entry.key}'"
        also = " or another Docker Hub spelling" if is_docker_hub(name) else ""
        return f"{config.path} auths, which has no credential for '{server_address(name)}'{also}"

    def _load(self) -> DockerConfig:
        if self._config is None:
            self._config = load_config(self._config_dir)
        return self._config

    def _from_helper(
        self, config: DockerConfig, store: StoreChoice, name: str
    ) -> Credential | None:
        origin = _origin(config, store)
        reply = helper_get(
            store.helper,
            server_address(name),
            env=self._env,
            timeout=self.helper_timeout,
            context=origin,
        )
        if reply is None:
            return None
        source = f"{helper_executable(store.helper)} ({store.origin})"
        if reply.is_identity_token:
            return Credential(None, reply.secret, identity_token=True, source=source)
        return Credential(reply.username or None, reply.secret, source=source)

    @staticmethod
    def _from_auths(config: DockerConfig, name: str) -> Credential | None:
        entry = config.auth_entry_for(name)
        if entry is None:
            return None
        source = f"{config.path} auths '{entry.key}'"
        # docker prefers the identity token: with one, its registry client does the OAuth2
        # refresh-token grant and never sends the password.
        if entry.identity_token:
            return Credential(entry.username, entry.identity_token, True, source)
        assert entry.password is not None  # an entry that is not `empty` has one or the other
        return Credential(entry.username, entry.password, False, source)


def _canonical(registry: str) -> str:
    """`registry` as `host[:port]`, and `docker.io` for every Docker Hub spelling. The case is
    kept: it is what a helper is asked for, as docker would ask."""
    if is_docker_hub(registry):
        return DOCKER_HUB
    return strip_key(registry)


def _origin(config: DockerConfig, store: StoreChoice) -> str:
    if store.key is None:
        return f"credsStore in {config.path}"
    return f"credHelpers '{store.key}' in {config.path}"
