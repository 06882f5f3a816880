"""`lkpkg doctor` against the real things: loopback registries, a notary server, a closed
port, a PATH without builders, an empty binfmt directory. Every run is the installed console
script, as a user runs it; every output line is one check line, its fix, or the summary."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
from pathlib import Path

import pytest

from lkpkg.platforms import host_platform
from lkpkg.trust.config import SERVER_VARIABLE, DCTSettings, TrustConfig
from lkpkg.trust.dct import DCTSigner, Target
from lkpkg.trust.passphrases import REPOSITORY_PASSPHRASE, ROOT_PASSPHRASE
from tests.conftest import lkpkg
from tests.fixtures.notary import NotaryInfo
from tests.fixtures.registry import RegistryInfo
from tests.integration.test_push import make_tiny

pytestmark = pytest.mark.integration

# Variables of the developer's shell that would change what doctor sees.
_SCRUBBED = (
    REPOSITORY_PASSPHRASE,
    ROOT_PASSPHRASE,
    SERVER_VARIABLE,
    "COSIGN_PASSWORD",
    "LKPKG_SIGN_KEY",
    "LKPKG_NOTRUST",
    "LKPKG_BUILDER",
    "LKPKG_BINFMT_DIR",
    "LKPKG_INSECURE_REGISTRIES",
    "DOCKER_CONFIG",
)


def doctor(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `lkpkg doctor` in the caller's environment minus `_SCRUBBED`, plus `env`; check the
    output's shape: check lines, fix lines under non-ok ones, one summary, one error line."""
    base = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    full = {**base, **env}
    exe = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "lkpkg"
    result = subprocess.run(
        [str(exe), "doctor", *args],
        capture_output=True,
        text=True,
        env=full,
        check=False,
        timeout=120,
    )
    out = result.stdout.splitlines()
    assert out, result.stderr
    assert out[-1].endswith("failed") and " checks: " in out[-1], out
    previous = ""
    for line in out[:-1]:
        if line.startswith("     fix: "):
            assert previous.startswith(("warn ", "FAIL ")), out
        else:
            assert line.startswith(("ok   ", "warn ", "FAIL ")), line
        previous = line
    if result.returncode == 0:
        assert result.stderr == "" and " 0 failed" in out[-1]
    else:
        assert result.returncode == 1, result.stderr
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("lkpkg: error: ")
    return result


def check(result: subprocess.CompletedProcess[str], name: str) -> tuple[str, str | None]:
    """The line of check `name` and its fix line (None for an ok check)."""
    out = result.stdout.splitlines()
    for index, line in enumerate(out):
        if line[5:].startswith(f"{name}: "):
            following = out[index + 1] if index + 1 < len(out) else ""
            return line, following[10:] if following.startswith("     fix: ") else None
    raise AssertionError(f"no check '{name}' in:\n{result.stdout}")


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when we return


def another_arch() -> str:
    return "s390x" if host_platform().architecture != "s390x" else "amd64"


# -- registries --------------------------------------------------------------------------------


def test_plain_loopback_registry_is_ok_and_missing_credentials_only_warn(registry_plain):
    result = doctor(
        "--notrust",
        "--org",
        f"{registry_plain.host}/wombat",
        env={"DOCKER_CONFIG": str(registry_plain.docker_config)},
    )
    line, fix = check(result, f"registry {registry_plain.host}")
    assert line.startswith("ok   ") and f"http://{registry_plain.host}/v2/" in line
    line, fix = check(result, f"credentials {registry_plain.host}")
    assert line.startswith("warn ") and fix == f"docker login {registry_plain.host}"
    assert result.returncode == 0, result.stdout


def test_basic_auth_registry_credentials_name_their_source_not_the_password(
    registry_basic: RegistryInfo,
):
    assert registry_basic.password is not None
    result = doctor(
        "--notrust",
        "--org",
        f"{registry_basic.host}/wombat",
        env={"DOCKER_CONFIG": str(registry_basic.docker_config)},
    )
    line, _ = check(result, f"registry {registry_basic.host}")
    assert line.startswith("ok   ") and f"https://{registry_basic.host}/v2/" in line
    line, fix = check(result, f"credentials {registry_basic.host}")
    config = registry_basic.docker_config / "config.json"
    assert line == (
        f"ok   credentials {registry_basic.host}: user 'wombat' from {config}"
        f" auths '{registry_basic.host}'"
    )
    assert fix is None
    assert registry_basic.password not in result.stdout + result.stderr


