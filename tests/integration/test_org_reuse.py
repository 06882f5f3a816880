"""The build cache across `--org` (pipeline/reuse.py), through make, lkpkg, real buildah and a
real registry: an image built under one org is reused under another when its inputs are the
same, and rebuilt when they are not. A PATH shim around buildah logs every `buildah build`,
so each test counts the builder's runs instead of reading timings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lkpkg.cache.layout import Cache
from lkpkg.oci.model import ImageManifest
from tests.conftest import git, lkpkg, run
from tests.fixtures.registry import RegistryInfo
from tests.integration.test_attest import is_attestation
from tests.integration.test_make import ARCH, VENV_BIN, init_package, make, skopeo_raw

pytestmark = pytest.mark.integration

SHIM = """#!/bin/sh
if [ "$1" = build ]; then
    echo "$*" >> {log}
fi
exec {buildah} "$@"
"""


class Builds:
    """A buildah on PATH that logs each build; `count()` is how many ran since the last ask."""

    def __init__(self, root: Path) -> None:
        self.log = root / "builds.log"
        self.log.touch()
        shim_dir = root / "shim"
        shim_dir.mkdir()
        buildah = shutil.which("buildah")
        assert buildah is not None
        (shim_dir / "buildah").write_text(SHIM.format(buildah=buildah, log=self.log))
        (shim_dir / "buildah").chmod(0o755)
        self.path = f"{shim_dir}:{VENV_BIN}:{Path(buildah).parent}:/usr/bin:/bin"
        self._seen = 0

    def count(self) -> int:
        lines = self.log.read_text().splitlines()
        new, self._seen = len(lines) - self._seen, len(lines)
        return new


@pytest.fixture
def builds(tmp_path: Path) -> Builds:
    return Builds(tmp_path)


@pytest.fixture
def env(tmp_path: Path, registry_plain: RegistryInfo, builds: Builds) -> dict[str, str]:
    return {
        "LINUXKIT_CACHE": str(tmp_path / "cache"),
        "DOCKER_CONFIG": str(registry_plain.docker_config),
        "PATH": builds.path,
    }


def orgs(registry: RegistryInfo) -> tuple[str, str, str]:
    stem = registry.repo("org")
    return tuple(f"{registry.host}/{stem}-{x}" for x in "abc")  # type: ignore[return-value]


def arch_digest(cache: Path, org: str, image: str, tag: str) -> str:
    found = Cache(cache).resolve(f"{org}/{image}:{tag}-{ARCH}")
    assert found is not None
    return found.digest


def test_make_push_after_an_org_change_builds_nothing_and_pushes_the_same_image(
    tmp_path, registry_plain, env, builds, buildah_store
):
    a, b, c = orgs(registry_plain)
    package = init_package(tmp_path / "repo", "tiny")
    tag = git(tmp_path / "repo", "rev-parse", "HEAD:tiny")
    make(package, f"ORG={a}", "NOTRUST=1", "tag", env=env)
    assert builds.count() == 1
    built = arch_digest(tmp_path / "cache", a, "tiny", tag)

    pushed = make(package, f"ORG={b}", "NOTRUST=1", "push", env=env)
    assert builds.count() == 0
    assert f"in cache (built as {a}/tiny:{tag}-{ARCH}), not rebuilt" in pushed.stderr
    remote = run(
        [
            "skopeo",
            "inspect",
            "--tls-verify=false",
            "--format",
            "{{.Digest}}",
            f"docker://{b}/tiny:{tag}-{ARCH}",
        ]
    ).stdout.strip()
    assert remote == built
    # The index carries the image's attestations, as built under a (they name it by digest).
    index = skopeo_raw(f"{b}/tiny:{tag}")
    attestations = [m for m in index["manifests"] if is_attestation(m)]
    assert [m["annotations"]["vnd.docker.reference.digest"] for m in attestations] == [built]

    forced = make(package, f"ORG={c}", "NOTRUST=1", "forcepush", env=env)
    assert builds.count() == 1
    assert "building with" in forced.stderr


def dependent_tree(repo: Path) -> None:
    """`dep` (no dependencies) and `user`, built on it through an `@lkt:pkg:` build arg."""
    packages = {
        "dep": ("", "FROM scratch\nCOPY msg /dep.txt\n"),
        "user": (
            "buildArgs:\n  - DEP=@lkt:pkg:../dep\n",
            "ARG DEP\nFROM ${DEP}\nCOPY msg /user.txt\n",
        ),
    }
    for name, (extra, dockerfile) in packages.items():
        (repo / name).mkdir(parents=True)
        (repo / name / "msg").write_text(f"{name}\n")
        (repo / name / "Dockerfile").write_text(dockerfile)
        (repo / name / "build.yml").write_text(f"image: {name}\norg: linuxkit\n{extra}")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "tree")


def test_a_package_whose_args_name_the_org_is_rebuilt_its_dependency_is_not(
    tmp_path, registry_plain, env, builds, buildah_store
):
    a, b, _ = orgs(registry_plain)
    repo = tmp_path / "repo"
    dependent_tree(repo)
    both = (str(repo / "dep"), str(repo / "user"))
    lkpkg("build", "--org", a, *both, env=env)
    assert builds.count() == 2
    again = lkpkg("build", "--json", "--progress", "plain", "--org", b, *both, env=env)
    assert builds.count() == 1
    dep_tag = git(repo, "rev-parse", "HEAD:dep")
    user_tag = git(repo, "rev-parse", "HEAD:user")
    assert f"{b}/dep:{dep_tag}-{ARCH}: in cache (built as {a}/dep:" in again.stderr
    assert f"{b}/user:{user_tag}-{ARCH}: building with" in again.stderr
    cache = tmp_path / "cache"
    assert arch_digest(cache, b, "dep", dep_tag) == arch_digest(cache, a, "dep", dep_tag)
    assert arch_digest(cache, b, "user", user_tag) != arch_digest(cache, a, "user", user_tag)
    # --json tells a reuse from another org apart from a build and from an ordinary hit.
    report = {p["image"]: p for p in json.loads(again.stdout)["packages"]}
    (dep,) = report[f"{b}/dep"]["platforms"]
    assert (dep["built"], dep["reused_from"]) == (False, f"{a}/dep:{dep_tag}-{ARCH}")
    (user,) = report[f"{b}/user"]["platforms"]
    assert (user["built"], user["reused_from"]) == (True, None)
    hit = lkpkg("build", "--json", "--org", b, *both, env=env)
    assert [p["platforms"][0]["reused_from"] for p in json.loads(hit.stdout)["packages"]] == [
        None,
        None,
    ]
    # A push that reuses says so as well.
    _, _, c = orgs(registry_plain)
    pushed = lkpkg(
        "push", "--json", "--notrust", "--progress", "plain", "--org", c, both[0], env=env
    )
    assert builds.count() == 0
    (platform,) = json.loads(pushed.stdout)["packages"][0]["platforms"]
    assert platform["reused_from"] in (f"{a}/dep:{dep_tag}-{ARCH}", f"{b}/dep:{dep_tag}-{ARCH}")
    assert platform["pushed"] is True


def test_a_candidate_with_a_blob_removed_is_not_reused(
    tmp_path, registry_plain, env, builds, buildah_store
):
    a, b, _ = orgs(registry_plain)
    package = init_package(tmp_path / "repo", "tiny")
    tag = git(tmp_path / "repo", "rev-parse", "HEAD:tiny")
    lkpkg("build", "--org", a, str(package), env=env)
    assert builds.count() == 1
    cache = Cache(tmp_path / "cache")
    manifest = cache.read_manifest(arch_digest(tmp_path / "cache", a, "tiny", tag))
    cache.blob_path(manifest.children()[-1].digest).unlink()  # its layer, as `cache rm` leaves
    rebuilt = lkpkg("build", "--org", b, str(package), env=env)
    assert builds.count() == 1
    assert "building with" in rebuilt.stderr and "built as" not in rebuilt.stderr


def test_other_read_args_or_another_dockerfile_rebuild_unread_args_do_not(
    tmp_path, registry_plain, env, builds, buildah_store
):
    a, b, c = orgs(registry_plain)
    package = init_package(tmp_path / "repo", "tiny")
    (package / "Dockerfile").write_text("FROM scratch\nARG GREETING=hi\nLABEL greeting=$GREETING\n")
    git(tmp_path / "repo", "commit", "-qam", "reads GREETING")
    args = tmp_path / "args"
    lkpkg("build", "--org", a, str(package), env=env)
    assert builds.count() == 1

    args.write_text("UNREAD=1\n")  # the Dockerfile never names it: the same image
    same = lkpkg("build", "--org", b, "--build-arg-file", str(args), str(package), env=env)
    assert builds.count() == 0 and "built as" in same.stderr

    args.write_text("GREETING=hello\n")
    other = lkpkg("build", "--org", c, "--build-arg-file", str(args), str(package), env=env)
    assert builds.count() == 1 and "built as" not in other.stderr

    # Same tag (--hash), another Dockerfile: rebuilt, though a and b hold that tag.
    for org in (a, b):
        lkpkg("build", "--org", org, "--hash", "fixed", str(package), env=env)
    assert builds.count() == 1
    (package / "Dockerfile").write_text("FROM scratch\nARG GREETING=hi\nLABEL other=$GREETING\n")
    changed = lkpkg("build", "--org", c, "--hash", "fixed", str(package), env=env)
    assert builds.count() == 1 and "built as" not in changed.stderr
    cache = Cache(tmp_path / "cache")
    image = cache.read_manifest(arch_digest(tmp_path / "cache", c, "tiny", "fixed"))
    assert isinstance(image, ImageManifest)
    assert json.loads(cache.read_blob(image.config.digest))["config"]["Labels"]["other"] == "hi"


def test_the_builder_is_an_input_docker_reuses_docker_buildah_does_not(
    tmp_path, registry_plain, env, builds, buildah_store, docker_engine
):
    a, b, c = orgs(registry_plain)
    package = init_package(tmp_path / "repo", "tiny")
    docker = {**env, "DOCKER_HOST": docker_engine}
    lkpkg("build", "--builder", "docker", "--org", a, str(package), env=docker)
    reused = lkpkg("build", "--builder", "docker", "--org", b, str(package), env=docker)
    assert f"built as {a}/tiny:" in reused.stderr and "building with" not in reused.stderr
    assert builds.count() == 0
    other = lkpkg("build", "--builder", "buildah", "--org", c, str(package), env=env)
    assert builds.count() == 1
    assert "building with buildah" in other.stderr and "built as" not in other.stderr
