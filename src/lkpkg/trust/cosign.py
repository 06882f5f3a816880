"""cosign-compatible signatures, stored in the registry the way cosign stores them.

Layout (cosign's "sig" attachment): for a manifest `sha256:HEX` in repository R, the tag
`R:sha256-HEX.sig` holds an OCI image manifest whose layers are simple-signing payloads
(`application/vnd.dev.cosign.simplesigning.v1+json`), each carrying its base64 ECDSA-SHA256
signature in the annotation `dev.cosignproject.cosign/signature`. The payload names the
repository (`critical.identity.docker-reference`) and the signed manifest digest
(`critical.image.docker-manifest-digest`), so a signature cannot be replayed onto another
repository or another digest. Signing again appends a layer; an identical signature is not
added twice. skopeo/containers-image (`sigstoreSigned` policies) and cosign read this layout.

Keys: ECDSA P-256. The private key is PKCS#8 PEM encrypted with a passphrase (the CLI reads
it from `COSIGN_PASSWORD`, cosign's own variable, and passes it here as a value), written
with mode 0600; the public key is a PEM SubjectPublicKeyInfo, the form cosign and skopeo take
with `--key`/`keyPath`. The registry is anything with the `lkpkg.registry.protocol.Registry`
operations: this module knows nothing of the push pipeline.
"""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lkpkg.errors import InputError, VerificationFailed
from lkpkg.oci import mediatypes
from lkpkg.oci.digest import sha256_digest
from lkpkg.oci.model import Descriptor, ImageManifest, canonical_bytes, parse_manifest_bytes
from lkpkg.registry.protocol import Registry

PASSPHRASE_ENV = "COSIGN_PASSWORD"  # noqa: S105 - the name of a variable, not a secret
SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIGNATURE_TYPE = "cosign container image signature"


def artefact_tag(digest: str, suffix: str) -> str:
    """`sha256:HEX` → `sha256-HEX.SUFFIX`: where cosign keeps what it stores of a manifest
    (`sig` signatures, `att` attestations)."""
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}-{hexpart}.{suffix}"


def signature_tag(digest: str) -> str:
    """`sha256:HEX` → `sha256-HEX.sig`, the tag cosign keeps a manifest's signatures under."""
    return artefact_tag(digest, "sig")


def _passphrase(passphrase: str | None) -> bytes:
    if passphrase is None:
        raise InputError(f"set {PASSPHRASE_ENV} to the signing key's passphrase")
    return passphrase.encode()


def generate_key_pair(private_path: Path, public_path: Path, passphrase: str | None) -> None:
    """Write a new ECDSA P-256 key pair; refuses to overwrite an existing private key.
    `passphrase` None (unset) is refused; "" writes an unencrypted key, as cosign does."""
    secret = _passphrase(passphrase)
    if private_path.exists():
        raise InputError(f"{private_path}: exists; refusing to overwrite a private key")
    key = ec.generate_private_key(ec.SECP256R1())
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(secret) if secret else serialization.NoEncryption()
    )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # O_EXCL + 0600 from the start: the key is never readable by others, not even briefly.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_pem)
    public_path.write_bytes(public_pem)


def load_private_key(path: Path, passphrase: str | None) -> ec.EllipticCurvePrivateKey:
    """The signing key in `path`, decrypted with `passphrase` ($COSIGN_PASSWORD; None: unset)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read signing key ({exc.strerror})") from exc
    encrypted = b"ENCRYPTED" in data.split(b"\n", 1)[0]
    secret = _passphrase(passphrase) if encrypted else None
    try:
        key = serialization.load_pem_private_key(data, password=secret or None)
    except (ValueError, TypeError) as exc:
        # cryptography's message may quote nothing secret, but keep ours fixed anyway.
        raise InputError(
            f"{path}: cannot load signing key (wrong {PASSPHRASE_ENV}, or not a PEM key)",
            hint=f"set {PASSPHRASE_ENV} to the passphrase the key was made with",
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InputError(f"{path}: not an ECDSA key")
    return key


def load_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise InputError(f"{path}: cannot read public key ({exc.strerror})") from exc
    except ValueError as exc:
        raise InputError(f"{path}: not a PEM public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InputError(f"{path}: not an ECDSA public key")
    return key


def payload(docker_reference: str, digest: str) -> bytes:
    """The simple-signing payload cosign signs for `digest` in repository `docker_reference`."""
    doc = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": None,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def artefact_config(layers: Sequence[Descriptor]) -> bytes:
    """The minimal config of cosign's signature and attestation images: its diff_ids are the
    layers' digests."""
    config = {
        "architecture": "",
        "os": "",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in layers]},
    }
    return canonical_bytes(config)


