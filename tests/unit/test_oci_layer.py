"""Layers lkpkg makes: deterministic gzip, diff_id of the uncompressed tar."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile

from lkpkg.oci.layer import compress_layer


def make_tar(content: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        info = tarfile.TarInfo("file")
        info.size = len(content)
        archive.addfile(info, io.BytesIO(content))
    return out.getvalue()


def test_same_tar_same_blob_and_diff_id_is_the_uncompressed_digest(tmp_path):
    tar = make_tar(b"x" * 100_000)
    one = compress_layer(io.BytesIO(tar), tmp_path / "one")
    two = compress_layer(io.BytesIO(tar), tmp_path / "two")
    assert one.digest == two.digest
    assert one.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    blob = (tmp_path / "one").read_bytes()
    assert one.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert one.size == len(blob)
    assert gzip.decompress(blob) == tar
    # No name and no time in the gzip header: bytes 4-7 are the mtime.
    assert blob[4:8] == b"\0\0\0\0"


def test_different_content_different_digest(tmp_path):
    one = compress_layer(io.BytesIO(make_tar(b"a")), tmp_path / "a")
    two = compress_layer(io.BytesIO(make_tar(b"b")), tmp_path / "b")
    assert one.digest != two.digest
    assert one.diff_id != two.diff_id
