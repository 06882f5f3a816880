"""The consumer side against a real registry and trust server: `cache pull` verifies before it
writes and leaves a layout umoci, skopeo and oci-image-tool read; `cache rm`/`clean`; `pin`
resolves, verifies and pins every image reference of a LinuxKit YAML, keeping its comments."""

from __future__ import annotations

import json
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import git, lkpkg, run
from tests.fixtures.notary import NotaryInfo
from tests.fixtures.registry import RegistryInfo
from tests.integration.test_push import make_tiny

pytestmark = pytest.mark.integration

SIGNED = ("alpha", "beta", "gamma", "delta")


@dataclass
class Shop:
    """A maintainer who pushed signed and unsigned tiny packages; a consumer's environment."""

    registry: RegistryInfo
    notary: NotaryInfo
    org: str
    repo: Path
    maintainer: Path
    consumer: Path
    secrets: dict[str, str]
    public_key: Path
    tags: dict[str, str]

    def env(self, *, maintainer: bool = False) -> dict[str, str]:
        env = {
            "DOCKER_CONFIG": str(self.maintainer if maintainer else self.consumer),
            "DOCKER_CONTENT_TRUST_SERVER": self.notary.url,
        }
        return {**env, **self.secrets} if maintainer else env

    def ref(self, name: str, suffix: str = "") -> str:
        return f"{self.org}/{name}:{self.tags[name]}{suffix}"

    def digest(self, ref: str) -> str:
        raw = run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"]).stdout
        import hashlib

        return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


@pytest.fixture(scope="module")
def shop(
    tmp_path_factory: pytest.TempPathFactory,
    registry_plain: RegistryInfo,
    notary_server: NotaryInfo,
    buildah_store: Path,
) -> Shop:
    root = tmp_path_factory.mktemp("consumer")
    maintainer, consumer = root / "maintainer", root / "consumer"
    for config in (maintainer, consumer):
        config.mkdir()
        notary_server.install_ca(config)
    passes = {
        "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE": "root-" + secrets.token_urlsafe(8),
        "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": "repo-" + secrets.token_urlsafe(8),
        "COSIGN_PASSWORD": "cosign-" + secrets.token_urlsafe(8),
    }
    repo = root / "repo"
    for name in (*SIGNED, "unsigned"):
        make_tiny(repo, name)
    org = f"{registry_plain.host}/{registry_plain.repo('consumer')}"
    shop = Shop(
        registry_plain,
        notary_server,
        org,
        repo,
        maintainer,
        consumer,
        passes,
        root / "cosign.pub",
        {name: git(repo, "rev-parse", f"HEAD:{name}") for name in (*SIGNED, "unsigned")},
    )
    env = shop.env(maintainer=True)
    lkpkg("keygen", "--output-key-prefix", str(root / "cosign"), env=env)
    common = ["--cache", str(root / "build-cache"), "--org", org, "-j", "2", "--progress", "plain"]
    common += ["--platforms", "linux/amd64,linux/arm64"]
    signed_dirs = [str(repo / n) for n in SIGNED]
    lkpkg("push", *common, "--sign-key", str(root / "cosign.key"), *signed_dirs, env=env)
    lkpkg("push", *common, "--notrust", str(repo / "unsigned"), env=env)
    return shop


def oci_checkers_read(cache: Path, ref: str) -> None:
    validated = run(["oci-image-tool", "validate", "--type", "image", str(cache)]).stdout
    assert "Validation succeeded" in validated
    assert ref in run(["umoci", "ls", "--layout", str(cache)]).stdout


def cache_refs(cache: Path) -> dict[str, dict[str, object]]:
    index = json.loads((cache / "index.json").read_text())
    return {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in index["manifests"]}


# -- cache pull --------------------------------------------------------------------------


def test_pull_verifies_then_stores_the_index_and_arch_refs_as_linuxkit_does(shop, tmp_path):
    cache = tmp_path / "cache"
    ref = shop.ref("alpha")
    result = lkpkg(
        "cache", "pull", "--cache", str(cache), "--key", str(shop.public_key), ref, env=shop.env()
    )
    assert "content trust, cosign" in result.stderr
    refs = cache_refs(cache)
    assert refs[ref]["digest"] == shop.digest(ref)
    for arch in ("amd64", "arm64"):
        assert refs[f"{ref}-{arch}"]["digest"] == shop.digest(f"{ref}-{arch}")
        config = json.loads(
            run(["skopeo", "inspect", "--config", f"oci:{cache}:{ref}-{arch}"]).stdout
        )
        assert config["architecture"] == arch
    oci_checkers_read(cache, ref)
    # Pulling again fetches nothing new.
    again = lkpkg("cache", "pull", "--cache", str(cache), ref, env=shop.env())
    assert "0 blobs" in again.stdout


