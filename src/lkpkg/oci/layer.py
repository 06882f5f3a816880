"""Layer blobs made by lkpkg itself (rootfs import, docker save conversion).

The gzip stream carries no file name and a zero mtime, so the same tar always becomes the same
blob digest; the diff_id (the digest of the uncompressed tar, image-spec config.md) is
computed in the same pass. Memory stays at one chunk whatever the layer's size.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lkpkg.oci.digest import CHUNK_SIZE


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class Layer:
    path: Path
    digest: str
    size: int
    diff_id: str


def compress_layer(source: Readable, dest: Path, *, level: int = 6) -> Layer:
    """Gzip an uncompressed layer tar from `source` into `dest`, deterministically."""
    diff = hashlib.sha256()
    with (
        dest.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=level) as gz,
    ):
        while chunk := source.read(CHUNK_SIZE):
            diff.update(chunk)
            gz.write(chunk)
    blob = hashlib.sha256()
    with dest.open("rb") as done:
        while chunk := done.read(CHUNK_SIZE):
            blob.update(chunk)
    return Layer(
        dest, "sha256:" + blob.hexdigest(), dest.stat().st_size, "sha256:" + diff.hexdigest()
    )
