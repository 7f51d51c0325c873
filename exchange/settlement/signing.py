"""Ed25519 signatures over canonical bytes: tree heads and registration certificates.

What is signed is always the canonical JSON of a small object, so anyone can rebuild the bytes
from the published fields and check them with the published public key (e.g. with
`openssl pkeyutl -verify -pubin -inkey key.pem -rawin -in head.json -sigfile head.sig`)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from exchange.core.canonical import canonical_bytes

KEY_ID_HEX_CHARS = 16


class TreeHead(msgspec.Struct, frozen=True, kw_only=True):
    """The signed statement: the log had `size` entries with this root at `timestamp`."""

    key_id: str
    root_hash: str
    """Lowercase hex of the RFC 6962 root."""
    size: int
    timestamp: int
    """Milliseconds since the epoch, UTC."""

    def signed_bytes(self) -> bytes:
        return canonical_bytes({"key_id": self.key_id, "root_hash": self.root_hash, "size": self.size, "timestamp": self.timestamp})


class SignedTreeHead(TreeHead, frozen=True, kw_only=True):
    signature: str
    """Base64 of the Ed25519 signature over `signed_bytes()`."""


def key_id_of(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:KEY_ID_HEX_CHARS]


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public_pem(pem: str) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


class Signer:
    """One Ed25519 private key and its id (the first 16 hex digits of SHA-256 of the raw public key)."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id_of(self.public_key)
        self.public_pem = public_pem(self.public_key)

    @classmethod
    def generate(cls) -> Signer:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: bytes) -> Signer:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the signing key file does not hold an Ed25519 private key")
        return cls(key)

    def private_pem(self) -> bytes:
        return self._private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def sign(self, data: bytes) -> str:
        return base64.b64encode(self._private_key.sign(data)).decode()

    def sign_head(self, root: bytes, size: int, timestamp_ms: int) -> SignedTreeHead:
        head = TreeHead(key_id=self.key_id, root_hash=root.hex(), size=size, timestamp=timestamp_ms)
        return SignedTreeHead(**msgspec.structs.asdict(head), signature=self.sign(head.signed_bytes()))

    def __repr__(self) -> str:  # never the key itself, whatever gets logged
        return f"Signer(key_id={self.key_id!r})"


def verify_signature(public_key: Ed25519PublicKey, data: bytes, signature_b64: str) -> bool:
    try:
        public_key.verify(base64.b64decode(signature_b64, validate=True), data)
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_head(head: SignedTreeHead | dict[str, Any], public_key: Ed25519PublicKey) -> bool:
    if isinstance(head, dict):
        head = msgspec.convert(head, SignedTreeHead)
    return verify_signature(public_key, head.signed_bytes(), head.signature)
