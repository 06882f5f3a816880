"""Where Docker Content Trust data lives for a registry, as docker finds it.

Settings enter once: the CLI reads the environment into `DCTSettings.from_environment`, and
everything below takes that value (no library module reads the process environment).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from lkpkg.auth.dockerconfig import default_config_dir
from lkpkg.errors import TrustConfigError
from lkpkg.proc import child_environment
from lkpkg.reference import DOCKER_HUB, DOCKER_HUB_LEGACY
from lkpkg.trust.passphrases import DCTPassphrases

SERVER_VARIABLE = "DOCKER_CONTENT_TRUST_SERVER"
DOCKER_HUB_NOTARY = "https://notary.docker.io"

# What the notary CLI needs beyond what every tool may see (`proc.COMMON_VARIABLES`: PATH,
# HOME, locale, TMPDIR, proxies): Go's overrides of the system CA roots. Nothing else is
# inherited (no other tool's secret: see README invariant 1).
NOTARY_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR")


@dataclass(frozen=True)
class DCTSettings:
    """Everything Docker Content Trust takes from the environment, resolved at the edge.

    `server`: $DOCKER_CONTENT_TRUST_SERVER or "" (docker's default then applies);
    `docker_config_dir`: $DOCKER_CONFIG, else ~/.docker; `tool_env`: what notary inherits
    (`proc.child_environment`: no secret of any tool).
    """

    docker_config_dir: Path
    server: str = ""
    passphrases: DCTPassphrases = field(default_factory=DCTPassphrases)
    tool_env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> DCTSettings:
        return cls(
            docker_config_dir=default_config_dir(env),
            server=env.get(SERVER_VARIABLE, ""),
            passphrases=DCTPassphrases.from_environment(env),
            tool_env=child_environment(env, NOTARY_VARIABLES),
        )


@dataclass(frozen=True)
class TrustConfig:
    """Where the trust server is and where the trust data and its CA live, as docker finds them."""

    server: str
    trust_dir: Path
    ca_cert: Path | None = None
    # No DOCKER_CONTENT_TRUST_SERVER: the server is docker's guess, the registry's address.
    guessed: bool = False

    @classmethod
    def for_registry(
        cls, registry_domain: str, settings: DCTSettings, ca_cert: Path | None = None
    ) -> TrustConfig:
        """docker's choice for a registry (`trust.Server`, `certificateDirectory`).

        The server is $DOCKER_CONTENT_TRUST_SERVER, else notary.docker.io for Docker Hub, else
        `https://<registry host[:port]>`: docker looks for a registry's notary at the registry's
        own address, not on notary's conventional port 4443. The CA, unless given, is
        `<docker config dir>/tls/<server host:port>/ca.crt` when that file exists; otherwise
        the system's roots apply.
        """
        server = settings.server
        guessed = False
        if server:
            parts = urlsplit(server)
            if parts.scheme != "https" or not parts.netloc:
                raise TrustConfigError(
                    f"{SERVER_VARIABLE} must be an https:// URL, got '{server}'",
                    hint=f"set {SERVER_VARIABLE}=https://HOST[:PORT]",
                )
        elif registry_domain in (DOCKER_HUB, DOCKER_HUB_LEGACY):
            server = DOCKER_HUB_NOTARY
        else:
            server = f"https://{registry_domain}"
            guessed = True
        server = server.rstrip("/")
        config_dir = settings.docker_config_dir
        if ca_cert is None:
            candidate = docker_ca_path(config_dir, url_host(server))
            if candidate.is_file():
                ca_cert = candidate
        return cls(server, config_dir / "trust", ca_cert, guessed)

    @property
    def server_host(self) -> str:
        """`host[:port]` of the server, as notary names it in its messages."""
        return url_host(self.server)

    def check_ca(self) -> None:
        """A CA that was named must exist (`TrustConfigError`, exit 2, before anything runs)."""
        if self.ca_cert is not None and not self.ca_cert.is_file():
            raise TrustConfigError(
                f"{self.ca_cert}: CA certificate for trust server {self.server} not found",
                hint="give an existing PEM file with --trust-ca",
            )


def docker_ca_path(config_dir: Path, server_host: str) -> Path:
    """Where docker looks for a trust server's CA: `<config dir>/tls/<host:port>/ca.crt`."""
    return config_dir / "tls" / server_host / "ca.crt"


def url_host(url: str) -> str:
    """Go's url.Host: host[:port] without any user info."""
    return urlsplit(url).netloc.rpartition("@")[2]
