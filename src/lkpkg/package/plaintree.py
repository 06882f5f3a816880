"""Git's tree id of a directory outside any git repository, computed without git.

treehash.py tags a package outside git by the tree id git would give its content (always
dirty). The rule, as git stores a tree: `.git` entries (any letter case) are skipped, regular
files are blobs with mode 100644 or 100755 (owner's execute bit), symlinks are blobs holding
the target's exact bytes, sockets, FIFOs and devices are skipped, and directories with nothing
to store are omitted; a directory with nothing at all to store has the empty tree's id.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from lkpkg.errors import InputError

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
"""git's id of the tree with no entries."""


def directory_tree_id(directory: Path) -> str:
    """The tree id git would give `directory`'s content, computed without git.

    `.git` entries are skipped and directories with nothing to store are omitted, as in git;
    a directory with nothing at all to store has the empty tree's id.
    """
    raw = _tree_id(directory, str(directory))
    return raw.hex() if raw is not None else EMPTY_TREE


def _tree_id(path: Path, label: str) -> bytes | None:
    """The raw tree id of `path`, or None when git would store nothing for it."""
    entries: list[tuple[bytes, bytes, bytes, bytes]] = []
    try:
        for child in path.iterdir():
            name = os.fsencode(child.name)
            # git refuses `.git` in any letter case anywhere in a tree.
            if name.lower() == b".git":
                continue
            info = child.lstat()
            if stat.S_ISLNK(info.st_mode):
                # Not Path.readlink: it would normalise the target ("a//b/" becomes "a/b"),
                # and the blob must hold the target's exact bytes.
                target = os.fsencode(os.readlink(child))  # noqa: PTH115
                entries.append((name, b"120000", name, _blob_id(target)))
            elif stat.S_ISREG(info.st_mode):
                mode = b"100755" if info.st_mode & stat.S_IXUSR else b"100644"
                entries.append((name, mode, name, _file_blob_id(child, label)))
            elif stat.S_ISDIR(info.st_mode):
                subtree = _tree_id(child, label)
                if subtree is not None:
                    # git orders a tree as if its name ended in "/".
                    entries.append((name + b"/", b"40000", name, subtree))
            # Sockets, FIFOs and devices are skipped, as git skips them.
    except OSError as exc:
        where = exc.filename if exc.filename is not None else path
        raise InputError(f"{label}: cannot read {where}: {exc.strerror}") from exc
    if not entries:
        return None
    entries.sort()
    import hashlib  # here: a package in a git repository (show-tag's usual case) needs no OpenSSL

    body = b"".join(mode + b" " + name + b"\0" + object_id for _, mode, name, object_id in entries)
    return hashlib.sha1(b"tree %d\0" % len(body) + body).digest()  # noqa: S324 - git's id


def _blob_id(content: bytes) -> bytes:
    import hashlib

    return hashlib.sha1(b"blob %d\0" % len(content) + content).digest()  # noqa: S324 - git's id


def _file_blob_id(path: Path, label: str) -> bytes:
    import hashlib

    with path.open("rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        digest = hashlib.sha1(b"blob %d\0" % size)  # noqa: S324 - git's id
        read = 0
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
            read += len(chunk)
    if read != size:
        raise InputError(f"{label}: {path} changed while it was being hashed")
    return digest.digest()
