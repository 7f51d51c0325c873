"""Entitlement tokens: what a contract lets a buyer take from a vendor's data service. Pure.

A token is a plain JWT (RFC 7519) signed with EdDSA over Ed25519 (RFC 8037), so the vendor's
service checks it offline with any JWT library and the exchange's published public key:
`iss` the exchange, `sub` the buyer, `aud` the vendor (its data service is the audience),
`iat`/`nbf`/`exp` in whole seconds, `jti` the contract id; plus `contract_id`, `listing_id`
and `scope` (plan kind, quantity, purposes, territory...). The header names the key by `kid`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import jwt

from exchange.settlement.signing import Signer, load_public_pem

ALGORITHM = "EdDSA"
DEFAULT_ISSUER = "data-exchange"
REQUIRED_CLAIMS = ("iss", "sub", "aud", "iat", "nbf", "exp", "jti", "contract_id", "listing_id", "scope")


class EntitlementInvalid(ValueError):
    """The token must not be honoured; `reason` is a short code, the message says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def _epoch_seconds(moment: datetime, name: str) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return int(moment.timestamp())


def issue(
    signer: Signer,
    *,
    contract_id: str,
    listing_id: str,
    buyer_id: str,
    vendor_id: str,
    scope: dict[str, Any],
    issued_at: datetime,
    expires_at: datetime,
    issuer: str = DEFAULT_ISSUER,
) -> str:
    issued = _epoch_seconds(issued_at, "issued_at")
    expires = _epoch_seconds(expires_at, "expires_at")
    if expires <= issued:
        raise ValueError("expires_at must be after issued_at")
    claims = {
        "iss": issuer,
        "sub": buyer_id,
        "aud": vendor_id,
        "iat": issued,
        "nbf": issued,
        "exp": expires,
        "jti": contract_id,
        "contract_id": contract_id,
        "listing_id": listing_id,
        "scope": scope,
    }
    headers = {"typ": "JWT", "kid": signer.key_id}
    return jwt.encode(claims, signer.private_pem(), algorithm=ALGORITHM, headers=headers)


def verify(
    token: str,
    public_keys: Mapping[str, str],
    *,
    audience: str | None = None,
    now: datetime | None = None,
    issuer: str = DEFAULT_ISSUER,
) -> dict[str, Any]:
    """The claims of a valid token; EntitlementInvalid otherwise. `public_keys` maps key id to
    PEM, so tokens signed before a key rotation still verify while the old key is listed."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise EntitlementInvalid("malformed", str(error)) from None
    key_id = header.get("kid")
    if not isinstance(key_id, str) or key_id not in public_keys:
        raise EntitlementInvalid("unknown_key", f"no public key with id {key_id!r}")
    try:
        public_key = load_public_pem(public_keys[key_id])
    except ValueError as error:
        raise EntitlementInvalid("unknown_key", f"key {key_id!r} is not a usable Ed25519 public key: {error}") from None

    # PyJWT checks times against the real clock only, so it checks signature, issuer and audience
    # here and the validity window is checked below against `now`.
    options: dict[str, Any] = {
        "require": list(REQUIRED_CLAIMS),
        "verify_exp": False,
        "verify_nbf": False,
        "verify_iat": False,
        "verify_aud": audience is not None,
        "strict_aud": True,
    }
    try:
        claims = jwt.decode(token, public_key, algorithms=[ALGORITHM], audience=audience, issuer=issuer, options=options)
    except jwt.InvalidAlgorithmError as error:
        raise EntitlementInvalid("bad_algorithm", str(error)) from None
    except jwt.InvalidSignatureError as error:
        raise EntitlementInvalid("bad_signature", str(error)) from None
    except jwt.InvalidAudienceError as error:
        raise EntitlementInvalid("wrong_audience", str(error)) from None
    except jwt.InvalidIssuerError as error:
        raise EntitlementInvalid("wrong_issuer", str(error)) from None
    except jwt.MissingRequiredClaimError as error:
        raise EntitlementInvalid("missing_claim", str(error)) from None
    except jwt.PyJWTError as error:
        raise EntitlementInvalid("malformed", str(error)) from None

    for name in ("iat", "nbf", "exp"):
        if isinstance(claims[name], bool) or not isinstance(claims[name], int):
            raise EntitlementInvalid("malformed", f"{name} must be an integer number of seconds")
    moment = _epoch_seconds(now, "now") if now is not None else int(datetime.now(UTC).timestamp())
    if moment < claims["nbf"]:
        raise EntitlementInvalid("not_yet_valid", f"valid from {claims['nbf']}, now is {moment}")
    if moment >= claims["exp"]:
        raise EntitlementInvalid("expired", f"expired at {claims['exp']}, now is {moment}")
    return claims
