"""The opt-in dependency-aware tag (--tag-mode=deps, LKPKG_TAG_MODE) through the real builder
and registry: a commit to a base gives its dependent a new tag, so build and push rebuild it
on the new base; in the default mode the dependent keeps its tag (and lkpkg says its base
moved: tests/integration/test_maintainer_day.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lkpkg.cache.layout import Cache
from lkpkg.package.buildinfo import DEPENDENCIES_LABEL
from lkpkg.pipeline.dependencies import cached_labels
from tests.conftest import git, lkpkg
from tests.integration.test_push import make_tiny, skopeo_raw

pytestmark = pytest.mark.integration


def tiny_tree(repo: Path) -> tuple[Path, Path]:
    base = make_tiny(repo, "tinybase", ("amd64",))
    use = repo / "tinyuse"
    use.mkdir()
    (use / "msg").write_text("use\n")
    (use / "Dockerfile").write_text("ARG BASE\nFROM ${BASE}\nCOPY msg /use\n")
    (use / "build.yml").write_text(
        "image: tinyuse\narches: [amd64]\nbuildArgs:\n  - BASE=@lkt:pkg:../tinybase\n"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "tinyuse")
    return base, use


def show_tag(org: str, package: Path, *extra: str) -> str:
    return lkpkg("show-tag", "--org", org, *extra, str(package)).stdout.strip()


def built(stderr: str, image: str) -> bool:
    return any(f"/{image}:" in line and "building with" in line for line in stderr.splitlines())


def test_in_deps_mode_a_new_base_rebuilds_and_pushes_its_dependent(
    tmp_path, registry_plain, buildah_store
):
    repo = tmp_path / "repo"
    base, use = tiny_tree(repo)
    cache = tmp_path / "cache"
    org = f"{registry_plain.host}/{registry_plain.repo('deptag')}"
    common = ("--progress", "plain", "--cache", str(cache), "--org", org)
    deps = {"LKPKG_TAG_MODE": "deps"}
    first = lkpkg("push", "--notrust", *common, str(base), str(use), env=deps).stderr
    assert built(first, "tinybase") and built(first, "tinyuse"), first
    use_before = show_tag(org, use, "--tag-mode", "deps")
    assert use_before != show_tag(org, use)  # the default is the tree, unchanged

    (base / "msg").write_text("new base\n")
    git(repo, "commit", "-qam", "new base")
    base_now = show_tag(org, base, "--tag-mode", "deps")
    use_now = show_tag(org, use, "--tag-mode", "deps")
    assert use_now != use_before  # the dependent's own tree did not change; its tag did
    second = lkpkg("push", "--notrust", *common, str(base), str(use), env=deps).stderr
    assert built(second, "tinybase") and built(second, "tinyuse"), second
    assert "was built on" not in second  # nothing is stale in this mode

    # The new dependent was built on the new base, and the registry holds it under its tag.
    found = Cache(cache).resolve(f"{use_now}-amd64")
    assert found is not None
    labels = cached_labels(Cache(cache), found.digest)
    assert labels is not None and labels[DEPENDENCIES_LABEL] == base_now
    index = skopeo_raw(registry_plain, use_now)
    arches = {m["platform"]["architecture"] for m in index["manifests"]}
    assert arches - {"unknown"} == {"amd64"}  # unknown/unknown: its attestations

    # Nothing changed: nothing is rebuilt, in either spelling of the mode.
    third = lkpkg("build", *common, "--tag-mode", "deps", str(base), str(use)).stderr
    assert not built(third, "tinybase") and not built(third, "tinyuse"), third


def test_make_tag_mode_reaches_lkpkg(tmp_path):
    repo = tmp_path / "repo"
    base, use = tiny_tree(repo)
    (repo / "Makefile").write_text(
        f"LKPKG := {Path(__file__).resolve().parents[2] / '.venv' / 'bin' / 'lkpkg'}\n"
        "include $(shell $(LKPKG) makefile --tree)\n"
    )
    shown = subprocess.run(
        ["make", "-s", "-C", str(repo), "TAG_MODE=deps", "show-tag"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert shown == [
        lkpkg("show-tag", "--tag-mode", "deps", str(base)).stdout.strip(),
        lkpkg("show-tag", "--tag-mode", "deps", str(use)).stdout.strip(),
    ]
    assert json.dumps(shown) != json.dumps(
        [lkpkg("show-tag", str(p)).stdout.strip() for p in (base, use)]
    )
