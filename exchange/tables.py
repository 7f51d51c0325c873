"""Every table, in one module: cross-domain keys in one place and one import for Alembic.

Times are stored in UTC; money in integer minor units. `listing_id` leads the keys of the
catalogue's hot tables so they can be distributed by listing later (see ARCHITECTURE.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
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
    __table_args__ = (
        sa.Index("ix_listings_status_listed_at", "status", "listed_at"),
        # The catalogue's sort orders, within a status: a page is read in index order and stops.
        sa.Index("ix_listings_status_created", "status", "created_at", "id"),
        sa.Index("ix_listings_status_title", "status", "title", "id"),
        sa.Index("ix_listings_status_price", "status", "min_price_fen", "id"),
    )

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
    min_price_fen: int = Field(default=2**62, sa_type=sa.BigInteger, sa_column_kwargs={"server_default": str(2**62)})
    """The lowest headline price of the shown revision's plans (listing_plans.price_fen), or
    2**62 when none has one (negotiated only): what the catalogue's price sorts order by."""
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
    __table_args__ = (
        sa.Index("ix_listing_plans_kind_price", "kind", "price_fen"),
        # The catalogue's plan filters: does this listing have such a plan, from the index alone.
        sa.Index("ix_listing_plans_listing_kind_price", "listing_id", "kind", "price_fen"),
    )

    listing_id: str = Field(foreign_key="listings.id", primary_key=True, max_length=40)
    id: str = Field(primary_key=True, max_length=40)
    kind: str = Field(max_length=16)
    price_fen: int | None = Field(default=None, sa_type=sa.BigInteger)
    """The plan's headline price in fen (fixed/subscription price, first metered tier, reserve,
    reference or minimum); 0 for free; None for negotiated."""
    currency: str = Field(default="CNY", max_length=3)


class CatalogueState(SQLModel, table=True):
    """One row: a number every committed change to what public catalogue searches read moves on
    (database triggers on listings, their plans and their search documents, migration 0018), so a
    process may keep a search's answer for as long as the number stands."""

    __tablename__ = "catalogue_state"

    id: int = Field(primary_key=True)
    version: int = Field(sa_type=sa.BigInteger, default=0)


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


# ── Settlement: accounts, the Merkle log, signing keys ──────────────────────────────────


def _big(**kwargs: Any) -> Any:
    return Field(sa_type=sa.BigInteger, **kwargs)


def _bytes(**kwargs: Any) -> Any:
    return Field(sa_type=sa.LargeBinary, **kwargs)


class Account(SQLModel, table=True):
    """A balance in integer minor units: what the exchange owes the owner (credits - debits)."""

    __tablename__ = "accounts"

    id: str = Field(primary_key=True, max_length=120)
    """`<owner>:<kind>:<currency>`, e.g. `par_…:available:CNY`, `exchange:bank:CNY`."""
    owner_id: str = Field(index=True, max_length=40)
    kind: str = Field(max_length=16)
    currency: str = Field(max_length=3)
    balance: int = _big(default=0)
    created_at: datetime = _time()


class LedgerEntry(SQLModel, table=True):
    """Leaf `index` of the Merkle log. `canonical` is the signed truth; the other columns are
    copies for queries, and `exchange ledger verify` checks them against it."""

    __tablename__ = "ledger_entries"

    index: int = _big(primary_key=True, sa_column_kwargs={"autoincrement": False})
    type: str = Field(max_length=16)
    at_ms: int = _big()
    journal_id: str | None = Field(default=None, max_length=80, index=True)
    transfer_id: str | None = Field(default=None, max_length=100, unique=True)
    kind: str | None = Field(default=None, max_length=16)
    debit_account: str | None = Field(default=None, max_length=120, index=True)
    credit_account: str | None = Field(default=None, max_length=120, index=True)
    amount: int | None = _big(default=None)
    currency: str | None = Field(default=None, max_length=3)
    request_hash: str | None = Field(default=None, max_length=64)
    """SHA-256 of the transfer as requested: a retry must send the same."""
    leaf_hash: bytes = _bytes()
    canonical: bytes = _bytes()


