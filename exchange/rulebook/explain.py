"""Why a rule decided what it did: every rule a listing, an order or a fee is judged by, with the
facts it looked at, its parameters, its outcome and the place in the rule file behind it. Pure,
like the checks it explains.

The checks stay the decisions. These functions evaluate the same rules again, in the same order,
and tests/rulebook/test_explain.py holds that their `fail` traces are exactly the violations of
check_listing and check_order (rule, message, source and order) on generated listings and
orders, and that explain_fees arrives at fee_for's fees. A rule changed in evaluate.py or
trading.py is changed here too; those tests say where."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from exchange.listings.schemas import ListingIn

# The checks' private helpers too (here and from trading.py): a trace must find, word and compute
# things exactly as its check does.
from exchange.rulebook.evaluate import VendorFacts, Violation, _field_value, _find, _missing, _plan_kind
from exchange.rulebook.evaluate import _named as _named_category
from exchange.rulebook.model import (
    DAY_MINUTES,
    WEEKDAYS,
    AccessRule,
    AuctionRules,
    CatalogueRules,
    Category,
    FeeSchedule,
    Grade,
    ListingRules,
    OrderRules,
    QuotaRules,
    Rulebook,
    SessionRules,
    VendorRules,
    iso_date,
)
from exchange.rulebook.trading import (
    BPS,
    ORDER_TYPES,
    QUANTITY_CAPPED_KINDS,
    SIDES,
    OrderFacts,
    _aware,
    _days,
    _declared,
    _fen,
    _named,
    _one_of,
    price_band,
)

PASS = "pass"
FAIL = "fail"
NOT_APPLICABLE = "not_applicable"
OUTCOMES = (PASS, FAIL, NOT_APPLICABLE)
FEE_SIDES = ("buyer", "vendor")
"""In fee_for's order: (buyer's fee, vendor's fee)."""


@dataclass(frozen=True)
class RuleTrace:
    """One rule as it was applied to one case."""

    rule: str
    """The stable id a Violation of the rule carries, e.g. `trading.quota.price_band`."""
    source: str
    """Where the rule lives, `file.toml: key.path`; for a failure, the Violation's source."""
    inputs: dict[str, Any]
    """The facts the rule looked at and its parameters, as JSON values: ints, strs, bools, None
    and lists of them; times as ISO strings."""
    outcome: str
    """"pass", "fail" or "not_applicable"."""
    message: str
    """For "fail", the Violation's message; otherwise why the rule passed or did not apply."""


def violations_of(traces: list[RuleTrace]) -> list[Violation]:
    """The Violations the failed traces stand for, in order: what the check returns."""
    return [Violation(trace.rule, trace.message, trace.source) for trace in traces if trace.outcome == FAIL]


# Listings: the rules of evaluate.check_listing, in its order.


def explain_listing(rulebook: Rulebook, listing: ListingIn, vendor: VendorFacts) -> list[RuleTrace]:
    """Every rule check_listing judges `listing` by `vendor` with, in its order; the failed ones
    are exactly its violations."""
    category_at = _find(rulebook.catalogue.categories, listing.category)
    grade_at = _find(rulebook.catalogue.grades, listing.grade)
    return [
        *_classification(rulebook.catalogue, listing, category_at, grade_at),
        *_required(rulebook.listing, listing),
        *_limits(rulebook.listing, listing),
        _plans(rulebook.listing, listing, grade_at),
        *_attestations(rulebook.catalogue, listing, category_at),
        _vendor(rulebook.listing.vendors, vendor),
    ]


