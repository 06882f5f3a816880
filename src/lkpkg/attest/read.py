"""Finding the attestations of an image: per platform, the statements of one predicate type."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lkpkg.attest.store import BlobReader, attestation_for, read_attestations
from lkpkg.errors import InputError
from lkpkg.oci import mediatypes
from lkpkg.oci.model import ImageIndex, Platform, parse_manifest_bytes


@dataclass(frozen=True)
class Found:
    platform: Platform
    image_digest: str
    predicate: Mapping[str, Any]


def predicates(
    source: BlobReader,
    index_digest: str,
    predicate_type: str,
    platforms: Sequence[Platform] = (),
    *,
    where: str,
) -> list[Found]:
    """The predicates of `predicate_type` for each platform image of the index (or of those
    in `platforms`); an `InputError` naming `where` when there is none to give."""
    top = parse_manifest_bytes(source.read_blob(index_digest))
    if not isinstance(top, ImageIndex):
        raise InputError(f"{where}: not an index, so it carries no attestations")
    out: list[Found] = []
    for entry in top.manifests:
        if entry.platform is None or entry.media_type not in mediatypes.MANIFEST_TYPES:
            continue
        if entry.platform.architecture == "unknown":
            continue
        if platforms and not any(entry.platform.matches(p) for p in platforms):
            continue
        attestation = attestation_for(top, entry.digest)
        if attestation is None:
            continue
        for item in read_attestations(source, attestation.digest):
            statement = item.statement
            if statement.predicate_type != predicate_type:
                continue
            if statement.subject_digest != entry.digest:
                continue  # a statement about another image is not this one's
            out.append(Found(entry.platform, entry.digest, statement.predicate))
    if not out:
        wanted = ", ".join(str(p) for p in platforms) or "any platform"
        raise InputError(f"{where}: no {predicate_type} attestation for {wanted}")
    return out
