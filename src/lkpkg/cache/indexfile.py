"""The cache's `index.json`, parsed once per version of the file.

A build asks the cache for refs a dozen times (cached image, base images, reuse, the index
rewrite); each ask used to read and parse the whole file again. `IndexFile` remembers the
parsed file with the identity of the version it read: (st_ino, st_size, st_mtime_ns,
st_ctime_ns) of the open file (ctime too because a copy can set an old mtime; nothing sets
ctime). Every writer lkpkg knows (lkpkg, linuxkit, umoci) replaces index.json by rename,
which gives a new inode, and a tool writing it in place changes its ctime: either way
the key changes and the next read parses the new file. The key is taken with `fstat` on the
descriptor that is read, so it always names the bytes that were parsed.

A key can come back for other bytes only within one tick of the file system's clock (a
freed inode number reused by a file of the same size written in the same tick, or an
in-place rewrite of the same size): like git's "racily clean" index, a version whose ctime
is not clearly older than the moment it was read is parsed again on the next read.

Entries stay raw JSON (fields lkpkg does not model, written by other tools, survive a rewrite
untouched); their descriptors are parsed once, here, to validate them and to answer lookups.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lkpkg.errors import CacheError, FormatError
from lkpkg.oci.model import Descriptor, ImageIndex

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"

_Key = tuple[int, int, int, int]
# Well above a file system timestamp's granularity (the kernel's coarse clock: one tick, 1-10 ms).
_RACY_NS = 50_000_000


@dataclass(frozen=True)
class IndexVersion:
    """One parsed version of index.json. `document` is shared: copy before changing it."""

    document: dict[str, Any]
    # (ref name or None, descriptor of the entry) per entry, in the file's order.
    entries: tuple[tuple[str | None, Descriptor], ...]

    def resolve(self, name: str) -> Descriptor | None:
        """The first entry named `name`, as stored (ref-name annotation included)."""
        for entry_name, descriptor in self.entries:
            if entry_name == name:
                return descriptor
        return None

    def mutable_document(self) -> dict[str, Any]:
        """A copy of the document whose `manifests` list may be replaced or changed."""
        return {**self.document, "manifests": list(self.document["manifests"])}


EMPTY = IndexVersion(ImageIndex(manifests=()).to_json(), ())


class IndexFile:
    """Reads of one `index.json`, parsed once while the file is unchanged."""

    def __init__(self, path: Path, clock: Callable[[], int] = time.time_ns) -> None:
        self.path = path
        self._clock = clock
        self._mutex = threading.Lock()
        self._key: _Key | None = None
        self._version = EMPTY
        self.parses = 0  # how many times the file was parsed (tests and benches count them)

    def read(self) -> IndexVersion:
        """The file as it is now (EMPTY when absent); parsed only if it changed."""
        # A stat answers the common case (unchanged) without opening the file; a changed file
        # is keyed by fstat of the descriptor read, so the key always names the parsed bytes.
        try:
            key = _key_of(self.path.stat())
            with self._mutex:
                if key == self._key:
                    return self._version
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return EMPTY
        except OSError as e:
            raise CacheError(f"cannot read {self.path}: {e.strerror}") from None
        try:
            read_at = self._clock()
            st = os.fstat(fd)
            with open(fd, "rb", closefd=False) as f:
                raw = f.read()
        except OSError as e:
            raise CacheError(f"cannot read {self.path}: {e.strerror}") from None
        finally:
            os.close(fd)
        version = self._parse(raw)
        with self._mutex:
            self.parses += 1
            # Racily fresh (see above): returned, not remembered.
            if st.st_ctime_ns < read_at - _RACY_NS:
                self._key, self._version = _key_of(st), version
        return version

    def forget(self) -> None:
        """Drop the remembered version (after this process replaced the file)."""
        with self._mutex:
            self._key, self._version = None, EMPTY

    def _parse(self, raw: bytes) -> IndexVersion:
        path = self.path
        try:
            document = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as e:
            raise CacheError(f"{path}: not valid JSON: {e}") from None
        if not isinstance(document, dict) or not isinstance(document.get("manifests"), list):
            raise CacheError(f"{path}: not an image index (no 'manifests' list)")
        entries = []
        for i, entry in enumerate(document["manifests"]):
            try:
                descriptor = Descriptor.from_json(entry)
            except FormatError as e:
                raise CacheError(f"{path}: manifests[{i}]: {e}") from None
            entries.append((ref_name_of(entry), descriptor))
        return IndexVersion(document, tuple(entries))


def _key_of(st: os.stat_result) -> _Key:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def ref_name_of(entry: Any) -> str | None:
    """The ref-name annotation of a raw index.json entry, None when it has none."""
    annotations = entry.get("annotations") if isinstance(entry, dict) else None
    if not isinstance(annotations, dict):
        return None
    name = annotations.get(REF_NAME_ANNOTATION)
    return name if isinstance(name, str) else None
