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
from tests.integration.test_build import assert_image_valid
from tests.integration.test_push import make_tiny

pytestmark = pytest.mark.integration

SIGNED = ("alpha", "beta", "gamma", "delta", "moved")


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
    """umoci lists `ref`; oci-image-tool validates every platform image of its index in full
    (the whole layout may fail only on the in-toto attestation layers: see test_build)."""
    assert ref in run(["umoci", "ls", "--layout", str(cache)]).stdout
    digest = cache_refs(cache)[ref]["digest"]
    index = json.loads((cache / "blobs" / "sha256" / str(digest).split(":")[1]).read_text())
    images = [m for m in index["manifests"] if m["platform"]["architecture"] != "unknown"]
    assert images
    for image in images:
        assert_image_valid(cache, image["digest"])


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
    # Removing the index keeps the TAG-ARCH images: only the index and what only it reaches
    # (its attestation manifests and their layers) go.
    index = json.loads((blobs / shop.digest(ref).split(":")[1]).read_text())
    attestations = [m for m in index["manifests"] if m["platform"]["architecture"] == "unknown"]
    only_index = {blobs / shop.digest(ref).split(":")[1]}
    for attestation in attestations:
        manifest = json.loads((blobs / attestation["digest"].split(":")[1]).read_text())
        for desc in (attestation, manifest["config"], *manifest["layers"]):
            only_index.add(blobs / desc["digest"].split(":")[1])
    lkpkg("cache", "rm", "--cache", str(cache), ref)
    assert ref not in cache_refs(cache)
    assert before - set(blobs.iterdir()) == only_index
    for arch in ("amd64", "arm64"):
        run(["skopeo", "inspect", "--config", f"oci:{cache}:{ref}-{arch}"])
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


# -- pin ---------------------------------------------------------------------------------

PIN_TEMPLATE = """\
# a consumer's image: eight references
kernel:
  image: {alpha}   # a tag
  cmdline: "console=ttyS0"
init:
  - {beta}
  - {gamma_pinned}    # already pinned
onboot:
  - name: one
    image: "{alpha_amd64}"
    command: ["/bin/true"]
  - name: two
    image: {beta_digest}
onshutdown:
  - name: unsigned
    image: {unsigned}
services:
  - name: moved   # re-pointed after signing
    image: {moved}
volumes:
- name: data
  image: {gamma_arm64}
"""


def test_pin_pins_the_good_refuses_the_bad_keeps_the_file_and_check_agrees(shop, tmp_path):
    org = shop.org
    # Someone re-points `moved`'s signed tag at other content.
    run(
        [
            "skopeo",
            "copy",
            "--all",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--preserve-digests",
            f"docker://{shop.ref('alpha')}",
            f"docker://{shop.ref('moved')}",
        ]
    )
    gamma_digest = shop.digest(shop.ref("gamma"))
    beta_digest = shop.digest(shop.ref("beta"))
    values = {
        "alpha": shop.ref("alpha"),
        "beta": shop.ref("beta"),
        "gamma_pinned": f"{shop.ref('gamma')}@{gamma_digest}",
        "alpha_amd64": shop.ref("alpha", "-amd64"),
        "beta_digest": f"{org}/beta@{beta_digest}",
        "unsigned": shop.ref("unsigned"),
        "moved": shop.ref("moved"),
        "gamma_arm64": shop.ref("gamma", "-arm64"),
    }
    original = PIN_TEMPLATE.format(**values)
    yml = tmp_path / "image.yml"
    yml.write_text(original)
    key = ["--key", str(shop.public_key)]
    result = lkpkg("pin", *key, str(yml), env=shop.env(), check=False)
    assert result.returncode == 1, result.stderr
    refused = [line for line in result.stderr.splitlines() if line.startswith(str(yml))]
    assert len(refused) == 2
    assert shop.ref("unsigned") in refused[0] and "not signed" in refused[0]
    assert shop.ref("moved") in refused[1] and "signed target" in refused[1]
    pinned = {
        name: f"{values[name]}@{shop.digest(values[name])}"
        for name in ("alpha", "beta", "alpha_amd64", "gamma_arm64")
    }
    expected = PIN_TEMPLATE.format(**{**values, **pinned})
    assert yml.read_text() == expected  # comments, quotes, order and layout as they were
    assert "4 pinned, 2 ok, 2 failed" in result.stderr

    # --check: the two refused references are still unpinned.
    checked = lkpkg("pin", "--check", *key, str(yml), env=shop.env(), check=False)
    assert checked.returncode == 1 and yml.read_text() == expected
    # Without them, the file passes; --json reports every reference.
    good = tmp_path / "good.yml"
    good.write_text(
        "\n".join(
            line for line in expected.splitlines() if "unsigned" not in line and "moved" not in line
        )
        + "\n"
    )
    ok = lkpkg("pin", "--check", "--json", *key, str(good), env=shop.env())
    report = json.loads(ok.stdout)
    assert len(report) == 6 and {r["status"] for r in report} == {"ok"}
    assert report[4]["old"] == values["beta_digest"] and report[4]["digest"] == beta_digest
    # A pinned reference whose tag now names another digest fails --check; pin leaves it.
    stale = tmp_path / "stale.yml"
    stale.write_text(f"init:\n  - {shop.ref('gamma')}@{beta_digest}\n")
    again = lkpkg("pin", "--check", str(stale), env=shop.env(), check=False)
    assert again.returncode == 1 and "now names" in again.stderr
    assert lkpkg("pin", str(stale), env=shop.env(), check=False).returncode == 1
    assert stale.read_text() == f"init:\n  - {shop.ref('gamma')}@{beta_digest}\n"
    # The pinned file's images pull into a cache under their pinned names, for linuxkit.
    cache = tmp_path / "cache"
    lkpkg("cache", "pull", "--cache", str(cache), *key, pinned["alpha"], env=shop.env())
    assert pinned["alpha"] in cache_refs(cache)


