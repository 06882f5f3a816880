"""Conversions between OCI image layouts and the `docker save`/`docker load` archive format.

A Docker engine of the 20.10 line can only import and export its own archive format. Layers
in `docker save` output are uncompressed tars; they are gzipped deterministically
(`oci.layer.compress_layer`) so the same layer always gives the same blob digest.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path
from typing import IO

from lkpkg.errors import BuildError
from lkpkg.oci import mediatypes
from lkpkg.oci.layer import compress_layer
from lkpkg.oci.model import Descriptor, ImageIndex, ImageManifest, canonical_bytes


def _blob(layout: Path, digest: str) -> Path:
    algorithm, hexpart = digest.split(":", 1)
    return layout / "blobs" / algorithm / hexpart


def write_docker_archive(
    layout: Path, manifest_digest: str, repo_tag: str, dest: IO[bytes]
) -> None:
    """Write one image of an OCI layout as a `docker load` archive tagged `repo_tag`."""
    manifest = json.loads(_blob(layout, manifest_digest).read_bytes())
    config_digest = manifest["config"]["digest"]
    layer_names: list[str] = []
    with tarfile.open(fileobj=dest, mode="w|") as archive:
        config_name = config_digest.split(":", 1)[1] + ".json"
        archive.add(str(_blob(layout, config_digest)), arcname=config_name)
        for layer in manifest["layers"]:
            name = layer["digest"].split(":", 1)[1] + "/layer.tar"
            # docker load decompresses gzip layers itself, so blobs go in unchanged.
            archive.add(str(_blob(layout, layer["digest"])), arcname=name)
            layer_names.append(name)
        index = json.dumps([{"Config": config_name, "RepoTags": [repo_tag], "Layers": layer_names}])
        data = index.encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))


def _put(layout: Path, data: bytes) -> tuple[str, int]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = _blob(layout, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest, len(data)


def docker_archive_to_layout(archive_path: Path, layout: Path, ref: str) -> Descriptor:
    """Turn a single-image `docker save` archive into an OCI layout holding it as `ref`."""
    if layout.exists():
        shutil.rmtree(layout)
    (layout / "blobs" / "sha256").mkdir(parents=True)
    with tarfile.open(archive_path, mode="r:") as archive:
        index_member = archive.extractfile("manifest.json")
        if index_member is None:
            raise BuildError(f"{archive_path}: docker save wrote no manifest.json")
        entries = json.loads(index_member.read())
        if len(entries) != 1:
            raise BuildError(f"{archive_path}: expected one image, found {len(entries)}")
        entry = entries[0]
        config_file = archive.extractfile(entry["Config"])
        if config_file is None:
            raise BuildError(f"{archive_path}: missing image config")
        config_bytes = config_file.read()
        config = json.loads(config_bytes)
        layers: list[Descriptor] = []
        for position, layer_name in enumerate(entry["Layers"]):
            member = archive.extractfile(layer_name)
            if member is None:
                raise BuildError(f"{archive_path}: missing layer {layer_name}")
            layer = compress_layer(member, layout / "blobs" / "sha256" / ".incoming")
            digest, size, diff_id = layer.digest, layer.size, layer.diff_id
            layer.path.replace(_blob(layout, digest))
            expected = config["rootfs"]["diff_ids"][position]
            if diff_id != expected:
                raise BuildError(
                    f"{archive_path}: layer {position} is {diff_id}, config says {expected}"
                )
            layers.append(Descriptor(mediatypes.OCI_LAYER_GZIP, digest, size))
    config_digest, config_size = _put(layout, config_bytes)
    manifest = ImageManifest(
        config=Descriptor(mediatypes.OCI_CONFIG, config_digest, config_size),
        layers=tuple(layers),
    )
    manifest_bytes = canonical_bytes(manifest.to_json())
    digest, size = _put(layout, manifest_bytes)
    descriptor = Descriptor(
        mediatypes.OCI_MANIFEST,
        digest,
        size,
        annotations={"org.opencontainers.image.ref.name": ref},
    )
    index = ImageIndex(manifests=(descriptor,))
    (layout / "index.json").write_bytes(canonical_bytes(index.to_json()))
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return Descriptor(mediatypes.OCI_MANIFEST, digest, size)
