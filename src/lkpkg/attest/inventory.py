"""What an image holds, read from its root filesystem: packages and the files no package owns.

Each cataloguer reads what its package manager left behind, never runs anything:

- dpkg: `var/lib/dpkg/status` (entries whose status is "installed") and `status.d/*`
  (distroless images); the files each package owns from `var/lib/dpkg/info/*.list`.
- apk: `lib/apk/db/installed` (P/V/A/L/... records); owned files from its F/R lines.
- Python: `*.dist-info/METADATA` and `*.egg-info/PKG-INFO` (or an `*.egg-info` file).
- Go: the build information every Go ≥ 1.18 binary embeds (module, version, dependencies).
- Executables and shared objects that no OS package owns are listed as files with SHA-1 and
  SHA-256, so a static binary copied into a `FROM scratch` image is still named.

Everything is sorted, so one image gives one inventory.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import quote

from lkpkg.attest import gobuildinfo
from lkpkg.attest.rootfs import Entry, LayerScans, catalogue_rootfs, normalise, resolver
from lkpkg.cache.layout import Cache
from lkpkg.oci.model import ImageManifest

DPKG_STATUS = "var/lib/dpkg/status"
DPKG_STATUS_D = "var/lib/dpkg/status.d/"
DPKG_INFO = "var/lib/dpkg/info/"
DOC = "usr/share/doc/"
DEP5_FORMAT = "copyright-format/1.0"
APK_INSTALLED = "lib/apk/db/installed"
OS_RELEASE = ("etc/os-release", "usr/lib/os-release")

_ELF = b"\x7fELF"
_CHUNK = 1 << 16  # as rootfs._BUFFER: larger reads page-fault on fresh buffers


@dataclass(frozen=True)
class Component:
    """A package found in the image: what SPDX calls a Package."""

    ecosystem: str  # deb, apk, pypi, golang
    name: str
    version: str
    purl: str
    found_in: str  # the file that declares it
    license: str | None = None
    # Licenses named one by one (Debian's DEP-5 copyright `License:` fields), all applying.
    license_terms: tuple[str, ...] = ()
    supplier: str | None = None
    homepage: str | None = None
    summary: str | None = None
    source_package: str | None = None
    depends_on: tuple[str, ...] = ()  # purls of other components (a Go module's deps)
    contained_in: str | None = None  # path of the file it was linked into (Go)


@dataclass(frozen=True)
class FileRecord:
    path: str
    sha1: str
    sha256: str
    size: int
    go_main: str | None = None  # purl of the Go main module linked into it


@dataclass(frozen=True)
class Inventory:
    distro: tuple[str, str] | None  # (ID, VERSION_ID) from os-release
    components: tuple[Component, ...]
    files: tuple[FileRecord, ...]


@dataclass
class _Hashed:
    sha1: str
    sha256: str
    size: int
    go: gobuildinfo.BuildInfo | None


@dataclass
class _Collector:
    """The cataloguers' view of the image: metadata texts and hashed executables, by path.
    A `Cataloguer` (attest/rootfs.py): its findings are JSON, remembered per layer."""

    texts: dict[str, bytes] = field(default_factory=dict)
    hashed: dict[str, _Hashed] = field(default_factory=dict)

    def wants(self, entry: Entry) -> bool:
        return True

    def examine(self, entry: Entry, content: IO[bytes]) -> Any:
        path = entry.path
        if _is_metadata(path):
            # latin-1 maps every byte to one code point: the text survives JSON byte for byte.
            return ["text", content.read().decode("latin-1")]
        head = content.read(4)
        if not (head == _ELF or entry.mode & 0o111):
            return None
        sha1, sha256, go = (
            hashlib.sha1(head, usedforsecurity=False),
            hashlib.sha256(head),
            gobuildinfo.Scanner(),
        )
        go.feed(head)
        size = len(head)
        while chunk := content.read(_CHUNK):
            sha1.update(chunk)
            sha256.update(chunk)
            go.feed(chunk)
            size += len(chunk)
        info = go.result() if head == _ELF else None
        return ["exec", sha1.hexdigest(), sha256.hexdigest(), size, _buildinfo_json(info)]

    def take(self, entry: Entry, finding: Any) -> None:
        if finding[0] == "text":
            self.texts[entry.path] = finding[1].encode("latin-1")
        else:
            _, sha1, sha256, size, go = finding
            self.hashed[entry.path] = _Hashed(sha1, sha256, size, _buildinfo_of(go))


def _buildinfo_json(info: gobuildinfo.BuildInfo | None) -> Any:
    if info is None:
        return None
    main = None if info.main is None else [info.main.path, info.main.version, info.main.sum]
    deps = [[m.path, m.version, m.sum] for m in info.deps]
    return [info.go_version, info.path, main, deps, [list(s) for s in info.settings]]


def _buildinfo_of(value: Any) -> gobuildinfo.BuildInfo | None:
    if value is None:
        return None
    go_version, path, main, deps, settings = value
    return gobuildinfo.BuildInfo(
        go_version,
        path,
        None if main is None else gobuildinfo.Module(*main),
        tuple(gobuildinfo.Module(*m) for m in deps),
        tuple((k, v) for k, v in settings),
    )


def _is_metadata(path: str) -> bool:
    if path in (DPKG_STATUS, APK_INSTALLED, *OS_RELEASE):
        return True
    if path.startswith(DPKG_STATUS_D):
        return True
    if path.startswith(DPKG_INFO) and path.endswith(".list"):
        return True
    if path.startswith(DOC) and path.endswith("/copyright") and path.count("/") == 4:
        return True
    head, _, base = path.rpartition("/")
    parent = head.rpartition("/")[2]
    if parent.endswith(".dist-info") and base == "METADATA":
        return True
    if parent.endswith(".egg-info") and base == "PKG-INFO":
        return True
    return base.endswith(".egg-info")


def scan_image(
    cache: Cache, manifest: ImageManifest, arch: str, scans: LayerScans | None = None
) -> Inventory:
    """Catalogue what the image's layers install, each layer read once (or never, when
    `scans` remembers it: attest/layermemo.py)."""
    collector = _Collector()
    entries = catalogue_rootfs(cache, manifest, collector, scans)
    canonical = resolver(entries)
    texts = collector.texts
    distro = _os_release(texts)
    components: list[Component] = []
    owned: set[str] = set()

    debs = _dpkg(texts, distro)
    components += debs
    for path, data in texts.items():
        if path.startswith(DPKG_INFO) and path.endswith(".list"):
            owned |= {canonical(line) for line in data.decode("utf-8", "replace").splitlines()}
    apks, apk_files = _apk(texts.get(APK_INSTALLED), distro)
    components += apks
    owned |= {canonical(p) for p in apk_files}
    components += _python(texts)

    files: list[FileRecord] = []
    hashed = dict(collector.hashed)
    for path, entry in entries.items():
        # A hard link shares its target's content; it was handed over under the target's name.
        if entry.kind == "hardlink" and entry.linkname in hashed:
            hashed[path] = hashed[entry.linkname]
    for path in sorted(hashed):
        info = hashed[path]
        go_main: str | None = None
        if info.go is not None:
            go_components = _golang(path, info.go)
            components += go_components
            go_main = go_components[0].purl if go_components else None
        if canonical(path) in owned and go_main is None:
            continue
        files.append(FileRecord(path, info.sha1, info.sha256, info.size, go_main))
    components.sort(key=lambda c: (c.ecosystem, c.name, c.version, c.purl, c.found_in))
    return Inventory(distro, tuple(_unique(components)), tuple(files))


def _unique(components: Iterable[Component]) -> list[Component]:
    seen: set[tuple[str, str]] = set()
    out: list[Component] = []
    for c in components:
        key = (c.purl, c.found_in)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def _os_release(texts: dict[str, bytes]) -> tuple[str, str] | None:
    for path in OS_RELEASE:
        data = texts.get(path)
        if data is None:
            continue
        values: dict[str, str] = {}
        for line in data.decode("utf-8", "replace").splitlines():
            key, eq, value = line.partition("=")
            if eq:
                values[key.strip()] = value.strip().strip("\"'")
        if "ID" in values:
            return values["ID"], values.get("VERSION_ID", "")
    return None


def _paragraphs(data: bytes) -> Iterable[dict[str, str]]:
    """RFC 822-style stanzas (dpkg status, apk db): continuation lines start with a space."""
    record: dict[str, str] = {}
    last = ""
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            if record:
                yield record
            record, last = {}, ""
        elif line[0] in " \t" and last:
            record[last] += "\n" + line.strip()
        else:
            key, colon, value = line.partition(":")
            if colon:
                last = key.strip()
                record[last] = value.strip()
    if record:
        yield record


def _pct(text: str) -> str:
    return quote(text, safe=".-_~")


def _qualifiers(pairs: Iterable[tuple[str, str]]) -> str:
    kept = sorted((k, v) for k, v in pairs if v)
    return ("?" + "&".join(f"{k}={_pct(v)}" for k, v in kept)) if kept else ""


def _distro_qualifier(distro: tuple[str, str] | None) -> str:
    if distro is None:
        return ""
    return f"{distro[0]}-{distro[1]}" if distro[1] else distro[0]


def _dpkg(texts: dict[str, bytes], distro: tuple[str, str] | None) -> list[Component]:
    sources: list[tuple[str, bytes]] = []
    if DPKG_STATUS in texts:
        sources.append((DPKG_STATUS, texts[DPKG_STATUS]))
    sources += sorted((p, d) for p, d in texts.items() if p.startswith(DPKG_STATUS_D))
    namespace = distro[0] if distro else "debian"
    out: list[Component] = []
    for path, data in sources:
        for record in _paragraphs(data):
            name, version = record.get("Package"), record.get("Version")
            if not name or not version:
                continue
            status = record.get("Status")
            if path == DPKG_STATUS and (status is None or not status.endswith(" installed")):
                continue
            arch = record.get("Architecture", "")
            source = record.get("Source", "").split(" ")[0] or None
            purl = f"pkg:deb/{_pct(namespace)}/{_pct(name)}@{_pct(version)}" + _qualifiers(
                [("arch", arch), ("distro", _distro_qualifier(distro)), ("upstream", source or "")]
            )
            out.append(
                Component(
                    "deb",
                    name,
                    version,
                    purl,
                    path,
                    license_terms=dep5_licenses(texts.get(f"{DOC}{name}/copyright")),
                    supplier=record.get("Maintainer"),
                    homepage=record.get("Homepage"),
                    summary=record.get("Description", "").split("\n")[0] or None,
                    source_package=source,
                )
            )
    return out


def dep5_licenses(data: bytes | None) -> tuple[str, ...]:
    """The license short names of a machine-readable Debian copyright file (DEP-5), sorted;
    nothing for a free-form one, whose licenses are prose lkpkg does not interpret."""
    if data is None:
        return ()
    text = data.decode("utf-8", "replace")
    if DEP5_FORMAT not in text.split("\n", 1)[0]:
        return ()
    names = set()
    for record in _paragraphs(data):
        value = record.get("License", "").split("\n", 1)[0].strip()
        if value:
            names.add(" ".join(value.split()))
    return tuple(sorted(names))


def _apk(data: bytes | None, distro: tuple[str, str] | None) -> tuple[list[Component], set[str]]:
    if data is None:
        return [], set()
    out: list[Component] = []
    owned: set[str] = set()
    namespace = distro[0] if distro else "alpine"
    directory = ""
    # apk's db repeats keys (F, R) inside a record, so it is read line by line, not as a dict.
    record: dict[str, str] = {}

    def flush() -> None:
        name, version = record.get("P"), record.get("V")
        if name and version:
            purl = f"pkg:apk/{_pct(namespace)}/{_pct(name)}@{_pct(version)}" + _qualifiers(
                [("arch", record.get("A", "")), ("distro", _distro_qualifier(distro))]
            )
            out.append(
                Component(
                    "apk",
                    name,
                    version,
                    purl,
                    APK_INSTALLED,
                    license=record.get("L") or None,
                    supplier=record.get("m") or None,
                    homepage=record.get("U") or None,
                    summary=record.get("T") or None,
                    source_package=record.get("o") or None,
                )
            )

    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            flush()
            record, directory = {}, ""
            continue
        key, colon, value = line.partition(":")
        if not colon or len(key) != 1:
            continue
        if key == "F":
            directory = value
        elif key == "R":
            owned.add(normalise(f"{directory}/{value}"))
        else:
            record.setdefault(key, value)
    flush()
    return out, owned


_PEP503 = re.compile(r"[-_.]+")


def _python(texts: dict[str, bytes]) -> list[Component]:
    out: list[Component] = []
    for path in sorted(texts):
        head, _, base = path.rpartition("/")
        parent = head.rpartition("/")[2]
        is_meta = (parent.endswith(".dist-info") and base == "METADATA") or (
            parent.endswith(".egg-info") and base == "PKG-INFO"
        )
        if not (is_meta or base.endswith(".egg-info")):
            continue
        # Imported only once an image holds Python metadata (most hold none): the email
        # package costs a tiny build's SBOM 8 ms, most of its import time.
        from email.parser import BytesHeaderParser

        headers = BytesHeaderParser().parsebytes(texts[path])
        name, version = headers.get("Name"), headers.get("Version")
        if not name or not version:
            continue
        normal = _PEP503.sub("-", str(name)).lower()
        license_text = headers.get("License-Expression") or headers.get("License")
        out.append(
            Component(
                "pypi",
                str(name),
                str(version),
                f"pkg:pypi/{_pct(normal)}@{_pct(str(version))}",
                path,
                license=str(license_text) if license_text else None,
                supplier=str(headers.get("Author")) if headers.get("Author") else None,
                homepage=str(headers.get("Home-page")) if headers.get("Home-page") else None,
                summary=str(headers.get("Summary")) if headers.get("Summary") else None,
            )
        )
    return out


def _go_purl(path: str, version: str) -> str:
    encoded = "/".join(_pct(part) for part in path.split("/"))
    return f"pkg:golang/{encoded}@{_pct(version)}" if version else f"pkg:golang/{encoded}"


def _golang(binary: str, info: gobuildinfo.BuildInfo) -> list[Component]:
    """The main module first (what the binary is), then each dependency it linked."""
    main = info.main or gobuildinfo.Module(info.path or binary, "(devel)")
    deps = [
        Component("golang", d.path, d.version, _go_purl(d.path, d.version), binary)
        for d in info.deps
    ]
    version = "" if main.version == "(devel)" else main.version
    head = Component(
        "golang",
        main.path,
        main.version,
        _go_purl(main.path, version),
        binary,
        summary=f"built with {info.go_version}" if info.go_version else None,
        depends_on=tuple(d.purl for d in deps),
        contained_in=binary,
    )
    return [head, *deps]
