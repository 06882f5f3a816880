"""Layer scans remembered by digest: the same SBOM bytes with, without and from a memo."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from lkpkg.attest import layermemo, spdx
from lkpkg.attest.inventory import scan_image
from lkpkg.attest.layermemo import LayerMemo, memo_path
from lkpkg.cache.check import gc
from lkpkg.cache.layout import Cache
from lkpkg.errors import CacheError
from lkpkg.oci.model import ImageManifest
from tests.unit.attest_layers import (
    APK_INSTALLED,
    DPKG_STATUS,
    OS_RELEASE,
    Member,
    go_binary,
    image,
    layer,
)
from tests.unit.test_attest_sbom import GO_MODINFO, subject

DIR = tarfile.DIRTYPE


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cache:
    monkeypatch.setattr(layermemo, "MIN_LAYER_SIZE", 0)  # the test layers are small
    return Cache(tmp_path / "cache")


def two_layer_image(cache: Cache) -> tuple[str, ImageManifest]:
    base = layer(
        Member("etc/os-release", OS_RELEASE),
        Member("var/lib/dpkg/status", DPKG_STATUS),
        Member("var/lib/dpkg/info/libc6:amd64.list", b"/lib/x86_64-linux-gnu/libc.so.6\n"),
        Member("usr", kind=DIR),
        Member("lib", kind=tarfile.SYMTYPE, linkname="usr/lib"),
        Member("usr/lib/x86_64-linux-gnu/libc.so.6", b"\x7fELF libc", mode=0o755),
        Member("lib/apk/db/installed", APK_INSTALLED),
        Member("bin", kind=DIR),
        Member("bin/gone", b"\x7fELF gone", mode=0o755),
        Member("tool", go_binary("go1.22.1", GO_MODINFO), mode=0o755),
        Member("latin", "na\u00efve \xff bytes".encode("latin-1")),
        Member("usr/share/doc/x/copyright", b"License: MIT\n\xe9\n"),
    )
    app = layer(
        Member("bin/.wh.gone", b""),
        Member("hello", b"\x7fELF static", mode=0o755),
    )
    desc, manifest = image(cache, base, app)
    return desc.digest, manifest


def sbom(cache: Cache, digest: str, manifest: ImageManifest, memo: LayerMemo | None) -> bytes:
    inventory = scan_image(cache, manifest, "amd64", memo)
    return spdx.document_bytes(spdx.document(subject(digest), inventory, []))


def test_the_sbom_is_the_same_bytes_without_with_and_from_the_memo(cache, monkeypatch):
    digest, manifest = two_layer_image(cache)
    without = sbom(cache, digest, manifest, None)
    written = sbom(cache, digest, manifest, LayerMemo(cache))
    assert all(memo_path(cache.root, layer.digest).is_file() for layer in manifest.layers)

    def no_blob(digest: str) -> None:
        raise AssertionError(f"layer {digest} read although it is remembered")

    monkeypatch.setattr(cache, "open_blob", no_blob)
    remembered = sbom(cache, digest, manifest, LayerMemo(cache))
    assert without == written == remembered
    assert b"hello" in without and b"bin/gone" not in without  # the whiteout still hides it


@pytest.mark.parametrize("damage", ["truncate", "flip", "other-layer", "garbage"])
def test_a_damaged_memo_is_ignored_and_rewritten(cache, damage):
    digest, manifest = two_layer_image(cache)
    expected = sbom(cache, digest, manifest, LayerMemo(cache))
    base = manifest.layers[0]
    path = memo_path(cache.root, base.digest)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":  # a byte of the payload: its sha256 no longer matches the header
        path.write_bytes(data[:-10] + bytes([data[-10] ^ 1]) + data[-9:])
    elif damage == "other-layer":  # a valid memo, of the other layer
        path.write_bytes(memo_path(cache.root, manifest.layers[1].digest).read_bytes())
    else:
        path.write_bytes(b"\x00\xff not json\n{}")
    assert sbom(cache, digest, manifest, LayerMemo(cache)) == expected
    assert path.read_bytes() == data  # rewritten by the scan that replaced it


def test_an_unwritable_memo_is_not_an_error(cache, monkeypatch):
    digest, manifest = two_layer_image(cache)
    expected = sbom(cache, digest, manifest, None)

    def refuse(path: Path, data: bytes) -> None:
        raise CacheError(f"cannot write {path}: read-only file system")

    monkeypatch.setattr(cache, "write_file", refuse)
    assert sbom(cache, digest, manifest, LayerMemo(cache)) == expected


def test_small_layers_are_not_remembered(cache, monkeypatch):
    monkeypatch.setattr(layermemo, "MIN_LAYER_SIZE", 1 << 20)
    digest, manifest = two_layer_image(cache)
    sbom(cache, digest, manifest, LayerMemo(cache))
    assert not (cache.root / layermemo.MEMO_DIR).exists()


def test_gc_forgets_the_memos_of_removed_layers(cache):
    digest, manifest = two_layer_image(cache)
    sbom(cache, digest, manifest, LayerMemo(cache))
    stray = cache.root / layermemo.MEMO_DIR / "not-a-digest.json"
    stray.write_bytes(b"{}")
    with cache.lock():
        for name, _ in cache.refs():
            cache.remove_ref(name)
    report = gc(cache)
    assert set(report.orphans) >= {layer.digest for layer in manifest.layers}
    assert [p.name for p in (cache.root / layermemo.MEMO_DIR).iterdir()] == [stray.name]
