"""Which platforms this host can build, natively or under qemu-user emulation."""

from __future__ import annotations

import pytest

from lkpkg import platforms
from lkpkg.oci.model import Platform


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
