"""index.json is parsed once per version of the file, and every other version is seen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lkpkg.cache.indexfile import IndexFile
from lkpkg.cache.layout import REF_NAME_ANNOTATION, Cache
from lkpkg.errors import CacheError
from lkpkg.oci.model import canonical_bytes

from .test_cache_layout import REF, put_image

DIGEST = "sha256:" + "a" * 64


def later() -> int:
    """A clock well past every file these tests write: no version is racily fresh."""
    return time.time_ns() + 10**12


def index_bytes(*names: str, size: int = 1) -> bytes:
    entries = [
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": DIGEST,
            "size": size,
            "annotations": {REF_NAME_ANNOTATION: name},
        }
        for name in names
    ]
    return canonical_bytes({"schemaVersion": 2, "manifests": entries})


def replace_in_another_process(path: Path, data: bytes) -> None:
    """What linuxkit or another lkpkg does: write a temporary file, rename it over index.json."""
    script = (
        "import os, sys; p = sys.argv[1]; open(p + '.new', 'wb').write(sys.stdin.buffer.read());"
        " os.replace(p + '.new', p)"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], input=data, check=True)


def test_an_unchanged_file_is_parsed_once(tmp_path):
    path = tmp_path / "index.json"
    path.write_bytes(index_bytes("docker.io/a/b:1"))
    index = IndexFile(path, clock=later)
    for _ in range(5):
        assert index.read().resolve("docker.io/a/b:1") is not None
    assert index.parses == 1


def test_a_file_replaced_by_another_process_is_read_again(tmp_path):
    path = tmp_path / "index.json"
    path.write_bytes(index_bytes("docker.io/a/b:1"))
    index = IndexFile(path, clock=later)
    assert [name for name, _ in index.read().entries] == ["docker.io/a/b:1"]
    # Same size as before: only the inode (and ctime) say it is another file.
    replace_in_another_process(path, index_bytes("docker.io/a/b:2"))
    assert [name for name, _ in index.read().entries] == ["docker.io/a/b:2"]
    assert index.parses == 2


def test_an_in_place_rewrite_with_the_old_mtime_is_read_again(tmp_path):
    path = tmp_path / "index.json"
    path.write_bytes(index_bytes("docker.io/a/b:1"))
    before = path.stat()
    index = IndexFile(path)  # the real clock: this version may be racily fresh
    assert index.read().resolve("docker.io/a/b:1") is not None
    with path.open("r+b") as f:  # same inode, same size, mtime put back: a careless tool
        f.write(index_bytes("docker.io/a/b:2"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert index.read().resolve("docker.io/a/b:2") is not None


def test_a_racily_fresh_version_is_not_remembered(tmp_path):
    path = tmp_path / "index.json"
    path.write_bytes(index_bytes("docker.io/a/b:1"))
    index = IndexFile(path, clock=lambda: path.stat().st_ctime_ns)
    index.read()
    index.read()
    assert index.parses == 2


def test_absent_and_malformed_files(tmp_path):
    path = tmp_path / "index.json"
    index = IndexFile(path, clock=later)
    assert index.read().entries == ()
    path.write_bytes(b"{not json")
    with pytest.raises(CacheError, match="not valid JSON"):
        index.read()
    path.write_bytes(json.dumps({"manifests": [{"digest": "nope"}]}).encode())
    with pytest.raises(CacheError, match=r"manifests\[0\]"):
        index.read()


def test_the_shared_document_is_not_changed_by_a_rewrite(tmp_path):
    path = tmp_path / "index.json"
    path.write_bytes(index_bytes("docker.io/a/b:1"))
    index = IndexFile(path, clock=later)
    doc = index.read().mutable_document()
    doc["manifests"].clear()
    assert len(index.read().document["manifests"]) == 1


def test_cache_sees_a_ref_another_process_wrote(tmp_path):
    cache = Cache(tmp_path / "cache")
    cache.index_file = IndexFile(cache.index_file.path, clock=later)
    image = put_image(cache, "amd64")
    with cache.lock():
        cache.set_ref(REF, image)
    assert cache.resolve(REF) == image
    parses = cache.index_file.parses
    assert cache.resolve(REF) == image
    assert cache.index_file.parses == parses  # nothing changed: not parsed again
    other = REF.replace("hello", "other")
    data = json.loads((cache.root / "index.json").read_bytes())
    data["manifests"][0]["annotations"][REF_NAME_ANNOTATION] = other
    replace_in_another_process(cache.root / "index.json", canonical_bytes(data))
    assert cache.resolve(REF) is None
    assert cache.resolve(other) == image


def test_setting_a_ref_to_what_it_names_does_not_rewrite_the_index(tmp_path):
    cache = Cache(tmp_path / "cache")
    image = put_image(cache, "amd64")
    cache.set_ref(REF, image)
    inode = (cache.root / "index.json").stat().st_ino
    cache.set_ref(REF, image)
    assert (cache.root / "index.json").stat().st_ino == inode
    cache.remove_ref(REF)
    assert cache.resolve(REF) is None
    assert (cache.root / "index.json").stat().st_ino != inode
