"""A maintainer's day (issue 10): tags that never move, dependencies that are never silently
stale, package lists from globs, and the small things a first day trips over."""

from __future__ import annotations

from pathlib import Path

import pytest

from lkpkg.cache.layout import Cache
from tests.conftest import git, lkpkg
from tests.integration.test_push import make_tiny, skopeo_raw

pytestmark = pytest.mark.integration


def _push(cache: Path, org: str, package: Path, epoch: str, *extra: str) -> str:
    result = lkpkg(
        "push",
        "--notrust",
        "--progress",
        "plain",
        "--cache",
        str(cache),
        "--org",
        org,
        "--platforms",
        "linux/amd64",
        *extra,
        str(package),
        env={"SOURCE_DATE_EPOCH": epoch},
    )
    return result.stderr


def test_two_machines_pushing_one_commit_end_with_one_digest_per_tag(
    tmp_path, registry_plain, buildah_store
):
    repo = tmp_path / "repo"
    package = make_tiny(repo)
    git(repo, "tag", "v1.0")
    org = f"{registry_plain.host}/{registry_plain.repo('immutable')}"
    tag = git(repo, "rev-parse", "HEAD:tiny")
    first, second = tmp_path / "machine-a", tmp_path / "machine-b"
    _push(first, org, package, "1000000000")
    pushed = skopeo_raw(registry_plain, f"{org}/tiny:{tag}-amd64")
    index = skopeo_raw(registry_plain, f"{org}/tiny:{tag}")
    mine = Cache(first).resolve(f"{org}/tiny:{tag}-amd64")
    assert mine is not None

    # Another machine builds the same commit at another epoch (another digest for the same
    # TAG-ARCH), then pushes.
    lkpkg(
        "build",
        "--cache",
        str(second),
        "--org",
        org,
        "--platforms",
        "linux/amd64",
        str(package),
        env={"SOURCE_DATE_EPOCH": "2000000000"},
    )
    built = Cache(second).resolve(f"{org}/tiny:{tag}-amd64")
    assert built is not None and built.digest != mine.digest
    said = _push(second, org, package, "2000000000")
    theirs = Cache(second).resolve(f"{org}/tiny:{tag}-amd64")
    assert theirs is not None
    assert theirs.digest == mine.digest  # the registry's image was brought into this cache
    kept = [line for line in said.splitlines() if "kept the registry's" in line]
    assert len(kept) == 1 and mine.digest in kept[0] and built.digest in kept[0], said
    assert "--force" in kept[0]
    assert skopeo_raw(registry_plain, f"{org}/tiny:{tag}-amd64") == pushed
    assert skopeo_raw(registry_plain, f"{org}/tiny:{tag}") == index
    assert skopeo_raw(registry_plain, f"{org}/tiny:v1.0-amd64") == pushed
    # The second cache's own index now lists the registry's image, not its own build.
    top = Cache(second).resolve(f"{org}/tiny:{tag}")
    assert top is not None
    listed = Cache(second).read_manifest(top.digest)
    assert mine.digest in {m.digest for m in listed.manifests}  # type: ignore[union-attr]

    # --force is the explicit override: the tag moves to a fresh build (not the release).
    git(repo, "tag", "-d", "v1.0")  # releases never move, even with --force
    forced = tmp_path / "machine-c"
    _push(forced, org, package, "3000000000", "--force")
    moved = Cache(forced).resolve(f"{org}/tiny:{tag}-amd64")
    assert moved is not None and moved.digest != mine.digest
    head = skopeo_raw(registry_plain, f"{org}/tiny:{tag}")
    assert [m["digest"] for m in head["manifests"] if m["platform"]["architecture"] == "amd64"] == [
        moved.digest
    ]
