"""What the rule files say, as typed values. Every Struct forbids unknown fields, so an
operator's typo (`listabel = false`) fails when the set is loaded, never when a rule is used.

One field of `Rulebook` is one rule file: the field `catalogue` is `catalogue.toml`. Adding a
rule file is adding a field there (and its checks in load.py).

Rule sets stored before trading.toml, fees.toml and settlement.toml existed have only the
catalogue and listing files. Every Struct of those later files is therefore fully defaulted, and
its defaults are exactly what the shipped file says: a set without the file decodes as if the
shipped file were there (tests/rulebook/test_shipped_rules.py holds the two together)."""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from exchange.listings.schemas import NAME_MAX, TEXT_MAX, Code, ListingIn, ShortText
from exchange.participants.schemas import Qualification

ItemId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
"""Checklist item ids; operators answer items by id (ChecklistAnswer.item)."""
Purpose = ShortText
"""A purpose a buyer declares, as in a listing's licence purposes."""


class _Rules(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class Category(_Rules, frozen=True, kw_only=True):
    """A data category of the classification standard (数据分类)."""

    code: Code
    name_zh: ShortText
    name_en: ShortText
    requires_authorisation: bool
    """Listings must give `attestations.authorisation_id` (e.g. 人脸等生物特征)."""
    personal: bool
    """Personal data by nature: every listing of the category needs a consent attestation."""
    buyer_qualifications: Annotated[list[Qualification], Meta(max_length=32)] = msgspec.field(default_factory=list)
    """A buyer must hold one of these to buy; empty: anyone may buy."""
    buyer_purposes: Annotated[list[Purpose], Meta(max_length=64)] = msgspec.field(default_factory=list)
    """The purposes a buyer may declare; empty: any purpose."""


class Grade(_Rules, frozen=True, kw_only=True):
    """A sensitivity grade (数据分级), L1 the least sensitive."""

    code: Code
    name_zh: ShortText
    name_en: ShortText
    listable: bool
    """False bars the grade from the catalogue (core data, 核心数据)."""


class CatalogueRules(_Rules, frozen=True, kw_only=True):
    """catalogue.toml: the classification standard (分类分级) every listing is judged by."""

    personal_data_requires_consent: bool = True
    """A listing marked `personal_data` must give `attestations.consent`."""
    categories: Annotated[list[Category], Meta(min_length=1, max_length=200)]
    grades: Annotated[list[Grade], Meta(min_length=1, max_length=20)]

    def category(self, code: str) -> Category | None:
        return next((category for category in self.categories if category.code == code), None)

    def grade(self, code: str) -> Grade | None:
        return next((grade for grade in self.grades if grade.code == code), None)


class VendorRules(_Rules, frozen=True, kw_only=True):
    """Who may list (数商准入)."""

    qualifications_any: Annotated[list[Qualification], Meta(max_length=32)] = msgspec.field(default_factory=list)
    """A vendor must hold one of these; empty: any vendor may list."""
    allow_sponsored: bool = True
    """A vendor sponsored by a participant holding one of `qualifications_any` may list too."""


class ChecklistKind(StrEnum):
    compliance = "compliance"  # 合规评估
    quality = "quality"  # 质量评估


class ChecklistItem(_Rules, frozen=True, kw_only=True):
    """A question an operator answers, with evidence, before approving a listing."""

    id: ItemId
    kind: ChecklistKind
    text: Annotated[str, Meta(min_length=1, max_length=2000)]
    categories: Annotated[list[Code], Meta(max_length=200)] = msgspec.field(default_factory=list)
    """Asked of listings in these categories; empty: every category."""
    grades: Annotated[list[Code], Meta(max_length=20)] = msgspec.field(default_factory=list)
    """Asked of listings of these grades; empty: every grade."""
    personal_only: bool = False
    """Asked only of personal data: `personal_data` listings and personal categories."""


class ListingRules(_Rules, frozen=True, kw_only=True):
    """listing.toml: what a listing must contain and who may list (挂牌规则)."""

    required: Annotated[
        list[Annotated[str, Meta(min_length=1, max_length=64)]], Meta(max_length=64)
    ] = msgspec.field(default_factory=list)
    """Dotted names of ListingIn fields that must be given (not null, blank or empty)."""
    title_length_max: Annotated[int, Meta(ge=1, le=NAME_MAX)]
    description_length_min: Annotated[int, Meta(ge=1, le=TEXT_MAX)]
    description_length_max: Annotated[int, Meta(ge=1, le=TEXT_MAX)]
    licence_duration_days_max: Annotated[int, Meta(ge=1, le=36_600)]
    plan_kinds: Annotated[dict[Code, list[str]], Meta(max_length=20)]
    """Grade code -> the price-plan kinds a listing of that grade may offer."""
    vendors: VendorRules = msgspec.field(default_factory=VendorRules)
    checklist: Annotated[list[ChecklistItem], Meta(max_length=100)] = msgspec.field(default_factory=list)


# trading.toml


class Weekday(StrEnum):
    mon = "mon"
    tue = "tue"
    wed = "wed"
    thu = "thu"
    fri = "fri"
    sat = "sat"
    sun = "sun"


WEEKDAYS = tuple(Weekday)
"""In date.weekday() order: WEEKDAYS[at.weekday()] is the day of `at`."""

_TIME_OF_DAY = re.compile(r"(?P<hours>[0-9]{2}):(?P<minutes>[0-9]{2})")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
DAY_MINUTES = 24 * 60


def minute_of_day(text: str) -> int | None:
    """`"HH:MM"` as minutes after midnight, 0 to 1440 (`"24:00"`, the end of the day); None when
    `text` is not such a time."""
    match = _TIME_OF_DAY.fullmatch(text)
    if match is None:
        return None
    hours, minutes = int(match["hours"]), int(match["minutes"])
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        return None
    return hours * 60 + minutes


def iso_date(text: str) -> date | None:
    """`"YYYY-MM-DD"` as a date; None when `text` is not a real date written so."""
    if _ISO_DATE.fullmatch(text) is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


class SessionRules(_Rules, frozen=True, kw_only=True):
    """When orders are accepted (交易时间). A session runs from `open` to `close` on each of
    `days` in `timezone`, except on `holidays`; it cannot span midnight."""

    timezone: Annotated[str, Meta(min_length=1, max_length=64)] = "Asia/Shanghai"
    """An IANA time-zone name; days, times and holidays are read in it."""
    days: Annotated[list[Weekday], Meta(min_length=1, max_length=7)] = msgspec.field(
        default_factory=lambda: list(WEEKDAYS)
    )
    open: Annotated[str, Meta(max_length=16)] = "00:00"
    """`"HH:MM"`, inclusive."""
    close: Annotated[str, Meta(max_length=16)] = "24:00"
    """`"HH:MM"`, exclusive; `"24:00"` is the end of the day."""
    holidays: Annotated[list[Annotated[str, Meta(max_length=32)]], Meta(max_length=1000)] = msgspec.field(
        default_factory=list
    )
    """`"YYYY-MM-DD"` dates (in `timezone`) with no trading (休市)."""

    def open_minute(self) -> int:
        minute = minute_of_day(self.open)
        assert minute is not None, "load.py refuses a bad time"
        return minute

    def close_minute(self) -> int:
        minute = minute_of_day(self.close)
        assert minute is not None, "load.py refuses a bad time"
        return minute


class SelfTrade(StrEnum):
    """What a book does when a participant's order would match its own resting order."""

    cancel_taker = "cancel_taker"  # the incoming order is cancelled (its unmatched rest)
    cancel_maker = "cancel_maker"  # the resting order is cancelled and matching goes on
    allow = "allow"


class QuotaRules(_Rules, frozen=True, kw_only=True):
    """Continuous books of quota plans (连续竞价): what an order on them may be."""

    price_band_bps: Annotated[int, Meta(ge=0, le=10_000)] = 2_000
    """Limit prices must lie within this many basis points of the reference price (涨跌幅限制)."""
    tick_fen: Annotated[int, Meta(ge=1, le=100_000_000)] = 1
    """Limit prices must be whole multiples of this (最小变动价位)."""
    lot: Annotated[int, Meta(ge=1, le=1_000_000)] = 1
    """Quantities must be whole multiples of this (交易单位)."""
    order_quantity_max: Annotated[int, Meta(ge=1, le=1_000_000_000)] = 10_000
    order_lifetime_days_max: Annotated[int, Meta(ge=1, le=3_660)] = 30
    """The longest a good-till-cancelled order may rest before it expires."""
    self_trade: SelfTrade = SelfTrade.cancel_taker


class OrderRules(_Rules, frozen=True, kw_only=True):
    """Limits on every participant's orders."""

    rate_per_minute_max: Annotated[int, Meta(ge=1, le=100_000)] = 60
    """Orders one participant may place in any minute, on all books together."""
    quantity_max: Annotated[int, Meta(ge=1, le=1_000_000)] = 100
    """The most licences one buy of a fixed or subscription plan may ask for."""


class AuctionPriceRule(StrEnum):
    """The uniform clearing price of a sealed-bid auction of N licences (exchange.orders.auction)."""

    nth = "nth"  # the Nth-highest bid's price, the lowest winning bid
    n_plus_one = "n_plus_one"  # the (N+1)th-highest bid's price, the highest losing bid


class AuctionRules(_Rules, frozen=True, kw_only=True):
    price_rule: AuctionPriceRule = AuctionPriceRule.nth
    """Never below the reserve price, whichever rule."""
    duration_hours_max: Annotated[int, Meta(ge=1, le=8_784)] = 168
    """The longest an auction may accept bids."""
    bid_quantity_max: Annotated[int, Meta(ge=1, le=1_000_000)] = 1
    """The most licences one bid may ask for."""


class AccessRule(_Rules, frozen=True, kw_only=True):
    """Who may buy what (买方准入). An entry applies to a buy when the listing's category and
    grade match; the buyer must then meet every condition the entry gives."""

    id: ItemId
    """Stable name of the entry; refusals cite it as `trading.access.<id>...`."""
    categories: Annotated[list[Code], Meta(max_length=200)] = msgspec.field(default_factory=list)
    """Applies to listings of these categories; empty: every category."""
    grades: Annotated[list[Code], Meta(max_length=20)] = msgspec.field(default_factory=list)
    """Applies to listings of these grades; empty: every grade."""
    qualifications_any: Annotated[list[Qualification], Meta(max_length=32)] = msgspec.field(default_factory=list)
    """The buyer must hold one of these; empty: any buyer."""
    purposes_any: Annotated[list[Purpose], Meta(max_length=64)] = msgspec.field(default_factory=list)
    """The buyer's declared purpose must be one of these; empty: any purpose."""


def _shipped_access() -> list[AccessRule]:
    return [
        AccessRule(
            id="medical-sensitive",
            categories=["medical"],
            grades=["L3"],
            qualifications_any=["medical-licensed"],
            purposes_any=["research"],
        ),
        AccessRule(
            id="public-data",
            categories=["public"],
            qualifications_any=["public-data-operator"],
        ),
    ]


class SurveillanceRules(_Rules, frozen=True, kw_only=True):
    """Market surveillance (市场监察): concentration limits and circuit breakers."""

    concentration_max_bps: Annotated[int, Meta(ge=1, le=10_000)] = 5_000
    """No buyer may hold more than this share of a category's licences sold in the window."""
    concentration_days: Annotated[int, Meta(ge=1, le=3_660)] = 30
    concentration_min_licences: Annotated[int, Meta(ge=1, le=10**9)] = 20
    """The limit applies once the category has this many licences in the window (with the new one)."""
    circuit_breaker_bps: Annotated[int, Meta(ge=1, le=100_000)] = 1_000
    """A quota book whose price moves this much within the window is halted."""
    circuit_breaker_minutes: Annotated[int, Meta(ge=1, le=1_440)] = 5


class ApiRules(_Rules, frozen=True, kw_only=True):
    """Request limits per participant (限流)."""

    requests_per_minute: Annotated[int, Meta(ge=1, le=1_000_000)] = 1_200
    """Requests one participant may make per minute on one server process; more get 429."""


class TradingRules(_Rules, frozen=True, kw_only=True):
    """trading.toml: when and how orders may be placed, and who may buy what (交易规则)."""

    api: ApiRules = msgspec.field(default_factory=ApiRules)

    surveillance: SurveillanceRules = msgspec.field(default_factory=SurveillanceRules)

    sessions: SessionRules = msgspec.field(default_factory=SessionRules)
    quota: QuotaRules = msgspec.field(default_factory=QuotaRules)
    orders: OrderRules = msgspec.field(default_factory=OrderRules)
    auction: AuctionRules = msgspec.field(default_factory=AuctionRules)
    access: Annotated[list[AccessRule], Meta(max_length=100)] = msgspec.field(default_factory=_shipped_access)
    """Left out: the shipped entries apply; `access = []` for none."""


# fees.toml

Bps = Annotated[int, Meta(ge=0, le=10_000)]
"""Basis points: 100 bps is 1%."""
FEN_MAX = 10**15
"""Ten trillion yuan: more than any amount the exchange handles."""


class FeeTier(_Rules, frozen=True, kw_only=True):
    """Rates for a party whose volume this calendar month has reached `volume_from_fen`."""

    volume_from_fen: Annotated[int, Meta(ge=1, le=FEN_MAX)]
    buyer_bps: Bps | None = None
    """Left out: the schedule's buyer_bps."""
    vendor_bps: Bps | None = None
    """Left out: the schedule's vendor_bps."""


class FeeSchedule(_Rules, frozen=True, kw_only=True):
    """The exchange's fees (交易服务费) on trades of one plan kind."""

    plan_kind: Code
    buyer_bps: Bps
    vendor_bps: Bps
    minimum_fen: Annotated[int, Meta(ge=0, le=FEN_MAX)] = 0
    """The least fee a side pays, when that side's rate is above zero (never more than the
    notional)."""
    tiers: Annotated[list[FeeTier], Meta(max_length=20)] = msgspec.field(default_factory=list)
    """By increasing `volume_from_fen`; a party's rate is its highest tier reached."""


def _shipped_fees() -> list[FeeSchedule]:
    paid = [
        FeeSchedule(
            plan_kind=kind,
            buyer_bps=0,
            vendor_bps=100,
            minimum_fen=100,
            tiers=[FeeTier(volume_from_fen=10_000_000, vendor_bps=50)],
        )
        for kind in ("fixed", "subscription", "quota", "auction", "metered", "negotiated", "revenue_share")
    ]
    return [*paid, FeeSchedule(plan_kind="free", buyer_bps=0, vendor_bps=0)]


class FeeSplits(_Rules, frozen=True, kw_only=True):
    """Who shares the fees the exchange collects on a settled trade (分润)."""

    sponsor_bps: Annotated[int, Meta(ge=0, le=10_000)] = 1_000
    """Share of a trade's fees paid to the data merchant (数商) sponsoring its vendor, if any."""
    public_body_bps: Annotated[int, Meta(ge=0, le=10_000)] = 0
    """Share of the fees on public-data trades paid to the authorising public body."""
    public_body_id: Annotated[str, Meta(max_length=40)] = ""
    """The participant id of the authorising public body; empty: no public-body share."""
    public_categories: Annotated[list[str], Meta(max_length=20)] = msgspec.field(default_factory=lambda: ["public"])
    """Categories whose trades give the public body its share."""


class FeeRules(_Rules, frozen=True, kw_only=True):
    """fees.toml: the exchange's fees per plan kind, with volume tiers (收费标准)."""

    fees: Annotated[list[FeeSchedule], Meta(max_length=20)] = msgspec.field(default_factory=_shipped_fees)
    """A plan kind without a schedule pays no fees."""
    splits: FeeSplits = msgspec.field(default_factory=FeeSplits)

    def schedule(self, plan_kind: str) -> FeeSchedule | None:
        return next((fee for fee in self.fees if fee.plan_kind == plan_kind), None)


# settlement.toml

Hours = Annotated[int, Meta(ge=1, le=8_784)]
"""At least an hour, at most a (leap) year."""


class SettlementRules(_Rules, frozen=True, kw_only=True):
    """settlement.toml: delivery confirmation and disputes (交付确认, 争议)."""

    delivery_confirm_hours: Hours = 72
    """How long the buyer has to confirm a delivery, from the delivery."""
    auto_confirm: bool = True
    """True: a delivery the buyer neither confirms nor disputes in time is confirmed."""
    dispute_hours: Hours = 168
    """How long the buyer may dispute a delivery, from the delivery."""
    entitlement_token_minutes: Annotated[int, Meta(ge=1, le=10_080)] = 60
    """How long an entitlement token stays valid; buyers refresh it while the contract is active."""
    approval_hours: Hours = 48
    """How long a vendor has to approve a buy of a plan that needs approval; then it lapses."""
    metered_credit_limit_fen: Annotated[int, Meta(ge=0, le=10**15)] = 1_000_000
    """Most a buyer may owe on one metered contract's open cycle before it is suspended."""


class Rulebook(Struct, frozen=True, kw_only=True):
    """Every rule file of a set, decoded and validated together (see load.decode_rulebook)."""

    catalogue: CatalogueRules
    listing: ListingRules
    trading: TradingRules = msgspec.field(default_factory=TradingRules)
    fees: FeeRules = msgspec.field(default_factory=FeeRules)
    settlement: SettlementRules = msgspec.field(default_factory=SettlementRules)


RULE_FILE_TYPES: dict[str, tuple[str, Any]] = {
    f"{field.name}.toml": (field.name, field.type) for field in msgspec.structs.fields(Rulebook)
}
"""Rule file name -> (Rulebook attribute, Struct the file decodes to)."""
RULE_FILES = tuple(RULE_FILE_TYPES)
OPTIONAL_RULE_FILES = frozenset(
    f"{field.name}.toml" for field in msgspec.structs.fields(Rulebook) if not field.required
)
"""Files a set may leave out: read as empty, so their defaults (the shipped values) apply."""


def _listing_field_names() -> frozenset[str]:
    """ListingIn's fields and, one level down, those of its nested Structs (attestations.source)."""
    names: set[str] = set()
    for field in msgspec.structs.fields(ListingIn):
        names.add(field.name)
        if isinstance(field.type, type) and issubclass(field.type, Struct):
            names.update(
                f"{field.name}.{inner.name}" for inner in msgspec.structs.fields(field.type)
            )
    return frozenset(names)


LISTING_FIELDS = _listing_field_names()
"""The names `required` in listing.toml may use."""
