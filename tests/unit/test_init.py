"""lkpkg init and lkpkg makefile; the command lines lkpkg.mk and lkpkg-tree.mk run, seen
through a stand-in `lkpkg` that records its arguments (real make, no builder)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lkpkg.cli.init import makefile_path
from lkpkg.cli.main import main
from lkpkg.package.buildyml import parse_build_yml
from lkpkg.platforms import host_platform

SECRET_VARIABLES = (
    "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE",
    "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE",
    "COSIGN_PASSWORD",
)
MAKE_VARIABLES = ("ORG", "HASH", "NOTRUST", "PLATFORMS", "LKPKG", "LKPKG_FLAGS", "LKPKG_DIRS")


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- lkpkg init ---------------------------------------------------------------------------


def test_init_writes_dockerfile_build_yml_and_a_two_line_makefile(tmp_path, capsys):
    package = tmp_path / "pkg" / "hello"
    code, out, err = cli(capsys, "init", str(package))
    assert code == 0, err
    written = [package / "Dockerfile", package / "build.yml", package / "Makefile"]
    assert out.splitlines() == [str(p) for p in written]
    assert (package / "Makefile").read_text() == (
        "LKPKG ?= lkpkg\ninclude $(shell $(LKPKG) makefile)\n"
    )
    spec = parse_build_yml(package / "build.yml")
    assert (spec.image, spec.org, spec.arches) == ("hello", "linuxkit", ("amd64", "arm64"))
    stages = [
        line
        for line in (package / "Dockerfile").read_text().splitlines()
        if line.startswith("FROM")
    ]
    assert stages == ["FROM localhost/debian:bookworm AS build", "FROM scratch"]


def test_init_image_and_org_flags_go_into_build_yml(tmp_path, capsys):
    package = tmp_path / "anything"
    code, _, err = cli(
        capsys, "init", "--image", "tools/hello", "--org", "localhost:5000/wombat", str(package)
    )
    assert code == 0, err
    spec = parse_build_yml(package / "build.yml")
    assert (spec.image, spec.org) == ("tools/hello", "localhost:5000/wombat")
    assert "/out/etc/hello-release" in (package / "Dockerfile").read_text()


@pytest.mark.parametrize("name", ["123", "null", "true", "1e3", "0x10", "a_b", "no"])
def test_names_yaml_would_misread_are_quoted_and_read_back_as_given(tmp_path, capsys, name):
    package = tmp_path / name
    code, _, err = cli(capsys, "init", str(package))
    assert code == 0, err
    assert parse_build_yml(package / "build.yml").image == name


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path, capsys):
    package = tmp_path / "hello"
    package.mkdir()
    (package / "build.yml").write_text("image: mine\n")
    code, out, err = cli(capsys, "init", str(package))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("lkpkg: error: ")
    assert str(package / "build.yml") in err and "not overwriting" in err
    assert (package / "build.yml").read_text() == "image: mine\n"
    assert sorted(p.name for p in package.iterdir()) == ["build.yml"]


def test_init_twice_refuses_the_second_time(tmp_path, capsys):
    package = tmp_path / "hello"
    assert cli(capsys, "init", str(package))[0] == 0
    before = {p.name: p.read_text() for p in package.iterdir()}
    code, _, err = cli(capsys, "init", "--image", "other", str(package))
    assert code == 2 and err.count("\n") == 1
    assert {p.name: p.read_text() for p in package.iterdir()} == before


def test_a_directory_name_that_is_no_image_name_asks_for_image(tmp_path, capsys):
    package = tmp_path / "Hello World"
    code, _, err = cli(capsys, "init", str(package))
    assert code == 2 and err.count("\n") == 1
    assert "'Hello World'" in err and "--image" in err
    assert not package.exists()
    code, _, err = cli(capsys, "init", "--image", "hello-world", str(package))
    assert code == 0, err
    assert parse_build_yml(package / "build.yml").image == "hello-world"


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--image", "Hello"], "invalid --image 'Hello'"),
        (["--image", "a//b"], "invalid --image"),
        (["--org", "Wombat"], "invalid org"),
        (["--org", "localhost:5000/"], "invalid org"),
    ],
)
def test_bad_image_or_org_is_refused_before_anything_is_written(tmp_path, capsys, flags, words):
    package = tmp_path / "hello"
    code, _, err = cli(capsys, "init", *flags, str(package))
    assert code == 2 and err.count("\n") == 1
    assert words in err
    assert not package.exists()


def test_init_on_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "hello"
    target.write_text("")
    code, _, err = cli(capsys, "init", str(target))
    assert code == 2 and "not a directory" in err


def test_init_tree_writes_the_tree_makefile_once(tmp_path, capsys):
    tree = tmp_path / "pkg"
    code, out, err = cli(capsys, "init", "--tree", str(tree))
    assert code == 0, err
    assert out.splitlines() == [str(tree / "Makefile")]
    assert (tree / "Makefile").read_text() == (
        "LKPKG ?= lkpkg\ninclude $(shell $(LKPKG) makefile --tree)\n"
    )
    code, _, err = cli(capsys, "init", "--tree", str(tree))
    assert code == 2 and "already exists" in err


def test_init_tree_takes_no_package_flags(tmp_path, capsys):
    code, _, err = cli(capsys, "init", "--tree", "--image", "x", str(tmp_path / "pkg"))
    assert code == 2 and "--tree" in err
    assert not (tmp_path / "pkg").exists()


# -- lkpkg makefile -------------------------------------------------------------------------


@pytest.mark.parametrize(("flags", "name"), [([], "lkpkg.mk"), (["--tree"], "lkpkg-tree.mk")])
def test_makefile_prints_the_absolute_path_of_the_installed_file(capsys, flags, name):
    code, out, err = cli(capsys, "makefile", *flags)
    assert code == 0, err
    path = Path(out.strip())
    assert out.count("\n") == 1
    assert path.is_absolute() and path.name == name
    assert path == makefile_path(tree=bool(flags))
    text = path.read_text()
    assert "LKPKG" in text and "ORG" in text


def test_both_makefiles_sit_side_by_side():
    # lkpkg-tree.mk includes lkpkg.mk from its own directory.
    assert makefile_path(tree=True).parent == makefile_path(tree=False).parent


# -- the command lines of the makefiles (a stand-in lkpkg records them) ---------------------


@pytest.fixture
def fake_lkpkg(tmp_path: Path) -> Path:
    """An `lkpkg` that answers `makefile` like the real one and logs any other call."""
    script = tmp_path / "bin" / "lkpkg"
    script.parent.mkdir()
    tree, single = str(makefile_path(tree=True)), str(makefile_path(tree=False))
    script.write_text(
        f"""#!{sys.executable}