class PendingTransfer(SQLModel, table=True):
    """A two-phase transfer's hold, until it is posted or voided."""

    __tablename__ = "pending_transfers"

    id: str = Field(primary_key=True, max_length=100)
    debit_account: str = Field(max_length=120)
    credit_account: str = Field(max_length=120)
    escrow_account: str = Field(max_length=120, index=True)
    currency: str = Field(max_length=3)
    amount: int = _big()
    remaining: int = _big()
    status: str = Field(max_length=16)
    created_index: int = _big()
    updated_index: int = _big()


class RateBucket(SQLModel, table=True):
    """A participant's request-rate bucket as every process shared it (exchange/ratelimit.py).
    Unlogged on PostgreSQL: after a crash, buckets start full again."""

    __tablename__ = "rate_buckets"

    participant_id: str = Field(primary_key=True, max_length=40)
    tokens: float
    at_ms: int = _big()
    """When `tokens` was counted, in milliseconds since the epoch (UTC)."""


class LedgerState(SQLModel, table=True):
    """One row: the log's size and the compact range of its tree; locked by every append."""

    __tablename__ = "ledger_state"

    id: int = Field(primary_key=True)
    size: int = _big(default=0)
    frontier: bytes = _bytes(default=b"")
    """The roots of the perfect subtrees of the binary decomposition of `size`, 32 bytes each."""
    head_size: int | None = _big(default=None)
    """The size of the latest signed head (None before the first): appends decide from this row,
    which they lock anyway, whether a head is due."""
    head_timestamp_ms: int | None = _big(default=None)


class LedgerNode(SQLModel, table=True):
    """Perfect subtree roots at levels 8, 16, 24 …: proofs read these instead of every leaf."""

    __tablename__ = "ledger_nodes"

    level: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    idx: int = _big(primary_key=True, sa_column_kwargs={"autoincrement": False})
    hash: bytes = _bytes()


class LedgerHead(SQLModel, table=True):
    __tablename__ = "ledger_heads"

    id: int | None = Field(default=None, primary_key=True)
    size: int = _big(index=True)
    root_hash: str = Field(max_length=64)
    timestamp_ms: int = _big()
    key_id: str = Field(max_length=32)
    signature: str = Field(max_length=200)


class SigningKey(SQLModel, table=True):
    """Every key that ever signed: heads signed by retired keys stay verifiable."""

    __tablename__ = "signing_keys"

    key_id: str = Field(primary_key=True, max_length=32)
    public_key_pem: str = Field(max_length=1000)
    active: bool
    created_at: datetime = _time()


class Certificate(SQLModel, table=True):
    """A signed registration certificate (数据产品登记凭证) of an approved listing revision."""

    __tablename__ = "certificates"

    listing_id: str = Field(foreign_key="listings.id", primary_key=True, max_length=40)
    revision: int = Field(primary_key=True)
    content: dict[str, Any] = _json()
    key_id: str = Field(max_length=32)
    signature: str = Field(max_length=200)
    ledger_index: int = _big()


class Withdrawal(SQLModel, table=True):
    """A participant's request to be paid out; held in escrow until an operator confirms it."""

    __tablename__ = "withdrawals"

    id: str = Field(primary_key=True, max_length=40)
    participant_id: str = Field(foreign_key="participants.id", index=True, max_length=40)
    amount: int = _big()
    currency: str = Field(max_length=3)
    rail: str = Field(max_length=8)
    destination: str = Field(max_length=200)
    status: str = Field(max_length=16)
    """requested, paid or cancelled."""
    payout_reference: str | None = Field(default=None, max_length=200, unique=True)
    created_at: datetime = _time()
    updated_at: datetime = _time()


# ── Trading: books, orders, trades, auctions, contracts ─────────────────────────────────


