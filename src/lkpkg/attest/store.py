"""Attestations in BuildKit's layout, beside the images they describe.

For each platform image of an index, an attestation manifest sits in the same index with
platform `unknown/unknown` and the annotations `vnd.docker.reference.type:
attestation-manifest` and `vnd.docker.reference.digest: <the image manifest's digest>`.
Its layers are in-toto statements (`application/vnd.in-toto+json`), each annotated with
`in-toto.io/predicate-type`; its config is a minimal image config that only exists because
a manifest must have one. This is what linuxkit (`cache/imagesource.go`) and docker read.

Invariants: an attestation entry is only ever written next to the image it names; an index
rewritten for new images keeps an older attestation only while its image is still listed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from lkpkg.attest.intoto import Statement, parse_statement
from lkpkg.errors import FormatError
from lkpkg.oci import mediatypes
from lkpkg.oci.model import Descriptor, ImageIndex, ImageManifest, Platform, canonical_bytes

REFERENCE_TYPE = "vnd.docker.reference.type"
REFERENCE_DIGEST = "vnd.docker.reference.digest"
ATTESTATION_MANIFEST = "attestation-manifest"
PREDICATE_TYPE = "in-toto.io/predicate-type"
UNKNOWN = Platform(os="unknown", architecture="unknown")


class BlobWriter(Protocol):
    def write_blob(self, data: bytes, media_type: str) -> Descriptor: ...

    def put_manifest(self, manifest: ImageManifest | ImageIndex) -> Descriptor: ...


class BlobReader(Protocol):
    def read_blob(self, digest: str) -> bytes: ...


@dataclass(frozen=True)
class Attestation:
    """One statement read back, with the layer that held it."""

    layer: Descriptor
    statement: Statement
    raw: bytes


def is_attestation(desc: Descriptor) -> bool:
    annotations = desc.annotations or {}
    return annotations.get(REFERENCE_TYPE) == ATTESTATION_MANIFEST


def write_attestation_manifest(
    store: BlobWriter, image: Descriptor, statements: Sequence[Statement]
) -> Descriptor:
    """Store the statements and their manifest; return its descriptor for the image's index."""
    layers = []
    for statement in statements:
        blob = store.write_blob(statement.to_bytes(), mediatypes.IN_TOTO)
        layers.append(
            Descriptor(
                blob.media_type,
                blob.digest,
                blob.size,
                annotations={PREDICATE_TYPE: statement.predicate_type},
            )
        )
    config = {
        "architecture": "unknown",
        "os": "unknown",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in layers]},
    }
    config_desc = store.write_blob(canonical_bytes(config), mediatypes.OCI_CONFIG)
    annotations = {REFERENCE_TYPE: ATTESTATION_MANIFEST, REFERENCE_DIGEST: image.digest}
    # The manifest repeats the index entry's annotations, so that the manifest alone (a
    # registry tag, see `attested_digest`) says which image it belongs to.
    manifest = store.put_manifest(
        ImageManifest(config_desc, tuple(layers), annotations=annotations)
    )
    return index_entry(manifest, image.digest)


def index_entry(manifest: Descriptor, image_digest: str) -> Descriptor:
    """The index entry of an attestation manifest for the image `image_digest`."""
    return Descriptor(
        manifest.media_type,
        manifest.digest,
        manifest.size,
        platform=UNKNOWN,
        annotations={REFERENCE_TYPE: ATTESTATION_MANIFEST, REFERENCE_DIGEST: image_digest},
    )


def attested_digest(manifest: ImageManifest) -> str | None:
    """The image digest an attestation manifest lkpkg wrote belongs to; None for others."""
    annotations = manifest.annotations or {}
    if annotations.get(REFERENCE_TYPE) != ATTESTATION_MANIFEST:
        return None
    return annotations.get(REFERENCE_DIGEST)


def registry_tag(arch_tag: str) -> str:
    """The registry tag of the attestations of the image at `TAG-ARCH` (a registry has no
    compare-and-swap for the index, so each arch's attestation has a tag of its own)."""
    return f"{arch_tag}-attestations"


def index_entries(
    images: Sequence[Descriptor],
    fresh: Mapping[str, Descriptor],
    previous: ImageIndex | None,
) -> list[Descriptor]:
    """The attestation entries an index over `images` should hold, in the images' order.

    `fresh` maps an image digest to the attestation just made for it; otherwise the one the
    previous index held for that same image digest is kept, so rebuilding one arch leaves
    the others' attestations in place and drops only those of images no longer listed.
    """
    kept: dict[str, Descriptor] = {}
    if previous is not None:
        for entry in previous.manifests:
            if is_attestation(entry):
                target = (entry.annotations or {}).get(REFERENCE_DIGEST)
                if target is not None:
                    kept.setdefault(target, entry)
    out: list[Descriptor] = []
    for image in images:
        chosen = fresh.get(image.digest) or kept.get(image.digest)
        if chosen is not None:
            out.append(chosen)
    return out


def attestation_for(index: ImageIndex, image_digest: str) -> Descriptor | None:
    for entry in index.manifests:
        if (
            is_attestation(entry)
            and (entry.annotations or {}).get(REFERENCE_DIGEST) == image_digest
        ):
            return entry
    return None


def read_attestations(source: BlobReader, manifest_digest: str) -> list[Attestation]:
    """Every in-toto statement of an attestation manifest (other layer types are skipped)."""
    try:
        manifest = ImageManifest.from_json(json.loads(source.read_blob(manifest_digest)))
    except ValueError as e:
        raise FormatError(f"attestation manifest {manifest_digest}: {e}") from None
    out = []
    for layer in manifest.layers:
        if layer.media_type != mediatypes.IN_TOTO:
            continue
        raw = source.read_blob(layer.digest)
        out.append(Attestation(layer, parse_statement(raw, layer.digest), raw))
    return out
