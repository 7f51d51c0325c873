"""Price-plan helpers for the catalogue. Pure."""

from __future__ import annotations

from collections.abc import Callable, Collection

import msgspec

from exchange.core.errors import InvalidInput
from exchange.listings.schemas import (
    AuctionPlan,
    FixedPlan,
    FreePlan,
    MeteredPlan,
    Plan,
    QuotaPlan,
    RevenueSharePlan,
    SubscriptionPlan,
)


def with_ids(plans: list[Plan], known_ids: Collection[str], make_id: Callable[[], str]) -> list[Plan]:
    """Plans with ids: new plans get fresh ids; a plan sent back with an id keeps it, and that
    id must be one of this listing's own (ids are how orders will name plans)."""
    result: list[Plan] = []
    seen: set[str] = set()
    for index, plan in enumerate(plans):
        if plan.id is None:
            result.append(msgspec.structs.replace(plan, id=make_id()))
            continue
        if plan.id not in known_ids or plan.id in seen:
            reason = "repeated" if plan.id in seen else "not a plan of this listing"
            raise InvalidInput(
                f"plans[{index}].id: {reason}",
                errors=[{"field": f"plans[{index}].id", "reason": reason}],
            )
        seen.add(plan.id)
        result.append(plan)
    return result


def headline_price_fen(plan: Plan) -> int | None:
    """The one price a catalogue filters and sorts by; None when it is negotiated."""
    match plan:
        case FixedPlan() | SubscriptionPlan():
            return plan.price.amount
        case MeteredPlan():
            return plan.tiers[0].price.amount
        case AuctionPlan():
            return plan.reserve_price.amount
        case QuotaPlan():
            return plan.reference_price.amount
        case RevenueSharePlan():
            return plan.minimum.amount
        case FreePlan():
            return 0
        case _:
            return None


def currency_of(plan: Plan) -> str:
    for field in ("price", "reserve_price", "reference_price", "minimum"):
        money = getattr(plan, field, None)
        if money is not None:
            return str(money.currency)
    if isinstance(plan, MeteredPlan):
        return plan.tiers[0].price.currency
    return "CNY"
