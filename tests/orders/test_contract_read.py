"""A contract read on PostgreSQL: the caller and the contract straight from the driver, no session."""

from __future__ import annotations

import pytest

from tests.harness import Api
from tests.orders.conftest import Market, money


@pytest.mark.postgres_only
async def test_a_contract_read_opens_no_session_and_shows_only_to_its_parties(market: Market, api: Api, lookup_sessions: list[str]) -> None:
    listing = await market.listing({"kind": "fixed", "price": money(10_000)})
    _, buyer = await market.buyer(100_000)
    _, other = await market.buyer(100_000)
    placed = await market.order(buyer, listing)
    assert placed.status_code == 201, placed.text
    contract_id = placed.json()["contract_ids"][0]
    by_session = (await api.request("GET", "/v1/contracts", buyer)).json()["items"]  # read through the ORM, for comparison
    lookup_sessions.clear()
    for key in (buyer, market.vendor, api.operator_key):
        answer = await api.request("GET", f"/v1/contracts/{contract_id}", key)
        assert answer.status_code == 200, answer.text
        assert answer.json() == by_session[0]  # the same contract, field for field, as the session reads it
    assert lookup_sessions == []
    hidden = await api.request("GET", f"/v1/contracts/{contract_id}", other)
    assert hidden.status_code == 404  # another buyer's contract does not exist for them
    assert (await api.request("GET", "/v1/contracts/ctr_missing", buyer)).status_code == 404
    assert lookup_sessions == []
    assert (await api.request("GET", "/v1/contracts", buyer)).status_code == 200
    assert lookup_sessions == ["lookup"]  # a handler that reads in a session gets one when it asks