class Book(SQLModel, table=True):
    """One row per listing that trades: locked by every order of the listing, so its orders are
    serialised across server processes while other listings trade in parallel."""

    __tablename__ = "books"

    listing_id: str = Field(foreign_key="listings.id", primary_key=True, max_length=40)
    status: str = Field(default="open", max_length=16)
    """open or halted."""
    seq: int = _big(default=0)
    """The last order sequence number given on this listing: price-time priority uses it."""
    halted_reason: str | None = Field(default=None, max_length=2000)
    updated_at: datetime = _time()
    version: int = _big(default=0, sa_column_kwargs={"server_default": "0"})
    """How many times the row was locked: every transaction that locks the book adds one, so a
    reader can tell whether another writer of the book came between its snapshot and its lock
    (the order desk reads the book's orders in the statement that locks it)."""


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        sa.Index("ix_orders_listing_status", "listing_id", "status"),
        # A taker reads the other side's resting orders in price-time priority, a page at a time.
        sa.Index("ix_orders_book", "listing_id", "plan_id", "side", "status", "price", "seq"),
        sa.Index("ix_orders_participant_created", "participant_id", "created_at"),
        # Each process's sweep, every second: resting and pending orders past their lifetime.
        sa.Index("ix_orders_status_expires", "status", "expires_at"),
        # An auction's bids. Partial: most orders are in no auction, and each would add a NULL
        # to the index, written with every batch of the order desk.
        sa.Index("ix_orders_auction_id", "auction_id", postgresql_where=sa.text("auction_id IS NOT NULL"), sqlite_where=sa.text("auction_id IS NOT NULL")),
    )

    id: str = Field(primary_key=True, max_length=40)
    listing_id: str = Field(foreign_key="listings.id", max_length=40)
    revision: int
    plan_id: str = Field(max_length=40)
    plan_kind: str = Field(max_length=16)
    participant_id: str = Field(foreign_key="participants.id", max_length=40)
    side: str = Field(max_length=4)
    type: str = Field(max_length=8)
    price: int | None = _big(default=None)
    """Fen per unit for limit orders and bids."""
    quantity: int = _big()
    remaining: int = _big()
    time_in_force: str = Field(max_length=4)
    purpose: str | None = Field(default=None, max_length=200)
    use_case: str | None = Field(default=None, max_length=2000)
    status: str = Field(max_length=16)
    """open, filled, cancelled, expired, rejected, won, lost, pending_approval, declined, lapsed."""
    seq: int = _big()
    auction_id: str | None = Field(default=None, max_length=40)
    hold_id: str | None = Field(default=None, max_length=100)
    """The pending ledger transfer that holds the order's worst-case cost."""
    held: int = _big(default=0)
    rulebook_hash: str = Field(max_length=64)
    reason: str | None = Field(default=None, max_length=2000)
    """Why it was cancelled, expired or rejected."""
    violations: list[dict[str, Any]] = _json(default_factory=list)
    expires_at: datetime | None = _time(default=None)
    created_at: datetime = _time()
    updated_at: datetime = _time()

    def __setattr__(self, name: str, value: Any) -> None:
        # A column is set through SQLAlchemy's instrumentation alone: SQLModel's __setattr__
        # runs Pydantic's besides (three times the cost, for nothing a stored row uses), and the
        # order desk sets hundreds of an order's columns a batch as orders fill.
        column = _ORDER_COLUMNS.get(name)
        if column is None:
            super().__setattr__(name, value)
        else:
            column.__set__(self, value)


_ORDER_COLUMNS: dict[str, Any] = {column.key: getattr(Order, column.key) for column in Order.__table__.columns}  # type: ignore[attr-defined]


class Trade(SQLModel, table=True):
    __tablename__ = "trades"
    __table_args__ = (
        # Either serves a lookup by listing alone too: no index of its own.
        sa.Index("ix_trades_listing_at", "listing_id", "at"),  # the circuit breaker's window
        sa.Index("ix_trades_listing_seq", "listing_id", "seq"),  # a book's trades since the order desk last looked
    )

    id: str = Field(primary_key=True, max_length=40)
    listing_id: str = Field(foreign_key="listings.id", max_length=40)
    contract_id: str = Field(max_length=40)
    buy_order_id: str = Field(max_length=40, index=True)  # an order's fills
    sell_order_id: str | None = Field(default=None, max_length=40, index=True)
    price: int = _big()
    quantity: int = _big()
    seq: int = _big()
    at: datetime = _time()


