"""`lkpkg doctor`'s check of a registry: does it answer `GET /v2/` from here, and if not,
what to change (its CA, --insecure-registry, the org's host and port, the network)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lkpkg.checks import CheckResult
from lkpkg.errors import RegistryError, RegistryUnreachable, TLSConfigError
from lkpkg.reference import DOCKER_HUB
from lkpkg.registry.client import RegistryClient
from lkpkg.registry.failures import describe_transport_error
from lkpkg.registry.transport import TlsPolicy, TransportConfig


def transport_config(timeout: float) -> TransportConfig:
    """One try, every socket step bounded by `timeout`."""
    return TransportConfig.with_deadline(timeout, attempts=1)


def registry_check(
    domain: str,
    *,
    config_dir: Path,
    tls: TlsPolicy,
    insecure: Sequence[str] = (),
    timeout: float,
) -> CheckResult:
    """`GET /v2/` at the registry, https first (plain http where docker would allow it);
    `config_dir` is the docker config directory (its certs.d), `tls` the TLS policy
    (`lkpkg.auth.tls`, handed in: the registry package does not import auth)."""
    name = f"registry {domain}"
    client = RegistryClient(
        domain,
        keychain=None,
        tls=tls,
        insecure=insecure,
        config=transport_config(timeout),
        config_dir=config_dir,
    )
    try:
        base = client.ping()
    except RegistryUnreachable as error:
        reason = describe_transport_error(error)
        plain = tls.plain_http_allowed(client.host, insecure)
        detail = error.message.removeprefix(f"registry {domain} ")
        fix = unreachable_fix(
            client.host,
            reason,
            plain_http_allowed=plain,
            config_dir=config_dir,
            public=domain == DOCKER_HUB,
        )
        return CheckResult.fail(name, detail, fix)
    except TLSConfigError as error:
        return CheckResult.fail(
            name, error.message, "fix or remove that file (docker reads it too)"
        )
    except RegistryError as error:
        return CheckResult.fail(
            name,
            error.message,
            "check the org (--org or build.yml `org`): its first part names the registry host",
        )
    finally:
        client.close()
    return CheckResult.ok(name, f"answers at {base}/v2/")


def unreachable_fix(
    host: str, reason: str, *, plain_http_allowed: bool, config_dir: Path, public: bool = False
) -> str:
    """How to fix "registry HOST unreachable: REASON". `public`: a registry the user does not
    run (Docker Hub), so only this host's network can be at fault."""
    if "certificate" in reason:
        return (
            f"trust the registry's CA: copy it to {config_dir}/certs.d/{host}/ca.crt "
            f"(or /etc/docker/certs.d/{host}/ca.crt)"
        )
    if "TLS" in reason and not plain_http_allowed:
        return f"a registry that speaks plain http needs --insecure-registry {host}"
    if public:
        return f"check this host's DNS and internet access to {host} (HTTPS_PROXY/NO_PROXY)"
    if "resolve" in reason:
        return f"check the host name '{host}' in the org (--org or build.yml `org`), and DNS"
    if "timed out" in reason:
        return (
            f"check that {host} is reachable from here (firewall, HTTPS_PROXY/NO_PROXY), "
            "or raise --timeout"
        )
    return (
        f"start the registry at {host}, or correct the host and port in the org "
        "(--org or build.yml `org`)"
    )
