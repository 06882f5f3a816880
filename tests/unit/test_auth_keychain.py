"""Credential helpers through the Keychain: real `docker-credential-*` executables on PATH, the
protocol as docker speaks it, docker's precedence, and secrets kept out of every message."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from lkpkg.auth.dockerconfig import DOCKER_HUB_SERVER
from lkpkg.auth.helpers import NOT_FOUND_MESSAGE, helper_get
from lkpkg.auth.keychain import Credential, Keychain
from lkpkg.errors import EXIT_ENVIRONMENT, CredentialHelperError, EnvironmentProblem

SECRET = "hunter2-Sup3r-S3cret"


class DockerHome:
    """A config dir, and a bin dir on PATH for fake helpers that record what docker sends."""

    def __init__(self, root: Path) -> None:
        self.config_dir = root / "docker"
        self.bin = root / "bin"
        self.log = root / "log"
        for d in (self.config_dir, self.bin, self.log):
            d.mkdir()

    def config(self, document: object) -> Path:
        path = self.config_dir / "config.json"
        path.write_text(json.dumps(document))
        return path

    def helper(self, name: str, stdout: str = "", *, code: int = 0, stderr: str = "") -> None:
        """`docker-credential-<name>`: saves stdin and argv per call, prints `stdout`."""
        (self.log / f"{name}.out").write_text(stdout)
        (self.log / f"{name}.err").write_text(stderr)
        script = self.bin / f"docker-credential-{name}"
        script.write_text(
            "#!/bin/sh\n"
            f'call=$(mktemp "{self.log}/{name}.call.XXXXXX") || exit 99\n'
            'cat > "$call"\n'
            'printf "%s\\n" "$@" > "$call.argv"\n'
            f'cat "{self.log}/{name}.out"\n'
            f'cat "{self.log}/{name}.err" >&2\n'
            f"exit {code}\n"
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR)

    def reply(self, name: str, username: str, secret: str = SECRET, *, code: int = 0) -> None:
        body = {"ServerURL": "ignored", "Username": username, "Secret": secret}
        self.helper(name, json.dumps(body), code=code)

    def calls(self, name: str) -> list[tuple[bytes, list[str]]]:
        """(stdin, argv) of every call of helper `name`."""
        found = sorted(p for p in self.log.glob(f"{name}.call.*") if p.suffix != ".argv")
        return [(p.read_bytes(), Path(f"{p}.argv").read_text().split()) for p in found]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DockerHome:
    h = DockerHome(tmp_path)
    monkeypatch.setenv("PATH", f"{h.bin}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("DOCKER_CONFIG", str(h.config_dir))
    return h


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --- the protocol --------------------------------------------------------------------------


def test_cred_helper_gets_bare_host_on_stdin(home: DockerHome) -> None:
    home.config({"credHelpers": {"localhost:5000": "test"}})
    home.reply("test", "me")
    cred = Keychain(env=os.environ).resolve("localhost:5000")
    assert cred == Credential("me", SECRET, False, "docker-credential-test (credHelpers)")
    # No trailing newline, and argv is only the action: the secret never goes the other way.
    assert home.calls("test") == [(b"localhost:5000", ["get"])]


@pytest.mark.parametrize("asked", ["docker.io", "index.docker.io", "registry-1.docker.io"])
@pytest.mark.parametrize("key", [DOCKER_HUB_SERVER, "docker.io", "index.docker.io"])
def test_docker_hub_helper_is_asked_for_the_v1_url(home: DockerHome, asked: str, key: str) -> None:
    home.config({"credHelpers": {key: "hub"}})
    home.reply("hub", "me")
    cred = Keychain(env=os.environ).resolve(asked)
    assert cred is not None and cred.secret == SECRET
    assert home.calls("hub") == [(DOCKER_HUB_SERVER.encode(), ["get"])]


def test_creds_store_gets_v1_url_for_docker_hub(home: DockerHome) -> None:
    home.config({"credsStore": "store", "auths": {DOCKER_HUB_SERVER: {}}})
    home.reply("store", "me")
    cred = Keychain(env=os.environ).resolve("docker.io")
    assert cred is not None and cred.source == "docker-credential-store (credsStore)"
    assert home.calls("store") == [(DOCKER_HUB_SERVER.encode(), ["get"])]


def test_token_username_means_identity_token(home: DockerHome) -> None:
    home.config({"credsStore": "store"})
    home.reply("store", "<token>")
    cred = Keychain(env=os.environ).resolve("ghcr.io")
    assert cred == Credential(None, SECRET, True, "docker-credential-store (credsStore)")


def test_reply_fields_match_case_insensitively_and_trailing_output_is_ignored(
    home: DockerHome,
) -> None:
    home.config({"credsStore": "store"})
    home.helper("store", json.dumps({"username": "me", "secret": SECRET}) + "\nbye\n")
    cred = Keychain(env=os.environ).resolve("ghcr.io")
    assert cred is not None and (cred.username, cred.secret) == ("me", SECRET)


def test_empty_secret_means_no_credential(home: DockerHome) -> None:
    home.config({"credsStore": "store"})
    home.reply("store", "", "")
    assert Keychain(env=os.environ).resolve("ghcr.io") is None


def test_not_found_is_no_credential_and_auths_are_not_consulted(home: DockerHome) -> None:
    # docker treats a configured helper as authoritative: the auths entry is never read.
    home.config({"credsStore": "store", "auths": {"ghcr.io": {"auth": b64("me:pw")}}})
    home.helper("store", NOT_FOUND_MESSAGE + "\n", code=1)
    chain = Keychain(env=os.environ)
    assert chain.resolve("ghcr.io") is None
    assert chain.sources_tried("ghcr.io") == (
        f"docker-credential-store (credsStore in {home.config_dir / 'config.json'}),"
        " asked for 'ghcr.io'"
    )


# --- precedence ----------------------------------------------------------------------------


def test_precedence_cred_helpers_then_creds_store_then_auths(home: DockerHome) -> None:
    auths = {"ghcr.io": {"auth": b64("file:pw")}, "quay.io": {"auth": b64("file:pw")}}
    home.config({"credHelpers": {"ghcr.io": "per"}, "credsStore": "store", "auths": auths})
    home.reply("per", "per-user")
    home.reply("store", "store-user")
    chain = Keychain(env=os.environ)
    ghcr, quay = chain.resolve("ghcr.io"), chain.resolve("quay.io")
    assert ghcr is not None and ghcr.username == "per-user"
    assert quay is not None and quay.username == "store-user"
    assert home.calls("per") == [(b"ghcr.io", ["get"])]
    assert home.calls("store") == [(b"quay.io", ["get"])]

    home.config({"credHelpers": {"ghcr.io": "per"}, "auths": auths})
    chain = Keychain(env=os.environ)
    quay = chain.resolve("quay.io")
    assert quay is not None and quay.username == "file"
    assert quay.source == f"{home.config_dir / 'config.json'} auths 'quay.io'"


def test_empty_cred_helper_pins_the_registry_to_auths(home: DockerHome) -> None:
    home.config(
        {
            "credHelpers": {"ghcr.io": ""},
            "credsStore": "store",
            "auths": {"ghcr.io": {"auth": b64("file:pw")}},
        }
    )
    home.reply("store", "store-user")
    cred = Keychain(env=os.environ).resolve("ghcr.io")
    assert cred is not None and cred.username == "file"
    assert home.calls("store") == []


def test_answers_are_cached_per_keychain(home: DockerHome) -> None:
    home.config({"credsStore": "store"})
    home.reply("store", "me")
    chain = Keychain(env=os.environ)
    for spelling in ("docker.io", "index.docker.io", "docker.io", DOCKER_HUB_SERVER):
        assert chain.resolve(spelling) is not None
    assert len(home.calls("store")) == 1
    Keychain(env=os.environ).resolve("docker.io")
    assert len(home.calls("store")) == 2


def test_explicit_env_is_where_helpers_are_found(home: DockerHome, tmp_path: Path) -> None:
    home.config({"credsStore": "store"})
    home.reply("store", "me")
    with pytest.raises(CredentialHelperError, match="not found on PATH"):
        Keychain(home.config_dir, env={"PATH": str(tmp_path / "empty")}).resolve("ghcr.io")
    # The fake helper is a shell script: it needs the system tools on PATH too.
    env = {"PATH": f"{home.bin}{os.pathsep}/usr/bin{os.pathsep}/bin"}
    assert Keychain(home.config_dir, env=env).resolve("ghcr.io") is not None


# --- failures and secrecy --------------------------------------------------------------------


def test_missing_helper_is_an_environment_problem(home: DockerHome) -> None:
    path = home.config({"credHelpers": {"ghcr.io": "nope"}})
    with pytest.raises(CredentialHelperError) as caught:
        Keychain(env=os.environ).resolve("ghcr.io")
    assert str(caught.value) == (
        f"docker-credential-nope: not found on PATH; it is configured (credHelpers 'ghcr.io'"
        f" in {path}) to hold the credentials for ghcr.io"
    )
    assert isinstance(caught.value, EnvironmentProblem)
    assert caught.value.exit_code == EXIT_ENVIRONMENT


def test_failing_helper_names_itself_and_its_complaint(home: DockerHome) -> None:
    home.config({"credsStore": "pass"})
    home.helper("pass", "gpg: decryption failed: No secret key\n", code=1)
    with pytest.raises(CredentialHelperError) as caught:
        Keychain(env=os.environ).resolve("ghcr.io")
    message = str(caught.value)
    assert message.startswith("docker-credential-pass get for ghcr.io (credsStore in ")
    assert message.endswith("failed (exit 1): gpg: decryption failed: No secret key")


def test_failing_helper_stderr_is_used_when_stdout_is_empty(home: DockerHome) -> None:
    home.config({"credsStore": "store"})
    home.helper("store", "", code=3, stderr="line one\nDBus is not running\n")
    with pytest.raises(CredentialHelperError, match=r"failed \(exit 3\): DBus is not running$"):
        Keychain(env=os.environ).resolve("ghcr.io")


def test_failing_helper_output_with_the_secret_is_not_repeated(home: DockerHome) -> None:
    home.config({"credsStore": "store"})
    home.reply("store", "me", code=1)
    with pytest.raises(CredentialHelperError) as caught:
        Keychain(env=os.environ).resolve("ghcr.io")
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)
    assert str(caught.value).endswith("failed (exit 1)")


@pytest.mark.parametrize(
    ("stdout", "why"),
    [
        (f"password is {SECRET}", "is not JSON"),
        (json.dumps([SECRET]), "is not a JSON object"),
        (json.dumps({"Username": "me", "Secret": [SECRET]}), "is not string Username and Secret"),
    ],
)
def test_unreadable_reply_is_an_error_without_the_output(
    home: DockerHome, stdout: str, why: str
) -> None:
    home.config({"credsStore": "store"})
    home.helper("store", stdout)
    with pytest.raises(CredentialHelperError) as caught:
        Keychain(env=os.environ).resolve("ghcr.io")
    assert str(caught.value).endswith(f"answered something that {why}")
    assert SECRET not in str(caught.value)


def test_helper_that_hangs_is_stopped(home: DockerHome) -> None:
    home.config({"credsStore": "slow"})
    script = home.bin / "docker-credential-slow"
    script.write_text("#!/bin/sh\nexec sleep 30\n")
    script.chmod(0o755)
    chain = Keychain(env=os.environ)
    chain.helper_timeout = 0.3
    with pytest.raises(CredentialHelperError, match=r"did not answer within 0\.3 s$"):
        chain.resolve("ghcr.io")


def test_helper_that_cannot_be_executed(home: DockerHome) -> None:
    home.config({"credsStore": "broken"})
    script = home.bin / "docker-credential-broken"
    script.write_bytes(b"\x7fELF garbage")
    script.chmod(0o755)
    with pytest.raises(CredentialHelperError, match="docker-credential-broken: cannot run"):
        Keychain(env=os.environ).resolve("ghcr.io")


def test_secret_never_in_repr_or_str() -> None:
    for cred in (
        Credential("me", SECRET, source="x"),
        Credential(None, SECRET, identity_token=True, source="y"),
    ):
        assert SECRET not in repr(cred) and SECRET not in str(cred)
        assert "<hidden>" in repr(cred)
    assert "identity token=<hidden>" in repr(Credential(None, SECRET, True))


def test_sources_tried_never_shows_secrets(home: DockerHome) -> None:
    path = home.config({"auths": {"ghcr.io": {"auth": b64(f"me:{SECRET}")}}})
    chain = Keychain(env=os.environ)
    assert chain.sources_tried("ghcr.io") == f"{path} auths 'ghcr.io'"
    assert chain.sources_tried("docker.io") == (
        f"{path} auths, which has no credential for '{DOCKER_HUB_SERVER}'"
        " or another Docker Hub spelling"
    )
    for text in (chain.sources_tried("ghcr.io"), repr(chain.resolve("ghcr.io"))):
        assert SECRET not in text and b64(f"me:{SECRET}") not in text


def test_helper_get_directly(home: DockerHome) -> None:
    home.reply("test", "me")
    reply = helper_get("test", "example.com", env=os.environ)
    assert reply is not None and reply.username == "me" and not reply.is_identity_token
    assert SECRET not in repr(reply)
