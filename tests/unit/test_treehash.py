"""Package content hashes against git itself, on real repositories in tmp_path."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lkpkg.errors import EnvironmentProblem, GitError, InputError
from lkpkg.package import git as git_module
from lkpkg.package import treehash
from lkpkg.package.git import GitHead, repository_top
from lkpkg.package.plaintree import EMPTY_TREE, directory_tree_id
from lkpkg.package.treehash import (
    TreeHash,
    combine,
    hash_directories,
    tree_hashes,
)


@pytest.fixture(autouse=True)
def _isolated_git(
    isolated_git: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[None]:
    """No user or system git configuration, no inherited GIT_* variables, and a private
    temporary directory so that leftovers of the scratch index can be seen."""
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    yield
    assert list(scratch.iterdir()) == [], "the scratch index was not cleaned up"


def git(repo: Path, *args: str | bytes) -> str:
    done = subprocess.run(
        ["git", "-C", os.fsencode(repo), *(os.fsencode(a) for a in args)],
        capture_output=True,
        check=True,
    )
    return done.stdout.decode("utf-8", "surrogateescape").strip()


def commit(repo: Path) -> None:
    git(
        repo,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "c",
    )


def commit_all(repo: Path) -> None:
    git(repo, "add", "-A")
    commit(repo)


def init(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q")
    return path


def committed_tree(repo: Path, rel: str) -> str:
    return git(repo, "rev-parse", f"HEAD:{rel}" if rel else "HEAD^{tree}")


def would_be_tree(repo: Path, rel: str) -> str:
    """What git says the directory is once everything is committed (changes the repo)."""
    commit_all(repo)
    return committed_tree(repo, rel)


def write(path: Path, text: str = "x\n", mode: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mode is not None:
        path.chmod(mode)
    return path


def make_awkward(root: Path) -> None:
    """A package directory with most things that make tree hashing hard."""
    write(root / "Dockerfile", "FROM scratch\n")
    write(root / "run.sh", "#!/bin/sh\n", 0o755)
    write(root / "owner-exec-only", "x\n", 0o744)
    write(root / "group-exec-only", "x\n", 0o654)
    write(root / "with space.txt")
    write(root / "star*.txt")
    write(root / ":(glob)magic")
    write(root / "é.txt", "é\n")
    write(root / "日本" / "語.txt", "日本語\n")
    write(root / "new\nline.txt")
    write(root / "sub" / "nested" / "deep.txt")
    # git orders a directory as if its name ended in "/": "foo-" < "foo.c" < "foo/" < "foo0".
    write(root / "foo" / "inner")
    write(root / "foo.c")
    write(root / "foo-")
    write(root / "foo0")
    (root / "link-in").symlink_to("Dockerfile")
    (root / "link-dir").symlink_to("sub/nested/")
    (root / "link-abs").symlink_to("/etc/passwd")
    (root / "link-up").symlink_to("../../outside")
    (root / "link-dangling").symlink_to("does/not/exist")
    (root / "empty").mkdir()
    (root / "only-empties" / "a" / "b").mkdir(parents=True)
    fd = os.open(os.fsencode(root) + b"/latin1-\xe9.bin", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"\x00\xff")
    os.close(fd)


def repo_with_package(tmp_path: Path, name: str = "pkg") -> tuple[Path, Path]:
    repo = init(tmp_path / "repo")
    write(repo / ".gitignore", "*.log\n")
    write(repo / "README")
    package = repo / name
    make_awkward(package)
    commit_all(repo)
    return repo, package


def outside(tmp_path: Path, name: str = "outside") -> Path:
    directory = tmp_path / name
    directory.mkdir()
    if repository_top(directory) is not None:
        pytest.skip("tmp_path lies inside a git repository")
    return directory


# --- clean packages ----------------------------------------------------------------------


def test_clean_package_is_heads_tree(tmp_path: Path) -> None:
    repo, package = repo_with_package(tmp_path)
    [found] = tree_hashes([package])
    assert found == TreeHash(committed_tree(repo, "pkg"), dirty=False)
    assert found.tag == found.tree
    listing = git(repo, "ls-tree", "HEAD", "--", "pkg")
    assert listing == f"040000 tree {found.tree}\tpkg"


def test_python_hash_agrees_with_git_on_a_committed_awkward_tree(tmp_path: Path) -> None:
    repo, package = repo_with_package(tmp_path)
    # The empty directories are not in git but are on disk; both must be left out.
    assert directory_tree_id(package) == committed_tree(repo, "pkg")


def test_repository_root_as_package(tmp_path: Path) -> None:
    repo, _ = repo_with_package(tmp_path)
    assert tree_hashes([repo]) == [TreeHash(committed_tree(repo, ""), dirty=False)]


def test_root_package_dirty(tmp_path: Path) -> None:
    repo, package = repo_with_package(tmp_path)
    write(package / "new")
    [found] = tree_hashes([repo])
    assert found.dirty
    assert found.tree == would_be_tree(repo, "")


def test_ignored_file_changes_nothing(tmp_path: Path) -> None:
    _repo, package = repo_with_package(tmp_path)
    before = tree_hashes([package])
    write(package / "build.log")
    write(package / "sub" / "deeper" / "more.log")
    assert tree_hashes([package]) == before
    assert not before[0].dirty


def test_new_empty_directory_is_not_a_change(tmp_path: Path) -> None:
    repo, package = repo_with_package(tmp_path)
    (package / "brand-new" / "empty").mkdir(parents=True)
    assert tree_hashes([package]) == [TreeHash(committed_tree(repo, "pkg"), dirty=False)]


def test_package_given_through_a_symlink(tmp_path: Path) -> None:
    _repo, package = repo_with_package(tmp_path)
    alias = tmp_path / "alias"
    alias.symlink_to(package)
    assert tree_hashes([alias]) == tree_hashes([package])


def test_awkward_package_names(tmp_path: Path) -> None:
    repo = init(tmp_path / "repo")
    names = ["p*", "pa", "with space", "日本/é pkg", "new\nline", ":(top)x", "-dash"]
    for name in names:
        write(repo / name / "f", name)
    commit_all(repo)
    write(repo / "pa" / "untracked")
    found = tree_hashes([repo / name for name in names])
    # "p*" must not be read as a glob that takes in "pa"'s change.
    for name, result in zip(names, found, strict=True):
        if name == "pa":
            assert result.dirty
        else:
            assert result == TreeHash(committed_tree(repo, name), dirty=False), name
    assert found[1].tree == would_be_tree(repo, "pa")


def test_nested_packages(tmp_path: Path) -> None:
    repo = init(tmp_path / "repo")
    write(repo / "outer" / "Dockerfile")
    write(repo / "outer" / "inner" / "Dockerfile")
    commit_all(repo)
    outer = repo / "outer"
    inner = outer / "inner"
    assert tree_hashes([inner, outer]) == [
        TreeHash(committed_tree(repo, "outer/inner"), dirty=False),
        TreeHash(committed_tree(repo, "outer"), dirty=False),
    ]

    write(outer / "only-outer")
    found_outer, found_inner = tree_hashes([outer, inner])
    assert found_outer.dirty
    assert found_inner == TreeHash(committed_tree(repo, "outer/inner"), dirty=False)

    write(inner / "both")
    found_outer, found_inner = tree_hashes([outer, inner])
    assert found_outer.dirty and found_inner.dirty
    assert found_inner.tree == would_be_tree(repo, "outer/inner")
    assert found_outer.tree == committed_tree(repo, "outer")


# --- dirty packages ----------------------------------------------------------------------


def _untracked(package: Path) -> None:
    write(package / "untracked.txt")


def _untracked_deep(package: Path) -> None:
    write(package / "fresh" / "dir" / "file")


def _staged_only(package: Path) -> None:
    write(package / "Dockerfile", "FROM alpine\n")
    git(package, "add", "Dockerfile")


def _unstaged(package: Path) -> None:
    write(package / "sub" / "nested" / "deep.txt", "changed\n")


def _deleted(package: Path) -> None:
    (package / "with space.txt").unlink()


def _deleted_and_staged(package: Path) -> None:
    git(package, "rm", "-q", "star*.txt")


def _made_executable(package: Path) -> None:
    (package / "Dockerfile").chmod(0o755)


def _symlink_retargeted(package: Path) -> None:
    (package / "link-in").unlink()
    (package / "link-in").symlink_to("run.sh")


def _file_became_directory(package: Path) -> None:
    (package / "foo.c").unlink()
    write(package / "foo.c" / "now-a-dir")


def _directory_became_file(package: Path) -> None:
    shutil.rmtree(package / "sub")
    write(package / "sub")


def _renamed(package: Path) -> None:
    git(package, "mv", "Dockerfile", "Dockerfile.renamed")


def _non_ascii_untracked(package: Path) -> None:
    write(package / "日本" / "新しい *.txt")


@pytest.mark.parametrize(
    "change",
    [
        _untracked,
        _untracked_deep,
        _staged_only,
        _unstaged,
        _deleted,
        _deleted_and_staged,
        _made_executable,
        _symlink_retargeted,
        _file_became_directory,
        _directory_became_file,
        _renamed,
        _non_ascii_untracked,
    ],
)
def test_dirty_package_is_its_would_be_tree(tmp_path: Path, change: Callable[[Path], None]) -> None:
    repo, package = repo_with_package(tmp_path)
    clean = committed_tree(repo, "pkg")
    change(package)
    [found] = tree_hashes([package])
    assert found.dirty
    assert found.tag == f"{found.tree}-dirty"
    assert found.tree != clean
    assert found.tree == would_be_tree(repo, "pkg")


def test_dirty_content_goes_through_attributes_and_clean_filters(tmp_path: Path) -> None:
    repo = init(tmp_path / "repo")
    git(repo, "config", "filter.upper.clean", "tr a-z A-Z")
    write(repo / "pkg" / ".gitattributes", "*.txt text eol=lf\n*.up filter=upper\n")
    write(repo / "pkg" / "keep")
    commit_all(repo)
    (repo / "pkg" / "crlf.txt").write_bytes(b"a\r\nb\r\n")
    write(repo / "pkg" / "shout.up", "quiet\n")
    [found] = tree_hashes([repo / "pkg"])
    assert found.dirty
    assert found.tree == would_be_tree(repo, "pkg")
    assert git(repo, "show", "HEAD:pkg/shout.up") == "QUIET"


def test_staged_change_reverted_in_the_working_tree_is_dirty(tmp_path: Path) -> None:
    repo, package = repo_with_package(tmp_path)
    write(package / "Dockerfile", "FROM alpine\n")
    git(repo, "add", "pkg/Dockerfile")
    write(package / "Dockerfile", "FROM scratch\n")
    assert tree_hashes([package]) == [TreeHash(committed_tree(repo, "pkg"), dirty=True)]


def test_untracked_file_beside_package_leaves_it_clean(tmp_path: Path) -> None:
    repo, package = repo_with_package(tmp_path)
    write(repo / "pkg-other" / "file")
    write(repo / "pkgfile")
    assert tree_hashes([package]) == [TreeHash(committed_tree(repo, "pkg"), dirty=False)]


def test_tracked_package_under_an_ignored_directory(tmp_path: Path) -> None:
    repo = init(tmp_path / "repo")
    write(repo / "build" / "pkg" / "Dockerfile")
    commit_all(repo)
    write(repo / ".gitignore", "build/\n")
    commit_all(repo)
    package = repo / "build" / "pkg"
    assert tree_hashes([package]) == [TreeHash(committed_tree(repo, "build/pkg"), dirty=False)]

    write(package / "Dockerfile", "changed\n")
    write(package / "ignored-untracked")
    [found] = tree_hashes([package])
    assert found.dirty
    assert found.tree == would_be_tree(repo, "build/pkg")


def test_directory_with_only_ignored_files_is_empty_and_dirty(tmp_path: Path) -> None:
    repo, _ = repo_with_package(tmp_path)
    write(repo / "logs" / "a.log")
    (repo / "void").mkdir()
    assert tree_hashes([repo / "logs", repo / "void"]) == [
        TreeHash(EMPTY_TREE, dirty=True),
        TreeHash(EMPTY_TREE, dirty=True),
    ]


def test_package_that_was_a_file_in_head(tmp_path: Path) -> None:
    repo = init(tmp_path / "repo")
    write(repo / "pkg")
    commit_all(repo)
    (repo / "pkg").unlink()
    write(repo / "pkg" / "Dockerfile")
    [found] = tree_hashes([repo / "pkg"])
    assert found.dirty
    assert found.tree == would_be_tree(repo, "pkg")


def test_users_index_and_objects_are_untouched(tmp_path: Path) -> None:
    repo, package = repo_with_package(tmp_path)
    write(package / "untracked.txt")
    write(package / "Dockerfile", "changed\n")
    write(package / "run.sh", "staged\n")
    git(repo, "add", "pkg/run.sh")
    status_before = git(repo, "status", "--porcelain")
    objects_before = git(repo, "count-objects", "-v")
    # A tracked file whose stat data no longer matches the index: a plain `git status` would
    # refresh that entry and rewrite the index.
    os.utime(package / "foo.c", ns=(10**18, 10**18))
    index = repo / ".git" / "index"
    index_before = (index.read_bytes(), index.stat().st_mtime_ns)

    [found] = tree_hashes([package])

    assert found.dirty
    assert (index.read_bytes(), index.stat().st_mtime_ns) == index_before
    assert git(repo, "count-objects", "-v") == objects_before
    assert git(repo, "status", "--porcelain") == status_before


def test_split_index_repository_gets_no_new_files(tmp_path: Path) -> None:
    repo, package = repo_with_package(tmp_path)
    git(repo, "config", "core.splitIndex", "true")
    git(repo, "config", "splitIndex.maxPercentChange", "0")
    git(repo, "update-index", "--split-index")
    write(package / "new")
    dot_git_before = sorted(p.name for p in (repo / ".git").iterdir())
    [found] = tree_hashes([package])
    assert sorted(p.name for p in (repo / ".git").iterdir()) == dot_git_before
    assert found == TreeHash(would_be_tree(repo, "pkg"), dirty=True)


def test_sparse_checkout(tmp_path: Path) -> None:
    repo, package = repo_with_package(tmp_path)
    write(repo / "elsewhere" / "file")
    commit_all(repo)
    git(repo, "sparse-checkout", "set", "--sparse-index", "pkg")
    assert not (repo / "elsewhere").exists()
    assert tree_hashes([package, repo]) == [
        TreeHash(committed_tree(repo, "pkg"), dirty=False),
        TreeHash(committed_tree(repo, ""), dirty=False),
    ]
    write(package / "new")
    found_package, found_root = tree_hashes([package, repo])
    assert found_package.dirty and found_root.dirty
    assert found_package.tree == would_be_tree(repo, "pkg")
    assert found_root.tree == committed_tree(repo, "")
    assert git(repo, "ls-tree", "--name-only", "HEAD", "elsewhere") == "elsewhere"


# --- repositories without commits, worktrees ---------------------------------------------


def test_repository_without_commits(tmp_path: Path) -> None:
    repo = init(tmp_path / "repo")
    write(repo / ".gitignore", "*.log\n")
    make_awkward(repo / "pkg")
    write(repo / "pkg" / "x.log")
    write(repo / "staged-then-deleted")
    git(repo, "add", "staged-then-deleted")
    (repo / "staged-then-deleted").unlink()
    (repo / "void").mkdir()
    found_pkg, found_root, found_void = tree_hashes([repo / "pkg", repo, repo / "void"])
    assert found_pkg.dirty and found_root.dirty
    assert found_void == TreeHash(EMPTY_TREE, dirty=True)
    assert found_pkg.tree != EMPTY_TREE
    pkg_tree = would_be_tree(repo, "pkg")
    assert (found_pkg.tree, found_root.tree) == (pkg_tree, committed_tree(repo, ""))


def test_worktree_with_a_git_file(tmp_path: Path) -> None:
    repo, _ = repo_with_package(tmp_path)
    worktree = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", str(worktree))
    assert (worktree / ".git").is_file()
    assert tree_hashes([worktree / "pkg"]) == [TreeHash(committed_tree(repo, "pkg"), dirty=False)]

    objects_before = git(repo, "count-objects", "-v")
    write(worktree / "pkg" / "new")
    [found] = tree_hashes([worktree / "pkg"])
    assert found.dirty
    assert git(repo, "count-objects", "-v") == objects_before
    assert found.tree == would_be_tree(worktree, "pkg")


# --- outside git -------------------------------------------------------------------------


def test_outside_git_matches_what_git_would_commit(tmp_path: Path) -> None:
    directory = outside(tmp_path)
    make_awkward(directory)
    # Outside git no ignore file applies, and special files are skipped as git skips them.
    write(directory / ".gitignore", "*.log\n")
    write(directory / "kept.log")
    os.mkfifo(directory / "fifo")

    [found] = tree_hashes([directory])

    repo = init(tmp_path / "compare")
    shutil.copytree(directory, repo / "copy", symlinks=True, ignore=lambda *_: ["fifo"])
    git(repo, "add", "-A", "-f")
    commit(repo)
    assert found == TreeHash(committed_tree(repo, "copy"), dirty=True)
    assert found.tag.endswith("-dirty")


def test_outside_git_skips_dot_git_entries(tmp_path: Path) -> None:
    directory = outside(tmp_path)
    write(directory / "Dockerfile")
    before = directory_tree_id(directory)
    write(directory / "sub" / ".git" / "HEAD")
    write(directory / "sub" / ".GIT")
    assert directory_tree_id(directory) == before


def test_outside_git_empty_directory_is_the_empty_tree(tmp_path: Path) -> None:
    directory = outside(tmp_path)
    (directory / "a" / "b").mkdir(parents=True)
    assert tree_hashes([directory]) == [TreeHash(EMPTY_TREE, dirty=True)]
    assert git(tmp_path, "hash-object", "-t", "tree", "/dev/null") == EMPTY_TREE


def test_unreadable_file_outside_git_is_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = outside(tmp_path)
    write(directory / "secret", mode=0o000)
    if os.geteuid() == 0:
        # root reads anything; make the open fail the way it would for anyone else.
        def refuse(self: Path, *args: object, **kwargs: object) -> object:
            raise PermissionError(13, "Permission denied", str(self))

        monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(InputError, match=r"secret: Permission denied$"):
        tree_hashes([directory])


# --- batches, order, errors --------------------------------------------------------------


def test_mixed_batch_keeps_input_order(tmp_path: Path) -> None:
    repo_a, package_a = repo_with_package(tmp_path / "a")
    repo_b = init(tmp_path / "b" / "repo")
    write(repo_b / "pkg" / "Dockerfile", "b\n")
    commit_all(repo_b)
    write(repo_b / "pkg" / "dirt")
    lone = outside(tmp_path, "lone")
    write(lone / "Dockerfile")

    found = tree_hashes([package_a, lone, repo_b / "pkg", package_a, repo_a])

    assert found[0] == found[3] == TreeHash(committed_tree(repo_a, "pkg"), dirty=False)
    assert found[1] == TreeHash(directory_tree_id(lone), dirty=True)
    assert found[2].dirty
    assert found[4] == TreeHash(committed_tree(repo_a, ""), dirty=False)
    assert found[2].tree == would_be_tree(repo_b, "pkg")


def _count_spawns(monkeypatch: pytest.MonkeyPatch) -> list[list[bytes]]:
    calls: list[list[bytes]] = []
    real, real_together = git_module.spawn, git_module.spawn_together

    def counting(argv, **kwargs):
        calls.append(list(argv))
        return real(argv, **kwargs)

    def counting_together(commands, **kwargs):
        calls.extend(list(argv) for argv, _ in commands)
        return real_together(commands, **kwargs)

    monkeypatch.setattr(treehash, "spawn", counting)
    monkeypatch.setattr(treehash, "spawn_together", counting_together)
    return calls


def test_forty_packages_cost_as_many_git_runs_as_one_and_head_comes_with_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = init(tmp_path / "repo")
    packages = [repo / "pkg" / f"p{i:02d}" for i in range(40)]
    for package in packages:
        write(package / "Dockerfile", package.name)
    commit_all(repo)
    commit, when = git(repo, "log", "-1", "--format=%H %ct").split()
    calls = _count_spawns(monkeypatch)

    def runs(dirs: list[Path]) -> int:
        calls.clear()
        hashed = hash_directories(dirs)
        assert hashed.heads == {repo: GitHead(commit, int(when))}
        return len(calls)

    # HEAD (commit and time) included: before, it took a `git log` of its own, so these were
    # 3 + 1, 6 + 1 and 7 + 1. Clean: `cat-file --batch` and `status`, run at once.
    clean_one, clean_all = runs(packages[:1]), runs(packages)
    for package in packages:
        write(package / "untracked")
    dirty_one, dirty_all = runs(packages[:1]), runs(packages)
    (packages[0] / "untracked").unlink()
    mixed_all = runs(packages)

    assert clean_one == clean_all == 2
    assert dirty_one == dirty_all == 7
    assert mixed_all == 7


def test_head_before_the_first_commit_is_none_and_every_directory_is_dirty(
    tmp_path: Path,
) -> None:
    repo = init(tmp_path / "repo")
    write(repo / "pkg" / "Dockerfile")
    hashed = hash_directories([repo / "pkg"])
    assert hashed.heads == {repo: None}
    assert [t.dirty for t in hashed.trees] == [True]


def test_a_directory_name_with_a_newline_or_spaces_is_hashed_like_any_other(
    tmp_path: Path,
) -> None:
    repo = init(tmp_path / "repo")
    names = ["new\nline", "two words", "a b 12"]
    for name in names:
        write(repo / name / "Dockerfile", name)
    commit_all(repo)
    found = tree_hashes([repo / name for name in names])
    assert found == [TreeHash(committed_tree(repo, name), dirty=False) for name in names]


def test_missing_directory_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^.*nope: no such package directory$"):
        tree_hashes([tmp_path / "nope"])
    write(tmp_path / "file")
    with pytest.raises(InputError, match="not a directory"):
        tree_hashes([tmp_path / "file"])


def test_broken_repository_is_a_git_error_naming_the_directory(tmp_path: Path) -> None:
    repo = tmp_path / "broken"
    write(repo / ".git", "gitdir: /nonexistent/path\n")
    write(repo / "pkg" / "Dockerfile")
    with pytest.raises(GitError) as raised:
        tree_hashes([repo / "pkg"])
    message = raised.value.message
    assert str(repo / "pkg") in message
    assert "\n" not in message
    assert "not a git repository" in message


def test_missing_git_is_an_environment_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _repo, package = repo_with_package(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    with pytest.raises(EnvironmentProblem, match="git"):
        tree_hashes([package])


def test_inherited_git_variables_are_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, package = repo_with_package(tmp_path)
    other = init(tmp_path / "other")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(tmp_path / "bogus-index"))
    monkeypatch.setenv("GIT_GLOB_PATHSPECS", "1")
    found = tree_hashes([package])
    monkeypatch.delenv("GIT_DIR")
    monkeypatch.delenv("GIT_INDEX_FILE")
    monkeypatch.delenv("GIT_GLOB_PATHSPECS")
    assert found == [TreeHash(committed_tree(repo, "pkg"), dirty=False)]


# --- extra sources -----------------------------------------------------------------------


def _linuxkit_combined(main: str, *extras: str) -> str:
    return hashlib.sha1((main + "".join(extras)).encode()).hexdigest()


def test_combine_without_extras_is_the_package() -> None:
    main = TreeHash("a" * 40, dirty=True)
    assert combine(main, []) is main


def test_combine_rule() -> None:
    main = TreeHash("a" * 40, dirty=False)
    extra1 = TreeHash("b" * 40, dirty=False)
    extra2 = TreeHash("c" * 40, dirty=False)
    found = combine(main, [extra1, extra2])
    assert found == TreeHash(_linuxkit_combined("a" * 40, "b" * 40, "c" * 40), dirty=False)
    assert combine(main, [extra2, extra1]).tree != found.tree

    dirty_extra = TreeHash("b" * 40, dirty=True)
    assert combine(main, [dirty_extra]).tag == _linuxkit_combined("a" * 40, "b" * 40) + "-dirty"
    assert combine(TreeHash("a" * 40, dirty=True), [extra1]).dirty


def test_combine_with_a_dirty_extra_source(tmp_path: Path) -> None:
    repo, package = repo_with_package(tmp_path)
    write(repo / "shared" / "lib.c")
    commit_all(repo)
    write(repo / "shared" / "new.c")
    main, extra = tree_hashes([package, repo / "shared"])
    assert not main.dirty and extra.dirty
    found = combine(main, [extra])
    assert found.dirty
    assert found.tag == (
        _linuxkit_combined(committed_tree(repo, "pkg"), would_be_tree(repo, "shared")) + "-dirty"
    )