class Auction(SQLModel, table=True):
    __tablename__ = "auctions"

    id: str = Field(primary_key=True, max_length=40)
    listing_id: str = Field(foreign_key="listings.id", index=True, max_length=40)
    plan_id: str = Field(max_length=40)
    vendor_id: str = Field(max_length=40)
    licences: int
    reserve: int = _big()
    currency: str = Field(max_length=3)
    closes_at: datetime = _time(index=True)
    status: str = Field(max_length=16)
    """open, closed, cancelled."""
    price_rule: str = Field(max_length=16)
    price: int | None = _big(default=None)
    rulebook_hash: str = Field(max_length=64)
    created_at: datetime = _time()
    closed_at: datetime | None = _time(default=None)


class Contract(SQLModel, table=True):
    __tablename__ = "contracts"
    __table_args__ = (
        sa.Index("ix_contracts_status_confirm_by", "status", "confirm_by"),
        sa.Index("ix_contracts_plan_kind", "plan_kind", "id"),  # the sweep's metered contracts, in id order
        # A row (about 2.8 kB) is stored as it comes: over the default 2 kB, each insert tried to
        # compress its terms and canonical bytes, and kept neither (migration 0022).
        {"postgresql_with": {"toast_tuple_target": 4080}},
    )

    id: str = Field(primary_key=True, max_length=40)
    listing_id: str = Field(foreign_key="listings.id", index=True, max_length=40)
    buyer_id: str = Field(foreign_key="participants.id", index=True, max_length=40)
    vendor_id: str = Field(foreign_key="participants.id", index=True, max_length=40)
    order_id: str | None = Field(default=None, max_length=40)
    plan_kind: str = Field(max_length=16)
    amount: int = _big()
    buyer_fee: int = _big()
    vendor_fee: int = _big()
    currency: str = Field(max_length=3)
    status: str = Field(max_length=24)
    """awaiting_delivery, disputed, settled, refunded."""
    content: dict[str, Any] = _json()
    """The signed terms (see `canonical`)."""
    canonical: bytes = _bytes()
    key_id: str = Field(max_length=32)
    signature: str = Field(max_length=200)
    pay_hold_id: str | None = Field(default=None, max_length=100)
    fee_hold_id: str | None = Field(default=None, max_length=100)
    confirm_by: datetime = _time()
    dispute_reason: str | None = Field(default=None, max_length=2000)
    certificate: dict[str, Any] | None = _json(default=None)
    """The signed transaction certificate (交易凭证) issued at settlement."""
    certificate_signature: str | None = Field(default=None, max_length=200)
    certificate_index: int | None = _big(default=None)
    lifecycle: str = Field(default="active", max_length=16, sa_column_kwargs={"server_default": "active"})
    """active, expired, terminated or amended (superseded by an amendment)."""
    valid_until: datetime | None = _time(default=None, index=True)
    ended_at: datetime | None = _time(default=None)
    end_reason: str | None = Field(default=None, max_length=2000)
    amends: str | None = Field(default=None, max_length=40)
    """The contract this one amends."""
    renew: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    """A subscription renews for another period when its term ends, unless the buyer cancels."""
    renews: str | None = Field(default=None, max_length=40)
    """The subscription contract this one continues."""
    billed_through: datetime | None = _time(default=None)
    """Metered and revenue-share contracts: the end of the last billed cycle."""
    created_at: datetime = _time()
    updated_at: datetime = _time()


class Notice(SQLModel, table=True):
    """A vendor's notice to the holders of a listing's contracts (schema change, delay, withdrawal)."""

    __tablename__ = "notices"

    id: str = Field(primary_key=True, max_length=40)
    listing_id: str = Field(foreign_key="listings.id", index=True, max_length=40)
    vendor_id: str = Field(foreign_key="participants.id", max_length=40)
    kind: str = Field(max_length=16)
    message: str = Field(max_length=5000)
    effective_at: datetime | None = _time(default=None)
    created_at: datetime = _time()



class Negotiation(SQLModel, table=True):
    """A request for quote on a negotiated plan (协议): private to its buyer and vendor."""

    __tablename__ = "negotiations"

    id: str = Field(primary_key=True, max_length=40)
    listing_id: str = Field(foreign_key="listings.id", index=True, max_length=40)
    plan_id: str = Field(max_length=40)
    buyer_id: str = Field(foreign_key="participants.id", index=True, max_length=40)
    vendor_id: str = Field(foreign_key="participants.id", index=True, max_length=40)
    status: str = Field(max_length=16)
    """open, agreed, closed."""
    purpose: str | None = Field(default=None, max_length=200)
    contract_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = _time()
    updated_at: datetime = _time()


