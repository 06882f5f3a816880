"""The registry client: the OCI distribution API over HTTP, with docker's auth flow.

`RegistryClient` (client.py) speaks the endpoints and verifies every digest; `challenge.py`
parses `WWW-Authenticate` and runs the Basic/Bearer flow with a token cache; `transport.py`
holds the httpx clients, TLS, timeouts and retries, and `TransportConfig`, the one place for
limits. See README.md for the invariants.
"""

from lkpkg.oci.tagged import Manifest, ManifestInfo
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
