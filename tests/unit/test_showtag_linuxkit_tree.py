"""`lkpkg show-tag` over a tree shaped like linuxkit's own `pkg/` prints what linuxkit prints.

The tree is `buildyml_corpus/linuxkit_pkg/`, written for lkpkg from the shapes of linuxkit's
build.yml files (arches null, network yes/no, devices with `mode: 0666`, tag templates,
extra-sources, a package with only a `Dockerfile.in`). Expected tags are computed here
independently: the tree id from `git rev-parse HEAD:pkg/NAME`, extra sources folded with
SHA-1 as pkglib does, templates rendered by hand. When a linuxkit binary built from its source
is at /opt/linuxkit/bin/linuxkit, its output is compared too.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from lkpkg.cli.main import cli
from lkpkg.package.model import load_packages

CORPUS = Path(__file__).parent / "buildyml_corpus" / "linuxkit_pkg"
LINUXKIT = Path("/opt/linuxkit/bin/linuxkit")
PACKAGES = sorted(path.name for path in CORPUS.iterdir() if path.is_dir())


@pytest.fixture
def tree(isolated_git: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("LINUXKIT_PKG_ORG", raising=False)
    repo = tmp_path / "linuxkit"
    shutil.copytree(CORPUS, repo / "pkg")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tree")
    monkeypatch.chdir(repo)
    return repo


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def expected_tags(repo: Path) -> dict[str, str]:
    tree = {name: git(repo, "rev-parse", f"HEAD:pkg/{name}") for name in PACKAGES}
    extra = hashlib.sha1(
        (tree["with-extra"] + tree["ca-certificates"] + tree["acpid"]).encode()
    ).hexdigest()
    special = {
        "tag-version": "1.10",
        "tag-octal": "010",
        "tag-float": "1e3",
        "tag-suffix": f"{tree['tag-suffix']}-amd64-only",
        "tag-slice": tree["tag-slice"][:12],
        "tag-printf": f"v1.2-{tree['tag-printf']}",
        "tag-pipe": tree["tag-pipe"][:8],
        "with-extra": extra,
    }
    org = {"org-registry": "localhost:5000/wombat"}
    return {
        name: f"{org.get(name, 'linuxkit')}/{name}:{special.get(name, tree[name])}"
        for name in PACKAGES
    }


def show_tag(*args: str) -> list[str]:
    result = CliRunner().invoke(cli, ["show-tag", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_every_package_gets_linuxkits_tag(tree: Path) -> None:
    expected = expected_tags(tree)
    assert show_tag(*(f"pkg/{name}" for name in PACKAGES)) == [expected[n] for n in PACKAGES]


def test_canonical_names_docker_hub(tree: Path) -> None:
    expected = expected_tags(tree)
    assert show_tag("--canonical", "pkg/ca-certificates", "pkg/org-registry") == [
        f"docker.io/{expected['ca-certificates']}",
        expected["org-registry"],
    ]


def test_dev_org_and_hash(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "alice")
    assert show_tag("--dev", "pkg/vsudd", "pkg/tag-suffix") == [
        "alice/vsudd:dev",
        "alice/tag-suffix:dev-amd64-only",
    ]
    assert show_tag("--dev", "--org", "bob", "pkg/vsudd") == ["bob/vsudd:dev"]


def test_org_from_environment_and_flag(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINUXKIT_PKG_ORG", "envorg")
    tree_id = git(tree, "rev-parse", "HEAD:pkg/vsudd")
    assert show_tag("pkg/vsudd") == [f"envorg/vsudd:{tree_id}"]
    assert show_tag("--org", "flagorg", "pkg/vsudd") == [f"flagorg/vsudd:{tree_id}"]


def test_tag_override_hash_path_and_hash_commit(tree: Path) -> None:
    first = git(tree, "rev-parse", "HEAD")
    pkg_tree = git(tree, "rev-parse", "HEAD:pkg")
    (tree / "pkg" / "vsudd" / "new").write_text("x")
    git(tree, "add", "-A")
    git(tree, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "second")
    old = git(tree, "rev-parse", f"{first}:pkg/vsudd")
    assert show_tag("--tag", "{{slice .Hash 0 7}}-t", "pkg/vsudd") == [
        f"linuxkit/vsudd:{git(tree, 'rev-parse', 'HEAD:pkg/vsudd')[:7]}-t"
    ]
    assert show_tag("--hash-commit", first, "pkg/vsudd") == [f"linuxkit/vsudd:{old}"]
    assert show_tag("--hash-commit", first, "--hash-path", "pkg", "pkg/vsudd") == [
        f"linuxkit/vsudd:{pkg_tree}"
    ]


def test_short_hash_out_of_slice_range_is_refused(tree: Path) -> None:
    result = CliRunner().invoke(cli, ["show-tag", "--hash", "h", "pkg/tag-slice"])
    assert result.exit_code != 0
    assert "slice index out of range: [0:12] of 1 characters" in str(result.exception)


def test_build_yml_name(tree: Path) -> None:
    (tree / "pkg" / "vsudd" / "alt.yml").write_text("image: alt\nnetwork: on\n")
    git(tree, "add", "-A")
    git(tree, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "alt")
    tree_id = git(tree, "rev-parse", "HEAD:pkg/vsudd")
    assert show_tag("--build-yml", "alt.yml", "pkg/vsudd") == [f"linuxkit/alt:{tree_id}"]


def test_dirty_tag_differs_from_linuxkit_only_after_the_tree(tree: Path) -> None:
    (tree / "pkg" / "vsudd" / "Dockerfile").write_text("changed")
    (line,) = show_tag("pkg/vsudd")
    # lkpkg: the tree id the directory would have if committed now, then -dirty.
    git(tree, "add", "-A")
    would_be = git(tree, "write-tree", "--prefix=pkg/vsudd")
    assert line == f"linuxkit/vsudd:{would_be}-dirty"


@pytest.mark.skipif(not LINUXKIT.exists(), reason=f"no linuxkit binary at {LINUXKIT}")
@pytest.mark.parametrize(
    "flags",
    [(), ("--canonical",), ("--tag", "{{slice .Hash 0 9}}x"), ("--org", "wombat", "--hash", "h")],
    ids=["plain", "canonical", "tag", "org-hash"],
)
def test_same_output_as_linuxkit(tree: Path, flags: tuple[str, ...]) -> None:
    # With --hash h, `slice .Hash 0 12` is out of range: linuxkit fails, and so does lkpkg
    # (test_short_hash_out_of_slice_range_is_refused).
    skip = {"tag-slice"} if "--hash" in flags else set()
    dirs = [f"pkg/{name}" for name in PACKAGES if name not in skip]
    # linuxkit takes the pkg flags before the subcommand's own (--canonical is show-tag's).
    pkg_flags = [f for f in flags if f != "--canonical"]
    own = [f for f in flags if f == "--canonical"]
    done = subprocess.run(
        [str(LINUXKIT), "pkg", *pkg_flags, "show-tag", *own, *dirs],
        capture_output=True,
        text=True,
        check=True,
        cwd=tree,
    )
    assert show_tag(*flags, *dirs) == done.stdout.splitlines()


@pytest.mark.skipif(not LINUXKIT.exists(), reason=f"no linuxkit binary at {LINUXKIT}")
def test_linuxkit_dirty_tag_shares_the_clean_prefix_rule(tree: Path) -> None:
    (tree / "pkg" / "vsudd" / "Dockerfile").write_text("changed")
    done = subprocess.run(
        [str(LINUXKIT), "pkg", "show-tag", "pkg/vsudd"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tree,
    )
    head_tree = git(tree, "rev-parse", "HEAD:pkg/vsudd")
    # linuxkit: HEAD's tree id, -dirty-, 7 hex of a content hash (documented difference).
    assert done.stdout.strip().startswith(f"linuxkit/vsudd:{head_tree}-dirty-")
    assert len(done.stdout.strip().rpartition("-dirty-")[2]) == 7


@pytest.mark.parametrize("command", ["build", "push"])
def test_build_skips_packages_with_no_arches(tree: Path, command: str) -> None:
    """`arches:` null (bpftrace, vsudd) or [] means nothing to build: skipped, exit 0, as
    `linuxkit pkg build` does, before any builder, cache or registry is touched."""
    dirs = ["pkg/bpftrace", "pkg/vsudd", "pkg/arches-empty"]
    result = CliRunner().invoke(cli, [command, "--notrust", *dirs], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    expected = expected_tags(tree)
    assert result.stderr.splitlines() == [
        f"Skipping {expected[name]} with no architectures to build"
        for name in ("bpftrace", "vsudd", "arches-empty")
    ]


def test_build_takes_linuxkits_package_flags(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--dev, --tag, --build-yml and $LINUXKIT_PKG_ORG name the package for build as for
    show-tag (seen through the no-arches skip, which needs no builder)."""
    monkeypatch.setenv("USER", "alice")
    (tree / "pkg" / "vsudd" / "other.yml").write_text("image: other\narches: []\n")
    result = CliRunner().invoke(
        cli,
        ["build", "--dev", "--tag", "{{.Hash}}-x", "--build-yml", "other.yml", "pkg/vsudd"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "Skipping alice/other:dev-x with no architectures to build"
    ]
    monkeypatch.setenv("LINUXKIT_PKG_ORG", "envorg")
    result = CliRunner().invoke(cli, ["build", "--hash", "h", "pkg/vsudd"], catch_exceptions=False)
    assert result.stderr.splitlines() == ["Skipping envorg/vsudd:h with no architectures to build"]


def test_pkg_wide_flags_linuxkit_accepts(tree: Path) -> None:
    """--force-dirty marks the tag dirty; --network/--nonetwork and --disable-cache/
    --enable-cache override build.yml for build and push, and are accepted by show-tag."""
    tree_id = git(tree, "rev-parse", "HEAD:pkg/net-yes")
    assert show_tag("--force-dirty", "--nonetwork", "--enable-cache", "pkg/net-yes") == [
        f"linuxkit/net-yes:{tree_id}-dirty"
    ]
    (yes,) = load_packages([tree / "pkg" / "net-yes"], network=False, disable_cache=True)
    assert (yes.spec.network, yes.spec.disable_cache) == (False, True)
    (no,) = load_packages([tree / "pkg" / "net-no"])
    assert (no.spec.network, no.spec.disable_cache) == (False, True)


def test_build_refuses_another_hash_commit(tree: Path) -> None:
    result = CliRunner().invoke(cli, ["build", "--hash-commit", "HEAD~1", "pkg/vsudd"])
    assert result.exit_code != 0
    assert "cannot build from a commit other than HEAD" in str(result.exception)
