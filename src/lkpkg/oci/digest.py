"""Content digests: the names blobs and manifests go by.

A digest is `algorithm:hex` (OCI image-spec, descriptor.md "Digests"). Only the registered
algorithms sha256 and sha512 are accepted: a digest lkpkg cannot recompute cannot be verified,
and an unverifiable name is no better than no name. The hex part must be lowercase and of the
algorithm's exact length, so that one content has exactly one spelling of its name (a cache
looks blobs up by that spelling).
"""

from __future__ import annotations

import re
from typing import BinaryIO, Protocol

from lkpkg.errors import ReferenceError_

SHA256 = "sha256"
SHA512 = "sha512"

# Length of the hex encoding of each registered algorithm's output.
_HEX_LENGTH = {SHA256: 64, SHA512: 128}

# The spec's general algorithm grammar; checked before the registry of algorithms so that the
# error says "malformed" rather than "unsupported" for garbage.
_ALGORITHM = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*")
_LOWER_HEX = re.compile(r"[0-9a-f]+")

CHUNK_SIZE = 1 << 20


def invalid_digest_reason(digest: str) -> str | None:
    """Why `digest` is not a valid, supported digest; None when it is valid."""
    algorithm, colon, encoded = digest.partition(":")
    if not colon:
        return "a digest is 'algorithm:hex', e.g. 'sha256:' followed by 64 hex characters"
    if not _ALGORITHM.fullmatch(algorithm):
        return f"malformed digest algorithm '{algorithm}'"
    length = _HEX_LENGTH.get(algorithm)
    if length is None:
        return f"unsupported digest algorithm '{algorithm}' (use sha256 or sha512)"
    if len(encoded) != length:
        return f"a {algorithm} digest has {length} hex characters, this one has {len(encoded)}"
    if not _LOWER_HEX.fullmatch(encoded):
        return f"the {algorithm} hex part may only contain 0-9 and a-f (lowercase)"
    return None


def validate_digest(digest: str) -> str:
    """Return `digest` unchanged if valid; raise `ReferenceError_` saying why it is not."""
    reason = invalid_digest_reason(digest)
    if reason is not None:
        raise ReferenceError_(f"invalid digest '{digest}': {reason}")
    return digest


def algorithm_of(digest: str) -> str:
    """The algorithm part of a valid digest ("sha256")."""
    return validate_digest(digest).partition(":")[0]


def hex_of(digest: str) -> str:
    """The hex part of a valid digest: the file name of its blob in an OCI layout."""
    return validate_digest(digest).partition(":")[2]


def digest_of(data: bytes, algorithm: str = SHA256) -> str:
    """The digest of `data` under `algorithm` (sha256 or sha512)."""
    import hashlib  # where a digest is computed: show-tag only validates them (no OpenSSL)

    _check_algorithm(algorithm)
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def sha256_digest(data: bytes) -> str:
    """`sha256:<hex>` of `data`."""
    import hashlib

    return f"{SHA256}:{hashlib.sha256(data).hexdigest()}"


def digest_stream(stream: BinaryIO, algorithm: str = SHA256) -> tuple[str, int]:
    """Read `stream` to its end; return its (digest, size) without holding it in memory."""
    writer = DigestingWriter(None, algorithm)
    while chunk := stream.read(CHUNK_SIZE):
        writer.write(chunk)
    return writer.digest, writer.size


class WritableSink(Protocol):
    """Anything with a binary `write`: a file, a socket file, a `BytesIO`."""

    def write(self, data: memoryview, /) -> int | None: ...


class DigestingWriter:
    """A write-through wrapper that hashes and counts every byte passed to the file beneath.

    With `sink=None` it only hashes, which is how a reader verifies a stream. Only bytes the sink
    reports as written are hashed, so `digest` always names what actually reached the file.
    """

    def __init__(self, sink: WritableSink | None, algorithm: str = SHA256) -> None:
        import hashlib

        _check_algorithm(algorithm)
        self._sink = sink
        self._algorithm = algorithm
        self._hash = hashlib.new(algorithm)
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data).cast("B")
        written = len(view) if self._sink is None else self._sink.write(view)
        if written is None:
            # A non-blocking raw file may accept nothing; the caller must retry, as with raw IO.
            return 0
        self._hash.update(view[:written])
        self._size += written
        return written

    @property
    def digest(self) -> str:
        """`algorithm:hex` of everything written so far."""
        return f"{self._algorithm}:{self._hash.hexdigest()}"

    @property
    def size(self) -> int:
        """Number of bytes written so far."""
        return self._size


def _check_algorithm(algorithm: str) -> None:
    if algorithm not in _HEX_LENGTH:
        raise ReferenceError_(f"unsupported digest algorithm '{algorithm}' (use sha256 or sha512)")
