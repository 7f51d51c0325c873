"""Listing requests and responses on the wire. Money is integer fen; text limits are generous
here and tightened by the operator's rules (rules/listing.toml)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from exchange.core.money import Money

TEXT_MAX = 20_000
NAME_MAX = 200
PLANS_MAX = 20
TIERS_MAX = 20
LICENCES_MAX = 1_000_000
SCHEMA_BYTES_MAX = 64_000

ShortText = Annotated[str, Meta(min_length=1, max_length=NAME_MAX)]
LongText = Annotated[str, Meta(min_length=1, max_length=TEXT_MAX)]
Code = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
Count = Annotated[int, Meta(ge=1, le=LICENCES_MAX)]


class Delivery(StrEnum):
    api = "api"
    file = "file"
    report = "report"
    compute = "compute"


class UpdateFrequency(StrEnum):
    realtime = "realtime"
    hourly = "hourly"
    daily = "daily"
    weekly = "weekly"
    monthly = "monthly"
    quarterly = "quarterly"
    yearly = "yearly"
    static = "static"


class Right(StrEnum):
    """The three separable data rights of 数据三权分置."""

    holding = "holding"  # 数据资源持有权
    use = "use"  # 数据加工使用权
    operation = "operation"  # 数据产品经营权


class ListingStatus(StrEnum):
    draft = "draft"
    submitted = "submitted"
    listed = "listed"
    rejected = "rejected"
    suspended = "suspended"
    delisted = "delisted"


class _Wire(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class Attestations(_Wire, kw_only=True):
    """What the vendor attests about the data's provenance and rights (确权)."""

    source: Annotated[str, Meta(max_length=TEXT_MAX)] | None = None
    """How the data was lawfully obtained (source legality)."""
    consent: Annotated[str, Meta(max_length=TEXT_MAX)] | None = None
    """Reference to the data subjects' consent, required for personal data."""
    authorisation_id: Annotated[str, Meta(max_length=NAME_MAX)] | None = None
    """Id of the authorisation that permits trading this data (e.g. for biometric data)."""
    rights: Annotated[list[Right], Meta(max_length=3)] = msgspec.field(default_factory=list)


class Licence(_Wire, kw_only=True):
    purposes: Annotated[list[ShortText], Meta(min_length=1, max_length=20)]
    duration_days: Annotated[int, Meta(ge=1, le=36_600)]
    territory: ShortText = "CN"
    onward_transfer: bool = False
    exclusive: bool = False
    max_licences: Count | None = None
    """How many licences may be sold in all; None is unlimited."""
    termination: Literal["either_party", "buyer_only", "none"] = "either_party"
    """Who may end a contract before it expires (operators always may)."""


class Tier(_Wire, kw_only=True):
    up_to: Annotated[int, Meta(ge=1)] | None
    """Calls in the month up to which this tier's price applies; None for the last tier."""
    price: Money
    """Price per call."""


class _Plan(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="kind"):
    id: str | None = None
    """Assigned by the exchange; send it back on PATCH to keep a plan's identity."""
    approval_required: bool = False
    """True: each buy waits for the vendor's approval of the buyer's use case (无场景不交易)."""


class FixedPlan(_Plan, tag="fixed", kw_only=True):
    price: Money


class FreePlan(_Plan, tag="free", kw_only=True):
    pass


class SubscriptionPlan(_Plan, tag="subscription", kw_only=True):
    price: Money
    """Charged per period."""
    period_days: Annotated[int, Meta(ge=1, le=3660)]


class MeteredPlan(_Plan, tag="metered", kw_only=True):
    tiers: Annotated[list[Tier], Meta(min_length=1, max_length=TIERS_MAX)]
    monthly_fee: Money | None = None
    free_calls: Annotated[int, Meta(ge=0)] = 0
    monthly_cap: Money | None = None

    def __post_init__(self) -> None:
        limits = [tier.up_to for tier in self.tiers]
        if any(limit is None for limit in limits[:-1]):
            raise ValueError("only the last tier may have `up_to` null")
        bounded = [limit for limit in limits if limit is not None]
        if bounded != sorted(set(bounded)) or len(bounded) != len(set(bounded)):
            raise ValueError("tiers must have strictly increasing `up_to`")


class AuctionPlan(_Plan, tag="auction", kw_only=True):
    reserve_price: Money
    licences: Count


class QuotaPlan(_Plan, tag="quota", kw_only=True):
    unit: ShortText
    """What one unit is, e.g. "10,000 API calls" or "1 GB"."""
    reference_price: Money
    """Per unit; the price band of the book is set around it."""


class NegotiatedPlan(_Plan, tag="negotiated", kw_only=True):
    pass