def _classification(
    catalogue: CatalogueRules,
    listing: ListingIn,
    category_at: tuple[int, Category] | None,
    grade_at: tuple[int, Grade] | None,
) -> Iterator[RuleTrace]:
    categories = [category.code for category in catalogue.categories]
    yield _judged(
        "catalogue.categories",
        "catalogue.toml: categories",
        {"category": listing.category, "categories": categories},
        broken=category_at is None,
        failure=f"The category {listing.category!r} is not in the catalogue; use one of: {', '.join(categories)}.",
        reason=f"The category {listing.category!r} is in the catalogue.",
    )
    grades = [grade.code for grade in catalogue.grades]
    yield _judged(
        "catalogue.grades",
        "catalogue.toml: grades",
        {"grade": listing.grade, "grades": grades},
        broken=grade_at is None,
        failure=f"The grade {listing.grade!r} is not defined; use one of: {', '.join(grades)}.",
        reason=f"The grade {listing.grade!r} is defined.",
    )
    if grade_at is None:
        yield _skipped(
            f"catalogue.grades.{listing.grade}.listable",
            "catalogue.toml: grades",
            {"grade": listing.grade},
            f"The grade {listing.grade!r} is not defined, so whether it may be listed is not asked.",
        )
        return
    index, grade = grade_at
    yield _judged(
        f"catalogue.grades.{grade.code}.listable",
        f"catalogue.toml: grades[{index}].listable",
        {"grade": grade.code, "listable": grade.listable},
        broken=not grade.listable,
        failure=f"Data of grade {grade.code} ({grade.name_en}, {grade.name_zh}) may not be listed.",
        reason=f"Data of grade {grade.code} may be listed.",
    )


def _required(rules: ListingRules, listing: ListingIn) -> Iterator[RuleTrace]:
    for index, name in enumerate(rules.required):
        given = not _missing(_field_value(listing, name))
        yield _judged(
            f"listing.required.{name}",
            f"listing.toml: required[{index}]",
            {"field": name, "given": given},
            broken=not given,
            failure=f"Give `{name}`: every listing needs it.",
            reason=f"`{name}` is given.",
        )


def _limits(rules: ListingRules, listing: ListingIn) -> Iterator[RuleTrace]:
    title, description = len(listing.title), len(listing.description)
    yield _judged(
        "listing.title_length_max",
        "listing.toml: title_length_max",
        {"title_length": title, "title_length_max": rules.title_length_max},
        broken=title > rules.title_length_max,
        failure=f"The title has {title} characters; at most {rules.title_length_max} are allowed.",
        reason=f"The title has {title} characters, no more than {rules.title_length_max}.",
    )
    yield _judged(
        "listing.description_length_min",
        "listing.toml: description_length_min",
        {"description_length": description, "description_length_min": rules.description_length_min},
        broken=description < rules.description_length_min,
        failure=f"The description has {description} characters; at least {rules.description_length_min} are needed.",
        reason=f"The description has {description} characters, no fewer than {rules.description_length_min}.",
    )
    yield _judged(
        "listing.description_length_max",
        "listing.toml: description_length_max",
        {"description_length": description, "description_length_max": rules.description_length_max},
        broken=description > rules.description_length_max,
        failure=f"The description has {description} characters; at most {rules.description_length_max} are allowed.",
        reason=f"The description has {description} characters, no more than {rules.description_length_max}.",
    )
    days = listing.licence.duration_days
    yield _judged(
        "listing.licence_duration_days_max",
        "listing.toml: licence_duration_days_max",
        {"licence_duration_days": days, "licence_duration_days_max": rules.licence_duration_days_max},
        broken=days > rules.licence_duration_days_max,
        failure=f"The licence lasts {days} days; at most {rules.licence_duration_days_max} are allowed.",
        reason=f"The licence lasts {days} days, no more than {rules.licence_duration_days_max}.",
    )


def _plans(rules: ListingRules, listing: ListingIn, grade_at: tuple[int, Grade] | None) -> RuleTrace:
    allowed = rules.plan_kinds.get(listing.grade)
    offered = sorted({_plan_kind(plan) for plan in listing.plans})
    inputs: dict[str, Any] = {
        "grade": listing.grade,
        "plan_kinds": offered,
        "allowed": None if allowed is None else list(allowed),
    }
    rule = f"listing.plan_kinds.{listing.grade}"
    if grade_at is None or allowed is None:
        # As in the check: such a grade is refused as unknown or unlistable already.
        return _skipped(
            rule, "listing.toml: plan_kinds", inputs, f"The grade {listing.grade!r} has no plan kinds to judge the plans by."
        )
    refused = sorted(set(offered) - set(allowed))
    return _judged(
        rule,
        f"listing.toml: plan_kinds.{listing.grade}",
        {**inputs, "refused": refused},
        broken=bool(refused),
        failure=f"Grade {listing.grade} data may not be offered with {', '.join(refused)} plans; "
        f"allowed: {', '.join(allowed)}.",
        reason=f"Grade {listing.grade} data may be offered with {', '.join(offered)} plans.",
    )


