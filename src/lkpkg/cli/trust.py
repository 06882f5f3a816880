"""Commands on signatures: sign, verify, keygen."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import click

from lkpkg.cli.common import (
    insecure_option,
    notrust_option,
    sign_key_option,
    timeout_option,
    trust_ca_option,
)
from lkpkg.errors import InputError
from lkpkg.pipeline.registries import RegistryPool
from lkpkg.pipeline.sign import dct_signer, plan_signing, sign_reference, verify_reference
from lkpkg.reference import Reference
from lkpkg.trust.backend import CosignBackend, DCTBackend, TrustBackend
from lkpkg.trust.config import DCTSettings
from lkpkg.trust.cosign import PASSPHRASE_ENV, generate_key_pair, load_public_key


@click.command()
@notrust_option
@sign_key_option()
@trust_ca_option
@insecure_option
@timeout_option
@click.argument("reference")
def sign(
    notrust: bool,
    sign_key: Path | None,
    trust_ca: Path | None,
    insecure: Sequence[str],
    timeout: float | None,
    reference: str,
) -> None:
    """Sign what the registry holds at REFERENCE (an index: its arch images too).

    \b
    The seed's separate "sign the manifest" step, for something already pushed.
    Example: DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE=... lkpkg sign linuxkit/init:4b825dc6
    """
    ref = Reference.parse(reference)
    plan = plan_signing(
        ref,
        dct=None if notrust else DCTSettings.from_environment(os.environ),
        sign_key=sign_key,
        cosign_passphrase=os.environ.get(PASSPHRASE_ENV),
        trust_ca=trust_ca,
    )
    if not plan.kinds:
        raise InputError("sign: nothing to sign with: --notrust and no --sign-key")
    registries = RegistryPool(insecure, os.environ, timeout=timeout)
    try:
        signed = sign_reference(plan, registries(ref.domain), ref)
    finally:
        registries.close()
    click.echo(f"signed {ref.familiar()} ({', '.join(plan.kinds)}): {len(signed)} manifests")


@click.command()
@notrust_option
@click.option(
    "--key",
    type=click.Path(path_type=Path, dir_okay=False),
    help="cosign public key to verify with.",
)
@click.option(
    "--attestations",
    is_flag=True,
    help="Also check each image's signed attestations (sha256-HEX.att, needs --key).",
)
@trust_ca_option
@insecure_option
@timeout_option
@click.argument("reference")
def verify(
    notrust: bool,
    key: Path | None,
    attestations: bool,
    trust_ca: Path | None,
    insecure: Sequence[str],
    timeout: float | None,
    reference: str,
) -> None:
    """Check REFERENCE before consuming it: exit 0 with a summary, or 1 naming the first mismatch.

    \b
    Docker Content Trust (unless --notrust): the digest the registry serves for the tag must
    be the signed target. With --key: a valid cosign signature for that key. For an index,
    every per-arch manifest too.
    With --attestations: every image's SBOM and provenance signed as `cosign attest`
    stores them (DSSE), about exactly that image digest.
    Example: lkpkg verify --key cosign.pub localhost:5000/wombat/hello:4b825dc6
    """
    if attestations and key is None:
        raise InputError("verify --attestations needs --key (the cosign public key)")
    ref = Reference.parse(reference)
    backends: list[TrustBackend] = []
    if not notrust:
        settings = DCTSettings.from_environment(os.environ)
        backends.append(DCTBackend(dct_signer(ref, settings, trust_ca)))
    if key is not None:
        backends.append(CosignBackend(public_key=load_public_key(key)))
    registries = RegistryPool(insecure, os.environ, timeout=timeout)
    try:
        summary = verify_reference(registries(ref.domain), ref, backends)
        if attestations and key is not None:
            from lkpkg.attest.dsse import verify_reference as verify_attestations

            checked = verify_attestations(
                registries(ref.domain),
                ref.name,
                ref.path,
                ref.digest or ref.tag or "latest",
                load_public_key(key),
            )
            kinds = sorted({k for v in checked for k in v.predicate_types})
            summary += f"; attestations of {len(checked)} images: {', '.join(kinds)}"
    finally:
        registries.close()
    click.echo(summary)


@click.command()
@click.option(
    "--output-key-prefix",
    default="cosign",
    show_default=True,
    help="Writes PREFIX.key and PREFIX.pub.",
)
def keygen(output_key_prefix: str) -> None:
    """Make an ECDSA P-256 key pair for cosign-compatible signatures.

    \b
    The private key is encrypted with $COSIGN_PASSWORD (cosign's own variable) and written
    with mode 0600; the public key is what consumers verify with (lkpkg verify, skopeo, cosign).

    \b
    Example:
      COSIGN_PASSWORD=$(pass show lkpkg/cosign) lkpkg keygen --output-key-prefix ~/.lkpkg/cosign
    """
    prefix = Path(output_key_prefix)
    generate_key_pair(
        prefix.with_name(prefix.name + ".key"),
        prefix.with_name(prefix.name + ".pub"),
        os.environ.get(PASSPHRASE_ENV),
    )
    click.echo(f"wrote {prefix}.key and {prefix}.pub")
