"""Every table, in one module: cross-domain keys in one place and one import for Alembic.

Times are stored in UTC; money in integer minor units. `listing_id` leads the keys of the
catalogue's hot tables so they can be distributed by listing later (see ARCHITECTURE.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Field, SQLModel

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on SQLite (which keeps no zone) as on PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use UTC-aware values")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _time(**kwargs: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kwargs)


def _json(**kwargs: Any) -> Any:
    return Field(sa_type=JSONType, **kwargs)


class Participant(SQLModel, table=True):
    __tablename__ = "participants"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    roles: list[str] = _json()
    """Any of vendor, buyer, operator, regulator."""
    qualifications: list[str] = _json()
    sponsor_id: str | None = Field(default=None, foreign_key="participants.id", max_length=40)
    """A qualified participant vouching for this one (e.g. a data merchant sponsoring a vendor)."""
    status: str = Field(default="active", max_length=16)
    """active or suspended."""
    created_at: datetime = _time()


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=40)
    participant_id: str = Field(foreign_key="participants.id", index=True, max_length=40)
    key_hash: str = Field(unique=True, max_length=64)
    """SHA-256 hex of the key; the key itself is never stored."""
    prefix: str = Field(max_length=16)
    """The key's first characters, to tell keys apart without revealing them."""
    created_at: datetime = _time()
    revoked_at: datetime | None = _time(default=None)


class RuleSet(SQLModel, table=True):
    __tablename__ = "rule_sets"

    version: int = Field(primary_key=True)
    hash: str = Field(max_length=64, index=True)
    """SHA-256 of the rule set's canonical content."""
    files: dict[str, str] = _json()
    """File name -> the file's text, exactly as the operator wrote it."""
    reason: str = Field(max_length=2000)
    created_by: str = Field(max_length=40)
    created_at: datetime = _time()
    effective_at: datetime = _time(index=True)


class Listing(SQLModel, table=True):
    __tablename__ = "listings"
    __table_args__ = (sa.Index("ix_listings_status_listed_at", "status", "listed_at"),)

    id: str = Field(primary_key=True, max_length=40)
    vendor_id: str = Field(foreign_key="participants.id", index=True, max_length=40)
    status: str = Field(max_length=16)
    revision: int
    """The revision shown in the catalogue (on sale once listed)."""
    pending_revision: int | None = None
    """A newer revision of a listed product that is still in draft or review."""
    title: str = Field(max_length=200)
    category: str = Field(max_length=64, index=True)
    grade: str = Field(max_length=64, index=True)
    delivery: str = Field(max_length=16)
    content: dict[str, Any] = _json()
    """The shown revision's body (ListingIn JSON with plan ids)."""
    rulebook_hash: str | None = Field(default=None, max_length=64)
    """Hash of the rule set that last judged this listing."""
    created_at: datetime = _time()
    updated_at: datetime = _time()
    listed_at: datetime | None = _time(default=None)


class ListingRevision(SQLModel, table=True):
    __tablename__ = "listing_revisions"

    listing_id: str = Field(foreign_key="listings.id", primary_key=True, max_length=40)
    number: int = Field(primary_key=True)
    status: str = Field(max_length=16)
    """draft, submitted, approved, rejected or superseded."""
    content: dict[str, Any] = _json()
    created_by: str = Field(max_length=40)
    created_at: datetime = _time()


class ListingPlan(SQLModel, table=True):
    """The plans of a listing's shown revision, flattened for catalogue filters."""

    __tablename__ = "listing_plans"
    __table_args__ = (sa.Index("ix_listing_plans_kind_price", "kind", "price_fen"),)

    listing_id: str = Field(foreign_key="listings.id", primary_key=True, max_length=40)
    id: str = Field(primary_key=True, max_length=40)
    kind: str = Field(max_length=16)
    price_fen: int | None = Field(default=None, sa_type=sa.BigInteger)
    """The plan's headline price in fen (fixed/subscription price, first metered tier, reserve,
    reference or minimum); 0 for free; None for negotiated."""
    currency: str = Field(default="CNY", max_length=3)


class ListingEvent(SQLModel, table=True):
    """Every transition of a listing: who, when, why, and under which rule set."""

    __tablename__ = "listing_events"

    id: int | None = Field(default=None, primary_key=True)
    listing_id: str = Field(foreign_key="listings.id", index=True, max_length=40)
    revision: int
    action: str = Field(max_length=16)
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str = Field(max_length=16)
    actor_id: str = Field(max_length=40)
    at: datetime = _time()
    reason: str | None = Field(default=None, max_length=2000)
    rulebook_hash: str = Field(max_length=64)
    details: dict[str, Any] = _json(default_factory=dict)
    """Checklist answers with evidence, or the violations that refused a step."""


class IdempotencyRecord(SQLModel, table=True):
    """The first response to a creating POST, replayed for a retry with the same key."""

    __tablename__ = "idempotency_keys"

    participant_id: str = Field(primary_key=True, max_length=40)
    key: str = Field(primary_key=True, max_length=200)
    request_hash: str = Field(max_length=64)
    """SHA-256 over method, path and body: the same key with another request is refused."""
    status_code: int
    response: bytes = Field(sa_type=sa.LargeBinary)
    created_at: datetime = _time()


metadata = SQLModel.metadata