def test_a_closed_port_fails_with_a_fix(tmp_path):
    host = f"127.0.0.1:{closed_port()}"
    result = doctor("--notrust", "--org", f"{host}/wombat", env={"DOCKER_CONFIG": str(tmp_path)})
    line, fix = check(result, f"registry {host}")
    assert line == f"FAIL registry {host}: unreachable: connection refused"
    assert fix is not None and fix.startswith(f"start the registry at {host}")
    assert result.returncode == 1
    assert "checks failed" in result.stderr


# -- Docker Content Trust ----------------------------------------------------------------------


def trust_env(notary: NotaryInfo, config: Path, **passphrases: str) -> dict[str, str]:
    config.mkdir(parents=True, exist_ok=True)
    notary.install_ca(config)
    return {"DOCKER_CONFIG": str(config), SERVER_VARIABLE: notary.url, **passphrases}


def test_no_passphrase_fails_naming_the_variable_and_notrust(
    notary_server, registry_plain, tmp_path
):
    env = trust_env(notary_server, tmp_path / "docker")
    result = doctor("--org", f"{registry_plain.host}/wombat", env=env)
    line, fix = check(result, f"trust server {notary_server.url}")
    assert line.startswith("ok   ") and "healthy" in line and "ca.crt" in line
    line, fix = check(result, f"passphrase {REPOSITORY_PASSPHRASE}")
    assert line.startswith("FAIL ") and "not set" in line
    assert fix is not None and REPOSITORY_PASSPHRASE in fix and "NOTRUST=1" in fix
    assert result.returncode == 1


def test_trust_server_ok_and_root_passphrase_needed_only_for_a_new_repository(
    notary_server, registry_plain, tmp_path
):
    repo_pass = "repo-" + secrets.token_urlsafe(12)
    root_pass = "root-" + secrets.token_urlsafe(12)
    org = f"{registry_plain.host}/{registry_plain.repo('doctor')}"
    package = make_tiny(tmp_path / "repo")
    env = trust_env(notary_server, tmp_path / "docker", **{REPOSITORY_PASSPHRASE: repo_pass})

    # New on the trust server: its first signing needs the root key.
    result = doctor("--org", org, "--platforms", str(host_platform()), str(package), env=env)
    line, _ = check(result, f"trust server {notary_server.url}")
    assert line.startswith("ok   ")
    line, fix = check(result, f"passphrase {ROOT_PASSPHRASE}")
    assert line.startswith("FAIL ") and f"{org}/tiny is not on the trust server yet" in line
    assert fix is not None and ROOT_PASSPHRASE in fix and "NOTRUST=1" in fix
    assert check(result, f"passphrase {REPOSITORY_PASSPHRASE}")[0].endswith(": set")

    # Once something is signed there, the root passphrase is not needed any more.
    settings = DCTSettings.from_environment({**env, ROOT_PASSPHRASE: root_pass})
    signer = DCTSigner(TrustConfig.for_registry(registry_plain.host, settings), settings)
    signer.sign(f"{org}/tiny", [Target("doctor", "sha256:" + "ab" * 32, 123)])
    result = doctor("--org", org, "--platforms", str(host_platform()), str(package), env=env)
    line, fix = check(result, f"passphrase {ROOT_PASSPHRASE}")
    assert line.startswith("ok   ") and "not needed" in line and fix is None
    line, fix = check(result, f"signing keys {org}/tiny")
    assert line.startswith("ok   ") and fix is None
    assert repo_pass not in result.stdout + result.stderr
    assert root_pass not in result.stdout + result.stderr

    # A repository passphrase that unlocks none of its keys fails, as a push's preflight would.
    wrong = "wrong-" + secrets.token_urlsafe(8)
    result = doctor(
        "--org",
        org,
        "--platforms",
        str(host_platform()),
        str(package),
        env={**env, REPOSITORY_PASSPHRASE: wrong},
    )
    line, fix = check(result, f"signing keys {org}/tiny")
    assert line.startswith("FAIL ") and f"{REPOSITORY_PASSPHRASE} unlocks none" in line
    assert fix is not None and REPOSITORY_PASSPHRASE in fix
    assert wrong not in result.stdout + result.stderr and result.returncode == 1