class NegotiationStep(SQLModel, table=True):
    """One signed step: request, offer, accept or close; each names the hash of the one before."""

    __tablename__ = "negotiation_steps"

    negotiation_id: str = Field(foreign_key="negotiations.id", primary_key=True, max_length=40)
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    actor_id: str = Field(max_length=40)
    kind: str = Field(max_length=16)
    content: dict[str, Any] = _json()
    canonical: bytes = _bytes()
    key_id: str = Field(max_length=32)
    signature: str = Field(max_length=200)
    created_at: datetime = _time()



class UsageBatch(SQLModel, table=True):
    """A vendor's usage report for a metered contract: accepted once per batch id."""

    __tablename__ = "usage_batches"

    contract_id: str = Field(foreign_key="contracts.id", primary_key=True, max_length=40)
    batch_id: str = Field(primary_key=True, max_length=100)
    records: int
    calls: int = _big()
    received_at: datetime = _time()


class UsageRecord(SQLModel, table=True):
    __tablename__ = "usage_records"
    __table_args__ = (sa.Index("ix_usage_records_contract_at", "contract_id", "at"),)

    contract_id: str = Field(primary_key=True, max_length=40)
    batch_id: str = Field(primary_key=True, max_length=100)
    record_id: str = Field(primary_key=True, max_length=100)
    at: datetime = _time()
    calls: int = _big()


class UsageCycle(SQLModel, table=True):
    """A metered contract's calls in one calendar month, kept with its usage records so each
    batch reads the open cycle's total instead of summing every record of the month."""

    __tablename__ = "usage_cycles"

    contract_id: str = Field(foreign_key="contracts.id", primary_key=True, max_length=40)
    cycle_start: datetime = _time(primary_key=True)
    """The month's first instant (the exchange's zone), in UTC."""
    calls: int = _big()


class Bill(SQLModel, table=True):
    """A postpaid charge: a metered cycle's usage or a revenue-share period, paid from the buyer's balance."""

    __tablename__ = "bills"

    id: str = Field(primary_key=True, max_length=40)
    contract_id: str = Field(foreign_key="contracts.id", index=True, max_length=40)
    kind: str = Field(max_length=16)
    """metered or revenue_share."""
    period_start: datetime = _time()
    period_end: datetime = _time()
    quantity: int = _big()
    """Calls (metered) or reported revenue in fen (revenue share)."""
    amount: int = _big()
    buyer_fee: int = _big()
    vendor_fee: int = _big()
    status: str = Field(max_length=16)
    """paid or unpaid."""
    detail: dict[str, Any] = _json()
    journal_id: str | None = Field(default=None, max_length=80)
    created_at: datetime = _time()
    updated_at: datetime = _time()



class RuleShadow(SQLModel, table=True):
    """A candidate rule set judging live orders on the side, without refusing any."""

    __tablename__ = "rule_shadows"

    id: str = Field(primary_key=True, max_length=40)
    hash: str = Field(max_length=64)
    files: dict[str, str] = _json()
    reason: str = Field(max_length=2000)
    status: str = Field(max_length=16, index=True)
    """shadowing, promoted or dropped."""
    judged: int = Field(default=0)
    """Orders judged by both sets since the shadow started."""
    created_by: str = Field(max_length=40)
    created_at: datetime = _time()
    decided_by: str | None = Field(default=None, max_length=40)
    decided_at: datetime | None = _time(default=None)


class ShadowDivergence(SQLModel, table=True):
    """An order the shadow set judged otherwise than the active one."""

    __tablename__ = "shadow_divergences"

    id: int | None = Field(default=None, primary_key=True)
    shadow_id: str = Field(foreign_key="rule_shadows.id", index=True, max_length=40)
    order_id: str = Field(max_length=40)
    participant_id: str = Field(max_length=40)
    listing_id: str = Field(max_length=40)
    active_outcome: str = Field(max_length=16)
    shadow_outcome: str = Field(max_length=16)
    active_rules: list[str] = _json()
    """The rules the active set refused by (empty when it accepted)."""
    shadow_violations: list[dict[str, Any]] = _json()
    at: datetime = _time()



