"""The attestation work that overlaps the builder (attest/background.py), and the hook that
starts it: `proc.run_logged(started=...)` calls it once the build's process runs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from lkpkg import proc
from lkpkg.attest import attach
from lkpkg.attest.background import Preparation
from lkpkg.package.model import Package, load_packages


@pytest.fixture
def package(isolated_git: None, tmp_path: Path) -> Package:
    root = tmp_path / "pkg"
    root.mkdir()
    (root / "build.yml").write_text("image: pkg\n")
    (root / "Dockerfile").write_text("FROM scratch\nCOPY a /a\n")
    (root / "a").write_text("a\n")
    (loaded,) = load_packages([root], org="example")
    return loaded


def test_the_prepared_sources_are_the_packages_source_files(package: Package) -> None:
    preparation = Preparation(package, sources=True)
    preparation.start()
    assert preparation.result() == attach.source_files(package)


def test_without_an_sbom_nothing_is_hashed(
    package: Package, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(_: Package) -> list[object]:
        raise AssertionError("hashed although no SBOM was asked for")

    monkeypatch.setattr(attach, "source_files", refuse)
    assert Preparation(package, sources=False).result() is None


def test_one_preparation_hashes_once_however_often_started(
    package: Package, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Package] = []
    real = attach.source_files

    def counted(which: Package) -> list[object]:
        calls.append(which)
        return list(real(which))

    monkeypatch.setattr(attach, "source_files", counted)
    preparation = Preparation(package, sources=True)
    preparation.start()  # the first platform's builder
    preparation.start()  # the second's
    assert preparation.result() == preparation.result()
    assert calls == [package]


def test_an_error_hashing_reaches_whoever_asks_for_the_result(
    package: Package, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_: Package) -> list[object]:
        raise PermissionError("unreadable")

    monkeypatch.setattr(attach, "source_files", broken)
    preparation = Preparation(package, sources=True)
    preparation.start()
    with pytest.raises(PermissionError, match="unreadable"):
        preparation.result()


def test_run_logged_calls_started_once_while_the_command_runs() -> None:
    seen: list[int] = []

    def started() -> None:
        seen.append(proc.live_children())

    result = proc.run_logged(
        ["sh", "-c", "echo built"], what="test", env=dict(os.environ), started=started
    )
    assert result.returncode == 0
    assert result.tail == ["built"]
    # Called once, with the child started and not yet reaped.
    assert seen == [1]
    assert proc.live_children() == 0


def _dead(pid: int) -> bool:
    """Gone, or a zombie: nothing of it runs any more."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def test_a_failing_started_hook_leaves_no_child_behind(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"

    def started() -> None:
        # Wait (bounded) until the command has written its pid, then fail.
        for _ in range(500):
            if pid_file.exists() and pid_file.read_text().endswith("\n"):
                break
            time.sleep(0.01)
        raise RuntimeError("hook failed")

    with pytest.raises(RuntimeError, match="hook failed"):
        proc.run_logged(
            ["sh", "-c", f"echo $$ > {pid_file}; exec sleep 60"],
            what="test",
            env=dict(os.environ),
            started=started,
        )
    assert proc.live_children() == 0
    pid = int(pid_file.read_text())
    # Its group was killed: the sleep dies (bounded wait for the kernel to finish it).
    for _ in range(500):
        if _dead(pid):
            break
        time.sleep(0.01)
    assert _dead(pid)
