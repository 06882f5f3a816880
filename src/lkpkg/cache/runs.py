"""Runs of lkpkg on a cache, and the sweep of what dead runs left behind.

A run (one `Cache` object that writes) holds an exclusive flock on `<cache>/.runs/<id>.lock`
for as long as its process lives; the kernel drops it when the process dies, SIGKILL included.
Every scratch entry a run makes in `<cache>/.tmp` carries its id (`build-<id>-…`), so the
next run can tell a dead run's leftovers from a live one's and delete exactly those:

- an entry whose run holds its lock is never touched (never another live run's);
- an entry whose run's lock is free belongs to a dead run and is removed;
- an entry that names no run (an older lkpkg, another tool) is removed once it is older than
  `UNOWNED_AGE`.

A new run's lock file is locked right after it is created; a sweeper that deleted it in that
instant is detected (the locked file is no longer the one at the path) and the run retries.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from lkpkg.fsutil import acquire_lock, is_locked

RUNS_DIR = ".runs"
TMP_DIR = ".tmp"
UNOWNED_AGE = 3600.0
# A pattern, compiled (and kept in re's cache) by the first sweep, not by every import.
_ID = r"-(r[0-9a-f]{12})-"


@dataclass(frozen=True)
class Swept:
    """What a sweep removed: scratch entries of dead runs (and old unowned ones), their bytes,
    and the lock files of dead runs."""

    entries: tuple[str, ...] = ()
    bytes: int = 0
    run_locks: int = 0


class Run:
    """This process's run on a cache: its id and the lock that says it is alive."""

    def __init__(self, root: Path, run_id: str, fd: int) -> None:
        self.root = root
        self.id = run_id
        self._fd: int | None = fd

    def scratch_name(self, purpose: str) -> str:
        """A fresh name for a scratch entry in `.tmp`, owned by this run."""
        return f"{purpose}-{self.id}-{secrets.token_hex(6)}"

    def close(self) -> None:
        """End the run: drop its lock file (its scratch entries must be gone already)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                _lock_path(self.root, self.id).unlink()
            os.close(self._fd)
            self._fd = None


def _lock_path(root: Path, run_id: str) -> Path:
    return root / RUNS_DIR / f"{run_id}.lock"


def start_run(root: Path) -> Run:
    """Register a run on the cache at `root` (its lock held until the process ends)."""
    while True:
        run_id = "r" + secrets.token_hex(6)
        path = _lock_path(root, run_id)
        fd = acquire_lock(path)
        assert fd is not None  # a blocking acquire returns a descriptor or raises
        try:
            same = os.fstat(fd).st_ino == path.stat().st_ino
        except FileNotFoundError:
            same = False
        if same:
            return Run(root, run_id, fd)
        os.close(fd)  # a sweeper removed the file between its creation and our lock


def run_is_live(root: Path, run_id: str) -> bool:
    """True while the process of run `run_id` lives (it holds its lock)."""
    return is_locked(_lock_path(root, run_id))


def run_of(name: str) -> str | None:
    """The run id a scratch entry's name carries, or None."""
    found = re.search(_ID, name)
    return found.group(1) if found else None


def tree_size(path: Path) -> int:
    """Bytes of the file, or of every file under the directory, at `path`."""
    if path.is_symlink() or not path.is_dir():
        with contextlib.suppress(OSError):
            return path.lstat().st_size
        return 0
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(dirpath) / name).lstat().st_size
    return total


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def sweep(
    root: Path,
    *,
    now: float | None = None,
    unowned_age: float = UNOWNED_AGE,
    dry_run: bool = False,
) -> Swept:
    """Remove the scratch entries of dead runs (and old unowned ones), and dead runs' locks;
    with `dry_run`, only say what would go."""
    now = time.time() if now is None else now
    removed: list[str] = []
    total = 0
    dead: set[str] = set()
    tmp = root / TMP_DIR
    for entry in sorted(tmp.iterdir()) if tmp.is_dir() else ():
        run_id = run_of(entry.name)
        if run_id is None:
            try:
                age = now - entry.lstat().st_mtime
            except FileNotFoundError:
                continue
            if age < unowned_age:
                continue
        elif run_id not in dead:
            if run_is_live(root, run_id):
                continue
            dead.add(run_id)
        total += tree_size(entry)
        if not dry_run:
            _remove(entry)
        removed.append(entry.name)
    locks = 0
    if dry_run:
        return Swept(tuple(removed), total, 0)
    runs = root / RUNS_DIR
    for lock in sorted(runs.glob("r*.lock")) if runs.is_dir() else ():
        try:
            fd = acquire_lock(lock, blocking=False, create=False)
        except FileNotFoundError:
            continue
        if fd is None:
            continue
        try:
            lock.unlink()  # unlinked while we hold it: a run starting on it sees and retries
            locks += 1
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)
    return Swept(tuple(removed), total, locks)
