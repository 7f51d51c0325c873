"""All SQL for the catalogue; never commits. The search index is the one place where SQLite
(FTS5) and PostgreSQL (tsvector + GIN) differ; both index tokens from search.tokens_for()."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.listings.search import Query
from exchange.tables import Listing, ListingEvent, ListingPlan, ListingRevision, UTCDateTime

PRICE_NONE = 2**62  # sorts negotiated-only listings after every priced one


async def get(session: AsyncSession, listing_id: str, *, for_update: bool = False) -> Listing | None:
    query = sa.select(Listing).where(Listing.id == listing_id)
    if for_update:
        query = query.with_for_update()  # a no-op on SQLite, which locks the whole database
    return (await session.execute(query)).scalar_one_or_none()


async def get_revision(session: AsyncSession, listing_id: str, number: int) -> ListingRevision | None:
    return await session.get(ListingRevision, (listing_id, number))


async def known_plan_ids(session: AsyncSession, listing_id: str) -> set[str]:
    revisions = await session.execute(
        sa.select(ListingRevision.content).where(ListingRevision.listing_id == listing_id)
    )
    return {plan["id"] for content in revisions.scalars() for plan in content["plans"]}


async def add(session: AsyncSession, *rows: Any) -> None:
    for row in rows:
        session.add(row)
    await session.flush()


async def add_event(session: AsyncSession, event: ListingEvent) -> None:
    session.add(event)
    await session.flush()


async def events(session: AsyncSession, listing_id: str) -> Sequence[ListingEvent]:
    query = sa.select(ListingEvent).where(ListingEvent.listing_id == listing_id)
    return (await session.execute(query.order_by(ListingEvent.id))).scalars().all()  # type: ignore[arg-type]


async def replace_plans(session: AsyncSession, listing_id: str, plans: list[ListingPlan]) -> None:
    await session.execute(sa.delete(ListingPlan).where(ListingPlan.listing_id == listing_id))  # type: ignore[arg-type]
    session.add_all(plans)
    await session.flush()


async def index(session: AsyncSession, listing_id: str, tokens: list[str]) -> None:
    if session.bind.dialect.name == "sqlite":
        await session.execute(sa.text("DELETE FROM listing_search WHERE listing_id = :id"), {"id": listing_id})
        await session.execute(
            sa.text("INSERT INTO listing_search (listing_id, tokens) VALUES (:id, :tokens)"),
            {"id": listing_id, "tokens": " ".join(tokens)},
        )
    else:
        await session.execute(
            sa.text(
                "INSERT INTO listing_search (listing_id, tokens) "
                "VALUES (:id, array_to_tsvector(CAST(:tokens AS text[]))) "
                "ON CONFLICT (listing_id) DO UPDATE SET tokens = EXCLUDED.tokens"
            ),
            {"id": listing_id, "tokens": sorted(set(tokens))},
        )


@dataclass(frozen=True, kw_only=True)
class Filters:
    query: Query | None = None
    category: str | None = None
    grade: str | None = None
    delivery: str | None = None
    vendor_id: str | None = None
    plan_kind: str | None = None
    price_min: int | None = None
    price_max: int | None = None
    status: str | None = None
    in_review: bool = False
    """Only listings (or pending revisions) waiting for an operator's decision."""
    visible_to_vendor: str | None = None
    """Anyone else sees only listed products; a vendor also sees its own."""
    sees_everything: bool = False


class Cursor(msgspec.Struct, array_like=True):
    value: Any
    id: str


def encode_cursor(value: Any, listing_id: str) -> str:
    raw = msgspec.msgpack.encode(Cursor(value, listing_id))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return msgspec.msgpack.decode(raw, type=Cursor)


def _min_price() -> Any:
    return (
        sa.select(sa.func.coalesce(sa.func.min(ListingPlan.price_fen), PRICE_NONE))
        .where(ListingPlan.listing_id == Listing.id)
        .scalar_subquery()
    )


