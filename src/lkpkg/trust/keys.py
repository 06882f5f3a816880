"""The private keys in a trust dir (`<trust dir>/private/<key id>.key`), as notary writes them.

Each is a PEM block `ENCRYPTED PRIVATE KEY` (PKCS#8, PBES2: PBKDF2 and AES-CBC) with
`role:` and `gun:` headers before the base64 body. `unlocks` tells whether a passphrase
decrypts one, so a wrong passphrase is found before anything is pushed, without running
notary (which would say only "could not find necessary signing keys", and only at publish).
cryptography's PKCS#8 loader refuses notary's keys (version 1 PrivateKeyInfo, RFC 5958), so
the PBES2 envelope is opened here with cryptography's primitives and the result checked for
the PrivateKeyInfo shape.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

_PBES2 = "1.2.840.113549.1.5.13"
_PBKDF2 = "1.2.840.113549.1.5.12"
_PRF: dict[str, hashes.HashAlgorithm] = {
    "1.2.840.113549.2.7": hashes.SHA1(),  # noqa: S303 - notary's PRF, not our choice
    "1.2.840.113549.2.9": hashes.SHA256(),
    "1.2.840.113549.2.10": hashes.SHA384(),
    "1.2.840.113549.2.11": hashes.SHA512(),
}
_AES_CBC = {
    "2.16.840.1.101.3.4.1.2": 16,
    "2.16.840.1.101.3.4.1.22": 24,
    "2.16.840.1.101.3.4.1.42": 32,
}


@dataclass(frozen=True)
class LocalKey:
    """A private key file: its ID (the file name), and the role and GUN its headers name."""

    path: Path
    role: str
    gun: str

    @property
    def key_id(self) -> str:
        return self.path.stem


def key_files(private: Path) -> set[Path]:
    return set(private.rglob("*.key")) if private.is_dir() else set()


def key_header(path: Path) -> dict[str, str]:
    """The `role:`/`gun:` headers notary writes into a private key's PEM block."""
    headers: dict[str, str] = {}
    try:
        lines = path.read_text("ascii", "replace").splitlines()
    except OSError:
        return headers
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or " " in name:
            break
        headers[name.strip()] = value.strip()
    return headers


def local_keys(trust_dir: Path) -> list[LocalKey]:
    """Every private key in the trust dir, with its role and GUN."""
    found = []
    for path in sorted(key_files(trust_dir / "private")):
        header = key_header(path)
        found.append(LocalKey(path, header.get("role", ""), header.get("gun", "")))
    return found


def unlocks(path: Path, passphrase: str) -> bool | None:
    """Whether `passphrase` decrypts the key in `path`; None when the file is not a PKCS#8
    PBES2 key this module can open (then notary is left to judge)."""
    try:
        der = _pem_body(path.read_text("ascii"))
        encrypted, salt, rounds, prf, iv, key_length = _pbes2(der)
    except (OSError, ValueError, binascii.Error, UnicodeDecodeError, IndexError, KeyError):
        return None
    key = PBKDF2HMAC(prf, key_length, salt, rounds).derive(passphrase.encode())
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(encrypted) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        plain = unpadder.update(padded) + unpadder.finalize()
        return _is_private_key_info(plain)
    except (ValueError, IndexError):
        return False


def _is_private_key_info(plain: bytes) -> bool:
    """Whether the decrypted bytes are a PKCS#8 (RFC 5958) PrivateKeyInfo: a SEQUENCE of a
    version 0 or 1 (notary writes 1, with the public key), an AlgorithmIdentifier and an
    OCTET STRING. A wrong passphrase leaves random bytes that fail this (and the padding)."""
    items = _items(_one(plain, 0x30))
    return (
        len(items) >= 3
        and _one(items[0], 0x02) in (b"\x00", b"\x01")
        and items[1][0] == 0x30
        and items[2][0] == 0x04
    )


def _pem_body(text: str) -> bytes:
    lines = text.strip().splitlines()
    if not lines or lines[0] != "-----BEGIN ENCRYPTED PRIVATE KEY-----":
        raise ValueError("not an encrypted PKCS#8 key")
    body = [line for line in lines[1:-1] if line.strip() and ":" not in line]
    return base64.b64decode("".join(body), validate=True)


def _pbes2(der: bytes) -> tuple[bytes, bytes, int, hashes.HashAlgorithm, bytes, int]:
    """(ciphertext, salt, rounds, PRF, IV, AES key length) of an EncryptedPrivateKeyInfo."""
    outer = _items(_one(der, 0x30))
    algorithm = _items(_one(outer[0], 0x30))
    if _oid(_one(algorithm[0], 0x06)) != _PBES2:
        raise ValueError("not PBES2")
    kdf, cipher = (_items(_one(part, 0x30)) for part in _items(_one(algorithm[1], 0x30)))
    if _oid(_one(kdf[0], 0x06)) != _PBKDF2:
        raise ValueError("not PBKDF2")
    params = _items(_one(kdf[1], 0x30))
    salt = _one(params[0], 0x04)
    rounds = int.from_bytes(_one(params[1], 0x02), "big")
    prf: hashes.HashAlgorithm = hashes.SHA1()  # noqa: S303 - PBKDF2's default PRF (RFC 8018)
    for extra in params[2:]:
        if extra[0] == 0x30:
            prf = _PRF[_oid(_one(_items(_one(extra, 0x30))[0], 0x06))]
    key_length = _AES_CBC[_oid(_one(cipher[0], 0x06))]
    iv = _one(cipher[1], 0x04)
    return _one(outer[1], 0x04), salt, rounds, prf, iv, key_length


def _tlv(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at `at`."""
    tag, length = data[at], data[at + 1]
    at += 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 4:
            raise ValueError("bad DER length")
        length = int.from_bytes(data[at : at + count], "big")
        at += count
    if at + length > len(data):
        raise ValueError("truncated DER")
    return tag, at, at + length


def _one(element: bytes, tag: int) -> bytes:
    """The content of `element`, which must be one DER element with `tag`."""
    found, start, end = _tlv(element, 0)
    if found != tag or end != len(element):
        raise ValueError("unexpected DER element")
    return element[start:end]


def _items(content: bytes) -> list[bytes]:
    """The whole elements inside a SEQUENCE's content."""
    items, at = [], 0
    while at < len(content):
        _, _, end = _tlv(content, at)
        items.append(content[at:end])
        at = end
    return items


def _oid(content: bytes) -> str:
    first, rest = divmod(content[0], 40)
    parts, value = [min(first, 2), rest + 40 * max(first - 2, 0)], 0
    for byte in content[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(map(str, parts))