def _attestations(
    catalogue: CatalogueRules, listing: ListingIn, category_at: tuple[int, Category] | None
) -> Iterator[RuleTrace]:
    consent_given = not _missing(listing.attestations.consent)
    if category_at is None:
        unknown = f"The category {listing.category!r} is not in the catalogue, so its rules are not asked."
        for key in ("requires_authorisation", "personal"):
            yield _skipped(
                f"catalogue.categories.{listing.category}.{key}",
                "catalogue.toml: categories",
                {"category": listing.category},
                unknown,
            )
    else:
        index, category = category_at
        authorised = not _missing(listing.attestations.authorisation_id)
        inputs = {
            "category": category.code,
            "requires_authorisation": category.requires_authorisation,
            "field": "attestations.authorisation_id",
            "given": authorised,
        }
        rule = f"catalogue.categories.{category.code}.requires_authorisation"
        source = f"catalogue.toml: categories[{index}].requires_authorisation"
        if not category.requires_authorisation:
            yield _skipped(rule, source, inputs, f"{_named_category(category)} data needs no authorisation.")
        else:
            yield _judged(
                rule,
                source,
                inputs,
                broken=not authorised,
                failure=f"{_named_category(category)} data needs an authorisation to be traded: "
                "give its id in `attestations.authorisation_id`.",
                reason="An authorisation id is given in `attestations.authorisation_id`.",
            )
        inputs = {"category": category.code, "personal": category.personal, "field": "attestations.consent", "given": consent_given}
        rule, source = f"catalogue.categories.{category.code}.personal", f"catalogue.toml: categories[{index}].personal"
        if not category.personal:
            yield _skipped(rule, source, inputs, f"{_named_category(category)} data is not personal by its category.")
        else:
            yield _judged(
                rule,
                source,
                inputs,
                broken=not consent_given,
                failure=f"{_named_category(category)} data is personal data: "
                "give the data subjects' consent in `attestations.consent`.",
                reason="The data subjects' consent is given in `attestations.consent`.",
            )
    yield _declared_personal(catalogue, listing, category_at, consent_given)


def _declared_personal(
    catalogue: CatalogueRules, listing: ListingIn, category_at: tuple[int, Category] | None, consent_given: bool
) -> RuleTrace:
    rule, source = "catalogue.personal_data_requires_consent", "catalogue.toml: personal_data_requires_consent"
    inputs = {
        "personal_data": listing.personal_data,
        "personal_data_requires_consent": catalogue.personal_data_requires_consent,
        "field": "attestations.consent",
        "given": consent_given,
    }
    if category_at is not None and category_at[1].personal:
        # The check asks a personal category's own rule instead, whatever the vendor declares.
        return _skipped(rule, source, inputs, f"Consent is judged by catalogue.categories.{category_at[1].code}.personal.")
    if not listing.personal_data:
        return _skipped(rule, source, inputs, "The listing declares no personal data.")
    if not catalogue.personal_data_requires_consent:
        return _skipped(rule, source, inputs, "The catalogue asks no consent for declared personal data.")
    return _judged(
        rule,
        source,
        inputs,
        broken=not consent_given,
        failure="The listing contains personal data: give the data subjects' consent in `attestations.consent`.",
        reason="The data subjects' consent is given in `attestations.consent`.",
    )


def _vendor(rules: VendorRules, vendor: VendorFacts) -> RuleTrace:
    sponsor = vendor.sponsor_qualifications
    inputs = {
        "vendor_qualifications": sorted(vendor.qualifications),
        "sponsor_qualifications": None if sponsor is None else sorted(sponsor),
        "qualifications_any": list(rules.qualifications_any),
        "allow_sponsored": rules.allow_sponsored,
    }
    rule, source = "listing.vendors.qualifications_any", "listing.toml: vendors.qualifications_any"
    if not rules.qualifications_any:
        return _skipped(rule, source, inputs, "Any vendor may list: no qualification is asked.")
    wanted = frozenset(rules.qualifications_any)
    held = vendor.qualifications & wanted
    sponsored = rules.allow_sponsored and sponsor is not None and bool(sponsor & wanted)
    if held:
        reason = f"The vendor holds {', '.join(sorted(held))}."
    else:
        reason = f"The vendor's sponsor holds {', '.join(sorted((sponsor or frozenset()) & wanted))}."
    also = ", or be sponsored by a participant who holds one" if rules.allow_sponsored else ""
    return _judged(
        rule,
        source,
        inputs,
        broken=not (held or sponsored),
        failure=f"To list, a vendor must hold one of the qualifications {', '.join(rules.qualifications_any)}{also}.",
        reason=reason,
    )


