"""API keys: 256 random bits, shown once, stored as SHA-256 (a fast hash suffices for keys this
long: there is nothing to brute-force), compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "exk_"


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def key_matches(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(key_hash(key), stored_hash)


def visible_prefix(key: str) -> str:
    return key[: len(KEY_PREFIX) + 4]
