"""Host-wide locks that builders take around shared engine state (flock, so they hold across
processes: two lkpkg runs on one host serialise there and nowhere else)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from lkpkg.fsutil import locked as host_lock

__all__ = ["host_lock", "lock_path"]


def lock_path(kind: str, key: str) -> Path:
    """A lock file per (kind, key) in the system's temporary directory."""
    safe = "".join(c if c.isalnum() or c in "-." else "_" for c in key)
    return Path(tempfile.gettempdir()) / "lkpkg-locks" / f"{kind}-{safe}.lock"
