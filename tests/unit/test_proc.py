from __future__ import annotations

from lkpkg.proc import DEFAULT_PATH, child_environment

PARENT = {
    "PATH": "/opt/bin:/usr/bin",
    "HOME": "/root",
    "LC_ALL": "C",
    "COSIGN_PASSWORD": "s3cret",
    "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": "s3cret",
    "NOTARY_TARGETS_PASSPHRASE": "s3cret",
    "CONTAINERS_STORAGE_CONF": "/etc/x.conf",
    "AWS_SECRET_ACCESS_KEY": "other",
}


def test_only_allowed_variables_reach_a_child() -> None:
    env = child_environment(PARENT, ("CONTAINERS_*",), overrides={"DOCKER_BUILDKIT": "1"})
    assert env == {
        "PATH": "/opt/bin:/usr/bin",
        "HOME": "/root",
        "LC_ALL": "C",
        "CONTAINERS_STORAGE_CONF": "/etc/x.conf",
        "DOCKER_BUILDKIT": "1",
    }


def test_passphrases_need_an_explicit_grant_even_when_listed() -> None:
    listed = child_environment(PARENT, ("COSIGN_*", "DOCKER_*", "NOTARY_*"))
    assert not {k for k in listed if "PASS" in k}
    granted = child_environment(PARENT, ("NOTARY_*",), secrets_allowed=("NOTARY_*",))
    assert granted["NOTARY_TARGETS_PASSPHRASE"] == "s3cret"
    assert "COSIGN_PASSWORD" not in granted


def test_a_child_always_has_a_path() -> None:
    assert child_environment({}, ())["PATH"] == DEFAULT_PATH
