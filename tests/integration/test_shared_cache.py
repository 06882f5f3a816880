"""The registry as a shared cache: two machines (two caches), one registry. The second builds
nothing the first pushed; --pull fills its cache so that skopeo and umoci read it; a cache
entry whose blobs were removed is pulled again, not an error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import git, lkpkg, run

pytestmark = pytest.mark.integration


@pytest.fixture
def package(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    directory = repo / "shared"
    directory.mkdir(parents=True)
    (directory / "Dockerfile").write_text("FROM scratch\nCOPY file /file\n")
    (directory / "file").write_text("shared\n")
    (directory / "build.yml").write_text("image: shared\narches: [amd64, arm64]\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a package")
    return directory


def no_builder_path(tmp_path: Path) -> str:
    """A PATH with git and nothing else: a builder call would fail."""
    bare = tmp_path / "bare-bin"
    bare.mkdir(exist_ok=True)
    if not (bare / "git").exists():
        (bare / "git").symlink_to(str(shutil.which("git")))
    return str(bare)


def test_second_machine_builds_nothing_the_first_pushed_and_pull_fills_its_cache(
    package, tmp_path, registry_plain, buildah_store
):
    org = f"{registry_plain.host}/{registry_plain.repo('shared')}"
    first, second = tmp_path / "first", tmp_path / "second"
    lkpkg(
        "push",
        "--notrust",
        "--sbom=false",
        "--provenance=false",
        "--org",
        org,
        "--cache",
        str(first),
        "--platforms",
        "linux/amd64,linux/arm64",
        str(package),
    )

    bare = {"PATH": no_builder_path(tmp_path)}
    found = lkpkg(
        "build",
        "--progress",
        "plain",
        "--json",
        "--org",
        org,
        "--cache",
        str(second),
        "--platforms",
        "linux/amd64,linux/arm64",
        str(package),
        env=bare,
    )
    assert found.stderr.count("found in registry") == 2
    assert json.loads(found.stdout)["packages"][0]["status"] == "skipped"
    assert (
        not (second / "index.json").exists() or "shared" not in (second / "index.json").read_text()
    )

    pulled = lkpkg(
        "build",
        "--pull",
        "--progress",
        "plain",
        "--org",
        org,
        "--cache",
        str(second),
        "--platforms",
        "linux/amd64,linux/arm64",
        str(package),
        env=bare,
    )
    assert pulled.stderr.count("found in registry, pulled") == 2
    tag = lkpkg("show-tag", "--org", org, str(package)).stdout.strip()
    for arch in ("amd64", "arm64"):
        run(["skopeo", "inspect", "--raw", f"oci:{second}:{tag}-{arch}"])
    assert tag in run(["umoci", "ls", "--layout", str(second)]).stdout

    again = lkpkg(
        "build",
        "--progress",
        "plain",
        "--org",
        org,
        "--cache",
        str(second),
        "--platforms",
        "linux/amd64,linux/arm64",
        str(package),
        env=bare,
    )
    assert again.stderr.count("in cache, not rebuilt") == 2

    # linuxkit cache rm removes blobs: the entry is pulled again, not an error.
    index = json.loads((second / "index.json").read_text())
    arch_entry = next(
        m
        for m in index["manifests"]
        if m["annotations"]["org.opencontainers.image.ref.name"].endswith("-amd64")
    )
    (second / "blobs" / "sha256" / arch_entry["digest"].split(":")[1]).unlink()
    repaired = lkpkg(
        "build",
        "--pull",
        "--progress",
        "plain",
        "--org",
        org,
        "--cache",
        str(second),
        "--platforms",
        "linux/amd64",
        str(package),
        env=bare,
    )
    assert "found in registry, pulled" in repaired.stderr
    run(["skopeo", "inspect", "--raw", f"oci:{second}:{tag}-amd64"])


def test_dry_run_says_what_would_be_built_and_does_nothing(package, tmp_path):
    cache = tmp_path / "cache"
    result = lkpkg(
        "build", "--dry-run", "--cache", str(cache), "--skip-platforms", "arm64", str(package)
    )
    assert result.stdout.startswith("would build docker.io/library/shared:") or (
        "would build" in result.stdout
        and "amd64 (build.yml arches, --skip-platforms arm64)" in result.stdout
    )
    pushed = lkpkg("push", "--dry-run", "--notrust", "--cache", str(cache), str(package))
    assert pushed.stdout.startswith("would push ") and "/shared:" in pushed.stdout
    assert not cache.exists()


def test_manifest_of_a_package_dir_and_remote_tag_without_pulling(
    package, tmp_path, registry_plain, buildah_store
):
    org = f"{registry_plain.host}/{registry_plain.repo('tagged')}"
    lkpkg(
        "push",
        "--notrust",
        "--sbom=false",
        "--provenance=false",
        "--org",
        org,
        "--cache",
        str(tmp_path / "cache"),
        "--platforms",
        "linux/amd64,linux/arm64",
        str(package),
    )
    tag = lkpkg("show-tag", "--org", org, str(package)).stdout.strip()
    by_dir = lkpkg("manifest", "--org", org, str(package)).stdout.split()
    by_ref = lkpkg("manifest", tag).stdout.split()
    assert by_dir == by_ref and by_dir[0] == tag

    release = tag.rsplit(":", 1)[0] + ":v1.0"
    tagged = lkpkg("remote-tag", tag, release).stdout.split()
    assert tagged == [release, by_ref[1]]
    served = run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{release}"])
    original = run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{tag}"])
    assert served.stdout == original.stdout
    # Another repository gets a copy, as linuxkit's remote-tag makes one (crane.Copy): the
    # same index digest, and every platform image readable there (skopeo is the judge).
    copied = lkpkg("remote-tag", "--cache", str(tmp_path / "cache"), tag, f"{org}/other:v1")
    assert copied.stdout.split() == [f"{org}/other:v1", by_ref[1]]
    there = run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{org}/other:v1"])
    assert there.stdout == original.stdout
    for arch in ("amd64", "arm64"):
        image = run(
            [
                "skopeo",
                "inspect",
                "--tls-verify=false",
                "--override-arch",
                arch,
                f"docker://{org}/other:v1",
            ]
        )
        assert json.loads(image.stdout)["Architecture"] == arch
    # skopeo copies it out whole (every blob is there, and verifies against its digest).
    run(
        [
            "skopeo",
            "copy",
            "--all",
            "--src-tls-verify=false",
            f"docker://{org}/other:v1",
            f"oci:{tmp_path / 'copied'}:v1",
        ]
    )


def test_push_rebuilds_an_arch_whose_cached_blobs_were_removed(
    package, tmp_path, registry_plain, buildah_store
):
    org = f"{registry_plain.host}/{registry_plain.repo('removed')}"
    cache = tmp_path / "cache"
    lkpkg(
        "build",
        "--sbom=false",
        "--provenance=false",
        "--org",
        org,
        "--cache",
        str(cache),
        str(package),
    )
    index = json.loads((cache / "index.json").read_text())
    entry = next(
        m
        for m in index["manifests"]
        if m["annotations"]["org.opencontainers.image.ref.name"].endswith("-amd64")
    )
    (cache / "blobs" / "sha256" / entry["digest"].split(":")[1]).unlink()
    pushed = lkpkg(
        "push",
        "--notrust",
        "--progress",
        "plain",
        "--sbom=false",
        "--provenance=false",
        "--org",
        org,
        "--cache",
        str(cache),
        str(package),
    )
    assert "building with" in pushed.stderr
    tag = lkpkg("show-tag", "--org", org, str(package)).stdout.strip()
    run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{tag}-amd64"])


LINUXKIT = Path("/opt/linuxkit/bin/linuxkit")


@pytest.mark.skipif(not LINUXKIT.is_file(), reason=f"no linuxkit binary at {LINUXKIT}")
def test_linuxkit_builds_offline_from_what_build_pull_brought(
    package, tmp_path, registry_plain, buildah_store
):
    org = f"{registry_plain.host}/{registry_plain.repo('offline')}"
    lkpkg(
        "push",
        "--notrust",
        "--sbom=false",
        "--provenance=false",
        "--org",
        org,
        "--cache",
        str(tmp_path / "first"),
        "--platforms",
        "linux/amd64,linux/arm64",
        str(package),
    )
    second = tmp_path / "second"
    lkpkg(
        "build",
        "--pull",
        "--org",
        org,
        "--cache",
        str(second),
        "--platforms",
        "linux/amd64",
        str(package),
        env={"PATH": no_builder_path(tmp_path)},
    )
    tag = lkpkg("show-tag", "--org", org, str(package)).stdout.strip()
    yml = tmp_path / "image.yml"
    yml.write_text(f"init:\n  - {tag}\n")
    before = registry_plain.log.read_text(errors="replace").count("response completed")
    out = tmp_path / "out.tar"
    run(
        [
            *(str(LINUXKIT), "build", "--format", "tar", "--arch", "amd64", "--no-sbom"),
            *("--cache", str(second), "--o", str(out), str(yml)),
        ],
        cwd=tmp_path,
    )
    after = registry_plain.log.read_text(errors="replace").count("response completed")
    assert after == before  # everything came from the cache
    names = run(["tar", "-tf", str(out)]).stdout.split()
    assert "file" in names or "./file" in names
