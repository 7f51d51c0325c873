"""Rule-set requests and responses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from msgspec import Meta, Struct

FileName = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_-]*\.toml$", max_length=64)]
FileText = Annotated[str, Meta(max_length=1_000_000)]
Files = Annotated[dict[FileName, FileText], Meta(min_length=1, max_length=32)]


class RulesDryRunIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    files: Files
    """File name -> TOML text. Files left out are taken from the active rule set."""


class RulesApplyIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    files: Files
    """File name -> TOML text. Files left out are taken from the active rule set."""
    reason: Annotated[str, Meta(min_length=1, max_length=2000)]
    effective_at: datetime | None = None
    """When the set takes effect (UTC, RFC 3339); now when left out."""


class RuleSetOut(Struct, frozen=True, kw_only=True):
    version: int
    hash: str
    reason: str
    created_by: str
    created_at: datetime
    effective_at: datetime
    active: bool
    files: dict[str, str] | None = None


class RuleSetHistory(Struct, frozen=True, kw_only=True):
    items: list[RuleSetOut]


class ListingImpact(Struct, frozen=True, kw_only=True):
    listing_id: str
    title: str
    status: str
    revision: int
    violations: list[dict[str, Any]]
    """The candidate set's violations this listing does not have under the active set."""


class OrderImpact(Struct, frozen=True, kw_only=True):
    order_id: str
    listing_id: str
    participant_id: str
    side: str
    price: int | None
    remaining: int
    violations: list[dict[str, Any]]


class ParticipantFees(Struct, frozen=True, kw_only=True):
    participant_id: str
    active: int
    """Fees the participant paid on the window's contracts (as buyer and as vendor)."""
    candidate: int
    delta: int


class FeeImpact(Struct, frozen=True, kw_only=True):
    """Fees of the last `days` days of contracts, recomputed under each rule set."""

    days: int
    contracts: int
    buyer_fees_active: int
    buyer_fees_candidate: int
    vendor_fees_active: int
    vendor_fees_candidate: int
    by_participant: list[ParticipantFees]
    """Only participants whose fees would change."""


class DryRunReport(Struct, frozen=True, kw_only=True):
    hash: str
    """The candidate set's hash."""
    active_hash: str
    changed_files: list[str]
    listings: list[ListingImpact]
    """Listed or submitted listings the candidate set would newly fail."""
    orders: list[OrderImpact]
    """Open orders and bids the candidate set would refuse."""
    replayed_orders: list[OrderImpact]
    """Orders placed in the last 30 days (and accepted) that the candidate set would have refused."""
    fees: FeeImpact
    """How the fees of recent trades would change."""


class ShadowIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    files: Files
    """Candidate files; files left out are the active set's."""
    reason: Annotated[str, Meta(min_length=1, max_length=2000)]


class ShadowOut(Struct, frozen=True, kw_only=True):
    id: str
    hash: str
    reason: str
    status: str
    """shadowing, promoted or dropped."""
    judged: int
    created_by: str
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None


class DivergenceOut(Struct, frozen=True, kw_only=True):
    order_id: str
    participant_id: str
    listing_id: str
    active_outcome: str
    shadow_outcome: str
    active_rules: list[str]
    shadow_violations: list[dict[str, Any]]
    at: datetime


class ShadowReport(Struct, frozen=True, kw_only=True):
    shadow: ShadowOut
    divergences: list[DivergenceOut]