def test_pin_refuses_notrust_without_a_key_unless_insecure(shop, tmp_path):
    yml = tmp_path / "image.yml"
    yml.write_text(f"init:\n  - {shop.ref('unsigned')}\n")
    refused = lkpkg("pin", "--notrust", str(yml), env=shop.env(), check=False)
    assert refused.returncode == 2 and "--insecure" in refused.stderr
    lkpkg("pin", "--notrust", "--insecure", str(yml), env=shop.env())
    digest = shop.digest(shop.ref("unsigned"))
    assert yml.read_text() == f"init:\n  - {shop.ref('unsigned')}@{digest}\n"


def test_pin_update_moves_references_to_the_packages_current_tags(shop, tmp_path):
    yml = tmp_path / "image.yml"
    yml.write_text(f"init:\n  - {shop.org}/alpha:old-tag   # bumped by --update\n")
    result = lkpkg(
        "pin",
        "--update",
        str(shop.repo / "alpha"),
        "--org",
        shop.org,
        str(yml),
        env=shop.env(),
    )
    digest = shop.digest(shop.ref("alpha"))
    assert yml.read_text() == f"init:\n  - {shop.ref('alpha')}@{digest}   # bumped by --update\n"
    assert "updated" in result.stdout


LINUXKIT = Path("/opt/linuxkit/bin/linuxkit")


@pytest.mark.skipif(not LINUXKIT.is_file(), reason=f"no linuxkit binary at {LINUXKIT}")
def test_linuxkit_builds_a_pinned_yaml_offline_from_what_cache_pull_verified(shop, tmp_path):
    yml = tmp_path / "image.yml"
    yml.write_text(f"init:\n  - {shop.ref('beta')}   # the only image\n")
    lkpkg("pin", "--key", str(shop.public_key), str(yml), env=shop.env())
    pinned = yml.read_text().split("- ", 1)[1].split()[0]
    cache = tmp_path / "cache"
    lkpkg("cache", "pull", "--cache", str(cache), "--from-yaml", str(yml), env=shop.env())
    listed = run([str(LINUXKIT), "cache", "ls", "--cache", str(cache)])
    assert pinned in listed.stdout + listed.stderr  # linuxkit logs the list on stderr
    requests_before = shop.registry.log.read_text(errors="replace").count("response completed")
    out = tmp_path / "out.tar"
    run(
        [
            *(str(LINUXKIT), "build", "--format", "tar", "--arch", "amd64", "--no-sbom"),
            *("--cache", str(cache), "--o", str(out), str(yml)),
        ],
        cwd=tmp_path,
    )
    requests_after = shop.registry.log.read_text(errors="replace").count("response completed")
    assert requests_after == requests_before  # everything came from the cache
    names = run(["tar", "-tf", str(out)]).stdout.split()
    assert "msg" in names or "./msg" in names
