"""certs.d trust and client certificates by docker's rules, proven with a real TLS handshake;
and docker's plain-HTTP (insecure registry) rule."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lkpkg.auth import tls
from lkpkg.auth.dockerconfig import default_config_dir
from lkpkg.auth.tls import certs_dirs, plain_http_allowed, split_host_port, ssl_context_for
from lkpkg.errors import EXIT_BAD_INPUT, TLSConfigError

HOST = "localhost:5000"


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    def key_pem(self, password: bytes | None = None) -> bytes:
        algorithm: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, algorithm
        )


def issue(
    name: str,
    issuer: Issued | None = None,
    *,
    ca: bool = False,
    server: bool = False,
    client: bool = False,
) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    signer = issuer.key if issuer else key
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
    if client:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.OID_CLIENT_AUTH]), critical=False
        )
    return Issued(builder.sign(signer, hashes.SHA256()), key)


@pytest.fixture(scope="module")
def pki() -> dict[str, Issued]:
    ca = issue("test registry CA", ca=True)
    client_ca = issue("test client CA", ca=True)
    return {
        "ca": ca,
        "server": issue("localhost", ca, server=True),
        "client_ca": client_ca,
        "client": issue("builder-7", client_ca, client=True),
        "other_client": issue("builder-8", client_ca, client=True),
    }


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(system certs.d root, docker config dir); the system root replaces /etc/docker/certs.d."""
    system = tmp_path / "etc-docker-certs.d"
    config = tmp_path / "dot-docker"
    system.mkdir()
    config.mkdir()
    monkeypatch.setattr(tls, "SYSTEM_CERTS_D", system)
    return system, config


def put(directory: Path, name: str, data: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)
    return directory / name


def ca_ders(context: ssl.SSLContext) -> list[bytes]:
    return list(context.get_ca_certs(binary_form=True))


# --- trust ---------------------------------------------------------------------------------


def test_system_certs_d_ca_is_trusted(dirs: tuple[Path, Path], pki: dict[str, Issued]) -> None:
    system, config = dirs
    put(system / HOST, "ca.crt", pki["ca"].pem)
    context = ssl_context_for(HOST, config_dir=config)
    assert pki["ca"].der in ca_ders(context)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_user_certs_d_ca_is_trusted(dirs: tuple[Path, Path], pki: dict[str, Issued]) -> None:
    _, config = dirs
    put(config / "certs.d" / HOST, "registry.crt", pki["ca"].pem)
    assert pki["ca"].der in ca_ders(ssl_context_for(HOST, config_dir=config))


def test_other_hosts_and_other_extensions_are_not_trusted(
    dirs: tuple[Path, Path], pki: dict[str, Issued]
) -> None:
    system, config = dirs
    put(system / "localhost:5001", "ca.crt", pki["ca"].pem)
    put(system / "localhost", "ca.crt", pki["ca"].pem)
    put(system / HOST, "ca.pem", pki["ca"].pem)  # docker reads only *.crt
    assert pki["ca"].der not in ca_ders(ssl_context_for(HOST, config_dir=config))


def test_extra_ca(dirs: tuple[Path, Path], pki: dict[str, Issued], tmp_path: Path) -> None:
    _, config = dirs
    bundle = put(tmp_path, "bundle.pem", pki["ca"].pem + pki["client_ca"].pem)
    ders = ca_ders(ssl_context_for(HOST, extra_ca=bundle, config_dir=config))
    assert pki["ca"].der in ders and pki["client_ca"].der in ders


def test_user_dir_is_the_one_docker_config_names(
    dirs: tuple[Path, Path], pki: dict[str, Issued]
) -> None:
    _, config = dirs
    user_dir = default_config_dir({"DOCKER_CONFIG": str(config)})
    put(config / "certs.d" / HOST, "ca.crt", pki["ca"].pem)
    assert pki["ca"].der in ca_ders(ssl_context_for(HOST, config_dir=user_dir))
    assert certs_dirs(HOST, user_dir) == [tls.SYSTEM_CERTS_D / HOST, config / "certs.d" / HOST]


