"""Registration certificates (数据产品登记凭证): when a listing revision is approved the exchange
signs what was approved, and logs the signed certificate so its issue is provable later."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.core.canonical import canonical_bytes, sha256_hex
from exchange.settlement.entries import CertificateEntry
from exchange.settlement.ledger import Ledger, millis
from exchange.tables import Certificate


class CertificateOut(msgspec.Struct, frozen=True, kw_only=True):
    certificate: dict[str, Any]
    """The signed content: listing id, revision, vendor, SHA-256 of the listing's content,
    attestations, issue time (ms since the epoch, UTC) and the hash of the rules that approved it."""
    key_id: str
    signature: str
    """Base64 Ed25519 signature over the canonical JSON of `certificate`."""
    ledger_index: int
    """The log entry that records the issue: check it with /v1/ledger/proofs/inclusion."""


async def issue(
    session: AsyncSession, ledger: Ledger, *, listing_id: str, revision: int, vendor_id: str, content: dict[str, Any], rules_hash: str, now: datetime
) -> Certificate:
    certificate = {
        "type": "registration_certificate",
        "listing_id": listing_id,
        "revision": revision,
        "vendor_id": vendor_id,
        "title": content.get("title"),
        "content_sha256": sha256_hex(content),
        "attestations": content.get("attestations"),
        "rules_hash": rules_hash,
        "issued_at": millis(now),
    }
    signer = await ledger.active_signer(session, now)
    signature = signer.sign(canonical_bytes(certificate))
    [appended] = await ledger.append(
        session, [CertificateEntry(index=-1, at=millis(now), certificate=certificate, key_id=signer.key_id, signature=signature)], now
    )
    row = Certificate(
        listing_id=listing_id, revision=revision, content=certificate, key_id=signer.key_id, signature=signature, ledger_index=appended.index
    )
    session.add(row)
    await session.flush()
    return row


async def latest(session: AsyncSession, listing_id: str) -> CertificateOut | None:
    query = sa.select(Certificate).where(Certificate.listing_id == listing_id).order_by(Certificate.revision.desc()).limit(1)  # type: ignore[attr-defined]
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        return None
    return CertificateOut(certificate=row.content, key_id=row.key_id, signature=row.signature, ledger_index=row.ledger_index)
