"""config.json: locating it, decoding `auths`, key matching for Docker Hub and others, errors."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from lkpkg.auth.dockerconfig import (
    DOCKER_HUB_SERVER,
    default_config_dir,
    is_docker_hub,
    load_config,
    matching_keys,
    server_address,
    strip_key,
)
from lkpkg.auth.keychain import Keychain
from lkpkg.errors import EXIT_BAD_INPUT, AuthConfigError, InputError

SECRET = "s3cr3t-Pa55"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write_config(config_dir: Path, document: object) -> Path:
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / "config.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document, indent=2))
    return path


def keychain(tmp_path: Path, document: object) -> Keychain:
    write_config(tmp_path / "docker", document)
    return Keychain(tmp_path / "docker", env={"PATH": "/nonexistent"})


# --- locating ----------------------------------------------------------------------------


def test_default_config_dir_prefers_docker_config() -> None:
    assert default_config_dir({"DOCKER_CONFIG": "/x/y", "HOME": "/h"}) == Path("/x/y")
    assert default_config_dir({"HOME": "/h"}) == Path("/h/.docker")
    # docker treats an empty DOCKER_CONFIG as unset.
    assert default_config_dir({"DOCKER_CONFIG": "", "HOME": "/h"}) == Path("/h/.docker")


def test_keychain_reads_docker_config_from_env(tmp_path: Path) -> None:
    write_config(tmp_path / "cfg", {"auths": {"ghcr.io": {"auth": b64(f"me:{SECRET}")}}})
    env = {"DOCKER_CONFIG": str(tmp_path / "cfg"), "HOME": str(tmp_path / "home")}
    cred = Keychain(env=env).resolve("ghcr.io")
    assert cred is not None
    assert (cred.username, cred.secret) == ("me", SECRET)


def test_missing_config_means_no_credentials(tmp_path: Path) -> None:
    chain = Keychain(tmp_path / "nowhere", env={})
    assert chain.resolve("docker.io") is None
    assert "does not exist" in chain.sources_tried("docker.io")
    assert not load_config(tmp_path / "nowhere").exists


@pytest.mark.parametrize("text", ["", "  \n\t"])
def test_empty_config_file_is_an_empty_config(tmp_path: Path, text: str) -> None:
    assert keychain(tmp_path, text).resolve("docker.io") is None


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "docker" / "config.json"
    path.parent.mkdir()
    doc = {"auths": {"ghcr.io": {"auth": b64(f"me:{SECRET}")}}}
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(doc).encode())
    cred = Keychain(path.parent, env={}).resolve("ghcr.io")
    assert cred is not None and cred.secret == SECRET


# --- auths entries -----------------------------------------------------------------------


def test_auth_password_may_contain_colons(tmp_path: Path) -> None:
    chain = keychain(tmp_path, {"auths": {"ghcr.io": {"auth": b64("me:a:b::c:")}}})
    cred = chain.resolve("ghcr.io")
    assert cred is not None
    assert (cred.username, cred.secret, cred.identity_token) == ("me", "a:b::c:", False)
    assert cred.source == f"{tmp_path / 'docker' / 'config.json'} auths 'ghcr.io'"


def test_auth_with_line_breaks_and_nul_padding(tmp_path: Path) -> None:
    encoded = b64(f"me:{SECRET}\x00\x00")
    wrapped = encoded[:8] + "\r\n" + encoded[8:] + "\n"
    cred = keychain(tmp_path, {"auths": {"ghcr.io": {"auth": wrapped}}}).resolve("ghcr.io")
    assert cred is not None and cred.secret == SECRET


def test_username_and_password_fields(tmp_path: Path) -> None:
    doc = {"auths": {"ghcr.io": {"username": "me", "password": SECRET}}}
    cred = keychain(tmp_path, doc).resolve("ghcr.io")
    assert cred is not None
    assert (cred.username, cred.secret) == ("me", SECRET)


def test_auth_wins_over_username_and_password(tmp_path: Path) -> None:
    doc = {"auths": {"ghcr.io": {"username": "x", "password": "y", "auth": b64(f"me:{SECRET}")}}}
    cred = keychain(tmp_path, doc).resolve("ghcr.io")
    assert cred is not None
    assert (cred.username, cred.secret) == ("me", SECRET)


def test_identity_token_wins_and_keeps_username(tmp_path: Path) -> None:
    doc = {"auths": {"ghcr.io": {"auth": b64("me:pw"), "identitytoken": "refresh-" + SECRET}}}
    cred = keychain(tmp_path, doc).resolve("ghcr.io")
    assert cred is not None
    assert (cred.username, cred.secret, cred.identity_token) == ("me", "refresh-" + SECRET, True)


def test_registry_token_alone_is_not_a_credential(tmp_path: Path) -> None:
    doc = {"auths": {"ghcr.io": {"registrytoken": SECRET}}}
    assert keychain(tmp_path, doc).resolve("ghcr.io") is None


def test_field_names_match_case_insensitively_like_go(tmp_path: Path) -> None:
    doc = {"Auths": {"ghcr.io": {"Auth": b64("me:pw"), "IdentityToken": SECRET}}}
    cred = keychain(tmp_path, doc).resolve("ghcr.io")
    assert cred is not None and cred.identity_token and cred.secret == SECRET


def test_placeholder_entries_hold_nothing(tmp_path: Path) -> None:
    doc = {"auths": {DOCKER_HUB_SERVER: {}, "docker.io": {"auth": b64(f"me:{SECRET}")}}}
    chain = keychain(tmp_path, doc)
    cred = chain.resolve("docker.io")
    assert cred is not None and cred.source.endswith("auths 'docker.io'")
    assert keychain(tmp_path, {"auths": {"ghcr.io": {"auth": ""}}}).resolve("ghcr.io") is None


# --- key matching ------------------------------------------------------------------------

HUB_KEYS = [
    DOCKER_HUB_SERVER,
    "https://index.docker.io/v1",
    "index.docker.io",
    "docker.io",
    "registry-1.docker.io",
    "https://registry-1.docker.io/v2/",
    "http://docker.io",
    "HTTPS://Index.Docker.IO/v1/",
]


@pytest.mark.parametrize("key", HUB_KEYS)
@pytest.mark.parametrize("asked", ["docker.io", "index.docker.io", "registry-1.docker.io"])
def test_docker_hub_key_variants(tmp_path: Path, key: str, asked: str) -> None:
    cred = keychain(tmp_path, {"auths": {key: {"auth": b64(f"me:{SECRET}")}}}).resolve(asked)
    assert cred is not None and cred.secret == SECRET


def test_docker_hub_exact_key_wins_over_variants(tmp_path: Path) -> None:
    doc = {
        "auths": {
            "docker.io": {"auth": b64("other:pw")},
            DOCKER_HUB_SERVER: {"auth": b64(f"me:{SECRET}")},
        }
    }
    cred = keychain(tmp_path, doc).resolve("docker.io")
    assert cred is not None and cred.username == "me"


@pytest.mark.parametrize(
    ("key", "registry", "matches"),
    [
        ("ghcr.io", "ghcr.io", True),
        ("https://ghcr.io", "ghcr.io", True),
        ("https://ghcr.io/v2/", "ghcr.io", True),
        ("http://localhost:5000/v2/", "localhost:5000", True),
        ("LOCALHOST:5000", "localhost:5000", True),
        ("localhost:5000", "localhost:5001", False),
        ("localhost", "localhost:5000", False),
        ("ghcr.io", "docker.io", False),
        ("docker.io", "ghcr.io", False),
        ("ghcr.io.evil.example", "ghcr.io", False),
        ("[::1]:5000", "[::1]:5000", True),
    ],
)
def test_key_matching(tmp_path: Path, key: str, registry: str, matches: bool) -> None:
    cred = keychain(tmp_path, {"auths": {key: {"auth": b64("me:pw")}}}).resolve(registry)
    assert (cred is not None) is matches


def test_key_helpers() -> None:
    assert strip_key("https://ghcr.io/v2/x") == "ghcr.io"
    assert strip_key("localhost:5000") == "localhost:5000"
    assert server_address("docker.io") == DOCKER_HUB_SERVER
    assert server_address("registry-1.docker.io") == DOCKER_HUB_SERVER
    assert server_address("https://ghcr.io/") == "ghcr.io"
    assert is_docker_hub(DOCKER_HUB_SERVER) and not is_docker_hub("docker.io.example")
    assert matching_keys(["https://ghcr.io", "ghcr.io", "quay.io"], "ghcr.io") == [
        "ghcr.io",
        "https://ghcr.io",
    ]


# --- errors ------------------------------------------------------------------------------


def test_malformed_json_names_file_line_and_column(tmp_path: Path) -> None:
    text = '{\n  "auths": {\n    "ghcr.io": {"auth": "' + b64(f"me:{SECRET}") + '"}\n  },,\n}\n'
    path = write_config(tmp_path / "docker", text)
    with pytest.raises(AuthConfigError) as caught:
        Keychain(path.parent, env={}).resolve("ghcr.io")
    message = str(caught.value)
    assert message.startswith(f"{path}:4:5: invalid JSON: ")
    assert "\n" not in message
    assert SECRET not in message and b64(f"me:{SECRET}") not in message
    assert isinstance(caught.value, InputError)
    assert caught.value.exit_code == EXIT_BAD_INPUT


def test_sources_tried_reports_a_malformed_file_without_raising(tmp_path: Path) -> None:
    path = write_config(tmp_path / "docker", "{nope")
    text = Keychain(path.parent, env={}).sources_tried("ghcr.io")
    assert str(path) in text and "invalid JSON" in text


@pytest.mark.parametrize(
    ("auth", "why"),
    [
        ("not base64!", "not base64"),
        (b64(SECRET), "does not decode to 'username:password'"),
        (b64(":" + SECRET), "does not decode to 'username:password'"),
        (base64.b64encode(b"me:\xff\xfe").decode(), "not base64 of UTF-8"),
    ],
)
def test_bad_auth_value_is_reported_without_the_value(tmp_path: Path, auth: str, why: str) -> None:
    path = write_config(tmp_path / "docker", {"auths": {"ghcr.io": {"auth": auth}}})
    with pytest.raises(AuthConfigError) as caught:
        load_config(path.parent)
    message = str(caught.value)
    assert message.startswith(f"{path}: auths 'ghcr.io' 'auth' ")
    assert why in message
    assert auth not in message and SECRET not in message


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ([], "the top level must be an object, not an array"),
        ({"auths": []}, "'auths' must be an object, not an array"),
        ({"auths": {"ghcr.io": "x"}}, "auths 'ghcr.io' must be an object, not a string"),
        ({"auths": {"ghcr.io": {"auth": 1}}}, "auths 'ghcr.io' 'auth' must be a string"),
        ({"credsStore": 1}, "'credsStore' must be a string, not a number"),
        ({"credHelpers": {"ghcr.io": True}}, "credHelpers 'ghcr.io' must be a string"),
        ({"credsStore": "../../bin/sh"}, "is not a credential helper name"),
    ],
)
def test_wrong_shapes(tmp_path: Path, document: object, fragment: str) -> None:
    path = write_config(tmp_path / "docker", document)
    with pytest.raises(AuthConfigError) as caught:
        load_config(path.parent)
    assert str(caught.value).startswith(f"{path}: ")
    assert fragment in str(caught.value)


def test_unknown_keys_are_ignored(tmp_path: Path) -> None:
    doc = {
        "auths": {"ghcr.io": {"auth": b64("me:pw"), "email": "x@y"}},
        "proxies": {"default": {}},
        "currentContext": "x",
        "credsStore": None,
    }
    assert keychain(tmp_path, doc).resolve("ghcr.io") is not None