class Amendment(SQLModel, table=True):
    """A proposed change to a contract's licence terms; accepted, it becomes a new signed
    contract that amends the old one."""

    __tablename__ = "amendments"

    id: str = Field(primary_key=True, max_length=40)
    contract_id: str = Field(foreign_key="contracts.id", index=True, max_length=40)
    proposed_by: str = Field(max_length=40)
    changes: dict[str, Any] = _json()
    reason: str = Field(max_length=2000)
    status: str = Field(max_length=16)
    """proposed, accepted, declined."""
    new_contract_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = _time()
    decided_at: datetime | None = _time(default=None)



class WebSession(SQLModel, table=True):
    """A signed-in browser: the cookie holds only this random id; the API key is never stored."""

    __tablename__ = "web_sessions"

    id_hash: str = Field(primary_key=True, max_length=64)
    """SHA-256 of the cookie's value."""
    participant_id: str = Field(foreign_key="participants.id", index=True, max_length=40)
    csrf: str = Field(max_length=64)
    created_at: datetime = _time()
    expires_at: datetime = _time()


class MonthlyVolume(SQLModel, table=True):
    """A party's trading volume in one calendar month (the exchange's zone), as buyer and as
    vendor, kept with its contracts (exchange/orders/volumes.py): fee tiers read one row
    instead of summing the month's contracts on every trade."""

    __tablename__ = "monthly_volumes"

    participant_id: str = Field(primary_key=True, max_length=40)
    month_start: datetime = _time(primary_key=True)
    """The month's first instant, in UTC."""
    amount: int = _big()


metadata = SQLModel.metadata


Row = TypeVar("Row", bound=SQLModel)
_DEFAULTS: dict[type, list[tuple[str, Any, Any]]] = {}


def new_row(model: type[Row], **values: Any) -> Row:
    """A new row of `model`, as `model(**values)` builds it, without SQLModel's per-field work
    (a quarter of a millisecond a row, most of an order's time on the order desk): the caller's
    values are already the right types. Unset fields take their defaults; the session inserts
    the row as usual."""
    defaults = _DEFAULTS.get(model)
    if defaults is None:
        defaults = _DEFAULTS[model] = [
            (name, field.default, field.default_factory) for name, field in model.model_fields.items() if not field.is_required()
        ]
    row = model._sa_class_manager.new_instance()  # type: ignore[attr-defined]
    state = row.__dict__
    for name, default, factory in defaults:
        if name not in values:
            state[name] = factory() if factory is not None else default
    state.update(values)
    object.__setattr__(row, "__pydantic_fields_set__", set(values))
    object.__setattr__(row, "__pydantic_extra__", None)
    object.__setattr__(row, "__pydantic_private__", None)
    return row


class Rows(NamedTuple):
    """Rows for `write_together`: inserted into `table`; or, with `key`, updating the rows of
    `table` whose `key` column matches theirs; or, with `adding`, inserted, and where the
    primary key is taken already, added to that row's `adding` column instead. Every row gives
    the columns `columns` (None: the first row's keys)."""

    table: sa.Table
    rows: Sequence[Mapping[str, Any]]
    key: str | None = None
    adding: str | None = None
    columns: tuple[str, ...] | None = None


def new_rows(model: type[SQLModel], rows: Sequence[SQLModel]) -> Rows:
    """New rows of `model` built by `new_row`, for `write_together`: stored without the
    session's unit of work (tens of microseconds a row), for rows the session never saw and
    that nothing else in the transaction changes through it. Flush hooks do not see them: the
    caller does their work (`volumes.inserted` for contracts)."""
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    return Rows(table, [row.__dict__ for row in rows], columns=tuple(column.key for column in table.columns))


_Converters = list[tuple[str, Callable[[Any], Any] | None]]
# Per shape of the parts (table, columns, key): the statement, and for each part its columns'
# keys with each column type's own conversion of a value for the driver (None: passed as it is).
_STATEMENTS: dict[tuple[Any, ...], tuple[sa.TextClause, list[_Converters]]] = {}


