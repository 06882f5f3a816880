"""The seed's make command lines, verbatim, in packages written by `lkpkg init`: real make,
real builders, a loopback registry (checked with skopeo) and a notary trust server."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lkpkg.cache.layout import Cache
from lkpkg.platforms import host_platform
from tests.conftest import ROOT, git, lkpkg, run
from tests.fixtures.notary import NotaryInfo
from tests.fixtures.registry import RegistryInfo
from tests.integration.test_attest import is_attestation

pytestmark = pytest.mark.integration

VENV_BIN = ROOT / ".venv" / "bin"
ARCH = host_platform().architecture
HOST = f"linux/{ARCH}"  # make tag/push name the host's platform (the seed's meaning)
# Never inherited from the shell running the tests: each test says what make gets.
NOT_INHERITED = (
    "ORG",
    "HASH",
    "NOTRUST",
    "PLATFORMS",
    "LKPKG",
    "LKPKG_FLAGS",
    "LKPKG_DIRS",
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
    "LINUXKIT_CACHE",
    "DOCKER_CONFIG",
    "DOCKER_CONTENT_TRUST_SERVER",
    "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE",
    "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE",
    "COSIGN_PASSWORD",
)


def make(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`make ARGS` in `cwd` as a user would type it, with lkpkg from this checkout on PATH."""
    base = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    result = subprocess.run(
        ["make", *args],
        cwd=cwd,
        env={**base, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, f"make {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def printed(result: subprocess.CompletedProcess[str]) -> list[str]:
    """stdout without make's own "Entering directory" lines (make -C prints them)."""
    return [line for line in result.stdout.splitlines() if not line.startswith("make")]


def init_package(repo: Path, name: str, *, tiny: bool = True) -> Path:
    """`lkpkg init repo/NAME`; with `tiny`, its Dockerfile becomes a COPY-only one (builds in
    a second); committed."""
    package = repo / name
    lkpkg("init", str(package))
    if tiny:
        (package / "msg").write_text(f"{name}\n")
        (package / "Dockerfile").write_text("FROM scratch\nCOPY msg /msg\n")
    if not (repo / ".git").exists():
        git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", name)
    return package


def skopeo_raw(ref: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"]).stdout
    )
    return document


def registry_tags(repository: str) -> list[str]:
    listing = subprocess.run(
        ["skopeo", "list-tags", "--tls-verify=false", f"docker://{repository}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if listing.returncode != 0:  # the registry does not know the repository
        return []
    tags: list[str] = json.loads(listing.stdout)["Tags"]
    return tags


def assert_pushed(repository: str, tag: str) -> None:
    single = skopeo_raw(f"{repository}:{tag}-{ARCH}")
    assert single["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    index = skopeo_raw(f"{repository}:{tag}")
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [m["platform"]["architecture"] for m in index["manifests"] if not is_attestation(m)] == [
        ARCH
    ]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return tmp_path / "repo"


@pytest.fixture
def org(registry_plain: RegistryInfo) -> str:
    return f"{registry_plain.host}/{registry_plain.repo('wombat')}"


@pytest.fixture
def env(tmp_path: Path, registry_plain: RegistryInfo) -> dict[str, str]:
    return {
        "LINUXKIT_CACHE": str(tmp_path / "cache"),
        "DOCKER_CONFIG": str(registry_plain.docker_config),
    }


def test_tag_builds_the_init_skeleton_as_is_into_the_cache_only(
    repo, org, env, cache_dir, buildah_store
):
    package = init_package(repo, "hello", tiny=False)
    env = {**env, "LINUXKIT_CACHE": str(cache_dir)}
    result = make(package, f"ORG={org}", "NOTRUST=1", "tag", env=env)
    tag = git(repo, "rev-parse", "HEAD:hello")
    assert f"{org}/hello:{tag} sha256:" in result.stdout
    assert "building with" in result.stderr
    cache = Cache(cache_dir)
    assert cache.resolve(f"{org}/hello:{tag}-{ARCH}") is not None
    assert cache.resolve(f"{org}/hello:{tag}") is not None
    assert registry_tags(f"{org}/hello") == []


def test_push_sends_the_arch_tag_and_the_index(repo, org, env, buildah_store):
    package = init_package(repo, "tiny")
    result = make(package, f"ORG={org}", "NOTRUST=1", "push", env=env)
    tag = git(repo, "rev-parse", "HEAD:tiny")
    assert_pushed(f"{org}/tiny", tag)
    assert f"lkpkg push --org {org} --notrust --platforms {HOST} ." in result.stdout
    # The arch's SBOM and provenance ride beside it (docs/supply-chain.md).
    assert sorted(registry_tags(f"{org}/tiny")) == sorted(
        [tag, f"{tag}-{ARCH}", f"{tag}-{ARCH}-attestations"]
    )


def test_hash_foo_push_sends_foo_arch_and_foo(repo, org, env, buildah_store):
    package = init_package(repo, "tiny")
    make(package, f"ORG={org}", "NOTRUST=1", "HASH=foo", "push", env=env)
    assert_pushed(f"{org}/tiny", "foo")
    assert sorted(registry_tags(f"{org}/tiny")) == [
        "foo",
        f"foo-{ARCH}",
        f"foo-{ARCH}-attestations",
    ]


def test_maintainer_make_pushes_and_signs_the_arch_tag_and_the_index(
    tmp_path, repo, org, env, notary_server: NotaryInfo, buildah_store
):
    package = init_package(repo, "tiny")
    config = tmp_path / "maintainer"
    config.mkdir()
    notary_server.install_ca(config)
    root_pass = "root-" + secrets.token_urlsafe(12)
    repo_pass = "repo-" + secrets.token_urlsafe(12)
    trust = {"DOCKER_CONFIG": str(config), "DOCKER_CONTENT_TRUST_SERVER": notary_server.url}
    maintainer = {
        **env,
        **trust,
        "ORG": org,  # make reads the environment: build.yml's org stands in for linuxkit here
        "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE": root_pass,
        "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": repo_pass,
    }
    # DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE="<passphrase>" make
    result = make(package, env=maintainer)
    assert result.stdout.splitlines()[0] == f"lkpkg push --org {org} --platforms {HOST} ."
    assert "signed=dct" in result.stdout
    for secret in (root_pass, repo_pass):
        assert secret not in result.stdout + result.stderr
    tag = git(repo, "rev-parse", "HEAD:tiny")
    assert_pushed(f"{org}/tiny", tag)
    for name in (tag, f"{tag}-{ARCH}"):
        verified = lkpkg("verify", f"{org}/tiny:{name}", env=trust)
        assert "verified" in verified.stdout
    unsigned = lkpkg("verify", f"{org}/tiny:nosuchtag", env=trust, check=False)
    assert unsigned.returncode != 0


def test_make_show_tag_is_lkpkg_show_tag(repo, env):
    package = init_package(repo, "tiny")
    for args in ((), ("ORG=wombat",), ("HASH=foo",), ("ORG=localhost:5000/w", "HASH=foo")):
        flags = [
            word
            for arg in args
            for word in (f"--{arg.split('=')[0].lower()}", arg.split("=", 1)[1])
        ]
        expected = lkpkg("show-tag", *flags, str(package))
        assert make(package, *args, "show-tag", env=env).stdout == expected.stdout
    tag = git(repo, "rev-parse", "HEAD:tiny")
    assert make(package, "show-tag", env=env).stdout == f"linuxkit/tiny:{tag}\n"


def test_tag_again_reuses_the_cache_and_forcetag_rebuilds(repo, org, env, buildah_store):
    package = init_package(repo, "tiny")
    first = make(package, f"ORG={org}", "NOTRUST=1", "tag", env=env)
    assert "building with" in first.stderr
    again = make(package, f"ORG={org}", "NOTRUST=1", "tag", env=env)
    assert "in cache, not rebuilt" in again.stderr and "building with" not in again.stderr
    forced = make(package, f"ORG={org}", "NOTRUST=1", "forcetag", env=env)
    assert "building with" in forced.stderr
    assert f"lkpkg build --org {org} --platforms {HOST} --force ." in forced.stdout
    assert registry_tags(f"{org}/tiny") == []
    forcepush = make(package, f"ORG={org}", "NOTRUST=1", "forcepush", env=env)
    assert "building with" in forcepush.stderr
    assert_pushed(f"{org}/tiny", git(repo, "rev-parse", "HEAD:tiny"))


def test_a_tree_of_packages_in_one_lkpkg_run(repo, org, env, buildah_store):
    for name in ("one", "two", "three"):
        init_package(repo / "pkg", name)
    lkpkg("init", "--tree", str(repo / "pkg"))
    (repo / "pkg" / "notes").mkdir()  # no build.yml: not a package
    (repo / "pkg" / "notes" / "README").write_text("notes\n")
    git(repo / "pkg", "add", "-A")
    git(repo / "pkg", "commit", "-qm", "tree")
    names = ["one", "three", "two"]  # the tree lists them sorted
    shown = make(repo, "-C", "pkg", "show-tag", env=env)
    expected = lkpkg("show-tag", *(str(repo / "pkg" / n) for n in names))
    assert printed(shown) == expected.stdout.splitlines()

    pushed = make(repo, "-C", "pkg", f"ORG={org}", "NOTRUST=1", "push", env=env)
    commands = [line for line in pushed.stdout.splitlines() if line.startswith("lkpkg ")]
    assert commands == [f"lkpkg push --org {org} --notrust --platforms {HOST} one three two"]
    for name in names:
        assert_pushed(f"{org}/{name}", git(repo / "pkg", "rev-parse", f"HEAD:{name}"))
