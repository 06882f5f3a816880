"""Build args and labels as linuxkit computes them: @lkt:pkg:, @lkt:pkgs: globs (FACTS.md's
key rule), --build-arg-file, the automatic args and labels, REVISION only when clean."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lkpkg import __version__
from lkpkg.errors import InputError
from lkpkg.package.buildinfo import build_args, image_labels
from lkpkg.package.model import load_packages
from lkpkg.pipeline.graph import package_graph


@pytest.fixture
def repo(isolated_git: None, tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    packages = {
        "dep-a": "image: dep-a\n",
        "dep-b": "image: dep-b\norg: wombat\n",
        ".hidden": "image: hidden\n",
        "user": "image: user\nbuildArgs:\n  - DEP%=@lkt:pkgs:../dep-*\n  - ONE=@lkt:pkg:../dep-a\n"
        "  - PLAIN=x=y\n",
    }
    for name, text in packages.items():
        (root / "pkg" / name).mkdir(parents=True)
        (root / "pkg" / name / "build.yml").write_text(text)
        (root / "pkg" / name / "Dockerfile").write_text("FROM scratch\n")
    (root / "pkg" / "dep-file").write_text("not a package directory")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    return root


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def tree(repo: Path, name: str) -> str:
    return git(repo, "rev-parse", f"HEAD:pkg/{name}")


def test_pkgs_glob_gives_one_arg_per_package_with_the_stem_replaced(repo: Path) -> None:
    (user,) = load_packages([repo / "pkg" / "user"])
    assert user.build_args == (
        ("DEPLINUXKIT_DEP_A", f"linuxkit/dep-a:{tree(repo, 'dep-a')}"),
        ("DEPWOMBAT_DEP_B", f"wombat/dep-b:{tree(repo, 'dep-b')}"),
        ("ONE", f"linuxkit/dep-a:{tree(repo, 'dep-a')}"),
        ("PLAIN", "x=y"),
    )


def test_packages_of_the_run_are_named_as_the_run_names_them(repo: Path) -> None:
    packages = load_packages(
        [repo / "pkg" / "dep-a", repo / "pkg" / "user"], org="acme", hash_override="h"
    )
    assert dict(packages[1].build_args)["DEPACME_DEP_A"] == "acme/dep-a:h"
    # dep-b is outside the run: its own org and hash, as linuxkit loads it.
    assert dict(packages[1].build_args)["DEPWOMBAT_DEP_B"] == f"wombat/dep-b:{tree(repo, 'dep-b')}"
    graph = package_graph(packages)
    assert [edge.needs for edge in graph.edges[1]] == [0]


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("DEP=@lkt:pkgs:../dep-*", "invalid build arg key 'DEP', must contain a '%'"),
        ("D%=@lkt:pkgs:../nothing-*", "no packages found matching path"),
        ("D=@lkt:other:x", "unknown linuxkit build arg value '@lkt:other:x'"),
    ],
)
def test_bad_lkt_values_are_refused(repo: Path, arg: str, message: str) -> None:
    (repo / "pkg" / "user" / "build.yml").write_text(f"image: user\nbuildArgs: ['{arg}']\n")
    with pytest.raises(InputError) as caught:
        load_packages([repo / "pkg" / "user"])
    assert message in str(caught.value)
    assert str(caught.value).startswith(str(repo / "pkg" / "user" / "build.yml"))


def test_build_arg_file_overrides_and_resolves_relative_to_itself(repo: Path) -> None:
    args_file = repo / "pkg" / "args.txt"
    args_file.write_text("PLAIN=from-file\n  ONE=@lkt:pkg:dep-b  \n")
    (user,) = load_packages([repo / "pkg" / "user"], build_arg_files=[args_file])
    args = build_args(user)
    assert args["PLAIN"] == "from-file"
    assert args["ONE"] == f"wombat/dep-b:{tree(repo, 'dep-b')}"


def test_build_arg_file_line_without_equals_is_refused(repo: Path) -> None:
    args_file = repo / "args.txt"
    args_file.write_text("A=1\nnot an arg\n")
    with pytest.raises(InputError, match=r"args.txt:2: invalid build-arg 'not an arg'"):
        load_packages([repo / "pkg" / "dep-a"], build_arg_files=[args_file])


def test_clean_package_args_and_labels(repo: Path) -> None:
    (dep,) = load_packages([repo / "pkg" / "dep-a"])
    head = git(repo, "rev-parse", "HEAD")
    args = build_args(dep)
    assert args["REVISION"] == head
    assert args["SOURCE"] == "https://github.com/linuxkit/linuxkit"
    assert (args["PKG_HASH"], args["PKG_IMAGE"]) == (tree(repo, "dep-a"), "linuxkit/dep-a")
    assert image_labels(dep, f"lkpkg-{__version__}") == {
        "org.opencontainers.image.source": "https://github.com/linuxkit/linuxkit",
        "org.opencontainers.image.revision": head,
        "org.mobyproject.linuxkit.version": f"lkpkg-{__version__}",
    }


def test_dirty_package_has_no_revision_and_empty_gitrepo_no_source(repo: Path) -> None:
    (repo / "pkg" / "dep-a" / "build.yml").write_text(
        "image: dep-a\ngitrepo: ''\nconfig: {pid: host}\n"
    )
    (dep,) = load_packages([repo / "pkg" / "dep-a"])
    assert dep.dirty
    assert "REVISION" not in build_args(dep) and "SOURCE" not in build_args(dep)
    assert image_labels(dep, "v") == {
        "org.mobyproject.config": '{"pid":"host"}',
        "org.mobyproject.linuxkit.version": "v",
    }
