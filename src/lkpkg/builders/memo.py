"""What the buildah builder remembers across runs, so that a build asks buildah only what
may have changed. Each memo is a small JSON file, written atomically; one that cannot be read
or written is not used (the builder asks buildah, as without it).
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

from lkpkg.fsutil import atomic_write


def _read_json(path: Path) -> dict[str, object]:
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _write_json(path: Path, doc: Mapping[str, object]) -> None:
    with contextlib.suppress(OSError):
        atomic_write(path, json.dumps(doc, sort_keys=True).encode())


class VersionMemo:
    """buildah's version as it said it, remembered across runs per executable: one process
    less per run. Keyed by what changes when the binary does (its resolved path, device,
    inode, size and mtime), so an upgrade is asked again; a memo that cannot be read or
    written is simply not used."""

    def __init__(self, path: Path, key: str) -> None:
        self.path = path
        self.key = key

    @classmethod
    def of(
        cls, executable: str, environ: Mapping[str, str], where: Path | None
    ) -> VersionMemo | None:
        found = shutil.which(executable, path=environ.get("PATH"))
        if where is None or found is None:
            return None
        try:
            real = Path(found).resolve()
            info = real.stat()
        except OSError:
            return None
        key = f"{real}:{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}"
        return cls(where / "buildah-version.json", key)

    def read(self) -> str | None:
        value = _read_json(self.path).get(self.key)
        return value if isinstance(value, str) and value else None

    def write(self, version: str) -> None:
        _write_json(self.path, {self.key: version})  # one entry: the binary asked last


class ProvidedBases:
    """The manifest lists `provide_base` made (or found) in a store, each with the state of the
    store's image list then. containers-storage replaces `<graphroot>/overlay-images/images.json`
    whenever an image or list is added, changed or removed (a build writing its OCI layout
    straight out adds none), so while that file is the same one, a recorded list is still
    there as recorded and `buildah manifest inspect` need not be run. Any change, or a store
    whose image list is elsewhere, falls back to asking buildah.
    """

    def __init__(self, store: Path) -> None:
        self.path = store / "bases.json"
        self.images = store / "graph" / "overlay-images" / "images.json"

    def _state(self) -> str | None:
        try:
            info = self.images.stat()
        except OSError:
            return None
        return f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}"

    def unchanged(self, name: str, instances: Iterable[str]) -> bool:
        state = self._state()
        entry = _read_json(self.path).get(name)
        return (
            state is not None
            and isinstance(entry, dict)
            and entry.get("images") == state
            and entry.get("instances") == sorted(instances)
        )

    def record(self, name: str, instances: Iterable[str]) -> None:
        state = self._state()
        if state is None:
            return
        doc = _read_json(self.path)
        doc[name] = {"instances": sorted(instances), "images": state}
        _write_json(self.path, doc)
