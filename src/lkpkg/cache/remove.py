"""Removing refs from the cache (`lkpkg cache rm`, `cache clean`), linuxkit's commands.

linuxkit's `cache rm NAME` deletes the ref and every blob of the image or index it names;
`cache clean` deletes the whole cache directory; `--published-only` limits either to refs
whose digest the registry serves under the same name. lkpkg does the same with one
difference: a blob that another remaining ref still reaches is kept (linuxkit deletes it and
leaves that ref dangling, e.g. `TAG-amd64` after `rm TAG`). Deciding what is unreachable and
deleting it happen under the cache lock, so no ref can come to need a deleted blob meanwhile.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lkpkg.cache.layout import Cache
from lkpkg.errors import CacheError, LkpkgError
from lkpkg.oci import mediatypes
from lkpkg.oci.model import Descriptor

_MANIFESTS = mediatypes.MANIFEST_TYPES | mediatypes.INDEX_TYPES
_LAYOUT_NAMES = frozenset({"oci-layout", "index.json", "blobs", ".tmp", ".lock", ".runs"})


@dataclass(frozen=True)
class Removed:
    refs: tuple[str, ...]
    blobs: int


def reachable(cache: Cache, roots: Iterable[Descriptor]) -> set[str]:
    """Every digest the roots reach among the blobs present (absent ones end the walk)."""
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        desc = stack.pop()
        if desc.digest in seen:
            continue
        seen.add(desc.digest)
        if desc.media_type in _MANIFESTS and cache.has_blob(desc.digest):
            with contextlib.suppress(LkpkgError):  # a corrupt manifest reaches nothing
                stack.extend(cache.read_manifest(desc.digest).children())
    return seen


def remove_refs(cache: Cache, names: Sequence[str]) -> Removed:
    """Drop the refs `names` (fully qualified) and the blobs only they reach.

    Every name must be in the cache; otherwise nothing is removed (`CacheError`).
    """
    with cache.lock():
        entries = cache.refs()
        present = {name for name, _ in entries}
        missing = [n for n in names if n not in present]
        if missing:
            raise CacheError(f"not in the cache {cache.root}: {', '.join(missing)}")
        wanted = set(names)
        dropped = reachable(cache, (d for n, d in entries if n in wanted))
        kept = reachable(cache, (d for n, d in entries if n not in wanted))
        for name in dict.fromkeys(names):
            cache.remove_ref(name)
        blobs = cache.remove_blobs(sorted(dropped - kept))
    return Removed(tuple(dict.fromkeys(names)), blobs)


def clean(cache: Cache) -> None:
    """Empty the cache (linuxkit's `cache clean`). Refused when the directory holds anything
    that is not part of an OCI layout, so a mistyped `--cache` cannot delete a home."""
    root = cache.root
    if not root.exists():
        return
    if not root.is_dir():
        raise CacheError(f"{root} is not a cache directory")
    foreign = sorted(p.name for p in root.iterdir() if p.name not in _LAYOUT_NAMES)
    if foreign:
        raise CacheError(
            f"{root} does not look like a cache (it holds {', '.join(foreign[:3])}): not emptied"
        )
    with cache.lock():
        for path in root.iterdir():
            if path.name in (".lock", ".runs"):
                continue  # others may wait on the lock, and live runs hold their run locks
            try:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            except OSError as e:
                raise CacheError(f"cannot empty the cache: {path}: {e.strerror}") from None