async def search(
    session: AsyncSession, filters: Filters, *, sort: str, cursor: Cursor | None, limit: int
) -> tuple[list[Listing], str | None]:
    """One page of listings and the cursor of the next, or None at the end."""
    query = sa.select(Listing)
    conditions: list[Any] = []
    rank: Any = None
    if filters.query is not None and not filters.query.empty:
        if session.bind.dialect.name == "sqlite":
            matches = (
                sa.select(
                    sa.column("listing_id"), sa.literal_column("bm25(listing_search)").label("rank")
                )
                .select_from(sa.table("listing_search"))
                .where(sa.text("listing_search MATCH :match"))
                .subquery("matches")
            )
            rank = matches.c.rank  # lower is better
            query = query.join(matches, matches.c.listing_id == Listing.id).params(match=filters.query.fts5())
        else:
            search_table = sa.table("listing_search", sa.column("listing_id"), sa.column("tokens"))
            # The query is already lexemes: cast its text form, no text-search parser involved.
            ts = sa.cast(sa.literal(filters.query.tsquery()), postgresql.TSQUERY)
            query = query.join(search_table, search_table.c.listing_id == Listing.id)
            conditions.append(search_table.c.tokens.op("@@")(ts))
            rank = -sa.func.ts_rank(search_table.c.tokens, ts)
    if not filters.sees_everything:
        listed = Listing.status == "listed"
        conditions.append(
            sa.or_(listed, Listing.vendor_id == filters.visible_to_vendor)
            if filters.visible_to_vendor
            else listed
        )
    for column, value in (
        (Listing.category, filters.category),
        (Listing.grade, filters.grade),
        (Listing.delivery, filters.delivery),
        (Listing.vendor_id, filters.vendor_id),
        (Listing.status, filters.status),
    ):
        if value is not None:
            conditions.append(column == value)
    if filters.in_review:
        pending = sa.select(ListingRevision.listing_id).where(
            ListingRevision.listing_id == Listing.id,
            ListingRevision.number == Listing.pending_revision,
            ListingRevision.status == "submitted",
        )
        conditions.append(sa.or_(Listing.status == "submitted", pending.exists()))
    if filters.plan_kind is not None or filters.price_min is not None or filters.price_max is not None:
        plan = sa.select(ListingPlan.id).where(ListingPlan.listing_id == Listing.id)
        if filters.plan_kind is not None:
            plan = plan.where(ListingPlan.kind == filters.plan_kind)
        if filters.price_min is not None:
            plan = plan.where(ListingPlan.price_fen >= filters.price_min)  # type: ignore[operator]
        if filters.price_max is not None:
            plan = plan.where(ListingPlan.price_fen <= filters.price_max)  # type: ignore[operator]
        conditions.append(plan.exists())

    if sort == "relevance" and rank is None:
        sort = "newest"
    sort_key: Any
    descending = False
    if sort == "relevance":
        sort_key = rank
    elif sort == "newest":
        sort_key, descending = Listing.created_at, True
    elif sort == "title":
        sort_key = Listing.title
    else:
        sort_key, descending = _min_price(), sort == "price_desc"
    if cursor is not None:
        value = cursor.value
        if sort == "newest":
            value = sa.literal(msgspec.convert(value, datetime), UTCDateTime())
        after, before = sa.tuple_(sort_key, Listing.id), sa.tuple_(value, cursor.id)
        conditions.append(after < before if descending else after > before)
    ordering = [sort_key.desc(), Listing.id.desc()] if descending else [sort_key.asc(), Listing.id.asc()]  # type: ignore[attr-defined]
    query = query.add_columns(sort_key.label("sort_value")).where(*conditions).order_by(*ordering).limit(limit + 1)
    rows = (await session.execute(query)).all()
    items = [row[0] for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        value = last.sort_value
        next_cursor = encode_cursor(value.isoformat() if hasattr(value, "isoformat") else value, last[0].id)
    return items, next_cursor
