"""Asking a notary server over HTTP, read-only: is it healthy, does it hold a repository.

This is the one place that answers "does this trust repository exist": `lkpkg doctor`, the
preflight before a push and the signer all ask here. A server that wants a login even to
read (Docker Hub's notary) answers `None`; the signer then asks through the notary CLI,
which can answer the server's token challenge (`DCTSigner.repository_exists`).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

import httpx

from lkpkg.errors import TrustConfigError, TrustError, TrustServerUnreachable
from lkpkg.registry.failures import describe_transport_error
from lkpkg.trust.config import SERVER_VARIABLE, TrustConfig, docker_ca_path
from lkpkg.trust.passphrases import NOTRUST_HINT

HEALTH_PATH = "/_notary_server/health"
# Seconds one HTTP step (connect, TLS, an answer) may take; a notary server answers its
# health check and a root.json in milliseconds.
DEFAULT_TIMEOUT = 10.0


class TrustServer:
    """An HTTP client for one notary server, trusting the configured CA."""

    def __init__(
        self, config: TrustConfig, *, config_dir: Path, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.config = config
        self._ca_path = docker_ca_path(config_dir, config.server_host)
        ca = config.ca_cert
        try:
            context = ssl.create_default_context(cafile=str(ca) if ca else None)
        except (OSError, ssl.SSLError) as error:
            reason = str(error.reason or error) if isinstance(error, ssl.SSLError) else None
            raise TrustConfigError(
                f"CA {ca} for trust server {config.server} is unusable:"
                f" {reason or getattr(error, 'strerror', None) or error}",
                hint=f"give a PEM CA certificate with --trust-ca, or put it at {self._ca_path}",
            ) from None
        self._client = httpx.Client(verify=context, timeout=timeout, follow_redirects=False)

    def __enter__(self) -> TrustServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._client.close()

    @property
    def trusting(self) -> str:
        """The CA in words, for messages."""
        return f"CA {self.config.ca_cert}" if self.config.ca_cert else "the system's CA roots"

    def _get(self, url: str) -> httpx.Response:
        try:
            return self._client.get(url)
        except httpx.TransportError as error:
            reason = describe_transport_error(error)
            shown = f"{reason} (trusting {self.trusting})" if "certificate" in reason else reason
            raise TrustServerUnreachable(
                f"trust server {self.config.server} unreachable: {shown}",
                hint=unreachable_hint(self.config, reason, ca_path=self._ca_path),
            ) from None

    def health(self, *, strict: bool = True) -> None:
        """Raise `TrustServerUnreachable` (no answer) or `TrustError` (unhealthy) unless the
        server answers its health check. Not `strict`: any answer below 500 will do — it
        proves the server is reachable with the configured CA, even where a front end (a
        hosted notary) does not serve the health path to anonymous clients."""
        answer = self._get(self.config.server + HEALTH_PATH)
        if answer.status_code != 200 and (strict or answer.status_code >= 500):
            hint = (
                guessed_server_hint(self.config.server_host)
                if self.config.guessed
                else f"check the notary server's logs (its storage and signer), set"
                f" {SERVER_VARIABLE} to a healthy one, or {NOTRUST_HINT}"
            )
            raise TrustError(
                f"trust server {self.config.server}: {HEALTH_PATH} answered"
                f" {answer.status_code} {answer.reason_phrase}",
                hint=hint,
            )

    def has_repository(self, gun: str) -> bool | None:
        """Whether the server holds trust data (a root.json) for `gun`; None when it wants
        a login to say."""
        url = f"{self.config.server}/v2/{quote(gun, safe='/:')}/_trust/tuf/root.json"
        answer = self._get(url)
        if answer.status_code == 200:
            return True
        if answer.status_code == 404:
            return False
        if answer.status_code == 401:
            return None
        raise TrustError(
            f"trust server {self.config.server}: {url} answered {answer.status_code}"
            f" {answer.reason_phrase}"
        )


def unreachable_hint(config: TrustConfig, reason: str, *, ca_path: Path) -> str:
    """How to fix "trust server https://HOST unreachable: REASON"."""
    host = config.server_host
    if "certificate" in reason:
        return f"put the trust server's CA at {ca_path}, or pass --trust-ca FILE"
    if config.guessed:
        return guessed_server_hint(host)
    if "TLS" in reason:
        where = f"{host} does not speak https: point {SERVER_VARIABLE} at the notary server"
        return f"{where}, or {NOTRUST_HINT}"
    if "refused" in reason:
        where = f"start the notary server at {host}"
    else:
        where = f"check that {host} resolves and is reachable (DNS, firewall, HTTPS_PROXY)"
    return f"{where}, set {SERVER_VARIABLE} to your trust server, or {NOTRUST_HINT}"


def guessed_server_hint(server_host: str) -> str:
    return (
        f"set {SERVER_VARIABLE}=https://NOTARY-HOST:PORT (unset, docker and lkpkg look for the "
        f"trust server at the registry's own address {server_host}), or {NOTRUST_HINT}"
    )
