"""What a candidate rule set would do to the catalogue: the listings it would newly fail."""

from __future__ import annotations

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.listings.schemas import ListingIn
from exchange.participants.service import vendor_facts
from exchange.rulebook.evaluate import VendorFacts, check_listing
from exchange.rulebook.model import Rulebook
from exchange.rulebook.schemas import ListingImpact
from exchange.tables import Listing, ListingRevision

JUDGED_STATUSES = ("listed", "submitted", "suspended")


async def newly_failing_listings(session: AsyncSession, active: Rulebook, candidate: Rulebook) -> list[ListingImpact]:
    impacts: list[ListingImpact] = []
    vendors: dict[str, VendorFacts] = {}
    listings = (
        await session.execute(
            sa.select(Listing).where(Listing.status.in_(JUDGED_STATUSES)).order_by(Listing.id)  # type: ignore[attr-defined]
        )
    ).scalars()
    for listing in listings:
        revisions = [(listing.revision, listing.content)]
        if listing.pending_revision is not None:
            pending = await session.get(ListingRevision, (listing.id, listing.pending_revision))
            if pending is not None and pending.status == "submitted":
                revisions.append((pending.number, pending.content))
        if listing.vendor_id not in vendors:
            vendors[listing.vendor_id] = await vendor_facts(session, listing.vendor_id)
        vendor = vendors[listing.vendor_id]
        for number, content in revisions:
            body = msgspec.convert(content, ListingIn)
            before = {v.rule for v in check_listing(active, body, vendor)}
            new = [v for v in check_listing(candidate, body, vendor) if v.rule not in before]
            if new:
                impacts.append(
                    ListingImpact(
                        listing_id=listing.id,
                        title=listing.title,
                        status=listing.status,
                        revision=number,
                        violations=[msgspec.to_builtins(v) for v in new],
                    )
                )
    return impacts