@dataclass(frozen=True)
class Signed:
    digest: str
    tag: str
    added: bool


def sign(
    registry: Registry,
    repo_name: str,
    repo: str,
    digest: str,
    key: ec.EllipticCurvePrivateKey,
) -> Signed:
    """Sign manifest `digest` of `repo` (`repo_name`: full `host/path`) into `sha256-HEX.sig`."""
    body = payload(repo_name, digest)
    body_digest = sha256_digest(body)
    signature = base64.b64encode(key.sign(body, ec.ECDSA(hashes.SHA256()))).decode()
    tag = signature_tag(digest)
    layers = existing_layers(registry, repo, tag, SIMPLESIGNING)
    for layer in layers:
        if layer.digest == body_digest and _verifies(key.public_key(), body, layer):
            return Signed(digest, tag, added=False)  # ECDSA is randomised: keep the first one
    registry.upload_blob(repo, body_digest, len(body), lambda: io.BytesIO(body))
    layers.append(
        Descriptor(
            SIMPLESIGNING, body_digest, len(body), annotations={SIGNATURE_ANNOTATION: signature}
        )
    )
    config = artefact_config(layers)
    config_digest = sha256_digest(config)
    registry.upload_blob(repo, config_digest, len(config), lambda: io.BytesIO(config))
    manifest = ImageManifest(
        config=Descriptor(mediatypes.OCI_CONFIG, config_digest, len(config)), layers=tuple(layers)
    )
    registry.put_manifest(repo, tag, canonical_bytes(manifest.to_json()), mediatypes.OCI_MANIFEST)
    return Signed(digest, tag, added=True)


def existing_layers(registry: Registry, repo: str, tag: str, media_type: str) -> list[Descriptor]:
    """The `media_type` layers of the artefact image `repo:tag` (none when it is absent)."""
    if registry.head_manifest(repo, tag) is None:
        return []
    data, _, _ = registry.get_manifest(repo, tag)
    parsed = parse_manifest_bytes(data)
    if not isinstance(parsed, ImageManifest):
        return []
    return [layer for layer in parsed.layers if layer.media_type == media_type]


def _verifies(public: ec.EllipticCurvePublicKey, body: bytes, layer: Descriptor) -> bool:
    encoded = (layer.annotations or {}).get(SIGNATURE_ANNOTATION)
    if not encoded:
        return False
    try:
        public.verify(base64.b64decode(encoded, validate=True), body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def verify(
    registry: Registry,
    repo_name: str,
    repo: str,
    digest: str,
    public: ec.EllipticCurvePublicKey,
) -> None:
    """Pass when some signature under `sha256-HEX.sig` is valid for `public`, this repository
    and exactly `digest`; else raise VerificationFailed naming what was wrong."""
    tag = signature_tag(digest)
    layers = existing_layers(registry, repo, tag, SIMPLESIGNING)
    if not layers:
        raise VerificationFailed(f"{repo_name}@{digest}: no cosign signature ({tag} missing)")
    reasons: list[str] = []
    for layer in layers:
        sink = io.BytesIO()
        registry.get_blob(repo, layer.digest, sink)  # verifies the payload's digest
        body = sink.getvalue()
        if not _verifies(public, body, layer):
            reasons.append("signature does not verify with the given key")
            continue
        try:
            critical = json.loads(body)["critical"]
            named_ref = critical["identity"]["docker-reference"]
            named_digest = critical["image"]["docker-manifest-digest"]
        except (ValueError, KeyError, TypeError):
            reasons.append("payload is not a simple-signing document")
            continue
        if named_digest != digest:
            reasons.append(f"signature is for {named_digest}")
            continue
        if named_ref != repo_name:
            reasons.append(f"signature is for repository {named_ref}")
            continue
        return
    raise VerificationFailed(
        f"{repo_name}@{digest}: no valid cosign signature ({'; '.join(sorted(set(reasons)))})"
    )
