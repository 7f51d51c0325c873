"""Relevance search takes shortcuts at scale (exchange.listings.repository): a page is first looked
for among the best-ranked matches only, and on PostgreSQL exact terms, and prefixes that complete
to one indexed word, rank every match the same. Whatever the shortcut, the pages must list the
visible matches exactly as the search engine ranks them (bm25 on SQLite, ts_rank on PostgreSQL,
ties by listing id), and their cursors must walk that order without a gap or a repeat."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.core.ids import new_id
from exchange.db import Database
from exchange.demo import load_demo
from exchange.listings import repository
from exchange.listings.repository import Filters
from exchange.listings.search import parse_query, tokens_for
from exchange.tables import Listing
from tests.harness import Api

TEXTS = ["交通", "数据", "上海交通", "金融 数据", "港", "data", "tra", "metro", "s 交通", "l", "public 公共", "qwertyzzz"]


async def ranked(session: AsyncSession, text: str, category: str | None) -> list[str]:
    """The visible (listed) matches in the engine's own order, straight from the index."""
    query = parse_query(text)
    extra = "AND l.category = :category" if category else ""
    if session.bind.dialect.name == "sqlite":
        sql = ("SELECT l.id FROM listing_search_fts JOIN listing_search s ON s.id = listing_search_fts.rowid "
               f"JOIN listings l ON l.id = s.listing_id WHERE listing_search_fts MATCH :q AND l.status = 'listed' {extra} "
               "ORDER BY bm25(listing_search_fts), l.id")
        params = {"q": query.fts5(), "category": category}
    else:
        sql = ("SELECT l.id FROM listing_search s JOIN listings l ON l.id = s.listing_id "
               f"WHERE s.tokens @@ CAST(:q AS tsquery) AND l.status = 'listed' {extra} "
               "ORDER BY -ts_rank(s.tokens, CAST(:q AS tsquery)), l.id")
        params = {"q": query.tsquery(), "category": category}
    return list((await session.execute(sa.text(sql), params)).scalars())


async def add_twins(db: Database, text: str, count: int) -> None:
    """`count` listed copies of a listing found by `text`, indexed alike: equal ranks, so that a
    page boundary falls inside a tie."""
    async with db.write() as session:
        original = (await session.execute(sa.select(Listing).where(Listing.status == "listed", Listing.title.contains(text)).limit(1))).scalar_one()
        columns = [column.name for column in Listing.__table__.columns]  # type: ignore[attr-defined]
        row = {name: getattr(original, name) for name in columns}
        twins = [{**row, "id": new_id("lst")} for _ in range(count)]
        await session.execute(sa.insert(Listing), twins)
        tokens = tokens_for(f"{original.title}\n{original.content['description']}")
        await repository.index_many(session, [(twin["id"], tokens) for twin in twins])


async def walked(session: AsyncSession, text: str, category: str | None, limit: int) -> list[str]:
    filters = Filters(query=parse_query(text), category=category)
    seen: list[str] = []
    cursor = None
    for _ in range(50):
        items, next_cursor = await repository.search(session, filters, sort="relevance", cursor=cursor, limit=limit)
        seen += [item.id for item in items]
        if next_cursor is None:
            return seen
        cursor = repository.decode_cursor(next_cursor)
    raise AssertionError("the cursor never ended")


@pytest.mark.parametrize("candidates", [1, 2, 5, 1000])
async def test_relevance_pages_follow_the_engines_ranking_whatever_the_shortcut(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, candidates: int
) -> None:
    db = Database(api.settings)
    try:
        await load_demo(db, api.settings, tmp_path / "keys.json")
        await add_twins(db, "交通", 12)
        monkeypatch.setattr(repository, "RELEVANCE_CANDIDATES", candidates)
        async with db.read() as session:
            for text in TEXTS:
                for category in (None, "transport"):
                    expected = await ranked(session, text, category)
                    for limit in (1, 3):
                        assert await walked(session, text, category, limit) == expected, (text, category, limit)
    finally:
        await db.dispose()
