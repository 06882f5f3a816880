"""TLS trust and plain-HTTP permission for a registry host, by docker's rules.

docker trusts the system CAs plus every `*.crt` in `certs.d/<host>/`, and presents a client
certificate from each `<name>.cert` + `<name>.key` pair there (its `ReadCertsDirectory`).
`<host>` is the registry's `host[:port]` exactly as written in image references. lkpkg reads
the daemon's directory, `/etc/docker/certs.d`, and the client's, `<config dir>/certs.d`.

Plain HTTP is docker's "insecure registry" rule: loopback addresses are insecure by default
(the daemon's default insecure CIDR 127.0.0.0/8, and ::1), and so is any registry the user
names.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from collections.abc import Collection
from pathlib import Path

from lkpkg.errors import TLSConfigError

# The daemon's directory; a module constant so tests (and odd installs) can point elsewhere.
SYSTEM_CERTS_D = Path("/etc/docker/certs.d")
CERTS_D = "certs.d"

# Compiled (and kept in re's cache) by the first TLS error, not by every import.
_SSL_NOISE = r"^\[[^\]]*\]\s*|\s*\(_ssl\.c:\d+\)$"


class _EncryptedKey(Exception):
    """Raised from the password callback so OpenSSL never prompts on the terminal."""


def certs_dirs(host: str, config_dir: Path | None = None) -> list[Path]:
    """The directories docker's rules consult for `host`, in the order they are read: the
    daemon's, then the client's under `config_dir` (the caller resolves it, e.g. with
    `dockerconfig.default_config_dir`; None reads only the daemon's)."""
    if not host or host in {".", ".."} or "/" in host or "\\" in host or "\0" in host:
        raise ValueError(f"not a registry host: {host!r}")
    dirs = [SYSTEM_CERTS_D / host]
    if config_dir is not None:
        dirs.append(config_dir / CERTS_D / host)
    return dirs


def ssl_context_for(
    host: str, *, extra_ca: Path | None = None, config_dir: Path | None = None
) -> ssl.SSLContext:
    """A client context for `host`: system CAs, `certs.d` CAs and client certificate, and
    `extra_ca` (a PEM bundle). Raises `TLSConfigError` naming the file that cannot be used.

    An SSLContext presents a single client certificate, where docker offers the server each
    pair it found: the first pair in reading order (/etc before the config dir, then by file
    name) is presented, and every pair is still checked so a broken one is reported as docker
    would report it.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    pairs: list[tuple[Path, Path]] = []
    for directory in certs_dirs(host, config_dir):
        cas, found = _read_certs_dir(directory)
        for ca in cas:
            _load_ca(context, ca)
        pairs.extend(found)
    if extra_ca is not None:
        _load_ca(context, extra_ca)
    for index, (cert, key) in enumerate(pairs):
        # Later pairs go into a scratch context: loading them into `context` would replace the
        # certificate presented, or add one for another key type.
        _load_client_pair(context if index == 0 else _scratch(), cert, key)
    return context


def _scratch() -> ssl.SSLContext:
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _read_certs_dir(directory: Path) -> tuple[list[Path], list[tuple[Path, Path]]]:
    """The CA files and client (cert, key) pairs in `directory`; nothing if it does not exist."""
    try:
        names = sorted(entry.name for entry in directory.iterdir())
    except FileNotFoundError:
        return [], []
    except OSError as e:
        raise TLSConfigError(f"{directory}: cannot list: {e.strerror or e}") from None
    present = set(names)
    cas: list[Path] = []
    pairs: list[tuple[Path, Path]] = []
    for name in names:
        if name.endswith(".crt"):
            cas.append(directory / name)
        elif name.endswith(".cert"):
            key = name.removesuffix(".cert") + ".key"
            if key not in present:
                # docker's own wording: a CA misnamed `.cert` is the usual cause.
                raise TLSConfigError(
                    f"{directory / name}: client certificate without its key {key};"
                    " CA certificates must use the extension .crt"
                )
            pairs.append((directory / name, directory / key))
        elif name.endswith(".key"):
            cert = name.removesuffix(".key") + ".cert"
            if cert not in present:
                raise TLSConfigError(
                    f"{directory / name}: client key without its certificate {cert}"
                )
    return cas, pairs


def _load_ca(context: ssl.SSLContext, path: Path) -> None:
    try:
        context.load_verify_locations(cafile=path)
    except ssl.SSLError as e:
        raise TLSConfigError(f"{path}: not a usable PEM CA certificate: {_reason(e)}") from None
    except OSError as e:
        raise TLSConfigError(f"{path}: cannot read CA certificate: {e.strerror or e}") from None


def _load_client_pair(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    def no_password() -> str:
        raise _EncryptedKey

    try:
        context.load_cert_chain(certfile=cert, keyfile=key, password=no_password)
    except _EncryptedKey:
        # Go's tls.LoadX509KeyPair cannot decrypt keys either; there is no passphrase to ask.
        raise TLSConfigError(
            f"{key}: client key is encrypted; docker needs it unencrypted"
        ) from None
    except ssl.SSLError as e:
        raise TLSConfigError(
            f"{cert} + {key.name}: not a usable client certificate and key: {_reason(e)}"
        ) from None
    except OSError as e:
        raise TLSConfigError(
            f"{cert} + {key.name}: cannot read client certificate: {e.strerror or e}"
        ) from None


def _reason(error: ssl.SSLError) -> str:
    text = str(error.args[1]) if len(error.args) > 1 else str(error)
    return re.sub(_SSL_NOISE, "", text) or str(error.reason or error)


def plain_http_allowed(host: str, insecure_registries: Collection[str] = ()) -> bool:
    """Whether docker would let `host` (`host[:port]`) be spoken to without verified TLS.

    Loopback hosts always may: `localhost`, 127.0.0.0/8 and ::1, with any port. Otherwise an
    entry of `insecure_registries` must name the host: `host[:port]` exactly as written in
    references (a port is part of the name, as in docker's `--insecure-registry`), or a CIDR
    that contains the host's IP address. A `http://`/`https://` prefix on an entry is dropped,
    as the daemon drops it. Host names are never resolved here.
    """
    name, _port = split_host_port(host)
    address = _ip(name)
    if name.lower() == "localhost" or (address is not None and address.is_loopback):
        return True
    wanted = host.lower()
    for entry in insecure_registries:
        entry = _drop_scheme(entry.strip()).rstrip("/").lower()
        if "/" in entry:
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                continue
            if address is not None and address.version == network.version and address in network:
                return True
        elif entry == wanted:
            return True
    return False


def split_host_port(host: str) -> tuple[str, str | None]:
    """`host[:port]` apart: `[::1]:5000` -> (`::1`, `5000`); a bare IPv6 address has no port."""
    if host.startswith("["):
        end = host.find("]")
        if end > 0:
            rest = host[end + 1 :]
            return host[1:end], (rest[1:] if rest.startswith(":") else None)
        return host, None
    if host.count(":") == 1:
        name, _, port = host.partition(":")
        return name, port
    return host, None


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return None
    # Go parses ::ffff:127.0.0.1 as the IPv4 address it maps, so docker's 127.0.0.0/8 covers it.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _drop_scheme(entry: str) -> str:
    for scheme in ("http://", "https://"):
        if entry.lower().startswith(scheme):
            return entry[len(scheme) :]
    return entry
