"""The registry client: the OCI distribution API over HTTP, with docker's auth flow.

`RegistryClient` (client.py) speaks the endpoints and verifies every digest; `challenge.py`
and `authorizer.py` parse `WWW-Authenticate` and run the Basic/Bearer flow with a token cache;
`transport.py` holds the httpx clients, TLS, timeouts and retries, and `TransportConfig`, the
one place for limits. See README.md for the invariants.

The names below load on first use: importing `lkpkg.registry.protocol` (what the pipeline
names) must not import httpx (~0.1 s), which only a command that talks to a registry needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lkpkg.oci.tagged import Manifest, ManifestInfo

if TYPE_CHECKING:
    from lkpkg.registry.challenge import (
        Challenge,
        Credential,
        Keychain,
        Scope,
        parse_www_authenticate,
    )
    from lkpkg.registry.client import RegistryClient
    from lkpkg.registry.transport import TlsPolicy, TransportConfig

__all__ = [
    "Challenge",
    "Credential",
    "Keychain",
    "Manifest",
    "ManifestInfo",
    "RegistryClient",
    "Scope",
    "TlsPolicy",
    "TransportConfig",
    "parse_www_authenticate",
]


def __getattr__(name: str) -> object:
    if name == "RegistryClient":
        from lkpkg.registry import client

        return client.RegistryClient
    if name in ("TlsPolicy", "TransportConfig"):
        from lkpkg.registry import transport

        return getattr(transport, name)
    if name in ("Challenge", "Credential", "Keychain", "Scope", "parse_www_authenticate"):
        from lkpkg.registry import challenge

        return getattr(challenge, name)
    raise AttributeError(f"module 'lkpkg.registry' has no attribute '{name}'")
