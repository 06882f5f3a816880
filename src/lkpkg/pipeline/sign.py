"""Signing what a push wrote, signing what a registry holds, and verifying before use.

The kinds of signature are `lkpkg.trust.backend.TrustBackend`s, composed here:
- Docker Content Trust (notary): tags are signed targets (digest + size) in the trust data of
  the repository's GUN; `docker pull` with DOCKER_CONTENT_TRUST=1 is the consumer.
- cosign-compatible: each manifest digest gets a signature under `sha256-HEX.sig`; skopeo's
  `sigstoreSigned` policy and cosign are the consumers.

`plan_signing` is the preflight: it runs before anything is pushed, so a missing or wrong
passphrase, a locked key or an unreachable trust server fails first and costs nothing.
Signed means every arch: signing an index signs every arch image it lists, under its
`TAG-ARCH` name, whoever pushed it, so `verify` passes right after a signed push. Verification
of an index covers every per-arch manifest it names: a consumer pulling one platform trusts
that platform's image, not the index alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lkpkg.attest.store import is_attestation
from lkpkg.errors import InputError, NameUnknown, TrustError
from lkpkg.oci import mediatypes
from lkpkg.oci.model import ImageIndex, parse_manifest_bytes
from lkpkg.oci.tagged import Tagged
from lkpkg.reference import Reference
from lkpkg.registry.protocol import Registry
from lkpkg.trust import cosign
from lkpkg.trust.backend import CosignBackend, DCTBackend, TrustBackend
from lkpkg.trust.config import DCTSettings, TrustConfig
from lkpkg.trust.dct import DCTSigner
from lkpkg.trust.preflight import check_ready


@dataclass(frozen=True)
class SigningPlan:
    """The backends a push signs with, each checked ready by `plan_signing`."""

    backends: tuple[TrustBackend, ...] = ()

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(backend.name for backend in self.backends)

    @property
    def by_digest(self) -> bool:
        return any(backend.by_digest for backend in self.backends)


def dct_signer(
    reference: Reference, settings: DCTSettings, trust_ca: Path | None = None
) -> DCTSigner:
    """The Docker Content Trust signer for `reference`'s repository, as docker finds it."""
    return DCTSigner(TrustConfig.for_registry(reference.domain, settings, trust_ca), settings)


def plan_signing(
    reference: Reference,
    *,
    dct: DCTSettings | None,
    sign_key: Path | None,
    cosign_passphrase: str | None = None,
    trust_ca: Path | None = None,
) -> SigningPlan:
    """The preflight of a signed push: check, before anything is pushed, that every signature
    asked for can be made (`lkpkg.trust.preflight.check_ready` for DCT, the cosign key
    unlocked by its passphrase). `dct` None: no Docker Content Trust."""
    backends: list[TrustBackend] = []
    if dct is not None:
        signer = dct_signer(reference, dct, trust_ca)
        check_ready(signer, reference.name)
        backends.append(DCTBackend(signer))
    if sign_key is not None:
        backends.append(CosignBackend(cosign.load_private_key(sign_key, cosign_passphrase)))
    return SigningPlan(tuple(backends))


def sign_items(
    plan: SigningPlan, registry: Registry, reference: Reference, items: Sequence[Tagged]
) -> None:
    """Sign every item with every backend; an index among them brings its arch images."""
    if not items or not plan.backends:
        return
    expanded: dict[tuple[str, str], Tagged] = {}
    for item in items:
        for member in _index_members(registry, reference, item):
            expanded.setdefault((member.tag, member.digest), member)
    for backend in plan.backends:
        backend.sign(registry, reference, list(expanded.values()))


def _index_members(registry: Registry, reference: Reference, item: Tagged) -> list[Tagged]:
    """`item` and, when it is an index, every arch image it lists as `TAG-ARCH`. An index
    whose arch tag names other content than the index lists is refused: signing it would
    leave a signed index with an arch `verify` rejects."""
    head = registry.head_manifest(reference.path, item.digest) if item.tag else None
    if head is None or head[1] not in mediatypes.INDEX_TYPES:
        return [item]
    members = [item]
    for child in _members(registry, reference.with_tag(item.tag), item.digest, head[1])[1:]:
        arch_head = registry.head_manifest(reference.path, child.tag) if child.tag else None
        if arch_head is not None and arch_head[0] != child.digest:
            raise TrustError(
                f"{reference.name}:{item.tag} lists {child.digest} for {child.tag}, but"
                f" {child.tag} is {arch_head[0]} now; not signing an index with an arch"
                " that would not verify",
                hint="another push changed the arch tag meanwhile: push again",
            )
        members.append(child)
    return members


def _resolve(registry: Registry, reference: Reference) -> tuple[str, str, int]:
    ref = reference.digest or reference.tag or "latest"
    head = registry.head_manifest(reference.path, ref)
    if head is None:
        raise NameUnknown(f"{reference.familiar()}: not in the registry")
    return head[0], head[1], head[2]


def _members(
    registry: Registry, reference: Reference, digest: str, media_type: str
) -> list[Tagged]:
    """The tag itself and, for an index, each per-arch manifest under its TAG-ARCH name.
    Attestation manifests (SBOM, provenance) beside the arch images are not members: no tag
    names them and no platform pulls them; the index's own signature covers their digests."""
    tag = reference.tag or ""
    head = registry.head_manifest(reference.path, digest)
    items = [Tagged(tag, digest, head[2] if head else 0)]
    if media_type not in mediatypes.INDEX_TYPES:
        return items
    body, _, _ = registry.get_manifest(reference.path, digest)
    index = parse_manifest_bytes(body)
    if isinstance(index, ImageIndex):
        for child in index.manifests:
            if is_attestation(child):
                continue
            arch = child.platform.architecture if child.platform else "unknown"
            items.append(Tagged(f"{tag}-{arch}" if tag else "", child.digest, child.size))
    return items


def sign_reference(plan: SigningPlan, registry: Registry, reference: Reference) -> list[Tagged]:
    """Sign what the registry holds at `reference` (an index: its arch images too)."""
    if reference.tag is None:
        raise InputError(f"sign: '{reference}' must name a tag")
    digest, media_type, _ = _resolve(registry, reference)
    items = _members(registry, reference, digest, media_type)
    # Only arch tags that really name the index's children are signed as such; the others
    # only by a backend that signs digests.
    signable = [items[0]]
    for item in items[1:]:
        head = registry.head_manifest(reference.path, item.tag)
        if head is not None and head[0] == item.digest:
            signable.append(item)
        elif plan.by_digest:
            signable.append(Tagged("", item.digest, item.size))
    for backend in plan.backends:
        backend.sign(registry, reference, signable)
    return signable


def verify_reference(
    registry: Registry, reference: Reference, backends: Sequence[TrustBackend]
) -> str:
    """A one-line summary when every check passes; VerificationFailed at the first mismatch."""
    if not backends:
        raise InputError(
            "verify: nothing to verify with: Docker Content Trust is off and no --key given"
        )
    digest, media_type, _ = _resolve(registry, reference)
    items = _members(registry, reference, digest, media_type)
    checks = [backend.verify(registry, reference, items) for backend in backends]
    kind = f"index of {len(items) - 1} images" if len(items) > 1 else "image"
    return f"verified {reference.familiar()} {digest} ({kind}): {', '.join(checks)}"
