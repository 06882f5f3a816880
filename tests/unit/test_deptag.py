"""The opt-in dependency-aware tag (package/deptag): fold order, ripple through a chain,
dirty propagation, --hash winning, FROM a sibling, cycles, and the default left alone."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from lkpkg.errors import InputError
from lkpkg.package.deptag import TagMode, fold
from lkpkg.package.model import load_packages
from lkpkg.package.treehash import TreeHash

DEPS = TagMode.DEPS


@pytest.fixture
def repo(isolated_git: None, tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    packages = {
        "base": ("image: base\n", "FROM scratch\n"),
        "tool": ("image: tool\norg: wombat\n", "FROM scratch\n"),
        "mid": ("image: mid\nbuildArgs:\n  - BASE=@lkt:pkg:../base\n", "ARG BASE\nFROM ${BASE}\n"),
        "app": (
            "image: app\nbuildArgs:\n  - TOOL=@lkt:pkg:../tool\n  - MID=@lkt:pkg:../mid\n",
            "ARG MID\nFROM ${MID}\n",
        ),
        # A sibling named in FROM (pinned), no build arg.
        "pinned": ("image: pinned\n", "FROM linuxkit/base:0123abcd AS b\nFROM b\n"),
        "alone": ("image: alone\n", "FROM alpine:3.20\n"),
    }
    for name, (yml, dockerfile) in packages.items():
        (root / "pkg" / name).mkdir(parents=True)
        (root / "pkg" / name / "build.yml").write_text(yml)
        (root / "pkg" / name / "Dockerfile").write_text(dockerfile)
    git(root, "init", "-q")
    commit(root)
    return root


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def commit(repo: Path) -> None:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")


def tree(repo: Path, name: str) -> str:
    return git(repo, "rev-parse", f"HEAD:pkg/{name}")


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def one(path: Path, **kwargs: object) -> str:
    (package,) = load_packages([path], **kwargs)  # type: ignore[arg-type]
    return package.hash


def test_fold_is_sha1_of_own_then_each_dependency_in_order() -> None:
    own, a, b = TreeHash("1" * 40, False), TreeHash("a" * 40, False), TreeHash("b" * 40, False)
    assert fold(own, [a, b]).tree == sha1("1" * 40 + "a" * 40 + "b" * 40)
    assert fold(own, [b, a]).tree != fold(own, [a, b]).tree
    assert fold(own, []) == own


def test_default_mode_is_the_tree_and_deps_mode_folds_in_documented_order(repo: Path) -> None:
    pkg = repo / "pkg"
    assert one(pkg / "app") == tree(repo, "app")
    mid = sha1(tree(repo, "mid") + tree(repo, "base"))
    assert one(pkg / "mid", tag_mode=DEPS) == mid
    # build.yml order: TOOL first, then MID (whose own hash is dependency-aware).
    assert one(pkg / "app", tag_mode=DEPS) == sha1(tree(repo, "app") + tree(repo, "tool") + mid)
    # No dependency: the same tag in both modes.
    assert one(pkg / "base", tag_mode=DEPS) == tree(repo, "base")
    assert one(pkg / "alone", tag_mode=DEPS) == tree(repo, "alone")


def test_build_args_name_the_dependency_aware_tags(repo: Path) -> None:
    pkg = repo / "pkg"
    (app,) = load_packages([pkg / "app"], tag_mode=DEPS)
    mid = sha1(tree(repo, "mid") + tree(repo, "base"))
    assert dict(app.build_args)["MID"] == f"linuxkit/mid:{mid}"
    assert f"linuxkit/mid:{mid}" in app.dependencies


def test_a_commit_to_the_base_ripples_through_every_dependent(repo: Path) -> None:
    pkg = repo / "pkg"
    before = load_packages([pkg / "base", pkg / "mid", pkg / "app"], tag_mode=DEPS)
    tree_before = load_packages([pkg / "app"])
    (pkg / "base" / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    commit(repo)
    after = load_packages([pkg / "base", pkg / "mid", pkg / "app"], tag_mode=DEPS)
    assert all(b.hash != a.hash for b, a in zip(before, after, strict=True))
    assert load_packages([pkg / "app"])[0].hash == tree_before[0].hash
    # The same tags whether the dependencies are in the run or loaded for it.
    assert one(pkg / "app", tag_mode=DEPS) == after[2].hash


def test_a_dirty_dependency_makes_the_dependent_dirty(repo: Path) -> None:
    pkg = repo / "pkg"
    (pkg / "base" / "new").write_text("uncommitted")
    (app,) = load_packages([pkg / "app"], tag_mode=DEPS)
    assert app.dirty and app.hash.endswith("-dirty")
    (plain,) = load_packages([pkg / "app"])
    assert not plain.dirty and plain.hash == tree(repo, "app")


def test_hash_override_wins_in_deps_mode(repo: Path) -> None:
    (app,) = load_packages([repo / "pkg" / "app"], tag_mode=DEPS, hash_override="foo")
    assert app.tag == "foo"


def test_from_a_sibling_package_is_folded(repo: Path) -> None:
    pkg = repo / "pkg"
    assert one(pkg / "pinned", tag_mode=DEPS) == sha1(tree(repo, "pinned") + tree(repo, "base"))
    assert one(pkg / "pinned") == tree(repo, "pinned")


def test_a_cycle_is_refused_in_deps_mode(repo: Path) -> None:
    pkg = repo / "pkg"
    (pkg / "base" / "Dockerfile").write_text("FROM linuxkit/mid:x\n")
    commit(repo)
    with pytest.raises(InputError, match="cycle"):
        load_packages([pkg / "mid"], tag_mode=DEPS)
    with pytest.raises(InputError, match="dependency cycle between packages"):
        load_packages([pkg / "base", pkg / "mid"], tag_mode=DEPS)


def test_tag_mode_parse() -> None:
    assert TagMode.parse("DEPS") is DEPS
    with pytest.raises(InputError, match="choose one of tree, deps"):
        TagMode.parse("tags")


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from lkpkg.cli.main import main

    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_show_tag_takes_the_mode_from_the_flag_else_the_environment(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = str(repo / "pkg" / "app")
    tree_tag = f"linuxkit/app:{tree(repo, 'app')}\n"
    deps_tag = f"linuxkit/app:{one(repo / 'pkg' / 'app', tag_mode=DEPS)}\n"
    monkeypatch.delenv("LKPKG_TAG_MODE", raising=False)
    assert cli(capsys, "show-tag", app)[:2] == (0, tree_tag)
    assert cli(capsys, "show-tag", "--tag-mode", "deps", app)[:2] == (0, deps_tag)
    monkeypatch.setenv("LKPKG_TAG_MODE", "deps")
    assert cli(capsys, "show-tag", app)[:2] == (0, deps_tag)
    assert cli(capsys, "show-tag", "--tag-mode", "tree", app)[:2] == (0, tree_tag)
    assert cli(capsys, "show-tag", "--hash", "h", app)[:2] == (0, "linuxkit/app:h\n")
    monkeypatch.setenv("LKPKG_TAG_MODE", "bogus")
    code, _, err = cli(capsys, "show-tag", app)
    assert code == 2 and "LKPKG_TAG_MODE 'bogus': choose one of tree, deps" in err


def test_hash_commit_folds_the_dependencies_at_that_commit(repo: Path) -> None:
    pkg = repo / "pkg"
    at = git(repo, "rev-parse", "HEAD")
    before = one(pkg / "mid", tag_mode=DEPS)
    (pkg / "base" / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    commit(repo)
    assert one(pkg / "mid", tag_mode=DEPS) != before
    assert one(pkg / "mid", tag_mode=DEPS, hash_commit=at) == before
