"""The base check is per platform: a FROM the cache holds only for other platforms is refused
in one line naming the reference, the platform, what the cache holds and how to get it."""

from __future__ import annotations

from pathlib import Path

import pytest

from lkpkg.builders.bases import base_images, cached_platforms, unresolved_bases
from lkpkg.cache.layout import Cache
from lkpkg.errors import InputError
from lkpkg.oci.model import Platform
from tests.unit.test_cache_layout import put_image, put_package

REF = "docker.io/wombat/base:1"
RISCV = Platform("linux", "riscv64")
AMD = Platform("linux", "amd64")


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    cache = Cache(tmp_path / "cache")
    put_package(cache, REF, archs=("amd64", "arm64"))
    return cache


def dockerfile(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    return path


def test_the_platforms_the_cache_holds(cache: Cache) -> None:
    found = cache.resolve(REF)
    assert found is not None
    assert [str(p) for p in cached_platforms(cache, found)] == ["linux/amd64", "linux/arm64"]
    single = put_image(cache, "s390x")
    assert [str(p) for p in cached_platforms(cache, single)] == ["linux/s390x"]


def test_a_base_without_the_target_platform_is_one_line_with_the_fix(
    cache: Cache, tmp_path: Path
) -> None:
    path = dockerfile(tmp_path, "FROM wombat/base:1\nRUN true\n")
    assert unresolved_bases(cache, path, {}, AMD) == []
    assert unresolved_bases(cache, path, {}) == []  # no platform: presence only, as before
    (problem,) = unresolved_bases(cache, path, {}, RISCV)
    message = problem.message()
    assert "\n" not in message
    assert message.startswith(f"{path}: FROM wombat/base:1: not in the cache for linux/riscv64")
    assert "only for linux/amd64, linux/arm64" in message
    assert f"lkpkg cache pull --platforms linux/riscv64 {REF}" in message
    assert "scripts/mkbase riscv64" in message
    with pytest.raises(InputError, match="not in the cache for linux/riscv64"):
        base_images(cache, path, {}, tmp_path / "scratch", RISCV)


def test_a_build_platform_stage_is_checked_for_the_build_platform(
    cache: Cache, tmp_path: Path
) -> None:
    text = "FROM --platform=$BUILDPLATFORM wombat/base:1 AS tools\nFROM scratch\n"
    path = dockerfile(tmp_path, text)
    assert unresolved_bases(cache, path, {}, RISCV, build_platform=AMD) == []
    (problem,) = unresolved_bases(cache, path, {}, AMD, build_platform=RISCV)
    assert "not in the cache for linux/riscv64 (--platform=$BUILDPLATFORM)" in problem.message()
    fixed = dockerfile(tmp_path, "FROM --platform=linux/arm64 wombat/base:1\n")
    assert unresolved_bases(cache, fixed, {}, RISCV) == []


def test_an_absent_base_is_named_once(cache: Cache, tmp_path: Path) -> None:
    path = dockerfile(tmp_path, "FROM --platform=$BUILDPLATFORM gone:1 AS a\nFROM gone:1\n")
    (problem,) = unresolved_bases(cache, path, {}, RISCV, build_platform=AMD)
    assert "gone:1: not in the cache; get it with `lkpkg cache pull" in problem.message()
