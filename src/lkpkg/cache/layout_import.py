"""Importing from another OCI image layout (a builder's output, a base's layout) into the cache.

Children are stored before the manifests that name them, and every blob is verified against
its digest on the way in, so the cache never holds a manifest naming an absent or corrupt blob.
Blobs are hard-linked when the source is on the cache's filesystem (no second copy of the
bytes), else copied; refs are not touched: the caller sets them once the import succeeded.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from lkpkg.cache.layout import (
    REF_NAME_ANNOTATION,
    Cache,
    copy_digesting,
    digest_path,
    is_file_of_size,
    unlink_quietly,
)
from lkpkg.errors import CacheError, DigestMismatch, FormatError
from lkpkg.oci import mediatypes
from lkpkg.oci.digest import algorithm_of, digest_of, hex_of
from lkpkg.oci.model import Descriptor, ImageIndex, parse_manifest_bytes

_MANIFESTS = mediatypes.MANIFEST_TYPES | mediatypes.INDEX_TYPES


def import_layout(
    cache: Cache,
    src_layout: Path,
    src_ref: str | None = None,
    *,
    fresh_from_builder: bool = False,
) -> Descriptor:
    """Copy everything one entry of another OCI layout reaches into `cache`.

    The entry is the one whose ref-name annotation is `src_ref`, or the only entry when
    `src_ref` is None. Returns the entry's descriptor without annotations.

    `fresh_from_builder`: the layout was just written by a builder into the cache's own
    scratch area, naming each blob by the digest it computed while writing it. Blobs that are
    hard-linked (not copied) are then checked by size, not hashed again: re-reading a large
    layer would double the work after the builder's own. Manifests and configs are always
    hashed (they are small and are what the rest is reached through); `cache fsck` hashes
    every blob.
    """
    src = Path(src_layout)
    top = _choose_entry(src, _read_layout_entries(src), src_ref)
    cache.ensure_layout()
    _import_tree(cache, src, top, set(), fresh_from_builder)
    return replace(top, annotations=None)


def _import_tree(
    cache: Cache, src: Path, desc: Descriptor, seen: set[str], fresh: bool = False
) -> None:
    if desc.digest in seen:
        return
    seen.add(desc.digest)
    if desc.media_type in _MANIFESTS:
        data = _read_src_blob(src, desc)
        try:
            parsed = parse_manifest_bytes(data)
        except FormatError as e:
            raise CacheError(f"{src}: blob {desc.digest}: {e}") from None
        for child in parsed.children():
            _import_tree(cache, src, child, seen, fresh)
        # Only now, with every child stored, may the manifest itself appear in the cache.
    if is_file_of_size(cache.blob_path(desc.digest), desc.size):
        return
    _import_blob(cache, src, desc, trust=fresh and desc.media_type not in _MANIFESTS)


def _import_blob(cache: Cache, src: Path, desc: Descriptor, trust: bool = False) -> None:
    src_blob = _src_blob_path(src, desc)
    if not src_blob.is_file():
        raise CacheError(f"{src} lacks blob {desc.digest} ({desc.media_type}) it references")
    algorithm = algorithm_of(desc.digest)
    tmp = cache.staging_path("import")
    try:
        try:
            try:
                os.link(src_blob, tmp)
            except OSError:
                # Another filesystem, or hard links not permitted here: copy instead.
                actual, size = copy_digesting(src_blob, tmp, algorithm)
            else:
                if trust:
                    actual, size = desc.digest, tmp.stat().st_size
                else:
                    # A link shares the source's bytes; they are verified all the same.
                    actual, size = digest_path(tmp, algorithm)
        except OSError as e:
            raise CacheError(f"cannot import {src_blob}: {e.strerror}") from None
        if actual != desc.digest:
            raise DigestMismatch(f"{src_blob} is corrupt: its content hashes to {actual}")
        if size != desc.size:
            raise CacheError(
                f"{src}: the descriptor of {desc.digest} says {desc.size} bytes,"
                f" the blob has {size}"
            )
        cache.commit_staged(tmp, actual)
    finally:
        unlink_quietly(tmp)


def _read_layout_entries(src: Path) -> list[Descriptor]:
    if not (src / "oci-layout").is_file():
        raise CacheError(f"{src} is not an OCI image layout (no oci-layout file)")
    path = src / "index.json"
    try:
        index = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise CacheError(f"{src} is not an OCI image layout (no index.json)") from None
    except (OSError, ValueError) as e:
        raise CacheError(f"{path}: unreadable: {e}") from None
    try:
        return list(ImageIndex.from_json(index).manifests)
    except FormatError as e:
        raise CacheError(f"{path}: {e}") from None


def _choose_entry(src: Path, entries: list[Descriptor], src_ref: str | None) -> Descriptor:
    if src_ref is None:
        if len(entries) != 1:
            raise CacheError(f"{src}/index.json has {len(entries)} entries; name the one to import")
        return entries[0]
    named = [d for d in entries if (d.annotations or {}).get(REF_NAME_ANNOTATION) == src_ref]
    if not named:
        known = sorted({(d.annotations or {}).get(REF_NAME_ANNOTATION, "?") for d in entries})
        raise CacheError(f"{src} has no entry named '{src_ref}' (it has: {', '.join(known)})")
    if len({d.digest for d in named}) > 1:
        raise CacheError(f"{src} has several different entries named '{src_ref}'")
    return named[0]


def _src_blob_path(src: Path, desc: Descriptor) -> Path:
    return src / "blobs" / algorithm_of(desc.digest) / hex_of(desc.digest)


def _read_src_blob(src: Path, desc: Descriptor) -> bytes:
    path = _src_blob_path(src, desc)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CacheError(
            f"{src} lacks blob {desc.digest} ({desc.media_type}) it references"
        ) from None
    except OSError as e:
        raise CacheError(f"cannot read {path}: {e.strerror}") from None
    actual = digest_of(data, algorithm_of(desc.digest))
    if actual != desc.digest:
        raise DigestMismatch(f"{path} is corrupt: its content hashes to {actual}")
    if len(data) != desc.size:
        raise CacheError(
            f"{src}: descriptor of {desc.digest} says {desc.size} bytes, the blob has {len(data)}"
        )
    return data