def test_pull_of_a_pinned_reference_stores_it_under_its_pinned_name(shop, tmp_path):
    cache = tmp_path / "cache"
    digest = shop.digest(shop.ref("beta"))
    pinned = f"{shop.ref('beta')}@{digest}"
    bare = f"{shop.org}/beta@{digest}"
    lkpkg("cache", "pull", "--cache", str(cache), pinned, bare, env=shop.env())
    refs = cache_refs(cache)
    assert set(refs) == {pinned, bare}  # a pin names one digest: no TAG-ARCH refs
    assert {refs[pinned]["digest"], refs[bare]["digest"]} == {digest}
    oci_checkers_read(cache, pinned)


def test_pull_of_some_platforms_keeps_the_index_digest_and_fetches_only_those(shop, tmp_path):
    cache = tmp_path / "cache"
    ref = shop.ref("gamma")
    lkpkg(
        "cache",
        "pull",
        "--cache",
        str(cache),
        "--notrust",
        "--key",
        str(shop.public_key),
        "--platforms",
        "linux/arm64",
        ref,
        env=shop.env(),
    )
    refs = cache_refs(cache)
    assert refs[ref]["digest"] == shop.digest(ref)
    assert f"{ref}-arm64" in refs and f"{ref}-amd64" not in refs
    amd64 = shop.digest(f"{ref}-amd64").split(":")[1]
    assert not (cache / "blobs" / "sha256" / amd64).exists()
    config = json.loads(run(["skopeo", "inspect", "--config", f"oci:{cache}:{ref}-arm64"]).stdout)
    assert config["architecture"] == "arm64"
    missing = lkpkg(
        "cache",
        "pull",
        "--cache",
        str(cache),
        "--notrust",
        "--insecure",
        "--platforms",
        "linux/riscv64",
        ref,
        env=shop.env(),
        check=False,
    )
    assert missing.returncode == 2 and "no image for linux/riscv64" in missing.stderr


def test_an_unverifiable_image_never_reaches_the_cache(shop, tmp_path):
    cache = tmp_path / "cache"
    for args in (
        [shop.ref("unsigned")],  # no trust data
        ["--notrust", "--key", str(shop.public_key), shop.ref("unsigned")],  # no cosign sig
    ):
        result = lkpkg("cache", "pull", "--cache", str(cache), *args, env=shop.env(), check=False)
        assert result.returncode == 1, result.stderr
        assert result.stderr.count("\n") == 1
    assert not (cache / "blobs").exists() or not any((cache / "blobs").rglob("*"))
    assert cache_refs(cache) == {} if (cache / "index.json").exists() else True
    refused = lkpkg(
        "cache", "pull", "--cache", str(cache), "--notrust", shop.ref("unsigned"), check=False
    )
    assert refused.returncode == 2 and "--insecure" in refused.stderr
    lkpkg("cache", "pull", "--cache", str(cache), "--notrust", "--insecure", shop.ref("unsigned"))
    assert shop.ref("unsigned") in cache_refs(cache)


def test_rm_keeps_blobs_other_refs_need_and_clean_empties(shop, tmp_path):
    cache = tmp_path / "cache"
    ref = shop.ref("delta")
    lkpkg("cache", "pull", "--cache", str(cache), ref, env=shop.env())
    blobs = cache / "blobs" / "sha256"
    before = set(blobs.iterdir())
    # Removing the index keeps the TAG-ARCH images: only the index blob goes.
    lkpkg("cache", "rm", "--cache", str(cache), ref)
    assert ref not in cache_refs(cache)
    assert before - set(blobs.iterdir()) == {blobs / shop.digest(ref).split(":")[1]}
    lkpkg("cache", "rm", "--cache", str(cache), f"{ref}-amd64", f"{ref}-arm64")
    assert cache_refs(cache) == {} and not any(blobs.iterdir())
    unknown = lkpkg("cache", "rm", "--cache", str(cache), ref, check=False)
    assert unknown.returncode == 1 and "not in the cache" in unknown.stderr
    # --published-only removes what the registry serves identically, nothing else.
    lkpkg("cache", "pull", "--cache", str(cache), ref, env=shop.env())
    lkpkg("import", "--cache", str(cache), str(_tiny_tar(tmp_path)), f"{shop.org}/local:only")
    lkpkg("cache", "clean", "--published-only", "--cache", str(cache))
    assert set(cache_refs(cache)) == {f"{shop.org}/local:only"}
    lkpkg("cache", "clean", "--cache", str(cache))
    assert not (cache / "index.json").exists() and not (cache / "blobs").exists()
    home = tmp_path / "home"
    (home / "notes").mkdir(parents=True)
    refused = lkpkg("cache", "clean", "--cache", str(home), check=False)
    assert refused.returncode == 1 and (home / "notes").exists()


def _tiny_tar(tmp_path: Path) -> Path:
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    (rootfs / "file").write_text("local\n")
    tarball = tmp_path / "rootfs.tar"
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tarball), "."], check=True)
    return tarball
