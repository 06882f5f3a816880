"""Which platforms this host can build, natively or under qemu-user emulation."""

from __future__ import annotations

import pytest

from lkpkg import platforms
from lkpkg.errors import InputError
from lkpkg.oci.model import Platform
from lkpkg.platforms import DEFAULT_ARCHES, platform_problem, validate_platform


@pytest.fixture
def amd64_host(monkeypatch):
    monkeypatch.setattr("platform.machine", lambda: "x86_64")


def test_host_platform_uses_goarch_names(amd64_host):
    assert platforms.host_platform() == Platform("linux", "amd64")


def test_native_needs_no_emulator(amd64_host, tmp_path):
    assert platforms.emulation_problem(Platform("linux", "amd64"), tmp_path) is None


def test_missing_binfmt_handler_says_how_to_fix(amd64_host, tmp_path):
    problem = platforms.emulation_problem(Platform("linux", "arm64"), tmp_path)
    assert problem is not None
    assert "qemu-aarch64" in problem.message
    assert problem.hint == "apt-get install qemu-user-static binfmt-support"


def test_enabled_and_disabled_handlers(amd64_host, tmp_path):
    (tmp_path / "qemu-aarch64").write_text(
        "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64\n"
    )
    assert platforms.emulation_problem(Platform("linux", "arm64"), tmp_path) is None
    (tmp_path / "qemu-aarch64").write_text("disabled\n")
    problem = platforms.emulation_problem(Platform("linux", "arm64"), tmp_path)
    assert problem is not None and problem.hint == "update-binfmts --enable qemu-aarch64"


def test_i386_runs_natively_on_amd64(amd64_host, tmp_path):
    assert platforms.emulation_problem(Platform("linux", "386"), tmp_path) is None


def test_mips64le_uses_debians_handler_name(amd64_host, tmp_path):
    problem = platforms.emulation_problem(Platform("linux", "mips64le"), tmp_path)
    assert problem is not None and "qemu-mips64el" in problem.message


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "windows/amd64",
            "unsupported OS 'windows' in windows/amd64: LinuxKit packages are linux only",
        ),
        (
            "darwin/arm64",
            "unsupported OS 'darwin' in darwin/arm64: LinuxKit packages are linux only",
        ),
        ("linux/amd64/v9", "unknown variant 'v9' for amd64 (known: v1, v2, v3, v4)"),
        (
            "linux/sparc",
            "unknown arch 'sparc' in linux/sparc "
            "(known: amd64, arm64, arm, 386, ppc64le, s390x, riscv64, mips64le, loong64)",
        ),
    ],
)
def test_platforms_linuxkit_would_not_build_are_refused(text: str, problem: str) -> None:
    assert platform_problem(Platform.parse(text)) == problem
    with pytest.raises(InputError):
        validate_platform(Platform.parse(text))


@pytest.mark.parametrize(
    "text", ["linux/amd64", "linux/arm64", "linux/arm/v7", "linux/riscv64", "linux/s390x"]
)
def test_platforms_linuxkit_builds_are_accepted(text: str) -> None:
    assert platform_problem(Platform.parse(text)) is None


def test_default_arches_are_linuxkits() -> None:
    assert DEFAULT_ARCHES == ("amd64", "arm64", "riscv64")