def test_a_trust_server_without_its_ca_fails_with_where_to_put_it(
    notary_server, registry_plain, tmp_path
):
    config = tmp_path / "docker"
    config.mkdir()
    env = {"DOCKER_CONFIG": str(config), SERVER_VARIABLE: notary_server.url}
    result = doctor("--org", f"{registry_plain.host}/w", env=env)
    line, fix = check(result, f"trust server {notary_server.url}")
    assert line.startswith("FAIL ") and "certificate verify failed" in line
    assert fix == (
        f"put the trust server's CA at {config}/tls/{notary_server.host}/ca.crt,"
        " or pass --trust-ca FILE"
    )


# -- builders and emulation --------------------------------------------------------------------


def test_path_without_buildah_and_docker_fails_with_the_apt_get_fix(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {
        "PATH": str(empty),
        # Debian's client is also found at /usr/bin/docker whatever PATH says: no engine for it.
        "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock",
        "DOCKER_CONFIG": str(tmp_path),
    }
    result = doctor("--notrust", "--org", f"127.0.0.1:{closed_port()}/w", env=env)
    line, fix = check(result, "builder (auto)")
    assert line.startswith("FAIL builder (auto): no usable builder: buildah: buildah is not")
    assert fix is not None and fix.startswith("apt-get install buildah")
    assert result.returncode == 1


def test_a_platform_without_its_qemu_handler_fails_with_the_fix(tmp_path):
    binfmt = tmp_path / "binfmt_misc"
    binfmt.mkdir()
    arch = another_arch()
    env = {"LKPKG_BINFMT_DIR": str(binfmt), "DOCKER_CONFIG": str(tmp_path)}
    result = doctor(
        "--notrust", "--org", f"127.0.0.1:{closed_port()}/w", "--platforms", arch, env=env
    )
    line, fix = check(result, f"platform linux/{arch}")
    assert line.startswith("FAIL ") and "no qemu-user binfmt handler" in line
    assert fix is not None and fix.startswith("apt-get install qemu-user-static binfmt-support")


def test_a_builder_host_that_does_not_answer_fails(tmp_path):
    arch = another_arch()
    url = f"unix://{tmp_path}/remote.sock"
    result = doctor(
        "--notrust",
        "--org",
        f"127.0.0.1:{closed_port()}/w",
        "--platforms",
        arch,
        "--builder-host",
        f"linux/{arch}={url}",
        env={"DOCKER_CONFIG": str(tmp_path)},
    )
    line, fix = check(result, f"builder host linux/{arch}")
    assert line.startswith("FAIL ") and url in line
    assert fix is not None and f"--builder-host linux/{arch}={url}" in fix
    # That platform is the builder host's business, not this host's qemu.
    line, _ = check(result, f"platform linux/{arch}")
    assert line.startswith("ok   ") and "builder host" in line


# -- cosign ------------------------------------------------------------------------------------


def test_cosign_key_loads_only_with_its_password(tmp_path):
    password = "cosign-" + secrets.token_urlsafe(12)
    lkpkg(
        "keygen",
        "--output-key-prefix",
        str(tmp_path / "cosign"),
        env={"COSIGN_PASSWORD": password},
    )
    key = tmp_path / "cosign.key"
    org = f"127.0.0.1:{closed_port()}/w"
    base = {"DOCKER_CONFIG": str(tmp_path)}
    good = doctor(
        "--notrust", "--org", org, "--sign-key", str(key), env={**base, "COSIGN_PASSWORD": password}
    )
    assert check(good, f"cosign key {key}")[0].startswith("ok   ")
    wrong = doctor(
        "--notrust", "--org", org, "--sign-key", str(key), env={**base, "COSIGN_PASSWORD": "nope"}
    )
    line, fix = check(wrong, f"cosign key {key}")
    assert line.startswith("FAIL ") and fix is not None and "COSIGN_PASSWORD" in fix
    for result in (good, wrong):
        assert password not in result.stdout + result.stderr