# Orders: the rules of trading.check_order, in its order.


def explain_order(rulebook: Rulebook, facts: OrderFacts) -> list[RuleTrace]:
    """Every rule check_order judges `facts` by, in its order, those that do not apply to them
    included; the failed ones are exactly its violations. Raises ValueError where it does."""
    if facts.side not in SIDES:
        raise ValueError(f"side must be one of {', '.join(sorted(SIDES))}, not {facts.side!r}")
    if facts.order_type not in ORDER_TYPES:
        raise ValueError(f"order_type must be limit, market or None, not {facts.order_type!r}")
    _aware(facts.at, "at")
    if facts.expires_at is not None:
        _aware(facts.expires_at, "expires_at")
    trading = rulebook.trading
    return [
        *_session(trading.sessions, facts.at),
        *_orders(trading.orders, facts),
        *_quota(rulebook, trading.quota, facts),
        _auction(trading.auction, facts),
        *_catalogue_access(rulebook.catalogue, facts),
        *_access(trading.access, facts),
    ]


def _session(sessions: SessionRules, at: datetime) -> Iterator[RuleTrace]:
    """The holiday, the day, the opening and the closing time, asked in that order; the first
    that closes trading leaves the later ones unasked, as in the check."""
    zone = sessions.timezone
    local = at.astimezone(zoneinfo.ZoneInfo(zone))
    day = WEEKDAYS[local.weekday()]
    now = f"it is {day} {local:%Y-%m-%d %H:%M} in {zone}"
    when = {"at": at.isoformat(), "timezone": zone, "local_time": local.isoformat(), "weekday": day.value}
    holidays = {**when, "holidays": list(sessions.holidays)}
    days = ("trading.toml: sessions.days", {**when, "days": [weekday.value for weekday in sessions.days]})
    opening = ("trading.toml: sessions.open", {**when, "open": sessions.open})
    closing = ("trading.toml: sessions.close", {**when, "close": sessions.close})
    rule = "trading.sessions"
    for index, holiday in enumerate(sessions.holidays):
        if iso_date(holiday) == local.date():
            yield RuleTrace(
                "trading.sessions.holidays",
                f"trading.toml: sessions.holidays[{index}]",
                holidays,
                FAIL,
                f"{holiday} is a holiday: there is no trading ({now}).",
            )
            for source, inputs in (days, opening, closing):
                yield _skipped(rule, source, inputs, "A holiday closes trading all day; days and hours are not asked.")
            return
    yield RuleTrace(
        "trading.sessions.holidays", "trading.toml: sessions.holidays", holidays, PASS, f"{local:%Y-%m-%d} is not a holiday."
    )
    closed = f"Trading is open {', '.join(sessions.days)} from {sessions.open} to {sessions.close} ({zone}); {now}."
    trading_day = day in sessions.days
    yield _judged(rule, *days, broken=not trading_day, failure=closed, reason=f"{day} is a trading day.")
    if not trading_day:
        for source, inputs in (opening, closing):
            yield _skipped(rule, source, inputs, f"There is no trading on {day}; the hours are not asked.")
        return
    minute = local.hour * 60 + local.minute
    assert minute < DAY_MINUTES
    early = minute < sessions.open_minute()
    yield _judged(rule, *opening, broken=early, failure=closed, reason=f"{local:%H:%M} is at or after the opening time.")
    if early:
        yield _skipped(rule, *closing, "Before the opening time the closing time is not asked.")
        return
    late = minute >= sessions.close_minute()
    yield _judged(rule, *closing, broken=late, failure=closed, reason=f"{local:%H:%M} is before the closing time.")


