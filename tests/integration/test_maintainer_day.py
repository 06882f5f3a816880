"""A maintainer's day (issue 10): tags that never move, dependencies that are never silently
stale, package lists from globs, and the small things a first day trips over."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lkpkg.cache.layout import Cache
from tests.conftest import ROOT, copy_examples, git, lkpkg
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
    # Another machine builds the same commit at another epoch (another digest for the same
    # TAG-ARCH) before the first one pushes; then both push.
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
    _push(first, org, package, "1000000000")
    pushed = skopeo_raw(registry_plain, f"{org}/tiny:{tag}-amd64")
    index = skopeo_raw(registry_plain, f"{org}/tiny:{tag}")
    mine = Cache(first).resolve(f"{org}/tiny:{tag}-amd64")
    built = Cache(second).resolve(f"{org}/tiny:{tag}-amd64")
    assert mine is not None and built is not None and built.digest != mine.digest
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


def test_a_dependent_built_on_a_moved_dependency_is_named_on_build_push_and_check(
    tmp_path, registry_plain, buildah_store
):
    repo = tmp_path / "repo"
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
    cache = tmp_path / "cache"
    org = f"{registry_plain.host}/{registry_plain.repo('deps')}"
    common = ("--cache", str(cache), "--org", org, "--platforms", "linux/amd64")
    lkpkg("build", "--progress", "plain", *common, str(base), str(use))
    old = git(repo, "rev-parse", "HEAD:tinybase")
    assert (
        lkpkg("show-tag", "--check", "--cache", str(cache), "--org", org, str(use)).returncode == 0
    )

    (base / "msg").write_text("new base\n")
    git(repo, "commit", "-qam", "new base")
    new = git(repo, "rev-parse", "HEAD:tinybase")
    built = lkpkg("build", "--progress", "plain", *common, str(base), str(use)).stderr
    said = f"was built on {org}/tinybase:{old}; {org}/tinybase is now {org}/tinybase:{new}"
    assert said in built, built
    assert "in cache, not rebuilt" in built  # the dependent's own tag did not change

    pushed = lkpkg("push", "--notrust", "--progress", "plain", *common, str(base), str(use))
    assert said in pushed.stderr, pushed.stderr

    checked = lkpkg(
        "show-tag", "--check", "--cache", str(cache), "--org", org, str(use), check=False
    )
    assert checked.returncode == 1, checked.stderr
    assert f"tinyuse:{git(repo, 'rev-parse', 'HEAD:tinyuse')}-amd64 was built on" in checked.stderr
    assert f"tinybase:{old}; " in checked.stderr and f"/tinybase:{new} (" in checked.stderr
    # The registry alone (an empty cache) tells the same.
    again = lkpkg(
        "show-tag",
        "--check",
        "--cache",
        str(tmp_path / "empty"),
        "--org",
        org,
        str(use),
        check=False,
    )
    assert again.returncode == 1 and f"{org}/tinybase:{old}" in again.stderr, again.stderr


def test_globs_skip_what_is_not_a_package_and_a_lone_non_package_is_refused(tmp_path):
    examples = copy_examples(tmp_path / "ex", "hello", "shared")
    (examples / "Makefile").write_text("all:\n")
    listed = sorted(examples.iterdir())
    shown = lkpkg("show-tag", *[str(p) for p in listed if p.name != ".git"])
    assert shown.stdout.split() == [f"examples/hello:{git(examples, 'rev-parse', 'HEAD:hello')}"]
    assert f"skipping {examples / 'Makefile'}: a file" in shown.stderr
    assert f"skipping {examples / 'shared'}: a directory without build.yml" in shown.stderr
    alone = lkpkg("show-tag", str(examples / "Makefile"), check=False)
    assert alone.returncode == 2 and "is a file" in alone.stderr
    assert lkpkg("show-tag", str(examples / "shared"), check=False).returncode == 2


def test_doctor_over_an_init_tree_glob_skips_its_makefile(tmp_path, buildah_store):
    tree = tmp_path / "mypkgs"
    tree.mkdir()
    git(tree, "init", "-q", "-b", "main")
    for step in (["init", "pkg/hello"], ["init", "--tree", "pkg"]):
        subprocess.run(
            [str(ROOT / ".venv" / "bin" / "lkpkg"), *step],
            cwd=tree,
            check=True,
            capture_output=True,
        )
    entries = sorted(str(p.relative_to(tree)) for p in (tree / "pkg").iterdir())
    assert "pkg/Makefile" in entries
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "lkpkg"), "doctor", "--org", "wombat", *entries],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "skipping pkg/Makefile: a file" in result.stderr, result.stderr
    assert "is a file" not in result.stderr
    assert "hello" in result.stdout  # the package was checked


def test_refusals_of_a_first_day_exit_2_with_one_line(tmp_path):
    package = make_tiny(tmp_path / "repo", "tiny", ("amd64",))
    for args, said in (
        (("build", "--platforms", "windows/amd64", str(package)), "linux only"),
        (("build", "--sign-key", str(tmp_path / "k.key"), str(package)), "add --push"),
        (("build", "--release", "v1", str(package)), "add --push"),
        (("cache", "ls", "--cache", str(tmp_path / "typo")), "no cache there"),
    ):
        result = lkpkg(*args, check=False)
        assert result.returncode == 2, (args, result.stderr)
        assert said in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_registry_unreachable_exits_3_for_several_packages_too(tmp_path, buildah_store):
    repo = tmp_path / "repo"
    one, two = make_tiny(repo, "one", ("amd64",)), make_tiny(repo, "two", ("amd64",))
    common = ["push", "--notrust", "--progress", "plain", "--cache", str(tmp_path / "c")]
    common += ["--org", "127.0.0.1:9/wombat", "--platforms", "linux/amd64"]
    for packages in ((str(one),), (str(one), str(two))):
        result = lkpkg(*common, *packages, check=False)
        assert result.returncode == 3, result.stderr
        assert "unreachable" in result.stderr


def test_the_stdout_line_of_a_repush_says_unchanged_as_the_table_does(
    tmp_path, registry_plain, buildah_store
):
    repo = tmp_path / "repo"
    one, two = make_tiny(repo, "one", ("amd64",)), make_tiny(repo, "two", ("amd64",))
    org = f"{registry_plain.host}/{registry_plain.repo('line')}"
    args = ["push", "--notrust", "--progress", "plain", "--cache", str(tmp_path / "c")]
    args += ["--org", org, "--platforms", "linux/amd64", str(one), str(two)]
    first = lkpkg(*args).stdout.splitlines()
    assert all("pushed=amd64 " in line for line in first) and len(first) == 2
    again = lkpkg(*args)
    assert [line.split()[2] for line in again.stdout.splitlines()] == ["pushed=unchanged"] * 2
    assert "unchanged" in again.stderr  # the summary's word


def test_verbose_output_of_parallel_builds_names_the_image_on_each_line(tmp_path, buildah_store):
    repo = tmp_path / "repo"
    one, two = make_tiny(repo, "one", ("amd64",)), make_tiny(repo, "two", ("amd64",))
    result = lkpkg(
        "build",
        "-v",
        "-j",
        "2",
        "--progress",
        "plain",
        "--cache",
        str(tmp_path / "c"),
        "--platforms",
        "linux/amd64",
        str(one),
        str(two),
    )
    steps = [line for line in result.stderr.splitlines() if line.endswith(": FROM scratch")]
    assert len(steps) == 2, result.stderr
    images = sorted(line.split(" | ")[0].rsplit("/", 1)[-1].split(":")[0] for line in steps)
    assert images == ["one", "two"]
    assert all(" | STEP 1/" in line for line in steps)
