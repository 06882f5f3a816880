"""`lkpkg import ROOTFS.tar REF`: a root filesystem tarball becomes a single-layer image.

This is how base images exist without Docker Hub (scripts/mkbase makes the tarball with
mmdebstrap). The result is deterministic: the same tarball and platform give the same digest
(`oci.layer.compress_layer`, a fixed `created`). Importing another platform under the
same REF merges it into REF's index rather than replacing the index.
"""

from __future__ import annotations

import gzip
import tarfile
from pathlib import Path

from lkpkg.cache.layout import Cache
from lkpkg.errors import InputError
from lkpkg.oci import mediatypes
from lkpkg.oci.index import platform_index
from lkpkg.oci.layer import compress_layer
from lkpkg.oci.model import Descriptor, ImageIndex, ImageManifest, Platform, canonical_bytes
from lkpkg.reference import Reference

DEFAULT_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _check_tarball(path: Path) -> None:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        with tarfile.open(path, mode="r:*") as archive:
            if archive.next() is None:
                raise InputError(f"{path}: the tarball is empty")
    except tarfile.TarError as exc:
        raise InputError(f"{path}: not a tar archive ({exc})") from exc


def import_rootfs(
    cache: Cache,
    tarball: Path,
    reference: Reference,
    platform: Platform,
    *,
    created: str = "1970-01-01T00:00:00Z",
) -> Descriptor:
    """Import `tarball` as `platform`'s image under `reference`; returns the index descriptor."""
    _check_tarball(tarball)
    with cache.scratch_dir("import") as tmp:
        # A gzipped tarball is decompressed first: diff_id is the digest of the uncompressed
        # tar, as the image spec requires. Level 1: base tarballs are large, speed wins.
        opener = gzip.open if _is_gzip(tarball) else open
        with opener(tarball, "rb") as src:
            layer = compress_layer(src, tmp / "layer.tar.gz", level=1)
        with cache.lock():
            layer_digest, layer_size = cache.ingest_file(layer.path, layer.digest, move=True)
            config = {
                "created": created,
                "architecture": platform.architecture,
                "os": platform.os,
                **({"variant": platform.variant} if platform.variant else {}),
                "config": {"Env": [DEFAULT_ENV], "Cmd": ["/bin/sh"]},
                "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
                "history": [{"created": created, "created_by": f"lkpkg import {tarball.name}"}],
            }
            config_desc = cache.write_blob(canonical_bytes(config), mediatypes.OCI_CONFIG)
            manifest = ImageManifest(
                config=config_desc,
                layers=(Descriptor(mediatypes.OCI_LAYER_GZIP, layer_digest, layer_size),),
            )
            manifest_desc = cache.put_manifest(manifest)
            entries = [
                Descriptor(
                    manifest_desc.media_type,
                    manifest_desc.digest,
                    manifest_desc.size,
                    platform=platform,
                )
            ]
            current = cache.resolve(str(reference))
            if current is not None:
                previous = cache.read_manifest(current.digest)
                if isinstance(previous, ImageIndex):
                    entries += [
                        m
                        for m in previous.manifests
                        if m.platform is None or not m.platform.matches(platform)
                    ]
            index = cache.put_manifest(platform_index(entries))
            cache.set_ref(str(reference), index)
            return index


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == b"\x1f\x8b"
