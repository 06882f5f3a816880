from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lkpkg import fsutil


def test_atomic_write_replaces_whole_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "d" / "f.json"
    fsutil.atomic_write(target, b"one")
    fsutil.atomic_write(target, b"two", mode=0o600)
    assert target.read_bytes() == b"two"
    assert target.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.json"]


def test_atomic_write_failure_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")
    staging = tmp_path / "staging"
    staging.mkdir()
    with pytest.raises(TypeError):
        fsutil.atomic_write(target, "not bytes", tmp_dir=staging)  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert list(staging.iterdir()) == []


def test_a_lock_excludes_another_process_and_dies_with_its_holder(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    assert not fsutil.is_locked(lock)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from lkpkg import fsutil\n"
            "fd = fsutil.acquire_lock(Path(sys.argv[1]))\n"
            "print('held', flush=True); time.sleep(60)",
            str(lock),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        assert fsutil.is_locked(lock)
        assert fsutil.acquire_lock(lock, blocking=False) is None
    finally:
        holder.kill()
        holder.wait()
    assert not fsutil.is_locked(lock)  # the kernel released it with the process
    with fsutil.locked(lock):
        fd = fsutil.acquire_lock(lock, blocking=False)
        assert fd is None
    fd = fsutil.acquire_lock(lock, shared=True, blocking=False)
    assert fd is not None
    os.close(fd)
