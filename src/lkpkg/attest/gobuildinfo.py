"""The build information Go (1.18 and later) embeds in every binary it links.

`go version -m` reads it without running the binary. The linker writes a 32-byte header,
`\\xff Go buildinf:` then the pointer size and a flags byte; with flag 0x2 ("version
inline", every Go since 1.18) the Go version and the module information follow as two
uvarint-length-prefixed strings. The module information is wrapped in 16-byte sentinels and
holds tab-separated lines: `path`, `mod`, `dep`, `=>` (a replacement of the line before) and
`build` settings. Older binaries (pointer form) are not understood and yield nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO

MAGIC = b"\xff Go buildinf:"
_HEADER = 32
_FLAG_INLINE = 0x2
# How much follows the magic that is kept to parse: a module list of thousands of lines fits.
_KEEP = 1 << 20
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Module:
    path: str
    version: str
    sum: str = ""


@dataclass(frozen=True)
class BuildInfo:
    go_version: str
    path: str  # the main package's import path
    main: Module | None
    deps: tuple[Module, ...]
    settings: tuple[tuple[str, str], ...]


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data):
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            break
    raise ValueError("bad uvarint")


def parse_header(blob: bytes) -> BuildInfo | None:
    """Parse bytes that start with the magic; None when they are not the inline form."""
    if not blob.startswith(MAGIC) or len(blob) < _HEADER:
        return None
    flags = blob[15]
    if not flags & _FLAG_INLINE:
        return None
    try:
        length, pos = _uvarint(blob, _HEADER)
        version = blob[pos : pos + length].decode("utf-8", "replace")
        pos += length
        length, pos = _uvarint(blob, pos)
        modinfo = blob[pos : pos + length]
        if length > len(blob) - pos:
            return None
    except ValueError:
        return None
    if len(modinfo) >= 33 and modinfo[-17] == ord("\n"):
        modinfo = modinfo[16:-16]
    return parse_modinfo(version, modinfo.decode("utf-8", "replace"))


def parse_modinfo(go_version: str, text: str) -> BuildInfo:
    """The text `runtime/debug.BuildInfo.String()` prints, as values."""
    path = ""
    main: Module | None = None
    deps: list[Module] = []
    settings: list[tuple[str, str]] = []
    for line in text.splitlines():
        fields = line.split("\t")
        key = fields[0]
        if key == "path" and len(fields) >= 2:
            path = fields[1]
        elif key == "mod" and len(fields) >= 3:
            main = Module(fields[1], fields[2], fields[3] if len(fields) > 3 else "")
        elif key == "dep" and len(fields) >= 3:
            deps.append(Module(fields[1], fields[2], fields[3] if len(fields) > 3 else ""))
        elif key == "=>" and len(fields) >= 3 and deps:
            # A replacement: what was linked is the replacing module.
            deps[-1] = Module(fields[1], fields[2], fields[3] if len(fields) > 3 else "")
        elif key == "build" and len(fields) >= 2:
            name, _, value = fields[1].partition("=")
            settings.append((name, value))
    return BuildInfo(go_version, path, main, tuple(deps), tuple(settings))


class Scanner:
    """Fed a file's bytes in order, finds the build information in one pass."""

    def __init__(self) -> None:
        self._carry = b""
        self._found: bytearray | None = None

    def feed(self, chunk: bytes) -> None:
        if self._found is not None:
            if len(self._found) < _KEEP:
                self._found += chunk[: _KEEP - len(self._found)]
            return
        data = self._carry + chunk
        at = data.find(MAGIC)
        if at >= 0:
            self._found = bytearray(data[at : at + _KEEP])
            return
        self._carry = data[-(len(MAGIC) - 1) :]

    def result(self) -> BuildInfo | None:
        return None if self._found is None else parse_header(bytes(self._found))


def read_buildinfo(stream: IO[bytes]) -> BuildInfo | None:
    scanner = Scanner()
    while chunk := stream.read(_CHUNK):
        scanner.feed(chunk)
    return scanner.result()
