"""The CRX3 format Chromium installs from (components/crx_file/crx3.proto):

    "Cr24" | uint32 LE 3 | uint32 LE header size | CrxFileHeader | zip

``CrxFileHeader`` is a protobuf message: ``sha256_with_rsa`` (field 2, repeated
``AsymmetricKeyProof {public_key = 1, signature = 2}``) and ``signed_header_data``
(field 10000, a ``SignedData {crx_id = 1}``, the first 16 bytes of the SHA-256 of the
public key). The signature is RSASSA-PKCS1-v1_5 over SHA-256 of
``"CRX3 SignedData\\x00" | uint32 LE len(signed_header_data) | signed_header_data | zip``.

Written here with `cryptography` (already a dependency of the host) rather than the npm
``crx3`` package: the format is three protobuf fields, and a Node dependency would be
the only one of this Python release script. Tests parse it back with the protobuf
library and check the signature.
"""

from __future__ import annotations

import hashlib
import struct

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

MAGIC = b"Cr24"
VERSION = 3
SIGNED_PREFIX = b"CRX3 SignedData\x00"


def public_key_der(key: rsa.RSAPrivateKey) -> bytes:
    """The DER SubjectPublicKeyInfo: what the manifest's ``key`` holds in base64."""
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def extension_id(public_der: bytes) -> str:
    """Chromium's extension ID: the crx_id's hex digits written with a-p."""
    hexed = hashlib.sha256(public_der).hexdigest()[:32]
    return "".join(chr(ord("a") + int(c, 16)) for c in hexed)


def signed_data(public_der: bytes) -> bytes:
    return _field(1, hashlib.sha256(public_der).digest()[:16])


def signature_input(signed_header: bytes, archive: bytes) -> bytes:
    return SIGNED_PREFIX + struct.pack("<I", len(signed_header)) + signed_header + archive


def build_crx(archive: bytes, key: rsa.RSAPrivateKey) -> bytes:
    """A CRX3 of the zip `archive`, signed with `key`."""
    public_der = public_key_der(key)
    signed_header = signed_data(public_der)
    signature = key.sign(
        signature_input(signed_header, archive), padding.PKCS1v15(), hashes.SHA256()
    )
    proof = _field(1, public_der) + _field(2, signature)
    header = _field(2, proof) + _field(10000, signed_header)
    return MAGIC + struct.pack("<II", VERSION, len(header)) + header + archive


def load_key(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the CRX signing key must be an RSA private key (PEM)")
    return key


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)
