"""Signing what a push wrote, signing what a registry holds, and verifying before use.

Two kinds of signature, side by side:
- Docker Content Trust (notary): tags are signed targets (digest + size) in the trust data of
  the repository's GUN; `docker pull` with DOCKER_CONTENT_TRUST=1 is the consumer.
- cosign-compatible: each manifest digest gets a signature under `sha256-HEX.sig`; skopeo's
  `sigstoreSigned` policy and cosign are the consumers.

`plan_signing` runs before anything is pushed, so a missing passphrase or an unreachable trust
server fails first and costs nothing. Verification of an index covers every per-arch
manifest it names: a consumer pulling one platform trusts that platform's image, not the
index alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from lkpkg.errors import InputError, NameUnknown, VerificationFailed
from lkpkg.oci import mediatypes
from lkpkg.oci.model import ImageIndex, parse_manifest_bytes
from lkpkg.pipeline.publish import Registry
from lkpkg.reference import Reference
from lkpkg.trust import cosign
from lkpkg.trust.dct import DCTSigner, Target, TrustConfig, check_passphrases


@dataclass(frozen=True)
class Signable:
    """A tag a push wrote, with the digest and size of what it names."""

    tag: str
    digest: str
    size: int


@dataclass(frozen=True)
class SigningPlan:
    dct: DCTSigner | None = None
    cosign_key: ec.EllipticCurvePrivateKey | None = None

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(
            k for k, on in (("dct", self.dct), ("cosign", self.cosign_key)) if on is not None
        )


def plan_signing(
    reference: Reference,
    *,
    dct: bool,
    sign_key: Path | None,
    env: Mapping[str, str] | None = None,
    trust_ca: Path | None = None,
) -> SigningPlan:
    """Check, before any push, that signing can happen: passphrases set, keys readable."""
    env = os.environ if env is None else env
    signer = None
    if dct:
        signer = DCTSigner(TrustConfig.for_registry(reference.domain, env, trust_ca), env)
        # Cheap check first: no repository passphrase means no signing, whatever the server.
        check_passphrases(env, may_need_root=False)
        check_passphrases(env, may_need_root=not signer.repository_exists(reference.name))
    key = cosign.load_private_key(sign_key, env) if sign_key is not None else None
    return SigningPlan(signer, key)


def sign_items(
    plan: SigningPlan, registry: Registry, reference: Reference, items: Sequence[Signable]
) -> None:
    """Sign every tag in `items` (DCT) and every distinct digest among them (cosign)."""
    if not items:
        return
    if plan.dct is not None:
        plan.dct.sign(reference.name, [Target(i.tag, i.digest, i.size) for i in items])
    if plan.cosign_key is not None:
        for digest in dict.fromkeys(i.digest for i in items):
            cosign.sign(registry, reference.name, reference.path, digest, plan.cosign_key)


def _resolve(registry: Registry, reference: Reference) -> tuple[str, str, int]:
    ref = reference.digest or reference.tag or "latest"
    head = registry.head_manifest(reference.path, ref)
    if head is None:
        raise NameUnknown(f"{reference.familiar()}: not in the registry")
    return head[0], head[1], head[2]


def _members(
    registry: Registry, reference: Reference, digest: str, media_type: str
) -> list[Signable]:
    """The tag itself and, for an index, each per-arch manifest under its TAG-ARCH name."""
    tag = reference.tag or ""
    head = registry.head_manifest(reference.path, digest)
    items = [Signable(tag, digest, head[2] if head else 0)]
    if media_type not in mediatypes.INDEX_TYPES:
        return items
    body, _, _ = registry.get_manifest(reference.path, digest)
    index = parse_manifest_bytes(body)
    if isinstance(index, ImageIndex):
        for child in index.manifests:
            arch = child.platform.architecture if child.platform else "unknown"
            items.append(Signable(f"{tag}-{arch}" if tag else "", child.digest, child.size))
    return items


def sign_reference(plan: SigningPlan, registry: Registry, reference: Reference) -> list[Signable]:
    """Sign what the registry holds at `reference` (an index: its arch images too)."""
    if reference.tag is None:
        raise InputError(f"sign: '{reference}' must name a tag")
    digest, media_type, _ = _resolve(registry, reference)
    items = _members(registry, reference, digest, media_type)
    # Only arch tags that really name the index's children are signed as such.
    signable = [items[0]]
    for item in items[1:]:
        head = registry.head_manifest(reference.path, item.tag)
        if head is not None and head[0] == item.digest:
            signable.append(item)
        elif plan.cosign_key is not None:
            signable.append(Signable("", item.digest, item.size))
    dct_items = [i for i in signable if i.tag]
    if plan.dct is not None and dct_items:
        plan.dct.sign(reference.name, [Target(i.tag, i.digest, i.size) for i in dct_items])
    if plan.cosign_key is not None:
        for digest_ in dict.fromkeys(i.digest for i in signable):
            cosign.sign(registry, reference.name, reference.path, digest_, plan.cosign_key)
    return signable


def verify_reference(
    registry: Registry,
    reference: Reference,
    *,
    dct: DCTSigner | None,
    public_key: ec.EllipticCurvePublicKey | None,
) -> str:
    """A one-line summary when every check passes; VerificationFailed at the first mismatch."""
    if dct is None and public_key is None:
        raise InputError(
            "verify: nothing to verify with: Docker Content Trust is off and no --key given"
        )
    digest, media_type, _ = _resolve(registry, reference)
    items = _members(registry, reference, digest, media_type)
    checks: list[str] = []
    if dct is not None:
        signed = dct.list_targets(reference.name)
        by_digest = {t.digest for t in signed.values()}
        for item in items:
            if not item.tag:
                if item.digest not in by_digest:
                    raise VerificationFailed(f"{reference.name}@{item.digest}: not a signed target")
                continue
            target = signed.get(item.tag)
            if target is None:
                raise VerificationFailed(
                    f"{reference.name}:{item.tag}: not signed "
                    f"(no trust data for this tag at {dct.config.server})"
                )
            if target.digest != item.digest:
                raise VerificationFailed(
                    f"{reference.name}:{item.tag}: the registry serves {item.digest} "
                    f"but the signed target is {target.digest}"
                )
        checks.append("content trust")
    if public_key is not None:
        for item in items:
            cosign.verify(registry, reference.name, reference.path, item.digest, public_key)
        checks.append("cosign")
    kind = f"index of {len(items) - 1} images" if len(items) > 1 else "image"
    return f"verified {reference.familiar()} {digest} ({kind}): {', '.join(checks)}"