import json, os, sys
if sys.argv[1:2] == ["makefile"]:
    print({tree!r} if "--tree" in sys.argv else {single!r})
    sys.exit(0)
secrets = {{k: v for k, v in os.environ.items() if "PASS" in k}}
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd(), "env": secrets}}) + "\\n")
"""
    )
    script.chmod(0o755)
    return script


def make(
    fake: Path, cwd: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    log = fake.parent / "log"
    log.unlink(missing_ok=True)
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in (*MAKE_VARIABLES, *SECRET_VARIABLES, "MAKEFLAGS", "MFLAGS", "MAKELEVEL")
    }
    result = subprocess.run(
        ["make", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={
            **clean,
            "PATH": f"{fake.parent}:{os.environ['PATH']}",
            "FAKE_LOG": str(log),
            **(env or {}),
        },
        check=False,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result, calls


HOST = f"linux/{host_platform().architecture}"


def host(argv: list[str]) -> list[str]:
    """`argv` of a build or push as the make targets run it: the host's platform named
    explicitly after --org/--hash/--notrust (make tag/push build the machine's arch, as the
    seed's did; lkpkg alone builds build.yml's arches)."""
    if argv[0] not in ("build", "push") or "--platforms" in argv:
        return argv
    at = 1
    while at < len(argv) and argv[at] in ("--org", "--hash", "--tag-mode", "--notrust"):
        at += 1 if argv[at] == "--notrust" else 2
    return [*argv[:at], "--platforms", HOST, *argv[at:]]


@pytest.fixture
def package(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    directory = tmp_path / "hello"
    assert cli(capsys, "init", str(directory))[0] == 0
    return directory


@pytest.mark.parametrize(
    ("args", "argv"),
    [
        ((), ["push", "."]),
        (("push",), ["push", "."]),
        (("ORG=wombat", "NOTRUST=1", "tag"), ["build", "--org", "wombat", "."]),
        (("ORG=wombat", "NOTRUST=1", "build"), ["build", "--org", "wombat", "."]),
        (("ORG=wombat", "NOTRUST=1", "push"), ["push", "--org", "wombat", "--notrust", "."]),
        (
            ("ORG=wombat", "NOTRUST=1", "HASH=foo", "push"),
            ["push", "--org", "wombat", "--hash", "foo", "--notrust", "."],
        ),
        (("ORG=wombat", "HASH=foo", "tag"), ["build", "--org", "wombat", "--hash", "foo", "."]),
        (("TAG_MODE=deps", "tag"), ["build", "--tag-mode", "deps", "."]),
        (("TAG_MODE=deps", "NOTRUST=1", "push"), ["push", "--tag-mode", "deps", "--notrust", "."]),
        (("TAG_MODE=deps", "show-tag"), ["show-tag", "--tag-mode", "deps", "."]),
        (("show-tag",), ["show-tag", "."]),
        (
            ("ORG=w", "HASH=h", "NOTRUST=1", "show-tag"),
            ["show-tag", "--org", "w", "--hash", "h", "."],
        ),
        (("forcetag",), ["build", "--force", "."]),
        (("NOTRUST=yes", "forcepush"), ["push", "--notrust", "--force", "."]),
        (("ORG=", "HASH=", "NOTRUST=", "PLATFORMS=", "LKPKG_FLAGS=", "push"), ["push", "."]),
        (
            ("PLATFORMS=linux/amd64,linux/arm64", "LKPKG_FLAGS=-v --cache /c d", "tag"),
            ["build", "--platforms", "linux/amd64,linux/arm64", "-v", "--cache", "/c", "d", "."],
        ),
    ],
)
def test_targets_and_variables_become_these_lkpkg_arguments(fake_lkpkg, package, args, argv):
    result, calls = make(fake_lkpkg, package, *args)
    assert result.returncode == 0, result.stderr
    assert [call["argv"] for call in calls] == [host(argv)]
    assert calls[0]["cwd"] == str(package)


def test_the_command_is_shown_as_one_would_type_it(fake_lkpkg, package):
    result, _ = make(fake_lkpkg, package, "ORG=wombat", "NOTRUST=1", "push")
    assert result.stdout.splitlines() == [f"lkpkg push --org wombat --notrust --platforms {HOST} ."]
    shown, _ = make(fake_lkpkg, package, "show-tag")
    assert shown.stdout == ""  # show-tag prints only what lkpkg prints


SHELL_TEXT = ["it's", "a b", "`touch pwned`", "x; touch pwned", '"q"', "a\\b", "~", "*", "a,b"]


@pytest.mark.parametrize("value", SHELL_TEXT)
def test_every_value_reaches_lkpkg_as_one_argument(fake_lkpkg, package, value):
    result, calls = make(fake_lkpkg, package, f"HASH={value}", "ORG=o", "tag")
    assert result.returncode == 0, result.stderr
    assert calls[0]["argv"] == host(["build", "--org", "o", "--hash", value, "."])
    assert not (package / "pwned").exists()


@pytest.mark.parametrize(
    "value", [*SHELL_TEXT, "$(touch pwned)", "$(shell touch pwned)", "$HOME", "$$x"]
)
def test_a_value_from_the_environment_is_text_for_make_and_the_shell(fake_lkpkg, package, value):
    result, calls = make(fake_lkpkg, package, "tag", env={"HASH": value})
    assert result.returncode == 0, result.stderr
    assert calls[0]["argv"] == host(["build", "--hash", value, "."])
    assert not (package / "pwned").exists()


def test_a_makefile_may_build_a_variable_from_others(fake_lkpkg, package):
    makefile = package / "Makefile"
    makefile.write_text(
        "REGISTRY = localhost:5000\nORG = $(REGISTRY)/wombat\n" + makefile.read_text()
    )
    _, calls = make(fake_lkpkg, package, "show-tag")
    assert calls[0]["argv"] == ["show-tag", "--org", "localhost:5000/wombat", "."]


def test_values_from_the_environment_count_too(fake_lkpkg, package):
    _, calls = make(fake_lkpkg, package, "push", env={"ORG": "wombat", "NOTRUST": "1"})
    assert calls[0]["argv"] == host(["push", "--org", "wombat", "--notrust", "."])


def test_a_passphrase_in_the_environment_reaches_lkpkg_and_nothing_else(fake_lkpkg, package):
    secret = "s3cret-passphrase"
    result, calls = make(
        fake_lkpkg, package, env={"DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": secret}
    )
    assert result.returncode == 0, result.stderr
    assert calls[0]["argv"] == host(["push", "."])
    assert calls[0]["env"]["DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE"] == secret
    assert secret not in result.stdout + result.stderr


@pytest.mark.parametrize("variable", SECRET_VARIABLES)
def test_a_passphrase_on_makes_command_line_is_refused(fake_lkpkg, package, variable):
    result, calls = make(fake_lkpkg, package, f"{variable}=s3cret", "push")
    assert result.returncode != 0
    assert calls == []
    assert variable in result.stderr and "environment" in result.stderr
    assert "s3cret" not in result.stdout + result.stderr


def test_a_passphrase_set_in_a_makefile_is_refused(fake_lkpkg, package):
    makefile = package / "Makefile"
    makefile.write_text("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE = x\n" + makefile.read_text())
    result, calls = make(fake_lkpkg, package, "push")
    assert result.returncode != 0 and calls == []


def test_make_f_from_elsewhere_works_on_the_makefiles_directory(fake_lkpkg, package):
    _, calls = make(fake_lkpkg, package.parent, "-f", "hello/Makefile", "NOTRUST=1", "push")
    assert calls[0]["argv"] == host(["push", "--notrust", "hello"])


def test_a_target_of_the_package_makefile_before_the_include_stays_the_default(fake_lkpkg, package):
    makefile = package / "Makefile"
    makefile.write_text("first:\n\t@echo mine\n" + makefile.read_text())
    result, calls = make(fake_lkpkg, package)
    assert result.stdout == "mine\n" and calls == []


def test_the_tree_runs_lkpkg_once_over_every_package(fake_lkpkg, tmp_path, capsys):
    tree = tmp_path / "pkg"
    for name in ("b", "a", "c"):
        assert cli(capsys, "init", str(tree / name))[0] == 0
    (tree / "shared").mkdir()  # no build.yml: not a package
    (tree / "shared" / "x").write_text("")
    assert cli(capsys, "init", "--tree", str(tree))[0] == 0
    cases = [
        (("build",), ["build", "a", "b", "c"]),
        (("tag",), ["build", "a", "b", "c"]),
        (("forcetag",), ["build", "--force", "a", "b", "c"]),
        ((), ["push", "a", "b", "c"]),
        (("ORG=w", "NOTRUST=1", "push"), ["push", "--org", "w", "--notrust", "a", "b", "c"]),
        (("HASH=foo", "forcepush"), ["push", "--hash", "foo", "--force", "a", "b", "c"]),
        (("ORG=w", "show-tag"), ["show-tag", "--org", "w", "a", "b", "c"]),
        (("TAG_MODE=deps", "build"), ["build", "--tag-mode", "deps", "a", "b", "c"]),
        (("LKPKG_DIRS=c a", "show-tag"), ["show-tag", "c", "a"]),
    ]
    for args, argv in cases:
        result, calls = make(fake_lkpkg, tree, *args)
        assert result.returncode == 0, result.stderr
        assert [call["argv"] for call in calls] == [host(argv)], args
    result, calls = make(fake_lkpkg, tmp_path, "-C", "pkg", "show-tag")
    assert [call["argv"] for call in calls] == [["show-tag", "a", "b", "c"]]
    result, _ = make(fake_lkpkg, tree, "ORG=w", "NOTRUST=1", "push")
    assert result.stdout == f"lkpkg push --org w --notrust --platforms {HOST} a b c\n"


def test_a_tree_without_packages_says_so(fake_lkpkg, tmp_path, capsys):
    tree = tmp_path / "pkg"
    assert cli(capsys, "init", "--tree", str(tree))[0] == 0
    result, calls = make(fake_lkpkg, tree, "push")
    assert result.returncode != 0 and calls == []
    assert f"no subdirectory of {tree} holds a build.yml" in result.stderr
