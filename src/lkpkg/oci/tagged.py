"""What a tag or digest names, as the layers hand it to each other.

- `Tagged`: a tag and the digest and size of what it names — a tag a push wrote, a target a
  trust backend signs, an arch image a push published. One type for every `(tag, digest,
  size)` in lkpkg (notary's targets, cosign's subjects, the push result, the signing hand-off).
- `ManifestInfo`: what a registry's `HEAD` says of a manifest without its body.
- `Manifest`: a manifest or index as received: its exact bytes, media type and the digest
  they were verified against.

They live here, below the registry client and the pipeline, so that the pipeline's
`Registry` protocol and the trust backends can name them without importing either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True)
class Tagged:
    """`tag` names the manifest (or index) `digest` of `size` bytes. `tag` is empty for a
    manifest that is known by its digest alone (an index's child without its own tag)."""

    tag: str
    digest: str
    size: int


class ManifestInfo(NamedTuple):
    """What `HEAD` tells about a manifest without its body."""

    digest: str
    media_type: str
    size: int


class Manifest(NamedTuple):
    """A manifest or index as received: its exact bytes, media type and verified digest."""

    data: bytes
    media_type: str
    digest: str
