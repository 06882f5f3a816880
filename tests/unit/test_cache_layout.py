"""The OCI layout cache: round trips, verification, atomicity, locking, and outside validators."""

from __future__ import annotations

import gzip
import io
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

from lkpkg.cache.layout import REF_NAME_ANNOTATION, Cache, default_cache_dir
from lkpkg.cache.layout_import import import_layout
from lkpkg.cache.platform import cached_image_platform, image_platform
from lkpkg.errors import CacheError, DigestMismatch, ReferenceError_
from lkpkg.oci import mediatypes as mt
from lkpkg.oci.digest import sha256_digest
from lkpkg.oci.model import (
    Descriptor,
    ImageIndex,
    ImageManifest,
    Platform,
    canonical_bytes,
)

REF = "docker.io/wombat/hello:abc123"


def layer_tar(name: str = "hello.txt", content: bytes = b"hello\n") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def put_image(cache: Cache, arch: str, variant: str | None = None) -> Descriptor:
    """Store a real one-layer image for linux/<arch>; return its manifest descriptor."""
    tar = layer_tar(content=f"hello from {arch}\n".encode())
    layer = cache.write_blob(gzip.compress(tar, mtime=0), mt.OCI_LAYER_GZIP)
    config = {
        "architecture": arch,
        "os": "linux",
        "config": {"Labels": {"arch": arch}},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar)]},
    }
    if variant:
        config["variant"] = variant
    cfg = cache.write_blob(canonical_bytes(config), mt.OCI_CONFIG)
    return cache.put_manifest(ImageManifest(config=cfg, layers=(layer,)))


def put_package(cache: Cache, ref: str = REF, archs=("amd64", "arm64")) -> Descriptor:
    """linuxkit's shape: `ref` → index of platforms, `ref-<arch>` → each platform's manifest."""
    entries = []
    for arch in archs:
        manifest = put_image(cache, arch)
        cache.set_ref(f"{ref}-{arch}", manifest)
        entries.append(
            Descriptor(manifest.media_type, manifest.digest, manifest.size, Platform("linux", arch))
        )
    index = cache.put_manifest(ImageIndex(manifests=tuple(entries)))
    cache.set_ref(ref, index)
    return index


def tmp_leftovers(cache: Cache) -> list[str]:
    tmp = cache.root / ".tmp"
    return sorted(os.listdir(tmp)) if tmp.exists() else []


# -- location and lazy creation ---------------------------------------------------------------


def test_default_cache_dir(monkeypatch, tmp_path):
    assert default_cache_dir({"LINUXKIT_CACHE": str(tmp_path / "lk")}) == tmp_path / "lk"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir({}) == tmp_path / ".linuxkit" / "cache"


