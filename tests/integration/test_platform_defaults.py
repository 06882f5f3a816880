"""Which platforms `build` chooses, as linuxkit does: build.yml's arches (amd64, arm64, riscv64
when it lists none), --platforms overriding them, --skip-platforms leaving some out; and the
line that says what is built and why. FROM scratch packages: no arch needs qemu to run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import copy_examples, git, lkpkg_default_platforms

pytestmark = pytest.mark.integration


def scratch_package(repo: Path, name: str, arches: str | None) -> Path:
    directory = repo / name
    directory.mkdir(parents=True)
    (directory / "Dockerfile").write_text("FROM scratch\nCOPY file /file\n")
    (directory / "file").write_text(f"{name}\n")
    yml = f"image: {name}\norg: wombat\n" + (f"arches: {arches}\n" if arches else "")
    (directory / "build.yml").write_text(yml)
    return directory


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    scratch_package(repo, "listed", "[amd64, arm64]")
    scratch_package(repo, "unlisted", None)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "two packages")
    return repo


def built(stdout: str) -> dict[str, list[str]]:
    """image → arches built, from --json."""
    summary = json.loads(stdout)
    return {
        p["image"]: [q["platform"].split("/")[1] for q in p["platforms"]]
        for p in summary["packages"]
    }


def build(cache: Path, *args: str) -> tuple[dict[str, list[str]], str]:
    result = lkpkg_default_platforms(
        "build", "--progress", "plain", "--json", "--sbom=false", "--cache", str(cache), *args
    )
    return built(result.stdout), result.stderr


def test_without_platforms_every_arch_of_build_yml_is_built_and_the_reason_said(
    repo, tmp_path, buildah_store
):
    arches, err = build(tmp_path / "cache", str(repo / "listed"), str(repo / "unlisted"))
    assert arches == {
        "wombat/listed": ["amd64", "arm64"],
        "wombat/unlisted": ["amd64", "arm64", "riscv64"],
    }
    assert "platforms amd64, arm64 (build.yml arches)" in err
    assert "platforms amd64, arm64, riscv64 (default arches: build.yml lists none)" in err


def test_platforms_override_build_yml_and_skip_platforms_leave_arches_out(
    repo, tmp_path, buildah_store
):
    cache = tmp_path / "cache"
    arches, err = build(cache, "--platforms", "linux/riscv64", str(repo / "listed"))
    assert arches == {"wombat/listed": ["riscv64"]}  # not in build.yml: linuxkit builds it too
    assert "platforms riscv64 (--platforms)" in err
    arches, err = build(cache, "--skip-platforms", "arm64,linux/riscv64", str(repo / "unlisted"))
    assert arches == {"wombat/unlisted": ["amd64"]}
    assert "(default arches: build.yml lists none, --skip-platforms arm64,riscv64)" in err


def test_a_package_left_with_no_arch_is_skipped_as_linuxkit_does(repo, tmp_path, buildah_store):
    result = lkpkg_default_platforms(
        "build",
        "--cache",
        str(tmp_path / "cache"),
        "--skip-platforms",
        "amd64,arm64",
        str(repo / "listed"),
    )
    assert "Skipping" in result.stdout + result.stderr
    assert "with no architectures to build" in result.stdout + result.stderr


def test_skip_platforms_with_platforms_is_refused_as_linuxkit_refuses_it(repo, tmp_path):
    result = lkpkg_default_platforms(
        "build",
        "--platforms",
        "linux/amd64",
        "--skip-platforms",
        "arm64",
        str(repo / "listed"),
        check=False,
    )
    assert result.returncode == 2
    assert "--skip-platforms and --platforms may not be used together" in result.stderr


def test_a_debian_package_listing_no_arches_fails_clearly_on_riscv64_without_its_base(
    tmp_path, cache_dir, buildah_store
):
    # hello builds FROM the Debian base, which the test cache holds for amd64 and arm64 only.
    repo = copy_examples(tmp_path / "examples", "hello")
    result = lkpkg_default_platforms(
        "build",
        "--cache",
        str(cache_dir),
        "--skip-platforms",
        "amd64,arm64",
        str(repo / "hello"),
        check=False,
    )
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    # One line of lkpkg's, before the builder runs: the base, the platform, what the cache has.
    assert last.startswith("lkpkg: error:"), result.stderr
    assert "FROM localhost/debian:bookworm: not in the cache for linux/riscv64" in last
    assert "only for linux/amd64, linux/arm64" in last and "scripts/mkbase riscv64" in last
    assert "image not known" not in result.stderr
