"""Scans of image layers remembered by layer digest, so a base is catalogued once, not per build.

An image FROM a Debian base holds its 100+ MB of layers again in every build; cataloguing them
(decompress, walk every member, hash every executable) cost 1.8 s of CPU per build. A layer's
scan (attest/rootfs.py `LayerScan`) depends only on its bytes, which its digest names, and on
the cataloguer's code: it is kept in `<cache>/.sbom-layers/<hex>.json` with a header naming the
layer digest, the memo format and lkpkg's version, and the sha256 of the payload.

- A memo that is absent, unreadable, of another version or layer, or whose payload does not
  hash to its header's sha256 is ignored: the layer is scanned and the memo rewritten. So the
  SBOM is byte for byte the one a scan gives (test_attest_sbom checks it with and without).
- Written atomically through the cache (staged in `.tmp`, fsynced, renamed); a failed write
  is not an error, the next build scans again.
- Only layers of at least `MIN_LAYER_SIZE` are remembered: a package's own small layers are
  new in every build, and rescanning them costs less than the file would.
- `lkpkg cache gc` removes memos whose layer blob is gone.
- Trust: a memo is as trusted as the cache's blobs themselves (streamed layers are not hashed
  again on read either); `rm -rf <cache>/.sbom-layers` forgets every memo.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

from lkpkg import __version__
from lkpkg.attest.rootfs import LayerScan
from lkpkg.cache.layout import LAYER_MEMO_DIR, Cache
from lkpkg.errors import CacheError
from lkpkg.oci.digest import hex_of
from lkpkg.oci.model import Descriptor

MEMO_DIR = LAYER_MEMO_DIR
# Bump when what a scan records changes (rootfs members, inventory._Collector findings).
FORMAT = 1
MIN_LAYER_SIZE = 1 << 20


def memo_path(root: Path, digest: str) -> Path:
    return root / MEMO_DIR / f"{hex_of(digest)}.json"


class LayerMemo:
    """`LayerScans` (attest/rootfs.py) kept beside the cache's blobs."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self._version = f"{FORMAT}/{__version__}"

    def get(self, layer: Descriptor) -> LayerScan | None:
        if layer.size < MIN_LAYER_SIZE:
            return None
        try:
            data = memo_path(self.cache.root, layer.digest).read_bytes()
            header_line, _, payload = data.partition(b"\n")
            header = json.loads(header_line)
            if header != self._header(layer, payload):
                return None
            return _scan_of(json.loads(payload))
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def put(self, layer: Descriptor, scan: LayerScan) -> None:
        if layer.size < MIN_LAYER_SIZE:
            return
        body = {"members": scan.members, "findings": sorted(scan.findings.items())}
        payload = json.dumps(body, separators=(",", ":")).encode()
        header = json.dumps(self._header(layer, payload), separators=(",", ":")).encode()
        path = memo_path(self.cache.root, layer.digest)
        with contextlib.suppress(CacheError):  # not kept: the next build scans the layer again
            self.cache.write_file(path, header + b"\n" + payload)

    def _header(self, layer: Descriptor, payload: bytes) -> dict[str, Any]:
        return {
            "layer": layer.digest,
            "memo": self._version,
            "sha256": hashlib.sha256(payload).hexdigest(),
        }


def _scan_of(body: Any) -> LayerScan:
    """The scan a memo's payload holds; TypeError/ValueError/KeyError when it is not one."""
    members = []
    for path, kind, mode, size, linkname in body["members"]:
        if not (isinstance(path, str) and isinstance(kind, str) and isinstance(linkname, str)):
            raise TypeError("member")
        members.append((path, kind, int(mode), int(size), linkname))
    findings = {int(index): finding for index, finding in body["findings"]}
    if any(not 0 <= i < len(members) for i in findings):
        raise ValueError("finding")
    return LayerScan(tuple(members), findings)
