"""One interface for every kind of signature: `TrustBackend` (sign, verify).

The push pipeline (`pipeline/sign.py`) holds a tuple of backends and hands each the same
`Tagged` items: the tags a push wrote, or an index and its arch images. A backend that signs
tags (Docker Content Trust: notary targets) ignores items without a tag; one that signs
digests (cosign) signs every distinct digest. Backends know the registry only through the
`Registry` protocol and never import the pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import ec

from lkpkg.errors import VerificationFailed
from lkpkg.oci.tagged import Tagged
from lkpkg.reference import Reference
from lkpkg.registry.protocol import Registry
from lkpkg.trust import cosign
from lkpkg.trust.dct import DCTSigner, Target


class TrustBackend(Protocol):
    """A kind of signature. `name` is how reports call it ("dct", "cosign"); `by_digest`
    says whether it can sign a manifest that has no tag of its own."""

    @property
    def name(self) -> str: ...

    @property
    def by_digest(self) -> bool: ...

    def sign(self, registry: Registry, reference: Reference, items: Sequence[Tagged]) -> None:
        """Sign `items` of the repository `reference` names."""

    def verify(self, registry: Registry, reference: Reference, items: Sequence[Tagged]) -> str:
        """Raise `VerificationFailed` at the first item not validly signed; else the name
        of the check for the summary."""


class DCTBackend:
    """Docker Content Trust: each tag a signed notary target of the repository's GUN."""

    name = "dct"
    by_digest = False

    def __init__(self, signer: DCTSigner) -> None:
        self.signer = signer

    def __repr__(self) -> str:
        return f"DCTBackend({self.signer!r})"

    def sign(self, registry: Registry, reference: Reference, items: Sequence[Tagged]) -> None:
        targets = [Target(i.tag, i.digest, i.size) for i in items if i.tag]
        if targets:
            self.signer.sign(reference.name, targets)

    def verify(self, registry: Registry, reference: Reference, items: Sequence[Tagged]) -> str:
        signed = self.signer.list_targets(reference.name)
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
                    f"(no trust data for this tag at {self.signer.config.server})"
                )
            if target.digest != item.digest:
                raise VerificationFailed(
                    f"{reference.name}:{item.tag}: the registry serves {item.digest} "
                    f"but the signed target is {target.digest}"
                )
        return "content trust"


class CosignBackend:
    """cosign-compatible signatures stored in the registry; a private key to sign, a public
    key to verify (either may be absent for a backend that only does the other)."""

    name = "cosign"
    by_digest = True

    def __init__(
        self,
        private_key: ec.EllipticCurvePrivateKey | None = None,
        public_key: ec.EllipticCurvePublicKey | None = None,
    ) -> None:
        self._private = private_key
        self._public = public_key or (private_key.public_key() if private_key else None)

    def __repr__(self) -> str:
        return "CosignBackend()"

    def sign(self, registry: Registry, reference: Reference, items: Sequence[Tagged]) -> None:
        if self._private is None:
            raise ValueError("a cosign backend without a private key cannot sign")
        for digest in dict.fromkeys(i.digest for i in items):
            cosign.sign(registry, reference.name, reference.path, digest, self._private)

    def verify(self, registry: Registry, reference: Reference, items: Sequence[Tagged]) -> str:
        if self._public is None:
            raise ValueError("a cosign backend without a public key cannot verify")
        for item in items:
            cosign.verify(registry, reference.name, reference.path, item.digest, self._public)
        return "cosign"