async def write_together(session: Any, *parts: Rows) -> None:
    """Insert and update rows of several tables in one statement and one round trip on
    PostgreSQL; elsewhere one executemany a part. Each part is a data-modifying CTE over arrays,
    one a column (no two parts may touch one row; foreign keys between them are checked at the
    end of the statement). Each value goes through its column type's own conversion, as
    SQLAlchemy's insert sends it: a JSON column's None is stored as JSON null here too."""
    parts = tuple(part for part in parts if part.rows)
    if not parts:
        return
    shape = tuple((part.table, part.columns or tuple(part.rows[0]), part.key, part.adding) for part in parts)
    if session.bind.dialect.name != "postgresql":
        for (table, columns, key, adding), part in zip(shape, parts, strict=True):
            # bindparam names must differ from the columns' own
            rows = [{f"w_{name}": row[name] for name in columns} for row in part.rows]
            if key is not None:
                changed = {name: sa.bindparam(f"w_{name}") for name in columns if name != key}
                await session.execute(table.update().where(table.c[key] == sa.bindparam(f"w_{key}")).values(changed), rows)
                continue
            statement = sqlite.insert(table).values({name: sa.bindparam(f"w_{name}") for name in columns})
            if adding is not None:
                statement = statement.on_conflict_do_update(
                    index_elements=list(table.primary_key.columns), set_={adding: table.c[adding] + statement.excluded[adding]}
                )
            await session.execute(statement, rows)
        return
    await _execute_arrays(session, shape, [part.rows for part in parts])


async def _execute_arrays(session: Any, shape: tuple[Any, ...], groups: Sequence[Sequence[Mapping[str, Any]]]) -> None:
    plan = _STATEMENTS.get(shape)
    if plan is None:
        plan = _STATEMENTS[shape] = _arrays_statement(shape, session.bind.dialect)
    statement, converters = plan
    parameters: dict[str, list[Any]] = {}
    for n, (rows, columns) in enumerate(zip(groups, converters, strict=True)):
        for i, (key, convert) in enumerate(columns):
            values = [row[key] for row in rows]
            parameters[f"t{n}_{i}"] = values if convert is None else [convert(value) for value in values]
    await session.execute(statement, parameters)


def _arrays_statement(shape: tuple[Any, ...], dialect: Any) -> tuple[sa.TextClause, list[_Converters]]:
    quote = dialect.identifier_preparer.quote
    parts: list[str] = []
    converters: list[_Converters] = []
    for n, (table, keys, key, adding) in enumerate(shape):
        columns = [table.c[k] for k in keys]
        arrays = ", ".join(f"CAST(:t{n}_{i} AS {column.type.compile(dialect=dialect)}[])" for i, column in enumerate(columns))
        names = ", ".join(quote(c.name) for c in columns)
        if key is None:
            insert = f"INSERT INTO {quote(table.name)} ({names}) SELECT * FROM unnest({arrays})"
            if adding is not None:
                conflict = ", ".join(quote(c.name) for c in table.primary_key.columns)
                summed = quote(table.c[adding].name)
                insert += f" ON CONFLICT ({conflict}) DO UPDATE SET {summed} = {quote(table.name)}.{summed} + excluded.{summed}"
            parts.append(insert)
        else:
            # Rows found by `= ANY` of the keys, and each value by its key's place among them:
            # joined to unnest() instead, the plan prepared while the table was small hashes the
            # whole table on every run, as it grows.
            array = {column.key: f"CAST(:t{n}_{i} AS {column.type.compile(dialect=dialect)}[])" for i, column in enumerate(columns)}
            match = f"{quote(table.name)}.{quote(table.c[key].name)}"
            changed = ", ".join(f"{quote(c.name)} = ({array[c.key]})[array_position({array[key]}, {match})]" for c in columns if c.key != key)
            parts.append(f"UPDATE {quote(table.name)} SET {changed} WHERE {match} = ANY({array[key]})")
        converters.append([(column.key, column.type.dialect_impl(dialect).bind_processor(dialect)) for column in columns])
    *first, last = parts
    text = (f"WITH {', '.join(f'w{n} AS ({part})' for n, part in enumerate(first))} {last}") if first else last
    return sa.text(text), converters
