"""Entitlement tokens: round trip and every refusal through `verify`, then proof that a vendor
needs nothing of ours to check one: plain PyJWT with the PEM, and by hand with `cryptography`."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from exchange.orders.entitlements import EntitlementInvalid, issue, verify
from exchange.settlement.signing import Signer

SIGNER = Signer.generate()
KEYS = {SIGNER.key_id: SIGNER.public_pem}
ISSUED = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
EXPIRES = ISSUED + timedelta(days=30)
DURING = ISSUED + timedelta(days=1)
SCOPE = {"plan": "subscription", "quantity": 1, "purposes": ["credit-scoring"], "territory": "CN"}


def token_for(signer: Signer = SIGNER, **overrides: object) -> str:
    fields: dict[str, object] = {
        "contract_id": "ct-1",
        "listing_id": "ls-7",
        "buyer_id": "buyer-42",
        "vendor_id": "vendor-9",
        "scope": SCOPE,
        "issued_at": ISSUED,
        "expires_at": EXPIRES,
    }
    return issue(signer, **{**fields, **overrides})


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def refusal(token: str, *, keys: dict[str, str] = KEYS, audience: str | None = None, now: datetime | None = None) -> str:
    with pytest.raises(EntitlementInvalid) as caught:
        verify(token, keys, audience=audience, now=now)
    return caught.value.reason


# --- through verify ------------------------------------------------------------------------------


def test_round_trip_carries_every_claim() -> None:
    claims = verify(token_for(), KEYS, audience="vendor-9", now=DURING)
    assert claims == {
        "iss": "data-exchange",
        "sub": "buyer-42",
        "aud": "vendor-9",
        "iat": int(ISSUED.timestamp()),
        "nbf": int(ISSUED.timestamp()),
        "exp": int(EXPIRES.timestamp()),
        "jti": "ct-1",
        "contract_id": "ct-1",
        "listing_id": "ls-7",
        "scope": SCOPE,
    }


def test_header_names_the_algorithm_and_the_key() -> None:
    assert jwt.get_unverified_header(token_for()) == {"alg": "EdDSA", "typ": "JWT", "kid": SIGNER.key_id}


def test_audience_is_optional_for_verify() -> None:
    assert verify(token_for(), KEYS, now=DURING)["aud"] == "vendor-9"


def test_valid_from_issue_until_just_before_expiry() -> None:
    token = token_for()
    assert verify(token, KEYS, now=ISSUED)["sub"] == "buyer-42"
    assert verify(token, KEYS, now=EXPIRES - timedelta(seconds=1))["sub"] == "buyer-42"


def test_tampered_payload_is_refused() -> None:
    header, payload, signature = token_for().split(".")
    claims = json.loads(b64url_decode(payload))
    claims["scope"]["quantity"] = 1_000
    forged = ".".join([header, b64url_encode(json.dumps(claims).encode()), signature])
    assert refusal(forged, now=DURING) == "bad_signature"


def test_token_signed_by_another_key_under_our_key_id_is_refused() -> None:
    impostor = Signer.generate()
    assert refusal(token_for(impostor), keys={impostor.key_id: SIGNER.public_pem}, now=DURING) == "bad_signature"


def test_unknown_key_id_is_refused() -> None:
    assert refusal(token_for(Signer.generate()), now=DURING) == "unknown_key"


def test_key_rotation_old_and_new_keys_both_verify() -> None:
    new = Signer.generate()
    keys = {**KEYS, new.key_id: new.public_pem}
    assert verify(token_for(), keys, now=DURING)["jti"] == "ct-1"
    assert verify(token_for(new), keys, now=DURING)["jti"] == "ct-1"


def test_expired_token_is_refused() -> None:
    assert refusal(token_for(), now=EXPIRES) == "expired"
    assert refusal(token_for(), now=EXPIRES + timedelta(days=1)) == "expired"


def test_token_used_before_it_is_valid_is_refused() -> None:
    assert refusal(token_for(), now=ISSUED - timedelta(seconds=1)) == "not_yet_valid"


def test_expiry_is_checked_against_the_real_clock_by_default() -> None:
    assert refusal(token_for()) == "expired"


def test_wrong_audience_is_refused() -> None:
    assert refusal(token_for(), audience="vendor-other", now=DURING) == "wrong_audience"


def test_wrong_issuer_is_refused() -> None:
    assert refusal(token_for(issuer="someone-else"), now=DURING) == "wrong_issuer"


def test_unsigned_and_hmac_tokens_are_refused() -> None:
    claims = jwt.decode(token_for(), options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": SIGNER.key_id})
    assert refusal(unsigned, now=DURING) == "bad_algorithm"
    # The classic confusion: the public PEM used as an HMAC secret.
    hmac_header = b64url_encode(json.dumps({"alg": "HS256", "typ": "JWT", "kid": SIGNER.key_id}).encode())
    payload = token_for().split(".")[1]
    assert refusal(f"{hmac_header}.{payload}.{b64url_encode(b'x' * 32)}", now=DURING) == "bad_algorithm"


def test_garbage_is_refused() -> None:
    assert refusal("not-a-token", now=DURING) == "malformed"


def test_token_missing_a_claim_is_refused() -> None:
    claims = jwt.decode(token_for(), options={"verify_signature": False})
    del claims["listing_id"]
    stripped = jwt.encode(claims, SIGNER.private_pem(), algorithm="EdDSA", headers={"kid": SIGNER.key_id})
    assert refusal(stripped, now=DURING) == "missing_claim"


def test_naive_times_and_empty_validity_are_refused_at_issue() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        token_for(issued_at=datetime(2025, 3, 1, 8, 0))
    with pytest.raises(ValueError, match="after"):
        token_for(expires_at=ISSUED)


# --- with nothing of ours ------------------------------------------------------------------------


def test_plain_pyjwt_verifies_the_token_with_only_the_pem() -> None:
    issued = datetime.now(UTC)
    token = token_for(issued_at=issued, expires_at=issued + timedelta(hours=1))
    claims = jwt.decode(token, SIGNER.public_pem, algorithms=["EdDSA"], audience="vendor-9", issuer="data-exchange")
    assert claims["sub"] == "buyer-42"
    assert claims["contract_id"] == claims["jti"] == "ct-1"
    assert claims["scope"] == SCOPE
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, SIGNER.public_pem, algorithms=["EdDSA"], audience="vendor-other")
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(token_for(), SIGNER.public_pem, algorithms=["EdDSA"], audience="vendor-9")


def test_by_hand_base64url_and_a_raw_ed25519_signature_check() -> None:
    token = token_for()
    header_part, payload_part, signature_part = token.split(".")
    header = json.loads(b64url_decode(header_part))
    payload = json.loads(b64url_decode(payload_part))
    assert header == {"alg": "EdDSA", "typ": "JWT", "kid": SIGNER.key_id}
    assert payload["aud"] == "vendor-9"
    assert payload["exp"] - payload["iat"] == 30 * 24 * 3600

    public_key = load_pem_public_key(SIGNER.public_pem.encode())
    assert isinstance(public_key, Ed25519PublicKey)
    signature = b64url_decode(signature_part)
    assert len(signature) == 64
    public_key.verify(signature, f"{header_part}.{payload_part}".encode("ascii"))  # raises if invalid
