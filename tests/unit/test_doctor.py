"""`lkpkg doctor`'s checks, each on real small inputs: binfmt directories in tmp, docker config
files, environment dicts, key files. No network and no builder runs here."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from lkpkg import doctor
from lkpkg.auth import checks as auth_checks
from lkpkg.auth.keychain import Keychain
from lkpkg.builders import checks as build_checks
from lkpkg.checks import CheckResult, Status
from lkpkg.cli.doctor import plain_lines, rich_lines
from lkpkg.errors import InputError
from lkpkg.oci.model import Platform
from lkpkg.registry import checks as registry_checks
from lkpkg.trust import checks as trust_checks
from lkpkg.trust import cosign
from lkpkg.trust.config import TrustConfig
from lkpkg.trust.passphrases import REPOSITORY_PASSPHRASE, ROOT_PASSPHRASE, DCTPassphrases
from lkpkg.trust.server import unreachable_hint

P = DCTPassphrases.from_environment

SECRET = "s3cret-Pass-phrase"
OTHER_SECRET = "0ther-s3cret"

BUILDAH_MISSING = "buildah is not installed (apt-get install buildah), or use --builder docker"
NO_ENGINE = "no Docker engine answers at the default socket (start dockerd or set DOCKER_HOST)"
NO_CLIENT = (
    "no docker client that can drive BuildKit (need buildx, or a client older than 23.0; "
    "set LKPKG_DOCKER_CLIENT)"
)


def lines(result: CheckResult) -> list[str]:
    out = plain_lines(result)
    assert all("\n" not in line for line in out)
    return out


@pytest.fixture
def amd64_host(monkeypatch):
    monkeypatch.setattr("platform.machine", lambda: "x86_64")


# -- the result type ---------------------------------------------------------------------------


def test_a_result_is_one_line_and_a_problem_always_has_a_fix():
    result = CheckResult.fail("x", "first\nsecond\n", "do\nthis")
    assert (result.detail, result.fix) == ("first second", "do this")
    with pytest.raises(ValueError, match="without a fix"):
        CheckResult("x", Status.WARN, "detail")
    assert CheckResult.ok("x", "fine").fix is None


def test_plain_output_is_a_status_line_and_a_fix_line():
    assert lines(CheckResult.ok("registry r", "answers")) == ["ok   registry r: answers"]
    assert lines(CheckResult.fail("registry r", "down", "start it")) == [
        "FAIL registry r: down",
        "     fix: start it",
    ]
    assert lines(CheckResult.warn("c", "none", "login"))[0] == "warn c: none"


def test_terminal_output_is_the_same_lines_in_colour():
    result = CheckResult.fail("registry r", "down [x]", "start it")
    texts = rich_lines(result)
    assert [t.plain for t in texts] == plain_lines(result)  # markup in details is not parsed
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, color_system="standard", width=20)
    console.print(texts[0], soft_wrap=True)
    written = buffer.getvalue()
    assert "\x1b[1;31mFAIL" in written and written.count("\n") == 1


def test_summary_counts_every_status():
    results = [
        CheckResult.ok("a", "."),
        CheckResult.warn("b", ".", "f"),
        CheckResult.fail("c", ".", "f"),
        CheckResult.fail("d", ".", "f"),
    ]
    summary = doctor.Summary.of(results)
    assert (summary.ok, summary.warnings, summary.failed, summary.total) == (1, 1, 2, 4)
    assert str(summary) == "4 checks: 1 ok, 1 warning, 2 failed"


# -- builders ----------------------------------------------------------------------------------


def test_auto_prefers_buildah_and_says_what_docker_would_do():
    result = build_checks.builder_check("auto", {"buildah": None, "docker": NO_ENGINE})
    assert result.status is Status.OK
    assert result.detail.startswith("picks buildah; docker: no Docker engine answers")


def test_auto_falls_back_to_docker_and_says_why_not_buildah():
    result = build_checks.builder_check("auto", {"buildah": BUILDAH_MISSING, "docker": None})
    assert result.status is Status.OK
    assert result.detail == f"picks docker; buildah: {BUILDAH_MISSING}"


def test_auto_with_neither_fails_with_the_apt_get_fix():
    result = build_checks.builder_check("auto", {"buildah": BUILDAH_MISSING, "docker": NO_CLIENT})
    assert result.status is Status.FAIL
    assert "buildah: buildah is not installed" in result.detail
    assert "docker: no docker client" in result.detail
    assert result.fix is not None and "apt-get install buildah" in result.fix


def test_an_explicit_choice_that_cannot_run_names_the_one_that_can():
    result = build_checks.builder_check("docker", {"buildah": None, "docker": NO_ENGINE})
    assert result.status is Status.FAIL
    assert result.detail == f"no usable builder: docker: {NO_ENGINE}"
    assert result.fix is not None
    assert "start dockerd" in result.fix and "--builder buildah (usable here)" in result.fix

    result = build_checks.builder_check("docker", {"buildah": BUILDAH_MISSING, "docker": NO_CLIENT})
    assert result.fix is not None and "apt-get install docker.io" in result.fix
    assert "--builder buildah" not in result.fix

    result = build_checks.builder_check("buildah", {"buildah": BUILDAH_MISSING, "docker": None})
    assert result.fix == "apt-get install buildah, or --builder docker (usable here)"


def test_builder_host_verdicts():
    url = "ssh://builder@arm.example"
    assert build_checks.builder_host_check("linux/arm64", url, None).status is Status.OK
    problem = f"no Docker engine answers at {url} (start dockerd or set DOCKER_HOST)"
    result = build_checks.builder_host_check("linux/arm64", url, problem)
    assert result.status is Status.FAIL
    # The local engine's hint (DOCKER_HOST) does not apply to a remote engine.
    assert result.detail == f"no Docker engine answers at {url}"
    assert result.fix is not None and f"--builder-host linux/arm64={url}" in result.fix


# -- platforms ---------------------------------------------------------------------------------


def test_native_platform_needs_no_emulation(amd64_host, tmp_path):
    result = build_checks.platform_check(
        Platform("linux", "amd64"), builder_hosts={}, binfmt_dir=tmp_path
    )
    assert result.status is Status.OK and "native" in result.detail


def test_missing_qemu_handler_fails_with_the_apt_get_fix(amd64_host, tmp_path):
    result = build_checks.platform_check(
        Platform("linux", "arm64"), builder_hosts={}, binfmt_dir=tmp_path
    )
    assert result.status is Status.FAIL
    assert "qemu-aarch64" in result.detail and "(" not in result.detail
    assert result.fix is not None
    assert result.fix.startswith("apt-get install qemu-user-static binfmt-support")
    assert "--builder-host linux/arm64=" in result.fix


def test_disabled_and_enabled_handlers(amd64_host, tmp_path):
    handler = tmp_path / "qemu-aarch64"
    handler.write_text("disabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n")
    result = build_checks.platform_check(
        Platform("linux", "arm64"), builder_hosts={}, binfmt_dir=tmp_path
    )
    assert result.fix is not None and result.fix.startswith("update-binfmts --enable qemu-aarch64")
    handler.write_text("enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n")
    result = build_checks.platform_check(
        Platform("linux", "arm64"), builder_hosts={}, binfmt_dir=tmp_path
    )
    assert result.status is Status.OK and "emulated" in result.detail


def test_unmounted_binfmt_dir_says_to_mount_it(amd64_host, tmp_path):
    missing = tmp_path / "binfmt_misc"
    result = build_checks.platform_check(
        Platform("linux", "s390x"), builder_hosts={}, binfmt_dir=missing
    )
    assert result.fix is not None
    assert result.fix.startswith(f"mount -t binfmt_misc binfmt_misc {missing}, then apt-get")


def test_a_platform_on_a_builder_host_needs_no_emulator(amd64_host, tmp_path):
    hosts = {"linux/arm64": "ssh://u@arm"}
    result = build_checks.platform_check(
        Platform("linux", "arm64"), builder_hosts=hosts, binfmt_dir=tmp_path
    )
    assert result.status is Status.OK and "ssh://u@arm" in result.detail


def test_an_architecture_without_emulator_points_at_a_builder_host(amd64_host, tmp_path):
    result = build_checks.platform_check(
        Platform("linux", "sparc64"), builder_hosts={}, binfmt_dir=tmp_path
    )
    assert result.status is Status.FAIL
    assert result.fix is not None and "--builder-host linux/sparc64=" in result.fix


# -- registries --------------------------------------------------------------------------------


def test_unreachable_registry_fixes(tmp_path):
    def fix(reason: str, *, plain: bool = True, public: bool = False) -> str:
        return registry_checks.unreachable_fix(
            "reg.example:5000",
            reason,
            plain_http_allowed=plain,
            config_dir=tmp_path,
            public=public,
        )

    assert "start the registry at reg.example:5000" in fix("connection refused")
    assert "check the host name 'reg.example:5000'" in fix("cannot resolve host (x)")
    assert "--timeout" in fix("timed out connecting")
    assert f"{tmp_path}/certs.d/reg.example:5000/ca.crt" in fix(
        "TLS certificate verify failed: unable to get local issuer certificate"
    )
    plain_http = fix("TLS handshake failed: WRONG_VERSION_NUMBER", plain=False)
    assert (
        plain_http == "a registry that speaks plain http needs --insecure-registry reg.example:5000"
    )
    assert "org" not in fix("cannot resolve host (x)", public=True)


def test_trust_server_fixes(tmp_path):
    ca = tmp_path / "tls" / "n:4443" / "ca.crt"

    def fix(reason: str, guessed: bool = False) -> str:
        config = TrustConfig("https://n:4443", tmp_path / "trust", None, guessed)
        return unreachable_hint(config, reason, ca_path=ca)

    assert fix("TLS certificate verify failed: x") == (
        f"put the trust server's CA at {ca}, or pass --trust-ca FILE"
    )
    assert fix("connection refused").startswith("start the notary server at n:4443")
    assert "NOTRUST=1" in fix("connection refused")
    guessed = fix("TLS handshake failed: WRONG_VERSION_NUMBER", guessed=True)
    assert guessed.startswith("set DOCKER_CONTENT_TRUST_SERVER=https://")
    assert "registry's own address n:4443" in guessed


def write_config(directory: Path, document: object) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(document))
    return directory


def test_credentials_say_where_they_come_from_never_what(tmp_path):
    auth = base64.b64encode(f"wombat:{SECRET}".encode()).decode()
    config = write_config(tmp_path / "docker", {"auths": {"reg.example:5000": {"auth": auth}}})
    keychain = Keychain(config, env={"PATH": ""})
    result = auth_checks.credentials_check("reg.example:5000", keychain)
    assert result.status is Status.OK
    assert result.detail == (f"user 'wombat' from {config}/config.json auths 'reg.example:5000'")
    assert SECRET not in " ".join(lines(result))


def test_no_credentials_is_a_warning_with_docker_login(tmp_path):
    keychain = Keychain(tmp_path / "nothing", env={"PATH": ""})
    result = auth_checks.credentials_check("reg.example:5000", keychain)
    assert result.status is Status.WARN
    assert "does not exist" in result.detail
    assert result.fix == "docker login reg.example:5000"


def test_a_malformed_docker_config_fails(tmp_path):
    config = tmp_path / "docker"
    config.mkdir()
    (config / "config.json").write_text('{"auths": ')
    result = auth_checks.credentials_check("reg.example", Keychain(config, env={"PATH": ""}))
    assert result.status is Status.FAIL and "config.json" in result.detail


def test_a_missing_credential_helper_fails(tmp_path):
    config = write_config(tmp_path / "docker", {"credsStore": "lkpkg-absent"})
    result = auth_checks.credentials_check(
        "reg.example", Keychain(config, env={"PATH": str(tmp_path)})
    )
    assert result.status is Status.FAIL
    assert "docker-credential-lkpkg-absent" in result.detail
    assert result.fix is not None and "credsStore" in result.fix


# -- trust -------------------------------------------------------------------------------------


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name.removeprefix("passphrase "): r for r in results}


def test_no_passphrases_fail_naming_the_variable_and_notrust():
    results = by_name(trust_checks.passphrase_checks(P({}), {"reg/x/y": False}))
    repo = results[REPOSITORY_PASSPHRASE]
    assert repo.status is Status.FAIL
    assert repo.fix is not None and REPOSITORY_PASSPHRASE in repo.fix and "NOTRUST=1" in repo.fix
    root = results[ROOT_PASSPHRASE]
    assert root.status is Status.FAIL and "reg/x/y is not on the trust server yet" in root.detail


def test_root_passphrase_only_when_a_repository_is_new():
    env = {REPOSITORY_PASSPHRASE: SECRET}
    existing = by_name(trust_checks.passphrase_checks(P(env), {"reg/x/y": True}))
    assert existing[ROOT_PASSPHRASE].status is Status.OK
    assert "not needed" in existing[ROOT_PASSPHRASE].detail
    unknown = by_name(trust_checks.passphrase_checks(P(env), {"reg/x/y": None}, "answered 401"))
    assert unknown[ROOT_PASSPHRASE].status is Status.WARN
    assert "answered 401" in unknown[ROOT_PASSPHRASE].detail
    no_packages = by_name(trust_checks.passphrase_checks(P(env), {}))
    assert no_packages[ROOT_PASSPHRASE].status is Status.WARN


def test_set_passphrases_are_reported_set_and_never_shown():
    env = {REPOSITORY_PASSPHRASE: SECRET, ROOT_PASSPHRASE: OTHER_SECRET}
    results = trust_checks.passphrase_checks(P(env), {"reg/x/y": False})
    assert [r.status for r in results] == [Status.OK, Status.OK]
    text = " ".join(line for r in results for line in lines(r))
    assert SECRET not in text and OTHER_SECRET not in text


def test_an_empty_passphrase_counts_as_unset():
    results = by_name(trust_checks.passphrase_checks(P({REPOSITORY_PASSPHRASE: ""}), {}))
    assert results[REPOSITORY_PASSPHRASE].status is Status.FAIL


def test_notary_cli_missing_says_how_to_install(tmp_path):
    result = trust_checks.notary_cli_check(str(tmp_path))
    assert result.status is Status.FAIL
    assert result.fix is not None and "apt-get install notary" in result.fix


# -- cosign ------------------------------------------------------------------------------------


@pytest.fixture
def cosign_key(tmp_path: Path) -> Path:
    key = tmp_path / "cosign.key"
    cosign.generate_key_pair(key, tmp_path / "cosign.pub", SECRET)
    return key


def test_cosign_key_loads_with_its_password(cosign_key):
    result = trust_checks.cosign_key_check(cosign_key, SECRET)
    assert result.status is Status.OK and "secp256r1" in result.detail


def test_cosign_key_without_password_says_to_export_it(cosign_key):
    result = trust_checks.cosign_key_check(cosign_key, None)
    assert result.status is Status.FAIL
    assert result.fix is not None and result.fix.startswith("export COSIGN_PASSWORD=")


def test_cosign_key_with_the_wrong_password_fails_without_showing_it(cosign_key):
    result = trust_checks.cosign_key_check(cosign_key, OTHER_SECRET)
    assert result.status is Status.FAIL and "wrong COSIGN_PASSWORD" in result.detail
    assert OTHER_SECRET not in " ".join(lines(result))


def test_missing_cosign_key_points_at_keygen(tmp_path):
    result = trust_checks.cosign_key_check(tmp_path / "absent.key", SECRET)
    assert result.status is Status.FAIL and "cannot read" in result.detail
    assert result.fix is not None and "lkpkg keygen" in result.fix


# -- what the options point at -----------------------------------------------------------------


def package(root: Path, name: str, build_yml: str) -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "Dockerfile").write_text("FROM scratch\n")
    (directory / "build.yml").write_text(build_yml)
    return directory


def test_targets_come_from_the_packages(amd64_host, tmp_path):
    signed = package(
        tmp_path, "a", "image: a\norg: localhost:5000/wombat\narches: [amd64, arm64]\n"
    )
    unsigned = package(
        tmp_path, "b", "image: b\norg: ghcr.io/x\narches: [s390x]\ndisable-content-trust: true\n"
    )
    targets = doctor.resolve_targets(doctor.DoctorOptions(directories=[signed, unsigned]))
    assert [str(p) for p in targets.platforms] == ["linux/amd64", "linux/arm64", "linux/s390x"]
    assert targets.registries == ("localhost:5000", "ghcr.io")
    assert targets.signed == {"localhost:5000": ("localhost:5000/wombat/a",)}


def test_org_overrides_and_platforms_replace_the_defaults(amd64_host, tmp_path):
    a = package(tmp_path, "a", "image: a\narches: [amd64, arm64]\n")
    options = doctor.DoctorOptions(
        org="127.0.0.1:5000/w", platforms=[Platform("linux", "riscv64")], directories=[a]
    )
    targets = doctor.resolve_targets(options)
    assert [str(p) for p in targets.platforms] == ["linux/riscv64"]
    assert targets.signed == {"127.0.0.1:5000": ("127.0.0.1:5000/w/a",)}


def test_without_packages_the_org_or_docker_hub(amd64_host):
    assert doctor.resolve_targets(doctor.DoctorOptions()).registries == ("docker.io",)
    hub = doctor.resolve_targets(doctor.DoctorOptions(org="wombat"))
    assert hub.registries == ("docker.io",) and hub.signed == {"docker.io": ()}
    assert doctor.org_domain("localhost:5000") == "localhost:5000"
    with pytest.raises(InputError):
        doctor.resolve_targets(doctor.DoctorOptions(org="Bad Org"))


def test_i386_on_amd64_is_native_not_emulated(amd64_host, tmp_path):
    result = build_checks.platform_check(
        Platform("linux", "386"), builder_hosts={}, binfmt_dir=tmp_path
    )
    assert result.status is Status.OK and "native" in result.detail
