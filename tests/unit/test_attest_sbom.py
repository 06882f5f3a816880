"""SBOMs from synthetic images: layers are tar files made here, read back through the cache."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from lkpkg.attest import gobuildinfo, spdx
from lkpkg.attest.inventory import scan_image
from lkpkg.attest.rootfs import read_rootfs, resolver
from lkpkg.cache.layout import Cache
from tests.unit.attest_layers import (
    APK_INSTALLED,
    DPKG_STATUS,
    OS_RELEASE,
    Member,
    go_binary,
    image,
    layer,
)

DIR = tarfile.DIRTYPE
GO_MODINFO = (
    "path\texample.com/tool/cmd/tool\n"
    "mod\texample.com/tool\tv1.2.3\th1:abc=\n"
    "dep\tgolang.org/x/sys\tv0.18.0\th1:x=\n"
    "dep\tgithub.com/old/mod\tv1.0.0\n"
    "=>\tgithub.com/new/mod\tv1.1.0\th1:y=\n"
    "build\tGOARCH=amd64\n"
)


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


def subject(digest: str) -> spdx.Subject:
    return spdx.Subject(
        "docker.io/wombat/thing",
        "abc",
        "amd64",
        digest,
        "2026-01-01T00:00:00Z",
        "abc",
        "NOASSERTION",
    )


def validate(doc: dict[str, object], tmp_path: Path) -> list[str]:
    path = tmp_path / "doc.spdx.json"
    path.write_bytes(spdx.document_bytes(doc))
    return [m.validation_message for m in validate_full_spdx_document(parse_file(str(path)))]


def test_whiteouts_opaque_dirs_and_replaced_dirs_hide_lower_layers(cache):
    lower = layer(
        Member("a", kind=DIR, mode=0o755),
        Member("a/kept", b"1"),
        Member("a/deleted", b"2"),
        Member("b", kind=DIR, mode=0o755),
        Member("b/hidden", b"3"),
        Member("c", kind=DIR, mode=0o755),
        Member("c/under-a-file", b"4"),
        Member("d", b"old"),
    )
    upper = layer(
        Member("a/.wh.deleted"),
        Member("b", kind=DIR, mode=0o755),
        Member("b/.wh..wh..opq"),
        Member("b/new", b"5"),
        Member("c", b"now a file"),
        Member("d", b"new"),
    )
    _, manifest = image(cache, lower, upper)
    seen: dict[str, bytes] = {}

    class Keep:
        def wants(self, entry):
            return True

        def visit(self, entry, content):
            seen[entry.path] = content.read()

    entries = read_rootfs(cache, manifest, Keep())
    assert sorted(p for p, e in entries.items() if e.kind == "file") == [
        "a/kept",
        "b/new",
        "c",
        "d",
    ]
    assert seen["d"] == b"new" and seen["c"] == b"now a file"
    assert entries["d"].layer == 1 and entries["a/kept"].layer == 0


def test_directory_symlinks_resolve_to_one_canonical_path(cache):
    _, manifest = image(
        cache,
        layer(
            Member("usr", kind=DIR),
            Member("usr/bin", kind=DIR),
            Member("bin", kind=tarfile.SYMTYPE, linkname="usr/bin"),
            Member("usr/lib64", kind=tarfile.SYMTYPE, linkname="/usr/lib"),
        ),
    )
    canonical = resolver(read_rootfs(cache, manifest))
    assert canonical("/bin/ls") == "usr/bin/ls"
    assert canonical("usr/lib64/x/../y") == "usr/lib/y"


def test_dpkg_apk_python_and_go_are_catalogued_with_purls(cache):
    base = layer(
        Member("etc/os-release", OS_RELEASE),
        Member("var/lib/dpkg/status", DPKG_STATUS),
        Member("var/lib/dpkg/info/libc6:amd64.list", b"/lib/x86_64-linux-gnu/libc.so.6\n"),
        Member("usr", kind=DIR),
        Member("lib", kind=tarfile.SYMTYPE, linkname="usr/lib"),
        Member("usr/lib/x86_64-linux-gnu/libc.so.6", b"\x7fELF libc", mode=0o755),
        Member("lib/apk/db/installed", APK_INSTALLED),
        Member(
            "usr/lib/python3/dist-packages/Foo_Bar-2.31.0.dist-info/METADATA",
            b"Metadata-Version: 2.1\nName: Foo_Bar\nVersion: 2.31.0\nLicense: Apache 2.0\n",
        ),
        Member(
            "usr/lib/python3/dist-packages/six-1.16.0.egg-info",
            b"Metadata-Version: 1.2\nName: six\nVersion: 1.16.0\nLicense: MIT\n",
        ),
    )
    app = layer(
        Member("usr/local/bin/tool", go_binary("go1.22.1", GO_MODINFO), mode=0o755),
        Member("hello", b"\x7fELF static", mode=0o755),
        Member("etc/motd", b"not a binary"),
    )
    _, manifest = image(cache, base, app)
    inventory = scan_image(cache, manifest, "amd64")
    purls = {c.purl: c for c in inventory.components}
    assert inventory.distro == ("debian", "12")
    # Installed packages only; the epoch's colon is percent-encoded (purl spec).
    assert (
        "pkg:deb/debian/libgcc-s1@1%3A12.2.0-14?arch=amd64&distro=debian-12&upstream=gcc-12"
        in purls
    )
    assert not any("removed-thing" in p for p in purls)
    assert purls["pkg:apk/debian/musl@1.2.4-r2?arch=x86_64&distro=debian-12"].license == "MIT"
    assert "pkg:pypi/foo-bar@2.31.0" in purls and "pkg:pypi/six@1.16.0" in purls
    main = purls["pkg:golang/example.com/tool@v1.2.3"]
    assert main.contained_in == "usr/local/bin/tool"
    # A replaced dependency is the replacement that was linked.
    assert set(main.depends_on) == {
        "pkg:golang/golang.org/x/sys@v0.18.0",
        "pkg:golang/github.com/new/mod@v1.1.0",
    }
    # libc.so.6 is dpkg's (through the lib -> usr/lib symlink) and busybox's paths are apk's;
    # the static binary and the Go binary belong to no package, so they are listed as files.
    files = {f.path: f for f in inventory.files}
    assert sorted(files) == ["hello", "usr/local/bin/tool"]
    assert files["hello"].sha256 == hashlib.sha256(b"\x7fELF static").hexdigest()
    assert files["usr/local/bin/tool"].go_main == main.purl


def test_document_validates_and_is_deterministic(cache, tmp_path):
    base = layer(
        Member("etc/os-release", OS_RELEASE),
        Member("var/lib/dpkg/status", DPKG_STATUS),
        Member("lib/apk/db/installed", APK_INSTALLED),
        Member(
            "usr/lib/python3/dist-packages/foo-1.0.dist-info/METADATA",
            b"Name: foo\nVersion: 1.0\nLicense: Apache 2.0\n",
        ),
        Member("tool", go_binary("go1.22.1", GO_MODINFO), mode=0o755),
    )
    desc, manifest = image(cache, base)
    sources = [spdx.SourceFile("Dockerfile", "a" * 40, "b" * 64)]
    one = spdx.document_bytes(
        spdx.document(subject(desc.digest), scan_image(cache, manifest, "amd64"), sources)
    )
    two = spdx.document_bytes(
        spdx.document(subject(desc.digest), scan_image(cache, manifest, "amd64"), sources)
    )
    assert one == two
    doc = json.loads(one)
    assert validate(doc, tmp_path) == []
    licenses = {p["name"]: p["licenseDeclared"] for p in doc["packages"]}
    assert licenses["busybox"] == "GPL-2.0-only"
    # A free-text license is kept as extracted text, not passed off as an SPDX id.
    assert licenses["foo"].startswith("LicenseRef-Apache-2.0-")
    assert doc["hasExtractedLicensingInfos"][0]["extractedText"] == "Apache 2.0"
    rels = {
        (r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"])
        for r in doc["relationships"]
    }
    assert ("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Image") in rels
    assert ("SPDXRef-Image", "GENERATED_FROM", "SPDXRef-Source") in rels


def test_go_buildinfo_found_across_chunk_boundaries():
    blob = go_binary("go1.21.0", GO_MODINFO)
    at = blob.index(gobuildinfo.MAGIC)
    scanner = gobuildinfo.Scanner()
    for cut in range(0, len(blob), at + 5):  # the magic is split between two chunks
        scanner.feed(blob[cut : cut + at + 5])
    info = scanner.result()
    assert info is not None and info.go_version == "go1.21.0"
    assert info.path == "example.com/tool/cmd/tool"
    assert info.main == gobuildinfo.Module("example.com/tool", "v1.2.3", "h1:abc=")
    assert ("GOARCH", "amd64") in info.settings


def test_go_buildinfo_pointer_form_is_not_guessed():
    blob = bytearray(go_binary("go1.21.0", GO_MODINFO))
    at = blob.index(gobuildinfo.MAGIC)
    blob[at + 15] = 0  # pre-1.18 binaries: strings behind pointers, not inline
    assert gobuildinfo.parse_header(bytes(blob[at:])) is None


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_a_real_static_c_binary_is_named_with_its_checksums(cache, tmp_path):
    source = tmp_path / "hello.c"
    source.write_text('#include <stdio.h>\nint main(void){puts("hi");return 0;}\n')
    binary = tmp_path / "hello"
    subprocess.run(["gcc", "-static", "-O2", "-o", str(binary), str(source)], check=True)
    data = binary.read_bytes()
    desc, manifest = image(cache, layer(Member("usr/bin/hello", data, mode=0o755)))
    inventory = scan_image(cache, manifest, "amd64")
    assert [f.path for f in inventory.files] == ["usr/bin/hello"]
    assert inventory.files[0].sha1 == hashlib.sha1(data).hexdigest()
    doc = spdx.document(subject(desc.digest), inventory, [])
    assert validate(doc, tmp_path) == []
    assert doc["files"][0]["fileName"] == "./usr/bin/hello"


DEP5 = b"""Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: thing

