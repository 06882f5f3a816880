"""One registry client per registry host for a whole run: connections and tokens reused.

It composes auth/ (keychain, TLS trust, docker config directory) with registry/ (the
client), so it lives above both: registry/ never imports auth/.

Packages are pushed from several threads; each host still gets exactly one client, made on
first need, with one keychain for all of them (credential helpers run once per host). The
keychain is made when a registry first asks for credentials (a 401 challenge): a registry
that serves anonymously, as a loopback one does, never loads the credential code.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lkpkg.auth.keychain import Keychain
    from lkpkg.registry.challenge import Credential
    from lkpkg.registry.client import RegistryClient


class _KeychainOnDemand:
    """`lkpkg.auth.Keychain(env=env)`, made at the first question and then asked every time
    (one keychain: credential helpers still run once per host). Safe between threads."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self._keychain: Keychain | None = None
        self._lock = threading.Lock()

    def _made(self) -> Keychain:
        with self._lock:
            if self._keychain is None:
                from lkpkg.auth.keychain import Keychain

                self._keychain = Keychain(env=self._env)
            return self._keychain

    def resolve(self, registry: str) -> Credential | None:
        return self._made().resolve(registry)

    def sources_tried(self, registry: str) -> str:
        return self._made().sources_tried(registry)


class RegistryPool:
    """`pool(domain)` is the client for that registry; `close()` (or `with`) closes them all.

    `insecure` names the hosts that may be spoken to over plain http (loopback always may);
    `env` is the environment the keychain reads the docker config and its helpers from;
    `timeout` (`--timeout`) bounds each request's wait without progress, retries included.
    """

    def __init__(
        self, insecure: Sequence[str], env: Mapping[str, str], *, timeout: float | None = None
    ) -> None:
        self._insecure = [h for item in insecure for h in item.split(",") if h]
        self._env = env
        self._timeout = timeout
        self._clients: dict[str, RegistryClient] = {}
        self._keychain = _KeychainOnDemand(env)
        self._lock = threading.Lock()

    def __call__(self, domain: str) -> RegistryClient:
        with self._lock:
            if domain not in self._clients:
                # Imported on first use: only commands that talk to a registry pay for
                # httpx and TLS at start-up (credential code: at the first challenge).
                from lkpkg.auth import tls
                from lkpkg.auth.configdir import default_config_dir
                from lkpkg.registry.client import RegistryClient
                from lkpkg.registry.transport import TransportConfig

                self._clients[domain] = RegistryClient(
                    domain,
                    keychain=self._keychain,
                    tls=tls,
                    insecure=self._insecure,
                    config_dir=default_config_dir(self._env),
                    config=(
                        TransportConfig.with_deadline(self._timeout)
                        if self._timeout is not None
                        else None
                    ),
                )
            return self._clients[domain]

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def __enter__(self) -> RegistryPool:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
