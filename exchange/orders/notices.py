"""Vendors' notices to the holders of a listing's contracts: a schema change, a delay, a
withdrawal. Holders read theirs; so do operators and regulators."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth import Caller
from exchange.core.errors import Forbidden, InvalidInput, NotFound
from exchange.core.ids import new_id
from exchange.orders.schemas import NoticeIn, NoticeOut, NoticePage
from exchange.tables import Contract, Listing, Notice

PAGE_MAX = 200


def to_out(notice: Notice) -> NoticeOut:
    return NoticeOut(
        id=notice.id, listing_id=notice.listing_id, vendor_id=notice.vendor_id, kind=notice.kind, message=notice.message,
        effective_at=notice.effective_at, created_at=notice.created_at,
    )


async def post(session: AsyncSession, caller: Caller, listing_id: str, body: NoticeIn, now: datetime) -> NoticeOut:
    listing = await session.get(Listing, listing_id)
    if listing is None:
        raise NotFound(f"No listing {listing_id!r}.")
    if listing.vendor_id != caller.id:
        raise Forbidden("Only the listing's vendor posts notices to its holders.")
    if body.effective_at is not None and body.effective_at.tzinfo is None:
        raise InvalidInput("effective_at: give a time zone", errors=[{"field": "effective_at", "reason": "time zone required"}])
    notice = Notice(id=new_id("ntc"), listing_id=listing.id, vendor_id=caller.id, kind=body.kind, message=body.message,
                    effective_at=body.effective_at, created_at=now)
    session.add(notice)
    await session.flush()
    return to_out(notice)


def _held_listings(caller: Caller) -> sa.Select[tuple[str]]:
    return sa.select(Contract.listing_id).where(Contract.buyer_id == caller.id, Contract.lifecycle == "active").distinct()


async def of_listing(session: AsyncSession, caller: Caller, listing_id: str) -> NoticePage:
    listing = await session.get(Listing, listing_id)
    if listing is None:
        raise NotFound(f"No listing {listing_id!r}.")
    holds = listing_id in set((await session.execute(_held_listings(caller))).scalars())
    if not (holds or caller.id == listing.vendor_id or caller.has("operator", "regulator")):
        raise Forbidden("Notices of a listing go to the holders of its contracts.")
    query = sa.select(Notice).where(Notice.listing_id == listing_id).order_by(Notice.created_at.desc()).limit(PAGE_MAX)  # type: ignore[attr-defined]
    return NoticePage(items=[to_out(n) for n in (await session.execute(query)).scalars()])


async def mine(session: AsyncSession, caller: Caller) -> NoticePage:
    """Notices of every listing the caller holds an active contract of."""
    query = (
        sa.select(Notice).where(Notice.listing_id.in_(_held_listings(caller)))  # type: ignore[attr-defined]
        .order_by(Notice.created_at.desc()).limit(PAGE_MAX)  # type: ignore[attr-defined]
    )
    return NoticePage(items=[to_out(n) for n in (await session.execute(query)).scalars()])