def _orders(rules: OrderRules, facts: OrderFacts) -> Iterator[RuleTrace]:
    yield _judged(
        "trading.orders.rate_per_minute_max",
        "trading.toml: orders.rate_per_minute_max",
        {"orders_last_minute": facts.orders_last_minute, "rate_per_minute_max": rules.rate_per_minute_max},
        broken=facts.orders_last_minute >= rules.rate_per_minute_max,
        failure=f"A participant may place at most {rules.rate_per_minute_max} orders a minute; "
        f"you placed {facts.orders_last_minute} in the last minute. Wait a moment.",
        reason=f"{facts.orders_last_minute} order(s) in the last minute: this one is within {rules.rate_per_minute_max}.",
    )
    capped = sorted(QUANTITY_CAPPED_KINDS)
    inputs = {
        "side": facts.side,
        "plan_kind": facts.plan_kind,
        "quantity": facts.quantity,
        "quantity_max": rules.quantity_max,
        "capped_plan_kinds": capped,
    }
    rule, source = "trading.orders.quantity_max", "trading.toml: orders.quantity_max"
    if facts.side != "buy":
        yield _skipped(rule, source, inputs, "Only buys are limited; this is a sell.")
    elif facts.plan_kind not in QUANTITY_CAPPED_KINDS:
        yield _skipped(rule, source, inputs, f"Only buys of {' and '.join(capped)} plans are limited; this is a {facts.plan_kind} plan.")
    else:
        yield _judged(
            rule,
            source,
            inputs,
            broken=facts.quantity > rules.quantity_max,
            failure=f"One buy of a {facts.plan_kind} plan may ask for at most {rules.quantity_max} licence(s); "
            f"this one asks for {facts.quantity}.",
            reason=f"The buy asks for {facts.quantity}, no more than {rules.quantity_max}.",
        )


def _quota(rulebook: Rulebook, rules: QuotaRules, facts: OrderFacts) -> Iterator[RuleTrace]:
    price, reference, quantity = facts.price_fen, facts.reference_price_fen, facts.quantity
    on_book = facts.plan_kind == "quota"
    elsewhere = f"Quota book limits apply to orders on quota plans; this order is on a {facts.plan_kind} plan."
    no_price = "The order gives no price (a market order): there is no price to judge."

    band_inputs: dict[str, Any] = {
        "plan_kind": facts.plan_kind,
        "order_type": facts.order_type,
        "price_fen": price,
        "reference_price_fen": reference,
        "price_band_bps": rules.price_band_bps,
        "tick_fen": rules.tick_fen,
        "band_low_fen": None,
        "band_high_fen": None,
    }
    rule, source = "trading.quota.price_band", "trading.toml: quota.price_band_bps"
    if not on_book:
        yield _skipped(rule, source, band_inputs, elsewhere)
    elif price is None:
        yield _skipped(rule, source, band_inputs, no_price)
    elif reference is None or reference <= 0:
        yield _skipped(rule, source, band_inputs, "The book has no reference price yet, so there is no band.")
    else:
        low, high = price_band(rulebook, reference)
        yield _judged(
            rule,
            source,
            {**band_inputs, "band_low_fen": low, "band_high_fen": high},
            broken=not low <= price <= high,
            failure=f"The price {price} fen is outside the price band, {low} to {high} fen "
            f"(±{rules.price_band_bps / 100:g}% of the reference price {reference} fen).",
            reason=f"The price {price} fen is within the price band, {low} to {high} fen.",
        )

    inputs = {"plan_kind": facts.plan_kind, "price_fen": price, "tick_fen": rules.tick_fen}
    rule, source = "trading.quota.tick_fen", "trading.toml: quota.tick_fen"
    if not on_book:
        yield _skipped(rule, source, inputs, elsewhere)
    elif price is None:
        yield _skipped(rule, source, inputs, no_price)
    else:
        yield _judged(
            rule,
            source,
            inputs,
            broken=bool(price % rules.tick_fen),
            failure=f"Prices go in steps of {rules.tick_fen} fen; {price} fen is not one.",
            reason=f"{price} fen is a whole number of {rules.tick_fen}-fen steps.",
        )

    inputs = {"plan_kind": facts.plan_kind, "quantity": quantity, "lot": rules.lot}
    rule, source = "trading.quota.lot", "trading.toml: quota.lot"
    if not on_book:
        yield _skipped(rule, source, inputs, elsewhere)
    else:
        yield _judged(
            rule,
            source,
            inputs,
            broken=bool(quantity % rules.lot),
            failure=f"Quantities go in lots of {rules.lot}; {quantity} is not a whole number of lots.",
            reason=f"{quantity} is a whole number of lots of {rules.lot}.",
        )

    inputs = {"plan_kind": facts.plan_kind, "quantity": quantity, "order_quantity_max": rules.order_quantity_max}
    rule, source = "trading.quota.order_quantity_max", "trading.toml: quota.order_quantity_max"
    if not on_book:
        yield _skipped(rule, source, inputs, elsewhere)
    else:
        yield _judged(
            rule,
            source,
            inputs,
            broken=quantity > rules.order_quantity_max,
            failure=f"An order may ask for at most {rules.order_quantity_max}; this one asks for {quantity}.",
            reason=f"The order asks for {quantity}, no more than {rules.order_quantity_max}.",
        )

    expires_at = facts.expires_at
    lifetime = None if expires_at is None else expires_at - facts.at
    inputs = {
        "plan_kind": facts.plan_kind,
        "at": facts.at.isoformat(),
        "expires_at": None if expires_at is None else expires_at.isoformat(),
        "lifetime": None if lifetime is None else _days(lifetime),
        "order_lifetime_days_max": rules.order_lifetime_days_max,
    }
    rule, source = "trading.quota.order_lifetime_days_max", "trading.toml: quota.order_lifetime_days_max"
    if not on_book:
        yield _skipped(rule, source, inputs, elsewhere)
    elif lifetime is None:
        yield _skipped(rule, source, inputs, "The order asks for no lifetime.")
    else:
        yield _judged(
            rule,
            source,
            inputs,
            broken=lifetime > timedelta(days=rules.order_lifetime_days_max),
            failure=f"An order may rest for at most {rules.order_lifetime_days_max} days; this one would for {_days(lifetime)}.",
            reason=f"The order would rest for {_days(lifetime)}, no more than {rules.order_lifetime_days_max} days.",
        )


