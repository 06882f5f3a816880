"""Synthetic images for the attest tests: layers made as tar files in the test itself."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from dataclasses import dataclass

from lkpkg.cache.layout import Cache
from lkpkg.oci import mediatypes
from lkpkg.oci.model import Descriptor, ImageManifest

GO_SENTINEL_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
GO_SENTINEL_END = bytes.fromhex("f932433186182072008242104116d8f2")


@dataclass(frozen=True)
class Member:
    name: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    mode: int = 0o644
    linkname: str = ""


def layer(*members: Member) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.type = m.kind
            info.mode = m.mode
            info.linkname = m.linkname
            info.mtime = 0
            if m.kind == tarfile.REGTYPE:
                info.size = len(m.data)
                archive.addfile(info, io.BytesIO(m.data))
            else:
                archive.addfile(info)
    return gzip.compress(raw.getvalue(), mtime=0)


def image(cache: Cache, *layers: bytes, arch: str = "amd64") -> tuple[Descriptor, ImageManifest]:
    config = {
        "architecture": arch,
        "os": "linux",
        "created": "2026-01-01T00:00:00Z",
        "rootfs": {"type": "layers", "diff_ids": []},
    }
    config_desc = cache.write_blob(json.dumps(config).encode(), mediatypes.OCI_CONFIG)
    layer_descs = tuple(cache.write_blob(data, mediatypes.OCI_LAYER_GZIP) for data in layers)
    manifest = ImageManifest(config_desc, layer_descs)
    return cache.put_manifest(manifest), manifest


def go_binary(go_version: str, modinfo: str, *, elf: bool = True) -> bytes:
    """Bytes shaped like a Go ≥1.18 binary's build information (no Go toolchain needed)."""

    def uvarint(n: int) -> bytes:
        out = bytearray()
        while True:
            byte, n = n & 0x7F, n >> 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                return bytes(out)

    info = GO_SENTINEL_START + modinfo.encode() + GO_SENTINEL_END
    header = b"\xff Go buildinf:" + bytes([8, 2]) + bytes(16)
    body = header + uvarint(len(go_version)) + go_version.encode() + uvarint(len(info)) + info
    prefix = b"\x7fELF" + bytes(4092) if elf else bytes(4096)
    return prefix + body + bytes(100)


DPKG_STATUS = b"""Package: base-files
Status: install ok installed
Priority: required
Architecture: amd64
Version: 12.4+deb12u5
Maintainer: Santiago Vila <sanvila@debian.org>
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy.

Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u4
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Homepage: https://www.gnu.org/software/libc/libc.html
Description: GNU C Library: Shared libraries

Package: removed-thing
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0
Description: gone

Package: libgcc-s1
Status: install ok installed
Architecture: amd64
Source: gcc-12 (12.2.0-14)
Version: 1:12.2.0-14
Description: GCC support library
"""

APK_INSTALLED = b"""C:Q1abc=
P:musl
V:1.2.4-r2
A:x86_64
L:MIT
T:the musl c library
U:https://musl.libc.org/
m:Timo Teras <timo.teras@iki.fi>
o:musl
F:lib
R:ld-musl-x86_64.so.1
R:libc.musl-x86_64.so.1

C:Q1def=
P:busybox
V:1.36.1-r5
A:x86_64
L:GPL-2.0-only
T:Size optimized toolbox
F:bin
R:busybox
"""

OS_RELEASE = b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