def test_nothing_is_created_until_the_first_write(tmp_path):
    cache = Cache(tmp_path / "c")
    assert cache.refs() == []
    assert cache.resolve(REF) is None
    assert not cache.has_blob(sha256_digest(b"x"))
    assert not cache.root.exists()
    cache.write_blob(b"x", "text/plain")
    assert json.loads((cache.root / "oci-layout").read_bytes()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((cache.root / "index.json").read_bytes())
    assert index == {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}


def test_unsupported_layout_version_is_refused(tmp_path):
    (tmp_path / "oci-layout").write_text('{"imageLayoutVersion":"9.9.9"}')
    with pytest.raises(CacheError, match="unsupported imageLayoutVersion"):
        Cache(tmp_path).write_blob(b"x", "text/plain")


# -- blobs ------------------------------------------------------------------------------------


def test_blob_round_trip(tmp_path):
    cache = Cache(tmp_path)
    desc = cache.write_blob(b"some bytes", mt.OCI_CONFIG)
    assert desc == Descriptor(mt.OCI_CONFIG, sha256_digest(b"some bytes"), 10)
    path = cache.blob_path(desc.digest)
    assert path == tmp_path / "blobs" / "sha256" / desc.digest.removeprefix("sha256:")
    assert path.stat().st_mode & 0o777 == 0o644
    assert cache.has_blob(desc.digest)
    assert cache.read_blob(desc.digest) == b"some bytes"
    with cache.open_blob(desc.digest) as f:
        assert f.read() == b"some bytes"
    # Writing the same content again is a no-op that returns the same name.
    assert cache.write_blob(b"some bytes", mt.OCI_CONFIG) == desc
    assert tmp_leftovers(cache) == []


def test_corrupt_blob_is_detected(tmp_path):
    cache = Cache(tmp_path)
    desc = cache.write_blob(b"original", "text/plain")
    cache.blob_path(desc.digest).write_bytes(b"tampered")  # same size, other bytes
    with pytest.raises(DigestMismatch, match="corrupt"):
        cache.read_blob(desc.digest)
    # The next write of the right content repairs the damaged copy.
    cache.write_blob(b"original", "text/plain")
    assert cache.read_blob(desc.digest) == b"original"


def test_missing_and_malformed_blob_names(tmp_path):
    cache = Cache(tmp_path)
    with pytest.raises(CacheError, match="not in the cache"):
        cache.read_blob(sha256_digest(b"absent"))
    with pytest.raises(CacheError, match="not in the cache"):
        cache.open_blob(sha256_digest(b"absent"))
    with pytest.raises(ReferenceError_, match="invalid digest"):
        cache.blob_path("sha256:../../etc/passwd")


def test_ingest_file_copies_and_verifies(tmp_path):
    cache = Cache(tmp_path / "c")
    src = tmp_path / "big"
    data = os.urandom(3 * 1024 * 1024 + 17)  # several copy chunks
    src.write_bytes(data)
    digest, size = cache.ingest_file(src, sha256_digest(data))
    assert (digest, size) == (sha256_digest(data), len(data))
    assert cache.read_blob(digest) == data
    assert src.exists()
    assert tmp_leftovers(cache) == []
    # Already present: answered from the cache, and `move` still consumes the source.
    assert cache.ingest_file(src, digest, move=True) == (digest, size)
    assert not src.exists()


def test_ingest_file_move(tmp_path):
    cache = Cache(tmp_path / "c")
    src = tmp_path / "layer"
    src.write_bytes(b"layer bytes")
    src.chmod(0o600)
    digest, size = cache.ingest_file(src, move=True)
    assert (digest, size) == (sha256_digest(b"layer bytes"), 11)
    assert not src.exists()
    assert cache.blob_path(digest).stat().st_mode & 0o777 == 0o644
    assert cache.read_blob(digest) == b"layer bytes"


@pytest.mark.parametrize("move", [False, True])
def test_ingest_digest_mismatch_leaves_nothing_behind(tmp_path, move):
    cache = Cache(tmp_path / "c")
    cache.write_blob(b"unrelated", "text/plain")  # the layout exists; only the new blob must not
    before = sorted(os.listdir(cache.root / "blobs" / "sha256"))
    src = tmp_path / "layer"
    src.write_bytes(b"actual content")
    src.chmod(0o600)
    wrong = sha256_digest(b"claimed content")
    with pytest.raises(DigestMismatch, match="hashes to"):
        cache.ingest_file(src, wrong, move=move)
    assert sorted(os.listdir(cache.root / "blobs" / "sha256")) == before
    assert not cache.has_blob(wrong)
    assert not cache.has_blob(sha256_digest(b"actual content"))
    assert tmp_leftovers(cache) == []
    assert src.read_bytes() == b"actual content"  # the caller's file is handed back intact
    assert src.stat().st_mode & 0o777 == 0o600


def test_ingest_missing_source(tmp_path):
    with pytest.raises(CacheError, match="cannot ingest"):
        Cache(tmp_path / "c").ingest_file(tmp_path / "nope")
    with pytest.raises(CacheError, match="cannot ingest"):
        Cache(tmp_path / "c").ingest_file(tmp_path / "nope", move=True)


# -- manifests --------------------------------------------------------------------------------


def test_put_and_read_manifest(tmp_path):
    cache = Cache(tmp_path)
    desc = put_image(cache, "amd64")
    assert desc.media_type == mt.OCI_MANIFEST
    manifest = cache.read_manifest(desc.digest)
    assert isinstance(manifest, ImageManifest)
    assert cache.read_blob(desc.digest) == canonical_bytes(manifest.to_json())


def test_put_manifest_refuses_missing_blobs(tmp_path):
    cache = Cache(tmp_path)
    cfg = cache.write_blob(b"{}", mt.OCI_CONFIG)
    absent = Descriptor(mt.OCI_LAYER_GZIP, sha256_digest(b"never written"), 13)
    with pytest.raises(CacheError, match=r"the manifest names .* which is not in the cache"):
        cache.put_manifest(ImageManifest(config=cfg, layers=(absent,)))
    wrong_size = Descriptor(mt.OCI_CONFIG, cfg.digest, cfg.size + 1)
    with pytest.raises(CacheError, match="stored blob has 2 bytes"):
        cache.put_manifest(ImageManifest(config=wrong_size, layers=()))
    # A manifest stored behind put_manifest's back is still checked when an index names it.
    raw = canonical_bytes(ImageManifest(config=cfg, layers=(absent,)).to_json())
    sneaky = cache.write_blob(raw, mt.OCI_MANIFEST)
    with pytest.raises(CacheError, match="not in the cache"):
        cache.put_manifest(ImageIndex(manifests=(sneaky,)))
    with pytest.raises(CacheError, match="not in the cache"):
        cache.set_ref(REF, sneaky)
    assert cache.refs() == []


def test_read_manifest_of_a_non_manifest(tmp_path):
    cache = Cache(tmp_path)
    desc = cache.write_blob(b"[1, 2]", "application/json")
    with pytest.raises(CacheError, match="expected a JSON object"):
        cache.read_manifest(desc.digest)


# -- refs -------------------------------------------------------------------------------------


def test_ref_round_trip(tmp_path):
    cache = Cache(tmp_path)
    index = put_package(cache)
    names = [name for name, _ in cache.refs()]
    assert names == [REF, f"{REF}-amd64", f"{REF}-arm64"]
    assert cache.resolve(REF) == index
    entry = json.loads((tmp_path / "index.json").read_bytes())["manifests"][-1]
    assert entry["annotations"] == {REF_NAME_ANNOTATION: REF}
    # Replacing a ref keeps one entry for it; other annotations survive the round trip.
    other = put_image(cache, "riscv64")
    annotated = Descriptor(other.media_type, other.digest, other.size, annotations={"k": "v"})
    cache.set_ref(REF, annotated)
    assert cache.resolve(REF) == annotated
    assert [name for name, _ in cache.refs()].count(REF) == 1
    cache.remove_ref(REF)
    cache.remove_ref(REF)  # idempotent
    assert cache.resolve(REF) is None
    assert len(cache.refs()) == 2
    assert cache.has_blob(index.digest)  # removing a ref removes no blobs


def test_refs_must_be_fully_qualified(tmp_path):
    cache = Cache(tmp_path)
    desc = put_image(cache, "amd64")
    with pytest.raises(ReferenceError_, match=re.escape("'docker.io/wombat/hello:1'")):
        cache.set_ref("wombat/hello:1", desc)
    with pytest.raises(ReferenceError_):
        cache.set_ref("Not A Ref", desc)
    from lkpkg.reference import Reference

    cache.set_ref(Reference.parse("wombat/hello:1"), desc)
    assert cache.resolve("docker.io/wombat/hello:1") == desc
    assert cache.resolve("wombat/hello:1") is None  # lookups are exact


def test_set_ref_refuses_missing_target(tmp_path):
    cache = Cache(tmp_path)
    absent = Descriptor(mt.OCI_MANIFEST, sha256_digest(b"nothing"), 7)
    with pytest.raises(CacheError, match="not in the cache"):
        cache.set_ref(REF, absent)
    assert cache.refs() == []


def test_set_ref_preserves_foreign_entries(tmp_path):
    cache = Cache(tmp_path)
    desc = put_image(cache, "amd64")
    foreign = [
        {"mediaType": mt.OCI_MANIFEST, "digest": desc.digest, "size": desc.size},
        {
            "mediaType": mt.OCI_MANIFEST,
            "digest": desc.digest,
            "size": desc.size,
            "urls": ["https://example.com/x"],
            "annotations": {REF_NAME_ANNOTATION: "latest", "io.containerd.image.name": "x"},
        },
    ]
    index = {"schemaVersion": 2, "manifests": foreign, "annotations": {"top": "level"}}
    (tmp_path / "index.json").write_text(json.dumps(index))
    cache.set_ref(REF, desc)
    written = json.loads((tmp_path / "index.json").read_bytes())
    assert written["manifests"][:2] == foreign
    assert written["annotations"] == {"top": "level"}
    assert [name for name, _ in cache.refs()] == [REF, "latest"]


def test_malformed_index_json(tmp_path):
    cache = Cache(tmp_path)
    (tmp_path / "index.json").write_text("{not json")
    with pytest.raises(CacheError, match=r"index\.json: not valid JSON"):
        cache.refs()
    (tmp_path / "index.json").write_text('{"manifests":[{"digest":"sha256:00"}]}')
    with pytest.raises(CacheError, match=r"manifests\[0\]"):
        cache.resolve(REF)


def test_failed_index_write_keeps_the_old_index(tmp_path, monkeypatch):
    cache = Cache(tmp_path)
    put_package(cache)
    before = (tmp_path / "index.json").read_bytes()
    desc = put_image(cache, "s390x")

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(CacheError, match="Input/output error"):
        cache.set_ref(f"{REF}-s390x", desc)
    assert (tmp_path / "index.json").read_bytes() == before
    assert tmp_leftovers(cache) == []


# -- locking ----------------------------------------------------------------------------------


def test_lock_is_reentrant_and_excludes_other_cache_objects(tmp_path):
    first, second = Cache(tmp_path), Cache(tmp_path)
    desc = first.write_blob(b"{}", "application/json")
    entered = threading.Event()

    def contender() -> None:
        with second.lock():
            entered.set()

    with first.lock():
        with first.lock():  # reentrant: would deadlock otherwise
            first.set_ref(REF, desc)  # set_ref takes the lock a third time
        thread = threading.Thread(target=contender)
        thread.start()
        assert not entered.wait(0.3)
    assert entered.wait(10)
    thread.join()
    assert first.resolve(REF) == desc


def _set_refs_worker(root: str, worker: int, digest: str, size: int) -> None:
    cache = Cache(Path(root))
    desc = Descriptor("application/json", digest, size)
    for i in range(20):
        cache.set_ref(f"docker.io/wombat/p{worker}:t{i}", desc)
        cache.set_ref(f"docker.io/wombat/p{worker}:latest", desc)


def test_concurrent_writers_lose_no_refs(tmp_path):
    cache = Cache(tmp_path)
    desc = cache.write_blob(b"{}", "application/json")
    ctx = multiprocessing.get_context("spawn")
    workers = [
        ctx.Process(target=_set_refs_worker, args=(str(tmp_path), w, desc.digest, desc.size))
        for w in range(8)
    ]
    for p in workers:
        p.start()
    for p in workers:
        p.join(120)
        assert p.exitcode == 0
    index = json.loads((tmp_path / "index.json").read_bytes())
    names = [m["annotations"][REF_NAME_ANNOTATION] for m in index["manifests"]]
    expected = {f"docker.io/wombat/p{w}:t{i}" for w in range(8) for i in range(20)}
    expected |= {f"docker.io/wombat/p{w}:latest" for w in range(8)}
    assert len(names) == len(expected) == 168
    assert set(names) == expected
    assert tmp_leftovers(cache) == []


# -- platforms --------------------------------------------------------------------------------


def index_entry(cache: Cache, ref: str, arch: str) -> str:
    top = cache.resolve(ref)
    assert top is not None
    index = cache.read_manifest(top.digest)
    assert isinstance(index, ImageIndex)
    return next(m.digest for m in index.manifests if m.platform and m.platform.architecture == arch)


def test_image_platform_reads_the_config(tmp_path):
    cache = Cache(tmp_path)
    arm = put_image(cache, "arm64", "v8")
    found = image_platform(cache, arm.digest)
    assert found.platform == Platform("linux", "arm64", "v8")
    manifest = cache.read_manifest(arm.digest)
    assert isinstance(manifest, ImageManifest)
    assert found.config_digest == manifest.config.digest
    assert cached_image_platform(cache, arm.digest) == found


def test_image_platform_of_an_index_or_an_absent_manifest(tmp_path):
    cache = Cache(tmp_path)
    amd64 = put_image(cache, "amd64")
    entry = Descriptor(amd64.media_type, amd64.digest, amd64.size, Platform("linux", "amd64"))
    index = cache.put_manifest(ImageIndex(manifests=(entry,)))
    with pytest.raises(CacheError, match="expected an image manifest, not an index"):
        image_platform(cache, index.digest)
    absent = sha256_digest(b"gone")
    assert cached_image_platform(cache, absent) is None
    with pytest.raises(CacheError, match="not in the cache"):
        image_platform(cache, absent)


def test_cached_image_platform_without_its_config(tmp_path):
    cache = Cache(tmp_path)
    amd64 = put_image(cache, "amd64")
    manifest = cache.read_manifest(amd64.digest)
    assert isinstance(manifest, ImageManifest)
    cache.blob_path(manifest.config.digest).unlink()
    assert cached_image_platform(cache, amd64.digest) is None


# -- importing another layout -----------------------------------------------------------------


def test_import_layout_hardlinks_and_verifies(tmp_path):
    src = Cache(tmp_path / "src")
    index = put_package(src)
    dst = Cache(tmp_path / "dst")
    top = import_layout(dst, src.root, REF)
    assert top == index
    assert top.annotations is None
    assert dst.refs() == []  # importing sets no refs
    dst.set_ref(REF, top)  # ... but everything the ref reaches is now present
    for digest_file in (src.root / "blobs" / "sha256").iterdir():
        copied = dst.root / "blobs" / "sha256" / digest_file.name
        assert copied.read_bytes() == digest_file.read_bytes()
        assert copied.stat().st_ino == digest_file.stat().st_ino  # same filesystem: linked
    assert cached_image_platform(dst, index_entry(dst, REF, "arm64")) is not None
    assert tmp_leftovers(dst) == []


def test_import_layout_copies_across_filesystems(tmp_path, monkeypatch):
    src = Cache(tmp_path / "src")
    desc = put_image(src, "amd64")
    src.set_ref(f"{REF}-amd64", desc)

    def no_link(*args: object, **kwargs: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    dst = Cache(tmp_path / "dst")
    assert import_layout(dst, src.root) == desc  # the only entry
    manifest = dst.read_manifest(desc.digest)
    for child in manifest.children():
        assert dst.read_blob(child.digest) == src.read_blob(child.digest)
        assert (
            dst.blob_path(child.digest).stat().st_ino != src.blob_path(child.digest).stat().st_ino
        )


def test_import_layout_refuses_corrupt_source(tmp_path):
    src = Cache(tmp_path / "src")
    desc = put_image(src, "amd64")
    src.set_ref(REF, desc)
    layer = src.read_manifest(desc.digest).children()[1]
    blob = src.blob_path(layer.digest)
    blob.write_bytes(b"X" * layer.size)  # same size, wrong content
    dst = Cache(tmp_path / "dst")
    with pytest.raises(DigestMismatch, match="corrupt"):
        import_layout(dst, src.root)
    assert not dst.has_blob(layer.digest)
    assert not dst.has_blob(desc.digest)  # the manifest is never stored before its children
    assert tmp_leftovers(dst) == []
    blob.unlink()
    with pytest.raises(CacheError, match="lacks blob"):
        import_layout(dst, src.root)


def test_import_layout_entry_selection(tmp_path):
    src = Cache(tmp_path / "src")
    put_package(src)
    dst = Cache(tmp_path / "dst")
    with pytest.raises(CacheError, match="has 3 entries"):
        import_layout(dst, src.root)
    with pytest.raises(CacheError, match=re.escape("no entry named 'docker.io/x/y:z'")):
        import_layout(dst, src.root, "docker.io/x/y:z")
    with pytest.raises(CacheError, match="not an OCI image layout"):
        import_layout(dst, tmp_path / "nowhere")


# -- outside validators -----------------------------------------------------------------------


def _tool(name: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def test_oci_image_tool_accepts_the_layout(tmp_path):
    tool = _tool("oci-image-tool")
    cache = Cache(tmp_path / "layout")
    put_package(cache)
    # This oci-image-tool (1.0.0-rc1) leaves `--type imageLayout` unimplemented; `--type image`
    # detects the layout and validates every ref's manifest, config and layers.
    result = subprocess.run(
        [tool, "validate", "--type", "image", str(cache.root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "imageLayout" in result.stdout
    assert "Validation succeeded" in result.stdout
    # And it does look at the content: a truncated layer fails it.
    broken = tmp_path / "broken"
    shutil.copytree(cache.root, broken)
    manifest = cache.read_manifest(cache.resolve(f"{REF}-amd64").digest)  # type: ignore[union-attr]
    layer = broken / "blobs" / "sha256" / manifest.children()[1].digest.removeprefix("sha256:")
    layer.write_bytes(layer.read_bytes()[:-1])
    failed = subprocess.run(
        [tool, "validate", "--type", "image", str(broken)], capture_output=True, check=False
    )
    assert failed.returncode != 0


def test_umoci_reads_the_layout(tmp_path):
    tool = _tool("umoci")
    cache = Cache(tmp_path / "layout")
    put_package(cache)
    listed = subprocess.run(
        [tool, "ls", "--layout", str(cache.root)], capture_output=True, text=True, check=True
    )
    assert sorted(listed.stdout.split()) == [REF, f"{REF}-amd64", f"{REF}-arm64"]
    bundle = tmp_path / "bundle"
    subprocess.run(
        [tool, "unpack", "--rootless", "--image", f"{cache.root}:{REF}-arm64", str(bundle)],
        capture_output=True,
        check=True,
    )
    assert (bundle / "rootfs" / "hello.txt").read_text() == "hello from arm64\n"


def test_import_of_a_builders_fresh_layout_checks_layer_sizes_not_hashes(tmp_path):
    src = Cache(tmp_path / "src")
    desc = put_image(src, "amd64")
    src.set_ref(REF, desc)
    layer = src.read_manifest(desc.digest).children()[1]
    blob = src.blob_path(layer.digest)
    original = blob.read_bytes()
    blob.write_bytes(b"X" * layer.size)  # a builder bug would look like this: not re-hashed
    dst = Cache(tmp_path / "dst")
    assert import_layout(dst, src.root, fresh_from_builder=True) == desc
    assert fsck_corrupt(dst) == [layer.digest]  # ... but fsck finds it
    blob.write_bytes(original + b"more")
    other = Cache(tmp_path / "other")
    with pytest.raises(CacheError, match="says"):
        import_layout(other, src.root, fresh_from_builder=True)
    manifest = src.blob_path(desc.digest)
    blob.write_bytes(original)
    manifest.write_bytes(manifest.read_bytes().replace(b'"', b"'", 1))  # manifests: hashed
    with pytest.raises(DigestMismatch):
        import_layout(Cache(tmp_path / "third"), src.root, fresh_from_builder=True)


def fsck_corrupt(cache: Cache) -> list[str]:
    from lkpkg.cache.check import fsck

    return list(fsck(cache).corrupt)