def _auction(rules: AuctionRules, facts: OrderFacts) -> RuleTrace:
    inputs = {"plan_kind": facts.plan_kind, "quantity": facts.quantity, "bid_quantity_max": rules.bid_quantity_max}
    rule, source = "trading.auction.bid_quantity_max", "trading.toml: auction.bid_quantity_max"
    if facts.plan_kind != "auction":
        return _skipped(rule, source, inputs, f"Bid limits apply to auctions; this order is on a {facts.plan_kind} plan.")
    return _judged(
        rule,
        source,
        inputs,
        broken=facts.quantity > rules.bid_quantity_max,
        failure=f"A bid may ask for at most {rules.bid_quantity_max} licence(s); this one asks for {facts.quantity}.",
        reason=f"The bid asks for {facts.quantity}, no more than {rules.bid_quantity_max}.",
    )


_SELL = "Only buyers are asked who they are and why they buy; this is a sell."


def _catalogue_access(catalogue: CatalogueRules, facts: OrderFacts) -> Iterator[RuleTrace]:
    found = next(
        ((index, category) for index, category in enumerate(catalogue.categories) if category.code == facts.category),
        None,
    )
    qualified = {"side": facts.side, "category": facts.category, "buyer_qualifications": sorted(facts.buyer_qualifications)}
    declared = {"side": facts.side, "category": facts.category, "purpose": facts.purpose}
    if found is None:
        # The listing was refused for an unknown category; here it restricts nothing.
        unknown = f"The category {facts.category!r} is not in the catalogue, so it asks nothing of buyers."
        for key, inputs in (("buyer_qualifications", qualified), ("buyer_purposes", declared)):
            yield _skipped(f"catalogue.categories.{facts.category}.{key}", "catalogue.toml: categories", inputs, unknown)
        return
    index, category = found
    data = f"{_named(category)} data"

    rule = f"catalogue.categories.{category.code}.buyer_qualifications"
    source = f"catalogue.toml: categories[{index}].buyer_qualifications"
    wanted = category.buyer_qualifications
    inputs = {**qualified, "category_buyer_qualifications": list(wanted)}
    held = sorted(facts.buyer_qualifications & set(wanted))
    if facts.side != "buy":
        yield _skipped(rule, source, inputs, _SELL)
    elif not wanted:
        yield _skipped(rule, source, inputs, f"Anyone may buy {data}: the category asks for no qualification.")
    else:
        yield _judged(
            rule,
            source,
            inputs,
            broken=not held,
            failure=f"To buy {data}, a buyer must hold one of the qualifications {', '.join(wanted)}.",
            reason=f"The buyer holds {', '.join(held)}.",
        )

    rule = f"catalogue.categories.{category.code}.buyer_purposes"
    source = f"catalogue.toml: categories[{index}].buyer_purposes"
    purposes = category.buyer_purposes
    inputs = {**declared, "category_buyer_purposes": list(purposes)}
    if facts.side != "buy":
        yield _skipped(rule, source, inputs, _SELL)
    elif not purposes:
        yield _skipped(rule, source, inputs, f"{data} may be bought for any purpose.")
    else:
        yield _judged(
            rule,
            source,
            inputs,
            broken=facts.purpose not in purposes,
            failure=f"{data} may be bought only for {_one_of(purposes)}; {_declared(facts.purpose)}.",
            reason=f"The declared purpose {facts.purpose!r} is allowed.",
        )


