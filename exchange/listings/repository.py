"""All SQL for the catalogue; never commits. The search index is the one place where SQLite
(FTS5 over the listing_search table) and PostgreSQL (tsvector + GIN) differ; both index tokens
from search.tokens_for()."""

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
    """Make `tokens` what the listing is found by (replacing what it was found by)."""
    await index_many(session, [(listing_id, tokens)])


async def index_many(session: AsyncSession, documents: Sequence[tuple[str, list[str]]]) -> None:
    """`index` for many listings at once, for bulk loads such as benchmarks/search.py. On SQLite
    triggers keep the FTS5 index (listing_search_fts) in step with listing_search."""
    if not documents:
        return
    if session.bind.dialect.name == "sqlite":
        await session.execute(
            sa.text(
                "INSERT INTO listing_search (listing_id, tokens) VALUES (:id, :tokens) "
                "ON CONFLICT (listing_id) DO UPDATE SET tokens = excluded.tokens"
            ),
            [{"id": listing_id, "tokens": " ".join(tokens)} for listing_id, tokens in documents],
        )
    else:
        await session.execute(
            sa.text(
                "INSERT INTO listing_search (listing_id, tokens) "
                "VALUES (:id, array_to_tsvector(CAST(:tokens AS text[]))) "
                "ON CONFLICT (listing_id) DO UPDATE SET tokens = EXCLUDED.tokens"
            ),
            [{"id": listing_id, "tokens": sorted(set(tokens))} for listing_id, tokens in documents],
        )
        # Every Latin word ever indexed (never removed), so a prefix query can tell whether its
        # prefix completes to one word only (see _prefix_words).
        words = sorted({token for _, tokens in documents for token in tokens if token.isascii()})
        if words:
            await session.execute(
                sa.text("INSERT INTO listing_search_words (word) SELECT unnest(CAST(:words AS text[])) ON CONFLICT DO NOTHING"),
                {"words": words},
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


RELEVANCE_CANDIDATES = 1000
"""How many best-ranked matches a relevance page is first looked for among (see search)."""


def _conditions(filters: Filters) -> list[Any]:
    """Everything a page's listings must satisfy besides the text query and the cursor."""
    conditions: list[Any] = []
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
        # Probed listing by listing (index listing_id, kind, price_fen) as the page is read in
        # sort order, so a page stops early rather than first collecting every such listing.
        plan = sa.select(ListingPlan.id).where(ListingPlan.listing_id == Listing.id)
        if filters.plan_kind is not None:
            plan = plan.where(ListingPlan.kind == filters.plan_kind)
        if filters.price_min is not None:
            plan = plan.where(ListingPlan.price_fen >= filters.price_min)  # type: ignore[operator]
        if filters.price_max is not None:
            plan = plan.where(ListingPlan.price_fen <= filters.price_max)  # type: ignore[operator]
        conditions.append(plan.exists())
    return conditions


def _fts5_match(query: Query) -> Any:
    return sa.text("listing_search_fts MATCH :match").bindparams(match=query.fts5())


# Type instances made once: SQLAlchemy keys its statement cache on them, and a fresh instance
# per search cost more to key (an inspection of its class) than the rest of the statement.
_TSQUERY = postgresql.TSQUERY()
_TEXT = sa.Text()
_TEXT_ARRAY = postgresql.ARRAY(_TEXT)
_UTC_DATETIME = UTCDateTime()


def _tsquery(query: Query) -> Any:
    # The query is already lexemes: cast its text form, no text-search parser involved.
    return sa.cast(sa.literal(query.tsquery(), _TEXT), _TSQUERY)


_DOCUMENTS = sa.table("listing_search", sa.column("id"), sa.column("listing_id"), sa.column("tokens"))
_FTS_RANK = sa.literal_column("bm25(listing_search_fts)")
_FTS_ROWID = sa.literal_column("listing_search_fts.rowid")


async def search(
    session: AsyncSession, filters: Filters, *, sort: str, cursor: Cursor | None, limit: int
) -> tuple[list[Listing], str | None]:
    """One page of listings and the cursor of the next, or None at the end.

    The page's ids and sort values are found first from narrow columns and indexes (sorting
    and skipping never carry a listing's JSON content), then its rows are read by id. A text
    query sorted by relevance whose ranks differ from match to match is first answered from
    its RELEVANCE_CANDIDATES best-ranked matches alone when they prove the page (see
    `_page`); otherwise every match is ranked, joined with its listing and sorted."""
    if sort == "relevance" and (filters.query is None or filters.query.empty):
        sort = "newest"
    words: list[str] | None = None
    if sort == "relevance":
        assert filters.query is not None
        sqlite = session.bind.dialect.name == "sqlite"
        if not sqlite and filters.query.prefixes:
            words = await _prefix_words(session, filters.query.prefixes)
            if words is not None and len(words) < len(filters.query.prefixes):
                return [], None  # a prefix no indexed word starts with: nothing matches
        # On PostgreSQL a query whose terms are exact (or prefixes of one word each) ranks
        # every match the same (see _pg_rank), and the full query reads its matches in listing
        # id order, stopping at the page's end.
        if sqlite or (filters.query.prefixes and words is None):
            page = await _page(session, filters, sort=sort, cursor=cursor, limit=limit, candidates=RELEVANCE_CANDIDATES)
            if page is not None:
                return page
    page = await _page(session, filters, sort=sort, cursor=cursor, limit=limit, candidates=None, words=words)
    assert page is not None
    return page


async def _prefix_words(session: AsyncSession, prefixes: list[str]) -> list[str] | None:
    """The one word each prefix completes to among every word ever indexed (PostgreSQL), or None
    when a prefix completes to more than one. Then every listing a prefix matches holds exactly
    that word of it (a listing's words are among those indexed), and the prefix ranks the same
    in each of them."""
    rows = (
        await session.execute(
            sa.text(
                # Words are [0-9a-z]+ in C order: those starting with p lie in [p, p || '~').
                "SELECT p, ARRAY(SELECT word FROM listing_search_words WHERE word >= p AND word < p || '~' ORDER BY word LIMIT 2) "
                "FROM unnest(CAST(:prefixes AS text[])) AS p"
            ),
            {"prefixes": prefixes},
        )
    ).all()
    words: list[str] = []
    for _, completions in rows:
        if len(completions) > 1:
            return None
        words.extend(completions)  # none: the prefix matches nothing, nor does the query
    return words


async def _page(
    session: AsyncSession, filters: Filters, *, sort: str, cursor: Cursor | None, limit: int, candidates: int | None,
    words: list[str] | None = None,
) -> tuple[list[Listing], str | None] | None:
    """With `candidates` (relevance only): the page found among that many best-ranked matches,
    or None when they cannot prove it. Ranking stays the engine's own work for every match
    (bm25 on SQLite, ts_rank on PostgreSQL); what this saves is joining every match with its
    listing and sorting them all. The candidates are the best K by rank (SQLite; ties at the
    K-th rank cut arbitrarily) or by (rank, listing id) (PostgreSQL). A match left out ranks at
    least as low as the last candidate (SQLite) or sorts after every candidate (PostgreSQL); so
    when the candidates hold limit + 1 visible listings past the cursor and (SQLite) the last
    of them ranks strictly better than the last candidate, those are exactly the rows, order,
    sort values and cursor the query over every match gives. Fewer than K matches: the
    candidates are all of them."""
    dialect = session.bind.dialect.name
    query = sa.select(Listing.id)
    conditions = _conditions(filters)
    rank: Any = None
    stats: list[Any] = []
    if filters.query is not None and not filters.query.empty:
        if dialect == "sqlite":
            if candidates is None:
                # The FTS5 index yields rowids of listing_search; its listing id is a rowid lookup.
                matches = (
                    sa.select(_DOCUMENTS.c.listing_id, _FTS_RANK.label("rank"))
                    .select_from(sa.table("listing_search_fts").join(_DOCUMENTS, _DOCUMENTS.c.id == _FTS_ROWID))
                    .where(_fts5_match(filters.query))
                    .subquery("matches")
                )
                query = query.join(matches, matches.c.listing_id == Listing.id)
            else:
                best = (
                    sa.select(_FTS_ROWID.label("document"), _FTS_RANK.label("rank"))
                    .select_from(sa.table("listing_search_fts"))
                    .where(_fts5_match(filters.query))
                    .order_by(sa.literal_column("rank"))
                    .limit(candidates)
                    .cte("candidates")
                    .prefix_with("MATERIALIZED")
                )
                matches = best
                query = query.select_from(best.join(_DOCUMENTS, _DOCUMENTS.c.id == best.c.document).join(Listing, Listing.id == _DOCUMENTS.c.listing_id))
                stats = [sa.select(sa.func.count()).select_from(best).scalar_subquery().label("found"),
                         sa.select(sa.func.max(best.c.rank)).scalar_subquery().label("boundary")]
            rank = matches.c.rank  # lower is better
        else:
            ts = _tsquery(filters.query)
            if sort == "relevance" and filters.query.prefixes and words is None:
                ranked = (
                    sa.select(_DOCUMENTS.c.listing_id, (-sa.func.ts_rank(_DOCUMENTS.c.tokens, ts)).label("rank"))
                    .where(_DOCUMENTS.c.tokens.op("@@")(ts))
                )
                if candidates is None:
                    # OFFSET 0 keeps the subquery whole, or the planner pulls it up and sorts
                    # whole index rows (their tsvectors) instead of (id, rank) pairs.
                    matches = ranked.offset(sa.literal_column("0")).subquery("matches")
                else:
                    matches = ranked.order_by(sa.literal_column("rank"), _DOCUMENTS.c.listing_id).limit(candidates).cte("candidates").prefix_with("MATERIALIZED")
                    stats = [sa.select(sa.func.count()).select_from(matches).scalar_subquery().label("found")]
                rank = matches.c.rank  # lower is better
                query = query.join(matches, matches.c.listing_id == Listing.id)
            else:
                # A prefix with one word (words) matches exactly the listings holding that word:
                # matched as that word, whose frequency the planner knows (a prefix's it guesses).
                matching = _tsquery(Query(filters.query.exact + words, [])) if words is not None else ts
                query = query.join(_DOCUMENTS, _DOCUMENTS.c.listing_id == Listing.id)
                conditions.append(_DOCUMENTS.c.tokens.op("@@")(matching))
                rank = -_pg_rank(filters.query, _DOCUMENTS.c.tokens, ts, words)

    sort_key: Any
    descending = False
    if sort == "relevance":
        sort_key = rank
    elif sort == "newest":
        sort_key, descending = Listing.created_at, True
    elif sort == "title":
        sort_key = Listing.title
    else:
        # The lowest price of the listing's plans (PRICE_NONE when none has one), kept on the row.
        sort_key, descending = Listing.min_price_fen, sort == "price_desc"
    if cursor is not None:
        value = cursor.value
        if sort == "newest":
            value = sa.literal(msgspec.convert(value, datetime), _UTC_DATETIME)
        after, before = sa.tuple_(sort_key, Listing.id), sa.tuple_(value, cursor.id)
        conditions.append(after < before if descending else after > before)
    ordering = [sort_key.desc(), Listing.id.desc()] if descending else [sort_key.asc(), Listing.id.asc()]  # type: ignore[attr-defined]
    page = query.add_columns(sort_key.label("sort_value"), *stats).where(*conditions).order_by(*ordering).limit(limit + 1).subquery("page")
    outer = (
        sa.select(Listing, *page.c)
        .join(page, page.c.id == Listing.id)
        .order_by(*([page.c.sort_value.desc(), Listing.id.desc()] if descending else [page.c.sort_value.asc(), Listing.id.asc()]))  # type: ignore[attr-defined]
    )
    rows = (await session.execute(outer)).all()
    if candidates is not None:
        if len(rows) <= limit:
            # A short page is proven only when every match was a candidate (an empty one
            # carries no counts at all).
            if not rows or rows[0].found >= candidates:
                return None
        elif rows[0].found >= candidates and dialect == "sqlite" and rows[-1].sort_value >= rows[0].boundary:
            return None  # the page reaches the last candidate's rank, whose ties may have been cut
    return _paged([(row[0], row.sort_value) for row in rows], limit)


def _paged(rows: Sequence[tuple[Listing, Any]], limit: int) -> tuple[list[Listing], str | None]:
    """The page and, when a further row was read, the cursor after the page's last."""
    next_cursor = None
    if len(rows) > limit:
        last, value = rows[limit - 1]
        next_cursor = encode_cursor(value.isoformat() if hasattr(value, "isoformat") else value, last.id)
    return [listing for listing, _ in rows[:limit]], next_cursor


def _pg_rank(query: Query, tokens: Any, ts: Any, words: list[str] | None = None) -> Any:
    """ts_rank of a match. Index vectors have no positions (array_to_tsvector), so a term adds
    the same to every document that has it, once per lexeme it matches there: an exact term
    matches one lexeme; a prefix as many as the document has words starting with it. When every
    term is exact, or `words` gives the one word each prefix can match (_prefix_words), every
    match ranks the same, and that rank is the query's own over a vector of just those words:
    one constant instead of one ts_rank per match, the same value (and cursor) either way."""
    if query.prefixes and words is None:
        return sa.func.ts_rank(tokens, ts)
    own = sa.func.array_to_tsvector(sa.cast(sa.literal(sorted({*query.exact, *(words or [])}), _TEXT_ARRAY), _TEXT_ARRAY))
    return sa.func.ts_rank(own, ts)
