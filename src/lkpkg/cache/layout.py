"""The local cache: an OCI image layout directory in the shape linuxkit's cache uses.

    <root>/oci-layout            {"imageLayoutVersion":"1.0.0"}
    <root>/index.json            an image index; each entry names a ref by annotation
    <root>/blobs/sha256/<hex>    content-addressed blobs
    <root>/.lock                 flock(2) target serialising index.json rewrites
    <root>/.tmp/                 staging for atomic renames (same filesystem as blobs/)

An index.json entry carries `org.opencontainers.image.ref.name` = a fully qualified reference
(`docker.io/wombat/hello:abc123` for a multi-platform index, `...:abc123-amd64` for a single
manifest). See README.md in this package for the invariants every method keeps.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

from lkpkg.cache.indexfile import REF_NAME_ANNOTATION as REF_NAME_ANNOTATION
from lkpkg.cache.indexfile import IndexFile, ref_name_of
from lkpkg.cache.runs import Run, Swept, start_run, sweep
from lkpkg.errors import CacheError, DigestMismatch, FormatError, ReferenceError_
from lkpkg.fsutil import acquire_lock, atomic_write, fsync_dir
from lkpkg.oci import mediatypes
from lkpkg.oci.digest import (
    CHUNK_SIZE,
    SHA256,
    DigestingWriter,
    algorithm_of,
    digest_of,
    digest_stream,
    hex_of,
    sha256_digest,
    validate_digest,
)
from lkpkg.oci.model import (
    Descriptor,
    ImageIndex,
    ImageManifest,
    canonical_bytes,
    parse_manifest_bytes,
)
from lkpkg.reference import Reference

LAYOUT_VERSION = "1.0.0"
CACHE_ENV = "LINUXKIT_CACHE"

_LAYOUT_FILE = "oci-layout"
_INDEX_FILE = "index.json"
_LOCK_FILE = ".lock"
_TMP_DIR = ".tmp"
# Memos of SBOM layer scans, `<hex of the layer digest>.json` (attest/layermemo.py); gc prunes
# those whose layer blob is gone.
LAYER_MEMO_DIR = ".sbom-layers"
_BLOB_MODE = 0o644
_MANIFESTS = mediatypes.MANIFEST_TYPES | mediatypes.INDEX_TYPES


def default_cache_dir(env: Mapping[str, str]) -> Path:
    """`$LINUXKIT_CACHE` of `env` if set, else `~/.linuxkit/cache`, the directory linuxkit uses."""
    override = env.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    return Path.home() / ".linuxkit" / "cache"


class Cache:
    """An OCI image layout on disk. Nothing is created until the first write."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        # The RLock excludes other threads of this process (flock is per open file, so it cannot
        # tell two threads apart); the flock excludes other processes. `_depth` makes `lock()`
        # reentrant so a caller can hold it across several writes that each take it again.
        self._mutex = threading.RLock()
        self._depth = 0
        self._lock_fd: int | None = None
        self._ready = False
        self._run: Run | None = None
        self.swept = Swept()
        self.index_file = IndexFile(self.root / _INDEX_FILE)

    def __repr__(self) -> str:
        return f"Cache({str(self.root)!r})"

    # -- locking and layout -------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the cache's exclusive lock; reentrant within this `Cache` object."""
        with self._mutex:
            if self._depth == 0:
                self._lock_fd = self._acquire_flock()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._lock_fd is not None:
                    fd, self._lock_fd = self._lock_fd, None
                    os.close(fd)  # closing the only descriptor releases the flock

    def _acquire_flock(self) -> int:
        try:
            fd = acquire_lock(self.root / _LOCK_FILE)
        except OSError as e:
            raise CacheError(f"cannot lock the cache {self.root}: {e.strerror}") from None
        assert fd is not None  # a blocking acquire returns a descriptor or raises
        return fd

    def ensure_layout(self) -> None:
        if self._ready:
            return
        try:
            (self.root / "blobs" / SHA256).mkdir(parents=True, exist_ok=True)
            (self.root / _TMP_DIR).mkdir(exist_ok=True)
            # Under the lock so a first-time empty index.json cannot replace one that another
            # process has just written a ref into.
            with self.lock():
                if not (self.root / _LAYOUT_FILE).exists():
                    layout = {"imageLayoutVersion": LAYOUT_VERSION}
                    self._atomic_write(self.root / _LAYOUT_FILE, canonical_bytes(layout))
                if not (self.root / _INDEX_FILE).exists():
                    self._atomic_write(self.root / _INDEX_FILE, canonical_bytes(_empty_index()))
        except OSError as e:
            raise CacheError(f"cannot initialise the cache {self.root}: {e.strerror}") from None
        self._check_layout_version()
        self._ready = True

    def _check_layout_version(self) -> None:
        path = self.root / _LAYOUT_FILE
        try:
            layout = json.loads(path.read_bytes())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as e:
            raise CacheError(f"{path}: unreadable: {e}") from None
        version = layout.get("imageLayoutVersion") if isinstance(layout, dict) else None
        if version != LAYOUT_VERSION:
            raise CacheError(f"{path}: unsupported imageLayoutVersion {version!r}")

    def run(self) -> Run:
        """This object's run on the cache (started, and dead runs' leftovers swept, on first
        use): every scratch name in `.tmp` carries its id, see `cache/runs.py`."""
        with self._mutex:
            if self._run is None:
                try:
                    (self.root / _TMP_DIR).mkdir(parents=True, exist_ok=True)
                    self._run = start_run(self.root)
                    self.swept = sweep(self.root)
                except OSError as e:
                    raise CacheError(f"cannot use the cache {self.root}: {e.strerror}") from None
            return self._run

    def close(self) -> None:
        """End this object's run (its scratch directories must be gone); a later write starts
        another."""
        with self._mutex:
            if self._run is not None:
                self._run.close()
                self._run = None

    @property
    def run_id(self) -> str | None:
        """This object's run id, None until it first needed one."""
        return None if self._run is None else self._run.id

    def staging_path(self, purpose: str) -> Path:
        """A fresh path in `.tmp` (same filesystem as the blobs) owned by this run."""
        return self.root / _TMP_DIR / self.run().scratch_name(purpose)

    @contextlib.contextmanager
    def scratch_dir(self, purpose: str) -> Iterator[Path]:
        """A fresh directory in `.tmp` owned by this run, removed when the block ends (or by
        the next run's sweep if this process dies first)."""
        path = self.staging_path(purpose)
        try:
            path.mkdir()
        except OSError as e:
            raise CacheError(
                f"cannot make a scratch directory in {path.parent}: {e.strerror}"
            ) from None
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def write_file(self, path: Path, data: bytes) -> None:
        """Replace `path`, a file of the cache that is not a blob or index.json (a memo of
        lkpkg's own), atomically: staged in `.tmp` under this run's name, fsynced, renamed."""
        try:
            self.run()
            self._atomic_write(path, data)
        except OSError as e:
            raise CacheError(f"cannot write {path}: {e.strerror}") from None

    def _atomic_write(self, path: Path, data: bytes) -> None:
        prefix = self.run().scratch_name("write") + "-"
        atomic_write(path, data, tmp_dir=self.root / _TMP_DIR, mode=_BLOB_MODE, prefix=prefix)

    # -- blobs ---------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        """Where the blob named `digest` lives (whether or not it is there)."""
        return self.root / "blobs" / algorithm_of(digest) / hex_of(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def read_blob(self, digest: str) -> bytes:
        """The blob's bytes, verified against `digest` (`DigestMismatch` if corrupt)."""
        path = self.blob_path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CacheError(f"blob {digest} is not in the cache {self.root}") from None
        except OSError as e:
            raise CacheError(f"cannot read {path}: {e.strerror}") from None
        actual = digest_of(data, algorithm_of(digest))
        if actual != digest:
            raise DigestMismatch(f"blob {path} is corrupt: its content hashes to {actual}")
        return data

    def open_blob(self, digest: str) -> BinaryIO:
        """An open binary file on the blob, for streaming. Not re-verified while read: blobs
        are verified when written; use `read_blob` or `digest_stream` to check again."""
        path = self.blob_path(digest)
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise CacheError(f"blob {digest} is not in the cache {self.root}") from None
        except OSError as e:
            raise CacheError(f"cannot open {path}: {e.strerror}") from None

    def write_blob(self, data: bytes, media_type: str) -> Descriptor:
        """Store `data` under its sha256 digest; return its descriptor."""
        digest = sha256_digest(data)
        path = self.blob_path(digest)
        # Comparing costs no more than hashing, and a damaged copy is repaired rather than kept.
        if not _has_content(path, data):
            self.ensure_layout()
            try:
                self._atomic_write(path, data)
            except OSError as e:
                raise CacheError(f"cannot write blob {digest}: {e.strerror}") from None
        return Descriptor(media_type=media_type, digest=digest, size=len(data))

    def ingest_file(
        self, src: Path, digest: str | None = None, move: bool = False
    ) -> tuple[str, int]:
        """Store the file `src` as a blob; return its (digest, size).

        The content is streamed, hashed and, if `digest` is given, checked against it: on a
        mismatch `DigestMismatch` is raised and nothing is left in the cache (with `move`,
        `src` is put back). With `move`, `src` is renamed into the cache when it is on the
        same filesystem (else copied) and is gone after success. If the blob is already
        present, `src` is not read.
        """
        src = Path(src)
        expected = validate_digest(digest) if digest is not None else None
        algorithm = algorithm_of(expected) if expected is not None else SHA256
        if expected is not None and self.has_blob(expected):
            size = self.blob_path(expected).stat().st_size
            if move:
                unlink_quietly(src)
            return expected, size
        self.ensure_layout()
        tmp = self.staging_path("ingest")
        moved = False
        try:
            try:
                moved = move and self._claim_by_rename(src, tmp)
                if moved:
                    actual, size = _digest_and_sync(tmp, algorithm)
                else:
                    actual, size = copy_digesting(src, tmp, algorithm)
            except OSError as e:
                raise CacheError(f"cannot ingest {src}: {e.strerror}") from None
            if expected is not None and actual != expected:
                raise DigestMismatch(f"{src}: expected {expected}, its content hashes to {actual}")
            if moved:
                tmp.chmod(
                    _BLOB_MODE
                )  # only once it is ours to keep; a refused file goes back as-is
            self.commit_staged(tmp, actual)
        except BaseException:
            if moved:
                # The caller's file was renamed into .tmp; a failed ingest hands it back.
                with contextlib.suppress(OSError):
                    tmp.rename(src)
            raise
        finally:
            unlink_quietly(tmp)
        if move and not moved:
            unlink_quietly(src)
        return actual, size

    def _claim_by_rename(self, src: Path, tmp: Path) -> bool:
        """Rename `src` to `tmp` if it is a regular file on our filesystem; False to copy."""
        try:
            mode = src.lstat().st_mode
        except OSError as e:
            raise CacheError(f"cannot ingest {src}: {e.strerror}") from None
        if not stat.S_ISREG(mode):
            # Renaming a symlink would put a link, not content, into the cache.
            return False
        try:
            src.rename(tmp)
        except OSError as e:
            if e.errno in (errno.EXDEV, errno.EPERM, errno.EACCES):
                return False
            raise
        return True

    def commit_staged(self, tmp: Path, digest: str) -> None:
        """Rename a verified staged file into its blob path."""
        final = self.blob_path(digest)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp.replace(final)
        except OSError as e:
            raise CacheError(f"cannot store blob {digest}: {e.strerror}") from None
        fsync_dir(final.parent)

    # -- manifests -----------------------------------------------------------------------

    def put_manifest(self, manifest: ImageManifest | ImageIndex) -> Descriptor:
        """Store a manifest or index lkpkg built; refuse if anything it names is missing."""
        seen: set[str] = set()
        for child in manifest.children():
            self._check_complete(child, seen, f"the {_kind(manifest)} names")
        return self.write_blob(canonical_bytes(manifest.to_json()), manifest.media_type)

    def read_manifest(self, digest: str) -> ImageManifest | ImageIndex:
        """Parse the manifest or index stored under `digest`."""
        data = self.read_blob(digest)
        try:
            return parse_manifest_bytes(data)
        except FormatError as e:
            raise CacheError(f"blob {digest} in {self.root}: {e}") from None

    def check_complete(self, desc: Descriptor, what: str) -> None:
        """`CacheError` (starting with `what`) unless `desc` and all it reaches are stored."""
        self._check_complete(desc, set(), what)

    def _check_complete(self, desc: Descriptor, seen: set[str], what: str) -> None:
        """Raise `CacheError` unless `desc` and everything it reaches are stored."""
        if desc.digest in seen:
            return
        self._check_stored(desc, what)
        seen.add(desc.digest)
        if desc.media_type in _MANIFESTS:
            for child in self.read_manifest(desc.digest).children():
                self._check_complete(child, seen, f"{desc.digest} names")

    def _check_stored(self, desc: Descriptor, what: str) -> None:
        """Raise `CacheError` unless the blob `desc` names is stored with its size."""
        path = self.blob_path(desc.digest)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise CacheError(
                f"{what} {desc.digest} ({desc.media_type}), which is not in the cache {self.root}"
            ) from None
        if size != desc.size:
            raise CacheError(
                f"{what} {desc.digest} with size {desc.size}, but the stored blob has {size} bytes"
            )

    # -- refs ----------------------------------------------------------------------------

    def refs(self) -> list[tuple[str, Descriptor]]:
        """Every (ref name, descriptor) in index.json, sorted by name. The descriptor is the
        entry without its ref-name annotation, as it was given to `set_ref`."""
        out = [
            (name, _without_ref_name(desc))
            for name, desc in self.index_file.read().entries
            if name is not None
        ]
        return sorted(out, key=lambda pair: (pair[0], pair[1].digest))

    def resolve(self, ref: str | Reference) -> Descriptor | None:
        """The descriptor stored for exactly this ref name, or None."""
        found = self.index_file.read().resolve(str(ref))
        return None if found is None else _without_ref_name(found)

    def set_ref(self, ref: str | Reference, desc: Descriptor, *, partial: bool = False) -> None:
        """Point `ref` (fully qualified) at `desc`, replacing any entry of that name.

        Refused with `CacheError` unless `desc` and everything it reaches are in the cache.
        With `partial` (an index pulled for some of its platforms), the index's entries whose
        manifest is absent are allowed; every entry that is present must still be complete.
        """
        name = _qualified_ref(ref)
        annotations = {**(desc.annotations or {}), REF_NAME_ANNOTATION: name}
        entry = replace(desc, annotations=annotations).to_json()
        with self.lock():
            self.ensure_layout()
            if partial and desc.media_type in mediatypes.INDEX_TYPES:
                self._check_stored(desc, f"ref {name} names")
                seen: set[str] = set()
                for child in self.read_manifest(desc.digest).children():
                    if self.has_blob(child.digest):
                        self._check_complete(child, seen, f"{desc.digest} names")
            else:
                self._check_complete(desc, set(), f"ref {name} names")
            # Re-read under the lock: another process may have added refs since we last looked,
            # and the rewrite must carry them over.
            index = self.index_file.read().mutable_document()
            kept: list[Any] = []
            placed = False
            for existing in index["manifests"]:
                if ref_name_of(existing) != name:
                    kept.append(existing)
                elif not placed:
                    kept.append(entry)  # keep the ref's position stable across updates
                    placed = True
            if not placed:
                kept.append(entry)
            if kept == index["manifests"]:
                return  # the ref already names exactly this: a rewrite would change nothing
            index["manifests"] = kept
            self._write_index(index)

    def remove_ref(self, ref: str | Reference) -> None:
        """Drop every index.json entry named `ref`; no error if there is none. Blobs stay."""
        name = str(ref)
        with self.lock():
            index = self.index_file.read().mutable_document()
            kept = [e for e in index["manifests"] if ref_name_of(e) != name]
            if len(kept) != len(index["manifests"]):
                index["manifests"] = kept
                self._write_index(index)

    def remove_blobs(self, digests: Iterable[str]) -> int:
        """Delete these blobs (absent ones are skipped); return how many were deleted.

        Only under the lock: a caller decides what no ref reaches from a read it made under
        the same lock, so no ref can come to need a deleted blob in between.
        """
        if self._depth == 0:
            raise RuntimeError("blobs are only removed under the cache lock")
        removed = 0
        for digest in digests:
            try:
                self.blob_path(digest).unlink()
            except FileNotFoundError:
                continue
            except OSError as e:
                raise CacheError(f"cannot remove blob {digest}: {e.strerror}") from None
            removed += 1
        return removed

    def _write_index(self, index: Mapping[str, Any]) -> None:
        if self._depth == 0:
            raise RuntimeError("index.json is only rewritten under the cache lock")
        try:
            self._atomic_write(self.root / _INDEX_FILE, canonical_bytes(index))
        except OSError as e:
            raise CacheError(f"cannot write {self.root / _INDEX_FILE}: {e.strerror}") from None
        finally:
            self.index_file.forget()


def digest_path(path: Path, algorithm: str) -> tuple[str, int]:
    with path.open("rb") as f:
        return digest_stream(f, algorithm)


def _digest_and_sync(path: Path, algorithm: str) -> tuple[str, int]:
    with path.open("rb+") as f:
        result = digest_stream(f, algorithm)
        os.fsync(f.fileno())
    return result


def copy_digesting(src: Path, dst: Path, algorithm: str) -> tuple[str, int]:
    """Copy `src` to the new file `dst`, hashing on the way; fsync `dst`."""
    with src.open("rb") as fin, dst.open("xb") as fout:
        writer = DigestingWriter(fout, algorithm)
        shutil.copyfileobj(fin, writer, CHUNK_SIZE)
        fout.flush()
        os.fchmod(fout.fileno(), _BLOB_MODE)
        os.fsync(fout.fileno())
    return writer.digest, writer.size


def is_file_of_size(path: Path, size: int) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size == size


def _kind(manifest: ImageManifest | ImageIndex) -> str:
    return "index" if isinstance(manifest, ImageIndex) else "manifest"


def _has_content(path: Path, data: bytes) -> bool:
    if not is_file_of_size(path, len(data)):
        return False
    try:
        return path.read_bytes() == data
    except OSError:
        return False


def unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _empty_index() -> dict[str, Any]:
    return ImageIndex(manifests=()).to_json()


def _without_ref_name(desc: Descriptor) -> Descriptor:
    if not desc.annotations or REF_NAME_ANNOTATION not in desc.annotations:
        return desc
    rest = {k: v for k, v in desc.annotations.items() if k != REF_NAME_ANNOTATION}
    return replace(desc, annotations=rest or None)


def _qualified_ref(ref: str | Reference) -> str:
    if isinstance(ref, Reference):
        return str(ref)
    qualified = str(Reference.parse(ref))
    if qualified != ref:
        raise ReferenceError_(
            f"invalid reference '{ref}': the cache keys refs by the fully qualified '{qualified}'"
        )
    return qualified
