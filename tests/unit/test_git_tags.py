"""Tags on HEAD (linuxkit's default release names): git is asked unless the repository
surely has no tag at all, and every place a tag can live is seen."""

from __future__ import annotations

from pathlib import Path

import pytest

from lkpkg.errors import EnvironmentProblem
from lkpkg.package import git as git_module
from lkpkg.package.git import tags_at
from tests.conftest import git


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []
    real = git_module.spawn

    def counting(argv, **kwargs):
        calls.append([str(a) for a in argv])
        return real(argv, **kwargs)

    monkeypatch.setattr(git_module, "spawn", counting)
    return calls


def committed(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "build.yml").write_text("image: x\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    return repo, git(repo, "rev-parse", "HEAD")


def test_a_repository_without_tags_is_not_asked(tmp_path, spawned):
    repo, head = committed(tmp_path)
    assert tags_at(repo, head) == ()
    assert spawned == []


def test_loose_annotated_and_packed_tags_are_all_found(tmp_path, spawned):
    repo, head = committed(tmp_path)
    git(repo, "tag", "v1")
    git(repo, "tag", "-a", "-m", "release", "v2")
    assert tags_at(repo, head) == ("v1", "v2")
    git(repo, "pack-refs", "--all")
    assert not any((repo / ".git" / "refs" / "tags").iterdir())
    assert tags_at(repo, head) == ("v1", "v2")
    assert len(spawned) == 2


def test_a_tag_elsewhere_in_history_still_asks_git_and_names_nothing(tmp_path, spawned):
    repo, first = committed(tmp_path)
    git(repo, "tag", "old")
    git(repo, "commit", "-q", "--allow-empty", "-m", "two")
    head = git(repo, "rev-parse", "HEAD")
    assert tags_at(repo, head) == ()
    assert tags_at(repo, first) == ("old",)
    assert len(spawned) == 2


def test_a_worktree_is_always_asked(tmp_path, spawned):
    repo, head = committed(tmp_path)
    git(repo, "tag", "v1")
    worktree = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", str(worktree))
    assert (worktree / ".git").is_file()
    assert tags_at(worktree, head) == ("v1",)
    assert len(spawned) == 1


@pytest.mark.parametrize("together", [False, True])
def test_a_git_that_cannot_start_is_one_environment_line(tmp_path: Path, together: bool) -> None:
    argv = ["lkpkg-test-no-such-git", "status"]
    with pytest.raises(EnvironmentProblem, match=r"^git: not found; .* needs it installed$"):
        if together:
            git_module.spawn_together([(argv, None)], cwd=tmp_path, env={"PATH": str(tmp_path)})
        else:
            git_module.spawn(argv, cwd=tmp_path, env={"PATH": str(tmp_path)})
