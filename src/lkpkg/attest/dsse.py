"""Signed attestations the way `cosign attest --key` stores them.

For an image `sha256:HEX` in repository R, the tag `R:sha256-HEX.att` (beside cosign's
`.sig`) holds an OCI manifest whose layers are DSSE envelopes
(`application/vnd.dsse.envelope.v1+json`): `payloadType` `application/vnd.in-toto+json`, the
statement base64-encoded as `payload`, and ECDSA-SHA256 signatures over DSSE's
pre-authentication encoding `DSSEv1 <len> <type> <len> <payload>`. Each layer is annotated
with `predicateType`, as cosign does. Keys are cosign's (lkpkg.trust.cosign).

Verification checks, per layer: the signature over the PAE with the given key, the payload
type, that the statement's subject is exactly the image digest, and that its predicate type
is the one the annotation claims. One bad layer fails the whole verification.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from lkpkg.attest.intoto import Statement, parse_statement
from lkpkg.attest.store import BlobReader, attestation_for, read_attestations
from lkpkg.cache.layout import Cache
from lkpkg.errors import FormatError, VerificationFailed
from lkpkg.oci import mediatypes
from lkpkg.oci.digest import sha256_digest
from lkpkg.oci.model import (
    Descriptor,
    ImageIndex,
    ImageManifest,
    canonical_bytes,
    parse_manifest_bytes,
)
from lkpkg.reference import Reference
from lkpkg.registry.protocol import Registry
from lkpkg.trust.cosign import (
    SIGNATURE_ANNOTATION,
    artefact_config,
    artefact_tag,
    existing_layers,
)

DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_ANNOTATION = "predicateType"


def attestation_tag(digest: str) -> str:
    """`sha256:HEX` → `sha256-HEX.att`, where cosign keeps an image's attestations."""
    return artefact_tag(digest, "att")


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what is signed, never the JSON envelope."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def envelope(statement: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    signature = key.sign(pae(PAYLOAD_TYPE, statement), ec.ECDSA(hashes.SHA256()))
    doc = {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(statement).decode(),
        "signatures": [{"keyid": "", "sig": base64.b64encode(signature).decode()}],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def sign_statements(
    registry: Registry,
    repo: str,
    image_digest: str,
    statements: Sequence[tuple[str, bytes]],
    key: ec.EllipticCurvePrivateKey,
) -> str:
    """Write `sha256-HEX.att` for `image_digest`: one envelope per (predicate type, statement).

    An existing envelope of another predicate type is kept; one of the same type is replaced,
    so re-signing after a rebuild leaves one current attestation per type. Returns the tag.
    """
    tag = attestation_tag(image_digest)
    replaced = {kind for kind, _ in statements}
    layers = [
        layer
        for layer in existing_layers(registry, repo, tag, DSSE_ENVELOPE)
        if (layer.annotations or {}).get(PREDICATE_ANNOTATION) not in replaced
    ]
    for kind, statement in statements:
        body = envelope(statement, key)
        digest = sha256_digest(body)
        registry.upload_blob(repo, digest, len(body), lambda body=body: io.BytesIO(body))  # type: ignore[misc]
        layers.append(
            Descriptor(
                DSSE_ENVELOPE,
                digest,
                len(body),
                annotations={PREDICATE_ANNOTATION: kind, SIGNATURE_ANNOTATION: ""},
            )
        )
    config = artefact_config(layers)
    config_digest = sha256_digest(config)
    registry.upload_blob(repo, config_digest, len(config), lambda: io.BytesIO(config))
    manifest = ImageManifest(
        config=Descriptor(mediatypes.OCI_CONFIG, config_digest, len(config)), layers=tuple(layers)
    )
    registry.put_manifest(repo, tag, canonical_bytes(manifest.to_json()), mediatypes.OCI_MANIFEST)
    return tag


def sign_cached(
    registry: Registry,
    repo: str,
    cache: BlobReader,
    index: ImageIndex,
    image_digest: str,
    key: ec.EllipticCurvePrivateKey,
) -> str | None:
    """Sign the attestations the cache's `index` holds for `image_digest`; None if it has none."""
    entry = attestation_for(index, image_digest)
    if entry is None:
        return None
    found = read_attestations(cache, entry.digest)
    if not found:
        return None
    return sign_statements(
        registry, repo, image_digest, [(a.statement.predicate_type, a.raw) for a in found], key
    )


@dataclass(frozen=True)
class Verified:
    image_digest: str
    predicate_types: tuple[str, ...]


def _opened(body: bytes, public: ec.EllipticCurvePublicKey, where: str) -> Statement:
    try:
        doc = json.loads(body)
        payload_type = doc["payloadType"]
        payload = base64.b64decode(doc["payload"], validate=True)
        signatures = [base64.b64decode(s["sig"], validate=True) for s in doc["signatures"]]
    except (ValueError, KeyError, TypeError):
        raise VerificationFailed(f"{where}: not a DSSE envelope") from None
    if payload_type != PAYLOAD_TYPE:
        raise VerificationFailed(f"{where}: payload type {payload_type}, not {PAYLOAD_TYPE}")
    for signature in signatures:
        try:
            public.verify(signature, pae(payload_type, payload), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            continue
        try:
            return parse_statement(payload, where)
        except FormatError as e:
            raise VerificationFailed(str(e)) from None
    raise VerificationFailed(f"{where}: signature does not verify with the given key")


def verify_attestations(
    registry: Registry,
    repo_name: str,
    repo: str,
    image_digest: str,
    public: ec.EllipticCurvePublicKey,
    required: Sequence[str] = (),
) -> Verified:
    """Every envelope under `sha256-HEX.att` must verify and be about `image_digest`; the
    predicate types in `required` must all be among them."""
    tag = attestation_tag(image_digest)
    layers = existing_layers(registry, repo, tag, DSSE_ENVELOPE)
    if not layers:
        raise VerificationFailed(f"{repo_name}@{image_digest}: no signed attestations ({tag})")
    kinds: list[str] = []
    for layer in layers:
        where = f"{repo_name}:{tag} layer {layer.digest}"
        sink = io.BytesIO()
        registry.get_blob(repo, layer.digest, sink)  # checks the blob's digest
        statement = _opened(sink.getvalue(), public, where)
        if statement.subject_digest != image_digest:
            raise VerificationFailed(
                f"{where}: the statement is about {statement.subject_digest}, not {image_digest}"
            )
        claimed = (layer.annotations or {}).get(PREDICATE_ANNOTATION)
        if claimed != statement.predicate_type:
            raise VerificationFailed(
                f"{where}: annotated {claimed}, but the statement's type is "
                f"{statement.predicate_type}"
            )
        kinds.append(statement.predicate_type)
    missing = [kind for kind in required if kind not in kinds]
    if missing:
        raise VerificationFailed(f"{repo_name}@{image_digest}: no signed {', '.join(missing)}")
    return Verified(image_digest, tuple(kinds))


def verify_reference(
    registry: Registry,
    repo_name: str,
    repo: str,
    ref: str,
    public: ec.EllipticCurvePublicKey,
    required: Sequence[str] = (),
) -> list[Verified]:
    """Signed attestations of every platform image `ref` (a tag or digest) names."""
    body, _, digest = registry.get_manifest(repo, ref)
    parsed = parse_manifest_bytes(body)
    if isinstance(parsed, ImageManifest):
        images = [digest]
    else:
        images = [
            m.digest
            for m in parsed.manifests
            if m.media_type in mediatypes.MANIFEST_TYPES
            and not (m.platform is not None and m.platform.architecture == "unknown")
        ]
    return [
        verify_attestations(registry, repo_name, repo, image, public, required) for image in images
    ]


def sign_package_attestations(
    registry: Registry,
    cache: Cache,
    reference: Reference,
    digests: Sequence[str],
    key: ec.EllipticCurvePrivateKey,
) -> list[str]:
    """cosign-attest what the cache's index for `reference` attests of the images `digests`
    (a push's written digests: arch images, the index, releases; others are passed over)."""
    top = cache.resolve(str(reference))
    index = cache.read_manifest(top.digest) if top is not None else None
    if not isinstance(index, ImageIndex):
        return []
    tags = []
    for digest in dict.fromkeys(digests):
        tag = sign_cached(registry, reference.path, cache, index, digest, key)
        if tag is not None:
            tags.append(tag)
    return tags