def _access(entries: list[AccessRule], facts: OrderFacts) -> Iterator[RuleTrace]:
    data = f"{facts.grade} {facts.category} data"
    for index, entry in enumerate(entries):
        applies = not (
            (entry.categories and facts.category not in entry.categories) or (entry.grades and facts.grade not in entry.grades)
        )
        scope = {
            "side": facts.side,
            "category": facts.category,
            "grade": facts.grade,
            "entry_categories": list(entry.categories),
            "entry_grades": list(entry.grades),
        }
        elsewhere = f"The entry {entry.id!r} covers {_scope(entry)}; this is {data}."

        rule, source = f"trading.access.{entry.id}.qualifications_any", f"trading.toml: access[{index}].qualifications_any"
        inputs = {
            **scope,
            "buyer_qualifications": sorted(facts.buyer_qualifications),
            "qualifications_any": list(entry.qualifications_any),
        }
        held = sorted(facts.buyer_qualifications & set(entry.qualifications_any))
        if facts.side != "buy":
            yield _skipped(rule, source, inputs, _SELL)
        elif not applies:
            yield _skipped(rule, source, inputs, elsewhere)
        elif not entry.qualifications_any:
            yield _skipped(rule, source, inputs, f"The entry {entry.id!r} asks for no qualification.")
        else:
            yield _judged(
                rule,
                source,
                inputs,
                broken=not held,
                failure=f"To buy {data}, a buyer must hold one of the qualifications {', '.join(entry.qualifications_any)}.",
                reason=f"The buyer holds {', '.join(held)}.",
            )

        rule, source = f"trading.access.{entry.id}.purposes_any", f"trading.toml: access[{index}].purposes_any"
        inputs = {**scope, "purpose": facts.purpose, "purposes_any": list(entry.purposes_any)}
        if facts.side != "buy":
            yield _skipped(rule, source, inputs, _SELL)
        elif not applies:
            yield _skipped(rule, source, inputs, elsewhere)
        elif not entry.purposes_any:
            yield _skipped(rule, source, inputs, f"The entry {entry.id!r} asks for no purpose.")
        else:
            yield _judged(
                rule,
                source,
                inputs,
                broken=facts.purpose not in entry.purposes_any,
                failure=f"{data[0].upper()}{data[1:]} may be bought only for {_one_of(entry.purposes_any)}; "
                f"{_declared(facts.purpose)}.",
                reason=f"The declared purpose {facts.purpose!r} is allowed.",
            )


def _scope(entry: AccessRule) -> str:
    grades = f"grade {', '.join(entry.grades)}" if entry.grades else "every grade"
    categories = f"{', '.join(entry.categories)} data" if entry.categories else "data of every category"
    return f"{categories} of {grades}"


# Fees: trading.fee_for, one trace per side.


def explain_fees(
    rulebook: Rulebook, plan_kind: str, notional_fen: int, buyer_volume_fen: int, vendor_volume_fen: int
) -> list[RuleTrace]:
    """How fee_for arrives at each side's fee: the buyer's trace, then the vendor's. Each names
    the schedule and the tier its rate came from (its source is that rate's line), the rate, the
    minimum, the rounding and, in `inputs["fee_fen"]`, the fee fee_for charges. No schedule for
    `plan_kind`: both not_applicable, with a fee of 0. Raises ValueError where fee_for does."""
    _fen(notional_fen, "notional_fen")
    _fen(buyer_volume_fen, "buyer_volume_fen")
    _fen(vendor_volume_fen, "vendor_volume_fen")
    volumes = (buyer_volume_fen, vendor_volume_fen)
    # The first schedule of the kind, as FeeRules.schedule finds it.
    found = next(((index, fee) for index, fee in enumerate(rulebook.fees.fees) if fee.plan_kind == plan_kind), None)
    if found is None:
        kinds = [fee.plan_kind for fee in rulebook.fees.fees]
        return [
            _skipped(
                f"fees.{plan_kind}.{side}_bps",
                "fees.toml: fees",
                {"plan_kind": plan_kind, "plan_kinds": kinds, "notional_fen": notional_fen, "volume_fen": volume, "fee_fen": 0},
                f"fees.toml has no schedule for {plan_kind} plans: the {side} pays no fee.",
            )
            for side, volume in zip(FEE_SIDES, volumes, strict=True)
        ]
    index, schedule = found
    return [_fee_of_side(index, schedule, side, notional_fen, volume) for side, volume in zip(FEE_SIDES, volumes, strict=True)]


