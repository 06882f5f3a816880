"""The trust policy of a consumer: what must verify before an image is pinned or pulled.

Docker Content Trust unless `--notrust`, a cosign signature for `--key` when given, both when
both are asked. Turning DCT off without a key leaves nothing checked, so it needs the explicit
`--insecure` (`InputError` otherwise): an unverified pin must be a decision, not an accident.
Verification itself is `lkpkg verify`'s (`pipeline.sign.verify_reference`): for an index, the
index and every per-arch manifest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from lkpkg.errors import InputError
from lkpkg.pipeline.sign import dct_signer, verify_reference
from lkpkg.reference import Reference
from lkpkg.registry.protocol import Registry
from lkpkg.trust.backend import CosignBackend, DCTBackend, TrustBackend
from lkpkg.trust.config import DCTSettings
from lkpkg.trust.cosign import load_public_key


@dataclass(frozen=True)
class TrustPolicy:
    """What the user asked for on the command line."""

    dct: bool = True
    key: Path | None = None
    insecure: bool = False
    trust_ca: Path | None = None

    def check(self, command: str) -> None:
        if not self.dct and self.key is None and not self.insecure:
            raise InputError(
                f"{command}: --notrust without --key would verify nothing;"
                " give --key cosign.pub, or --insecure to go ahead unverified"
            )

    @property
    def kinds(self) -> tuple[str, ...]:
        kinds = [k for k, on in (("content trust", self.dct), ("cosign", self.key)) if on]
        return tuple(kinds) if kinds else ("unverified",)


class Verifier:
    """Checks pinned references against a `TrustPolicy`; one DCT client per registry."""

    def __init__(
        self,
        policy: TrustPolicy,
        registry_for: Callable[[str], Registry],
        env: Mapping[str, str],
    ) -> None:
        self.policy = policy
        self._registry_for = registry_for
        self._env = dict(env)
        self._public: ec.EllipticCurvePublicKey | None = (
            load_public_key(policy.key) if policy.key is not None else None
        )
        self._settings = DCTSettings.from_environment(self._env)
        self._dct: dict[str, DCTBackend] = {}

    @property
    def checks_anything(self) -> bool:
        return self.policy.dct or self._public is not None

    def __call__(self, pinned: Reference) -> str:
        """Verify `pinned` (a reference with a digest); a one-line summary, or raise
        `VerificationFailed` naming the first mismatch."""
        if pinned.digest is None:
            raise InputError(f"{pinned.familiar()}: only a pinned reference can be verified")
        if not self.checks_anything:
            return f"{pinned.familiar()}: not verified (--insecure)"
        backends: list[TrustBackend] = []
        if self.policy.dct:
            dct = self._dct.get(pinned.domain)
            if dct is None:
                signer = dct_signer(pinned, self._settings, self.policy.trust_ca)
                dct = self._dct[pinned.domain] = DCTBackend(signer)
            backends.append(dct)
        if self._public is not None:
            backends.append(CosignBackend(public_key=self._public))
        return verify_reference(self._registry_for(pinned.domain), pinned, backends)