def test_without_a_config_dir_only_the_daemons_dir_is_read(
    dirs: tuple[Path, Path], pki: dict[str, Issued], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The environment is the caller's to read: DOCKER_CONFIG alone changes nothing here.
    _, config = dirs
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    put(config / "certs.d" / HOST, "ca.crt", pki["ca"].pem)
    assert certs_dirs(HOST) == [tls.SYSTEM_CERTS_D / HOST]
    assert pki["ca"].der not in ca_ders(ssl_context_for(HOST))


@pytest.mark.parametrize("host", ["", ".", "..", "../etc", "a/b"])
def test_certs_dirs_refuses_path_like_hosts(host: str) -> None:
    with pytest.raises(ValueError, match="not a registry host"):
        certs_dirs(host, Path("/x"))


# --- a real handshake ----------------------------------------------------------------------


def handshake(client: ssl.SSLContext, pki: dict[str, Issued], tmp_path: Path) -> str:
    """Serve one TLS connection that requires a client certificate from the client CA; return
    the common name of the certificate the client presented."""
    server_dir = tmp_path / "server"
    cert = put(server_dir, "server.pem", pki["server"].pem)
    key = put(server_dir, "server.key", pki["server"].key_pem())
    client_ca = put(server_dir, "client-ca.pem", pki["client_ca"].pem)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    server.verify_mode = ssl.CERT_REQUIRED
    server.load_verify_locations(client_ca)
    seen: list[str] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10)
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            try:
                with server.wrap_socket(conn, server_side=True) as tls_conn:
                    der = tls_conn.getpeercert(binary_form=True)
                    assert der is not None
                    names = x509.load_der_x509_certificate(der).subject
                    seen.append(str(names.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value))
                    tls_conn.sendall(b"ok")
            except (ssl.SSLError, OSError):
                conn.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            client.wrap_socket(raw, server_hostname="localhost") as conn,
        ):
            assert conn.recv(2) == b"ok"
        thread.join(10)
    return seen[0]


def test_handshake_with_certs_d_ca_and_client_pair(
    dirs: tuple[Path, Path], pki: dict[str, Issued], tmp_path: Path
) -> None:
    system, config = dirs
    put(system / HOST, "ca.crt", pki["ca"].pem)
    put(config / "certs.d" / HOST, "builder.cert", pki["client"].pem)
    put(config / "certs.d" / HOST, "builder.key", pki["client"].key_pem())
    assert handshake(ssl_context_for(HOST, config_dir=config), pki, tmp_path) == "builder-7"


def test_handshake_fails_without_the_ca(
    dirs: tuple[Path, Path], pki: dict[str, Issued], tmp_path: Path
) -> None:
    _, config = dirs
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(ssl_context_for(HOST, config_dir=config), pki, tmp_path)


def test_first_client_pair_is_presented_and_every_pair_is_checked(
    dirs: tuple[Path, Path], pki: dict[str, Issued], tmp_path: Path
) -> None:
    system, config = dirs
    put(system / HOST, "ca.crt", pki["ca"].pem)
    put(system / HOST, "b.cert", pki["client"].pem)
    put(system / HOST, "b.key", pki["client"].key_pem())
    put(config / "certs.d" / HOST, "a.cert", pki["other_client"].pem)
    put(config / "certs.d" / HOST, "a.key", pki["other_client"].key_pem())
    # /etc is read before the config dir, so its pair comes first despite its name.
    assert handshake(ssl_context_for(HOST, config_dir=config), pki, tmp_path) == "builder-7"

    put(config / "certs.d" / HOST, "a.key", pki["client"].key_pem())  # no longer matches a.cert
    with pytest.raises(TLSConfigError, match=r"a\.cert \+ a\.key: not a usable client"):
        ssl_context_for(HOST, config_dir=config)


# --- errors --------------------------------------------------------------------------------


def test_unreadable_ca_names_the_file(dirs: tuple[Path, Path]) -> None:
    system, config = dirs
    bad = put(system / HOST, "ca.crt", b"-----BEGIN CERTIFICATE-----\nnot base64\n")
    with pytest.raises(TLSConfigError) as caught:
        ssl_context_for(HOST, config_dir=config)
    assert str(caught.value).startswith(f"{bad}: not a usable PEM CA certificate: ")
    assert "_ssl.c" not in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.exit_code == EXIT_BAD_INPUT