class RevenueSharePlan(_Plan, tag="revenue_share", kw_only=True):
    share_bps: Annotated[int, Meta(ge=1, le=10_000)]
    """The vendor's share of the buyer's reported revenue, in basis points."""
    minimum: Money
    """Minimum charge per period."""


Plan = (
    FixedPlan
    | FreePlan
    | SubscriptionPlan
    | MeteredPlan
    | AuctionPlan
    | QuotaPlan
    | NegotiatedPlan
    | RevenueSharePlan
)
PLAN_KINDS = ("fixed", "free", "subscription", "metered", "auction", "quota", "negotiated", "revenue_share")

Schema = Annotated[str, Meta(max_length=SCHEMA_BYTES_MAX)] | dict[str, Any] | list[Any]


class ListingIn(_Wire, kw_only=True):
    """A vendor's description of a data product; the body of POST /v1/listings."""

    title: ShortText
    description: LongText
    category: Code
    grade: Code
    delivery: Delivery
    update_frequency: UpdateFrequency = UpdateFrequency.static
    schema: Schema | None = None
    personal_data: bool = False
    """True when the data contains personal information (个人信息)."""
    attestations: Attestations = msgspec.field(default_factory=Attestations)
    licence: Licence
    plans: Annotated[list[Plan], Meta(min_length=1, max_length=PLANS_MAX)]

    def __post_init__(self) -> None:
        if isinstance(self.schema, (dict, list)) and len(msgspec.json.encode(self.schema)) > SCHEMA_BYTES_MAX:
            raise ValueError(f"schema is larger than {SCHEMA_BYTES_MAX} bytes")


class ListingPatch(_Wire, kw_only=True):
    """PATCH body: only the fields given change. A listed product gets a new revision."""

    title: ShortText | msgspec.UnsetType = msgspec.UNSET
    description: LongText | msgspec.UnsetType = msgspec.UNSET
    category: Code | msgspec.UnsetType = msgspec.UNSET
    grade: Code | msgspec.UnsetType = msgspec.UNSET
    delivery: Delivery | msgspec.UnsetType = msgspec.UNSET
    update_frequency: UpdateFrequency | msgspec.UnsetType = msgspec.UNSET
    schema: Schema | None | msgspec.UnsetType = msgspec.UNSET
    personal_data: bool | msgspec.UnsetType = msgspec.UNSET
    attestations: Attestations | msgspec.UnsetType = msgspec.UNSET
    licence: Licence | msgspec.UnsetType = msgspec.UNSET
    plans: Annotated[list[Plan], Meta(min_length=1, max_length=PLANS_MAX)] | msgspec.UnsetType = msgspec.UNSET


Reason = Annotated[str, Meta(min_length=1, max_length=2000)]


class ChecklistAnswer(_Wire, kw_only=True):
    item: Annotated[str, Meta(min_length=1, max_length=64)]
    passed: bool
    evidence: Annotated[str, Meta(max_length=TEXT_MAX)] = ""
    """What the operator checked: document numbers, report references, findings."""


class ApproveIn(_Wire, kw_only=True):
    reason: Reason
    checklist: Annotated[list[ChecklistAnswer], Meta(max_length=100)] = []


class ReasonIn(_Wire, kw_only=True):
    reason: Reason


class OptionalReasonIn(_Wire, kw_only=True):
    reason: Reason | None = None


class ChecklistItemOut(Struct, frozen=True, kw_only=True):
    item: str
    kind: str
    """compliance (合规评估) or quality (质量评估)."""
    text: str


class PendingRevision(Struct, frozen=True, kw_only=True):
    """A newer revision of a listed product, in draft or review; the listed one stays on sale."""

    number: int
    status: str
    content: ListingIn


class ListingOut(ListingIn, kw_only=True):
    """A listing as the catalogue shows it: the shown revision's content plus its state."""

    id: str
    vendor_id: str
    status: ListingStatus
    revision: int
    created_at: datetime
    updated_at: datetime
    listed_at: datetime | None = None
    rulebook_hash: str | None = None
    """The rule set that last judged this listing."""
    pending_revision: PendingRevision | None = None
    checklist: list[ChecklistItemOut] | None = None
    """While in review: what the operator must answer to approve."""


class ListingPage(Struct, frozen=True, kw_only=True):
    items: list[ListingOut]
    next_cursor: str | None


class ListingEventOut(Struct, frozen=True, kw_only=True):
    revision: int
    action: str
    from_status: str | None
    to_status: str
    actor_id: str
    at: datetime
    reason: str | None
    rulebook_hash: str
    details: dict[str, Any]


class ListingHistory(Struct, frozen=True, kw_only=True):
    listing_id: str
    events: list[ListingEventOut]


class SortOrder(StrEnum):
    relevance = "relevance"
    newest = "newest"
    price_asc = "price_asc"
    price_desc = "price_desc"
    title = "title"
