"""Public search answers kept between searches (exchange/listings/cache.py): kept only while the
catalogue version stands, which every committed change moves (migration 0018's triggers)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from exchange.db import make_engine
from exchange.listings.cache import PageCache
from tests.harness import Api

_KEPT = re.compile(r'^exchange_search_answers\{source="kept"\} (\S+)$', re.MULTILINE)


async def kept(api: Api) -> int:
    """Public searches this app answered from its cache so far (its /metrics)."""
    text = (await api.request("GET", "/metrics")).text
    match = _KEPT.search(text)
    assert match is not None, text
    return int(float(match.group(1)))


async def found(api: Api, key: str | None = None, **params: Any) -> list[tuple[str, str, str, int]]:
    answer = await api.request("GET", "/v1/listings", key, params={"q": "mobility", **params})
    assert answer.status_code == 200, answer.text
    return [(item["id"], item["status"], item["title"], item["plans"][0]["price"]["amount"]) for item in answer.json()["items"]]


async def test_a_kept_answer_gives_way_to_every_change_of_the_catalogue(api: Api) -> None:
    _, vendor = await api.participant("vendor")
    _, buyer = await api.participant("buyer")
    first = await api.listed(vendor)
    price = first["plans"][0]["price"]["amount"]
    expected = [(first["id"], "listed", first["title"], price)]
    assert await found(api) == expected
    before = await kept(api)
    assert await found(api) == expected
    assert await found(api, buyer) == expected  # a buyer sees what anyone sees: the same answer
    assert await kept(api) == before + 2

    # A new listing is found by the next search.
    second = await api.listed(vendor, title="上海交通出行数据 第二期")
    assert {row[0] for row in await found(api)} == {first["id"], second["id"]}

    # An approved edit (title and price) is what the next search shows.
    plan_id = first["plans"][0]["id"]
    edited = await api.request(
        "PATCH", f"/v1/listings/{first['id']}", vendor,
        json={"title": "上海交通出行数据 2027 版", "plans": [{"kind": "fixed", "id": plan_id, "price": {"amount": 1_500_000, "currency": "CNY"}}]},
    )
    assert edited.status_code == 200, edited.text
    submitted = await api.request("POST", f"/v1/listings/{first['id']}/submit", vendor)
    approved = await api.request("POST", f"/v1/listings/{first['id']}/approve", api.operator_key, json=api.approval(submitted.json()))
    assert approved.status_code == 200, approved.text
    assert (first["id"], "listed", "上海交通出行数据 2027 版", 1_500_000) in await found(api)

    # Suspended or delisted, a listing leaves public answers at once; resumed, it returns.
    suspended = await api.request("POST", f"/v1/listings/{second['id']}/suspend", api.operator_key, json={"reason": "checking its source"})
    assert suspended.status_code == 200, suspended.text
    assert [row[0] for row in await found(api)] == [first["id"]]
    resumed = await api.request("POST", f"/v1/listings/{second['id']}/resume", api.operator_key, json={"reason": "source checked"})
    assert resumed.status_code == 200, resumed.text
    assert {row[0] for row in await found(api)} == {first["id"], second["id"]}
    delisted = await api.request("POST", f"/v1/listings/{first['id']}/delist", vendor, json={"reason": "no longer offered"})
    assert delisted.status_code == 200, delisted.text
    assert [row[0] for row in await found(api)] == [second["id"]]


async def test_a_vendor_and_an_operator_never_get_the_public_answer(api: Api) -> None:
    _, vendor = await api.participant("vendor")
    listed = await api.listed(vendor)
    draft = await api.request("POST", "/v1/listings", vendor, json={**{k: listed[k] for k in ("title", "description", "category", "grade", "delivery", "personal_data", "attestations", "licence")},
                                                                     "plans": [{"kind": "fixed", "price": {"amount": 1_200_000, "currency": "CNY"}}]})
    assert draft.status_code == 201, draft.text
    assert [row[0] for row in await found(api)] == [listed["id"]]  # public: kept from here on
    assert {row[0] for row in await found(api, vendor)} == {listed["id"], draft.json()["id"]}
    assert {row[0] for row in await found(api, api.operator_key)} == {listed["id"], draft.json()["id"]}
    assert [row[0] for row in await found(api)] == [listed["id"]]


async def catalogue_version(url: str) -> int:
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(sa.text("SELECT version FROM catalogue_state WHERE id = 1"))).scalar_one())
    finally:
        await engine.dispose()


async def test_the_catalogue_version_moves_on_each_committed_change_and_not_on_a_rolled_back_one(api: Api, clean_database_url: str) -> None:
    _, vendor = await api.participant("vendor")
    listing = await api.listed(vendor)
    postgresql = clean_database_url.startswith("postgresql")
    engine = make_engine(clean_database_url)
    try:
        for table, change in (
            ("listings", "UPDATE listings SET title = title || '.' WHERE id = :id"),
            ("listing_plans", "UPDATE listing_plans SET price_fen = price_fen + 1 WHERE listing_id = :id"),
            ("listing_search", "UPDATE listing_search SET tokens = tokens WHERE listing_id = :id"),
        ):
            before = await catalogue_version(clean_database_url)
            async with engine.connect() as connection:
                transaction = await connection.begin()
                await connection.execute(sa.text(change), {"id": listing["id"]})
                await connection.execute(sa.text(change), {"id": listing["id"]})
                await transaction.rollback()
            assert await catalogue_version(clean_database_url) == before, f"{table}: a rolled-back change moved the version"
            async with engine.begin() as connection:
                await connection.execute(sa.text(change), {"id": listing["id"]})
                await connection.execute(sa.text(change), {"id": listing["id"]})
            after = await catalogue_version(clean_database_url)
            # PostgreSQL moves it once per transaction; SQLite (one writer) once per changed row.
            assert after == before + 1 if postgresql else after > before, f"{table}: {before} -> {after}"
        if postgresql:
            before = await catalogue_version(clean_database_url)
            async with engine.begin() as connection:
                await connection.execute(sa.text("INSERT INTO listing_search_words (word) VALUES ('zzcachetest')"))
            assert await catalogue_version(clean_database_url) == before + 1
    finally:
        await engine.dispose()


def test_an_answer_is_kept_for_its_version_only_and_the_newest_version_wins() -> None:
    cache: PageCache[str] = PageCache(size=2)
    assert cache.get(1, "a") is None
    cache.put(1, "a", "a@1")
    assert cache.get(1, "a") == "a@1"
    assert cache.get(2, "a") is None  # the catalogue moved on
    cache.put(2, "b", "b@2")
    assert cache.get(1, "a") is None and cache.get(2, "a") is None  # a newer version empties the cache
    cache.put(1, "a", "a@1")  # read before a change another search has seen: not kept
    assert cache.get(1, "a") is None and cache.get(2, "a") is None
    cache.put(2, "c", "c@2")
    cache.get(2, "b")  # b is now the most recently used
    cache.put(2, "d", "d@2")
    assert cache.get(2, "c") is None and cache.get(2, "b") == "b@2" and cache.get(2, "d") == "d@2"


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 4), st.sampled_from("abc")), max_size=60))
def test_a_kept_answer_is_always_the_latest_put_for_its_key_at_the_newest_version(steps: list[tuple[bool, int, str]]) -> None:
    cache: PageCache[tuple[int, str, int]] = PageCache(size=2)
    newest: int | None = None
    latest: dict[tuple[int, str], tuple[int, str, int]] = {}
    for n, (put, version, key) in enumerate(steps):
        if put:
            cache.put(version, key, (version, key, n))
            if newest is None or version >= newest:
                newest = version
                latest[(version, key)] = (version, key, n)
        else:
            answer = cache.get(version, key)
            if answer is not None:
                assert version == newest
                assert answer == latest[(version, key)]
    assert len(cache._pages) <= 2


@pytest.mark.parametrize("size", [1, 3])
def test_the_cache_never_holds_more_than_its_size(size: int) -> None:
    cache: PageCache[int] = PageCache(size=size)
    for n in range(10):
        cache.put(7, n, n)
    assert len(cache._pages) == size
    assert cache.get(7, 9) == 9 and cache.get(7, 0) is None


@pytest.mark.postgres_only
async def test_a_kept_answer_on_postgresql_is_given_without_a_session(api: Api, lookup_sessions: list[str]) -> None:
    """A kept answer needs only the catalogue version, read straight from the driver: no session
    is opened for it (a session cost more CPU than the rest of the search); a new search opens one."""
    _, vendor = await api.participant("vendor")
    listing = await api.listed(vendor)
    expected = await found(api)
    lookup_sessions.clear()
    assert await found(api) == expected and expected[0][0] == listing["id"]
    assert lookup_sessions == []
    assert await found(api, q="交通") == expected  # not kept yet: read in a session
    assert lookup_sessions == ["lookup"]
