"""`lkpkg cache fsck` and `lkpkg cache gc`: check a cache, and take back what nothing needs.

fsck reads every blob and compares it with its name (the digest), resolves every ref to
everything it reaches, and finds what no ref reaches (orphan blobs) and what dead runs left
behind (scratch entries in `.tmp`). With `repair`, corrupt and orphan blobs and stale scratch
entries are removed; refs are never changed (a ref that does not resolve is reported: the
fix is to pull or build it again, or `lkpkg cache rm` it).

gc removes orphan blobs and stale scratch entries only. Both work under the cache lock, and a
blob younger than the oldest live run on the cache is never removed: a live run may have
written it and not yet set the ref that will reach it.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from lkpkg.cache.layout import LAYER_MEMO_DIR, Cache
from lkpkg.cache.remove import reachable
from lkpkg.cache.runs import RUNS_DIR, Swept, run_is_live, sweep, tree_size
from lkpkg.errors import LkpkgError
from lkpkg.oci.digest import SHA256, digest_stream

_HEX64 = re.compile("[0-9a-f]{64}")


@dataclass(frozen=True)
class Report:
    """What fsck or gc found (and, with repair, removed)."""

    blobs: int = 0
    bytes_checked: int = 0
    corrupt: tuple[str, ...] = ()
    broken_refs: tuple[tuple[str, str], ...] = ()  # (ref, why)
    orphans: tuple[str, ...] = ()
    orphan_bytes: int = 0
    young_orphans: int = 0  # kept: a live run may still reference them
    swept: Swept = field(default_factory=Swept)
    removed: bool = False

    @property
    def clean(self) -> bool:
        return not (self.corrupt or self.broken_refs or self.orphans or self.swept.entries)

    def lines(self) -> list[str]:
        """The report as a user reads it: one line per finding, a summary line last."""
        verb = "removed" if self.removed else "found"
        out = [f"corrupt blob {d}" for d in self.corrupt]
        out += [f"broken ref {name}: {why}" for name, why in self.broken_refs]
        out += [f"orphan blob {d}" for d in self.orphans]
        out += [f"stale temp entry .tmp/{name}" for name in self.swept.entries]
        summary = []
        if self.blobs:
            summary.append(f"{self.blobs} blobs ({_mib(self.bytes_checked)}) checked")
        summary += [
            f"{len(self.corrupt)} corrupt",
            f"{len(self.broken_refs)} broken refs",
            f"{len(self.orphans)} orphan blobs ({_mib(self.orphan_bytes)}) {verb}",
            f"{len(self.swept.entries)} stale temp entries ({_mib(self.swept.bytes)}) {verb}",
        ]
        if self.young_orphans:
            summary.append(f"{self.young_orphans} recent orphans kept (a run is live)")
        return [*out, ", ".join(summary)]


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def _blob_digests(cache: Cache) -> list[tuple[str, Path]]:
    folder = cache.root / "blobs" / SHA256
    if not folder.is_dir():
        return []
    return [(f"{SHA256}:{p.name}", p) for p in sorted(folder.iterdir()) if p.is_file()]


def _oldest_live_run(cache: Cache) -> float | None:
    """The start time (lock file mtime) of the oldest other live run on the cache."""
    oldest: float | None = None
    runs = cache.root / RUNS_DIR
    own = cache.run_id
    for lock in runs.glob("r*.lock") if runs.is_dir() else ():
        run_id = lock.stem
        if run_id == own or not run_is_live(cache.root, run_id):
            continue
        with contextlib.suppress(FileNotFoundError):
            started = lock.stat().st_mtime
            oldest = started if oldest is None else min(oldest, started)
    return oldest


def _orphans(cache: Cache) -> tuple[list[tuple[str, Path]], list[tuple[str, Path]]]:
    """(orphan blobs that may go, orphan blobs too young to be sure of)."""
    needed = reachable(cache, (desc for _, desc in cache.refs()))
    oldest = _oldest_live_run(cache)
    old: list[tuple[str, Path]] = []
    young: list[tuple[str, Path]] = []
    for digest, path in _blob_digests(cache):
        if digest in needed:
            continue
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            continue
        (young if oldest is not None and mtime >= oldest - 1 else old).append((digest, path))
    return old, young


def fsck(cache: Cache, *, repair: bool = False) -> Report:
    """Check every blob, every ref, and find orphans and stale scratch entries."""
    if not (cache.root / "index.json").exists() and not (cache.root / "blobs").exists():
        return Report()
    with cache.lock():
        corrupt: list[str] = []
        total = 0
        blobs = _blob_digests(cache)
        for digest, path in blobs:
            try:
                with path.open("rb") as handle:
                    actual, size = digest_stream(handle, SHA256)
            except OSError:
                corrupt.append(digest)
                continue
            total += size
            if actual != digest:
                corrupt.append(digest)
        broken: list[tuple[str, str]] = []
        for name, desc in cache.refs():
            try:
                cache.check_complete(desc, f"ref {name} names")
            except LkpkgError as error:
                broken.append((name, error.message))
        old, young = _orphans(cache)
        orphans = [d for d, _ in old if d not in corrupt]
        orphan_bytes = sum(tree_size(p) for d, p in old if d not in corrupt)
        if repair:
            cache.remove_blobs(corrupt + orphans)
        swept = sweep(cache.root, dry_run=not repair)
    return Report(
        blobs=len(blobs),
        bytes_checked=total,
        corrupt=tuple(corrupt),
        broken_refs=tuple(broken),
        orphans=tuple(orphans),
        orphan_bytes=orphan_bytes,
        young_orphans=len(young),
        swept=swept,
        removed=repair,
    )


def _prune_layer_memos(cache: Cache) -> None:
    """Remove SBOM layer memos whose layer blob is no longer stored (under the lock)."""
    folder = cache.root / LAYER_MEMO_DIR
    for memo in folder.glob("*.json") if folder.is_dir() else ():
        if _HEX64.fullmatch(memo.stem) and not cache.has_blob(f"{SHA256}:{memo.stem}"):
            with contextlib.suppress(FileNotFoundError):
                memo.unlink()


def gc(cache: Cache) -> Report:
    """Remove orphan blobs and stale scratch entries (not corrupt blobs, not refs)."""
    if not (cache.root / "blobs").exists():
        return Report(removed=True)
    with cache.lock():
        old, young = _orphans(cache)
        orphan_bytes = sum(tree_size(p) for _, p in old)
        cache.remove_blobs(d for d, _ in old)
        _prune_layer_memos(cache)
        swept = sweep(cache.root)
    return Report(
        orphans=tuple(d for d, _ in old),
        orphan_bytes=orphan_bytes,
        young_orphans=len(young),
        swept=swept,
        removed=True,
    )