def _fee_of_side(index: int, schedule: FeeSchedule, side: str, notional_fen: int, volume_fen: int) -> RuleTrace:
    base_bps = schedule.buyer_bps if side == "buyer" else schedule.vendor_bps
    base_source = f"fees.toml: fees[{index}].{side}_bps"
    bps, source, tier_at = base_bps, base_source, None
    for tier_index, tier in enumerate(schedule.tiers):  # increasing volume_from_fen: the last reached wins
        if volume_fen < tier.volume_from_fen:
            break
        tier_at = (tier_index, tier)
        tier_bps = tier.buyer_bps if side == "buyer" else tier.vendor_bps
        if tier_bps is None:  # a rate the tier leaves out is the schedule's
            bps, source = base_bps, base_source
        else:
            bps, source = tier_bps, f"fees.toml: fees[{index}].tiers[{tier_index}].{side}_bps"
    whole, part = divmod(notional_fen * bps, BPS)
    exact = f"{whole}.{part:04d}".rstrip("0").rstrip(".")
    rounded = (notional_fen * bps + BPS // 2) // BPS  # half a fen and more rounds up
    minimum_applied = bps != 0 and rounded < schedule.minimum_fen
    capped = bps != 0 and max(rounded, schedule.minimum_fen) > notional_fen
    fee = 0 if bps == 0 else min(max(rounded, schedule.minimum_fen), notional_fen)
    inputs = {
        "plan_kind": schedule.plan_kind,
        "notional_fen": notional_fen,
        "volume_fen": volume_fen,
        "tier": None if tier_at is None else tier_at[0],
        "tier_volume_from_fen": None if tier_at is None else tier_at[1].volume_from_fen,
        "bps": bps,
        "minimum_fen": schedule.minimum_fen,
        "exact_fee_fen": exact,
        "rounded_fee_fen": rounded,
        "minimum_applied": minimum_applied,
        "capped_at_notional": capped,
        "fee_fen": fee,
    }
    month = f"{volume_fen} fen this month"
    if tier_at is None:
        rate = f"the {schedule.plan_kind} schedule's {side} rate, {bps} bps (no volume tier reached with {month})"
    elif source == base_source:
        rate = (
            f"the {schedule.plan_kind} schedule's {side} rate, {bps} bps (tier {tier_at[0]}, reached with {month}, "
            "keeps it)"
        )
    else:
        rate = f"tier {tier_at[0]}'s {side} rate, {bps} bps (reached with {month}, from {tier_at[1].volume_from_fen} fen)"
    rule = f"fees.{schedule.plan_kind}.{side}_bps"
    if bps == 0:
        return RuleTrace(rule, source, inputs, PASS, f"The {side} pays {rate}: no fee, and no minimum.")
    steps = f"{notional_fen} fen × {bps} bps = {exact} fen, rounded half up to {rounded} fen"
    if minimum_applied:
        steps += f", raised to the minimum {schedule.minimum_fen} fen"
    if capped:
        steps += f", at most the notional {notional_fen} fen"
    return RuleTrace(rule, source, inputs, PASS, f"The {side} pays {rate}: {steps}; the fee is {fee} fen.")


# Helpers


def _judged(rule: str, source: str, inputs: dict[str, Any], *, broken: bool, failure: str, reason: str) -> RuleTrace:
    """A rule that was asked: failed with `failure` (its Violation's message), or passed for `reason`."""
    return RuleTrace(rule, source, inputs, FAIL if broken else PASS, failure if broken else reason)


def _skipped(rule: str, source: str, inputs: dict[str, Any], reason: str) -> RuleTrace:
    return RuleTrace(rule, source, inputs, NOT_APPLICABLE, reason)