def test_missing_extra_ca_names_the_file(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    _, config = dirs
    missing = tmp_path / "missing.pem"
    with pytest.raises(TLSConfigError) as caught:
        ssl_context_for(HOST, extra_ca=missing, config_dir=config)
    assert str(caught.value) == f"{missing}: cannot read CA certificate: No such file or directory"


def test_cert_without_key_is_refused_like_docker(
    dirs: tuple[Path, Path], pki: dict[str, Issued]
) -> None:
    system, config = dirs
    cert = put(system / HOST, "ca.cert", pki["ca"].pem)
    with pytest.raises(TLSConfigError) as caught:
        ssl_context_for(HOST, config_dir=config)
    assert str(caught.value) == (
        f"{cert}: client certificate without its key ca.key;"
        " CA certificates must use the extension .crt"
    )


def test_key_without_cert_is_refused(dirs: tuple[Path, Path], pki: dict[str, Issued]) -> None:
    _, config = dirs
    key = put(config / "certs.d" / HOST, "client.key", pki["client"].key_pem())
    with pytest.raises(TLSConfigError) as caught:
        ssl_context_for(HOST, config_dir=config)
    assert str(caught.value) == f"{key}: client key without its certificate client.cert"


def test_encrypted_client_key_is_refused_without_prompting(
    dirs: tuple[Path, Path], pki: dict[str, Issued]
) -> None:
    _, config = dirs
    put(config / "certs.d" / HOST, "c.cert", pki["client"].pem)
    key = put(config / "certs.d" / HOST, "c.key", pki["client"].key_pem(b"passphrase"))
    with pytest.raises(TLSConfigError) as caught:
        ssl_context_for(HOST, config_dir=config)
    assert str(caught.value) == f"{key}: client key is encrypted; docker needs it unencrypted"


def test_certs_d_path_that_is_a_file(dirs: tuple[Path, Path]) -> None:
    system, config = dirs
    (system / HOST).write_text("not a directory")
    with pytest.raises(TLSConfigError, match=r"cannot list: Not a directory"):
        ssl_context_for(HOST, config_dir=config)


# --- plain HTTP ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "insecure", "allowed"),
    [
        ("localhost", (), True),
        ("localhost:5000", (), True),
        ("LocalHost:5000", (), True),
        ("127.0.0.1:5000", (), True),
        ("127.8.9.10", (), True),
        ("[::1]:5000", (), True),
        ("[::1]", (), True),
        ("::1", (), True),
        ("[::ffff:127.0.0.1]:80", (), True),
        ("localhost.example.com:5000", (), False),
        ("128.0.0.1:5000", (), False),
        ("ghcr.io", (), False),
        ("docker.io", (), False),
        ("myreg:5000", ["myreg:5000"], True),
        ("myreg:5000", ["http://myreg:5000"], True),
        ("myreg:5000", ["https://MyReg:5000/"], True),
        ("MyReg:5000", ["myreg:5000"], True),
        ("myreg:5000", ["myreg"], False),  # docker: the port is part of the registry's name
        ("myreg", ["myreg:5000"], False),
        ("10.1.2.3:5000", ["10.0.0.0/8"], True),
        ("10.1.2.3", ["10.0.0.0/8"], True),
        ("11.1.2.3", ["10.0.0.0/8"], False),
        ("[fd00::5]:5000", ["fd00::/8"], True),
        ("myreg.internal", ["10.0.0.0/8"], False),  # names are never resolved
        ("10.1.2.3", ["not/a-cidr"], False),
    ],
)
def test_plain_http_allowed(host: str, insecure: list[str], allowed: bool) -> None:
    assert plain_http_allowed(host, insecure) is allowed


def test_split_host_port() -> None:
    assert split_host_port("localhost:5000") == ("localhost", "5000")
    assert split_host_port("[::1]:5000") == ("::1", "5000")
    assert split_host_port("[::1]") == ("::1", None)
    assert split_host_port("::1") == ("::1", None)
    assert split_host_port("ghcr.io") == ("ghcr.io", None)
