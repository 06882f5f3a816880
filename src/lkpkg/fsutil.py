"""File-system primitives every writer shares: atomic replacement and fcntl locks.

Invariants:
- `atomic_write` leaves either the old file or all of the new bytes at `path`, never a torn
  file: the bytes go to a temporary file in `tmp_dir` (same filesystem as `path`), are fsynced,
  then renamed over `path`, and the directory is fsynced so the rename survives a crash.
- Locks are `flock(2)` on a lock file: held by an open file description, so they hold across
  processes, are released by the kernel when the holder dies (a crash never leaves a lock
  behind), and never depend on the lock file's content.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

FILE_MODE = 0o644


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable. Best effort: some filesystems refuse it on directories."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(
    path: Path,
    data: bytes,
    *,
    tmp_dir: Path | None = None,
    mode: int = FILE_MODE,
    prefix: str = "write-",
) -> None:
    """Write `data` to `path` so that readers see either the old file or all of `data`.

    `tmp_dir` (default: `path`'s directory) must be on the same filesystem as `path`.
    Raises `OSError` as the system reports it; nothing is left in `tmp_dir` on failure.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=tmp_dir or path.parent, prefix=prefix)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fchmod(out.fileno(), mode)
            # fsync before rename: otherwise a crash can leave the new name on old, empty data.
            os.fsync(out.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def acquire_lock(
    path: Path, *, shared: bool = False, blocking: bool = True, create: bool = True
) -> int | None:
    """Open `path` (created if absent, unless `create` is False) and flock it; the descriptor
    holds the lock.

    Close the descriptor to release it. With `blocking=False`, None when another open file
    holds a conflicting lock. Raises `OSError` when the file cannot be opened or locked
    (`FileNotFoundError` when it is absent and `create` is False).
    """
    flags = os.O_RDWR | os.O_CLOEXEC
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
        flags |= os.O_CREAT
    fd = os.open(path, flags, FILE_MODE)
    operation = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    if not blocking:
        operation |= fcntl.LOCK_NB
    try:
        fcntl.flock(fd, operation)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def locked(path: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold a flock on `path` for the duration of the block (blocking until it is free)."""
    fd = acquire_lock(path, shared=shared)
    assert fd is not None  # a blocking acquire returns a descriptor or raises
    try:
        yield
    finally:
        os.close(fd)


def is_locked(path: Path) -> bool:
    """True when some live process holds a lock on `path` (probed without waiting); an absent
    file is not locked. Other errors are raised: "cannot tell" is not "nobody holds it"."""
    try:
        fd = acquire_lock(path, blocking=False, create=False)
    except FileNotFoundError:
        return False
    if fd is None:
        return True
    os.close(fd)
    return False


def mount_points_under(path: Path, mountinfo: str | None = None) -> list[Path]:
    """Mount points at or below `path` in this process's mount namespace, deepest first
    (`mountinfo`, default `/proc/self/mountinfo`; its octal escapes — a space is `\\040` —
    undone)."""
    root = str(path)
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            return []
    lines = mountinfo.splitlines()
    found = []
    for line in lines:
        fields = line.split(" ")
        if len(fields) < 5:
            continue
        point = _unescape_mount_field(fields[4])
        if point == root or point.startswith(root + "/"):
            found.append(point)
    return [Path(p) for p in sorted(set(found), key=len, reverse=True)]


def _unescape_mount_field(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        chunk = text[i : i + 4]
        if len(chunk) == 4 and chunk[0] == "\\" and chunk[1:].isdigit():
            out.append(chr(int(chunk[1:], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def detach_mount(path: Path) -> bool:
    """`umount2(path, MNT_DETACH)`: the mount leaves the tree now, the kernel frees it when its
    last user goes. False when it could not (not mounted, not permitted)."""
    import ctypes  # only for this rare clean-up

    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.umount2(os.fsencode(path), 2)) == 0  # 2: MNT_DETACH