Files: *
Copyright: 2020 Someone
License: GPL-2+

Files: lib/*
Copyright: 2020 Else
License: Expat

Files: doc/*
License: GPL-1+ or Artistic

Files: odd/*
License: public-domain

License: GPL-2+
 On Debian systems, the full text is in /usr/share/common-licenses/GPL-2.
"""


def test_debian_licenses_come_from_machine_readable_copyright_files(cache, tmp_path):
    _, manifest = image(
        cache,
        layer(
            Member("etc/os-release", OS_RELEASE),
            Member("var/lib/dpkg/status", DPKG_STATUS),
            Member("usr/share/doc/libc6/copyright", DEP5),
            Member("usr/share/doc/base-files/copyright", b"This is free-form prose. GPL.\n"),
        ),
    )
    desc = image(cache, layer(Member("x", b"x")))[0]
    doc = spdx.document(subject(desc.digest), scan_image(cache, manifest, "amd64"), [])
    declared = {p["name"]: p["licenseDeclared"] for p in doc["packages"]}
    # Every License: field, each short name mapped to SPDX (sorted by Debian's name); a name
    # SPDX does not have stays a LicenseRef with its text.
    assert declared["libc6"].startswith(
        "MIT AND (GPL-1.0-or-later OR Artistic-1.0) AND GPL-2.0-or-later"
        " AND LicenseRef-public-domain-"
    )
    assert declared["base-files"] == "NOASSERTION"  # prose is not interpreted
    assert validate(doc, tmp_path) == []
