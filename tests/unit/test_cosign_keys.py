"""cosign-compatible keys and payloads: the parts that need no registry."""

from __future__ import annotations

import json
import stat

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from lkpkg.errors import InputError
from lkpkg.trust import cosign

SECRET = "correct horse battery staple"


def test_keygen_writes_an_encrypted_0600_private_key_and_a_public_pem(tmp_path):
    private, public = tmp_path / "cosign.key", tmp_path / "cosign.pub"
    cosign.generate_key_pair(private, public, SECRET)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert SECRET not in private.read_text()
    key = cosign.load_private_key(private, SECRET)
    pub = cosign.load_public_key(public)
    signature = key.sign(b"data", ec.ECDSA(hashes.SHA256()))
    pub.verify(signature, b"data", ec.ECDSA(hashes.SHA256()))


def test_keygen_needs_the_passphrase_and_never_overwrites(tmp_path):
    private, public = tmp_path / "cosign.key", tmp_path / "cosign.pub"
    with pytest.raises(InputError, match="set COSIGN_PASSWORD"):
        cosign.generate_key_pair(private, public, None)
    assert not private.exists()
    cosign.generate_key_pair(private, public, SECRET)
    before = private.read_bytes()
    with pytest.raises(InputError, match="refusing to overwrite"):
        cosign.generate_key_pair(private, public, SECRET)
    assert private.read_bytes() == before


def test_wrong_passphrase_is_one_line_without_the_secret(tmp_path):
    private, public = tmp_path / "cosign.key", tmp_path / "cosign.pub"
    cosign.generate_key_pair(private, public, SECRET)
    with pytest.raises(InputError) as caught:
        cosign.load_private_key(private, "not " + SECRET)
    message = str(caught.value)
    assert "wrong COSIGN_PASSWORD" in message
    assert SECRET not in message and "\n" not in message


def test_payload_names_repository_and_digest_like_cosign():
    digest = "sha256:" + "ab" * 32
    doc = json.loads(cosign.payload("127.0.0.1:5000/wombat/hello", digest))
    assert doc == {
        "critical": {
            "identity": {"docker-reference": "127.0.0.1:5000/wombat/hello"},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": None,
    }


def test_signature_tag():
    assert cosign.signature_tag("sha256:" + "0f" * 32) == "sha256-" + "0f" * 32 + ".sig"
