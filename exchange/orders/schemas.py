"""Orders, auctions and contracts on the wire. Money is integer fen."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from exchange.core.money import AMOUNT_MAX

Id = Annotated[str, Meta(min_length=1, max_length=40)]
Quantity = Annotated[int, Meta(ge=1, le=10**9)]
Price = Annotated[int, Meta(ge=1, le=AMOUNT_MAX)]
Text = Annotated[str, Meta(min_length=1, max_length=2000)]
Purpose = Annotated[str, Meta(min_length=1, max_length=200)]


class _Wire(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class OrderIn(_Wire):
    """POST /v1/orders. `type`, `price` and `time_in_force` apply to `quota` books (and `price`
    to auction bids); fixed, subscription and free plans fill at the listed price."""

    listing_id: Id
    plan_id: Id
    side: Literal["buy", "sell"] = "buy"
    quantity: Quantity = 1
    """Licences (fixed, free, auction), periods (subscription) or units (quota)."""
    purpose: Purpose | None = None
    """What the buyer will use the data for; the rules may require one of a list."""
    type: Literal["limit", "market"] = "limit"
    price: Price | None = None
    time_in_force: Literal["gtc", "ioc", "fok"] = "gtc"
    expires_at: datetime | None = None
    """When a resting `gtc` order lapses (within the rules' longest lifetime)."""
    use_case: Text | None = None
    """What the data will be used for, in words: required by plans that need the vendor's approval."""


class FillOut(Struct, frozen=True, kw_only=True):
    price: int
    quantity: int
    contract_id: str
    at: datetime


class OrderOut(Struct, frozen=True, kw_only=True):
    id: str
    status: str
    """open, filled, cancelled, expired, rejected, won, lost, pending_approval, declined, lapsed."""
    listing_id: str
    plan_id: str
    plan_kind: str
    participant_id: str
    side: str
    type: str
    price: int | None
    quantity: int
    filled: int
    remaining: int
    time_in_force: str
    purpose: str | None
    use_case: str | None
    held: int
    """Fen held from the buyer's available balance for what may still fill."""
    fills: list[FillOut]
    contract_ids: list[str]
    auction_id: str | None
    reason: str | None
    rulebook_hash: str
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class OrderPage(Struct, frozen=True, kw_only=True):
    items: list[OrderOut]
    next_cursor: str | None


class Level(Struct, frozen=True, array_like=False):
    price: int
    quantity: int
    orders: int


class BookOut(Struct, frozen=True, kw_only=True):
    listing_id: str
    plan_id: str | None
    status: str
    band: tuple[int, int] | None
    bids: list[Level]
    asks: list[Level]


class TradeOut(Struct, frozen=True, kw_only=True):
    id: str
    price: int
    quantity: int
    at: datetime


class TradePage(Struct, frozen=True, kw_only=True):
    items: list[TradeOut]


class HaltIn(_Wire):
    reason: Text


class AuctionIn(_Wire):
    listing_id: Id
    plan_id: Id
    closes_at: datetime


class AuctionOut(Struct, frozen=True, kw_only=True):
    id: str
    listing_id: str
    plan_id: str
    vendor_id: str
    licences: int
    reserve: int
    currency: str
    closes_at: datetime
    status: str
    price_rule: str
    bids: int
    """How many bids there are; the bids themselves stay sealed until the close."""
    price: int | None
    winners: list[dict[str, Any]] | None
    """After the close: each winning bid with its licences."""
    rulebook_hash: str
    created_at: datetime
    closed_at: datetime | None


class ContractOut(Struct, frozen=True, kw_only=True):
    id: str
    status: str
    """awaiting_delivery, disputed, settled, refunded."""
    contract: dict[str, Any]
    """The signed terms, decoded from `canonical`."""
    canonical: str
    """Base64 of the exact signed bytes."""
    key_id: str
    signature: str
    """Base64 Ed25519 signature over `canonical`; keys at /v1/ledger/keys."""
    confirm_by: datetime
    dispute_reason: str | None
    certificate: dict[str, Any] | None
    """The signed transaction certificate (交易凭证), once settled."""
    certificate_signature: str | None
    certificate_index: int | None
    lifecycle: str
    """active, expired, terminated, amended."""
    valid_until: datetime
    ended_at: datetime | None
    end_reason: str | None
    amends: str | None
    renew: bool
    """A subscription renews for another period when its term ends, unless the buyer cancels."""
    renews: str | None
    created_at: datetime
    updated_at: datetime


class ContractPage(Struct, frozen=True, kw_only=True):
    items: list[ContractOut]
    next_cursor: str | None


class DisputeIn(_Wire):
    reason: Text


class ResolveIn(_Wire):
    outcome: Literal["release", "refund"]
    reason: Text


class TerminateIn(_Wire):
    reason: Text


class NoticeIn(_Wire):
    kind: Literal["schema_change", "delay", "withdrawal", "other"]
    message: Annotated[str, Meta(min_length=1, max_length=5000)]
    effective_at: datetime | None = None


class NoticeOut(Struct, frozen=True, kw_only=True):
    id: str
    listing_id: str
    vendor_id: str
    kind: str
    message: str
    effective_at: datetime | None
    created_at: datetime


class NoticePage(Struct, frozen=True, kw_only=True):
    items: list[NoticeOut]


class EntitlementOut(Struct, frozen=True, kw_only=True):
    token: str
    """A JWT signed with EdDSA (RFC 8037): verify it with the key named by its `kid`."""
    key_id: str
    expires_at: datetime


class DealTerms(_Wire):
    """What a step of a negotiation proposes: the total price for `quantity` licences, and the
    licence terms that differ from the listing's."""

    amount: Annotated[int, Meta(ge=0, le=AMOUNT_MAX)]
    """Total price in fen."""
    currency: Annotated[str, Meta(pattern="^[A-Z]{3}$")] = "CNY"
    quantity: Quantity = 1
    duration_days: Annotated[int, Meta(ge=1, le=36_600)] | None = None
    purposes: Annotated[list[Purpose], Meta(min_length=1, max_length=20)] | None = None
    territory: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    message: Annotated[str, Meta(max_length=2000)] | None = None


class NegotiationIn(_Wire):
    listing_id: Id
    plan_id: Id
    terms: DealTerms
    purpose: Purpose | None = None
    expires_at: datetime | None = None


class OfferIn(_Wire):
    terms: DealTerms
    expires_at: datetime | None = None
    """Until when the other party may accept; a week when left out."""


class AcceptIn(_Wire):
    seq: Annotated[int, Meta(ge=1)]
    """The step being accepted: the latest proposal, made by the other party."""


class CloseIn(_Wire):
    reason: Text


class StepOut(Struct, frozen=True, kw_only=True):
    seq: int
    actor_id: str
    kind: str
    """request, offer (vendor), counter (buyer), accept, close."""
    content: dict[str, Any]
    canonical: str
    key_id: str
    signature: str
    created_at: datetime


class NegotiationOut(Struct, frozen=True, kw_only=True):
    id: str
    listing_id: str
    plan_id: str
    buyer_id: str
    vendor_id: str
    status: str
    """open, agreed, closed."""
    purpose: str | None
    contract_id: str | None
    steps: list[StepOut]
    created_at: datetime
    updated_at: datetime


class NegotiationPage(Struct, frozen=True, kw_only=True):
    items: list[NegotiationOut]


class UsageRecordIn(_Wire):
    record_id: Annotated[str, Meta(min_length=1, max_length=100)]
    at: datetime
    calls: Annotated[int, Meta(ge=0, le=10**12)]


class UsageIn(_Wire):
    """A vendor's usage report for a metered contract; a batch id is accepted once."""

    batch_id: Annotated[str, Meta(min_length=1, max_length=100)]
    records: Annotated[list[UsageRecordIn], Meta(min_length=1, max_length=10_000)]


class UsageAccepted(Struct, frozen=True, kw_only=True):
    contract_id: str
    batch_id: str
    accepted: int
    """Records newly counted (0 when the batch was already received)."""
    duplicate_batch: bool
    cycle_start: datetime
    cycle_calls: int
    exposure: int
    """What the buyer owes so far in this cycle, in fen."""
    credit_limit: int
    lifecycle: str


class RevenueIn(_Wire):
    period: Annotated[str, Meta(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
    """The calendar month (Asia/Shanghai) the revenue was earned in, e.g. 2026-11."""
    revenue: Annotated[int, Meta(ge=0, le=AMOUNT_MAX)]
    """The buyer's revenue from the data in that month, in fen."""


class BillOut(Struct, frozen=True, kw_only=True):
    id: str
    contract_id: str
    kind: str
    period_start: datetime
    period_end: datetime
    quantity: int
    amount: int
    buyer_fee: int
    vendor_fee: int
    status: str
    detail: dict[str, Any]
    created_at: datetime


class BillPage(Struct, frozen=True, kw_only=True):
    items: list[BillOut]


class TraceOut(Struct, frozen=True, kw_only=True):
    rule: str
    source: str
    inputs: dict[str, Any]
    outcome: str
    """pass, fail or not_applicable."""
    message: str


class ExplainOut(Struct, frozen=True, kw_only=True):
    subject: str
    """What is explained: `order <id>`, `listing <id> revision <n>`, `fees of contract <id>`."""
    decision: str
    rulebook_hash: str
    rulebook_version: int
    judged_at: datetime
    rules: list[TraceOut]


class Holder(Struct, frozen=True, kw_only=True):
    buyer_id: str
    licences: int
    share_bps: int


class CategoryConcentration(Struct, frozen=True, kw_only=True):
    category: str
    licences: int
    limit_bps: int
    top: list[Holder]


class ConcentrationOut(Struct, frozen=True, kw_only=True):
    since: datetime
    days: int
    categories: list[CategoryConcentration]


class LicenceChanges(_Wire):
    duration_days: Annotated[int, Meta(ge=1, le=36_600)] | None = None
    purposes: Annotated[list[Purpose], Meta(min_length=1, max_length=20)] | None = None
    territory: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    onward_transfer: bool | None = None


class AmendmentIn(_Wire):
    changes: LicenceChanges
    reason: Text


class AmendmentOut(Struct, frozen=True, kw_only=True):
    id: str
    contract_id: str
    proposed_by: str
    changes: dict[str, Any]
    reason: str
    status: str
    """proposed, accepted, declined."""
    new_contract_id: str | None
    created_at: datetime
    decided_at: datetime | None


class BillResolveIn(_Wire):
    outcome: Literal["uphold", "refund"]
    reason: Text
