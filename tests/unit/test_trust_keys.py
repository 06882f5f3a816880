"""Key files of a trust dir: headers, and whether a passphrase unlocks a key (preflight)."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lkpkg.trust.keys import local_keys, unlocks

# A targets key written by Debian's notary 0.7 (`notary init`), passphrase "repopw": PBES2
# (PBKDF2-HMAC-SHA1, AES-256-CBC) around a version-1 PrivateKeyInfo, which cryptography's
# own loader refuses. A throw-away key made for this test.
NOTARY_TARGETS_KEY = """-----BEGIN ENCRYPTED PRIVATE KEY-----
gun: example.com/a/b
role: targets

MIHuMEkGCSqGSIb3DQEFDTA8MBsGCSqGSIb3DQEFDDAOBAjwcIdCU471CAICCAAw
HQYJYIZIAWUDBAEqBBBIuLq35tZOZ0Diobs17aOrBIGgu9ExEA4vhRnJ2U7juckk
cWOLBzG7SzWZ3nGcIobYJ1qMZe/4/AIDAb55KDtqjygY1LxZ8fIgagSkP7eaGKMH
GXCmpEKSGabvrDvAjOdUNcn4T0To6dR5C+qDL2TC9kysQU5Egx6XMEK3DkJ/9/8W
mvkdRpW1w7xI1SOpB0s5K4H3u5Mci2JTMEnXnaqTOZerNZFgsCmV1OGZ1AsxbA+d
Bw==
-----END ENCRYPTED PRIVATE KEY-----
"""
KEY_ID = "168a44a0f182e5399c5e4bfd8855b31f7b109c018451acd05eaa3efed43c2faf"


def write_key(trust_dir: Path, name: str, text: str) -> Path:
    path = trust_dir / "private" / f"{name}.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_notary_key_unlocks_with_its_passphrase_only(tmp_path):
    path = write_key(tmp_path, KEY_ID, NOTARY_TARGETS_KEY)
    assert unlocks(path, "repopw") is True
    assert unlocks(path, "repopw ") is False
    assert unlocks(path, "") is False
    (key,) = local_keys(tmp_path)
    assert (key.role, key.gun, key.key_id) == ("targets", "example.com/a/b", KEY_ID)


def test_a_pbes2_key_with_another_prf_and_a_root_header(tmp_path):
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"root-secret"),
        )
        .decode()
    )
    first, rest = pem.split("\n", 1)
    path = write_key(tmp_path, "r" * 64, f"{first}\nrole: root\n\n{rest}")
    assert unlocks(path, "root-secret") is True
    assert unlocks(path, "wrong") is False
    assert [k.role for k in local_keys(tmp_path)] == ["root"]


def test_a_key_in_another_format_is_left_to_notary(tmp_path):
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.BestAvailableEncryption(b"x"),
        )
        .decode()
    )
    assert unlocks(write_key(tmp_path, "legacy", pem), "x") is None
    assert unlocks(write_key(tmp_path, "garbage", "not a key"), "x") is None
    assert unlocks(tmp_path / "absent.key", "x") is None
    assert local_keys(tmp_path / "nowhere") == []
