"""Host-wide locks that builders take around shared engine state (fcntl, so they hold across
processes: two lkpkg runs on one host serialise there and nowhere else)."""

from __future__ import annotations

import fcntl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def lock_path(kind: str, key: str) -> Path:
    """A lock file per (kind, key) in the system's temporary directory."""
    safe = "".join(c if c.isalnum() or c in "-." else "_" for c in key)
    return Path(tempfile.gettempdir()) / "lkpkg-locks" / f"{kind}-{safe}.lock"


@contextmanager
def host_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
