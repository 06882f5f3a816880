"""The build key of pipeline/reuse.py: which inputs change it (and so force a rebuild under
another org) and which do not — the org must not, unless the build can read it."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lkpkg.cache.layout import Cache
from lkpkg.oci.model import Descriptor, Platform
from lkpkg.package.model import Package, load_packages
from lkpkg.pipeline.building import build_args
from lkpkg.pipeline.events import Event, ReusedFromOrg
from lkpkg.pipeline.reuse import (
    BUILD_KEY_ANNOTATION,
    BuildInputs,
    base_digests,
    build_inputs,
    read_args,
    reuse_other_org,
)
from lkpkg.reference import Reference
from tests.unit.test_cache_layout import put_image, put_package

AMD64 = Platform("linux", "amd64")


class FakeBuilder:
    name = "buildah"
    remote = False

    def __init__(self, version: str | None = "1.28.2") -> None:
        self._version = version

    def problem(self) -> str | None:
        return None

    def build(self, request: object, out: Path) -> None:
        raise AssertionError("a key is computed without building")

    def version(self) -> str | None:
        return self._version


def git(repo: Path, *args: str) -> None:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def repo(isolated_git: None, tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    packages = {
        "plain": ("image: plain\n", "FROM scratch\nCOPY msg /msg\n"),
        "reads-org": ("image: reads-org\n", "FROM scratch\nARG PKG_IMAGE\nLABEL x=$PKG_IMAGE\n"),
        "user": (
            "image: user\nbuildArgs:\n  - DEP=@lkt:pkg:../plain\n",
            "ARG DEP\nFROM scratch\nCOPY msg /msg\n",
        ),
    }
    for name, (build_yml, dockerfile) in packages.items():
        (root / name).mkdir(parents=True)
        (root / name / "build.yml").write_text(build_yml)
        (root / name / "Dockerfile").write_text(dockerfile)
        (root / name / "msg").write_text(f"{name}\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    return root


def load(repo: Path, name: str, org: str) -> Package:
    (package,) = load_packages([repo / name], org=org)
    return package


def inputs_of(
    package: Package, cache: Cache, builder: FakeBuilder | None = None
) -> BuildInputs | None:
    from lkpkg.package.buildinfo import image_labels

    return build_inputs(
        package,
        AMD64,
        cache,
        builder or FakeBuilder(),
        args=build_args(package),
        labels=image_labels(package, "lkpkg-test"),
        timestamp=package.head.time if package.head else None,
    )


def key_of(repo: Path, name: str, org: str, cache: Cache) -> str:
    inputs = inputs_of(load(repo, name, org), cache)
    assert inputs is not None
    return inputs.key()


def test_the_org_does_not_change_the_key_of_a_package_that_cannot_read_it(repo, tmp_path):
    cache = Cache(tmp_path / "cache")
    a = load(repo, "plain", "a")
    assert dict(build_args(a))["PKG_IMAGE"] == "a/plain"  # the org is in the args...
    assert key_of(repo, "plain", "a", cache) == key_of(repo, "plain", "b", cache)  # ...unread
    assert key_of(repo, "plain", "a", cache) == key_of(repo, "plain", "localhost:5000/c", cache)


def test_a_dockerfile_that_reads_pkg_image_keys_by_org(repo, tmp_path):
    cache = Cache(tmp_path / "cache")
    assert key_of(repo, "reads-org", "a", cache) != key_of(repo, "reads-org", "b", cache)


def test_a_dependency_reference_carries_the_org_into_the_key(repo, tmp_path):
    # With its dependency in the run, `@lkt:pkg:` names it under the run's org.
    cache = Cache(tmp_path / "cache")
    keys = []
    for org in ("a", "b"):
        _, user = load_packages([repo / "plain", repo / "user"], org=org)
        inputs = inputs_of(user, cache)
        assert inputs is not None
        assert dict(inputs.build_args)["DEP"].startswith(f"{org}/plain:")
        keys.append(inputs.key())
    assert keys[0] != keys[1]
    # Alone, its dependency keeps build.yml's org whatever --org says: the same inputs.
    assert key_of(repo, "user", "a", cache) == key_of(repo, "user", "b", cache)


def test_every_input_changes_the_key(repo, tmp_path):
    inputs = inputs_of(load(repo, "plain", "a"), Cache(tmp_path / "cache"))
    assert inputs is not None
    changes: dict[str, Any] = {
        "image": "other",
        "tag": "t2",
        "hash": "0" * 40,
        "platform": Platform("linux", "arm64"),
        "build_platform": Platform("linux", "riscv64"),
        "dockerfile": "Dockerfile.alt",
        "dockerfile_sha256": "0" * 64,
        "build_args": (("SOURCE_DATE_EPOCH", "1"),),
        "labels": (("a", "b"),),
        "network": True,
        "timestamp": 1,
        "extra_sources": (("../shared", "/shared"),),
        "bases": (("docker.io/library/alpine:3", ("sha256:" + "1" * 64,)),),
        "builder": "docker",
        "builder_version": "20.10",
        "lkpkg_version": "0.0.0",
    }
    assert set(changes) == {f.name for f in dataclasses.fields(BuildInputs)}
    keys = {inputs.key()} | {
        dataclasses.replace(inputs, **{name: value}).key() for name, value in changes.items()
    }
    assert len(keys) == len(changes) + 1


def test_only_args_the_dockerfile_names_are_kept_and_the_proxies():
    text = "ARG FOO\nFROM scratch\nARG BAR=1\nRUN echo $FOO\n"
    args = {"FOO": "1", "BAR": "2", "PKG_IMAGE": "a/x", "http_proxy": "p", "UNUSED": "u"}
    assert read_args(text, args) == {"FOO": "1", "BAR": "2", "http_proxy": "p"}


def test_a_base_is_keyed_by_every_platform_image_the_builder_is_offered(tmp_path):
    cache = Cache(tmp_path / "cache")
    put_package(cache, "docker.io/library/base:1", archs=("amd64", "arm64"))
    amd64 = cache.resolve("docker.io/library/base:1-amd64")
    arm64 = cache.resolve("docker.io/library/base:1-arm64")
    assert amd64 is not None and arm64 is not None
    assert base_digests(cache, ["base:1"]) == [
        ("docker.io/library/base:1", (amd64.digest, arm64.digest))
    ]
    assert base_digests(cache, ["absent:1"]) is None


def keyed(cache: Cache, ref: str, key: str) -> Descriptor:
    image = put_image(cache, "amd64")
    cache.set_ref(
        ref,
        Descriptor(
            image.media_type, image.digest, image.size, annotations={BUILD_KEY_ANNOTATION: key}
        ),
    )
    return image


def test_a_keyed_image_of_another_org_is_reused_and_named_as_built(repo, tmp_path):
    cache = Cache(tmp_path / "cache")
    inputs = inputs_of(load(repo, "plain", "b"), cache)
    assert inputs is not None
    image = keyed(cache, "docker.io/a/plain:t-amd64", inputs.key())
    seen: list[Event] = []
    wanted = Reference.parse("b/plain:t-amd64")
    reused = reuse_other_org(cache, wanted, inputs, seen.append)
    assert reused is not None and reused.image.digest == image.digest
    assert reused.built_as == Reference.parse("a/plain:t-amd64")
    assert seen == [ReusedFromOrg(wanted, "amd64", image.digest, reused.built_as)]
    now = cache.resolve(wanted)
    assert now is not None and now.digest == image.digest
    assert (now.annotations or {})[BUILD_KEY_ANNOTATION] == inputs.key()  # a candidate too


def test_no_candidate_without_the_same_key_or_with_a_blob_gone(repo, tmp_path):
    cache = Cache(tmp_path / "cache")
    inputs = inputs_of(load(repo, "plain", "b"), cache)
    assert inputs is not None
    wanted = Reference.parse("b/plain:t-amd64")
    other = inputs_of(load(repo, "plain", "b"), cache, FakeBuilder("1.0"))
    assert other is not None
    keyed(cache, "docker.io/a/plain:t-amd64", other.key())  # another buildah
    put_package(cache, "docker.io/c/plain:t", archs=("amd64",))  # pulled: no key
    assert reuse_other_org(cache, wanted, inputs, lambda _: None) is None
    image = keyed(cache, "docker.io/d/plain:t-amd64", inputs.key())
    manifest = cache.read_manifest(image.digest)
    cache.blob_path(manifest.children()[-1].digest).unlink()  # `cache rm` of a layer
    assert reuse_other_org(cache, wanted, inputs, lambda _: None) is None
    assert cache.resolve(wanted) is None


def test_inputs_that_cannot_be_known_give_no_key_and_the_build_speaks(repo, tmp_path):
    cache = Cache(tmp_path / "cache")
    package = load(repo, "plain", "a")
    (package.directory / "Dockerfile").write_text("FROM absent:1\n")  # not in the cache
    assert inputs_of(package, cache) is None
    (package.directory / "Dockerfile").unlink()
    assert inputs_of(package, cache) is None
    assert reuse_other_org(cache, Reference.parse("b/plain:t-amd64"), None, print) is None
